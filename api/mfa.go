package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
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
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/totp"
)

// Multi-factor authentication. After a correct password, a user with TOTP
// enrolled gets no tokens but an MFA challenge token, which buys the
// normal tokens together with a current TOTP code or an unused recovery
// code (POST /v1/auth/mfa/verify). A user whose role requires MFA and who
// has none gets an enrolment token instead, which can only start and
// confirm an enrolment (POST /v1/auth/mfa/enrol and .../enrol/confirm).
// Both are opaque strings kept in Redis, not JWTs: they can never pass
// as access tokens. Wrong codes count toward the account lockout of the
// password (lockout.go), so the second factor cannot be guessed at more
// leisurely than the first.

// MFATokenTTL is how long a challenge or enrolment token lasts: enough to
// find the phone, or to install an authenticator app.
const MFATokenTTL = 5 * time.Minute

// recoveryCodeCount is how many recovery codes an enrolment hands out.
const recoveryCodeCount = 10

// mfaIssuer names Carebook in authenticator apps.
const mfaIssuer = "Carebook"

// mfaRequired reports whether role may not sign in without MFA: everyone
// who sees other people's data.
func mfaRequired(r models.Role) bool {
	switch r {
	case models.RoleDoctor, models.RoleStaff, models.RoleBilling, models.RoleAdmin:
		return true
	}
	return false
}

type mfaPurpose string

const (
	mfaChallenge mfaPurpose = "challenge"
	mfaEnrol     mfaPurpose = "enrol"
)

// mfaTicket is what Redis holds for a challenge or enrolment token; the
// token itself is kept only as a hash.
type mfaTicket struct {
	User    uuid.UUID  `json:"u"`
	Tenant  uuid.UUID  `json:"t"`
	Purpose mfaPurpose `json:"p"`
	// Expires is Unix ms on the server's clock (Server.Now), checked on
	// every use; Redis's own expiry only clears the key away.
	Expires int64 `json:"e"`
}

func (s *Server) mfaTokenKey(token string) string {
	return s.RedisPrefix + "mfa-token:" + secretHash(token)
}

// mfaPending is the answer to a correct password when a second step is
// due: 202 Accepted, no tokens.
type mfaPending struct {
	Status    string    `json:"status"` // mfa_required or mfa_enrolment_required
	MFAToken  string    `json:"mfa_token"`
	ExpiresIn int       `json:"expires_in"`
	ExpiresAt time.Time `json:"expires_at"`
	// Methods are what the token accepts next.
	Methods []string `json:"methods"`
}

// respondMFA answers a correct password for u with a token for purpose.
func (s *Server) respondMFA(c *gin.Context, u models.User, purpose mfaPurpose) error {
	if s.Redis == nil {
		return unavailable(errors.New("mfa needs redis"))
	}
	ctx := c.Request.Context()
	token := "mfa_" + newSecret()
	exp := s.Now().Add(MFATokenTTL)
	body, _ := json.Marshal(mfaTicket{User: u.ID, Tenant: u.TenantID, Purpose: purpose, Expires: exp.UnixMilli()})
	if err := s.Redis.Set(ctx, s.mfaTokenKey(token), body, MFATokenTTL).Err(); err != nil {
		return unavailable(err)
	}
	out := mfaPending{MFAToken: token, ExpiresIn: int(MFATokenTTL.Seconds()), ExpiresAt: exp.UTC()}
	if purpose == mfaChallenge {
		out.Status, out.Methods = "mfa_required", []string{"totp", "recovery_code"}
	} else {
		out.Status, out.Methods = "mfa_enrolment_required", []string{"totp_enrolment"}
	}
	c.JSON(http.StatusAccepted, out)
	return nil
}

// mfaTicketFor checks token and answers its ticket and user; a token
// unknown, expired, spent or for another purpose is refused alike.
func (s *Server) mfaTicketFor(ctx context.Context, token string, purpose mfaPurpose) (mfaTicket, models.User, error) {
	bad := unauthorized("The MFA token is invalid, expired or already used; log in again.")
	bad.Type = "mfa-token-invalid"
	var t mfaTicket
	var u models.User
	if s.Redis == nil {
		return t, u, unavailable(errors.New("mfa needs redis"))
	}
	if !strings.HasPrefix(token, "mfa_") || len(token) > 100 {
		return t, u, bad
	}
	raw, err := s.Redis.Get(ctx, s.mfaTokenKey(token)).Bytes()
	if errors.Is(err, redis.Nil) {
		return t, u, bad
	}
	if err != nil {
		return t, u, unavailable(err)
	}
	if json.Unmarshal(raw, &t) != nil || t.Purpose != purpose || s.Now().UnixMilli() >= t.Expires {
		return t, u, bad
	}
	err = models.InTenant(ctx, s.DB, t.Tenant, func(tx *gorm.DB) error {
		return tx.Where("id = ?", t.User).Take(&u).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return t, u, bad
	}
	if err != nil {
		return t, u, internal(err)
	}
	return t, u, nil
}

// spendMFAToken ends a token once it has been used.
func (s *Server) spendMFAToken(ctx context.Context, token string) error {
	if err := s.Redis.Del(ctx, s.mfaTokenKey(token)).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// loadMFA reads u's enrolment for update; a user who never enrolled gets
// an empty one.
func loadMFA(tx *gorm.DB, u models.User) (models.UserMFA, error) {
	var m models.UserMFA
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("user_id = ?", u.ID).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return models.UserMFA{UserID: u.ID, TenantID: u.TenantID}, nil
	}
	return m, err
}

// spendTOTP checks code against sealed (the active or the pending secret)
// and spends its step: a code of a step no later than the last one spent
// is a replay, refused even though it is otherwise right. It answers the
// step spent, or 0.
func (s *Server) spendTOTP(ctx context.Context, tx *gorm.DB, m models.UserMFA, sealed []byte, code string) (int64, error) {
	if len(sealed) == 0 {
		return 0, nil
	}
	secret, err := s.Secrets.Open(ctx, m.TenantID, sealed)
	if err != nil {
		return 0, err
	}
	step, ok, err := totp.Match(secret, code, s.Now())
	if err != nil || !ok || step <= m.LastStep {
		return 0, err
	}
	// Conditional, so that two requests racing with one code cannot both
	// spend it.
	res := tx.Model(&models.UserMFA{}).Where("user_id = ? AND last_step < ?", m.UserID, step).
		Updates(map[string]any{"last_step": step, "updated_at": s.Now().UTC()})
	if res.Error != nil {
		return 0, res.Error
	}
	if res.RowsAffected != 1 {
		return 0, nil
	}
	return step, nil
}

// Recovery codes: 80 random bits each, written as four groups of four
// base32 letters and digits. Only a hash is kept.
var recoveryAlphabet = base32.NewEncoding("abcdefghijkmnpqrstuvwxyz23456789").WithPadding(base32.NoPadding)

func newRecoveryCode() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	s := recoveryAlphabet.EncodeToString(b[:])
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// recoveryHash hashes a code as typed (any case, with or without
// dashes and spaces) for user.
func recoveryHash(user uuid.UUID, code string) string {
	norm := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(code))
	sum := sha256.Sum256([]byte(user.String() + ":" + norm))
	return hex.EncodeToString(sum[:])
}

// replaceRecoveryCodes throws away u's codes and answers a fresh set.
func (s *Server) replaceRecoveryCodes(tx *gorm.DB, u models.User) ([]string, error) {
	if err := tx.Where("user_id = ?", u.ID).Delete(&models.RecoveryCode{}).Error; err != nil {
		return nil, err
	}
	codes := make([]string, recoveryCodeCount)
	rows := make([]models.RecoveryCode, recoveryCodeCount)
	for i := range codes {
		codes[i] = newRecoveryCode()
		rows[i] = models.RecoveryCode{TenantID: u.TenantID, UserID: u.ID, CodeHash: recoveryHash(u.ID, codes[i]), CreatedAt: s.Now().UTC()}
	}
	if err := tx.Create(&rows).Error; err != nil {
		return nil, err
	}
	return codes, nil
}

// spendRecoveryCode marks code used, if it is one of u's unused codes.
func (s *Server) spendRecoveryCode(tx *gorm.DB, u models.User, code string) (bool, error) {
	res := tx.Model(&models.RecoveryCode{}).Where("user_id = ? AND code_hash = ? AND used_at IS NULL", u.ID, recoveryHash(u.ID, code)).
		Update("used_at", s.Now().UTC())
	return res.RowsAffected == 1, res.Error
}

// secondFactor is a TOTP code or a recovery code, whichever was sent.
type secondFactor struct {
	Code         string `json:"code,omitempty"`
	RecoveryCode string `json:"recovery_code,omitempty"`
}

func (f secondFactor) check() error {
	if (f.Code == "") == (f.RecoveryCode == "") {
		return invalid("mfa-code-required", "Send either code (from the authenticator app) or recovery_code.")
	}
	return nil
}

// proveFactor checks f against u's active enrolment in tx, spending what
// it uses; it answers how u proved it ("totp" or "recovery code"), or ""
// when f is wrong. A recovery code used is audited here.
func (s *Server) proveFactor(c *gin.Context, tx *gorm.DB, u models.User, m models.UserMFA, f secondFactor) (string, error) {
	ctx := c.Request.Context()
	if !m.Enrolled() {
		return "", nil
	}
	if f.Code != "" {
		step, err := s.spendTOTP(ctx, tx, m, m.TOTPSecretEnc, f.Code)
		if err != nil || step == 0 {
			return "", err
		}
		return "totp", nil
	}
	ok, err := s.spendRecoveryCode(tx, u, f.RecoveryCode)
	if err != nil || !ok {
		return "", err
	}
	var left int64
	if err := tx.Model(&models.RecoveryCode{}).Where("user_id = ? AND used_at IS NULL", u.ID).Count(&left).Error; err != nil {
		return "", err
	}
	err = s.record(c, tx, models.AuditEvent{TenantID: u.TenantID, ActorUser: &u.ID, ActorRole: string(u.Role),
		Action: "mfa-recovery-code-used", ResourceType: "mfa", ResourceID: &u.ID, Reason: recoveryLeft(left)})
	return "recovery code", err
}

func recoveryLeft(n int64) string {
	if n == 1 {
		return "1 recovery code left"
	}
	return strconv.FormatInt(n, 10) + " recovery codes left"
}

// mfaFailed counts a wrong code toward u's lockout, audits it, and answers
// the refusal: 401 before sign-in, 422 on a signed-in route (the access
// token is fine; the code is not).
func (s *Server) mfaFailed(c *gin.Context, u models.User, signedIn bool) error {
	if err := s.loginFailed(c.Request.Context(), u.TenantID, strings.ToLower(u.Email)); err != nil {
		return err
	}
	if err := s.auditLogin(c, u.TenantID, &u.ID, u.Role, "mfa-failed", "wrong code"); err != nil {
		return err
	}
	if signedIn {
		return invalid("mfa-invalid-code", "The code is wrong or already used; wait for the next code from the authenticator app.")
	}
	p := unauthorized("The code is wrong or already used; wait for the next code from the authenticator app.")
	p.Type = "mfa-invalid-code"
	return p
}

type mfaVerifyRequest struct {
	MFAToken string `json:"mfa_token"`
	secondFactor
}

// verifyMFA handles POST /v1/auth/mfa/verify: a challenge token and a
// current TOTP code or an unused recovery code answer the normal tokens.
func (s *Server) verifyMFA(c *gin.Context) error {
	var req mfaVerifyRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := s.throttle(c, "mfa", s.LoginLimit); err != nil {
		return err
	}
	if err := req.check(); err != nil {
		return err
	}
	ctx := c.Request.Context()
	_, u, err := s.mfaTicketFor(ctx, req.MFAToken, mfaChallenge)
	if err != nil {
		return err
	}
	if err := s.lockedOut(c, u.TenantID, strings.ToLower(u.Email)); err != nil {
		return err
	}
	var how string
	err = models.InTenant(ctx, s.DB, u.TenantID, func(tx *gorm.DB) error {
		m, err := loadMFA(tx, u)
		if err != nil {
			return err
		}
		if how, err = s.proveFactor(c, tx, u, m, req.secondFactor); err != nil || how == "" {
			return err
		}
		return s.record(c, tx, models.AuditEvent{TenantID: u.TenantID, ActorUser: &u.ID, ActorRole: string(u.Role),
			Action: "login", ResourceType: "session", ResourceID: &u.ID, Reason: "mfa: " + how})
	})
	if err != nil {
		return internal(err)
	}
	if how == "" {
		return s.mfaFailed(c, u, false)
	}
	if err := s.spendMFAToken(ctx, req.MFAToken); err != nil {
		return err
	}
	if err := s.loginSucceeded(ctx, u.TenantID, strings.ToLower(u.Email)); err != nil {
		return err
	}
	return s.respondToken(c, http.StatusOK, u)
}

// totpSetup is a new secret for the user's authenticator app; it works
// once confirmed with a code from it.
type totpSetup struct {
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
	Algorithm  string `json:"algorithm"`
	Digits     int    `json:"digits"`
	Period     int    `json:"period"`
}

// startTOTP gives u a new pending secret in tx, replacing any earlier
// pending one; the active secret, if any, stays in force until the new one
// is confirmed.
func (s *Server) startTOTP(ctx context.Context, tx *gorm.DB, u models.User, m models.UserMFA) (totpSetup, error) {
	secret, err := totp.NewSecret()
	if err != nil {
		return totpSetup{}, err
	}
	sealed, err := s.Secrets.Seal(ctx, u.TenantID, secret)
	if err != nil {
		return totpSetup{}, err
	}
	now := s.Now().UTC()
	m.PendingSecretEnc, m.PendingAt, m.UpdatedAt = sealed, &now, now
	err = tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "user_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"pending_secret_enc", "pending_at", "updated_at"}),
	}).Create(&m).Error
	if err != nil {
		return totpSetup{}, err
	}
	return totpSetup{Secret: secret, OTPAuthURI: totp.URI(mfaIssuer, u.Email, secret), Algorithm: "SHA1",
		Digits: totp.Digits, Period: int(totp.Period / time.Second)}, nil
}

// confirmTOTP makes u's pending secret the active one if code is current
// for it, and answers a fresh set of recovery codes; nil codes mean the
// code was wrong.
func (s *Server) confirmTOTP(c *gin.Context, tx *gorm.DB, u models.User, m models.UserMFA, code string) ([]string, error) {
	step, err := s.spendTOTP(c.Request.Context(), tx, m, m.PendingSecretEnc, code)
	if err != nil || step == 0 {
		return nil, err
	}
	now := s.Now().UTC()
	err = tx.Model(&models.UserMFA{}).Where("user_id = ?", u.ID).Updates(map[string]any{
		"totp_secret_enc": m.PendingSecretEnc, "enrolled_at": now, "pending_secret_enc": nil, "pending_at": nil, "updated_at": now,
	}).Error
	if err != nil {
		return nil, err
	}
	codes, err := s.replaceRecoveryCodes(tx, u)
	if err != nil {
		return nil, err
	}
	return codes, s.record(c, tx, models.AuditEvent{TenantID: u.TenantID, ActorUser: &u.ID, ActorRole: string(u.Role),
		Action: "mfa-enrolled", ResourceType: "mfa", ResourceID: &u.ID, Reason: "totp"})
}

func noPendingEnrolment() error {
	return conflict("mfa-no-pending-enrolment", "Start an enrolment first: it hands out the secret the code must come from.")
}

type mfaTokenRequest struct {
	MFAToken string `json:"mfa_token"`
}

// enrolMFA handles POST /v1/auth/mfa/enrol: with an enrolment token, a new
// TOTP secret and its otpauth:// URI for the authenticator app.
func (s *Server) enrolMFA(c *gin.Context) error {
	var req mfaTokenRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := s.throttle(c, "mfa", s.LoginLimit); err != nil {
		return err
	}
	ctx := c.Request.Context()
	_, u, err := s.mfaTicketFor(ctx, req.MFAToken, mfaEnrol)
	if err != nil {
		return err
	}
	var setup totpSetup
	var already bool
	err = models.InTenant(ctx, s.DB, u.TenantID, func(tx *gorm.DB) error {
		m, err := loadMFA(tx, u)
		if err != nil {
			return err
		}
		if already = m.Enrolled(); already {
			return nil
		}
		setup, err = s.startTOTP(ctx, tx, u, m)
		return err
	})
	if err != nil {
		return internal(err)
	}
	if already {
		return conflict("mfa-already-enrolled", "This account has MFA already; log in again and answer the challenge.")
	}
	c.JSON(http.StatusOK, setup)
	return nil
}

type mfaConfirmRequest struct {
	MFAToken string `json:"mfa_token"`
	Code     string `json:"code"`
}

// enrolledResponse is the normal token answer plus the recovery codes,
// which are shown this once.
type enrolledResponse struct {
	tokenResponse
	RecoveryCodes []string `json:"recovery_codes"`
}

// confirmMFAEnrolment handles POST /v1/auth/mfa/enrol/confirm: an
// enrolment token and a current code from the new secret finish the
// enrolment and the login, answering the normal tokens and the recovery
// codes.
func (s *Server) confirmMFAEnrolment(c *gin.Context) error {
	var req mfaConfirmRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := s.throttle(c, "mfa", s.LoginLimit); err != nil {
		return err
	}
	ctx := c.Request.Context()
	_, u, err := s.mfaTicketFor(ctx, req.MFAToken, mfaEnrol)
	if err != nil {
		return err
	}
	if err := s.lockedOut(c, u.TenantID, strings.ToLower(u.Email)); err != nil {
		return err
	}
	var codes []string
	var pending bool
	err = models.InTenant(ctx, s.DB, u.TenantID, func(tx *gorm.DB) error {
		m, err := loadMFA(tx, u)
		if err != nil {
			return err
		}
		if pending = len(m.PendingSecretEnc) > 0; !pending {
			return nil
		}
		if codes, err = s.confirmTOTP(c, tx, u, m, req.Code); err != nil || codes == nil {
			return err
		}
		return s.record(c, tx, models.AuditEvent{TenantID: u.TenantID, ActorUser: &u.ID, ActorRole: string(u.Role),
			Action: "login", ResourceType: "session", ResourceID: &u.ID, Reason: "mfa: enrolment"})
	})
	if err != nil {
		return internal(err)
	}
	if !pending {
		return noPendingEnrolment()
	}
	if codes == nil {
		return s.mfaFailed(c, u, false)
	}
	if err := s.spendMFAToken(ctx, req.MFAToken); err != nil {
		return err
	}
	if err := s.loginSucceeded(ctx, u.TenantID, strings.ToLower(u.Email)); err != nil {
		return err
	}
	refresh, err := s.openSession(ctx, u)
	if err != nil {
		return unavailable(err)
	}
	body, err := s.tokenBody(u, refresh)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, enrolledResponse{tokenResponse: body, RecoveryCodes: codes})
	return nil
}

// caller loads the signed-in user.
func (s *Server) caller(c *gin.Context) (models.User, error) {
	var u models.User
	err := s.inTenant(c, func(tx *gorm.DB) error {
		return tx.Where("id = ?", principal(c).UserID).Take(&u).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return u, unauthorized("This account no longer exists.")
	}
	if err != nil {
		return u, internal(err)
	}
	return u, nil
}

type mfaStatusView struct {
	Enrolled          bool       `json:"enrolled"`
	Required          bool       `json:"required"`
	EnrolledAt        *time.Time `json:"enrolled_at,omitempty"`
	EnrolmentPending  bool       `json:"enrolment_pending"`
	RecoveryCodesLeft int64      `json:"recovery_codes_left"`
}

// mfaStatus handles GET /v1/auth/mfa: the caller's own MFA state.
func (s *Server) mfaStatus(c *gin.Context) error {
	u, err := s.caller(c)
	if err != nil {
		return err
	}
	var out mfaStatusView
	err = s.inTenant(c, func(tx *gorm.DB) error {
		m, err := loadMFA(tx, u)
		if err != nil {
			return err
		}
		out = mfaStatusView{Enrolled: m.Enrolled(), Required: mfaRequired(u.Role), EnrolledAt: m.EnrolledAt,
			EnrolmentPending: len(m.PendingSecretEnc) > 0}
		return tx.Model(&models.RecoveryCode{}).Where("user_id = ? AND used_at IS NULL", u.ID).Count(&out.RecoveryCodesLeft).Error
	})
	if err != nil {
		return internal(err)
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// withFactor runs fn in the caller's tenant transaction after the caller
// proved a second factor (when enrolled, or when always is set), counting
// a wrong one toward the lockout. fn sees the enrolment as it was.
func (s *Server) withFactor(c *gin.Context, f secondFactor, always bool, fn func(tx *gorm.DB, u models.User, m models.UserMFA) error) error {
	u, err := s.caller(c)
	if err != nil {
		return err
	}
	if err := s.lockedOut(c, u.TenantID, strings.ToLower(u.Email)); err != nil {
		return err
	}
	var failed, missing bool
	var done error
	err = s.inTenant(c, func(tx *gorm.DB) error {
		m, err := loadMFA(tx, u)
		if err != nil {
			return err
		}
		if m.Enrolled() || always {
			if !m.Enrolled() {
				missing = true
				return nil
			}
			if err := f.check(); err != nil {
				done = err
				return nil
			}
			how, err := s.proveFactor(c, tx, u, m, f)
			if err != nil {
				return err
			}
			if failed = how == ""; failed {
				return nil
			}
		}
		return fn(tx, u, m)
	})
	if err != nil {
		return internal(err)
	}
	if missing {
		return conflict("mfa-not-enrolled", "This account has no MFA enrolled.")
	}
	if failed {
		return s.mfaFailed(c, u, true)
	}
	return done
}

// startMFA handles POST /v1/auth/mfa/totp: a new TOTP secret for the
// caller's authenticator app. A caller already enrolled (changing phones)
// proves a current code or a recovery code first.
func (s *Server) startMFA(c *gin.Context) error {
	var req secondFactor
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	var setup totpSetup
	err := s.withFactor(c, req, false, func(tx *gorm.DB, u models.User, m models.UserMFA) error {
		var err error
		setup, err = s.startTOTP(c.Request.Context(), tx, u, m)
		return err
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, setup)
	return nil
}

type codeRequest struct {
	Code string `json:"code"`
}

type recoveryCodesView struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// confirmMFA handles POST /v1/auth/mfa/totp/confirm: a current code from
// the pending secret makes it the caller's active one and answers a fresh
// set of recovery codes (the earlier ones stop working).
func (s *Server) confirmMFA(c *gin.Context) error {
	var req codeRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	u, err := s.caller(c)
	if err != nil {
		return err
	}
	if err := s.lockedOut(c, u.TenantID, strings.ToLower(u.Email)); err != nil {
		return err
	}
	var codes []string
	var pending bool
	err = s.inTenant(c, func(tx *gorm.DB) error {
		m, err := loadMFA(tx, u)
		if err != nil {
			return err
		}
		if pending = len(m.PendingSecretEnc) > 0; !pending {
			return nil
		}
		codes, err = s.confirmTOTP(c, tx, u, m, req.Code)
		return err
	})
	if err != nil {
		return internal(err)
	}
	if !pending {
		return noPendingEnrolment()
	}
	if codes == nil {
		return s.mfaFailed(c, u, true)
	}
	c.JSON(http.StatusOK, recoveryCodesView{RecoveryCodes: codes})
	return nil
}

// replaceMFARecoveryCodes handles POST /v1/auth/mfa/recovery-codes: after
// a current code (or a recovery code), a fresh set replaces the caller's
// recovery codes.
func (s *Server) replaceMFARecoveryCodes(c *gin.Context) error {
	var req secondFactor
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	var codes []string
	err := s.withFactor(c, req, true, func(tx *gorm.DB, u models.User, _ models.UserMFA) error {
		var err error
		if codes, err = s.replaceRecoveryCodes(tx, u); err != nil {
			return err
		}
		return s.audit(c, tx, "mfa-recovery-codes-replaced", "mfa", &u.ID, nil, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, recoveryCodesView{RecoveryCodes: codes})
	return nil
}

// disableMFA handles POST /v1/auth/mfa/disable: a patient turns MFA off
// with a current code (or a recovery code). Roles that require MFA may
// not (the permission matrix refuses them).
func (s *Server) disableMFA(c *gin.Context) error {
	var req secondFactor
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if mfaRequired(principal(c).Role) {
		// The matrix keeps these roles out; this holds if it changes.
		return forbidden()
	}
	err := s.withFactor(c, req, true, func(tx *gorm.DB, u models.User, _ models.UserMFA) error {
		if err := tx.Where("user_id = ?", u.ID).Delete(&models.RecoveryCode{}).Error; err != nil {
			return err
		}
		if err := tx.Where("user_id = ?", u.ID).Delete(&models.UserMFA{}).Error; err != nil {
			return err
		}
		return s.audit(c, tx, "mfa-disabled", "mfa", &u.ID, nil, "")
	})
	if err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// mfaStep says which second step u's login needs after a correct
// password: a challenge when u has TOTP enrolled, an enrolment when u's
// role requires MFA and u has none, or none ("").
func (s *Server) mfaStep(c *gin.Context, u models.User) (mfaPurpose, error) {
	var m models.UserMFA
	err := models.InTenant(c.Request.Context(), s.DB, u.TenantID, func(tx *gorm.DB) error {
		return tx.Where("user_id = ?", u.ID).Take(&m).Error
	})
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return "", internal(err)
	}
	switch {
	case m.Enrolled():
		return mfaChallenge, nil
	case mfaRequired(u.Role):
		return mfaEnrol, nil
	}
	return "", nil
}
