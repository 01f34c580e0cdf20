package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
)

// idempotencyNamespace seeds the resource IDs derived from keys.
var idempotencyNamespace = uuid.MustParse("0d6c3c8e-5d0a-4f53-9f52-1c0c2f7d9a11")

// staleClaim is when an unanswered key is taken over by a retry: longer than
// any request can run (workflowWait plus slack), so only a request whose
// process died is ever taken over. The retry derives the same resource ID
// and so reaches the same workflow, which answers with its first outcome.
const staleClaim = workflowWait + 40*time.Second

// idempotent runs fn once per Idempotency-Key (per user) and replays its
// first answer to every repeat. fn receives the ID of the resource to
// create, derived from the key so that a retry after a crash creates the
// same one. Server errors (5xx) are not kept: the client may retry them.
func (s *Server) idempotent(c *gin.Context, fn func(id uuid.UUID) error) error {
	key := c.GetHeader("Idempotency-Key")
	if key == "" {
		return fn(uuid.New())
	}
	if len(key) > 255 || !printableASCII(key) {
		return badRequest("invalid-idempotency-key", "Idempotency-Key must be 1 to 255 printable ASCII characters.")
	}
	p := principal(c)
	body, err := readBody(c)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(append([]byte(c.Request.Method+" "+c.Request.URL.Path+"\n"), body...))
	hash := hex.EncodeToString(sum[:])
	id := uuid.NewSHA1(idempotencyNamespace, []byte(p.TenantID.String()+"/"+p.UserID.String()+"/"+key))

	var replay *models.IdempotencyKey
	err = s.inTenant(c, func(tx *gorm.DB) error {
		row := models.IdempotencyKey{TenantID: p.TenantID, UserID: p.UserID, Key: key, RequestHash: hash, CreatedAt: s.Now()}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil || res.RowsAffected == 1 {
			return res.Error
		}
		var prior models.IdempotencyKey
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).
			Where("user_id = ? AND key = ?", p.UserID, key).Take(&prior).Error; err != nil {
			return err
		}
		switch {
		case prior.RequestHash != hash:
			return invalid("idempotency-key-reused", "This Idempotency-Key was used for a different request.")
		case prior.StatusCode != nil:
			replay = &prior
			return nil
		case s.Now().Sub(prior.CreatedAt) < staleClaim:
			c.Header("Retry-After", "1")
			return conflict("idempotency-in-progress", "A request with this Idempotency-Key is still running; retry shortly.")
		}
		return tx.Model(&prior).Where("user_id = ? AND key = ?", p.UserID, key).Update("created_at", s.Now()).Error
	})
	if err != nil {
		if _, ok := err.(*Problem); ok {
			return err
		}
		return internal(err)
	}
	if replay != nil {
		c.Header("Idempotent-Replayed", "true")
		c.Data(*replay.StatusCode, contentTypeFor(*replay.StatusCode), replay.ResponseBody)
		return nil
	}

	rec := &recorder{ResponseWriter: c.Writer}
	c.Writer = rec
	if err := fn(id); err != nil {
		s.renderError(c, err)
	}
	status := rec.Status()
	err = s.inTenant(c, func(tx *gorm.DB) error {
		q := tx.Model(&models.IdempotencyKey{}).Where("user_id = ? AND key = ?", p.UserID, key)
		if status >= 500 {
			return q.Delete(&models.IdempotencyKey{}).Error
		}
		return q.Updates(map[string]any{"status_code": status, "response_body": rec.body.Bytes()}).Error
	})
	if err != nil {
		// The answer went out; a retry within staleClaim is told to wait,
		// after it the same resource ID gets the workflow's first outcome.
		s.Logger.WarnContext(c.Request.Context(), "idempotency answer not stored", "error", err)
	}
	return nil
}

func contentTypeFor(status int) string {
	if status >= 400 {
		return "application/problem+json"
	}
	return "application/json; charset=utf-8"
}

func printableASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// recorder keeps a copy of the body written through it.
type recorder struct {
	gin.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) WriteString(s string) (int, error) {
	r.body.WriteString(s)
	return r.ResponseWriter.WriteString(s)
}
