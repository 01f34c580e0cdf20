package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/objstore"
)

// Archival. A tenant's oldest events leave audit_events for the object
// store in segments, each one gzip of JSON lines in chain order, stored
// content-addressed under SegmentKind and recorded in audit_segments
// before the rows are deleted (through audit_delete_archived, the only
// way the application role can delete an event). Verify then walks the
// chain from the first segment through the rows still online.

// SegmentKind is the object-store kind of archived segments.
const SegmentKind = "audit-segments"

// ErrChainBroken means the events about to be archived do not form an
// unbroken chain under the key. Archiving stops rather than carry a
// break into the archive, where it would be harder to look at; run
// `carebook audit verify` to see where it is.
var ErrChainBroken = errors.New("audit: chain broken")

// segmentLine is one event of a segment object. The names are the
// columns', so an archive can be read without this code.
type segmentLine struct {
	ID           uuid.UUID  `json:"id"`
	TenantID     uuid.UUID  `json:"tenant_id"`
	Seq          int64      `json:"seq"`
	PrevHash     string     `json:"prev_hash"`
	Hash         string     `json:"hash"`
	At           time.Time  `json:"at"`
	ActorUser    *uuid.UUID `json:"actor_user,omitempty"`
	ActorRole    string     `json:"actor_role"`
	Action       string     `json:"action"`
	ResourceType string     `json:"resource_type"`
	ResourceID   *uuid.UUID `json:"resource_id,omitempty"`
	PatientID    *uuid.UUID `json:"patient_id,omitempty"`
	ClientAddr   string     `json:"client_addr,omitempty"`
	RequestID    string     `json:"request_id,omitempty"`
	Reason       string     `json:"reason,omitempty"`
}

// encodeSegment is the segment object of events. The same events always
// give the same bytes (gzip with no name and no time in its header), so a
// retried archive step writes the same content address again.
func encodeSegment(events []models.AuditEvent) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	enc := json.NewEncoder(zw)
	for _, e := range events {
		if err := enc.Encode(segmentLine{
			ID: e.ID, TenantID: e.TenantID, Seq: e.Seq, PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash),
			At: e.At.UTC(), ActorUser: e.ActorUser, ActorRole: e.ActorRole, Action: e.Action, ResourceType: e.ResourceType,
			ResourceID: e.ResourceID, PatientID: e.PatientID, ClientAddr: e.ClientAddr, RequestID: e.RequestID, Reason: e.Reason,
		}); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeSegment reads a segment object back into events.
func decodeSegment(body []byte) ([]models.AuditEvent, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	var out []models.AuditEvent
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l segmentLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, err
		}
		prev, err1 := hex.DecodeString(l.PrevHash)
		hash, err2 := hex.DecodeString(l.Hash)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		out = append(out, models.AuditEvent{
			ID: l.ID, TenantID: l.TenantID, Seq: l.Seq, PrevHash: prev, Hash: hash, At: l.At, ActorUser: l.ActorUser,
			ActorRole: l.ActorRole, Action: l.Action, ResourceType: l.ResourceType, ResourceID: l.ResourceID,
			PatientID: l.PatientID, ClientAddr: l.ClientAddr, RequestID: l.RequestID, Reason: l.Reason,
		})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, err
	}
	return out, nil
}

// Archived is what one ArchiveSegment call did.
type Archived struct {
	Segment  uuid.UUID // zero when there was nothing to archive
	FirstSeq int64
	LastSeq  int64
	Deleted  int64 // rows this call deleted; 0 when a retry finds them gone
}

// ArchiveSegment archives the tenant's oldest online events that are
// older than before, at most max of them: it writes them as one segment
// object, records the segment, and deletes the rows it covers, the last
// two in one transaction. It archives nothing (a zero Segment) when the
// oldest online event is not older than before.
//
// Each step can be repeated: the object is content-addressed, the record
// is keyed by its first event, and deleting rows already deleted deletes
// none. A crash between the object and the record leaves an object no
// record names, which the next call writes again under the same key.
// It returns ErrChainBroken, archiving nothing, when the events it would
// archive do not link up under key.
func ArchiveSegment(ctx context.Context, db *gorm.DB, store *objstore.Store, key []byte, tenant uuid.UUID, before time.Time, max int) (Archived, error) {
	var out Archived
	if len(key) < minKey {
		return out, errors.New("audit: no key")
	}
	if max < 1 {
		return out, errors.New("audit: segment size must be positive")
	}
	var rows []models.AuditEvent
	err := models.InTenant(ctx, db, tenant, func(tx *gorm.DB) error {
		return tx.Where("seq >= (SELECT min(seq) FROM audit_events WHERE tenant_id = ?)", tenant).
			Order("seq").Limit(max).Find(&rows).Error
	})
	if err != nil {
		return out, fmt.Errorf("audit: load oldest events: %w", err)
	}
	n := 0
	for n < len(rows) && rows[n].At.Before(before) {
		e := rows[n]
		if n > 0 && (e.Seq != rows[n-1].Seq+1 || !bytes.Equal(e.PrevHash, rows[n-1].Hash)) {
			return out, fmt.Errorf("%w: event %d does not follow event %d", ErrChainBroken, e.Seq, rows[n-1].Seq)
		}
		if !bytes.Equal(e.Hash, Hash(key, e)) {
			return out, fmt.Errorf("%w: event %d does not match its hash", ErrChainBroken, e.Seq)
		}
		n++
	}
	if n == 0 {
		return out, nil
	}
	rows = rows[:n]
	first, last := rows[0], rows[n-1]
	body, err := encodeSegment(rows)
	if err != nil {
		return out, fmt.Errorf("audit: encode segment: %w", err)
	}
	obj, err := store.Put(ctx, tenant, SegmentKind, body, "application/gzip")
	if err != nil {
		return out, fmt.Errorf("audit: store segment: %w", err)
	}
	seg := models.AuditSegment{
		ID: uuid.New(), TenantID: tenant, FirstSeq: first.Seq, LastSeq: last.Seq, FirstPrevHash: first.PrevHash,
		LastHash: last.Hash, ObjectKey: obj.Key, SHA256: obj.SHA256, Events: int64(n),
	}
	err = models.InTenant(ctx, db, tenant, func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&seg).Error; err != nil {
			return fmt.Errorf("record segment: %w", err)
		}
		// A run that raced this one may have recorded the same events first.
		if err := tx.Where("first_seq = ?", first.Seq).Take(&seg).Error; err != nil {
			return fmt.Errorf("load segment: %w", err)
		}
		return tx.Raw("SELECT audit_delete_archived(?)", seg.ID).Scan(&out.Deleted).Error
	})
	if err != nil {
		return out, fmt.Errorf("audit: archive events %d-%d: %w", first.Seq, last.Seq, err)
	}
	out.Segment, out.FirstSeq, out.LastSeq = seg.ID, seg.FirstSeq, seg.LastSeq
	return out, nil
}

// AnchorKind is the object-store kind of head anchors.
const AnchorKind = "audit-anchors"

// anchorVersion starts every anchor's MAC, as hashVersion does events'.
const anchorVersion = "carebook-audit-anchor-v1"

// Anchor is a tenant's chain head as seen at At, kept outside Postgres so
// that cutting the tail of the log and moving audit_heads back to match
// is found: the database's head must not be behind the newest anchor, and
// the event at the anchored seq must still have the anchored hash. MAC
// keys it to the audit key, so an anchor cannot be forged either.
type Anchor struct {
	TenantID uuid.UUID `json:"tenant_id"`
	Seq      int64     `json:"seq"`
	Hash     string    `json:"hash"` // hex
	At       time.Time `json:"at"`
	MAC      string    `json:"mac"` // hex HMAC-SHA256 under the audit key
}

func anchorMAC(key []byte, a Anchor) string {
	record, _ := json.Marshal([]any{anchorVersion, a.TenantID.String(), a.Seq, a.Hash, a.At.UTC().UnixNano()})
	mac := hmac.New(sha256.New, key)
	mac.Write(record)
	return hex.EncodeToString(mac.Sum(nil))
}

// anchorKey names an anchor so that a listing, which S3 returns in key
// order, starts with the newest: the highest seq, and of those the
// latest time. Both are stored as their distance below the largest int64.
func anchorKey(a Anchor) string {
	const top = int64(^uint64(0) >> 1)
	return fmt.Sprintf("%s%s/%019d-%019d.json", objstore.TenantPrefix(a.TenantID), AnchorKind, top-a.Seq, top-a.At.UnixNano())
}

// errForgedAnchor is a newest anchor whose MAC does not hold.
var errForgedAnchor = errors.New("audit: anchor MAC does not hold")

// NewestAnchor returns the tenant's anchor with the highest seq, and false
// when there is none. An anchor whose MAC does not hold under key is
// returned with an error.
func NewestAnchor(ctx context.Context, store *objstore.Store, key []byte, tenant uuid.UUID) (Anchor, bool, error) {
	keys, err := store.List(ctx, tenant, AnchorKind, 1)
	if err != nil || len(keys) == 0 {
		return Anchor{}, false, err
	}
	body, err := store.Get(ctx, tenant, keys[0])
	if err != nil {
		return Anchor{}, false, err
	}
	var a Anchor
	if err := json.Unmarshal(body, &a); err != nil {
		return a, true, fmt.Errorf("%w: %v", errForgedAnchor, err)
	}
	if a.TenantID != tenant || !hmac.Equal([]byte(a.MAC), []byte(anchorMAC(key, a))) || anchorKey(a) != keys[0] {
		return a, true, errForgedAnchor
	}
	return a, true, nil
}

// writeAnchor stores an anchor of head at now, unless the newest anchor
// already records the same head. Anchors are written once and never
// replaced; see objstore.PutKeyOnce for what makes that hold.
func writeAnchor(ctx context.Context, store *objstore.Store, key []byte, head models.AuditHead, now time.Time) (Anchor, error) {
	a := Anchor{TenantID: head.TenantID, Seq: head.Seq, Hash: hex.EncodeToString(head.Hash), At: now.UTC()}
	if newest, ok, err := NewestAnchor(ctx, store, key, head.TenantID); err == nil && ok && newest.Seq == a.Seq && newest.Hash == a.Hash {
		return newest, nil
	}
	a.MAC = anchorMAC(key, a)
	body, _ := json.Marshal(a)
	if _, err := store.PutKeyOnce(ctx, head.TenantID, anchorKey(a), body, "application/json"); err != nil && !errors.Is(err, objstore.ErrExists) {
		return a, fmt.Errorf("audit: write anchor: %w", err)
	}
	return a, nil
}

// AnchorHead records the tenant's current chain head in the object store
// (see Anchor) and returns it. Events appended after it are covered by
// the next anchor only: until then, a cut-off tail that the head was
// moved back to hide goes unseen.
func AnchorHead(ctx context.Context, db *gorm.DB, store *objstore.Store, key []byte, tenant uuid.UUID, now time.Time) (Anchor, error) {
	if len(key) < minKey {
		return Anchor{}, errors.New("audit: no key")
	}
	head := models.AuditHead{TenantID: tenant, Hash: []byte{}}
	err := models.InTenant(ctx, db, tenant, func(tx *gorm.DB) error {
		var heads []models.AuditHead
		if err := tx.Where("tenant_id = ?", tenant).Limit(1).Find(&heads).Error; err != nil {
			return err
		}
		if len(heads) == 1 {
			head = heads[0]
		}
		return nil
	})
	if err != nil {
		return Anchor{}, fmt.Errorf("audit: load head: %w", err)
	}
	return writeAnchor(ctx, store, key, head, now)
}
