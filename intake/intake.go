// Package intake receives lab messages from every transport (MLLP and
// HTTP) the same way: it finds the lab partner and so the tenant, keeps the
// raw bytes in the object store, records the message once per sender's
// message ID, and starts its LabIngestion workflow. Only then does it
// answer, so an acknowledged message is never lost: the workflow picks it
// up even if every worker is down at the time.
package intake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/carebook/carebook/hl7"
	"github.com/carebook/carebook/labs"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/workflows"
)

// Intake holds what receiving needs.
type Intake struct {
	DB       *gorm.DB
	Store    *objstore.Store
	Temporal client.Client
	// MLLPPartner, when set, dedicates the MLLP listener to one partner:
	// a message whose facilities match no partner's route is that
	// partner's (a per-tenant listener, for labs whose MSH-4 names no
	// facility). Without it such a message is refused.
	MLLPPartner *Partner
}

// Partner is an authenticated or routed lab partner.
type Partner struct {
	ID       uuid.UUID
	TenantID uuid.UUID
}

// Transports.
const (
	TransportMLLP = "mllp"
	TransportHTTP = "http"
)

// Status is how a message was taken.
type Status int

// The statuses, with the HL7 acknowledgment each gives.
const (
	// Accepted (AA): stored, recorded, its workflow started.
	Accepted Status = iota
	// Invalid (AE): stored and recorded, but its content cannot be
	// trusted; Reason says where. The workflow records the rejection, and
	// a resend gets the same answer.
	Invalid
	// Refused (AR): not taken at all: an unknown sender, a message type
	// Carebook does not take, a header that cannot be read, or a message ID
	// already used for different content.
	Refused
	// Unavailable (AR, code 207): a dependency failed; send it again.
	Unavailable
)

// Result is the outcome of receiving one message.
type Result struct {
	Status Status
	// Reason explains Invalid and Refused for the sender; it names fields,
	// never values.
	Reason string
	// Cause is the parse error behind Invalid or Refused, when there is one.
	Cause error
	// Code is the HL7 error code (table 0357) of a refusal without a
	// parse error behind it.
	Code hl7.ErrorCode
	// Message is the recorded message (zero unless Accepted or Invalid).
	Message models.LabMessage
	// Duplicate is set when the message ID was already recorded with the
	// same bytes: nothing new was created.
	Duplicate bool
	// Err is the failure behind Unavailable, for the log.
	Err error
}

// ErrUnknownPartner is an API key or route that matches no active partner.
var ErrUnknownPartner = errors.New("intake: unknown lab partner")

// PartnerByKey authenticates an HTTP lab partner's API key, written
// "<key id>.<secret>".
func (in *Intake) PartnerByKey(ctx context.Context, apiKey string) (Partner, error) {
	keyID, secret, ok := strings.Cut(apiKey, ".")
	if !ok || keyID == "" || secret == "" || len(apiKey) > 200 {
		return Partner{}, ErrUnknownPartner
	}
	var row struct {
		PartnerID uuid.UUID
		TenantID  uuid.UUID
		KeyHash   []byte
	}
	res := in.DB.WithContext(ctx).Raw("SELECT partner_id, tenant_id, key_hash FROM lab_partner_by_key(?)", keyID).Scan(&row)
	if res.Error != nil {
		return Partner{}, fmt.Errorf("look up lab partner: %w", res.Error)
	}
	sum := sha256.Sum256([]byte(secret))
	if res.RowsAffected == 0 || subtle.ConstantTimeCompare(sum[:], row.KeyHash) != 1 {
		return Partner{}, ErrUnknownPartner
	}
	return Partner{ID: row.PartnerID, TenantID: row.TenantID}, nil
}

// PartnerByKeyID finds an active partner by the public part of its key,
// for configuration that names a partner (CAREBOOK_MLLP_PARTNER).
func (in *Intake) PartnerByKeyID(ctx context.Context, keyID string) (Partner, error) {
	var row struct {
		PartnerID uuid.UUID
		TenantID  uuid.UUID
	}
	res := in.DB.WithContext(ctx).Raw("SELECT partner_id, tenant_id FROM lab_partner_by_key(?)", keyID).Scan(&row)
	if res.Error != nil {
		return Partner{}, fmt.Errorf("look up lab partner: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return Partner{}, ErrUnknownPartner
	}
	return Partner{ID: row.PartnerID, TenantID: row.TenantID}, nil
}

// PartnerByFacility routes an MLLP message by its sending facility (MSH-4)
// and receiving facility (MSH-6), as labs.FacilityKey writes them.
func (in *Intake) PartnerByFacility(ctx context.Context, sending, receiving string) (Partner, error) {
	if sending == "" {
		return Partner{}, ErrUnknownPartner
	}
	var row struct {
		PartnerID uuid.UUID
		TenantID  uuid.UUID
	}
	res := in.DB.WithContext(ctx).Raw("SELECT partner_id, tenant_id FROM lab_partner_by_facility(?, ?)", sending, receiving).Scan(&row)
	if res.Error != nil {
		return Partner{}, fmt.Errorf("route lab message: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return Partner{}, ErrUnknownPartner
	}
	return Partner{ID: row.PartnerID, TenantID: row.TenantID}, nil
}

// HL7 receives an HL7 v2 message. With partner nil (MLLP), the partner is
// found from the message's facilities; an HTTP partner is already known
// from its key. m is the parsed message when its structure could be read,
// for building the ACK.
func (in *Intake) HL7(ctx context.Context, partner *Partner, transport string, raw []byte) (Result, *hl7.Message) {
	m, err := hl7.Parse(raw)
	if err != nil {
		reason, _ := labs.Rejection(err)
		return Result{Status: Refused, Reason: reason, Cause: err}, nil
	}
	if m.Type.Code != "ORU" || m.Type.Event != "R01" {
		return Result{Status: Refused, Reason: "MSH-9: only ORU^R01 result messages are taken",
			Cause: &hl7.ParseError{Segment: "MSH", Field: 9, Line: 1, Reason: "MSH-9: only ORU^R01 result messages are taken"}}, m
	}
	if m.ControlID == "" {
		return Result{Status: Refused, Reason: "MSH-10: the message control ID is empty",
			Cause: &hl7.ParseError{Segment: "MSH", Field: 10, Line: 1, Reason: "MSH-10: the message control ID is empty"}}, m
	}
	if partner == nil {
		sending, receiving := labs.FacilityKey(m.SendingFacility), labs.FacilityKey(m.ReceivingFacility)
		if !cleanText(sending) || !cleanText(receiving) {
			return Result{Status: Refused, Reason: "MSH-4/MSH-6: the facility is not UTF-8 text or holds control characters",
				Code: hl7.DataTypeError}, m
		}
		p, err := in.PartnerByFacility(ctx, sending, receiving)
		if errors.Is(err, ErrUnknownPartner) && in.MLLPPartner != nil {
			p, err = *in.MLLPPartner, nil
		}
		if errors.Is(err, ErrUnknownPartner) {
			return Result{Status: Refused, Reason: "MSH-4: the sending facility is not a known lab partner",
				Code: hl7.TableValueNotFound}, m
		}
		if err != nil {
			return Result{Status: Unavailable, Err: err}, m
		}
		partner = &p
	}
	// The whole message is read now, so the sender hears at once whether
	// its content can be trusted; the workflow reads it again from the
	// stored bytes and comes to the same answer.
	var reason string
	var cause error
	if _, err := labs.Decode(labs.FormatHL7v2, raw); err != nil {
		r, ok := labs.Rejection(err)
		if !ok {
			return Result{Status: Unavailable, Err: err}, m
		}
		reason, cause = r, err
	}
	return in.receive(ctx, *partner, labs.FormatHL7v2, transport, m.ControlID, raw, "application/hl7-v2", reason, cause), m
}

// FHIR receives a FHIR R4 Bundle or DiagnosticReport from an HTTP partner.
func (in *Intake) FHIR(ctx context.Context, partner Partner, raw []byte) Result {
	msg, err := labs.ParseFHIR(raw)
	if err != nil {
		reason, ok := labs.Rejection(err)
		if !ok {
			return Result{Status: Unavailable, Err: err}
		}
		id := labs.FHIRResourceID(raw)
		if id == "" {
			// Without an ID the message cannot be recorded once, so it
			// is refused rather than kept.
			return Result{Status: Refused, Reason: reason, Cause: err}
		}
		return in.receive(ctx, partner, labs.FormatFHIR, TransportHTTP, id, raw, "application/fhir+json", reason, err)
	}
	return in.receive(ctx, partner, labs.FormatFHIR, TransportHTTP, msg.ID, raw, "application/fhir+json", "", nil)
}

// maxMessageID bounds a sender's message ID; MSH-10 is 199 characters at
// most in v2.5.1.
const maxMessageID = 200

func (in *Intake) receive(ctx context.Context, p Partner, format labs.Format, transport, messageID string, raw []byte,
	contentType, reason string, cause error) Result {
	if len(messageID) > maxMessageID || !printable(messageID) {
		return Result{Status: Refused, Reason: "the message ID is longer than 200 characters, is not UTF-8 text or holds control characters",
			Code: hl7.DataTypeError}
	}
	// Resends are recognised by their content, trailing line ends and
	// blanks aside: a file sent over HTTP and the same message framed for
	// MLLP differ only there. The stored object keeps the bytes as sent.
	sum := sha256.Sum256(bytes.TrimRight(raw, " \t\r\n"))
	digest := hex.EncodeToString(sum[:])

	if res, found := in.existing(ctx, p, format, messageID, digest); found {
		return in.started(ctx, read(res, reason, cause))
	}
	kind := "hl7"
	if format == labs.FormatFHIR {
		kind = "fhir"
	}
	obj, err := in.Store.Put(ctx, p.TenantID, kind, raw, contentType)
	if err != nil {
		return Result{Status: Unavailable, Err: fmt.Errorf("store raw message: %w", err)}
	}
	row := models.LabMessage{
		ID:            uuid.New(),
		TenantID:      p.TenantID,
		PartnerID:     p.ID,
		Format:        string(format),
		Transport:     transport,
		MessageID:     messageID,
		RawKey:        obj.Key,
		ContentSHA256: digest,
		Size:          len(raw),
		WorkflowID:    workflows.LabWorkflowID(p.TenantID.String(), p.ID.String(), string(format), messageID),
		Status:        models.LabReceived,
		ReceivedAt:    time.Now().UTC(),
	}
	var inserted bool
	err = models.InTenant(ctx, in.DB, p.TenantID, func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		inserted = res.RowsAffected == 1
		return res.Error
	})
	if err != nil {
		return Result{Status: Unavailable, Err: fmt.Errorf("record message: %w", err)}
	}
	if !inserted {
		// A resend raced this one and recorded it first.
		if res, found := in.existing(ctx, p, format, messageID, digest); found {
			return in.started(ctx, read(res, reason, cause))
		}
		return Result{Status: Unavailable, Err: errors.New("message row vanished")}
	}
	return in.started(ctx, read(Result{Status: Accepted, Message: row}, reason, cause))
}

// read gives a recorded message the answer its content earns: this
// reading's, since the bytes of a resend are the bytes first recorded and
// parsing is deterministic. So a resend is rejected with the same reason
// and location even before the workflow has marked the first one rejected.
func read(res Result, reason string, cause error) Result {
	if res.Status == Accepted && reason != "" {
		res.Status, res.Reason, res.Cause = Invalid, reason, cause
	}
	return res
}

// existing answers a message ID that is already recorded: a resend of the
// same bytes is the recorded message again; different bytes under a used ID are
// refused, since the sender's IDs are how resends are told apart.
func (in *Intake) existing(ctx context.Context, p Partner, format labs.Format, messageID, digest string) (Result, bool) {
	var row models.LabMessage
	err := models.InTenant(ctx, in.DB, p.TenantID, func(tx *gorm.DB) error {
		return tx.Where("partner_id = ? AND format = ? AND message_id = ?", p.ID, string(format), messageID).Take(&row).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Result{}, false
	}
	if err != nil {
		return Result{Status: Unavailable, Err: fmt.Errorf("look up message: %w", err)}, true
	}
	if row.ContentSHA256 != digest {
		return Result{Status: Refused, Reason: "the message ID was already used for a different message",
			Code: hl7.DuplicateKey}, true
	}
	return Result{Status: Accepted, Message: row, Duplicate: true}, true
}

// started makes sure the message's workflow exists, so a message recorded
// by an attempt that died before starting it is picked up by the resend.
func (in *Intake) started(ctx context.Context, res Result) Result {
	if res.Status != Accepted && res.Status != Invalid {
		return res
	}
	row := res.Message
	_, err := in.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       row.WorkflowID,
		TaskQueue:                workflows.LabTaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowExecutionTimeout: 0,
	}, workflows.LabWorkflowType, workflows.LabInput{TenantID: row.TenantID.String(), MessageID: row.ID.String()})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &already) {
		return Result{Status: Unavailable, Err: fmt.Errorf("start lab workflow: %w", err)}
	}
	return res
}

// cleanText reports whether s can be stored and compared as text: UTF-8
// without control characters (empty is fine).
func cleanText(s string) bool {
	return s == "" || printable(s)
}

func printable(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Resume starts the workflow of every message that was recorded more than
// after ago and is still waiting to be parsed: an intake that died between
// recording a message and starting its workflow leaves one behind, and its
// sender may never resend. Starting is idempotent, so a message whose
// workflow is running (or a worker is just slow) is left as it is. It
// answers how many messages it looked at.
func (in *Intake) Resume(ctx context.Context, after time.Duration) (int, error) {
	var tenants []uuid.UUID
	if err := in.DB.WithContext(ctx).Model(&models.Tenant{}).Pluck("id", &tenants).Error; err != nil {
		return 0, fmt.Errorf("list tenants: %w", err)
	}
	n := 0
	for _, t := range tenants {
		var rows []models.LabMessage
		err := models.InTenant(ctx, in.DB, t, func(tx *gorm.DB) error {
			return tx.Where("status = ? AND received_at < now() - make_interval(secs => ?)", models.LabReceived, after.Seconds()).
				Order("received_at").Limit(1000).Find(&rows).Error
		})
		if err != nil {
			return n, fmt.Errorf("list waiting messages: %w", err)
		}
		for _, row := range rows {
			if res := in.started(ctx, Result{Status: Accepted, Message: row}); res.Status == Unavailable {
				return n, res.Err
			}
			n++
		}
	}
	return n, nil
}
