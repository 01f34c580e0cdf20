package api

import (
	"errors"
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/slots"
)

// maxSlotDays bounds one slot query: two weeks fills any booking screen.
const maxSlotDays = 31

// practitionerSlots handles GET /v1/practitioners/{id}/slots: free slots of
// one practitioner for an appointment type, dates [from, to) in the
// facility's zone.
func (s *Server) practitionerSlots(c *gin.Context) error {
	id, err := uuidParam(c, "practitioner")
	if err != nil {
		return err
	}
	facility, err := optionalUUIDQuery(c, "facility_id")
	if err != nil {
		return err
	}
	typeID, err := requiredUUIDQuery(c, "appointment_type_id")
	if err != nil {
		return err
	}
	var out []slotView
	var zone string
	err = s.inTenant(c, func(tx *gorm.DB) error {
		o, err := s.offerFor(c, tx, id, facility, typeID)
		if p, ok := err.(*Problem); ok && p.Type == "unknown-practitioner" {
			// The practitioner is the path's resource: one this tenant
			// does not have is not found, as every path ID is.
			return notFound("practitioner")
		}
		if err != nil {
			return err
		}
		zone = o.Facility.TimeZone
		out, err = freeSlots(o)
		return err
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"time_zone": zone, "items": out})
	return nil
}

// searchSlots handles GET /v1/slots?specialty=&facility_id=&appointment_type_id=:
// free slots of every practitioner of a specialty at a facility, by start.
func (s *Server) searchSlots(c *gin.Context) error {
	facility, err := requiredUUIDQuery(c, "facility_id")
	if err != nil {
		return err
	}
	typeID, err := requiredUUIDQuery(c, "appointment_type_id")
	if err != nil {
		return err
	}
	specialty := c.Query("specialty")
	if specialty == "" {
		return badRequest("invalid-parameter", "specialty is required.")
	}
	out := []slotView{}
	err = s.inTenant(c, func(tx *gorm.DB) error {
		var ids []uuid.UUID
		err := tx.Model(&models.PractitionerRole{}).Distinct("practitioner_roles.practitioner_id").
			Joins("JOIN specialties sp ON sp.id = practitioner_roles.specialty_id").
			Where("practitioner_roles.facility_id = ? AND practitioner_roles.active AND (sp.code = ? OR sp.id::text = ?)", facility, specialty, specialty).
			Pluck("practitioner_roles.practitioner_id", &ids).Error
		if err != nil {
			return internal(err)
		}
		for _, id := range ids {
			o, err := s.offerFor(c, tx, id, facility, typeID)
			var p *Problem
			if errors.As(err, &p) && p.Type == "not-offered" {
				continue // the type belongs to another specialty of this person
			}
			if err != nil {
				return err
			}
			free, err := freeSlots(o)
			if err != nil {
				return err
			}
			out = append(out, free...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

// offerFor reads the from/to query in the facility's zone and loads the
// offer. Dates default to the next seven days.
func (s *Server) offerFor(c *gin.Context, tx *gorm.DB, practitioner, facility, typeID uuid.UUID) (offer, error) {
	o, err := resolveOffer(tx, practitioner, facility, typeID)
	if err != nil {
		return offer{}, err
	}
	now := s.Now()
	from, to, err := dateRange(c, slots.DateOf(now.In(o.Location)))
	if err != nil {
		return offer{}, err
	}
	return o, o.loadCalendar(tx, from, to, now, uuid.Nil)
}

func freeSlots(o offer) ([]slotView, error) {
	free, err := slots.Free(o.Request)
	if err != nil {
		return nil, internal(err)
	}
	out := make([]slotView, len(free))
	for i, sl := range free {
		out[i] = viewSlot(o, sl)
	}
	return out, nil
}

func dateRange(c *gin.Context, today slots.Date) (slots.Date, slots.Date, error) {
	from, to := today, today.AddDays(7)
	var err error
	if v := c.Query("from"); v != "" {
		if from, err = parseDay(v); err != nil {
			return from, to, badRequest("invalid-parameter", "from must be a date as YYYY-MM-DD.")
		}
		to = from.AddDays(7)
	}
	if v := c.Query("to"); v != "" {
		if to, err = parseDay(v); err != nil {
			return from, to, badRequest("invalid-parameter", "to must be a date as YYYY-MM-DD.")
		}
	}
	if !from.Before(to) || from.AddDays(maxSlotDays).Before(to) {
		return from, to, invalid("invalid-range", "to must be after from, and at most 31 days later.")
	}
	return from, to, nil
}

func requiredUUIDQuery(c *gin.Context, name string) (uuid.UUID, error) {
	id, err := optionalUUIDQuery(c, name)
	if err == nil && id == uuid.Nil {
		return id, badRequest("invalid-parameter", name+" is required.")
	}
	return id, err
}

// parseDay reads a calendar date within the years anyone books or looks up
// visits in; outside them times cannot be encoded and mean nothing.
func parseDay(v string) (slots.Date, error) {
	d, err := slots.ParseDate(v)
	if err != nil {
		return d, err
	}
	if d.Year < 2000 || d.Year > 2199 {
		return d, errors.New("date out of range")
	}
	return d, nil
}
