package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
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
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/slots"
	"github.com/carebook/carebook/workflows"
)

// Limits of the billing lists. A page of payments is what a person scans;
// the date ranges bound the sums Postgres does for one request.
const (
	paymentsDefaultLimit = 100
	paymentsMaxLimit     = 500
	discrepanciesLimit   = 500
	totalsDefaultDays    = 30
	totalsMaxDays        = 366
)

// sagaWait bounds how long a payment's timeline waits for Temporal. The
// timeline is a read and its rows are the record; a slow or absent worker
// only costs the saga's own steps, never the whole answer.
const sagaWait = 5 * time.Second

// paymentRow is a row of payments as billing staff read it.
type paymentRow = models.Payment

// billingPaymentView is one payment in the billing API. Money is in minor
// units with its currency; captured includes fees kept (fee says how much).
type billingPaymentView struct {
	ID               string     `json:"id"`
	Status           string     `json:"status"`
	Provider         string     `json:"provider"`
	ProviderIntentID string     `json:"provider_intent_id,omitempty"`
	Amount           moneyView  `json:"amount"`
	Captured         moneyView  `json:"captured"`
	Refunded         moneyView  `json:"refunded"`
	Fee              moneyView  `json:"fee"`
	AppointmentID    string     `json:"appointment_id"`
	PatientID        string     `json:"patient_id"`
	PractitionerID   string     `json:"practitioner_id"`
	FailureCode      string     `json:"failure_code,omitempty"`
	HoldExpiresAt    *time.Time `json:"hold_expires_at,omitempty"`
	WorkflowID       string     `json:"workflow_id"`
	WorkflowURL      string     `json:"workflow_url,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
}

func (s *Server) billingPayment(r paymentRow) billingPaymentView {
	v := billingPaymentView{
		ID: r.ID.String(), Status: r.Status, Provider: r.Provider, ProviderIntentID: deref(r.ProviderIntentID),
		Amount:        moneyView{r.AmountMinor, r.Currency},
		Captured:      moneyView{r.CapturedMinor, r.Currency},
		Refunded:      moneyView{r.RefundedMinor, r.Currency},
		Fee:           moneyView{r.FeeMinor, r.Currency},
		AppointmentID: r.AppointmentID.String(), PatientID: r.PatientID.String(), PractitionerID: r.PractitionerID.String(),
		FailureCode: r.FailureCode,
		WorkflowID:  workflows.PaymentWorkflowID(r.ID.String()),
		CreatedAt:   r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.HoldExpiresAt != nil {
		v.HoldExpiresAt = ptr(r.HoldExpiresAt.UTC())
	}
	v.WorkflowURL = s.temporalLink(v.WorkflowID)
	return v
}

// temporalLink is the Temporal web UI's page of a workflow, or "" when no
// UI is configured.
func (s *Server) temporalLink(workflowID string) string {
	if s.TemporalUIURL == "" {
		return ""
	}
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s",
		strings.TrimRight(s.TemporalUIURL, "/"), url.PathEscape(s.Namespace), url.PathEscape(workflowID))
}

// listPayments handles GET /v1/payments?status=&from=&to=&patient_id=&practitioner_id=&limit=
// (billing, admin): the tenant's payments, newest first. from and to bound
// created_at: an RFC 3339 instant, or a date in the tenant's zone (a to
// date includes its whole day).
func (s *Server) listPayments(c *gin.Context) error {
	status := c.Query("status")
	if status != "" && !validPaymentStatus(status) {
		return badRequest("invalid-parameter", "status is not a payment status.")
	}
	patientID, err := optionalUUIDQuery(c, "patient_id")
	if err != nil {
		return err
	}
	practitionerID, err := optionalUUIDQuery(c, "practitioner_id")
	if err != nil {
		return err
	}
	limit := paymentsDefaultLimit
	if v := c.Query("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > paymentsMaxLimit {
			return badRequest("invalid-parameter", fmt.Sprintf("limit must be 1 to %d.", paymentsMaxLimit))
		}
	}
	var rows []paymentRow
	err = s.inTenant(c, func(tx *gorm.DB) error {
		loc, _, err := tenantZone(tx)
		if err != nil {
			return err
		}
		from, err := instantOrDay(c.Query("from"), loc, false)
		if err != nil {
			return badRequest("invalid-parameter", "from must be an RFC 3339 instant or YYYY-MM-DD.")
		}
		to, err := instantOrDay(c.Query("to"), loc, true)
		if err != nil {
			return badRequest("invalid-parameter", "to must be an RFC 3339 instant or YYYY-MM-DD.")
		}
		q := tx.Table("payments").Order("created_at DESC, id DESC").Limit(limit)
		if status != "" {
			q = q.Where("status = ?", status)
		}
		if !from.IsZero() {
			q = q.Where("created_at >= ?", from)
		}
		if !to.IsZero() {
			q = q.Where("created_at < ?", to)
		}
		if patientID != uuid.Nil {
			q = q.Where("patient_id = ?", patientID)
		}
		if practitionerID != uuid.Nil {
			q = q.Where("practitioner_id = ?", practitionerID)
		}
		if err := q.Scan(&rows).Error; err != nil {
			return internal(err)
		}
		// A payment is the patient's too (who paid for which visit): one
		// event per patient the page shows, in the read's transaction.
		patients := make([]uuid.UUID, len(rows))
		for i, r := range rows {
			patients[i] = r.PatientID
		}
		return s.auditListed(c, tx, "payment", patients)
	})
	if err != nil {
		return err
	}
	out := make([]billingPaymentView, len(rows))
	for i, r := range rows {
		out[i] = s.billingPayment(r)
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

func validPaymentStatus(s string) bool {
	switch s {
	case workflows.PaymentRequiresPayment, workflows.PaymentAuthorized, workflows.PaymentCaptured, workflows.PaymentVoided,
		workflows.PaymentFailed, workflows.PaymentExpired, workflows.PaymentRefunded, workflows.PaymentPartiallyRefunded:
		return true
	}
	return false
}

// tenantZone is the zone billing days are counted in (models.TenantZone,
// the same rule as the nightly settlement), loaded.
func tenantZone(tx *gorm.DB) (*time.Location, string, error) {
	name, err := models.TenantZone(tx)
	if err != nil {
		return nil, "", internal(err)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, "", internal(err)
	}
	return loc, name, nil
}

// instantOrDay parses an RFC 3339 instant, or a date that starts at its
// midnight in loc; for the end of a range (end) a date means the midnight
// after it, so the day is included. "" is the zero time: no bound.
func instantOrDay(v string, loc *time.Location, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := parseDay(v)
	if err != nil {
		return time.Time{}, err
	}
	if end {
		d = d.AddDays(1)
	}
	return d.In(loc, 0), nil
}

// loadPayment reads one payment of the caller's tenant; another tenant's
// is not found, as RLS leaves it out.
func (s *Server) loadPayment(c *gin.Context, id uuid.UUID) (paymentRow, error) {
	var row paymentRow
	err := s.inTenant(c, func(tx *gorm.DB) error {
		return tx.Table("payments").Where("id = ?", id).Take(&row).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return row, notFound("payment")
	}
	if err != nil {
		return row, internal(err)
	}
	return row, nil
}

type ledgerEntryView struct {
	ID        string        `json:"id"`
	Key       string        `json:"key"`
	Kind      string        `json:"kind"`
	Memo      string        `json:"memo,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	Postings  []postingView `json:"postings"`
}

// postingView is one line of an entry: debits positive, credits negative.
type postingView struct {
	Account string    `json:"account"`
	Amount  moneyView `json:"amount"`
}

// webhookEventView is a stored provider event without its payload: the
// payload is the provider's and may carry card and billing details that
// billing staff do not need to see here.
type webhookEventView struct {
	ID       string     `json:"id"`
	Type     string     `json:"type"`
	ObjectID string     `json:"object_id,omitempty"`
	Created  time.Time  `json:"created"`
	Received time.Time  `json:"received"`
	Routed   *time.Time `json:"routed,omitempty"`
}

type refundView struct {
	ID               string    `json:"id"`
	Amount           moneyView `json:"amount"`
	Status           string    `json:"status"`
	Reason           string    `json:"reason"`
	RequestedBy      string    `json:"requested_by,omitempty"`
	ProviderRefundID string    `json:"provider_refund_id,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
}

// sagaView is what Temporal says of the payment's saga. Execution is the
// workflow's state (running, completed, terminated...), "gone" when
// Temporal no longer keeps it (or never had it), or "unavailable" when it
// could not be asked; the rest of the timeline answers either way.
type sagaView struct {
	WorkflowID  string     `json:"workflow_id"`
	WorkflowURL string     `json:"workflow_url,omitempty"`
	Execution   string     `json:"execution"`
	Status      string     `json:"status,omitempty"`
	Steps       []sagaStep `json:"steps"`
	Note        string     `json:"note,omitempty"`
}

type sagaStep struct {
	At   *time.Time `json:"at,omitempty"`
	What string     `json:"what"`
}

type paymentTimeline struct {
	Payment       billingPaymentView `json:"payment"`
	Ledger        []ledgerEntryView  `json:"ledger"`
	WebhookEvents []webhookEventView `json:"webhook_events"`
	Refunds       []refundView       `json:"refunds"`
	Saga          sagaView           `json:"saga"`
}

// getPayment handles GET /v1/payments/{id} (billing, admin): the payment's
// whole story, from the rows (ledger entries with their postings, webhook
// events, refunds) and from its saga (the steps it took).
func (s *Server) getPayment(c *gin.Context) error {
	id, err := uuidParam(c, "payment")
	if err != nil {
		return err
	}
	var (
		row     paymentRow
		entries []struct {
			ID        uuid.UUID
			Key       string
			Kind      string
			Memo      string
			CreatedAt time.Time
		}
		postings []struct {
			EntryID     uuid.UUID
			Account     string
			AmountMinor int64
			Currency    string
		}
		events  []webhookEvent
		refunds []models.Refund
	)
	err = s.inTenant(c, func(tx *gorm.DB) error {
		if err := tx.Table("payments").Where("id = ?", id).Take(&row).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return notFound("payment")
			}
			return internal(err)
		}
		if err := tx.Table("ledger_entries").Select("id, key, kind, memo, created_at").
			Where("payment_id = ?", id).Order("created_at, key").Scan(&entries).Error; err != nil {
			return internal(err)
		}
		if err := tx.Table("ledger_postings p").Select("p.entry_id, p.account, p.amount_minor, p.currency").
			Joins("JOIN ledger_entries e ON e.id = p.entry_id AND e.tenant_id = p.tenant_id").
			Where("e.payment_id = ?", id).Order("p.id").Scan(&postings).Error; err != nil {
			return internal(err)
		}
		if err := tx.Select("event_id, type, object_id, created_at, received_at, routed_at").
			Where("payment_id = ?", id).Order("created_at, received_at, event_id").Find(&events).Error; err != nil {
			return internal(err)
		}
		if err := tx.Where("payment_id = ?", id).Order("created_at, id").Find(&refunds).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "read", "payment", &id, &row.PatientID, "")
	})
	if err != nil {
		return err
	}

	out := paymentTimeline{
		Payment:       s.billingPayment(row),
		Ledger:        make([]ledgerEntryView, len(entries)),
		WebhookEvents: make([]webhookEventView, len(events)),
		Refunds:       make([]refundView, len(refunds)),
	}
	byEntry := map[uuid.UUID][]postingView{}
	for _, p := range postings {
		byEntry[p.EntryID] = append(byEntry[p.EntryID], postingView{Account: p.Account, Amount: moneyView{p.AmountMinor, p.Currency}})
	}
	for i, e := range entries {
		out.Ledger[i] = ledgerEntryView{ID: e.ID.String(), Key: e.Key, Kind: e.Kind, Memo: e.Memo,
			CreatedAt: e.CreatedAt.UTC(), Postings: byEntry[e.ID]}
	}
	for i, e := range events {
		v := webhookEventView{ID: e.EventID, Type: e.Type, ObjectID: e.ObjectID, Created: e.CreatedAt.UTC(), Received: e.ReceivedAt.UTC()}
		if e.RoutedAt != nil {
			v.Routed = ptr(e.RoutedAt.UTC())
		}
		out.WebhookEvents[i] = v
	}
	for i, r := range refunds {
		out.Refunds[i] = refundView{ID: r.ID.String(), Amount: moneyView{r.AmountMinor, r.Currency}, Status: r.Status,
			Reason: r.Reason, RequestedBy: optionalString(r.RequestedBy), ProviderRefundID: deref(r.ProviderRefundID),
			CreatedAt: r.CreatedAt.UTC()}
	}
	out.Saga = s.sagaOf(c, row.ID)
	c.JSON(http.StatusOK, out)
	return nil
}

// sagaOf asks Temporal about a payment's saga. It never fails: what it
// could not learn, it says.
func (s *Server) sagaOf(c *gin.Context, paymentID uuid.UUID) sagaView {
	wid := workflows.PaymentWorkflowID(paymentID.String())
	v := sagaView{WorkflowID: wid, WorkflowURL: s.temporalLink(wid), Steps: []sagaStep{}}
	ctx, cancel := context.WithTimeout(c.Request.Context(), sagaWait)
	defer cancel()

	var gone *serviceerror.NotFound
	desc, err := s.Temporal.DescribeWorkflowExecution(ctx, wid, "")
	if errors.As(err, &gone) {
		v.Execution, v.WorkflowURL = "gone", ""
		v.Note = "Temporal no longer keeps this payment's workflow; the ledger, events and refunds here are the record."
		return v
	}
	if err != nil {
		s.Logger.WarnContext(c.Request.Context(), "payment saga not described",
			"paymentID", paymentID.String(), "error", err)
		v.Execution = "unavailable"
		v.Note = "The workflow service did not answer; the saga's steps are missing from this answer."
		return v
	}
	v.Execution = executionStatus(desc.GetWorkflowExecutionInfo().GetStatus())

	res, err := s.Temporal.QueryWorkflow(ctx, wid, "", workflows.QueryPayment)
	var state workflows.PaymentState
	if err == nil {
		err = res.Get(&state)
	}
	if err != nil {
		// A closed saga is answered by replaying its history on a worker;
		// with none running, the steps are all that is missing.
		s.Logger.WarnContext(c.Request.Context(), "payment saga not queried",
			"paymentID", paymentID.String(), "error", err)
		v.Note = "The saga did not answer its query; follow the link for its history."
		return v
	}
	v.Status = state.Status
	for _, st := range state.Steps {
		v.Steps = append(v.Steps, parseStep(st))
	}
	return v
}

// parseStep splits the saga's "<RFC 3339> <what>" step notes.
func parseStep(s string) sagaStep {
	at, what, ok := strings.Cut(s, " ")
	if ok {
		if t, err := time.Parse(time.RFC3339, at); err == nil {
			return sagaStep{At: &t, What: what}
		}
	}
	return sagaStep{What: s}
}

func executionStatus(st enumspb.WorkflowExecutionStatus) string {
	switch st {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "running"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "completed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "failed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "canceled"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "terminated"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return "continued_as_new"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "timed_out"
	}
	return "unknown"
}

type refundRequest struct {
	AmountMinor int64  `json:"amount_minor"`
	Reason      string `json:"reason"`
}

// refundPayment handles POST /v1/payments/{id}/refund (billing, admin): a
// refund of part or all of what is left, through the payment's saga, which
// serialises it with its own money steps and refuses more than is left
// (422 refund-too-large). A saga that has closed takes no refunds (409).
// An Idempotency-Key makes a retry reach the same refund: the key derives
// the update's ID, and Temporal runs an update ID once.
func (s *Server) refundPayment(c *gin.Context) error {
	var req refundRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	id, err := uuidParam(c, "payment")
	if err != nil {
		return err
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if req.AmountMinor <= 0 {
		return invalid("invalid-amount", "amount_minor must be a positive number of minor units.")
	}
	if req.Reason == "" || utf8.RuneCountInString(req.Reason) > 500 {
		return invalid("invalid-reason", "reason is required, at most 500 characters.")
	}
	return s.idempotent(c, func(updateID uuid.UUID) error { return s.refund(c, id, req, updateID) })
}

func (s *Server) refund(c *gin.Context, id uuid.UUID, req refundRequest, updateID uuid.UUID) error {
	pay, err := s.loadPayment(c, id)
	if err != nil {
		return err
	}
	// The request is recorded before it is made: the audit log holds every
	// refund asked for, including one the saga then refuses.
	if err := s.inTenant(c, func(tx *gorm.DB) error {
		return s.audit(c, tx, "request-refund", "payment", &id, &pay.PatientID, req.Reason)
	}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), workflowWait)
	defer cancel()
	// The reason travels in the update because the saga's refund activity
	// records it on the refund row, with the user as requested_by; it is
	// therefore in the workflow history too, which operators can read.
	// Unlike a patient's cancel reason it is written by billing staff.
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.PaymentWorkflowID(id.String()),
		UpdateID:   updateID.String(),
		UpdateName: workflows.UpdateRefund,
		Args: []any{workflows.BillingRefund{
			AmountMinor: req.AmountMinor,
			Reason:      req.Reason,
			UserID:      principal(c).UserID.String(),
		}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var state workflows.PaymentState
	if err == nil {
		err = h.Get(ctx, &state)
	}
	after, lerr := s.loadPayment(c, id)
	if err != nil {
		p := refundProblem(err)
		if p.Type == "refund-too-large" && lerr == nil {
			p = p.with("refundable", moneyView{after.CapturedMinor - after.RefundedMinor, after.Currency})
		}
		return p
	}
	if lerr != nil {
		return lerr
	}
	c.JSON(http.StatusOK, s.billingPayment(after))
	return nil
}

// refundProblem maps a failed refund update to a Problem.
func refundProblem(err error) *Problem {
	var p *Problem
	var appErr *temporal.ApplicationError
	var gone *serviceerror.NotFound
	var unav *serviceerror.Unavailable
	switch {
	case errors.As(err, &appErr) && appErr.Type() == workflows.ErrTypeRefundTooLarge:
		p = invalid("refund-too-large", "The amount is more than is left to refund on this payment.")
	case errors.As(err, &appErr) && (appErr.Type() == workflows.ErrTypeProviderReject || appErr.Type() == workflows.ErrTypeDeclined):
		p = conflict("refund-refused", "The payment provider refused this refund; the payment's timeline shows the step.")
	case errors.As(err, &appErr) && appErr.Type() == workflows.ErrTypeNotFound:
		p = notFound("payment")
	case errors.As(err, &gone):
		// The saga has finished (its refund window is over) or was never
		// started: no refund can go through it.
		p = conflict("payment-closed", "This payment's saga has closed and takes no more refunds.")
	case errors.As(err, &unav):
		return unavailable(err)
	default:
		return internal(err)
	}
	p.Err = err
	return p
}

type totalsRow struct {
	Day          string
	Currency     string
	Captured     int64
	Refunded     int64
	Fees         int64
	ProviderFees int64
	PaidOut      int64
	Payments     int64
}

// dailyTotalView is one day's money in one currency, in minor units. Net
// is what the clinic keeps: captured + fees − refunded − provider_fees.
type dailyTotalView struct {
	Day          string `json:"day"`
	Currency     string `json:"currency"`
	Captured     int64  `json:"captured_minor"`
	Refunded     int64  `json:"refunded_minor"`
	Fees         int64  `json:"fees_minor"`
	ProviderFees int64  `json:"provider_fees_minor"`
	Net          int64  `json:"net_minor"`
	PaidOut      int64  `json:"paid_out_minor"`
	Payments     int64  `json:"payments"`
}

// dailyTotals handles GET /v1/billing/daily-totals?from=&to= (billing,
// admin): per day of the tenant's zone and currency, sums of the ledger's
// postings (balances are derived, never stored). from and to are dates,
// both included; the default is the last 30 days. payments counts the
// payments with a ledger entry that day.
func (s *Server) dailyTotals(c *gin.Context) error {
	var (
		rows     []totalsRow
		zone     string
		from, to slots.Date
	)
	err := s.inTenant(c, func(tx *gorm.DB) error {
		loc, name, err := tenantZone(tx)
		if err != nil {
			return err
		}
		zone = name
		to = slots.DateOf(s.Now().In(loc))
		if v := c.Query("to"); v != "" {
			if to, err = parseDay(v); err != nil {
				return badRequest("invalid-parameter", "to must be YYYY-MM-DD.")
			}
		}
		from = to.AddDays(1 - totalsDefaultDays)
		if v := c.Query("from"); v != "" {
			if from, err = parseDay(v); err != nil {
				return badRequest("invalid-parameter", "from must be YYYY-MM-DD.")
			}
		}
		if to.Before(from) || from.AddDays(totalsMaxDays).Before(to.AddDays(1)) {
			return invalid("invalid-range", fmt.Sprintf("from must not be after to, and the range at most %d days.", totalsMaxDays))
		}
		// Debits are positive: income accounts (clinic_revenue, fees) hold
		// credits, so their sums are negated.
		err = tx.Raw(`
			SELECT to_char((e.created_at AT TIME ZONE @zone)::date, 'YYYY-MM-DD') AS day,
			       p.currency,
			       COALESCE(-SUM(p.amount_minor) FILTER (WHERE p.account = 'clinic_revenue'), 0) AS captured,
			       COALESCE(SUM(p.amount_minor) FILTER (WHERE p.account = 'refunds'), 0) AS refunded,
			       COALESCE(-SUM(p.amount_minor) FILTER (WHERE p.account = 'fees'), 0) AS fees,
			       COALESCE(SUM(p.amount_minor) FILTER (WHERE p.account = 'provider_fees'), 0) AS provider_fees,
			       COALESCE(SUM(p.amount_minor) FILTER (WHERE p.account = 'payouts'), 0) AS paid_out,
			       COUNT(DISTINCT e.payment_id) AS payments
			FROM ledger_entries e
			JOIN ledger_postings p ON p.entry_id = e.id AND p.tenant_id = e.tenant_id
			WHERE e.created_at >= @from AND e.created_at < @to
			GROUP BY 1, 2
			ORDER BY 1, 2`,
			map[string]any{"zone": name, "from": from.In(loc, 0), "to": to.AddDays(1).In(loc, 0)}).Scan(&rows).Error
		if err != nil {
			return internal(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	out := make([]dailyTotalView, len(rows))
	for i, r := range rows {
		out[i] = dailyTotalView{Day: r.Day, Currency: r.Currency, Captured: r.Captured, Refunded: r.Refunded, Fees: r.Fees,
			ProviderFees: r.ProviderFees, PaidOut: r.PaidOut, Payments: r.Payments,
			Net: r.Captured + r.Fees - r.Refunded - r.ProviderFees}
	}
	c.JSON(http.StatusOK, gin.H{"time_zone": zone, "from": from.String(), "to": to.String(), "items": out})
	return nil
}

// discrepancyRow is a row of discrepancies.
type discrepancyRow struct {
	ID             uuid.UUID
	Day            time.Time
	Kind           string
	PaymentID      *uuid.UUID
	ProviderObject string
	LedgerKey      string
	ExpectedMinor  *int64
	ActualMinor    *int64
	Currency       string
	Status         string
	ResolutionNote string
	ResolvedBy     *uuid.UUID
	ResolvedAt     *time.Time
	CreatedAt      time.Time
}

type discrepancyView struct {
	ID             string     `json:"id"`
	Day            string     `json:"day"`
	Kind           string     `json:"kind"`
	PaymentID      string     `json:"payment_id,omitempty"`
	ProviderObject string     `json:"provider_object,omitempty"`
	LedgerKey      string     `json:"ledger_key,omitempty"`
	Expected       *moneyView `json:"expected,omitempty"`
	Actual         *moneyView `json:"actual,omitempty"`
	Status         string     `json:"status"`
	ResolutionNote string     `json:"resolution_note,omitempty"`
	ResolvedBy     string     `json:"resolved_by,omitempty"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
}

func viewDiscrepancy(r discrepancyRow) discrepancyView {
	v := discrepancyView{ID: r.ID.String(), Day: r.Day.Format(time.DateOnly), Kind: r.Kind, PaymentID: optionalString(r.PaymentID),
		ProviderObject: r.ProviderObject, LedgerKey: r.LedgerKey, Status: r.Status, ResolutionNote: r.ResolutionNote,
		ResolvedBy: optionalString(r.ResolvedBy), CreatedAt: r.CreatedAt.UTC()}
	if r.ExpectedMinor != nil {
		v.Expected = &moneyView{*r.ExpectedMinor, r.Currency}
	}
	if r.ActualMinor != nil {
		v.Actual = &moneyView{*r.ActualMinor, r.Currency}
	}
	if r.ResolvedAt != nil {
		v.ResolvedAt = ptr(r.ResolvedAt.UTC())
	}
	return v
}

// listDiscrepancies handles GET /v1/discrepancies?status=open|resolved&from=&to=
// (billing, admin): mismatches found by settlement, latest day first, at
// most 500. from and to are settlement days, both included.
func (s *Server) listDiscrepancies(c *gin.Context) error {
	status := c.Query("status")
	if status != "" && status != "open" && status != "resolved" {
		return badRequest("invalid-parameter", "status must be open or resolved.")
	}
	var from, to slots.Date
	var err error
	if v := c.Query("from"); v != "" {
		if from, err = parseDay(v); err != nil {
			return badRequest("invalid-parameter", "from must be YYYY-MM-DD.")
		}
	}
	if v := c.Query("to"); v != "" {
		if to, err = parseDay(v); err != nil {
			return badRequest("invalid-parameter", "to must be YYYY-MM-DD.")
		}
	}
	var rows []discrepancyRow
	err = s.inTenant(c, func(tx *gorm.DB) error {
		q := tx.Table("discrepancies").Order("day DESC, created_at DESC, id").Limit(discrepanciesLimit)
		if status != "" {
			q = q.Where("status = ?", status)
		}
		if !from.IsZero() {
			q = q.Where("day >= ?", from.String())
		}
		if !to.IsZero() {
			q = q.Where("day <= ?", to.String())
		}
		return q.Scan(&rows).Error
	})
	if err != nil {
		return internal(err)
	}
	out := make([]discrepancyView, len(rows))
	for i, r := range rows {
		out[i] = viewDiscrepancy(r)
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

type resolveRequest struct {
	Note string `json:"note"`
}

// resolveDiscrepancy handles POST /v1/discrepancies/{id}/resolve (billing,
// admin) with a note saying what was found or done. A discrepancy is
// resolved once; a second attempt is 409, so two people working the same
// item learn that someone was first.
func (s *Server) resolveDiscrepancy(c *gin.Context) error {
	var req resolveRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	id, err := uuidParam(c, "discrepancy")
	if err != nil {
		return err
	}
	req.Note = strings.TrimSpace(req.Note)
	if req.Note == "" || utf8.RuneCountInString(req.Note) > 2000 {
		return invalid("invalid-note", "note is required, at most 2000 characters.")
	}
	var row discrepancyRow
	err = s.inTenant(c, func(tx *gorm.DB) error {
		q := tx.Table("discrepancies").Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id)
		if err := q.Take(&row).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return notFound("discrepancy")
			}
			return internal(err)
		}
		if row.Status == "resolved" {
			return conflict("already-resolved", "This discrepancy has been resolved already.")
		}
		if err := s.audit(c, tx, "resolve", "discrepancy", &id, nil, ""); err != nil {
			return err
		}
		err := tx.Table("discrepancies").Where("id = ?", id).Updates(map[string]any{
			"status": "resolved", "resolution_note": req.Note,
			"resolved_by": principal(c).UserID, "resolved_at": s.Now().UTC(),
		}).Error
		if err == nil {
			err = tx.Table("discrepancies").Where("id = ?", id).Take(&row).Error
		}
		if err != nil {
			return internal(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, viewDiscrepancy(row))
	return nil
}
