package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-redis/redis_rate/v10"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/audit"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/passwords"
)

// Account e-mails. A patient who signs up is sent a link that proves the
// address is theirs; anyone who forgot a password asks for a link that
// lets them set a new one. Each link carries a single-use secret of 256
// random bits; the database keeps only its SHA-256, so neither a database
// dump nor a replica opens an account.
//
// These mails are sent from the request (verification) or from a
// goroutine it starts (reset), never through the notification outbox: an
// outbox row and a workflow's history are stored and retried, and the
// secret would sit in them in plain text, readable by anyone with the
// database or the Temporal UI. A mail lost here is asked for again.

// How long each kind of link works: a day to open a welcome mail; half an
// hour for a reset, because a reset link in a mailbox is a password.
const (
	verifyTTL = 24 * time.Hour
	resetTTL  = 30 * time.Minute
)

// maxPassword is the longest password accepted: more than any passphrase a
// person types, and a bound on what one login makes argon2id hash.
const maxPassword = 128

// defaultResetLimit is password-reset requests (and, separately, reset
// confirmations) per client address a minute: more than a person needs,
// and each request can cost a mail.
const defaultResetLimit = 5

// accountMailRate bounds the account mails one address receives, whoever
// asks: without it, anyone could flood a stranger's mailbox through us.
var accountMailRate = Rate{N: 3, Per: time.Hour}

// accountMailTimeout bounds one delivery to the SMTP server.
const accountMailTimeout = 15 * time.Second

func tokenHash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// Hashes go to SQL as hex: GORM would expand a []byte argument of a raw
// query into a list of its bytes.
const hashParam = "decode(?, 'hex')"

// badToken is the one answer for a link that is unknown, used or
// expired, so a guess learns nothing about which.
func badToken() *Problem {
	return invalid("invalid-token", "This link is unknown, used or expired; ask for a new one.")
}

// issueToken stores a new token of purpose for u and returns its secret.
func (s *Server) issueToken(ctx context.Context, u models.User, purpose string, ttl time.Duration, ev *models.AuditEvent) (string, error) {
	secret := newSecret()
	now := s.Now().UTC()
	row := models.AccountToken{ID: uuid.New(), TenantID: u.TenantID, UserID: u.ID, Purpose: purpose,
		TokenHash: tokenHash(secret), CreatedAt: now, ExpiresAt: now.Add(ttl)}
	err := models.InTenant(ctx, s.DB, u.TenantID, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		if ev != nil {
			return audit.Append(tx, s.AuditKey, ev)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("store account token: %w", err)
	}
	return secret, nil
}

// sendToken issues a token of purpose for u and mails its link.
func (s *Server) sendToken(ctx context.Context, t models.Tenant, u models.User, purpose string, ev *models.AuditEvent) error {
	return s.sendTokenMail(ctx, t, u, purpose, purpose, ev)
}

// sendTokenMail issues a token of purpose for u and mails its link in the
// mail of kind (a purpose, or mailSignupAttempt).
func (s *Server) sendTokenMail(ctx context.Context, t models.Tenant, u models.User, purpose, kind string, ev *models.AuditEvent) error {
	if s.Mailer == nil {
		return errors.New("no mail server configured (CAREBOOK_SMTP_ADDR)")
	}
	ttl := verifyTTL
	if purpose == models.PurposePasswordReset {
		ttl = resetTTL
	}
	secret, err := s.issueToken(ctx, u, purpose, ttl, ev)
	if err != nil {
		return err
	}
	if err := s.Mailer.Send(ctx, accountMail(kind, s.AppURL, t.Name, u.Email, secret)); err != nil {
		return err
	}
	s.Logger.InfoContext(ctx, "account mail sent", "tenantID", u.TenantID, "userID", u.ID, "purpose", kind)
	return nil
}

// tokenTenant finds the tenant of a token's secret. Row security hides
// every tenant's tokens until the tenant is known, so a database function
// answers this one fact.
func (s *Server) tokenTenant(ctx context.Context, secret string) (uuid.UUID, []byte, error) {
	// newSecret makes 43 characters; anything else was never issued.
	if len(secret) != 43 {
		return uuid.Nil, nil, badToken()
	}
	hash := tokenHash(secret)
	var row struct{ Tenant *uuid.UUID }
	err := s.DB.WithContext(ctx).Raw("SELECT account_token_tenant("+hashParam+") AS tenant", hex.EncodeToString(hash)).Scan(&row).Error
	if err != nil {
		return uuid.Nil, nil, internal(err)
	}
	if row.Tenant == nil {
		return uuid.Nil, nil, badToken()
	}
	return *row.Tenant, hash, nil
}

// validToken returns the user of a token that is unused and unexpired by
// the server's clock, without spending it.
func (s *Server) validToken(tx *gorm.DB, hash []byte, purpose string) (uuid.UUID, error) {
	var ids []uuid.UUID
	err := tx.Model(&models.AccountToken{}).
		Where("token_hash = "+hashParam+" AND purpose = ? AND used_at IS NULL AND expires_at > ?", hex.EncodeToString(hash), purpose, s.Now().UTC()).
		Pluck("user_id", &ids).Error
	if err != nil {
		return uuid.Nil, internal(err)
	}
	if len(ids) == 0 {
		return uuid.Nil, badToken()
	}
	return ids[0], nil
}

// spendToken marks the token used and returns its user; of two requests
// racing with one token, one spends it and the other gets badToken.
func (s *Server) spendToken(tx *gorm.DB, hash []byte, purpose string) (uuid.UUID, error) {
	now := s.Now().UTC()
	var ids []uuid.UUID
	err := tx.Raw(`UPDATE account_tokens SET used_at = ?
		WHERE token_hash = `+hashParam+` AND purpose = ? AND used_at IS NULL AND expires_at > ?
		RETURNING user_id`, now, hex.EncodeToString(hash), purpose, now).Scan(&ids).Error
	if err != nil {
		return uuid.Nil, internal(err)
	}
	if len(ids) == 0 {
		return uuid.Nil, badToken()
	}
	return ids[0], nil
}

// spendOutstanding retires every unused token of purpose of user: after a
// password is set, an older reset link in a mailbox must not set another.
func (s *Server) spendOutstanding(tx *gorm.DB, user uuid.UUID, purpose string) error {
	return tx.Model(&models.AccountToken{}).
		Where("user_id = ? AND purpose = ? AND used_at IS NULL", user, purpose).
		Update("used_at", s.Now().UTC()).Error
}

// checkPassword applies the password rules (passwords.Policy) for an
// account with email in tenant t.
func (s *Server) checkPassword(password, email string, t models.Tenant) error {
	p := passwords.Policy{Min: minPassword, Max: maxPassword, Hashes: s.BreachedPasswords}
	err := p.Check(password, email, t.Slug, t.Name)
	var r *passwords.Refusal
	if !errors.As(err, &r) {
		return err
	}
	switch r.Reason {
	case passwords.TooShort, passwords.TooLong:
		return invalid("weak-password", fmt.Sprintf("Choose a password of %d to %d characters.", minPassword, maxPassword))
	case passwords.LikeEmail:
		return invalid("password-is-email", "Choose a password that is not your e-mail address.")
	default:
		return invalid("breached-password", "This password is among those attackers try first (it is common or has leaked); choose another.")
	}
}

type tokenRequest struct {
	Token string `json:"token"`
}

// verifyEmail handles POST /v1/auth/verify-email: the token from a
// verification mail marks its user's address verified, once.
func (s *Server) verifyEmail(c *gin.Context) error {
	var req tokenRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	// As many as logins: a clinic's patients may share one address.
	if err := s.throttle(c, "verify-email", s.LoginLimit); err != nil {
		return err
	}
	tenant, hash, err := s.tokenTenant(c.Request.Context(), req.Token)
	if err != nil {
		return err
	}
	err = models.InTenant(c.Request.Context(), s.DB, tenant, func(tx *gorm.DB) error {
		id, err := s.spendToken(tx, hash, models.PurposeVerifyEmail)
		if err != nil {
			return err
		}
		var u models.User
		if err := tx.Where("id = ?", id).Take(&u).Error; err != nil {
			return internal(err)
		}
		if err := tx.Model(&u).Where("email_verified_at IS NULL").Update("email_verified_at", s.Now().UTC()).Error; err != nil {
			return internal(err)
		}
		return s.record(c, tx, models.AuditEvent{TenantID: tenant, ActorUser: &u.ID, ActorRole: string(u.Role),
			Action: "email-verified", ResourceType: "user", ResourceID: &u.ID})
	})
	if err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// resendVerification handles POST /v1/me/verification-email: a new
// verification link to the caller's address (a few an hour at most).
func (s *Server) resendVerification(c *gin.Context) error {
	p := principal(c)
	var u models.User
	var t models.Tenant
	err := s.inTenant(c, func(tx *gorm.DB) error {
		if err := tx.Where("id = ?", p.TenantID).Take(&t).Error; err != nil {
			return err
		}
		return tx.Where("id = ?", p.UserID).Take(&u).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return unauthorized("This account no longer exists.")
	}
	if err != nil {
		return internal(err)
	}
	if u.EmailVerifiedAt != nil {
		return conflict("already-verified", "Your e-mail address is already verified.")
	}
	if err := s.rateLimit(c, "verify-mail:"+u.ID.String(), accountMailRate,
		"A few verification mails an hour at most; check your mailbox, or wait and try again."); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), accountMailTimeout)
	defer cancel()
	if err := s.sendToken(ctx, t, u, models.PurposeVerifyEmail, nil); err != nil {
		return unavailable(err)
	}
	c.JSON(http.StatusAccepted, gin.H{"status": "sent"})
	return nil
}

// mailSignupAttempt tells the owner of email, which already has an
// account in t, that someone tried to sign up with it, and mails a
// password-reset link with it: the owner who forgot they had an account
// gets back in, anyone else learns nothing from the sign-up's answer.
// It runs after the answer; a failure is logged. The attempt is audited
// on the account whether or not a mail goes out; the mails an address
// receives are limited as resets are.
func (s *Server) mailSignupAttempt(ctx context.Context, t models.Tenant, email, ip, reqID string) {
	var user models.User
	err := models.InTenant(ctx, s.DB, t.ID, func(tx *gorm.DB) error {
		return tx.Where("lower(email) = ?", email).Take(&user).Error
	})
	if err != nil {
		s.Logger.ErrorContext(ctx, "sign-up of a taken address: account not read", "tenantID", t.ID, "error", err)
		return
	}
	ev := models.AuditEvent{TenantID: t.ID, ActorUser: &user.ID, ActorRole: string(user.Role), At: s.Now().UTC(),
		Action: "signup-attempt", ResourceType: "user", ResourceID: &user.ID, ClientAddr: ip, RequestID: reqID,
		Reason: "address has an account"}
	fails, _ := s.lockoutKeys(t.ID, email)
	allowed, err := s.allow(ctx, "signup-mail:"+strings.TrimPrefix(fails, s.RedisPrefix+"login-fails:"), accountMailRate)
	if err != nil || !allowed || s.Mailer == nil {
		ev.Reason = "address has an account; no mail (limit reached or no mail server)"
		err := models.InTenant(ctx, s.DB, t.ID, func(tx *gorm.DB) error { return audit.Append(tx, s.AuditKey, &ev) })
		if err != nil {
			s.Logger.ErrorContext(ctx, "sign-up of a taken address: not audited", "tenantID", t.ID, "userID", user.ID, "error", err)
		}
		return
	}
	if err := s.sendTokenMail(ctx, t, user, models.PurposePasswordReset, mailSignupAttempt, &ev); err != nil {
		s.Logger.ErrorContext(ctx, "sign-up attempt mail not sent", "tenantID", t.ID, "userID", user.ID, "error", err)
	}
}

type resetRequest struct {
	Tenant string `json:"tenant"`
	Email  string `json:"email"`
}

// requestPasswordReset handles POST /v1/auth/password-reset: when the
// tenant has an account with the address, a reset link is mailed to it.
// The answer is the same 202 either way, and takes as long: the lookup
// runs for every request and the mail goes out after the answer, so
// neither the body nor the time says whether the account exists.
func (s *Server) requestPasswordReset(c *gin.Context) error {
	var req resetRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := s.throttle(c, "password-reset", s.ResetLimit); err != nil {
		return err
	}
	email, err := normaliseEmail(req.Email)
	if err != nil {
		return err
	}
	accepted := func() error {
		c.JSON(http.StatusAccepted, gin.H{"status": "accepted",
			"detail": "If an account uses this address, a link to choose a new password is on its way; it works for 30 minutes."})
		return nil
	}
	if s.Mailer == nil {
		return unavailable(errors.New("no mail server configured (CAREBOOK_SMTP_ADDR)"))
	}
	tenant, err := s.tenantBySlug(c.Request.Context(), req.Tenant)
	var p *Problem
	if errors.As(err, &p) && p.Kind == KindNotFound {
		return accepted()
	}
	if err != nil {
		return err
	}
	// Counted per address whether or not it has an account, like the
	// lockout, so the limit says nothing either.
	fails, _ := s.lockoutKeys(tenant.ID, email)
	allowed, err := s.allow(c.Request.Context(), "reset-mail:"+strings.TrimPrefix(fails, s.RedisPrefix+"login-fails:"), accountMailRate)
	if err != nil {
		return unavailable(err)
	}
	var user models.User
	err = models.InTenant(c.Request.Context(), s.DB, tenant.ID, func(tx *gorm.DB) error {
		return tx.Where("lower(email) = ?", email).Take(&user).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) || !allowed {
		return accepted()
	}
	if err != nil {
		return internal(err)
	}
	// The request's context ends with the answer; the mail outlives it.
	ctx, ip, reqID := context.WithoutCancel(c.Request.Context()), c.ClientIP(), requestID(c)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, accountMailTimeout)
		defer cancel()
		ev := models.AuditEvent{TenantID: tenant.ID, ActorUser: &user.ID, ActorRole: string(user.Role), At: s.Now().UTC(),
			Action: "password-reset-requested", ResourceType: "user", ResourceID: &user.ID, ClientAddr: ip, RequestID: reqID}
		if err := s.sendToken(ctx, tenant, user, models.PurposePasswordReset, &ev); err != nil {
			s.Logger.ErrorContext(ctx, "password reset mail not sent", "tenantID", tenant.ID, "userID", user.ID, "error", err)
		}
	}()
	return accepted()
}

// allow spends one of key's allowance and reports whether there was one,
// for limits that must not answer differently when they bite.
func (s *Server) allow(ctx context.Context, key string, r Rate) (bool, error) {
	if s.limiter == nil {
		return true, nil
	}
	res, err := s.limiter.Allow(ctx, s.RedisPrefix+key, redis_rate.Limit{Rate: r.N, Burst: r.N, Period: r.Per})
	if err != nil {
		return false, err
	}
	return res.Allowed > 0, nil
}

type resetConfirmRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// confirmPasswordReset handles POST /v1/auth/password-reset/confirm: the
// token from a reset mail sets a new password, once. Every session and
// access token of the user ends (whoever knew the old password is out),
// the lockout clears, and the address counts as verified: the link
// reached it.
func (s *Server) confirmPasswordReset(c *gin.Context) error {
	var req resetConfirmRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := s.throttle(c, "password-reset-confirm", s.ResetLimit); err != nil {
		return err
	}
	ctx := c.Request.Context()
	tenantID, hash, err := s.tokenTenant(ctx, req.Token)
	if err != nil {
		return err
	}
	var t models.Tenant
	var u models.User
	err = models.InTenant(ctx, s.DB, tenantID, func(tx *gorm.DB) error {
		id, err := s.validToken(tx, hash, models.PurposePasswordReset)
		if err != nil {
			return err
		}
		if err := tx.Where("id = ?", tenantID).Take(&t).Error; err != nil {
			return internal(err)
		}
		if err := tx.Where("id = ?", id).Take(&u).Error; err != nil {
			return internal(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The rules come before the token is spent: a refused password
	// leaves the link working for a better one.
	if err := s.checkPassword(req.Password, u.Email, t); err != nil {
		return err
	}
	newHash, err := HashPassword(req.Password)
	if err != nil {
		return internal(err)
	}
	err = models.InTenant(ctx, s.DB, tenantID, func(tx *gorm.DB) error {
		if _, err := s.spendToken(tx, hash, models.PurposePasswordReset); err != nil {
			return err
		}
		now := s.Now().UTC()
		if err := tx.Model(&models.User{}).Where("id = ?", u.ID).Updates(map[string]any{
			"password_hash":     newHash,
			"email_verified_at": gorm.Expr("coalesce(email_verified_at, ?)", now),
		}).Error; err != nil {
			return internal(err)
		}
		if err := s.spendOutstanding(tx, u.ID, models.PurposePasswordReset); err != nil {
			return internal(err)
		}
		if err := s.record(c, tx, models.AuditEvent{TenantID: tenantID, ActorUser: &u.ID, ActorRole: string(u.Role),
			Action: "password-reset", ResourceType: "user", ResourceID: &u.ID}); err != nil {
			return err
		}
		// Last before the commit: if Redis is down the password stays
		// as it was and the link still works, rather than a new
		// password with the old sessions alive.
		if err := s.endSessions(ctx, u.ID, now); err != nil {
			return unavailable(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.clearLockout(ctx, tenantID, normalisedOrRaw(u.Email)); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// clearLockout forgets an account's failed logins and lifts its lock.
func (s *Server) clearLockout(ctx context.Context, tenant uuid.UUID, email string) error {
	if s.Redis == nil {
		return nil
	}
	fails, locked := s.lockoutKeys(tenant, email)
	if err := s.Redis.Del(ctx, fails, locked).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword handles POST /v1/me/password: a signed-in user sets a new
// password by giving the current one. Every other session of the user
// ends; the caller gets a new session in the answer. A wrong current
// password counts towards the account's lockout like a failed login, so
// a stolen access token cannot be used to guess it.
func (s *Server) changePassword(c *gin.Context) error {
	var req changePasswordRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	p := principal(c)
	var u models.User
	var t models.Tenant
	err := s.inTenant(c, func(tx *gorm.DB) error {
		if err := tx.Where("id = ?", p.TenantID).Take(&t).Error; err != nil {
			return err
		}
		return tx.Where("id = ?", p.UserID).Take(&u).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return unauthorized("This account no longer exists.")
	}
	if err != nil {
		return internal(err)
	}
	email := normalisedOrRaw(u.Email)
	if err := s.lockedOut(c, p.TenantID, email); err != nil {
		return err
	}
	ok, err := CheckPassword(u.PasswordHash, req.CurrentPassword)
	if err != nil {
		return internal(err)
	}
	if !ok {
		if err := s.loginFailed(c.Request.Context(), p.TenantID, email); err != nil {
			return err
		}
		if err := s.inTenant(c, func(tx *gorm.DB) error {
			return s.audit(c, tx, "password-change-failed", "user", &u.ID, nil, "wrong current password")
		}); err != nil {
			return err
		}
		return invalid("wrong-password", "The current password is wrong.")
	}
	if err := s.checkPassword(req.NewPassword, u.Email, t); err != nil {
		return err
	}
	newHash, err := HashPassword(req.NewPassword)
	if err != nil {
		return internal(err)
	}
	// One millisecond back: the caller's new session, opened just below,
	// must outlive the cut. A session opened elsewhere within that same
	// millisecond survives it, a window no attacker can aim for.
	cut := s.Now().Add(-time.Millisecond)
	err = s.inTenant(c, func(tx *gorm.DB) error {
		if err := tx.Model(&models.User{}).Where("id = ?", u.ID).Update("password_hash", newHash).Error; err != nil {
			return internal(err)
		}
		if err := s.spendOutstanding(tx, u.ID, models.PurposePasswordReset); err != nil {
			return internal(err)
		}
		if err := s.audit(c, tx, "password-changed", "user", &u.ID, nil, ""); err != nil {
			return err
		}
		if err := s.endSessions(c.Request.Context(), u.ID, cut); err != nil {
			return unavailable(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.loginSucceeded(c.Request.Context(), p.TenantID, email); err != nil {
		return err
	}
	u.PasswordHash = newHash
	return s.respondToken(c, http.StatusOK, u)
}

// normalisedOrRaw is the address as login counts it (lower case), so a
// wrong current password here and a failed login share one lockout.
func normalisedOrRaw(email string) string {
	if e, err := normaliseEmail(email); err == nil {
		return e
	}
	return email
}
