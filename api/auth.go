package api

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
)

const principalKey = "principal"

// authenticate requires a valid bearer access token and stores its
// principal on the request.
func (s *Server) authenticate(c *gin.Context) error {
	// The scheme name is case-insensitive (RFC 9110, section 11.1).
	scheme, token, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return unauthorized("Send an access token as 'Authorization: Bearer <token>'.")
	}
	p, err := s.Tokens.Verify(token)
	if err != nil {
		u := unauthorized("The access token is invalid or expired; log in again.")
		u.Err = err
		return u
	}
	if err := s.checkSession(c.Request.Context(), p); err != nil {
		return err
	}
	c.Set(principalKey, p)
	if err := s.rateLimit(c, "user:"+p.UserID.String(), s.UserRate, "Too many requests from your account; wait and try again."); err != nil {
		return err
	}
	c.Next()
	return nil
}

func unauthorized(detail string) *Problem {
	c := newProblem(KindUnauthorized, "unauthorized", "Unauthorized", detail)
	return c
}

func principal(c *gin.Context) Principal {
	p, _ := c.Get(principalKey)
	return p.(Principal)
}

// inTenant runs fn in the caller's tenant transaction.
func (s *Server) inTenant(c *gin.Context, fn func(tx *gorm.DB) error) error {
	return models.InTenant(c.Request.Context(), s.DB, principal(c).TenantID, fn)
}

type signupRequest struct {
	Tenant     string `json:"tenant"`
	Email      string `json:"email"`
	Password   string `json:"password"`
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	BirthDate  string `json:"birth_date,omitempty"`
	Phone      string `json:"phone,omitempty"`
}

type loginRequest struct {
	Tenant   string `json:"tenant"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

type tokenResponse struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	ExpiresIn    int       `json:"expires_in"`
	ExpiresAt    time.Time `json:"expires_at"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	User         userView  `json:"user"`
}

type userView struct {
	ID             string `json:"id"`
	TenantID       string `json:"tenant_id"`
	Email          string `json:"email"`
	Role           string `json:"role"`
	PatientID      string `json:"patient_id,omitempty"`
	PractitionerID string `json:"practitioner_id,omitempty"`
	FacilityID     string `json:"facility_id,omitempty"`
	EmailVerified  bool   `json:"email_verified"`
}

// minPassword is NIST SP 800-63B's floor for user-chosen secrets, plus two.
// The other password rules are in checkPassword.
const minPassword = 10

// signupAccepted is the one answer to a well-formed sign-up, whether or
// not the address already has an account in the tenant.
var signupAccepted = gin.H{"status": "accepted",
	"detail": "Check your mailbox: a message to this address says what to do next."}

// signup handles POST /v1/auth/signup: a patient creates an account in a
// tenant. The answer is 202 with the same body whether or not the address
// already has an account, so sign-up cannot be used to learn who is a
// patient where: a new account is created and sent its verification link;
// the owner of an existing one is told that someone tried to sign up
// with the address and is offered a password reset. Both paths hash the
// password and write to the database, and both mail after the answer, so
// neither is the faster. The new patient then logs in (POST
// /v1/auth/login); sign-up answers no tokens.
func (s *Server) signup(c *gin.Context) error {
	var req signupRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := s.throttle(c, "signup", s.SignupLimit); err != nil {
		return err
	}
	email, err := normaliseEmail(req.Email)
	if err != nil {
		return err
	}
	if strings.TrimSpace(req.GivenName) == "" || strings.TrimSpace(req.FamilyName) == "" {
		return invalid("missing-name", "Given and family name are required.")
	}
	if !readableName(req.GivenName) || !readableName(req.FamilyName) {
		return invalid("invalid-name", "Names may not hold control or invisible characters.")
	}
	var birth *time.Time
	if req.BirthDate != "" {
		b, err := time.Parse(time.DateOnly, req.BirthDate)
		if err != nil || b.After(s.Now()) || b.Year() < 1900 {
			return invalid("invalid-birth-date", "birth_date must be a past date as YYYY-MM-DD.")
		}
		birth = &b
	}
	tenant, err := s.tenantBySlug(c.Request.Context(), req.Tenant)
	if err != nil {
		return err
	}
	if err := s.checkPassword(req.Password, email, tenant); err != nil {
		return err
	}
	// Hashed on both paths: skipping it for a taken address would make
	// that answer tens of milliseconds faster, which says the same as 409.
	hash, err := HashPassword(req.Password)
	if err != nil {
		return internal(err)
	}
	patient := models.Patient{ID: uuid.New(), TenantID: tenant.ID, GivenName: strings.TrimSpace(req.GivenName),
		FamilyName: strings.TrimSpace(req.FamilyName), BirthDate: birth, Phone: req.Phone}
	user := models.User{ID: uuid.New(), TenantID: tenant.ID, Email: email, PasswordHash: hash,
		Role: models.RolePatient, PatientID: &patient.ID}
	err = models.InTenant(c.Request.Context(), s.DB, tenant.ID, func(tx *gorm.DB) error {
		if err := tx.Create(&patient).Error; err != nil {
			return err
		}
		if err := tx.Create(&user).Error; err != nil {
			return err
		}
		return s.record(c, tx, models.AuditEvent{TenantID: tenant.ID, ActorUser: &user.ID, ActorRole: string(user.Role),
			Action: "signup", ResourceType: "patient", ResourceID: &patient.ID, PatientID: &patient.ID})
	})
	taken := models.IsUniqueViolation(err)
	if err != nil && !taken {
		return internal(err)
	}
	// The request's context ends with the answer; the mail outlives it.
	ctx, ip, reqID := context.WithoutCancel(c.Request.Context()), c.ClientIP(), requestID(c)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, accountMailTimeout)
		defer cancel()
		if taken {
			s.mailSignupAttempt(ctx, tenant, email, ip, reqID)
			return
		}
		if s.Mailer == nil {
			return
		}
		if err := s.sendToken(ctx, tenant, user, models.PurposeVerifyEmail, nil); err != nil {
			// The account exists; the patient can ask for another link.
			s.Logger.ErrorContext(ctx, "verification mail not sent", "tenantID", user.TenantID, "userID", user.ID, "error", err)
		}
	}()
	c.JSON(http.StatusAccepted, signupAccepted)
	return nil
}

// login handles POST /v1/auth/login for every role.
func (s *Server) login(c *gin.Context) error {
	var req loginRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := s.throttle(c, "login", s.LoginLimit); err != nil {
		return err
	}
	failed := unauthorized("The tenant, e-mail or password is wrong.")
	failed.Type = "login-failed"
	email, err := normaliseEmail(req.Email)
	if err != nil {
		return err
	}
	tenant, err := s.tenantBySlug(c.Request.Context(), req.Tenant)
	if err != nil {
		var p *Problem
		if errors.As(err, &p) && p.Kind == KindNotFound {
			_, _ = CheckPassword(dummyHash, req.Password)
			return failed
		}
		return err
	}
	if err := s.lockedOut(c, tenant.ID, email); err != nil {
		return err
	}
	var user models.User
	err = models.InTenant(c.Request.Context(), s.DB, tenant.ID, func(tx *gorm.DB) error {
		return tx.Where("lower(email) = ?", email).Take(&user).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		_, _ = CheckPassword(dummyHash, req.Password)
		if err := s.loginFailed(c.Request.Context(), tenant.ID, email); err != nil {
			return err
		}
		// Who tried is unknown; the address and time are recorded, the
		// e-mail typed is not (it may be someone else's).
		if err := s.auditLogin(c, tenant.ID, nil, "", "login-failed", "unknown account"); err != nil {
			return err
		}
		return failed
	}
	if err != nil {
		return internal(err)
	}
	ok, err := CheckPassword(user.PasswordHash, req.Password)
	if err != nil {
		return internal(err)
	}
	if !ok {
		if err := s.loginFailed(c.Request.Context(), tenant.ID, email); err != nil {
			return err
		}
		if err := s.auditLogin(c, tenant.ID, &user.ID, user.Role, "login-failed", "wrong password"); err != nil {
			return err
		}
		return failed
	}
	// With a second step due, the failures so far are not forgiven: they
	// are cleared when that step succeeds (mfa.go), so that a password
	// alone cannot reset the count of wrong codes.
	if purpose, err := s.mfaStep(c, user); err != nil || purpose != "" {
		if err != nil {
			return err
		}
		return s.respondMFA(c, user, purpose)
	}
	if err := s.loginSucceeded(c.Request.Context(), tenant.ID, email); err != nil {
		return err
	}
	if err := s.auditLogin(c, tenant.ID, &user.ID, user.Role, "login", ""); err != nil {
		return err
	}
	return s.respondToken(c, http.StatusOK, user)
}

// auditLogin records a login attempt in the tenant's audit log.
func (s *Server) auditLogin(c *gin.Context, tenant uuid.UUID, user *uuid.UUID, role models.Role, action, reason string) error {
	return models.InTenant(c.Request.Context(), s.DB, tenant, func(tx *gorm.DB) error {
		return s.record(c, tx, models.AuditEvent{TenantID: tenant, ActorUser: user, ActorRole: string(role),
			Action: action, ResourceType: "session", ResourceID: user, Reason: reason})
	})
}

// Per-address limits a minute: 20 logins is more than a person mistypes,
// and 5 sign-ups more than a family creates. Each attempt costs an
// argon2id hash, so the limits also bound the memory an address can make
// the server spend. Accounts lock after repeated failures (lockout.go).
const (
	defaultLoginLimit  = 20
	defaultSignupLimit = 5
)

// throttle limits attempts per route class and client address.
func (s *Server) throttle(c *gin.Context, class string, limit int64) error {
	return s.rateLimit(c, class+":"+c.ClientIP(), Rate{N: int(limit), Per: time.Minute},
		"Too many attempts from this address; wait and try again.")
}

func (s *Server) respondToken(c *gin.Context, status int, u models.User) error {
	// Every way in (password, MFA step, single sign-on, a reset) ends
	// here: an erased patient's account opens no session, whatever
	// credential survived the erasure.
	if u.PatientID != nil {
		var erased bool
		err := models.InTenant(c.Request.Context(), s.DB, u.TenantID, func(tx *gorm.DB) (err error) {
			erased, err = patientErased(tx, *u.PatientID)
			return err
		})
		if err != nil {
			return internal(err)
		}
		if erased {
			return unauthorized("This account is closed.")
		}
	}
	refresh, err := s.openSession(c.Request.Context(), u)
	if err != nil {
		return unavailable(err)
	}
	return s.respondTokens(c, status, u, refresh)
}

// respondTokens answers an access token for u, with refresh (when not
// empty) as its session's refresh token.
func (s *Server) respondTokens(c *gin.Context, status int, u models.User, refresh string) error {
	body, err := s.tokenBody(u, refresh)
	if err != nil {
		return err
	}
	c.JSON(status, body)
	return nil
}

// tokenBody is the token answer for u with refresh.
func (s *Server) tokenBody(u models.User, refresh string) (tokenResponse, error) {
	p := Principal{UserID: u.ID, TenantID: u.TenantID, Role: u.Role}
	// The refresh token is "<family>.<secret>": the access token names the
	// family (never the secret), so that it ends with its session.
	if family, _, ok := strings.Cut(refresh, "."); ok {
		p.SessionID = family
	}
	if u.PatientID != nil {
		p.PatientID = *u.PatientID
	}
	if u.PractitionerID != nil {
		p.PractitionerID = *u.PractitionerID
	}
	if u.FacilityID != nil {
		p.FacilityID = *u.FacilityID
	}
	token, exp, err := s.Tokens.Issue(p)
	if err != nil {
		return tokenResponse{}, internal(err)
	}
	return tokenResponse{
		AccessToken:  token,
		TokenType:    "Bearer",
		ExpiresIn:    int(AccessTTL.Seconds()),
		ExpiresAt:    exp.UTC(),
		RefreshToken: refresh,
		User:         viewUser(u),
	}, nil
}

// me handles GET /v1/me.
func (s *Server) me(c *gin.Context) error {
	var u models.User
	err := s.inTenant(c, func(tx *gorm.DB) error {
		return tx.Where("id = ?", principal(c).UserID).Take(&u).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return unauthorized("This account no longer exists.")
	}
	if err != nil {
		return internal(err)
	}
	c.JSON(http.StatusOK, viewUser(u))
	return nil
}

func viewUser(u models.User) userView {
	return userView{ID: u.ID.String(), TenantID: u.TenantID.String(), Email: u.Email, Role: string(u.Role),
		PatientID: optionalString(u.PatientID), PractitionerID: optionalString(u.PractitionerID), FacilityID: optionalString(u.FacilityID),
		EmailVerified: u.EmailVerifiedAt != nil}
}

func optionalString(id *uuid.UUID) string {
	if id == nil {
		return ""
	}
	return id.String()
}

func normaliseEmail(s string) (string, error) {
	a, err := mail.ParseAddress(strings.TrimSpace(s))
	if err != nil || a.Name != "" || len(a.Address) > 254 {
		return "", invalid("invalid-email", "email must be a plain e-mail address.")
	}
	return strings.ToLower(a.Address), nil
}

func (s *Server) tenantBySlug(ctx context.Context, slug string) (models.Tenant, error) {
	var t models.Tenant
	err := s.DB.WithContext(ctx).Where("slug = ?", strings.ToLower(slug)).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return t, notFound("tenant")
	}
	if err != nil {
		return t, internal(err)
	}
	return t, nil
}
