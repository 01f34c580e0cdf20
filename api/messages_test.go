package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carebook/carebook/workflows"
)

// Phrases written into messages by the tests: each must be found only
// where a message is opened for its reader, never in a stored row.
const (
	messageSubject = "Quince rash on my left wrist"
	messageBody    = "The marmalade-coloured patch itches since Tuesday"
	replyBody      = "Send a photo and stop the new soap"
)

// bookWith books the family doctor (Dr. Demir, doctor3) for the patient
// behind token, for patient (empty: the caller), so the doctor reaches them.
func (st *stack) bookWith(t *testing.T, token string, patient uuid.UUID) {
	t.Helper()
	doc, typ := st.familyDoctor()
	free := st.freeSlots(token, doc, typ)
	body := map[string]any{"practitioner_id": doc, "appointment_type_id": typ, "start": free[0]["start"]}
	if patient != uuid.Nil {
		body["patient_id"] = patient
		body["start"] = free[len(free)-1]["start"]
	}
	if r := st.do("POST", "/v1/appointments", token, body); r.Status != http.StatusCreated {
		t.Fatalf("book: %d %s", r.Status, r.Raw)
	}
}

// startThread opens a thread and fails the test unless it is created.
func (st *stack) startThread(t *testing.T, token string, body map[string]any, headers ...string) response {
	t.Helper()
	r := st.do("POST", "/v1/message-threads", token, body, headers...)
	if r.Status != http.StatusCreated || r.str("id") == "" {
		t.Fatalf("start thread: %d %s", r.Status, r.Raw)
	}
	return r
}

// outbox lists the new-message alerts of a recipient.
func (st *stack) messageAlerts(t *testing.T, user string) []map[string]any {
	t.Helper()
	var payloads []string
	if err := st.Admin.Raw(`SELECT payload::text FROM notification_outbox WHERE template = 'message.new' AND recipient_user = ? ORDER BY created_at`,
		user).Scan(&payloads).Error; err != nil {
		t.Fatal(err)
	}
	out := make([]map[string]any, len(payloads))
	for i, p := range payloads {
		if err := json.Unmarshal([]byte(p), &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestMessagingBetweenPatientAndDoctor: a patient writes to a doctor she
// has a visit with (not to one she has none with), the doctor reads and
// replies, unread counts follow the read marks, alerts carry no content,
// a retried send makes one message, nobody else reads the thread, and the
// doctor closes it.
func TestMessagingBetweenPatientAndDoctor(t *testing.T) {
	st := newStack(t)
	ayse := st.login("demo", "ayse@demo.carebook.test")
	st.bookWith(t, ayse, uuid.Nil)
	doc, _ := st.familyDoctor()
	demir := st.login("demo", "doctor3@demo.carebook.test")

	// Refused first: a doctor she has never seen, one of another tenant.
	for _, tt := range []struct {
		name, practitioner, want string
	}{
		{"a doctor she has no visit with", st.Demo.Practitioners[0].ID.String(), "unreached-practitioner"},
		{"another tenant's doctor", st.Other.Practitioners[2].ID.String(), "unknown-practitioner"},
	} {
		r := st.do("POST", "/v1/message-threads", ayse, map[string]any{"practitioner_id": tt.practitioner, "subject": messageSubject, "body": messageBody})
		if r.Status != http.StatusUnprocessableEntity || r.problemType() != tt.want {
			t.Errorf("%s: %d %s, want 422 %s", tt.name, r.Status, r.Raw, tt.want)
		}
	}
	if n := st.count("SELECT count(*) FROM message_threads"); n != 0 {
		t.Fatalf("refused threads left %d rows", n)
	}

	th := st.startThread(t, ayse, map[string]any{"practitioner_id": doc, "subject": messageSubject, "body": messageBody})
	thread := th.str("id")
	if strings.Contains(string(th.Raw), "Quince") || strings.Contains(string(th.Raw), "marmalade") {
		t.Errorf("the answer to a new thread carries its text: %s", th.Raw)
	}
	eqf(t, "patient_id", th.str("patient_id"), st.ayse().String())

	// The doctor is alerted, with nothing of the message or the patient.
	alerts := st.messageAlerts(t, st.userID("doctor3@demo.carebook.test"))
	if len(alerts) != 1 {
		t.Fatalf("doctor's alerts: %v, want 1", alerts)
	}
	raw, _ := json.Marshal(alerts[0])
	for _, leak := range []string{"Quince", "marmalade", "Ayşe", "Öztürk", "ayse"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("the alert holds %q: %s", leak, raw)
		}
	}
	eqf(t, "alert text", alerts[0]["text"], any("You have a new message in Carebook"))
	if link, _ := alerts[0]["link"].(string); link != "https://app.carebook.test/messages/"+thread {
		t.Errorf("alert link %q", link)
	}

	list := st.do("GET", "/v1/message-threads", demir, nil)
	if list.Status != http.StatusOK || len(list.items()) != 1 {
		t.Fatalf("doctor's list: %d %s", list.Status, list.Raw)
	}
	item := list.items()[0]
	eqf(t, "subject", item["subject"], any(messageSubject))
	eqf(t, "patient_name", item["patient_name"], any("Ayşe Öztürk"))
	eqf(t, "doctor's unread", list.Body["unread"], any(float64(1)))

	read := st.do("GET", "/v1/message-threads/"+thread, demir, nil)
	msgs, _ := read.Body["messages"].([]any)
	if read.Status != http.StatusOK || len(msgs) != 1 {
		t.Fatalf("doctor reads: %d %s", read.Status, read.Raw)
	}
	first := msgs[0].(map[string]any)
	eqf(t, "body", first["body"], any(messageBody))
	eqf(t, "sender_role", first["sender_role"], any("patient"))
	eqf(t, "sent_by_proxy", first["sent_by_proxy"], any(false))

	if r := st.do("POST", "/v1/message-threads/"+thread+"/read", demir, map[string]any{}); r.Status != http.StatusOK {
		t.Fatalf("mark read: %d %s", r.Status, r.Raw)
	}
	eqf(t, "doctor's unread after reading", st.do("GET", "/v1/message-threads", demir, nil).Body["unread"], any(float64(0)))

	// The reply, sent twice with one key: one message, one alert.
	key := "reply-" + uuid.NewString()
	reply := st.do("POST", "/v1/message-threads/"+thread+"/messages", demir, map[string]any{"body": replyBody}, "Idempotency-Key", key)
	if reply.Status != http.StatusCreated || strings.Contains(string(reply.Raw), "soap") {
		t.Fatalf("reply: %d %s", reply.Status, reply.Raw)
	}
	again := st.do("POST", "/v1/message-threads/"+thread+"/messages", demir, map[string]any{"body": replyBody}, "Idempotency-Key", key)
	if again.Status != http.StatusCreated || again.str("id") != reply.str("id") || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retried reply: %d %s (replayed %q), want the first answer", again.Status, again.Raw, again.Header.Get("Idempotent-Replayed"))
	}
	eqf(t, "messages in the thread", st.count("SELECT count(*) FROM messages WHERE thread_id = ?", thread), int64(2))
	if a := st.messageAlerts(t, st.userID("ayse@demo.carebook.test")); len(a) != 1 {
		t.Errorf("Ayşe's alerts: %v, want 1", a)
	}
	if r := st.do("POST", "/v1/message-threads/"+thread+"/messages", demir, map[string]any{"body": "other words"}, "Idempotency-Key", key); r.Status != http.StatusUnprocessableEntity || r.problemType() != "idempotency-key-reused" {
		t.Errorf("the key with another body: %d %s", r.Status, r.Raw)
	}

	mine := st.do("GET", "/v1/message-threads", ayse, nil)
	eqf(t, "Ayşe's unread", mine.Body["unread"], any(float64(1)))
	if r := st.do("POST", "/v1/message-threads/"+thread+"/read", ayse, nil); r.Status != http.StatusOK {
		t.Fatalf("Ayşe marks read: %d %s", r.Status, r.Raw)
	}
	eqf(t, "Ayşe's unread after reading", st.do("GET", "/v1/message-threads", ayse, nil).Body["unread"], any(float64(0)))
	ayseRead := st.do("GET", "/v1/message-threads/"+thread, ayse, nil)
	msgs, _ = ayseRead.Body["messages"].([]any)
	if len(msgs) != 2 || msgs[1].(map[string]any)["body"] != replyBody || msgs[1].(map[string]any)["sender_name"] != "Dr. Zeynep Demir" {
		t.Errorf("Ayşe reads the reply: %s", ayseRead.Raw)
	}

	// Nobody else reads it: another doctor and patient (404), the desk,
	// billing and admins (no messaging at all), another tenant (404).
	for _, tt := range []struct {
		who   string
		token string
		want  int
	}{
		{"another doctor", st.login("demo", "doctor1@demo.carebook.test"), http.StatusNotFound},
		{"another patient", st.login("demo", "john@demo.carebook.test"), http.StatusNotFound},
		{"staff", st.login("demo", "staff.istanbul@demo.carebook.test"), http.StatusForbidden},
		{"billing", st.login("demo", "billing@demo.carebook.test"), http.StatusForbidden},
		{"admin", st.login("demo", "admin@demo.carebook.test"), http.StatusForbidden},
		{"harbor's doctor3", st.login("harbor", "doctor3@harbor.carebook.test"), http.StatusNotFound},
		{"harbor's Ayşe", st.login("harbor", "ayse@harbor.carebook.test"), http.StatusNotFound},
	} {
		for _, c := range []struct{ method, path string }{{"GET", ""}, {"POST", "/messages"}, {"POST", "/read"}} {
			var body any
			if c.method == "POST" {
				body = map[string]any{"body": "not yours"}
				if c.path == "/read" {
					body = map[string]any{}
				}
			}
			r := st.do(c.method, "/v1/message-threads/"+thread+c.path, tt.token, body)
			if r.Status != tt.want || strings.Contains(string(r.Raw), "Quince") {
				t.Errorf("%s %s%s: %d %s, want %d", tt.who, c.method, c.path, r.Status, r.Raw, tt.want)
			}
		}
		if l := st.do("GET", "/v1/message-threads", tt.token, nil); strings.Contains(string(l.Raw), thread) {
			t.Errorf("%s lists the thread: %s", tt.who, l.Raw)
		}
	}
	eqf(t, "messages after strangers tried", st.count("SELECT count(*) FROM messages WHERE thread_id = ?", thread), int64(2))

	// Every read, list and send is in the audit log under Ayşe.
	var events []string
	if err := st.Admin.Raw(`SELECT DISTINCT action || '/' || resource_type || '/' || actor_role FROM audit_events WHERE patient_id = ?`, st.ayse()).
		Scan(&events).Error; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"message-thread-start/message_thread/patient", "message-send/message/patient", "list/message_thread/doctor",
		"read/message_thread/doctor", "message-mark-read/message_thread/doctor", "message-send/message/doctor", "list/message_thread/patient",
		"read/message_thread/patient"} {
		if !slices.Contains(events, want) {
			t.Errorf("no audit event %s in %v", want, events)
		}
	}
	if n := st.count(`SELECT count(*) FROM audit_events WHERE reason ILIKE '%quince%' OR reason ILIKE '%marmalade%'`); n != 0 {
		t.Errorf("%d audit events quote a message", n)
	}

	// The doctor starts one too, with a patient she reaches, not with
	// one she does not.
	if r := st.do("POST", "/v1/message-threads", demir, map[string]any{"patient_id": st.john(), "subject": "Results", "body": "Please call"}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "unknown-patient" {
		t.Errorf("doctor writes to a patient she never saw: %d %s", r.Status, r.Raw)
	}
	if r := st.do("POST", "/v1/message-threads", demir, map[string]any{"subject": "Results", "body": "Please call"}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "patient-required" {
		t.Errorf("doctor names no patient: %d %s", r.Status, r.Raw)
	}
	st.startThread(t, demir, map[string]any{"patient_id": st.ayse(), "subject": "Follow-up", "body": "How is the wrist?"})
	eqf(t, "Ayşe's unread with the doctor's new thread", st.do("GET", "/v1/message-threads", ayse, nil).Body["unread"], any(float64(1)))

	// Only the doctor closes; nobody writes in a closed thread.
	if r := st.do("POST", "/v1/message-threads/"+thread+"/close", ayse, map[string]any{}); r.Status != http.StatusForbidden {
		t.Errorf("patient closes: %d, want 403", r.Status)
	}
	if r := st.do("POST", "/v1/message-threads/"+thread+"/close", demir, map[string]any{}); r.Status != http.StatusOK || r.str("status") != "closed" {
		t.Fatalf("close: %d %s", r.Status, r.Raw)
	}
	if r := st.do("POST", "/v1/message-threads/"+thread+"/close", demir, nil); r.Status != http.StatusConflict || r.problemType() != "thread-closed" {
		t.Errorf("second close: %d %s", r.Status, r.Raw)
	}
	if r := st.do("POST", "/v1/message-threads/"+thread+"/messages", ayse, map[string]any{"body": "one more thing"}); r.Status != http.StatusConflict || r.problemType() != "thread-closed" {
		t.Errorf("writing in a closed thread: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/message-threads?state=closed", ayse, nil); len(r.items()) != 1 || r.items()[0]["id"] != thread {
		t.Errorf("closed threads: %s", r.Raw)
	}
}

// TestMessageBadInputIsRefused: empty and oversized texts, unknown fields
// and malformed IDs answer stable problem types and store nothing.
func TestMessageBadInputIsRefused(t *testing.T) {
	st := newStack(t)
	ayse := st.login("demo", "ayse@demo.carebook.test")
	st.bookWith(t, ayse, uuid.Nil)
	doc, _ := st.familyDoctor()
	thread := st.startThread(t, ayse, map[string]any{"practitioner_id": doc, "subject": "Hello", "body": "First"}).str("id")
	long := strings.Repeat("ü", 10001)
	tests := []struct {
		name       string
		method     string
		path       string
		body       any
		wantStatus int
		wantType   string
	}{
		{"empty body", "POST", "/v1/message-threads/" + thread + "/messages", map[string]any{"body": "  \n "}, 422, "message-empty"},
		{"body too long", "POST", "/v1/message-threads/" + thread + "/messages", map[string]any{"body": long}, 422, "message-too-long"},
		{"no body", "POST", "/v1/message-threads/" + thread + "/messages", map[string]any{}, 400, "invalid-body"},
		{"unknown field", "POST", "/v1/message-threads/" + thread + "/messages", map[string]any{"body": "x", "attachment": "x.pdf"}, 400, "invalid-body"},
		{"thread id not a uuid", "POST", "/v1/message-threads/not-a-thread/messages", map[string]any{"body": "x"}, 404, "not-found"},
		{"unknown thread", "GET", "/v1/message-threads/" + uuid.NewString(), nil, 404, "not-found"},
		{"subject too long", "POST", "/v1/message-threads", map[string]any{"practitioner_id": doc, "subject": strings.Repeat("s", 201), "body": "x"}, 422, "message-too-long"},
		{"empty subject", "POST", "/v1/message-threads", map[string]any{"practitioner_id": doc, "subject": "", "body": "x"}, 422, "message-empty"},
		{"new thread body too long", "POST", "/v1/message-threads", map[string]any{"practitioner_id": doc, "subject": "s", "body": long}, 422, "message-too-long"},
		{"no practitioner", "POST", "/v1/message-threads", map[string]any{"subject": "s", "body": "x"}, 422, "unknown-practitioner"},
		{"practitioner not a uuid", "POST", "/v1/message-threads", map[string]any{"practitioner_id": "42", "subject": "s", "body": "x"}, 400, "invalid-body"},
		{"a stranger as dependant", "POST", "/v1/message-threads", map[string]any{"practitioner_id": doc, "patient_id": st.john(), "subject": "s", "body": "x"}, 422, "unknown-patient"},
		{"bad state", "GET", "/v1/message-threads?state=unread", nil, 400, "invalid-parameter"},
	}
	count := func() [3]int64 {
		return [3]int64{st.count("SELECT count(*) FROM messages"), st.count("SELECT count(*) FROM message_threads"),
			st.count("SELECT count(*) FROM notification_outbox")}
	}
	before := count()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := st.do(tt.method, tt.path, ayse, tt.body)
			if r.Status != tt.wantStatus || r.problemType() != tt.wantType {
				t.Fatalf("got %d %q, want %d %q: %s", r.Status, r.problemType(), tt.wantStatus, tt.wantType, r.Raw)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if strings.Contains(string(r.Raw), "ü") || strings.Contains(string(r.Raw), "sss") {
				t.Errorf("the problem echoes the text: %s", r.Raw)
			}
		})
	}
	if after := count(); after != before {
		t.Errorf("bad input changed the tables: %v -> %v", before, after)
	}
}

// TestProxyMessagesForDependant: Ayşe writes to her son's doctor for him;
// the thread is Deniz's, the doctor sees it came from his proxy, the reply
// alerts Ayşe (Deniz has no account), and the events say "proxy". John,
// who acts for nobody, cannot write for Deniz.
func TestProxyMessagesForDependant(t *testing.T) {
	st := newStack(t)
	ayse := st.login("demo", "ayse@demo.carebook.test")
	deniz := st.Demo.Patients[4].ID
	st.bookWith(t, ayse, deniz)
	doc, _ := st.familyDoctor()

	john := st.login("demo", "john@demo.carebook.test")
	if r := st.do("POST", "/v1/message-threads", john, map[string]any{"practitioner_id": doc, "patient_id": deniz, "subject": "Deniz", "body": "x"}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "unknown-patient" {
		t.Errorf("John for Deniz: %d %s", r.Status, r.Raw)
	}
	// Ayşe herself has no visit with Dr. Demir in this stack: a thread of
	// her own with her is refused, her son's is not.
	if r := st.do("POST", "/v1/message-threads", ayse, map[string]any{"practitioner_id": doc, "subject": "Me", "body": "x"}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "unreached-practitioner" {
		t.Errorf("Ayşe for herself: %d %s", r.Status, r.Raw)
	}
	th := st.startThread(t, ayse, map[string]any{"practitioner_id": doc, "patient_id": deniz, "subject": "Deniz's cough", "body": "He coughs at night"})
	eqf(t, "thread's patient", th.str("patient_id"), deniz.String())

	demir := st.login("demo", "doctor3@demo.carebook.test")
	read := st.do("GET", "/v1/message-threads/"+th.str("id"), demir, nil)
	msgs, _ := read.Body["messages"].([]any)
	if read.Status != http.StatusOK || len(msgs) != 1 || msgs[0].(map[string]any)["sent_by_proxy"] != true ||
		msgs[0].(map[string]any)["sender_name"] != "Ayşe Öztürk" || read.str("patient_name") != "Deniz Öztürk" {
		t.Fatalf("doctor reads the proxy's thread: %d %s", read.Status, read.Raw)
	}
	if r := st.do("POST", "/v1/message-threads/"+th.str("id")+"/messages", demir, map[string]any{"body": "Honey and rest"}); r.Status != http.StatusCreated {
		t.Fatalf("reply: %d %s", r.Status, r.Raw)
	}
	if a := st.messageAlerts(t, st.userID("ayse@demo.carebook.test")); len(a) != 1 {
		t.Errorf("Ayşe's alerts for Deniz's thread: %v, want 1", a)
	}
	if r := st.do("GET", "/v1/message-threads?patient_id="+deniz.String(), ayse, nil); len(r.items()) != 1 || r.items()[0]["unread"] != float64(1) {
		t.Errorf("Ayşe's list for Deniz: %s", r.Raw)
	}
	var proxyEvents []string
	if err := st.Admin.Raw("SELECT action || '/' || resource_type FROM audit_events WHERE actor_user = ? AND patient_id = ? AND reason = 'proxy'",
		st.userID("ayse@demo.carebook.test"), deniz).Scan(&proxyEvents).Error; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"message-thread-start/message_thread", "message-send/message", "list/message_thread"} {
		if !slices.Contains(proxyEvents, want) {
			t.Errorf("no proxy event %s in %v", want, proxyEvents)
		}
	}

	// Once the relation ends, the thread is out of her reach.
	admin := st.login("demo", "admin@demo.carebook.test")
	var rel string
	st.Admin.Raw("SELECT id::text FROM proxy_relations WHERE patient_id = ? AND ended_at IS NULL", deniz).Scan(&rel)
	if r := st.do("POST", "/v1/proxy-relations/"+rel+"/end", admin, map[string]any{}); r.Status != http.StatusOK {
		t.Fatalf("end relation: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/message-threads/"+th.str("id"), ayse, nil); r.Status != http.StatusNotFound {
		t.Errorf("after the relation ended: %d, want 404", r.Status)
	}
}

// writeMessages gives the patient behind token (who has a visit with the
// family doctor) a thread with the test phrases and the doctor's reply,
// and returns the thread's ID.
func (st *stack) writeMessages(t *testing.T, token string) string {
	t.Helper()
	doc, _ := st.familyDoctor()
	thread := st.startThread(t, token, map[string]any{"practitioner_id": doc, "subject": messageSubject, "body": messageBody},
		"Idempotency-Key", "first-"+uuid.NewString()).str("id")
	if r := st.do("POST", "/v1/message-threads/"+thread+"/messages", st.login("demo", "doctor3@demo.carebook.test"),
		map[string]any{"body": replyBody}, "Idempotency-Key", "reply-"+uuid.NewString()); r.Status != http.StatusCreated {
		t.Fatalf("reply: %d %s", r.Status, r.Raw)
	}
	return thread
}

// messagePhrases are the words of writeMessages, searched for in dumps.
var messagePhrases = []string{"Quince rash", "marmalade", "new soap"}

// TestKeyRotationReencryptsMessages: a rotation re-seals every subject and
// body under the new key, and the thread still reads.
func TestKeyRotationReencryptsMessages(t *testing.T) {
	st := newStack(t)
	ayse := st.login("demo", "ayse@demo.carebook.test")
	st.bookWith(t, ayse, uuid.Nil)
	thread := st.writeMessages(t, ayse)

	r := st.do("POST", "/v1/admin/keys/rotate", st.login("demo", "admin@demo.carebook.test"), nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("rotate: %d %s", r.Status, r.Raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var res workflows.KeyRotationResult
	if err := st.Temporal.GetWorkflow(ctx, r.str("workflow_id"), "").Get(ctx, &res); err != nil {
		t.Fatalf("rotation: %v", err)
	}
	if len(res.Retired) != 1 {
		t.Errorf("retired %v, want the first version", res.Retired)
	}
	eqf(t, "subjects under the old key", st.count("SELECT count(*) FROM message_threads WHERE get_byte(subject_sealed, 4) <> ?", res.Version), int64(0))
	eqf(t, "bodies under the old key", st.count("SELECT count(*) FROM messages WHERE get_byte(body_sealed, 4) <> ?", res.Version), int64(0))
	eqf(t, "bodies under the new key", st.count("SELECT count(*) FROM messages WHERE get_byte(body_sealed, 4) = ?", res.Version), int64(2))
	read := st.do("GET", "/v1/message-threads/"+thread, ayse, nil)
	msgs, _ := read.Body["messages"].([]any)
	if read.Status != http.StatusOK || read.str("subject") != messageSubject || len(msgs) != 2 || msgs[0].(map[string]any)["body"] != messageBody {
		t.Errorf("thread after rotation: %d %s", read.Status, read.Raw)
	}
}
