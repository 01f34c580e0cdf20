package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/keyring"
)

// messagesFile holds the patient's message threads and their messages,
// opened when the patient (or their proxy) asked for the export. An export
// staff or an admin asked for lists the threads and messages without their
// text, as it does clinical notes: the desk and the privacy officer have
// no messaging route, and an export must not be one.
const messagesFile = "messages.json"

// exportedThread is one thread of messages.json.
type exportedThread struct {
	ID               string            `json:"id"`
	PractitionerID   string            `json:"practitioner_id"`
	PractitionerName string            `json:"practitioner_name"`
	Subject          string            `json:"subject,omitempty"`
	StartedRole      string            `json:"started_role"`
	CreatedAt        time.Time         `json:"created_at"`
	ClosedAt         *time.Time        `json:"closed_at,omitempty"`
	Messages         []exportedMessage `json:"messages"`
	// TextWithheld says the subject and the bodies were left out.
	TextWithheld bool `json:"text_withheld,omitempty"`
}

type exportedMessage struct {
	ID              string    `json:"id"`
	SenderRole      string    `json:"sender_role"`
	SenderUser      string    `json:"sender_user"`
	SenderPatientID string    `json:"sender_patient_id,omitempty"`
	SentAt          time.Time `json:"sent_at"`
	Body            string    `json:"body,omitempty"`
	TextWithheld    bool      `json:"text_withheld,omitempty"`
}

// exportMessages renders messages.json: every thread about the patient
// (whoever wrote in it: the patient, a proxy for them, the doctor) with
// its subject and messages opened when open is true, oldest first. It
// answers the file and the number of threads.
func (d *DSR) exportMessages(ctx context.Context, tx *gorm.DB, tenant, patient uuid.UUID, open bool) ([]byte, int, error) {
	var threads []struct {
		ID               uuid.UUID
		PractitionerID   uuid.UUID
		PractitionerName string
		SubjectSealed    []byte
		StartedRole      string
		CreatedAt        time.Time
		ClosedAt         *time.Time
	}
	if err := tx.Raw(`SELECT mt.id, mt.practitioner_id, pr.display_name AS practitioner_name, mt.subject_sealed, mt.started_role,
			mt.created_at, mt.closed_at
		FROM message_threads mt JOIN practitioners pr ON pr.id = mt.practitioner_id
		WHERE mt.patient_id = ? ORDER BY mt.created_at, mt.id`, patient).Scan(&threads).Error; err != nil {
		return nil, 0, fmt.Errorf("load threads: %w", err)
	}
	if open && len(threads) > 0 && d.Keys == nil {
		return nil, 0, errors.New("messages are sealed and the export has no keyring")
	}
	out := make([]exportedThread, 0, len(threads))
	for _, t := range threads {
		et := exportedThread{ID: t.ID.String(), PractitionerID: t.PractitionerID.String(), PractitionerName: t.PractitionerName,
			StartedRole: t.StartedRole, CreatedAt: t.CreatedAt.UTC(), ClosedAt: timePtr(derefTime(t.ClosedAt)),
			Messages: []exportedMessage{}, TextWithheld: !open}
		if open {
			subject, err := d.Keys.OpenFor(ctx, tenant, keyring.Binding{Purpose: keyring.PurposeMessageSubject, Row: t.ID.String()}, t.SubjectSealed)
			if err != nil {
				return nil, 0, fmt.Errorf("open a thread's subject: %w", err)
			}
			et.Subject = subject
		}
		var msgs []struct {
			ID              uuid.UUID
			SenderRole      string
			SenderUser      uuid.UUID
			SenderPatientID *uuid.UUID
			SentAt          time.Time
			BodySealed      []byte
		}
		if err := tx.Raw(`SELECT id, sender_role, sender_user, sender_patient_id, sent_at, body_sealed FROM messages
			WHERE thread_id = ? ORDER BY seq`, t.ID).Scan(&msgs).Error; err != nil {
			return nil, 0, fmt.Errorf("load messages: %w", err)
		}
		for _, m := range msgs {
			em := exportedMessage{ID: m.ID.String(), SenderRole: m.SenderRole, SenderUser: m.SenderUser.String(), SentAt: m.SentAt.UTC(), TextWithheld: !open}
			if open {
				body, err := d.Keys.OpenFor(ctx, tenant, keyring.Binding{Purpose: keyring.PurposeMessageBody,
					Row: keyring.MessageBodyRow(t.ID.String(), m.ID.String())}, m.BodySealed)
				if err != nil {
					return nil, 0, fmt.Errorf("open a message: %w", err)
				}
				em.Body = body
			}
			if m.SenderPatientID != nil {
				em.SenderPatientID = m.SenderPatientID.String()
			}
			et.Messages = append(et.Messages, em)
		}
		out = append(out, et)
	}
	body, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, 0, err
	}
	return body, len(out), nil
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
