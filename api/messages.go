package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
)

// Secure messaging: threads between a patient (or a proxy acting for them)
// and a doctor who reaches them (reach.go), each with a subject and
// messages. Subjects and bodies are sealed with the tenant's data key
// before they reach Postgres, and opened only for the thread's two sides:
// the patient and their proxies, and the doctor. Staff, billing and admins
// have no messaging route at all (permissions.go): a message is between a
// patient and their doctor, and the desk's work needs none of it. A
// privacy officer sees who read and wrote what in the audit log, and the
// patient's export holds the text.
//
// No answer to a POST carries a subject or a body: answers are kept for
// Idempotency-Key replays in idempotency_keys, which is not sealed.

// Limits on what a person may write. They are checked by the handlers,
// not the API description, so that a long message gets its own problem
// type instead of a generic invalid-body.
const (
	maxMessageChars = 10000
	maxSubjectChars = 200
	// maxThreadMessages bounds one thread's read; a thread is a
	// conversation, not an archive.
	maxThreadMessages = 1000
	// maxThreads bounds a list.
	maxThreads = 200
)

// newMessageTemplate names the outbox template of a new-message alert.
const newMessageTemplate = "message.new"

// newMessageText is everything an alert says: no subject, no body, no
// name. The link opens the thread in the app, behind its sign-in.
const newMessageText = "You have a new message in Carebook"

type startThreadRequest struct {
	PractitionerID string `json:"practitioner_id"`
	PatientID      string `json:"patient_id"`
	Subject        string `json:"subject"`
	Body           string `json:"body"`
}

type sendMessageRequest struct {
	Body string `json:"body"`
}

// threadSummary is a thread without its text: what a POST answers.
type threadSummary struct {
	ID             string     `json:"id"`
	PatientID      string     `json:"patient_id"`
	PractitionerID string     `json:"practitioner_id"`
	Status         string     `json:"status"`
	CreatedAt      time.Time  `json:"created_at"`
	LastMessageAt  time.Time  `json:"last_message_at"`
	ClosedAt       *time.Time `json:"closed_at,omitempty"`
	// MessageID is the first message's, in a new thread's answer.
	MessageID string `json:"message_id,omitempty"`
}

// threadView is a thread as its two sides read it.
type threadView struct {
	threadSummary
	PatientName      string        `json:"patient_name"`
	PractitionerName string        `json:"practitioner_name"`
	Subject          string        `json:"subject"`
	Unread           int64         `json:"unread"`
	Messages         []messageView `json:"messages,omitempty"`
}

type messageView struct {
	ID          string    `json:"id"`
	SenderRole  string    `json:"sender_role"`
	SenderName  string    `json:"sender_name"`
	SentByProxy bool      `json:"sent_by_proxy"`
	Mine        bool      `json:"mine"`
	SentAt      time.Time `json:"sent_at"`
	Body        string    `json:"body"`
}

func summarise(t models.MessageThread) threadSummary {
	status := "open"
	if t.ClosedAt != nil {
		status = "closed"
	}
	return threadSummary{ID: t.ID.String(), PatientID: t.PatientID.String(), PractitionerID: t.PractitionerID.String(),
		Status: status, CreatedAt: t.CreatedAt.UTC(), LastMessageAt: t.LastMessageAt.UTC(), ClosedAt: utcPtr(t.ClosedAt)}
}

// messageText checks what a person wrote: not blank, not too long. what
// names the field in the problem's detail, never its content.
func messageText(what, s string, max int) error {
	if strings.TrimSpace(s) == "" {
		return invalid("message-empty", "The "+what+" is empty.").with("field", what)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalid("message-too-long", "The "+what+" is longer than "+strconv.Itoa(max)+" characters.").
			with("field", what).with("max_length", max)
	}
	return nil
}

// threadScope narrows message threads (alias mt) to the caller's: a
// patient's own and their dependants' (while the proxy relation lasts),
// a doctor's own. Nobody else has threads.
func threadScope(p Principal) func(*gorm.DB) *gorm.DB {
	return func(q *gorm.DB) *gorm.DB {
		switch p.Role {
		case models.RolePatient:
			return where(q, p, patientReachSQL("mt.patient_id"))
		case models.RoleDoctor:
			return q.Where("mt.practitioner_id = ?", p.PractitionerID)
		}
		return q.Where("false")
	}
}

// doctorReaches reports whether the practitioner reaches the patient as
// reach.go says: a booked, attended or missed visit, or a care assignment
// that lasts now. A patient may start a thread only with such a doctor.
func doctorReaches(tx *gorm.DB, practitioner, patient uuid.UUID) (bool, error) {
	return reachesPatient(tx, Principal{Role: models.RoleDoctor, PractitionerID: practitioner}, patient)
}

// threadFor loads the thread id within the caller's scope, locked for a
// change when lock is set; anything else is "not found".
func threadFor(tx *gorm.DB, p Principal, raw string, lock bool) (models.MessageThread, error) {
	var t models.MessageThread
	id, err := uuid.Parse(raw)
	if err != nil {
		return t, notFound("message thread")
	}
	q := tx.Table("message_threads mt").Select("mt.*").Scopes(threadScope(p)).Where("mt.id = ?", id)
	if lock {
		q = q.Clauses(clause.Locking{Strength: "UPDATE", Table: clause.Table{Name: "mt"}})
	}
	if err := q.Take(&t).Error; errors.Is(err, gorm.ErrRecordNotFound) {
		return t, notFound("message thread")
	} else if err != nil {
		return t, internal(err)
	}
	return t, nil
}

// keys is the keyring that seals and opens messages; a server built
// without one answers 503 rather than store a message in the clear.
func (s *Server) keys() (*keyring.Keyring, error) {
	if s.Keys == nil {
		return nil, unavailable(errors.New("messages: no keyring"))
	}
	return s.Keys, nil
}

// senderSide is "patient" or "doctor": the side of a thread p writes on.
func senderSide(p Principal) models.Role {
	if p.Role == models.RoleDoctor {
		return models.RoleDoctor
	}
	return models.RolePatient
}

// startThread handles POST /v1/message-threads: a patient (for themselves,
// or with patient_id for a dependant) opens a thread with a doctor they
// reach, or a doctor with a patient they reach (patient_id), with a subject
// and a first message. The other side is told by an alert that says
// nothing of the content. An Idempotency-Key makes a retry return the
// first answer and make nothing more.
func (s *Server) startThread(c *gin.Context) error {
	var req startThreadRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := messageText("subject", req.Subject, maxSubjectChars); err != nil {
		return err
	}
	if err := messageText("body", req.Body, maxMessageChars); err != nil {
		return err
	}
	p := principal(c)
	var doctor, patient uuid.UUID
	var err error
	switch p.Role {
	case models.RoleDoctor:
		if req.PractitionerID != "" && req.PractitionerID != p.PractitionerID.String() {
			// A doctor writes in their own name only.
			return forbidden()
		}
		doctor = p.PractitionerID
		if req.PatientID == "" {
			return invalid("patient-required", "Name the patient (patient_id).")
		}
		if patient, err = uuid.Parse(req.PatientID); err != nil {
			return invalid("unknown-patient", "patient_id names no patient you reach.")
		}
	default:
		if doctor, err = uuid.Parse(req.PractitionerID); err != nil {
			return invalid("unknown-practitioner", "practitioner_id names no practitioner.")
		}
		patient = p.PatientID
		if req.PatientID != "" {
			if patient, err = uuid.Parse(req.PatientID); err != nil {
				return invalid("unknown-patient", "patient_id names no patient you act for.")
			}
		}
	}
	return s.idempotent(c, func(id uuid.UUID) error {
		firstID := uuid.NewSHA1(id, []byte("first-message"))
		ctx := c.Request.Context()
		keys, err := s.keys()
		if err != nil {
			return err
		}
		subject, err := keys.SealFor(ctx, p.TenantID, keyring.Binding{Purpose: keyring.PurposeMessageSubject, Row: id.String()}, req.Subject)
		if err != nil {
			return internal(err)
		}
		body, err := keys.SealFor(ctx, p.TenantID, keyring.Binding{Purpose: keyring.PurposeMessageBody,
			Row: keyring.MessageBodyRow(id.String(), firstID.String())}, req.Body)
		if err != nil {
			return internal(err)
		}
		now := s.Now().UTC()
		t := models.MessageThread{ID: id, TenantID: p.TenantID, PatientID: patient, PractitionerID: doctor, SubjectSealed: subject,
			StartedBy: p.UserID, StartedRole: senderSide(p), CreatedAt: now, LastMessageAt: now}
		err = s.inTenant(c, func(tx *gorm.DB) error {
			if done, err := retried(tx, id, &t); err != nil || done {
				return err
			}
			var pt models.Patient
			// FOR SHARE waits for an erasure holding the patient's row.
			if err := tx.Clauses(clause.Locking{Strength: "SHARE"}).Where("id = ?", patient).Take(&pt).Error; err != nil {
				return lookupProblem(err, "unknown-patient", "patient_id names no patient you reach.")
			}
			if p.Role == models.RoleDoctor {
				ok, err := reachesPatient(tx, p, patient)
				if err != nil {
					return internal(err)
				}
				if !ok {
					return invalid("unknown-patient", "patient_id names no patient you reach.")
				}
			} else {
				if patient != p.PatientID {
					ok, err := reachesPatient(tx, p, patient)
					if err != nil {
						return internal(err)
					}
					if !ok {
						return invalid("unknown-patient", "patient_id names no patient you act for.")
					}
				}
				var pr models.Practitioner
				if err := tx.Where("id = ?", doctor).Take(&pr).Error; err != nil {
					return lookupProblem(err, "unknown-practitioner", "practitioner_id names no practitioner.")
				}
				ok, err := doctorReaches(tx, doctor, patient)
				if err != nil {
					return internal(err)
				}
				if !ok {
					return invalid("unreached-practitioner",
						"You can write to a doctor you have or had a visit with, or who is assigned to your care.")
				}
			}
			if pt.ErasedAt != nil {
				return conflict("patient-erased", "The patient was erased; no thread can be started about them.")
			}
			if err := tx.Create(&t).Error; err != nil {
				return internal(err)
			}
			m := s.newMessage(p, t, firstID, body, now)
			if err := tx.Create(&m).Error; err != nil {
				return internal(err)
			}
			if err := s.alertRecipients(tx, t, m); err != nil {
				return err
			}
			if err := s.audit(c, tx, "message-thread-start", "message_thread", &t.ID, &t.PatientID, ""); err != nil {
				return err
			}
			return s.audit(c, tx, "message-send", "message", &m.ID, &t.PatientID, "")
		})
		if err != nil {
			return err
		}
		out := summarise(t)
		out.MessageID = firstID.String()
		c.Header("Location", "/v1/message-threads/"+t.ID.String())
		c.JSON(http.StatusCreated, out)
		return nil
	})
}

func (s *Server) newMessage(p Principal, t models.MessageThread, id uuid.UUID, body []byte, at time.Time) models.Message {
	m := models.Message{ID: id, TenantID: t.TenantID, ThreadID: t.ID, SenderUser: p.UserID, SenderRole: senderSide(p),
		BodySealed: body, SentAt: at}
	if m.SenderRole == models.RolePatient {
		sender := p.PatientID
		m.SenderPatientID = &sender
	}
	return m
}

// alertRecipients puts a new-message alert in the outbox for every account
// on the other side of the thread: the doctor's, or the patient's own and
// those of their proxies while the relation lasts. The alert is an e-mail,
// like the other service mails (appointment confirmations): no consent is
// asked for it, and it carries no subject, body or name, only a fixed text
// and a link to the thread.
func (s *Server) alertRecipients(tx *gorm.DB, t models.MessageThread, m models.Message) error {
	var users []uuid.UUID
	var err error
	if m.SenderRole == models.RolePatient {
		err = tx.Model(&models.User{}).Where("role = ? AND practitioner_id = ?", models.RoleDoctor, t.PractitionerID).
			Pluck("id", &users).Error
	} else {
		err = tx.Model(&models.User{}).Where("role = ? AND (patient_id = ? OR patient_id IN (SELECT px.proxy_patient_id FROM proxy_relations px WHERE px.patient_id = ? AND "+
			activeWindow("px")+"))", models.RolePatient, t.PatientID, t.PatientID).Pluck("id", &users).Error
	}
	if err != nil {
		return internal(err)
	}
	payload, err := json.Marshal(map[string]string{
		"threadID": t.ID.String(),
		"text":     newMessageText,
		"link":     strings.TrimSuffix(s.AppURL, "/") + "/messages/" + t.ID.String(),
	})
	if err != nil {
		return internal(err)
	}
	for _, u := range users {
		if u == m.SenderUser {
			continue
		}
		u := u
		n := models.Notification{TenantID: t.TenantID, DedupeKey: "message:" + m.ID.String() + ":" + u.String(), RecipientUser: &u,
			Channel: models.ChannelEmail, Template: newMessageTemplate, Payload: payload, ScheduledFor: m.SentAt}
		if err := models.Enqueue(tx, n); err != nil {
			return internal(err)
		}
	}
	return nil
}

// sendMessage handles POST /v1/message-threads/{id}/messages: either side
// of an open thread replies. An Idempotency-Key makes a retried send one
// message.
func (s *Server) sendMessage(c *gin.Context) error {
	var req sendMessageRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := messageText("body", req.Body, maxMessageChars); err != nil {
		return err
	}
	p := principal(c)
	threadID, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return notFound("message thread")
	}
	keys, err := s.keys()
	if err != nil {
		return err
	}
	return s.idempotent(c, func(id uuid.UUID) error {
		body, err := keys.SealFor(c.Request.Context(), p.TenantID, keyring.Binding{Purpose: keyring.PurposeMessageBody,
			Row: keyring.MessageBodyRow(threadID.String(), id.String())}, req.Body)
		if err != nil {
			return internal(err)
		}
		var m models.Message
		err = s.inTenant(c, func(tx *gorm.DB) error {
			t, err := threadFor(tx, p, threadID.String(), true)
			if err != nil {
				return err
			}
			if done, err := retried(tx, id, &m); err != nil || done {
				return err
			}
			if t.ClosedAt != nil {
				return conflict("thread-closed", "The doctor closed this thread; start a new one.")
			}
			m = s.newMessage(p, t, id, body, s.Now().UTC())
			if err := tx.Create(&m).Error; err != nil {
				return internal(err)
			}
			if err := tx.Model(&models.MessageThread{}).Where("id = ?", t.ID).Update("last_message_at", m.SentAt).Error; err != nil {
				return internal(err)
			}
			if err := s.alertRecipients(tx, t, m); err != nil {
				return err
			}
			return s.audit(c, tx, "message-send", "message", &m.ID, &t.PatientID, "")
		})
		if err != nil {
			return err
		}
		c.Header("Location", "/v1/message-threads/"+threadID.String())
		c.JSON(http.StatusCreated, gin.H{"id": m.ID.String(), "thread_id": threadID.String(), "sender_role": string(m.SenderRole),
			"sent_at": m.SentAt.UTC()})
		return nil
	})
}

// threadRow is a thread with the caller's unread count.
type threadRow struct {
	models.MessageThread `gorm:"embedded"`
	Unread               int64
	PatientGiven         string
	PatientFamily        string
	PractitionerName     string
}

// threadColumns selects a thread, the names of its two sides, and how many
// messages from the other side the user has not marked read.
const threadColumns = `mt.*, pt.given_name AS patient_given, pt.family_name AS patient_family, pr.display_name AS practitioner_name,
	(SELECT count(*) FROM messages um WHERE um.thread_id = mt.id AND um.sender_user <> ?
	   AND um.seq > coalesce((SELECT r.last_read_seq FROM message_reads r WHERE r.thread_id = mt.id AND r.user_id = ?), 0)) AS unread`

func threadsQuery(tx *gorm.DB, p Principal) *gorm.DB {
	return tx.Table("message_threads mt").Select(threadColumns, p.UserID, p.UserID).
		Joins("JOIN patients pt ON pt.id = mt.patient_id").
		Joins("JOIN practitioners pr ON pr.id = mt.practitioner_id").
		Scopes(threadScope(p))
}

// viewThread opens a thread's subject for its reader.
func (s *Server) viewThread(c *gin.Context, r threadRow) (threadView, error) {
	keys, err := s.keys()
	if err != nil {
		return threadView{}, err
	}
	subject, err := keys.OpenFor(c.Request.Context(), r.TenantID, keyring.Binding{Purpose: keyring.PurposeMessageSubject, Row: r.ID.String()}, r.SubjectSealed)
	if err != nil {
		return threadView{}, internal(err)
	}
	return threadView{threadSummary: summarise(r.MessageThread), PatientName: strings.TrimSpace(r.PatientGiven + " " + r.PatientFamily),
		PractitionerName: r.PractitionerName, Subject: subject, Unread: r.Unread}, nil
}

// listThreads handles GET /v1/message-threads?state=open|closed|all
// &patient_id=: the caller's threads (a patient's own and dependants', a
// doctor's), latest activity first, at most 200, each with its subject and
// the caller's unread count; unread sums them. Each patient shown is
// audited.
func (s *Server) listThreads(c *gin.Context) error {
	p := principal(c)
	state := c.DefaultQuery("state", "all")
	if state != "open" && state != "closed" && state != "all" {
		return badRequest("invalid-parameter", "state is open, closed or all.")
	}
	var patient *uuid.UUID
	if v := c.Query("patient_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return badRequest("invalid-parameter", "patient_id must be a UUID.")
		}
		patient = &id
	}
	var rows []threadRow
	err := s.inTenant(c, func(tx *gorm.DB) error {
		q := threadsQuery(tx, p).Order("mt.last_message_at DESC, mt.id").Limit(maxThreads)
		switch state {
		case "open":
			q = q.Where("mt.closed_at IS NULL")
		case "closed":
			q = q.Where("mt.closed_at IS NOT NULL")
		}
		if patient != nil {
			q = q.Where("mt.patient_id = ?", *patient)
		}
		if err := q.Scan(&rows).Error; err != nil {
			return internal(err)
		}
		patients := make([]uuid.UUID, len(rows))
		for i, r := range rows {
			patients[i] = r.PatientID
		}
		return s.auditListed(c, tx, "message_thread", patients)
	})
	if err != nil {
		return err
	}
	items := make([]threadView, 0, len(rows))
	var unread int64
	for _, r := range rows {
		v, err := s.viewThread(c, r)
		if err != nil {
			return err
		}
		unread += r.Unread
		items = append(items, v)
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "unread": unread})
	return nil
}

// getThread handles GET /v1/message-threads/{id}: the thread with its
// messages, opened, oldest first (at most 1000). Reading does not mark it
// read; POST .../read does.
func (s *Server) getThread(c *gin.Context) error {
	p := principal(c)
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return notFound("message thread")
	}
	var row threadRow
	var msgs []struct {
		models.Message `gorm:"embedded"`
		PatientGiven   string
		PatientFamily  string
		DoctorName     string
	}
	err = s.inTenant(c, func(tx *gorm.DB) error {
		if err := threadsQuery(tx, p).Where("mt.id = ?", id).Take(&row).Error; errors.Is(err, gorm.ErrRecordNotFound) {
			return notFound("message thread")
		} else if err != nil {
			return internal(err)
		}
		if err := tx.Table("messages m").Select(`m.*, sp.given_name AS patient_given, sp.family_name AS patient_family, pr.display_name AS doctor_name`).
			Joins("LEFT JOIN patients sp ON sp.id = m.sender_patient_id").
			Joins("JOIN message_threads t ON t.id = m.thread_id").
			Joins("JOIN practitioners pr ON pr.id = t.practitioner_id").
			Where("m.thread_id = ?", id).Order("m.seq").Limit(maxThreadMessages).Scan(&msgs).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "read", "message_thread", &row.ID, &row.PatientID, "")
	})
	if err != nil {
		return err
	}
	v, err := s.viewThread(c, row)
	if err != nil {
		return err
	}
	v.Messages = make([]messageView, 0, len(msgs))
	for _, m := range msgs {
		body, err := s.Keys.OpenFor(c.Request.Context(), m.TenantID, keyring.Binding{Purpose: keyring.PurposeMessageBody,
			Row: keyring.MessageBodyRow(m.ThreadID.String(), m.ID.String())}, m.BodySealed)
		if err != nil {
			return internal(err)
		}
		mv := messageView{ID: m.ID.String(), SenderRole: string(m.SenderRole), Mine: m.SenderUser == p.UserID, SentAt: m.SentAt.UTC(), Body: body}
		if m.SenderRole == models.RoleDoctor {
			mv.SenderName = m.DoctorName
		} else {
			mv.SenderName = strings.TrimSpace(m.PatientGiven + " " + m.PatientFamily)
			mv.SentByProxy = m.SenderPatientID != nil && *m.SenderPatientID != row.PatientID
		}
		v.Messages = append(v.Messages, mv)
	}
	c.JSON(http.StatusOK, v)
	return nil
}

// markThreadRead handles POST /v1/message-threads/{id}/read: every
// message the thread holds now counts as read for the caller (their
// unread count for it becomes 0; later messages count again).
func (s *Server) markThreadRead(c *gin.Context) error {
	p := principal(c)
	var last int64
	var t models.MessageThread
	err := s.inTenant(c, func(tx *gorm.DB) error {
		var err error
		if t, err = threadFor(tx, p, c.Param("id"), false); err != nil {
			return err
		}
		if err := tx.Raw("SELECT coalesce(max(seq), 0) FROM messages WHERE thread_id = ?", t.ID).Scan(&last).Error; err != nil {
			return internal(err)
		}
		err = tx.Exec(`INSERT INTO message_reads (tenant_id, thread_id, user_id, last_read_seq, read_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (thread_id, user_id) DO UPDATE SET last_read_seq = greatest(message_reads.last_read_seq, excluded.last_read_seq),
			read_at = excluded.read_at`, p.TenantID, t.ID, p.UserID, last, s.Now().UTC()).Error
		if err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "message-mark-read", "message_thread", &t.ID, &t.PatientID, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"thread_id": t.ID.String(), "unread": 0})
	return nil
}

// closeThread handles POST /v1/message-threads/{id}/close: the doctor ends
// the conversation; nobody can write in it any more, and both sides still
// read it. A patient with more to say starts a new thread.
func (s *Server) closeThread(c *gin.Context) error {
	p := principal(c)
	var t models.MessageThread
	err := s.inTenant(c, func(tx *gorm.DB) error {
		var err error
		if t, err = threadFor(tx, p, c.Param("id"), true); err != nil {
			return err
		}
		if t.ClosedAt != nil {
			return conflict("thread-closed", "This thread is already closed.")
		}
		now := s.Now().UTC()
		t.ClosedAt, t.ClosedBy = &now, &p.UserID
		if err := tx.Model(&models.MessageThread{}).Where("id = ?", t.ID).
			Updates(map[string]any{"closed_at": now, "closed_by": p.UserID}).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "message-thread-close", "message_thread", &t.ID, &t.PatientID, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, summarise(t))
	return nil
}
