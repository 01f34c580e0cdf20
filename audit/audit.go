// Package audit keeps the audit log tamper-evident. Every event a tenant
// records is one link of the tenant's hash chain: it carries its number
// (seq, from 1), the hash of the event before it, and its own hash over
// both. The hash is an HMAC-SHA256 under a key the api holds
// (CAREBOOK_AUDIT_KEY) and the database does not, so someone with every
// power over the database (a superuser, a restored backup, a hand edit)
// who edits, removes or reorders events cannot forge the links again:
// Verify recomputes every link and the recorded head and finds the edit,
// and a cut-off tail unless the head was moved back too. (Anchoring the
// head outside the database, which would catch that, is not done yet.)
package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
)

// hashVersion starts every hashed record, so a later change of what is
// hashed can be told apart from tampering.
const hashVersion = "carebook-audit-v1"

// Append chains e after the tenant's last event and inserts it, in tx,
// which must be a transaction in e's tenant (models.InTenant). It sets e's
// ID (when empty), Seq, PrevHash, Hash, and At (when zero; cut to the
// microsecond Postgres keeps). Appending locks the tenant's chain head
// until tx ends, so a tenant's events are chained one at a time.
func Append(tx *gorm.DB, key []byte, e *models.AuditEvent) error {
	if len(key) < minKey {
		return errors.New("audit: no key")
	}
	if e.TenantID == uuid.Nil {
		return errors.New("audit: event without a tenant")
	}
	if e.ID == uuid.Nil {
		e.ID = uuid.New()
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.UTC().Truncate(time.Microsecond)
	head, err := lockHead(tx, e.TenantID)
	if err != nil {
		return err
	}
	e.Seq = head.Seq + 1
	e.PrevHash = head.Hash
	e.Hash = Hash(key, *e)
	if err := tx.Create(e).Error; err != nil {
		return fmt.Errorf("audit: insert event: %w", err)
	}
	if err := tx.Model(&models.AuditHead{}).Where("tenant_id = ?", e.TenantID).
		Updates(map[string]any{"seq": e.Seq, "hash": e.Hash}).Error; err != nil {
		return fmt.Errorf("audit: move chain head: %w", err)
	}
	return nil
}

// lockHead locks the tenant's chain head, opening the chain on the
// tenant's first event. Every later append finds the head at once.
func lockHead(tx *gorm.DB, tenant uuid.UUID) (models.AuditHead, error) {
	var heads []models.AuditHead
	for range 2 {
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("tenant_id = ?", tenant).Limit(1).Find(&heads).Error; err != nil {
			return models.AuditHead{}, fmt.Errorf("audit: lock chain: %w", err)
		}
		if len(heads) == 1 {
			return heads[0], nil
		}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&models.AuditHead{TenantID: tenant, Seq: 0, Hash: []byte{}}).Error; err != nil {
			return models.AuditHead{}, fmt.Errorf("audit: open chain: %w", err)
		}
	}
	return models.AuditHead{}, errors.New("audit: chain head missing")
}

// minKey is the shortest key Append and Verify accept.
const minKey = 32

// Hash is the event's link: HMAC-SHA256 under key over a fixed encoding of
// every field but the hash itself, including the previous link.
func Hash(key []byte, e models.AuditEvent) []byte {
	opt := func(u *uuid.UUID) string {
		if u == nil {
			return ""
		}
		return u.String()
	}
	record, _ := json.Marshal([]any{
		hashVersion, e.ID.String(), e.TenantID.String(), e.Seq, hex.EncodeToString(e.PrevHash),
		e.At.UTC().UnixMicro(), opt(e.ActorUser), e.ActorRole, e.Action, e.ResourceType, opt(e.ResourceID),
		opt(e.PatientID), e.ClientAddr, e.RequestID, e.Reason,
	})
	mac := hmac.New(sha256.New, key)
	mac.Write(record)
	return mac.Sum(nil)
}

// Break is one place where a chain does not hold.
type Break struct {
	Seq int64  // the event's number, or the head's for a head mismatch
	Why string // what does not hold; names fields, never values
}

// Report is what Verify found for one tenant.
type Report struct {
	TenantID uuid.UUID
	Events   int64
	Head     int64
	Breaks   []Break // empty when the chain holds
}

// OK reports whether the chain holds.
func (r Report) OK() bool { return len(r.Breaks) == 0 }

// maxBreaks bounds a report: after one break every later link may differ.
const maxBreaks = 20

// Verify walks the tenant's chain in order and checks every link against
// the recorded head. db may be the application role's connection; it
// reads in a tenant transaction.
func Verify(ctx context.Context, db *gorm.DB, key []byte, tenant uuid.UUID) (Report, error) {
	rep := Report{TenantID: tenant}
	if len(key) < minKey {
		return rep, errors.New("audit: no key")
	}
	broken := func(seq int64, why string) {
		if len(rep.Breaks) < maxBreaks {
			rep.Breaks = append(rep.Breaks, Break{Seq: seq, Why: why})
		}
	}
	err := models.InTenant(ctx, db, tenant, func(tx *gorm.DB) error {
		var head models.AuditHead
		err := tx.Where("tenant_id = ?", tenant).Take(&head).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			head = models.AuditHead{TenantID: tenant, Hash: []byte{}}
		} else if err != nil {
			return fmt.Errorf("audit: load head: %w", err)
		}
		rep.Head = head.Seq
		want := int64(1)
		prev := []byte{}
		const batch = 1000
		for after := int64(0); ; {
			var rows []models.AuditEvent
			if err := tx.Where("seq > ?", after).Order("seq").Limit(batch).Find(&rows).Error; err != nil {
				return fmt.Errorf("audit: load events: %w", err)
			}
			for _, e := range rows {
				rep.Events++
				if e.Seq != want {
					broken(e.Seq, fmt.Sprintf("expected event %d here: events are missing or renumbered", want))
				}
				if !bytes.Equal(e.PrevHash, prev) {
					broken(e.Seq, "prev_hash is not the hash of the event before it")
				}
				if !bytes.Equal(e.Hash, Hash(key, e)) {
					broken(e.Seq, "the event's fields do not match its hash: it was changed")
				}
				want, prev, after = e.Seq+1, e.Hash, e.Seq
			}
			if len(rows) < batch {
				break
			}
		}
		if head.Seq != want-1 || !bytes.Equal(head.Hash, prev) {
			broken(head.Seq, fmt.Sprintf("the head records event %d but the chain ends at %d: events were removed from the end or the head was changed", head.Seq, want-1))
		}
		return nil
	})
	return rep, err
}
