package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
)

type facilityView struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Address  string `json:"address"`
	City     string `json:"city"`
	Country  string `json:"country"`
	TimeZone string `json:"time_zone"`
}

// listFacilities handles GET /v1/facilities.
func (s *Server) listFacilities(c *gin.Context) error {
	var rows []models.Facility
	if err := s.inTenant(c, func(tx *gorm.DB) error { return tx.Order("name").Find(&rows).Error }); err != nil {
		return internal(err)
	}
	out := make([]facilityView, len(rows))
	for i, f := range rows {
		out[i] = facilityView{ID: f.ID.String(), Name: f.Name, Address: f.Address, City: f.City, Country: f.Country, TimeZone: f.TimeZone}
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

type specialtyView struct {
	ID   string `json:"id"`
	Code string `json:"code"`
	Name string `json:"name"`
}

// listSpecialties handles GET /v1/specialties.
func (s *Server) listSpecialties(c *gin.Context) error {
	var rows []models.Specialty
	if err := s.inTenant(c, func(tx *gorm.DB) error { return tx.Order("name").Find(&rows).Error }); err != nil {
		return internal(err)
	}
	out := make([]specialtyView, len(rows))
	for i, r := range rows {
		out[i] = specialtyView{ID: r.ID.String(), Code: r.Code, Name: r.Name}
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

type practitionerView struct {
	ID          string     `json:"id"`
	DisplayName string     `json:"display_name"`
	Title       string     `json:"title"`
	Roles       []roleView `json:"roles"`
}

type roleView struct {
	FacilityID    string `json:"facility_id"`
	SpecialtyID   string `json:"specialty_id"`
	SpecialtyCode string `json:"specialty_code"`
}

// listPractitioners handles GET /v1/practitioners?specialty=&facility_id=:
// practitioners with an active role matching both filters.
func (s *Server) listPractitioners(c *gin.Context) error {
	facility, err := optionalUUIDQuery(c, "facility_id")
	if err != nil {
		return err
	}
	specialty := c.Query("specialty")
	type row struct {
		models.Practitioner
		FacilityID    uuid.UUID
		SpecialtyID   uuid.UUID
		SpecialtyCode string
	}
	var rows []row
	err = s.inTenant(c, func(tx *gorm.DB) error {
		q := tx.Table("practitioners p").
			Select("p.*, r.facility_id, r.specialty_id, sp.code AS specialty_code").
			Joins("JOIN practitioner_roles r ON r.practitioner_id = p.id AND r.active").
			Joins("JOIN specialties sp ON sp.id = r.specialty_id").
			Order("p.display_name, p.id")
		if facility != uuid.Nil {
			q = q.Where("r.facility_id = ?", facility)
		}
		if specialty != "" {
			q = q.Where("sp.code = ? OR sp.id::text = ?", specialty, specialty)
		}
		return q.Scan(&rows).Error
	})
	if err != nil {
		return internal(err)
	}
	out := []practitionerView{}
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].ID != r.ID.String() {
			out = append(out, practitionerView{ID: r.ID.String(), DisplayName: r.DisplayName, Title: r.Title})
		}
		last := &out[len(out)-1]
		last.Roles = append(last.Roles, roleView{FacilityID: r.FacilityID.String(), SpecialtyID: r.SpecialtyID.String(), SpecialtyCode: r.SpecialtyCode})
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

type moneyView struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
}

type appointmentTypeView struct {
	ID              string    `json:"id"`
	Code            string    `json:"code"`
	Name            string    `json:"name"`
	SpecialtyID     string    `json:"specialty_id,omitempty"`
	DurationMinutes int       `json:"duration_minutes"`
	Mode            string    `json:"mode"`
	Price           moneyView `json:"price"`
	MinNoticeMin    int       `json:"min_notice_minutes"`
	HorizonDays     int       `json:"horizon_days"`
}

// listAppointmentTypes handles GET /v1/appointment-types.
func (s *Server) listAppointmentTypes(c *gin.Context) error {
	var rows []models.AppointmentType
	if err := s.inTenant(c, func(tx *gorm.DB) error { return tx.Order("name").Find(&rows).Error }); err != nil {
		return internal(err)
	}
	out := make([]appointmentTypeView, len(rows))
	for i, t := range rows {
		out[i] = appointmentTypeView{ID: t.ID.String(), Code: t.Code, Name: t.Name, SpecialtyID: optionalString(t.SpecialtyID),
			DurationMinutes: t.DurationMinutes, Mode: string(t.Mode), Price: moneyView{t.PriceMinor, t.Currency},
			MinNoticeMin: t.MinNoticeMin, HorizonDays: t.HorizonDays}
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

func optionalUUIDQuery(c *gin.Context, name string) (uuid.UUID, error) {
	v := c.Query(name)
	if v == "" {
		return uuid.Nil, nil
	}
	id, err := uuid.Parse(v)
	if err != nil {
		return uuid.Nil, badRequest("invalid-parameter", name+" must be a UUID.")
	}
	return id, nil
}

func uuidParam(c *gin.Context, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		// An ID that is not a UUID cannot name anything; say "not found"
		// rather than teaching the caller our ID format.
		return uuid.Nil, notFound(what)
	}
	return id, nil
}
