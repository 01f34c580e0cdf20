// Package api is Carebook's REST API: a Gin router under /v1, its
// handlers (one file per resource), the middleware in front of them, and
// the OpenAPI description they are validated against.
package api

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/carebook/carebook/intake"
	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/mail"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/passwords"
	"github.com/carebook/carebook/payments/accounts"
	"github.com/carebook/carebook/reqid"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	"gorm.io/gorm"
)

// Server holds what the handlers need. Build it once, then call Router.
type Server struct {
	DB       *gorm.DB
	Redis    *redis.Client
	Temporal client.Client
	Logger   *slog.Logger
	Tokens   *Tokens
	// Accounts holds each tenant's payment provider settings.
	Accounts *accounts.Accounts
	// Secrets seals users' TOTP secrets (MFA) with their tenant's key.
	Secrets SecretSealer
	// Keys holds the tenants' encryption keys: blind indexes of national
	// IDs, and how long a key rotation must wait for caches to expire.
	Keys *keyring.Keyring
	// AuditKey keys the audit chain's HMAC (and the lockout counters'
	// names); at least 32 bytes. The database never holds it.
	AuditKey []byte
	// Store is the object store of raw lab messages and report PDFs.
	Store *objstore.Store
	// Intake receives lab messages posted by lab partners.
	Intake *intake.Intake
	// Now is the clock; tests inject one.
	Now func() time.Time
	// TemporalUIURL, when set, is used for deep links to workflows.
	TemporalUIURL string
	// Namespace is the Temporal namespace, for deep links.
	Namespace string
	// RedisPrefix starts every Redis key this server writes, so that
	// several deployments (or test runs) can share one Redis.
	RedisPrefix string
	// TrustedProxies are the addresses (CIDRs) whose X-Forwarded-For is
	// believed. Empty trusts none: the client is the TCP peer, so nobody
	// can pick the address that rate limits count.
	TrustedProxies []string
	// LoginLimit and SignupLimit are attempts per client address a
	// minute; zero means the defaults (20 and 5).
	LoginLimit  int64
	SignupLimit int64
	// UserRate and PartnerRate limit each signed-in user and each lab
	// partner across all routes; zero means the defaults (600 and 6000 a
	// minute).
	UserRate Rate
	// LockoutPeriod is how long an account first locks after five failed
	// logins (doubling after each further failure, up to an hour); zero
	// means a minute.
	LockoutPeriod time.Duration
	PartnerRate   Rate
	limiter       *redis_rate.Limiter
	// CORSOrigins are the web and mobile apps' origins (scheme, host and
	// port) allowed to call the API from a browser; empty allows none.
	CORSOrigins []string
	// BreakGlassTTL is how long a doctor's emergency access lasts; zero
	// means 30 minutes.
	BreakGlassTTL time.Duration
	// Mailer sends account e-mails (verification, password reset); nil
	// sends none, and password reset answers 503.
	Mailer mail.Mailer
	// AppURL is the base of the links in account e-mails: the web app,
	// which has a page for each.
	AppURL string
	// BreachedPasswords, when set, are refused on top of the embedded
	// list (see package passwords).
	BreachedPasswords *passwords.HashList
	// ResetLimit is password-reset requests per client address a minute;
	// zero means 5.
	ResetLimit int64
	// PublicURL is the api's own base URL as browsers reach it: tenants
	// register PublicURL/v1/auth/oidc/callback at their identity provider.
	PublicURL string
	// OIDCClient reaches tenants' identity providers; nil means a client
	// with a 10-second timeout.
	OIDCClient *http.Client
	oidc       oidcProviders
}

// Router returns the HTTP handler with every route. This is the one list of
// routes; each handler's doc comment repeats its own.
func (s *Server) Router() (http.Handler, error) {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	// Every line logged with a request's context names the request.
	s.Logger = reqid.Logger(s.Logger)
	if s.RedisPrefix == "" {
		s.RedisPrefix = "carebook:"
	}
	if s.LoginLimit == 0 {
		s.LoginLimit = defaultLoginLimit
	}
	if s.SignupLimit == 0 {
		s.SignupLimit = defaultSignupLimit
	}
	if s.ResetLimit == 0 {
		s.ResetLimit = defaultResetLimit
	}
	if s.AppURL == "" {
		s.AppURL = "http://127.0.0.1:8080"
	}
	if s.PublicURL == "" {
		s.PublicURL = "http://127.0.0.1:8080"
	}
	if s.UserRate.N == 0 {
		s.UserRate = defaultUserRate
	}
	if s.PartnerRate.N == 0 {
		s.PartnerRate = defaultPartnerRate
	}
	if s.Redis != nil {
		s.limiter = redis_rate.NewLimiter(s.Redis)
	}
	validate, err := newValidator()
	if err != nil {
		return nil, err
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	if err := r.SetTrustedProxies(s.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	r.HandleMethodNotAllowed = true
	r.Use(s.requestID, s.accessLog, securityHeaders, corsHeaders(s.CORSOrigins), s.recover, limitBody(1<<20), s.handle(cleanText))
	r.NoRoute(s.handle(func(c *gin.Context) error { return notFound("route") }))
	r.NoMethod(s.handle(func(c *gin.Context) error {
		p := newProblem(KindInvalid, "method-not-allowed", "Method not allowed", "This route does not take that method.")
		p.Status = http.StatusMethodNotAllowed
		return p
	}))

	r.GET("/healthz", s.handle(s.health))
	// Load balancers and uptime probes often ask with HEAD; it answers
	// as GET does, without the body.
	r.HEAD("/healthz", s.handle(s.health))
	r.GET("/v1/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", openapiSpec) })

	v1 := r.Group("/v1")
	v1.POST("/auth/signup", s.handle(validate), s.handle(s.signup))
	v1.POST("/auth/login", s.handle(validate), s.handle(s.login))
	v1.POST("/auth/refresh", s.handle(validate), s.handle(s.refresh))
	v1.POST("/auth/mfa/verify", s.handle(validate), s.handle(s.verifyMFA))
	v1.POST("/auth/mfa/enrol", s.handle(validate), s.handle(s.enrolMFA))
	v1.POST("/auth/mfa/enrol/confirm", s.handle(validate), s.handle(s.confirmMFAEnrolment))
	v1.POST("/auth/verify-email", s.handle(validate), s.handle(s.verifyEmail))
	v1.POST("/auth/password-reset", s.handle(validate), s.handle(s.requestPasswordReset))
	v1.POST("/auth/password-reset/confirm", s.handle(validate), s.handle(s.confirmPasswordReset))
	v1.GET("/auth/oidc/start", s.handle(s.startOIDC))
	v1.GET("/auth/oidc/callback", s.handle(s.oidcCallback))
	v1.POST("/auth/oidc/token", s.handle(validate), s.handle(s.oidcToken))
	v1.POST("/webhooks/stripe/:tenant", s.handle(validate), s.handle(s.stripeWebhook))
	v1.POST("/labs/hl7", s.handle(s.authenticatePartner), s.handle(validate), s.handle(s.postHL7))
	v1.POST("/labs/fhir", s.handle(s.authenticatePartner), s.handle(validate), s.handle(s.postFHIR))

	// Every other route is for signed-in users: who they are, then whether
	// their role may use the route (the one matrix in permissions.go),
	// then whether the request is well formed, so that the API's shape is
	// described to nobody who may not use it.
	authed := v1.Group("", s.handle(s.authenticate), s.handle(authorize), s.handle(validate))
	authed.GET("/me", s.handle(s.me))
	authed.POST("/auth/logout", s.handle(s.logout))
	authed.POST("/auth/logout-all", s.handle(s.logoutEverywhere))
	authed.GET("/auth/mfa", s.handle(s.mfaStatus))
	authed.POST("/auth/mfa/totp", s.handle(s.startMFA))
	authed.POST("/auth/mfa/totp/confirm", s.handle(s.confirmMFA))
	authed.POST("/auth/mfa/recovery-codes", s.handle(s.replaceMFARecoveryCodes))
	authed.POST("/auth/mfa/disable", s.handle(s.disableMFA))
	authed.POST("/me/password", s.handle(s.changePassword))
	authed.POST("/me/verification-email", s.handle(s.resendVerification))
	authed.GET("/facilities", s.handle(s.listFacilities))
	authed.GET("/specialties", s.handle(s.listSpecialties))
	authed.GET("/practitioners", s.handle(s.listPractitioners))
	authed.GET("/appointment-types", s.handle(s.listAppointmentTypes))
	authed.GET("/practitioners/:id/slots", s.handle(s.practitionerSlots))
	authed.GET("/slots", s.handle(s.searchSlots))
	authed.POST("/appointments", s.handle(s.createAppointment))
	authed.GET("/appointments", s.handle(s.listAppointments))
	authed.GET("/appointments/:id", s.handle(s.getAppointment))
	authed.POST("/appointments/:id/cancel", s.handle(s.cancelAppointment))
	authed.POST("/appointments/:id/reschedule", s.handle(s.rescheduleAppointment))
	authed.POST("/appointments/:id/check-in", s.handle(s.checkInAppointment))
	authed.GET("/schedule", s.handle(s.schedule))
	authed.GET("/payments", s.handle(s.listPayments))
	authed.GET("/payments/:id", s.handle(s.getPayment))
	authed.POST("/payments/:id/refund", s.handle(s.refundPayment))
	authed.GET("/billing/daily-totals", s.handle(s.dailyTotals))
	authed.POST("/billing/settlements", s.handle(s.startSettlements))
	authed.GET("/billing/settlements", s.handle(s.listSettlements))
	authed.GET("/billing/settlements/:day", s.handle(s.getSettlement))
	authed.GET("/discrepancies", s.handle(s.listDiscrepancies))
	authed.POST("/discrepancies/:id/resolve", s.handle(s.resolveDiscrepancy))
	authed.POST("/break-glass", s.handle(s.breakGlass))
	authed.GET("/break-glass", s.handle(s.listBreakGlass))
	authed.POST("/break-glass/:id/review", s.handle(s.reviewBreakGlass))
	authed.GET("/notices", s.handle(s.listNotices))
	authed.GET("/consents", s.handle(s.listConsents))
	authed.POST("/consents", s.handle(s.recordConsent))
	authed.GET("/audit-events", s.handle(s.listAuditEvents))
	authed.GET("/audit-events/verify", s.handle(s.verifyAudit))
	authed.GET("/lab-results", s.handle(s.listLabResults))
	authed.GET("/lab-results/:id", s.handle(s.getLabResult))
	authed.GET("/lab-results/:id/trend", s.handle(s.labTrend))
	authed.GET("/lab-results/:id/pdf", s.handle(s.labPDF))
	authed.GET("/lab-results/:id/raw", s.handle(s.labRaw))
	authed.POST("/lab-results/:id/review", s.handle(s.reviewLabResult))
	authed.POST("/lab-results/:id/release", s.handle(s.releaseLabResult))
	authed.GET("/lab-messages", s.handle(s.listLabMessages))
	authed.GET("/lab-messages/:id", s.handle(s.getLabMessage))
	authed.GET("/lab-messages/:id/raw", s.handle(s.labMessageRaw))
	authed.POST("/lab-messages/:id/assign", s.handle(s.assignLabMessage))
	authed.POST("/lab-messages/:id/dismiss", s.handle(s.dismissLabMessage))
	authed.POST("/care-assignments", s.handle(s.createCareAssignment))
	authed.GET("/care-assignments", s.handle(s.listCareAssignments))
	authed.POST("/care-assignments/:id/end", s.handle(s.endCareAssignment))
	authed.POST("/proxy-relations", s.handle(s.createProxyRelation))
	authed.GET("/proxy-relations", s.handle(s.listProxyRelations))
	authed.POST("/proxy-relations/:id/end", s.handle(s.endProxyRelation))
	authed.POST("/admin/keys/rotate", s.handle(s.rotateKeys))
	authed.POST("/patients/:id/exports", s.handle(s.createExport))
	authed.POST("/patients/:id/erasure", s.handle(s.requestErasure))
	authed.GET("/patients/:id/dsr", s.handle(s.listPatientDSR))
	authed.GET("/dsr/:id", s.handle(s.getDSR))
	authed.POST("/patients/:id/legal-holds", s.handle(s.placeLegalHold))
	authed.GET("/patients/:id/legal-holds", s.handle(s.listLegalHolds))
	authed.POST("/legal-holds/:id/release", s.handle(s.releaseLegalHold))
	authed.GET("/retention-settings", s.handle(s.getRetention))
	authed.PUT("/retention-settings", s.handle(s.putRetention))
	authed.GET("/admin/identity-provider", s.handle(s.getIdentityProvider))
	authed.PUT("/admin/identity-provider", s.handle(s.putIdentityProvider))
	authed.DELETE("/admin/identity-provider", s.handle(s.deleteIdentityProvider))
	authed.POST("/patients/:id/notes", s.handle(s.createNote))
	authed.GET("/patients/:id/notes", s.handle(s.listNotes))
	authed.GET("/notes/:id", s.handle(s.getNote))
	authed.PUT("/notes/:id", s.handle(s.updateNote))
	authed.POST("/notes/:id/sign", s.handle(s.signNote))
	authed.POST("/notes/:id/addenda", s.handle(s.addNoteAddendum))
	authed.GET("/message-threads", s.handle(s.listThreads))
	authed.POST("/message-threads", s.handle(s.startThread))
	authed.GET("/message-threads/:id", s.handle(s.getThread))
	authed.POST("/message-threads/:id/messages", s.handle(s.sendMessage))
	authed.POST("/message-threads/:id/read", s.handle(s.markThreadRead))
	authed.POST("/message-threads/:id/close", s.handle(s.closeThread))
	authed.GET("/patients/:id", s.handle(s.getPatient))
	authed.PATCH("/patients/:id", s.handle(s.patchPatient))
	return r, nil
}

// health answers 200 when Postgres answers.
func (s *Server) health(c *gin.Context) error {
	db, err := s.DB.DB()
	if err != nil {
		return unavailable(err)
	}
	if err := db.PingContext(c.Request.Context()); err != nil {
		return unavailable(err)
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
	return nil
}

const requestIDKey = "requestID"

// requestID takes the caller's X-Request-ID when it looks like one, or makes
// one, and echoes it, so a support ticket can name the log lines.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader(reqid.HTTPHeader)
	if !reqid.Valid(id) {
		id = reqid.New()
	}
	c.Set(requestIDKey, id)
	c.Header(reqid.HTTPHeader, id)
	// In the request's context the ID reaches the logs of everything the
	// request calls, and the workflows it starts (package reqid).
	c.Request = c.Request.WithContext(reqid.With(c.Request.Context(), id))
	c.Next()
}

func requestID(c *gin.Context) string {
	return c.GetString(requestIDKey)
}

// accessLog writes one line per request: the route pattern, never the path
// (paths carry IDs only, but queries could carry anything), status and time.
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	s.Logger.InfoContext(c.Request.Context(), "http",
		"method", c.Request.Method,
		"route", c.FullPath(),
		"status", c.Writer.Status(),
		"ms", time.Since(start).Milliseconds(),
	)
}

// recover turns a panic into a logged 500.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.Logger.ErrorContext(c.Request.Context(), "panic", "route", c.FullPath(), "panic", v)
			writeProblem(c, internal(nil))
		}
	}()
	c.Next()
}

// limitBody caps request bodies; no Carebook request is near a megabyte.
func limitBody(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		}
		c.Next()
	}
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
