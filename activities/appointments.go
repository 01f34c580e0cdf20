// Package activities holds the Temporal activities: thin adapters from
// workflow steps to Postgres and, later, the object store, payment provider
// and notification channels. Each is a method on a struct built once per
// worker with its dependencies.
package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/workflows"
)

// Appointments changes appointment rows for the appointment workflow.
// Every method is safe to run again after a retry: it either finds its
// change already made and answers the same, or makes it once.
type Appointments struct {
	DB *gorm.DB
	// HoldTTL is how long a held (unpaid) slot lasts.
	HoldTTL time.Duration
}

// HoldSlot inserts the appointment. The exclusion constraints decide: a
// refusal is the business outcome "taken", not an error.
func (a *Appointments) HoldSlot(ctx context.Context, req workflows.BookRequest) (workflows.BookResult, error) {
	tenant, id, err := parseIDs(req.TenantID, req.AppointmentID)
	if err != nil {
		return workflows.BookResult{}, err
	}
	row := models.Appointment{
		ID:                id,
		TenantID:          tenant,
		PractitionerID:    uuid.MustParse(req.PractitionerID),
		PatientID:         uuid.MustParse(req.PatientID),
		FacilityID:        uuid.MustParse(req.FacilityID),
		AppointmentTypeID: uuid.MustParse(req.AppointmentTypeID),
		StartsAt:          req.StartsAt.UTC(),
		EndsAt:            req.EndsAt.UTC(),
		BlockedFrom:       req.BlockedFrom.UTC(),
		BlockedUntil:      req.BlockedUntil.UTC(),
		Status:            models.StatusBooked,
		Mode:              models.Mode(req.Mode),
		PriceMinor:        req.PriceMinor,
		Currency:          req.Currency,
		Version:           1,
	}
	if by, err := uuid.Parse(req.BookedBy); err == nil {
		row.BookedBy = &by
	}
	if !req.HoldExpiresAt.IsZero() {
		// A paid visit holds its slot until the payment is secured.
		exp := req.HoldExpiresAt.UTC()
		row.Status, row.HoldExpiresAt = models.StatusHeld, &exp
	}
	var result workflows.BookResult
	err = models.InTenant(ctx, a.DB, tenant, func(tx *gorm.DB) error {
		// A retry after a lost answer finds its own row: same ID, same slot.
		var existing models.Appointment
		if err := tx.Where("id = ?", id).Take(&existing).Error; err == nil {
			result = workflows.BookResult{Outcome: workflows.OutcomeBooked, State: stateOf(existing)}
			return nil
		} else if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		// The insert runs in a savepoint, so that a refusal rolls back to it
		// and leaves the transaction usable.
		err := tx.Transaction(func(sp *gorm.DB) error { return sp.Create(&row).Error })
		switch models.OverlapConstraint(err) {
		case models.ConstraintPractitionerOverlap:
			result = workflows.BookResult{Outcome: workflows.OutcomeTaken, Conflict: workflows.ConflictPractitioner}
			return nil
		case models.ConstraintPatientOverlap:
			result = workflows.BookResult{Outcome: workflows.OutcomeTaken, Conflict: workflows.ConflictPatient}
			return nil
		}
		if err != nil {
			return err
		}
		result = workflows.BookResult{Outcome: workflows.OutcomeBooked, State: stateOf(row)}
		return nil
	})
	if err != nil {
		return workflows.BookResult{}, fmt.Errorf("hold slot: %w", err)
	}
	return result, nil
}

// CancelAppointment sets the status to cancelled with its reason. An
// appointment that is already cancelled answers as it is.
func (a *Appointments) CancelAppointment(ctx context.Context, ch workflows.AppointmentChange) (workflows.AppointmentState, error) {
	if ch.Cancel == nil {
		return workflows.AppointmentState{}, temporal.NewNonRetryableApplicationError("cancel without a request", workflows.ErrTypeInvalidState, nil)
	}
	return a.transition(ctx, ch, func(row *models.Appointment) (map[string]any, error) {
		if row.Status == models.StatusCancelled {
			return nil, nil
		}
		if row.Status != models.StatusBooked && row.Status != models.StatusHeld && row.Status != models.StatusPending {
			return nil, invalidState(row.Status)
		}
		return map[string]any{
			"status":        models.StatusCancelled,
			"cancel_reason": ch.Cancel.Reason,
			"cancelled_by":  ch.Cancel.By,
		}, nil
	})
}

// RescheduleAppointment moves the appointment in one UPDATE: the constraint
// checks the new range against every other active row while the old range
// is still held by this one, so the old slot is freed only once the new one
// is held. A retry finds the version already bumped and answers the same.
func (a *Appointments) RescheduleAppointment(ctx context.Context, ch workflows.AppointmentChange) (workflows.AppointmentState, error) {
	r := ch.Reschedule
	if r == nil {
		return workflows.AppointmentState{}, temporal.NewNonRetryableApplicationError("reschedule without a request", workflows.ErrTypeInvalidState, nil)
	}
	return a.transition(ctx, ch, func(row *models.Appointment) (map[string]any, error) {
		if row.Version == ch.ExpectedVersion+1 && row.StartsAt.Equal(r.StartsAt) {
			return nil, nil
		}
		if row.Version != ch.ExpectedVersion {
			return nil, temporal.NewNonRetryableApplicationError("the appointment changed meanwhile", workflows.ErrTypeVersionChanged, nil)
		}
		if row.Status != models.StatusBooked && row.Status != models.StatusHeld {
			return nil, invalidState(row.Status)
		}
		return map[string]any{
			"starts_at":     r.StartsAt.UTC(),
			"ends_at":       r.EndsAt.UTC(),
			"blocked_from":  r.BlockedFrom.UTC(),
			"blocked_until": r.BlockedUntil.UTC(),
			"version":       row.Version + 1,
		}, nil
	})
}

// ConfirmHeldAppointment books a held appointment once its payment is
// secured.
func (a *Appointments) ConfirmHeldAppointment(ctx context.Context, ch workflows.AppointmentChange) (workflows.AppointmentState, error) {
	return a.transition(ctx, ch, func(row *models.Appointment) (map[string]any, error) {
		switch row.Status {
		case models.StatusBooked:
			return nil, nil
		case models.StatusHeld:
			return map[string]any{"status": models.StatusBooked, "hold_expires_at": nil}, nil
		}
		return nil, invalidState(row.Status)
	})
}

// CheckInAppointment marks a booked appointment arrived.
func (a *Appointments) CheckInAppointment(ctx context.Context, ch workflows.AppointmentChange) (workflows.AppointmentState, error) {
	return a.transition(ctx, ch, func(row *models.Appointment) (map[string]any, error) {
		switch row.Status {
		case models.StatusArrived:
			return nil, nil
		case models.StatusBooked:
			return map[string]any{"status": models.StatusArrived}, nil
		}
		return nil, invalidState(row.Status)
	})
}

// CloseAppointment ends a visit after its grace period: arrived becomes
// fulfilled, booked becomes no-show.
func (a *Appointments) CloseAppointment(ctx context.Context, ch workflows.AppointmentChange) (workflows.AppointmentState, error) {
	return a.transition(ctx, ch, func(row *models.Appointment) (map[string]any, error) {
		switch row.Status {
		case models.StatusFulfilled, models.StatusNoShow, models.StatusCancelled:
			return nil, nil
		case models.StatusArrived:
			return map[string]any{"status": models.StatusFulfilled}, nil
		case models.StatusBooked, models.StatusHeld, models.StatusPending:
			return map[string]any{"status": models.StatusNoShow}, nil
		}
		return nil, invalidState(row.Status)
	})
}

// transition locks the row, asks decide for the columns to change (nil for
// "already done"), and writes them.
func (a *Appointments) transition(ctx context.Context, ch workflows.AppointmentChange, decide func(*models.Appointment) (map[string]any, error)) (workflows.AppointmentState, error) {
	tenant, id, err := parseIDs(ch.TenantID, ch.AppointmentID)
	if err != nil {
		return workflows.AppointmentState{}, err
	}
	var row models.Appointment
	err = models.InTenant(ctx, a.DB, tenant, func(tx *gorm.DB) error {
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return temporal.NewNonRetryableApplicationError("no such appointment", workflows.ErrTypeNotFound, nil)
		}
		if err != nil {
			return err
		}
		cols, err := decide(&row)
		if err != nil || cols == nil {
			return err
		}
		cols["updated_at"] = time.Now().UTC()
		err = tx.Model(&row).Clauses(clause.Returning{}).Updates(cols).Error
		if c := models.OverlapConstraint(err); c != "" {
			return temporal.NewNonRetryableApplicationError("the new time is taken", workflows.ErrTypeSlotTaken, nil, conflictOf(c))
		}
		return err
	})
	if err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			return workflows.AppointmentState{}, err
		}
		return workflows.AppointmentState{}, fmt.Errorf("change appointment: %w", err)
	}
	return stateOf(row), nil
}

// EnqueueNotification writes an outbox row once per dedupe key.
func (a *Appointments) EnqueueNotification(ctx context.Context, n workflows.Notification) error {
	tenant, err := uuid.Parse(n.TenantID)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("bad tenant id", workflows.ErrTypeNotFound, err)
	}
	payload, err := json.Marshal(map[string]string{"appointmentID": n.AppointmentID})
	if err != nil {
		return fmt.Errorf("encode payload: %w", err)
	}
	row := models.Notification{
		ID:           uuid.New(),
		TenantID:     tenant,
		DedupeKey:    n.DedupeKey,
		Channel:      models.ChannelEmail,
		Template:     n.Template,
		Payload:      payload,
		ScheduledFor: n.ScheduledFor.UTC(),
	}
	if u, err := uuid.Parse(n.RecipientUser); err == nil {
		row.RecipientUser = &u
	}
	if appt, err := uuid.Parse(n.AppointmentID); err == nil {
		row.AppointmentID = &appt
	}
	err = models.InTenant(ctx, a.DB, tenant, func(tx *gorm.DB) error {
		if err := models.Enqueue(tx, row); err != nil {
			return err
		}
		if n.Template != workflows.TemplateReminder || row.AppointmentID == nil {
			return nil
		}
		// A reminder also goes by SMS when the patient consents to that
		// now: the consent is read when the reminder falls due, so a
		// withdrawal stops every reminder after it.
		var patient []uuid.UUID
		if err := tx.Model(&models.Appointment{}).Where("id = ?", *row.AppointmentID).Pluck("patient_id", &patient).Error; err != nil {
			return err
		}
		if len(patient) != 1 {
			return nil
		}
		ok, err := models.Consents(tx, patient[0], models.PurposeSMSReminders)
		if err != nil || !ok {
			return err
		}
		sms := row
		sms.ID, sms.DedupeKey, sms.Channel = uuid.New(), n.DedupeKey+":sms", models.ChannelSMS
		return models.Enqueue(tx, sms)
	})
	if err != nil {
		return fmt.Errorf("enqueue notification: %w", err)
	}
	return nil
}

func stateOf(row models.Appointment) workflows.AppointmentState {
	return workflows.AppointmentState{
		AppointmentID: row.ID.String(),
		Status:        string(row.Status),
		StartsAt:      row.StartsAt.UTC(),
		EndsAt:        row.EndsAt.UTC(),
		Version:       row.Version,
	}
}

func parseIDs(tenantID, appointmentID string) (uuid.UUID, uuid.UUID, error) {
	tenant, err := uuid.Parse(tenantID)
	if err != nil {
		return uuid.Nil, uuid.Nil, temporal.NewNonRetryableApplicationError("bad tenant id", workflows.ErrTypeNotFound, err)
	}
	id, err := uuid.Parse(appointmentID)
	if err != nil {
		return uuid.Nil, uuid.Nil, temporal.NewNonRetryableApplicationError("bad appointment id", workflows.ErrTypeNotFound, err)
	}
	return tenant, id, nil
}

func invalidState(s models.Status) error {
	return temporal.NewNonRetryableApplicationError("the appointment is "+string(s), workflows.ErrTypeInvalidState, nil)
}

func conflictOf(constraint string) workflows.Conflict {
	if constraint == models.ConstraintPatientOverlap {
		return workflows.ConflictPatient
	}
	return workflows.ConflictPractitioner
}
