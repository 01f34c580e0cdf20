// Package audit keeps the audit log tamper-evident. Every event a tenant
// records is one link of the tenant's hash chain: it carries its number
// (seq, from 1), the hash of the event before it, and its own hash over
// both. The hash is an HMAC-SHA256 under a key the api holds
// (CAREBOOK_AUDIT_KEY) and the database does not, so someone with every
// power over the database (a superuser, a restored backup, a hand edit)
// who edits, removes or reorders events cannot forge the links again:
// Verify recomputes every link and the recorded head and finds the edit,
// and a cut-off tail. A tail cut off with the head moved back to match is
// found against the newest head anchor, kept outside the database (see
// Anchor); only events appended after that anchor can be cut unseen.
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
	"github.com/carebook/carebook/objstore"
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
	Events   int64 // events checked, archived and online
	Archived int64 // of which in archived segments
	Segments int
	Head     int64
	Anchored int64   // seq of the newest head anchor checked; 0 without one
	Breaks   []Break // empty when the chain holds

	// Reanchored is the seq of the anchor WithAnchor left as the newest
	// after the check: the head just verified. Anchored is the one found
	// before it, so it trails the head by whatever arrived since the last
	// anchor; this is what the next check will compare against.
	Reanchored int64
}

// OK reports whether the chain holds.
func (r Report) OK() bool { return len(r.Breaks) == 0 }

// maxBreaks bounds a report: after one break every later link may differ.
const maxBreaks = 20

// Option changes what Verify checks.
type Option func(*verifyOptions)

type verifyOptions struct {
	store  *objstore.Store
	anchor func() time.Time
}

// WithArchive lets Verify read the tenant's archived segments and head
// anchors from store. Without it Verify fails on a tenant that has
// archived segments, and checks no anchor.
func WithArchive(store *objstore.Store) Option {
	return func(o *verifyOptions) { o.store = store }
}

// WithAnchor makes Verify, when the chain holds, record the head it
// verified as a new anchor at now() (see AnchorHead). It needs
// WithArchive.
func WithAnchor(now func() time.Time) Option {
	return func(o *verifyOptions) { o.anchor = now }
}

// Verify walks the tenant's chain in order, through its archived segments
// (each object's hash, its links and its place in the chain) and then its
// online events, and checks the end against the recorded head and the
// head against the newest anchor outside the database. db may be the
// application role's connection; it reads in a tenant transaction.
func Verify(ctx context.Context, db *gorm.DB, key []byte, tenant uuid.UUID, opts ...Option) (Report, error) {
	var o verifyOptions
	for _, opt := range opts {
		opt(&o)
	}
	rep := Report{TenantID: tenant}
	if len(key) < minKey {
		return rep, errors.New("audit: no key")
	}
	broken := func(seq int64, why string) {
		if len(rep.Breaks) < maxBreaks {
			rep.Breaks = append(rep.Breaks, Break{Seq: seq, Why: why})
		}
	}
	var (
		anchor    Anchor
		anchored  bool
		anchorHit []byte // the chain's hash at anchor.Seq, once walked
	)
	if o.store != nil {
		var err error
		anchor, anchored, err = NewestAnchor(ctx, o.store, key, tenant)
		switch {
		case errors.Is(err, errForgedAnchor):
			broken(anchor.Seq, "the newest head anchor does not match its MAC: it was forged or changed")
			anchored = false
		case err != nil:
			return rep, fmt.Errorf("audit: read head anchor: %w", err)
		}
	}
	want := int64(1)
	prev := []byte{}
	// check is one link: e must be event want, follow prev, and match its
	// hash.
	check := func(e models.AuditEvent) {
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
		if anchored && e.Seq == anchor.Seq {
			anchorHit = e.Hash
		}
		want, prev = e.Seq+1, e.Hash
	}
	var head models.AuditHead
	err := models.InTenant(ctx, db, tenant, func(tx *gorm.DB) error {
		err := tx.Where("tenant_id = ?", tenant).Take(&head).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			head = models.AuditHead{TenantID: tenant, Hash: []byte{}}
		} else if err != nil {
			return fmt.Errorf("audit: load head: %w", err)
		}
		rep.Head = head.Seq
		var segs []models.AuditSegment
		if err := tx.Order("first_seq").Find(&segs).Error; err != nil {
			return fmt.Errorf("audit: load segments: %w", err)
		}
		if len(segs) > 0 && o.store == nil {
			return fmt.Errorf("audit: %d archived segments and no object store to read them from", len(segs))
		}
		for _, seg := range segs {
			if err := verifySegment(ctx, o.store, tenant, seg, &rep, check, broken, func() (int64, []byte) { return want, prev }); err != nil {
				return err
			}
			// After a broken segment, continue from what it claims to end
			// at, so one damaged object is one break, not one per event.
			want, prev = seg.LastSeq+1, seg.LastHash
		}
		const batch = 1000
		for after := want - 1; ; {
			var rows []models.AuditEvent
			if err := tx.Where("seq > ?", after).Order("seq").Limit(batch).Find(&rows).Error; err != nil {
				return fmt.Errorf("audit: load events: %w", err)
			}
			for _, e := range rows {
				check(e)
				after = e.Seq
			}
			if len(rows) < batch {
				break
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if head.Seq != want-1 || !bytes.Equal(head.Hash, prev) {
		broken(head.Seq, fmt.Sprintf("the head records event %d but the chain ends at %d: events were removed from the end or the head was changed", head.Seq, want-1))
	}
	if anchored {
		rep.Anchored = anchor.Seq
		switch {
		case anchor.Seq > head.Seq:
			broken(anchor.Seq, fmt.Sprintf("the head records event %d but event %d was anchored outside the database at %s: the log was cut short and its head moved back",
				head.Seq, anchor.Seq, anchor.At.UTC().Format(time.RFC3339)))
		case anchor.Seq > 0 && hex.EncodeToString(anchorHit) != anchor.Hash:
			broken(anchor.Seq, "the event at the anchored head does not have the anchored hash: the log was rewritten after it was anchored")
		}
	}
	if rep.OK() && o.anchor != nil && o.store != nil {
		a, err := writeAnchor(ctx, o.store, key, head, o.anchor())
		if err != nil {
			return rep, err
		}
		rep.Reanchored = a.Seq
	}
	return rep, nil
}

// verifySegment reads one archived segment and checks it: its object's
// hash, every link in it (through check), and its record's ends. Breaks
// name the segment's events, never their contents.
func verifySegment(ctx context.Context, store *objstore.Store, tenant uuid.UUID, seg models.AuditSegment, rep *Report,
	check func(models.AuditEvent), broken func(int64, string), at func() (int64, []byte)) error {
	rep.Segments++
	want, prev := at()
	if seg.FirstSeq != want {
		broken(seg.FirstSeq, fmt.Sprintf("expected event %d here: an archived segment starts at %d, so events are missing or a segment record was removed", want, seg.FirstSeq))
	} else if !bytes.Equal(seg.FirstPrevHash, prev) {
		broken(seg.FirstSeq, "an archived segment does not link to the event before it")
	}
	body, err := store.Get(ctx, tenant, seg.ObjectKey)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		broken(seg.FirstSeq, fmt.Sprintf("the archived segment of events %d-%d is missing from the object store", seg.FirstSeq, seg.LastSeq))
		return nil
	case errors.Is(err, objstore.ErrCorrupt), errors.Is(err, objstore.ErrForeignKey), errors.Is(err, objstore.ErrInvalid):
		broken(seg.FirstSeq, fmt.Sprintf("the archived segment of events %d-%d does not match its hash: it was changed", seg.FirstSeq, seg.LastSeq))
		return nil
	case err != nil:
		return fmt.Errorf("audit: read segment: %w", err)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != seg.SHA256 {
		broken(seg.FirstSeq, fmt.Sprintf("the archived segment of events %d-%d does not match its recorded SHA-256: it was changed", seg.FirstSeq, seg.LastSeq))
		return nil
	}
	events, err := decodeSegment(body)
	if err != nil {
		broken(seg.FirstSeq, fmt.Sprintf("the archived segment of events %d-%d cannot be read", seg.FirstSeq, seg.LastSeq))
		return nil
	}
	for _, e := range events {
		if e.TenantID != tenant {
			broken(e.Seq, "an archived event belongs to another tenant")
		}
		rep.Archived++
		check(e)
	}
	end, last := at()
	if int64(len(events)) != seg.Events || end-1 != seg.LastSeq || !bytes.Equal(last, seg.LastHash) {
		broken(seg.LastSeq, fmt.Sprintf("the archived segment of events %d-%d does not end where its record says", seg.FirstSeq, seg.LastSeq))
	}
	return nil
}
