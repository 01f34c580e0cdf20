package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/carebook/carebook/hl7"
	"github.com/carebook/carebook/intake"
	"github.com/carebook/carebook/mllp"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
)

// startMLLP runs an MLLP listener on a free loopback port with the
// stack's intake, dedicated to the demo lab for messages whose facilities
// no partner routes, as `carebook dev` runs it. It returns the address.
func (st *stack) startMLLP(t *testing.T) string {
	t.Helper()
	p, err := st.Intake.PartnerByKeyID(context.Background(), demo.LabKeyID)
	if err != nil {
		t.Fatal(err)
	}
	st.Intake.MLLPPartner = &p
	return serveMLLP(t, st.Intake)
}

// serveMLLP runs an MLLP listener for in on a free loopback port until the
// test ends, and returns its address.
func serveMLLP(t *testing.T, in *intake.Intake) string {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := &mllp.Server{Handler: in.MLLPHandler(logger, nil), Logger: logger}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; err != nil && !errors.Is(err, mllp.ErrServerClosed) {
			t.Errorf("mllp server: %v", err)
		}
	})
	return ln.Addr().String()
}

// ack is an HL7 acknowledgment, read field by field.
type ack struct {
	Code      string // MSA-1
	ControlID string // MSA-2
	Text      string // MSA-3
	HasERR    bool
	ErrSeg    string // ERR-2.1
	ErrSeq    string // ERR-2.2
	ErrField  string // ERR-2.3
	ErrCode   string // ERR-3.1
	ErrTable  string // ERR-3.3
	ErrText   string // ERR-8
	Type      string // MSH-9
}

// sendMLLP sends one message over a new MLLP connection and reads the
// acknowledgment.
func sendMLLP(t *testing.T, addr string, raw []byte) ack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mllp.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := c.Send(ctx, raw)
	if err != nil {
		t.Fatalf("mllp send: %v", err)
	}
	m, err := hl7.Parse(b)
	if err != nil {
		t.Fatalf("ACK does not parse: %v", err)
	}
	var a ack
	a.Type = m.Type.Code
	msa := m.Segment("MSA")
	if msa == nil {
		t.Fatal("ACK has no MSA")
	}
	a.Code, a.ControlID, a.Text = msa.Field(1).Value(), msa.Field(2).Value(), msa.Field(3).Value()
	if e := m.Segment("ERR"); e != nil {
		a.HasERR = true
		a.ErrSeg, a.ErrSeq, a.ErrField = e.Field(2).Comp(1), e.Field(2).Comp(2), e.Field(2).Comp(3)
		a.ErrCode, a.ErrTable = e.Field(3).Comp(1), e.Field(3).Comp(3)
		a.ErrText = e.Field(8).Value()
	}
	return a
}

// TestLabSharedMessagesOverMLLP sends every shared HL7 message over MLLP
// and follows each to what is stored; then the escape vector inside a
// result, resends, and a message ID reused for other content.
func TestLabSharedMessagesOverMLLP(t *testing.T) {
	st := newStack(t)
	st.prepareLabPatients(t)
	addr := st.startMLLP(t)
	tenant := st.Demo.Tenant.ID
	// Partners by MSH-4: the NIST and Cerner facilities are routed; the
	// nHapi and HL7Enumerator messages name no facility and fall to the
	// listener's partner, the demo lab.
	partnerOf := map[string]int{nistFile: 1, cernerFile: 2, nhapiFile: 0, enumFile: 0}

	firstAck := map[string]ack{}
	for _, c := range sharedHL7Cases {
		t.Run(c.file, func(t *testing.T) {
			raw := sharedCase(t, "hl7", c.file)
			id := controlID(t, raw)
			a := sendMLLP(t, addr, raw)
			firstAck[c.file] = a
			eqf(t, "MSH-9", a.Type, "ACK")
			eqf(t, "MSA-2", a.ControlID, id)
			m := st.settled(t, tenant, "hl7v2", id)
			if c.accept {
				eqf(t, "MSA-1", a.Code, "AA")
				eqf(t, "MSA-3", a.Text, "")
				eqf(t, "ERR present", a.HasERR, false)
			} else {
				eqf(t, "MSA-1", a.Code, "AE")
				eqf(t, "MSA-3", a.Text, m.Reason)
				if !a.HasERR {
					t.Fatal("AE without ERR")
				}
				eqf(t, "ERR-8", a.ErrText, m.Reason)
				// The fault's place, and its code of table 0357 as the
				// parser's error gives it.
				_, perr := hl7.ParseORU(raw)
				var pe *hl7.ParseError
				if !errors.As(perr, &pe) {
					t.Fatalf("the file no longer fails to parse as an ORU: %v", perr)
				}
				eqf(t, "ERR-2 segment", a.ErrSeg, "OBX")
				eqf(t, "ERR-2 sequence", a.ErrSeq, "1")
				eqf(t, "ERR-2 field", a.ErrField, "5")
				eqf(t, "ERR-3 code", a.ErrCode, strconv.Itoa(int(hl7.ErrorCodeOf(pe))))
				eqf(t, "ERR-3 table", a.ErrTable, "HL70357")
			}
			st.checkReceived(t, m, st.Demo.LabPartners[partnerOf[c.file]].ID, "hl7v2", "mllp", raw)
			c.check(t, st, raw, m)
		})
	}

	t.Run("refused without a trace", func(t *testing.T) {
		before := st.labCounts()
		// A listener with no partner of its own refuses a message whose
		// facilities route to no partner.
		unrouted := serveMLLP(t, &intake.Intake{DB: st.App, Store: st.Store, Temporal: st.Temporal})
		raw := sharedCase(t, "hl7", nhapiFile)
		a := sendMLLP(t, unrouted, raw)
		eqf(t, "unrouted MSA-1", a.Code, "AR")
		eqf(t, "unrouted MSA-2", a.ControlID, controlID(t, raw))
		eqf(t, "unrouted ERR-3", a.ErrCode, strconv.Itoa(int(hl7.TableValueNotFound)))
		if !strings.Contains(a.Text, "MSH-4") {
			t.Errorf("unrouted MSA-3 %q does not name MSH-4", a.Text)
		}
		// A message type Carebook does not take.
		adt := withFields(t, sharedCase(t, "hl7", nistFile), fieldEdit{"MSH", 9, "ADT^A01^ADT_A01"}, fieldEdit{"MSH", 10, freshID("ADT")})
		a = sendMLLP(t, addr, adt)
		eqf(t, "ADT MSA-1", a.Code, "AR")
		eqf(t, "ADT ERR-3", a.ErrCode, strconv.Itoa(int(hl7.UnsupportedMessageType)))
		eqf(t, "ADT ERR-2 field", a.ErrSeg+"-"+a.ErrField, "MSH-9")
		if after := st.labCounts(); after != before {
			t.Errorf("rows %v -> %v after refused messages", before, after)
		}
	})

	t.Run("escape vector", func(t *testing.T) {
		for i, ec := range escapeCases(t) {
			t.Run(ec.name, func(t *testing.T) {
				id := freshID("ESC")
				// From the NIST message: its observation made an ST whose
				// value carries the escape sequences; a filler number of
				// its own so each files its own report.
				raw := nistVariant(t, id, "ESC"+strconv.Itoa(i), fieldEdit{"OBX", 2, "ST"}, fieldEdit{"OBX", 5, ec.escaped})
				a := sendMLLP(t, addr, raw)
				if a.Code != "AA" || a.ControlID != id {
					t.Fatalf("ACK %s for %s (%s), want AA", a.Code, a.ControlID, a.Text)
				}
				m := st.settled(t, tenant, "hl7v2", id)
				eqf(t, "status", m.Status, models.LabFiled)
				obs := st.observations(st.oneReport(t, m.ID).ID)
				if len(obs) != 1 {
					t.Fatalf("observations = %d, want 1", len(obs))
				}
				eqf(t, "kind", obs[0].Kind, "text")
				eqf(t, "value_text", obs[0].ValueText, ec.unescaped)
				isNil(t, "value_number", obs[0].ValueNumber)
			})
		}
	})

	t.Run("resend is idempotent", func(t *testing.T) {
		before := st.labCounts()
		for _, c := range sharedHL7Cases {
			raw := sharedCase(t, "hl7", c.file)
			first := st.labMessage(tenant, "hl7v2", controlID(t, raw))
			a := sendMLLP(t, addr, raw)
			eqf(t, c.file+" MSA-2", a.ControlID, first.MessageID)
			// The resend gets the first answer, field by field (its own
			// ACK control ID and time aside); for a rejected message that
			// includes where the fault is and its code, since a 207
			// would tell the sender Carebook failed and to send again.
			want := firstAck[c.file]
			eqf(t, c.file+" MSA-1", a.Code, want.Code)
			eqf(t, c.file+" MSA-3", a.Text, want.Text)
			eqf(t, c.file+" ERR present", a.HasERR, want.HasERR)
			eqf(t, c.file+" ERR-2", a.ErrSeg+"^"+a.ErrSeq+"^"+a.ErrField, want.ErrSeg+"^"+want.ErrSeq+"^"+want.ErrField)
			eqf(t, c.file+" ERR-3", a.ErrCode, want.ErrCode)
			eqf(t, c.file+" ERR-8", a.ErrText, want.ErrText)
		}
		if after := st.labCounts(); after != before {
			t.Errorf("rows (messages, reports, observations, outbox) %v -> %v after resends", before, after)
		}

		raw := sharedCase(t, "hl7", nistFile)
		a := sendMLLP(t, addr, withFields(t, raw, fieldEdit{"OBX", 5, "26"}))
		eqf(t, "other bytes MSA-1", a.Code, "AR")
		eqf(t, "other bytes MSA-2", a.ControlID, controlID(t, raw))
		eqf(t, "other bytes ERR-3", a.ErrCode, "205")
		if !strings.Contains(a.Text, "already used") {
			t.Errorf("MSA-3 %q does not say the ID is used", a.Text)
		}
		if after := st.labCounts(); after != before {
			t.Errorf("rows %v -> %v after a refused message", before, after)
		}
	})
}

// escapeCase is a value as sent and as it must be stored.
type escapeCase struct {
	name               string
	escaped, unescaped string
}

// escapeCases are the whole shared escape vector and, split from it, each
// of its escape sequences alone between plain text. Each sequence's
// decoded text is what the vector's unescaped string holds between the
// plain runs around it.
func escapeCases(t *testing.T) []escapeCase {
	t.Helper()
	var v struct {
		EncodingChars string `json:"encoding_chars"`
		Unescaped     string `json:"unescaped"`
		Escaped       string `json:"escaped"`
	}
	if err := json.Unmarshal(sharedCase(t, "hl7", escapeFile), &v); err != nil {
		t.Fatal(err)
	}
	if v.EncodingChars != `|^~\&` {
		t.Fatalf("the vector's encoding characters %q are not the NIST message's", v.EncodingChars)
	}
	out := []escapeCase{{name: "whole vector", escaped: v.Escaped, unescaped: v.Unescaped}}

	type token struct {
		seq  bool
		text string
	}
	var tokens []token
	for s := v.Escaped; s != ""; {
		i := strings.IndexByte(s, '\\')
		switch {
		case i < 0:
			tokens, s = append(tokens, token{text: s}), ""
		case i > 0:
			tokens, s = append(tokens, token{text: s[:i]}), s[i:]
		default:
			j := strings.IndexByte(s[1:], '\\')
			if j < 0 {
				t.Fatalf("open escape sequence in the vector")
			}
			tokens, s = append(tokens, token{seq: true, text: s[:j+2]}), s[j+2:]
		}
	}
	rest := v.Unescaped
	for i, tk := range tokens {
		if !tk.seq {
			if !strings.HasPrefix(rest, tk.text) {
				t.Fatalf("the vector's plain text does not line up")
			}
			rest = rest[len(tk.text):]
			continue
		}
		if i+1 >= len(tokens) || tokens[i+1].seq {
			t.Fatalf("escape sequence %s is not followed by plain text; the vector cannot be split", tk.text)
		}
		n := strings.Index(rest, tokens[i+1].text)
		if n < 0 {
			t.Fatalf("the vector's plain text does not line up")
		}
		decoded := rest[:n]
		rest = rest[n:]
		out = append(out, escapeCase{name: tk.text, escaped: "before " + tk.text + " after", unescaped: "before " + decoded + " after"})
	}
	if len(out) < 2 {
		t.Fatal("the vector holds no escape sequence")
	}
	return out
}

// TestLabWorkerDownThenUp: with no worker running, a message is still
// acknowledged once its bytes are stored and its workflow started, and an
// invalid one is answered AE however often it is sent; a worker that
// starts later files the one and marks the other rejected.
func TestLabWorkerDownThenUp(t *testing.T) {
	st := newStack(t)
	addr := st.startMLLP(t)
	tenant := st.Demo.Tenant.ID
	st.Worker.Stop()

	raw := sharedCase(t, "hl7", nistFile)
	id := controlID(t, raw)
	t.Run("acknowledged while no worker runs", func(t *testing.T) {
		a := sendMLLP(t, addr, raw)
		eqf(t, "MSA-1", a.Code, "AA")
		eqf(t, "MSA-2", a.ControlID, id)

		m := st.labMessage(tenant, "hl7v2", id)
		eqf(t, "status", m.Status, models.LabReceived)
		st.checkReceived(t, m, st.Demo.LabPartners[1].ID, "hl7v2", "mllp", raw)
		eqf(t, "reports", st.count("SELECT count(*) FROM lab_reports"), int64(0))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		desc, err := st.Temporal.DescribeWorkflowExecution(ctx, m.WorkflowID, "")
		if err != nil {
			t.Fatalf("workflow not started: %v", err)
		}
		eqf(t, "workflow status", desc.WorkflowExecutionInfo.Status, enums.WORKFLOW_EXECUTION_STATUS_RUNNING)
		eqf(t, "workflow type", desc.WorkflowExecutionInfo.Type.Name, "LabIngestion")
	})

	// Intake reads the whole message before it answers, so it knows the
	// content cannot be trusted before any worker has marked the row
	// rejected. A resend in that window must get that answer too: an AA
	// would tell the lab its message was taken, and it would never fix it.
	invalid := sharedCase(t, "hl7", enumFile)
	t.Run("an invalid message resent before a worker reads it is still rejected", func(t *testing.T) {
		first := sendMLLP(t, addr, invalid)
		eqf(t, "first MSA-1", first.Code, "AE")
		again := sendMLLP(t, addr, invalid)
		eqf(t, "resend MSA-1", again.Code, "AE")
		eqf(t, "resend MSA-3", again.Text, first.Text)
		eqf(t, "resend ERR-3", again.ErrCode, first.ErrCode)
		r := st.postLab("hl7", demo.LabKeyFor("demo"), invalid)
		if r.Status != http.StatusUnprocessableEntity || r.problemType() != "lab-message-rejected" {
			t.Errorf("resend over HTTP: %d %s, want 422 lab-message-rejected", r.Status, r.Raw)
		}
		eqf(t, "messages recorded", st.count("SELECT count(*) FROM lab_messages WHERE message_id = ?", controlID(t, invalid)), int64(1))
	})

	t.Run("a worker that starts later finishes both", func(t *testing.T) {
		st.Worker = st.startWorker(st.Deps)
		m := st.settled(t, tenant, "hl7v2", id)
		checkNISTFiled(t, st, raw, m)
		bad := st.settled(t, tenant, "hl7v2", controlID(t, invalid))
		checkEnumeratorRejected(t, st, invalid, bad)
	})
}
