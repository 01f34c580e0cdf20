package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// Account lockout. Failed logins are counted per tenant and e-mail as
// typed (hashed; Redis never holds the address), whether or not such an
// account exists, so a lockout says nothing about who has an account.
// From the fifth failure in an hour the account is locked, for one lockout
// period, then two, four... up to an hour; a successful login clears the
// count.
const (
	lockoutThreshold = 5
	lockoutMemory    = time.Hour
	lockoutMax       = time.Hour
	defaultLockout   = time.Minute
)

func (s *Server) lockoutKeys(tenant uuid.UUID, email string) (fails, locked string) {
	// Keyed, so that the names in Redis cannot be checked against a
	// list of e-mails without the server's key.
	mac := hmac.New(sha256.New, s.AuditKey)
	mac.Write([]byte(tenant.String() + "\x00" + email))
	id := hex.EncodeToString(mac.Sum(nil)[:16])
	return s.RedisPrefix + "login-fails:" + id, s.RedisPrefix + "login-locked:" + id
}

// lockedOut refuses a login while the account is locked.
func (s *Server) lockedOut(c *gin.Context, tenant uuid.UUID, email string) error {
	if s.Redis == nil {
		return nil
	}
	_, locked := s.lockoutKeys(tenant, email)
	ttl, err := s.Redis.PTTL(c.Request.Context(), locked).Result()
	if err != nil {
		return unavailable(err)
	}
	if ttl > 0 {
		c.Header("Retry-After", fmt.Sprint(int(math.Ceil(ttl.Seconds()))))
		return newProblem(KindTooMany, "account-locked", "Account locked",
			"Too many failed logins for this account; wait and try again, or reset the password.")
	}
	return nil
}

// loginFailed counts a failure and locks the account from the threshold
// on, for a period that doubles with every further failure.
func (s *Server) loginFailed(ctx context.Context, tenant uuid.UUID, email string) error {
	if s.Redis == nil {
		return nil
	}
	fails, locked := s.lockoutKeys(tenant, email)
	n, err := s.Redis.Incr(ctx, fails).Result()
	if err != nil {
		return unavailable(err)
	}
	if err := s.Redis.Expire(ctx, fails, lockoutMemory).Err(); err != nil {
		return unavailable(err)
	}
	if n < lockoutThreshold {
		return nil
	}
	base := s.LockoutPeriod
	if base <= 0 {
		base = defaultLockout
	}
	d := base << min(n-lockoutThreshold, 20)
	if d > lockoutMax || d <= 0 {
		d = lockoutMax
	}
	if err := s.Redis.Set(ctx, locked, "1", d).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// loginSucceeded forgets the account's failures.
func (s *Server) loginSucceeded(ctx context.Context, tenant uuid.UUID, email string) error {
	if s.Redis == nil {
		return nil
	}
	fails, _ := s.lockoutKeys(tenant, email)
	if err := s.Redis.Del(ctx, fails).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}
