package api

import (
	"errors"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/slots"
)

// offer is one practitioner's bookable context: where, what, and the
// slots.Request that answers "when".
type offer struct {
	Practitioner models.Practitioner
	Facility     models.Facility
	Type         models.AppointmentType
	Location     *time.Location
	Request      slots.Request
}

// loadOffer resolves the offer and loads its calendar for dates
// [from, to), inside the caller's tenant transaction.
func loadOffer(tx *gorm.DB, practitionerID, facilityID, typeID uuid.UUID, from, to slots.Date, now time.Time, skip uuid.UUID) (offer, error) {
	o, err := resolveOffer(tx, practitionerID, facilityID, typeID)
	if err != nil {
		return o, err
	}
	return o, o.loadCalendar(tx, from, to, now, skip)
}

// resolveOffer reads who, where and what: the practitioner, the facility
// (the only one they work at when facilityID is nil) and its zone, and the
// appointment type, checking that the practitioner offers the type there.
// It returns a Problem for unknown or mismatched references.
func resolveOffer(tx *gorm.DB, practitionerID, facilityID, typeID uuid.UUID) (offer, error) {
	var o offer
	if err := tx.Where("id = ?", practitionerID).Take(&o.Practitioner).Error; err != nil {
		return o, lookupProblem(err, "unknown-practitioner", "practitioner_id names no practitioner.")
	}
	if err := tx.Where("id = ?", typeID).Take(&o.Type).Error; err != nil {
		return o, lookupProblem(err, "unknown-appointment-type", "appointment_type_id names no appointment type.")
	}
	if facilityID == uuid.Nil {
		var roles []models.PractitionerRole
		if err := tx.Where("practitioner_id = ? AND active", practitionerID).Find(&roles).Error; err != nil {
			return o, internal(err)
		}
		facilities := map[uuid.UUID]bool{}
		for _, r := range roles {
			facilities[r.FacilityID] = true
		}
		if len(facilities) != 1 {
			return o, invalid("facility-required", "This practitioner works at several facilities; give facility_id.")
		}
		facilityID = roles[0].FacilityID
	}
	if err := tx.Where("id = ?", facilityID).Take(&o.Facility).Error; err != nil {
		return o, lookupProblem(err, "unknown-facility", "facility_id names no facility.")
	}
	role := tx.Where("practitioner_id = ? AND facility_id = ? AND active", practitionerID, facilityID)
	if o.Type.SpecialtyID != nil {
		role = role.Where("specialty_id = ?", *o.Type.SpecialtyID)
	}
	var n int64
	if err := role.Model(&models.PractitionerRole{}).Count(&n).Error; err != nil {
		return o, internal(err)
	}
	if n == 0 {
		return o, invalid("not-offered", "This practitioner does not offer this appointment type at this facility.")
	}
	loc, err := time.LoadLocation(o.Facility.TimeZone)
	if err != nil {
		return o, internal(err)
	}
	o.Location = loc
	return o, nil
}

// loadCalendar reads what availability depends on for dates [from, to)
// and builds o.Request. The busy list holds every active appointment of
// the practitioner at any facility, since a person cannot be in two
// places; skip leaves one appointment out (the one being moved).
func (o *offer) loadCalendar(tx *gorm.DB, from, to slots.Date, now time.Time, skip uuid.UUID) error {
	practitionerID, facilityID, loc := o.Practitioner.ID, o.Facility.ID, o.Location
	var rules []models.ScheduleRule
	if err := tx.Where("practitioner_id = ? AND facility_id = ?", practitionerID, facilityID).Find(&rules).Error; err != nil {
		return internal(err)
	}
	// Instants that can matter: a day either side of the range covers
	// windows that cross midnight and buffers at the edges.
	lo := from.AddDays(-1).In(loc, 0)
	hi := to.AddDays(1).In(loc, 0)
	var exceptions []models.ScheduleException
	if err := tx.Where("practitioner_id = ? AND facility_id = ? AND starts_at < ? AND ends_at > ?", practitionerID, facilityID, hi, lo).
		Find(&exceptions).Error; err != nil {
		return internal(err)
	}
	var busy []models.Appointment
	q := tx.Where("practitioner_id = ? AND status IN ? AND blocked_from < ? AND blocked_until > ?",
		practitionerID, models.ActiveStatuses, hi, lo)
	if skip != uuid.Nil {
		q = q.Where("id <> ?", skip)
	}
	if err := q.Find(&busy).Error; err != nil {
		return internal(err)
	}

	t := o.Type
	r := slots.Request{
		Location:     loc,
		Duration:     time.Duration(t.DurationMinutes) * time.Minute,
		BufferBefore: time.Duration(t.BufferBeforeMin) * time.Minute,
		BufferAfter:  time.Duration(t.BufferAfterMin) * time.Minute,
		MinNotice:    time.Duration(t.MinNoticeMin) * time.Minute,
		Horizon:      time.Duration(t.HorizonDays) * 24 * time.Hour,
		Now:          now,
		From:         from,
		To:           to,
	}
	for _, rule := range rules {
		sr := slots.Rule{Weekday: time.Weekday(rule.Weekday), Start: slots.Clock(rule.StartMinute), End: slots.Clock(rule.EndMinute), Break: rule.IsBreak}
		if rule.ValidFrom != nil {
			sr.ValidFrom = slots.DateOf(*rule.ValidFrom)
		}
		if rule.ValidUntil != nil {
			sr.ValidUntil = slots.DateOf(*rule.ValidUntil)
		}
		r.Rules = append(r.Rules, sr)
	}
	for _, e := range exceptions {
		iv := slots.Interval{Start: e.StartsAt, End: e.EndsAt}
		if e.Kind == models.ExceptionExtraHours {
			r.Extra = append(r.Extra, iv)
		} else {
			r.TimeOff = append(r.TimeOff, iv)
		}
	}
	for _, b := range busy {
		r.Busy = append(r.Busy, slots.Interval{Start: b.BlockedFrom, End: b.BlockedUntil})
	}
	o.Request = r
	return nil
}

func lookupProblem(err error, typ, detail string) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return invalid(typ, detail)
	}
	return internal(err)
}

// nextFreeSlots returns up to n free slots from start onwards, within a
// fortnight, for a 409 answer. Times the patient is already booked at are
// left out too, so every slot offered can really be booked.
func nextFreeSlots(tx *gorm.DB, o offer, patientID uuid.UUID, start time.Time, now time.Time, n int) ([]slotView, error) {
	from := slots.DateOf(start.In(o.Location))
	to := from.AddDays(14)
	fresh := o
	if err := fresh.loadCalendar(tx, from, to, now, uuid.Nil); err != nil {
		return nil, err
	}
	var mine []models.Appointment
	if err := tx.Where("patient_id = ? AND status IN ? AND ends_at > ?", patientID, models.ActiveStatuses, start).
		Find(&mine).Error; err != nil {
		return nil, internal(err)
	}
	for _, m := range mine {
		fresh.Request.TimeOff = append(fresh.Request.TimeOff, slots.Interval{Start: m.StartsAt, End: m.EndsAt})
	}
	free, err := slots.Free(fresh.Request)
	if err != nil {
		return nil, internal(err)
	}
	out := []slotView{}
	for _, sl := range free {
		if sl.Start.Before(start) {
			continue
		}
		out = append(out, viewSlot(fresh, sl))
		if len(out) == n {
			break
		}
	}
	return out, nil
}

type slotView struct {
	Start          time.Time `json:"start"`
	End            time.Time `json:"end"`
	StartLocal     string    `json:"start_local"`
	EndLocal       string    `json:"end_local"`
	TimeZone       string    `json:"time_zone"`
	PractitionerID string    `json:"practitioner_id"`
	FacilityID     string    `json:"facility_id"`
}

func viewSlot(o offer, sl slots.Slot) slotView {
	return slotView{
		Start:          sl.Start.UTC(),
		End:            sl.End.UTC(),
		StartLocal:     sl.Start.In(o.Location).Format(time.RFC3339),
		EndLocal:       sl.End.In(o.Location).Format(time.RFC3339),
		TimeZone:       o.Facility.TimeZone,
		PractitionerID: o.Practitioner.ID.String(),
		FacilityID:     o.Facility.ID.String(),
	}
}
