package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/reqid"
	"github.com/carebook/carebook/slots"
	"github.com/carebook/carebook/workflows"
)

// workflowWait bounds how long a request waits on the appointment
// workflow. A healthy worker answers in milliseconds; past this the worker
// is down and the client is told to retry (with the same Idempotency-Key,
// which reaches the same workflow).
const workflowWait = 20 * time.Second

type createAppointmentRequest struct {
	PractitionerID    string    `json:"practitioner_id"`
	FacilityID        string    `json:"facility_id,omitempty"`
	AppointmentTypeID string    `json:"appointment_type_id"`
	Start             time.Time `json:"start"`
	PatientID         string    `json:"patient_id,omitempty"`
}

type appointmentView struct {
	ID             string       `json:"id"`
	Status         string       `json:"status"`
	Start          time.Time    `json:"start"`
	End            time.Time    `json:"end"`
	StartLocal     string       `json:"start_local"`
	EndLocal       string       `json:"end_local"`
	TimeZone       string       `json:"time_zone"`
	Mode           string       `json:"mode"`
	Price          moneyView    `json:"price"`
	PatientID      string       `json:"patient_id"`
	PractitionerID string       `json:"practitioner_id"`
	Practitioner   string       `json:"practitioner_name"`
	FacilityID     string       `json:"facility_id"`
	Facility       string       `json:"facility_name"`
	TypeID         string       `json:"appointment_type_id"`
	Type           string       `json:"appointment_type_name"`
	Version        int          `json:"version"`
	CancelReason   string       `json:"cancel_reason,omitempty"`
	WorkflowID     string       `json:"workflow_id"`
	WorkflowURL    string       `json:"workflow_url,omitempty"`
	Payment        *paymentView `json:"payment,omitempty"`
	CreatedAt      time.Time    `json:"created_at"`
	UpdatedAt      time.Time    `json:"updated_at"`
}

// createAppointment handles POST /v1/appointments. It recomputes that the
// start is a free slot (422 if it is not a slot at all), then books it
// through the appointment workflow with Update-With-Start and answers from
// the workflow's outcome: 201 booked, or 409 with the next free slots.
// An Idempotency-Key makes a retry return the first answer.
func (s *Server) createAppointment(c *gin.Context) error {
	var req createAppointmentRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	return s.idempotent(c, func(apptID uuid.UUID) error { return s.book(c, req, apptID) })
}

func (s *Server) book(c *gin.Context, req createAppointmentRequest, apptID uuid.UUID) error {
	p := principal(c)
	practitionerID, err := uuid.Parse(req.PractitionerID)
	if err != nil {
		return invalid("unknown-practitioner", "practitioner_id names no practitioner.")
	}
	typeID, err := uuid.Parse(req.AppointmentTypeID)
	if err != nil {
		return invalid("unknown-appointment-type", "appointment_type_id names no appointment type.")
	}
	facilityID := uuid.Nil
	if req.FacilityID != "" {
		if facilityID, err = uuid.Parse(req.FacilityID); err != nil {
			return invalid("unknown-facility", "facility_id names no facility.")
		}
	}
	if req.Start.IsZero() {
		return invalid("missing-start", "start is required, as an RFC 3339 instant.")
	}
	start := req.Start.UTC()
	now := s.Now()

	var (
		o             offer
		patientID     uuid.UUID
		patientUserID string
	)
	err = s.inTenant(c, func(tx *gorm.DB) error {
		patientID, patientUserID, err = resolvePatient(tx, p, req.PatientID)
		if err != nil {
			return err
		}
		if erased, err := patientErased(tx, patientID); err != nil {
			return internal(err)
		} else if erased {
			return conflict("patient-erased", "The patient was erased; no visit can be booked for them.")
		}
		day := slots.DateOf(start)
		// The check leaves out this very appointment: a retry whose first
		// attempt booked it (then crashed before answering) must reach the
		// workflow and get that first outcome, not be told it is taken.
		o, err = loadOffer(tx, practitionerID, facilityID, typeID, day.AddDays(-1), day.AddDays(2), now, apptID)
		if err != nil {
			return err
		}
		if p.Role == models.RoleStaff && o.Facility.ID != p.FacilityID {
			return forbidden()
		}
		return slotProblem(tx, o, patientID, start, now)
	})
	if err != nil {
		return err
	}

	visit := o.Request.Blocked(start)
	end := start.Add(o.Request.Duration)
	book := workflows.BookRequest{
		TenantID:          p.TenantID.String(),
		AppointmentID:     apptID.String(),
		PractitionerID:    o.Practitioner.ID.String(),
		PatientID:         patientID.String(),
		FacilityID:        o.Facility.ID.String(),
		AppointmentTypeID: o.Type.ID.String(),
		StartsAt:          start,
		EndsAt:            end,
		BlockedFrom:       visit.Start,
		BlockedUntil:      visit.End,
		Mode:              string(o.Type.Mode),
		PriceMinor:        o.Type.PriceMinor,
		Currency:          o.Type.Currency,
		BookedBy:          p.UserID.String(),
		PatientUserID:     patientUserID,
	}
	if t := o.Type; t.PriceMinor > 0 {
		// The payment's ID derives from the appointment's, so a retried
		// booking reaches the same payment and intent.
		book.Payment = &workflows.PaymentTerms{
			PaymentID:   uuid.NewSHA1(apptID, []byte("payment")).String(),
			AmountMinor: t.PriceMinor,
			Currency:    t.Currency,
			HoldTTL:     time.Duration(t.HoldMinutes) * time.Minute,
			Policy: workflows.PaymentPolicy{
				FreeCancelBefore: time.Duration(t.FreeCancelHours) * time.Hour,
				LateCancelFeeBps: t.LateCancelFeeBps,
				NoShowFeeBps:     t.NoShowFeeBps,
				CaptureAt:        t.CaptureAt,
			},
		}
	}
	res, err := s.bookThroughWorkflow(c.Request.Context(), book)
	if err != nil {
		return err
	}
	if res.Outcome != workflows.OutcomeBooked {
		return s.takenProblem(c, o, patientID, start, res.Conflict)
	}
	if err := s.auditAppointment(c, "book", apptID, patientID); err != nil {
		return err
	}
	view, err := s.viewAppointment(c, apptID)
	if err != nil {
		return err
	}
	if h := res.Payment; h != nil {
		// The client secret lets this patient's browser or app confirm the
		// card hold; it is given in this answer only.
		view.Payment = &paymentView{ID: h.PaymentID, Status: workflows.PaymentRequiresPayment, Provider: h.Provider,
			ClientSecret: h.ClientSecret, HoldExpiresAt: ptr(h.HoldExpiresAt.UTC()), Amount: view.Price}
		if h.Provider == "offline" {
			view.Payment.Status = workflows.PaymentAuthorized
		}
	}
	c.Header("Location", "/v1/appointments/"+apptID.String())
	c.JSON(http.StatusCreated, view)
	return nil
}

// paymentView is an appointment's payment as its readers see it.
type paymentView struct {
	ID            string     `json:"id"`
	Status        string     `json:"status"`
	Provider      string     `json:"provider,omitempty"`
	Amount        moneyView  `json:"amount"`
	ClientSecret  string     `json:"client_secret,omitempty"`
	HoldExpiresAt *time.Time `json:"hold_expires_at,omitempty"`
}

// resolvePatient decides whose appointment this is: a patient books for
// themselves or a dependant; staff and admins name the patient.
func resolvePatient(tx *gorm.DB, p Principal, requested string) (uuid.UUID, string, error) {
	id := p.PatientID
	if p.Role != models.RolePatient {
		var err error
		if id, err = uuid.Parse(requested); err != nil {
			return uuid.Nil, "", invalid("unknown-patient", "patient_id is required and must name a patient.")
		}
	} else if requested != "" && requested != id.String() {
		// A proxy books for a dependant. Anyone else is out of the
		// patient's reach, and out of reach is "not found" (reach.go), as
		// for consent and data requests: the answer must not say whether
		// the ID names a patient.
		dep, err := uuid.Parse(requested)
		if err != nil {
			return uuid.Nil, "", notFound("patient")
		}
		ok, err := reachesPatient(tx, p, dep)
		if err != nil {
			return uuid.Nil, "", internal(err)
		}
		if !ok {
			return uuid.Nil, "", notFound("patient")
		}
		id = dep
	}
	var patient models.Patient
	if err := tx.Where("id = ?", id).Take(&patient).Error; err != nil {
		return uuid.Nil, "", lookupProblem(err, "unknown-patient", "patient_id names no patient.")
	}
	var user models.User
	err := tx.Where("patient_id = ? AND role = ?", id, models.RolePatient).Take(&user).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return id, "", nil
	}
	if err != nil {
		return uuid.Nil, "", internal(err)
	}
	return id, user.ID.String(), nil
}

// slotProblem recomputes availability for start: nil when it is a free
// slot, 422 when it can never be one, 409 with alternatives when it is
// taken.
func slotProblem(tx *gorm.DB, o offer, patientID uuid.UUID, start, now time.Time) error {
	err := slots.Check(o.Request, start)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, slots.ErrBusy):
		next, nerr := nextFreeSlots(tx, o, patientID, start, now, 5)
		if nerr != nil {
			return nerr
		}
		return conflict("slot-taken", "That time is no longer free.").with("next_slots", next)
	case errors.Is(err, slots.ErrTooSoon):
		return invalid("slot-too-soon", "That time is in the past or too soon to book.")
	case errors.Is(err, slots.ErrTooFar):
		return invalid("slot-too-far", "That time is beyond how far ahead this visit can be booked.")
	case errors.Is(err, slots.ErrOffGrid):
		return invalid("slot-off-grid", "Visits start on the slot grid; pick a start from the slots list.")
	case errors.Is(err, slots.ErrOffHours):
		return invalid("slot-off-hours", "The practitioner does not see patients at that time.")
	}
	return internal(err)
}

func (s *Server) takenProblem(c *gin.Context, o offer, patientID uuid.UUID, start time.Time, who workflows.Conflict) error {
	var next []slotView
	err := s.inTenant(c, func(tx *gorm.DB) error {
		var err error
		next, err = nextFreeSlots(tx, o, patientID, start, s.Now(), 5)
		return err
	})
	if err != nil {
		return err
	}
	if who == workflows.ConflictPatient {
		return conflict("patient-busy", "You already have an appointment at that time.").with("next_slots", next)
	}
	return conflict("slot-taken", "That time was just booked by someone else.").with("next_slots", next)
}

// bookThroughWorkflow starts appointment:<id> and sends the book update in
// one call, so the answer is the workflow's own outcome.
func (s *Server) bookThroughWorkflow(ctx context.Context, req workflows.BookRequest) (workflows.BookResult, error) {
	ctx, cancel := context.WithTimeout(ctx, workflowWait)
	defer cancel()
	start := s.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflows.AppointmentWorkflowID(req.AppointmentID),
		TaskQueue:                workflows.AppointmentTaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		Memo:                     reqid.Memo(ctx),
	}, workflows.AppointmentWorkflowType, workflows.AppointmentInput{TenantID: req.TenantID, AppointmentID: req.AppointmentID})
	h, err := s.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID:     workflows.BookUpdateID,
			UpdateName:   workflows.UpdateBook,
			Args:         []any{req},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	var res workflows.BookResult
	if err == nil {
		err = h.Get(ctx, &res)
	}
	if err != nil {
		return res, workflowProblem(err)
	}
	return res, nil
}

// workflowProblem maps a failed update or workflow call to a Problem.
func workflowProblem(err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case workflows.ErrTypeInvalidState:
			return conflict("invalid-state", "The appointment's status does not allow this.")
		case workflows.ErrTypeCheckInWindow:
			return conflict("check-in-closed", "Check-in opens two hours before the start and closes after the visit.")
		case workflows.ErrTypeSlotTaken:
			var who workflows.Conflict
			if appErr.HasDetails() && appErr.Details(&who) == nil && who == workflows.ConflictPatient {
				return conflict("patient-busy", "You already have an appointment at that time.")
			}
			return conflict("slot-taken", "That time was just booked by someone else.")
		case workflows.ErrTypeVersionChanged:
			return conflict("changed-meanwhile", "The appointment changed meanwhile; reload it and try again.")
		case workflows.ErrTypeNotFound:
			return notFound("appointment")
		case workflows.ErrTypeProviderReject, workflows.ErrTypeDeclined:
			// The provider refused to open the payment; the workflow has
			// given the slot back. The cause is the operator's to fix.
			p := newProblem(KindUnavailable, "payment-unavailable", "Payment unavailable", "Online payment is unavailable right now; try again later or book at the desk.")
			p.Err = err
			return p
		}
	}
	var gone *serviceerror.NotFound
	if errors.As(err, &gone) {
		p := conflict("invalid-state", "The appointment is closed and cannot change.")
		p.Err = err
		return p
	}
	// A wait cut short (deadline, cancellation) is answered 503 by
	// renderError, for every route.
	var unav *serviceerror.Unavailable
	if errors.As(err, &unav) {
		return unavailable(err)
	}
	return internal(err)
}

// visible narrows a query on appointments to what the caller may see:
// patients their own and their dependants', doctors theirs, staff their
// facility's; admins and
// billing the whole tenant (RLS has already cut it to the tenant).
func visible(p Principal) func(*gorm.DB) *gorm.DB {
	return func(q *gorm.DB) *gorm.DB {
		switch p.Role {
		case models.RolePatient:
			return where(q, p, patientReachSQL("a.patient_id"))
		case models.RoleDoctor:
			return q.Where("a.practitioner_id = ?", p.PractitionerID)
		case models.RoleStaff:
			return q.Where("a.facility_id = ?", p.FacilityID)
		case models.RoleAdmin, models.RoleBilling:
			return q
		}
		return q.Where("false")
	}
}

type appointmentRow struct {
	models.Appointment
	PractitionerName string
	FacilityName     string
	TimeZone         string
	TypeName         string
	PaymentID        *uuid.UUID
	PaymentStatus    *string
	PaymentProvider  *string
}

func appointmentQuery(tx *gorm.DB, p Principal) *gorm.DB {
	return tx.Table("appointments a").
		Select("a.*, pr.display_name AS practitioner_name, f.name AS facility_name, f.time_zone, t.name AS type_name, " +
			"pay.id AS payment_id, pay.status AS payment_status, pay.provider AS payment_provider").
		Joins("JOIN practitioners pr ON pr.id = a.practitioner_id").
		Joins("JOIN facilities f ON f.id = a.facility_id").
		Joins("JOIN appointment_types t ON t.id = a.appointment_type_id").
		Joins("LEFT JOIN payments pay ON pay.appointment_id = a.id").
		Scopes(visible(p))
}

func (s *Server) view(p Principal, r appointmentRow) appointmentView {
	loc, err := time.LoadLocation(r.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	v := appointmentView{
		ID: r.ID.String(), Status: string(r.Status),
		Start: r.StartsAt.UTC(), End: r.EndsAt.UTC(),
		StartLocal: r.StartsAt.In(loc).Format(time.RFC3339), EndLocal: r.EndsAt.In(loc).Format(time.RFC3339),
		TimeZone: r.TimeZone, Mode: string(r.Mode), Price: moneyView{r.PriceMinor, r.Currency},
		PatientID: r.PatientID.String(), PractitionerID: r.PractitionerID.String(), Practitioner: r.PractitionerName,
		FacilityID: r.FacilityID.String(), Facility: r.FacilityName, TypeID: r.AppointmentTypeID.String(), Type: r.TypeName,
		Version: r.Version, CancelReason: r.CancelReason,
		WorkflowID: workflows.AppointmentWorkflowID(r.ID.String()),
		CreatedAt:  r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.PaymentID != nil {
		v.Payment = &paymentView{ID: r.PaymentID.String(), Status: deref(r.PaymentStatus), Provider: deref(r.PaymentProvider), Amount: v.Price}
	}
	// Operators follow the link to the workflow's history; patients have
	// no use for it.
	if p.Role != models.RolePatient {
		v.WorkflowURL = s.temporalLink(v.WorkflowID)
	}
	return v
}

// viewAppointment reads one appointment the caller may see.
func (s *Server) viewAppointment(c *gin.Context, id uuid.UUID) (appointmentView, error) {
	var row appointmentRow
	err := s.inTenant(c, func(tx *gorm.DB) error {
		return appointmentQuery(tx, principal(c)).Where("a.id = ?", id).Take(&row).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return appointmentView{}, notFound("appointment")
	}
	if err != nil {
		return appointmentView{}, internal(err)
	}
	return s.view(principal(c), row), nil
}

// getAppointment handles GET /v1/appointments/{id}. Another tenant's or
// another patient's appointment is 404, not 403: its existence is not ours
// to reveal.
func (s *Server) getAppointment(c *gin.Context) error {
	id, err := uuidParam(c, "appointment")
	if err != nil {
		return err
	}
	v, err := s.viewAppointment(c, id)
	if err != nil {
		return err
	}
	if err := s.auditAppointment(c, "read", id, uuid.MustParse(v.PatientID)); err != nil {
		return err
	}
	c.JSON(http.StatusOK, v)
	return nil
}

// listAppointments handles GET /v1/appointments?from=&to=&status=: the
// caller's appointments, by start, at most 200.
func (s *Server) listAppointments(c *gin.Context) error {
	p := principal(c)
	from, to, err := instantRange(c)
	if err != nil {
		return err
	}
	status := c.Query("status")
	if status != "" && !validStatus(status) {
		return badRequest("invalid-parameter", "status is not an appointment status.")
	}
	var rows []appointmentRow
	err = s.inTenant(c, func(tx *gorm.DB) error {
		q := appointmentQuery(tx, p).Order("a.starts_at, a.id").Limit(200)
		if !from.IsZero() {
			q = q.Where("a.ends_at > ?", from)
		}
		if !to.IsZero() {
			q = q.Where("a.starts_at < ?", to)
		}
		if status != "" {
			q = q.Where("a.status = ?", status)
		}
		if err := q.Scan(&rows).Error; err != nil {
			return err
		}
		return s.auditAppointmentList(c, tx, rows)
	})
	if err != nil {
		return internal(err)
	}
	out := make([]appointmentView, len(rows))
	for i, r := range rows {
		out[i] = s.view(p, r)
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

func validStatus(s string) bool {
	switch models.Status(s) {
	case models.StatusProposed, models.StatusPending, models.StatusHeld, models.StatusBooked,
		models.StatusArrived, models.StatusFulfilled, models.StatusCancelled, models.StatusNoShow:
		return true
	}
	return false
}

type cancelRequest struct {
	Reason string `json:"reason"`
}

// cancelAppointment handles POST /v1/appointments/{id}/cancel with a reason.
func (s *Server) cancelAppointment(c *gin.Context) error {
	var req cancelRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if req.Reason == "" || utf8.RuneCountInString(req.Reason) > 500 {
		return invalid("invalid-reason", "reason is required, at most 500 characters.")
	}
	p := principal(c)
	appt, err := s.openAppointment(c)
	if err != nil {
		return err
	}
	if p.Role == models.RolePatient && !s.Now().Before(appt.Start) {
		return conflict("too-late-to-cancel", "A visit that has started cannot be cancelled online; contact the clinic.")
	}
	// The person's words may say something about their health, and
	// workflow histories are readable by operators, so the workflow gets a
	// reason code and the text goes straight to the row.
	code := "requested-by-" + string(p.Role)
	if err := s.update(c, appt.ID, workflows.UpdateCancel, workflows.CancelRequest{Reason: code, By: string(p.Role), UserID: p.UserID.String()}); err != nil {
		return err
	}
	if err := s.auditAppointment(c, "cancel", uuid.MustParse(appt.ID), uuid.MustParse(appt.PatientID)); err != nil {
		return err
	}
	err = s.inTenant(c, func(tx *gorm.DB) error {
		return tx.Model(&models.Appointment{}).Where("id = ? AND status = ?", appt.ID, models.StatusCancelled).
			Update("cancel_reason", req.Reason).Error
	})
	if err != nil {
		return internal(err)
	}
	return s.respondAppointment(c, appt.ID)
}

type rescheduleRequest struct {
	Start time.Time `json:"start"`
}

// rescheduleAppointment handles POST /v1/appointments/{id}/reschedule: the
// new start must be a free slot of the same practitioner, facility and
// type; the old time stays held until the new one is.
func (s *Server) rescheduleAppointment(c *gin.Context) error {
	var req rescheduleRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.Start.IsZero() {
		return invalid("missing-start", "start is required, as an RFC 3339 instant.")
	}
	start := req.Start.UTC()
	p := principal(c)
	appt, err := s.openAppointment(c)
	if err != nil {
		return err
	}
	if start.Equal(appt.Start) {
		return invalid("unchanged", "The appointment already starts then.")
	}
	if p.Role == models.RolePatient && !s.Now().Before(appt.Start) {
		return conflict("too-late-to-reschedule", "A visit that has started cannot be moved online; contact the clinic.")
	}
	patientID := uuid.MustParse(appt.PatientID)
	var o offer
	err = s.inTenant(c, func(tx *gorm.DB) error {
		day := slots.DateOf(start)
		var err error
		o, err = loadOffer(tx, uuid.MustParse(appt.PractitionerID), uuid.MustParse(appt.FacilityID), uuid.MustParse(appt.TypeID),
			day.AddDays(-1), day.AddDays(2), s.Now(), uuid.MustParse(appt.ID))
		if err != nil {
			return err
		}
		return slotProblem(tx, o, patientID, start, s.Now())
	})
	if err != nil {
		return err
	}
	visit := o.Request.Blocked(start)
	err = s.update(c, appt.ID, workflows.UpdateReschedule, workflows.RescheduleRequest{
		StartsAt: start, EndsAt: start.Add(o.Request.Duration),
		BlockedFrom: visit.Start, BlockedUntil: visit.End,
		UserID: p.UserID.String(),
	})
	var taken *Problem
	if errors.As(err, &taken) && (taken.Type == "slot-taken" || taken.Type == "patient-busy") {
		// The constraint refused the new time after the check passed: a
		// race. Answer like a booking does, with times that are free now.
		who := workflows.ConflictPractitioner
		if taken.Type == "patient-busy" {
			who = workflows.ConflictPatient
		}
		return s.takenProblem(c, o, patientID, start, who)
	}
	if err != nil {
		return err
	}
	if err := s.auditAppointment(c, "reschedule", uuid.MustParse(appt.ID), patientID); err != nil {
		return err
	}
	return s.respondAppointment(c, appt.ID)
}

// checkInAppointment handles POST /v1/appointments/{id}/check-in (staff).
func (s *Server) checkInAppointment(c *gin.Context) error {
	appt, err := s.openAppointment(c)
	if err != nil {
		return err
	}
	if err := s.update(c, appt.ID, workflows.UpdateCheckIn, workflows.CheckInRequest{UserID: principal(c).UserID.String()}); err != nil {
		return err
	}
	if err := s.auditAppointment(c, "check-in", uuid.MustParse(appt.ID), uuid.MustParse(appt.PatientID)); err != nil {
		return err
	}
	return s.respondAppointment(c, appt.ID)
}

// openAppointment reads the :id appointment the caller may see.
func (s *Server) openAppointment(c *gin.Context) (appointmentView, error) {
	id, err := uuidParam(c, "appointment")
	if err != nil {
		return appointmentView{}, err
	}
	return s.viewAppointment(c, id)
}

// update sends an update to the appointment's workflow and waits for its
// outcome.
func (s *Server) update(c *gin.Context, id, name string, arg any) error {
	ctx, cancel := context.WithTimeout(c.Request.Context(), workflowWait)
	defer cancel()
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflows.AppointmentWorkflowID(id),
		UpdateName:   name,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err != nil {
		return workflowProblem(err)
	}
	return nil
}

// respondAppointment answers 200 with the appointment as it now is.
func (s *Server) respondAppointment(c *gin.Context, id string) error {
	v, err := s.viewAppointment(c, uuid.MustParse(id))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, v)
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func ptr[T any](v T) *T { return &v }

// instantRange reads the optional from and to query parameters, RFC 3339
// instants; zero when absent.
func instantRange(c *gin.Context) (from, to time.Time, err error) {
	if v := c.Query("from"); v != "" {
		if from, err = time.Parse(time.RFC3339, v); err != nil {
			return from, to, badRequest("invalid-parameter", "from must be an RFC 3339 instant.")
		}
	}
	if v := c.Query("to"); v != "" {
		if to, err = time.Parse(time.RFC3339, v); err != nil {
			return from, to, badRequest("invalid-parameter", "to must be an RFC 3339 instant.")
		}
	}
	return from, to, nil
}
