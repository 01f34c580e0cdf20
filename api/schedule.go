package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/slots"
)

// schedule handles GET /v1/schedule?view=day|week&date=&practitioner_id=&facility_id=:
// a doctor's own day or week, or a facility's for its staff; admins pick a
// facility. Dates are in the facility's zone; cancelled visits are left out
// unless include_cancelled=true.
func (s *Server) schedule(c *gin.Context) error {
	p := principal(c)
	days := 1
	switch c.DefaultQuery("view", "day") {
	case "day":
	case "week":
		days = 7
	default:
		return badRequest("invalid-parameter", "view must be day or week.")
	}
	facilityID, err := optionalUUIDQuery(c, "facility_id")
	if err != nil {
		return err
	}
	practitionerID, err := optionalUUIDQuery(c, "practitioner_id")
	if err != nil {
		return err
	}
	switch p.Role {
	case models.RoleStaff:
		facilityID = p.FacilityID
	case models.RoleDoctor:
		practitionerID = p.PractitionerID
	}

	var rows []appointmentRow
	var zone string
	var from, to time.Time
	err = s.inTenant(c, func(tx *gorm.DB) error {
		var f models.Facility
		q := tx.Order("name")
		if facilityID != uuid.Nil {
			q = q.Where("id = ?", facilityID)
		} else if practitionerID != uuid.Nil {
			q = q.Where("id IN (SELECT facility_id FROM practitioner_roles WHERE practitioner_id = ?)", practitionerID)
		}
		if err := q.Take(&f).Error; err != nil {
			return lookupProblem(err, "unknown-facility", "No facility matches; give facility_id.")
		}
		loc, err := time.LoadLocation(f.TimeZone)
		if err != nil {
			return internal(err)
		}
		zone = f.TimeZone
		date := slots.DateOf(s.Now().In(loc))
		if v := c.Query("date"); v != "" {
			if date, err = parseDay(v); err != nil {
				return badRequest("invalid-parameter", "date must be YYYY-MM-DD.")
			}
		}
		from, to = date.In(loc, 0), date.AddDays(days).In(loc, 0)
		aq := appointmentQuery(tx, p).Where("a.starts_at < ? AND a.ends_at > ?", to, from).Order("a.starts_at, a.id")
		if facilityID != uuid.Nil {
			aq = aq.Where("a.facility_id = ?", facilityID)
		}
		if practitionerID != uuid.Nil {
			aq = aq.Where("a.practitioner_id = ?", practitionerID)
		}
		if c.Query("include_cancelled") != "true" {
			aq = aq.Where("a.status <> ?", models.StatusCancelled)
		}
		if err := aq.Scan(&rows).Error; err != nil {
			return internal(err)
		}
		return s.auditAppointmentList(c, tx, rows)
	})
	if err != nil {
		return err
	}
	out := make([]appointmentView, len(rows))
	for i, r := range rows {
		out[i] = s.view(p, r)
	}
	c.JSON(http.StatusOK, gin.H{"time_zone": zone, "from": from.UTC(), "to": to.UTC(), "items": out})
	return nil
}
