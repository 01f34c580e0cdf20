package intake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"time"

	"github.com/carebook/carebook/hl7"
	"github.com/carebook/carebook/mllp"
)

// ACK builds the HL7 acknowledgment of a result: AA when accepted (a
// resend included), AE with the reason when the content cannot be trusted,
// AR when the message is not taken, and AR with code 207 when Carebook
// could not take it now and the sender should send it again.
func ACK(res Result, m *hl7.Message, raw []byte, now time.Time) []byte {
	a := hl7.Ack{ControlID: newControlID(), Time: now}
	switch res.Status {
	case Accepted:
		a.Code = hl7.AckAccept
	case Invalid:
		a.Code, a.Text, a.Cause = hl7.AckError, res.Reason, res.Cause
	case Refused:
		a.Code, a.Text, a.Cause, a.ErrorCode = hl7.AckReject, res.Reason, res.Cause, res.Code
	default:
		a.Code, a.Text, a.ErrorCode = hl7.AckReject, "temporarily unavailable; send the message again", hl7.ApplicationInternalError
	}
	if m != nil {
		return hl7.NewACK(m, a)
	}
	return hl7.NewACKRaw(raw, a)
}

func newControlID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// IntakeTimeout bounds taking one message: storing it, recording it and
// starting its workflow take milliseconds when all is well.
const IntakeTimeout = 30 * time.Second

// MLLPHandler answers each message received over MLLP with its ACK, once
// the message is stored and its workflow started. It logs the outcome with
// sizes and IDs only.
func (in *Intake) MLLPHandler(logger *slog.Logger, now func() time.Time) func(ctx context.Context, conn mllp.ConnInfo, msg []byte) []byte {
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context, conn mllp.ConnInfo, msg []byte) []byte {
		start := time.Now()
		// A store or database that hangs must not hold the lab's
		// connection: past the deadline the answer is AR 207, send again.
		ctx, cancel := context.WithTimeout(ctx, IntakeTimeout)
		defer cancel()
		res, m := in.HL7(ctx, nil, TransportMLLP, msg)
		ack := ACK(res, m, msg, now())
		attrs := []any{"remote", addrString(conn.RemoteAddr), "bytes", len(msg), "status", res.Status.String(),
			"duplicate", res.Duplicate, "ms", time.Since(start).Milliseconds()}
		if res.Message.ID != [16]byte{} {
			attrs = append(attrs, "tenant", res.Message.TenantID.String(), "labMessage", res.Message.ID.String())
		}
		if res.Err != nil {
			attrs = append(attrs, "error", res.Err.Error())
			logger.ErrorContext(ctx, "mllp message not taken", attrs...)
		} else {
			logger.InfoContext(ctx, "mllp message", attrs...)
		}
		return ack
	}
}

// String names the status for logs and API answers.
func (s Status) String() string {
	switch s {
	case Accepted:
		return "accepted"
	case Invalid:
		return "rejected"
	case Refused:
		return "refused"
	}
	return "unavailable"
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
