package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/carebook/carebook/internal/sessionkeys"
	"github.com/carebook/carebook/models"
)

// Sessions. A login opens a session: a family of refresh tokens kept in
// Redis, of which only the newest is good. Each refresh answers a new
// access token and a new refresh token and retires the one presented; a
// retired token presented again means it was copied, so the whole family
// is revoked at once (the thief and the user both have to log in again).
// Logout revokes the session; "log out everywhere" revokes every session
// of the user and every access token issued before it. An access token
// names its session, and works only while that session's key exists, so
// ending a session (logout, a reused refresh token) ends its access
// tokens at once rather than when they expire.

// RefreshTTL is how long a session lives without being refreshed.
const RefreshTTL = 30 * 24 * time.Hour

// session is what Redis holds for one family; the secret itself is never
// stored, only its hash.
type session struct {
	User    uuid.UUID `json:"u"`
	Tenant  uuid.UUID `json:"t"`
	Current string    `json:"c"` // hex SHA-256 of the good refresh secret
	// Revoked marked a revoked family before revocation deleted the key;
	// still honoured for records written then.
	Revoked bool `json:"r,omitempty"`
	// Opened is when the session began (Unix ms): a "log out everywhere"
	// after it ends it, whether or not the user's list still names it.
	Opened int64 `json:"o"`
}

func (s *Server) sessionKey(family string) string {
	return sessionkeys.Session(s.RedisPrefix, family)
}
func (s *Server) userSessionsKey(user uuid.UUID) string {
	return sessionkeys.UserSessions(s.RedisPrefix, user)
}
func (s *Server) revokedBeforeKey(user uuid.UUID) string {
	return sessionkeys.RevokedBefore(s.RedisPrefix, user)
}

func secretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// openSession starts a family for u and answers its first refresh token.
func (s *Server) openSession(ctx context.Context, u models.User) (string, error) {
	if s.Redis == nil {
		return "", nil
	}
	var fam [16]byte
	_, _ = rand.Read(fam[:])
	family, secret := hex.EncodeToString(fam[:]), newSecret()
	body, _ := json.Marshal(session{User: u.ID, Tenant: u.TenantID, Current: secretHash(secret), Opened: s.Now().UnixMilli()})
	_, err := s.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.sessionKey(family), body, RefreshTTL)
		p.SAdd(ctx, s.userSessionsKey(u.ID), family)
		p.Expire(ctx, s.userSessionsKey(u.ID), RefreshTTL)
		return nil
	})
	if err != nil {
		return "", err
	}
	return family + "." + secret, nil
}

var errSessionGone = errors.New("session expired or revoked")

// rotate checks a refresh token and replaces its secret, atomically: of
// two refreshes racing with one token, one wins and the other is a reuse.
func (s *Server) rotate(ctx context.Context, token string) (session, string, error) {
	family, secret, ok := strings.Cut(token, ".")
	if !ok || len(family) != 32 || secret == "" || len(token) > 200 {
		return session{}, "", errSessionGone
	}
	key := s.sessionKey(family)
	var out session
	next := newSecret()
	err := s.Redis.Watch(ctx, func(tx *redis.Tx) error {
		raw, err := tx.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return errSessionGone
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		if out.Revoked {
			return errSessionGone
		}
		if before, err := s.revokedBefore(ctx, out.User); err != nil {
			return err
		} else if before > 0 && out.Opened <= before {
			return errSessionGone
		}
		if subtle.ConstantTimeCompare([]byte(secretHash(secret)), []byte(out.Current)) != 1 {
			// A retired token: someone kept a copy. Revoke the family by
			// deleting its key, which is what ends its access tokens too
			// (checkSession). Its next refresh finds no session.
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Del(ctx, key)
				return nil
			})
			if err != nil {
				return err
			}
			return errRefreshReused
		}
		out.Current = secretHash(next)
		body, _ := json.Marshal(out)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, body, RefreshTTL)
			// The user's list of sessions lives as long as its newest.
			p.SAdd(ctx, s.userSessionsKey(out.User), family)
			p.Expire(ctx, s.userSessionsKey(out.User), RefreshTTL)
			return nil
		})
		return err
	}, key)
	if errors.Is(err, redis.TxFailedErr) {
		// Another refresh of the same token committed first: this one
		// presented a token that is now retired.
		return s.rotate(ctx, token)
	}
	if err != nil {
		// out names the session's user and tenant when the token was a
		// retired one, so the reuse can be recorded.
		return out, "", err
	}
	return out, family + "." + next, nil
}

var errRefreshReused = errors.New("refresh token reused")

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// refresh handles POST /v1/auth/refresh: a new access token and refresh
// token for a good refresh token. A retired one revokes its session.
func (s *Server) refresh(c *gin.Context) error {
	var req refreshRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	gone := unauthorized("The session has ended; log in again.")
	gone.Type = "session-ended"
	sess, next, err := s.rotate(c.Request.Context(), req.RefreshToken)
	if errors.Is(err, errSessionGone) {
		return gone
	}
	if errors.Is(err, errRefreshReused) {
		if err := s.auditLogin(c, sess.Tenant, &sess.User, "", "refresh-reused", "session revoked"); err != nil {
			return err
		}
		return gone
	}
	if err != nil {
		return unavailable(err)
	}
	var u models.User
	err = models.InTenant(c.Request.Context(), s.DB, sess.Tenant, func(tx *gorm.DB) error {
		return tx.Where("id = ?", sess.User).Take(&u).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return gone
	}
	if err != nil {
		return internal(err)
	}
	return s.respondTokens(c, http.StatusOK, u, next)
}

// logout handles POST /v1/auth/logout: the caller's session ends, or the
// session of the given refresh token (the caller's own only).
func (s *Server) logout(c *gin.Context) error {
	// Without a body, the session the access token was issued in ends.
	// With a refresh token, that token's session ends instead, when it is
	// the caller's (logging out another of one's devices).
	family := principal(c).SessionID
	if c.Request.ContentLength != 0 {
		var req struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := bindJSON(c, &req); err != nil {
			return err
		}
		if req.RefreshToken != "" {
			family, _, _ = strings.Cut(req.RefreshToken, ".")
		}
	}
	if len(family) == 32 {
		raw, err := s.Redis.Get(c.Request.Context(), s.sessionKey(family)).Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			return unavailable(err)
		}
		var sess session
		if err == nil && json.Unmarshal(raw, &sess) == nil && sess.User == principal(c).UserID {
			if err := s.Redis.Del(c.Request.Context(), s.sessionKey(family)).Err(); err != nil {
				return unavailable(err)
			}
		}
	}
	c.Status(http.StatusNoContent)
	return nil
}

// logoutEverywhere handles POST /v1/auth/logout-all: every session of the
// caller ends, and every access token issued until now stops working.
func (s *Server) logoutEverywhere(c *gin.Context) error {
	user := principal(c).UserID
	if err := s.endSessions(c.Request.Context(), user, s.Now()); err != nil {
		return unavailable(err)
	}
	if err := s.inTenant(c, func(tx *gorm.DB) error {
		return s.audit(c, tx, "logout-everywhere", "session", &user, nil, "")
	}); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// endSessions ends every session of user and every access token issued
// to it up to and including the millisecond of before: log out
// everywhere, and what a password reset or change does.
func (s *Server) endSessions(ctx context.Context, user uuid.UUID, before time.Time) error {
	families, err := s.Redis.SMembers(ctx, s.userSessionsKey(user)).Result()
	if err != nil {
		return err
	}
	_, err = s.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, f := range families {
			p.Del(ctx, s.sessionKey(f))
		}
		p.Del(ctx, s.userSessionsKey(user))
		// Kept as long as a session can live: it also ends sessions the
		// list missed (one opened while this ran).
		p.Set(ctx, s.revokedBeforeKey(user), strconv.FormatInt(before.UnixMilli(), 10), RefreshTTL)
		return nil
	})
	return err
}

// checkSession refuses an access token whose session has ended (logout,
// a reused refresh token, log out everywhere, a password reset, an
// erasure) or that was issued before the user last logged out
// everywhere. It costs one round trip to Redis: an EXISTS on the
// session's key and a GET of the user's cut-off, pipelined.
//
// A token that names no session is refused whenever sessions are kept:
// every token this server issues names one, and a client holding an older
// token gets a new one from its refresh token.
func (s *Server) checkSession(ctx context.Context, p Principal) error {
	if s.Redis == nil {
		return nil
	}
	ended := unauthorized("This session has ended; log in again.")
	ended.Type = "session-ended"
	if len(p.SessionID) != 32 {
		return ended
	}
	var (
		exists *redis.IntCmd
		before *redis.StringCmd
	)
	_, err := s.Redis.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		exists = pipe.Exists(ctx, s.sessionKey(p.SessionID))
		before = pipe.Get(ctx, s.revokedBeforeKey(p.UserID))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return unavailable(err)
	}
	if v, err := before.Result(); err == nil {
		if cut, _ := strconv.ParseInt(v, 10, 64); p.IssuedAt.UnixMilli() <= cut {
			return unauthorized("You logged out everywhere; log in again.")
		}
	} else if !errors.Is(err, redis.Nil) {
		return unavailable(err)
	}
	if n, err := exists.Result(); err != nil {
		return unavailable(err)
	} else if n == 0 {
		return ended
	}
	return nil
}

// revokedBefore is when the user last logged out everywhere (Unix ms), or
// 0.
func (s *Server) revokedBefore(ctx context.Context, user uuid.UUID) (int64, error) {
	v, err := s.Redis.Get(ctx, s.revokedBeforeKey(user)).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	before, _ := strconv.ParseInt(v, 10, 64)
	return before, nil
}
