package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
)

// Single sign-on through a tenant's own OpenID Connect provider, by the
// authorization code flow with PKCE:
//
//  1. The app sends the browser to GET /v1/auth/oidc/start?tenant=…&return_to=…
//     The api keeps a state (with the PKCE verifier and a nonce) in Redis
//     for ten minutes and redirects to the provider.
//  2. The provider sends the browser back to GET /v1/auth/oidc/callback. The
//     api takes the state once, exchanges the code, verifies the ID token
//     (signature, issuer, audience, expiry, nonce), finds the account and
//     redirects to return_to with a one-time login code in the fragment —
//     never tokens in a URL.
//  3. The app posts the code to POST /v1/auth/oidc/token and gets what a
//     password login answers: tokens, or 202 and an MFA step.
//
// Accounts are never made here: an identity is linked, on its first
// sign-in, to the existing account with the same verified e-mail (in the
// provider's allowed domains), and after that by its subject alone.
const (
	oidcStateTTL = 10 * time.Minute
	oidcCodeTTL  = 2 * time.Minute
	// oidcProviderTTL is how long a provider's discovery document is
	// reused; its signing keys are refreshed by go-oidc as they rotate.
	oidcProviderTTL = time.Hour
)

// oidcState is what the api remembers between the start and the callback.
type oidcState struct {
	Tenant   uuid.UUID `json:"tenant"`
	Issuer   string    `json:"issuer"`
	Verifier string    `json:"verifier"`
	Nonce    string    `json:"nonce"`
	ReturnTo string    `json:"return_to"`
}

// oidcLogin is what a one-time login code stands for.
type oidcLogin struct {
	Tenant uuid.UUID `json:"tenant"`
	User   uuid.UUID `json:"user"`
	// IdPMFA: the provider says the sign-in used a second factor, and the
	// tenant trusts it for Carebook's MFA step.
	IdPMFA bool `json:"idp_mfa"`
}

func (s *Server) oidcStateKey(state string) string {
	return s.RedisPrefix + "oidc-state:" + secretHash(state)
}

func (s *Server) oidcCodeKey(code string) string {
	return s.RedisPrefix + "oidc-code:" + secretHash(code)
}

// oidcProviders caches discovered providers by issuer.
type oidcProviders struct {
	mu sync.Mutex
	m  map[string]cachedProvider
}

type cachedProvider struct {
	p  *oidc.Provider
	at time.Time
}

// oidcContext carries the HTTP client go-oidc and oauth2 use to reach
// providers.
func (s *Server) oidcContext(ctx context.Context) context.Context {
	client := s.OIDCClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	ctx = oidc.ClientContext(ctx, client)
	return context.WithValue(ctx, oauth2.HTTPClient, client)
}

// provider discovers (or reuses) the provider at issuer.
func (s *Server) provider(ctx context.Context, issuer string) (*oidc.Provider, error) {
	s.oidc.mu.Lock()
	if s.oidc.m == nil {
		s.oidc.m = map[string]cachedProvider{}
	}
	c, ok := s.oidc.m[issuer]
	s.oidc.mu.Unlock()
	if ok && s.Now().Sub(c.at) < oidcProviderTTL {
		return c.p, nil
	}
	// The provider is used beyond this request (its key set fetches keys
	// later), so it gets a context that outlives the request.
	p, err := oidc.NewProvider(s.oidcContext(context.WithoutCancel(ctx)), issuer)
	if err != nil {
		return nil, err
	}
	s.oidc.mu.Lock()
	s.oidc.m[issuer] = cachedProvider{p: p, at: s.Now()}
	s.oidc.mu.Unlock()
	return p, nil
}

// checkIssuer accepts an https issuer, or http on a loopback address (a
// provider on the same machine, as in tests and local trials).
func checkIssuer(raw string) error {
	u, err := url.Parse(raw)
	bad := invalid("invalid-issuer", "The issuer must be an https URL without a query or fragment.")
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return bad
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() || u.Hostname() == "localhost" {
			return nil
		}
	}
	return bad
}

type identityProviderRequest struct {
	Issuer   string `json:"issuer" binding:"required,max=500"`
	ClientID string `json:"client_id" binding:"required,max=200"`
	// ClientSecret may be left out of an update that keeps the issuer
	// and client ID: the sealed one stays.
	ClientSecret string   `json:"client_secret" binding:"max=500"`
	EmailDomains []string `json:"email_domains" binding:"max=20,dive,required,max=200"`
	TrustIdPMFA  bool     `json:"trust_idp_mfa"`
	Enabled      *bool    `json:"enabled"`
}

type identityProviderView struct {
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	EmailDomains []string  `json:"email_domains"`
	TrustIdPMFA  bool      `json:"trust_idp_mfa"`
	Enabled      bool      `json:"enabled"`
	RedirectURI  string    `json:"redirect_uri"`
	UpdatedAt    time.Time `json:"updated_at"`
	UpdatedBy    string    `json:"updated_by"`
}

// redirectURI is the callback every tenant registers at its provider.
func (s *Server) redirectURI() string {
	return strings.TrimRight(s.PublicURL, "/") + "/v1/auth/oidc/callback"
}

func (s *Server) viewIdentityProvider(p models.IdentityProvider) identityProviderView {
	d := p.EmailDomains
	if d == nil {
		d = []string{}
	}
	return identityProviderView{Issuer: p.Issuer, ClientID: p.ClientID, EmailDomains: d, TrustIdPMFA: p.TrustIdPMFA,
		Enabled: p.Enabled, RedirectURI: s.redirectURI(), UpdatedAt: p.UpdatedAt.UTC(), UpdatedBy: p.UpdatedBy.String()}
}

// getIdentityProvider handles GET /v1/admin/identity-provider (admins): the
// tenant's provider, without its client secret.
func (s *Server) getIdentityProvider(c *gin.Context) error {
	var p models.IdentityProvider
	err := s.inTenant(c, func(tx *gorm.DB) error {
		return tx.Take(&p).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return notFound("identity provider")
	}
	if err != nil {
		return internal(err)
	}
	c.JSON(http.StatusOK, s.viewIdentityProvider(p))
	return nil
}

// putIdentityProvider handles PUT /v1/admin/identity-provider (admins): sets
// the tenant's provider. The issuer is discovered before anything is
// saved, so a typo answers 422 rather than breaking every sign-in.
func (s *Server) putIdentityProvider(c *gin.Context) error {
	var req identityProviderRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	req.Issuer = strings.TrimSpace(req.Issuer)
	if err := checkIssuer(req.Issuer); err != nil {
		return err
	}
	domains := make([]string, 0, len(req.EmailDomains))
	for _, d := range req.EmailDomains {
		d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
		if d == "" || strings.ContainsAny(d, "@ /") || !strings.Contains(d, ".") {
			return invalid("invalid-email-domain", "Each e-mail domain must be a domain name such as hospital.example.")
		}
		if !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	if _, err := s.provider(c.Request.Context(), req.Issuer); err != nil {
		p := invalid("issuer-unreachable", "The issuer's discovery document could not be read or does not name this issuer.")
		p.Err = err
		return p
	}
	pr := principal(c)
	var sealed []byte
	if req.ClientSecret != "" {
		var err error
		if sealed, err = s.Keys.SealFor(c.Request.Context(), pr.TenantID, keyring.Binding{Purpose: keyring.PurposeOIDCClientSecret}, req.ClientSecret); err != nil {
			return internal(err)
		}
	}
	row := models.IdentityProvider{TenantID: pr.TenantID, Issuer: req.Issuer, ClientID: req.ClientID, ClientSecretEnc: sealed,
		EmailDomains: domains, TrustIdPMFA: req.TrustIdPMFA, Enabled: req.Enabled == nil || *req.Enabled,
		UpdatedBy: pr.UserID, UpdatedAt: s.Now().UTC()}
	err := s.inTenant(c, func(tx *gorm.DB) error {
		var old models.IdentityProvider
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&old).Error
		if row.ClientSecretEnc == nil {
			// The sealed secret stays only with the client it was issued
			// to: a new issuer or client ID must come with its own, so
			// that the secret is never sent to another server.
			if err != nil || old.Issuer != row.Issuer || old.ClientID != row.ClientID {
				return invalid("client-secret-required", "A new provider, issuer or client ID needs its client_secret.")
			}
			row.ClientSecretEnc = old.ClientSecretEnc
		}
		switch {
		case err == nil && old.Issuer != row.Issuer:
			// Subjects are unique per issuer only: links made under the
			// old issuer mean nothing under the new one.
			if err := tx.Where("issuer = ?", old.Issuer).Delete(&models.UserIdentity{}).Error; err != nil {
				return internal(err)
			}
		case err != nil && !errors.Is(err, gorm.ErrRecordNotFound):
			return internal(err)
		}
		if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "identity-provider-update", "identity_provider", nil, nil, row.Issuer)
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, s.viewIdentityProvider(row))
	return nil
}

// deleteIdentityProvider handles DELETE /v1/admin/identity-provider
// (admins): single sign-on ends; passwords keep working.
func (s *Server) deleteIdentityProvider(c *gin.Context) error {
	err := s.inTenant(c, func(tx *gorm.DB) error {
		var p models.IdentityProvider
		if err := tx.Take(&p).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return notFound("identity provider")
			}
			return internal(err)
		}
		if err := tx.Where("issuer = ?", p.Issuer).Delete(&models.UserIdentity{}).Error; err != nil {
			return internal(err)
		}
		if err := tx.Where("tenant_id = ?", p.TenantID).Delete(&models.IdentityProvider{}).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "identity-provider-delete", "identity_provider", nil, nil, p.Issuer)
	})
	if err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// tenantProvider loads an enabled provider of tenant, with its secret.
func (s *Server) tenantProvider(ctx context.Context, tenant uuid.UUID) (models.IdentityProvider, string, error) {
	var p models.IdentityProvider
	err := models.InTenant(ctx, s.DB, tenant, func(tx *gorm.DB) error {
		return tx.Where("enabled").Take(&p).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return p, "", notFound("single sign-on for this tenant")
	}
	if err != nil {
		return p, "", internal(err)
	}
	secret, err := s.Keys.OpenFor(ctx, tenant, keyring.Binding{Purpose: keyring.PurposeOIDCClientSecret}, p.ClientSecretEnc)
	if err != nil {
		return p, "", internal(err)
	}
	return p, secret, nil
}

func (s *Server) oauthConfig(p *oidc.Provider, ip models.IdentityProvider, secret string) *oauth2.Config {
	return &oauth2.Config{ClientID: ip.ClientID, ClientSecret: secret, Endpoint: p.Endpoint(),
		RedirectURL: s.redirectURI(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
}

// allowedReturn reports whether return_to is on one of the apps' origins
// (CORS origins or the web app's URL): the login code is only ever handed
// to Carebook's own apps.
func (s *Server) allowedReturn(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return false
	}
	origin := u.Scheme + "://" + u.Host
	allowed := slices.Clone(s.CORSOrigins)
	if a, err := url.Parse(s.AppURL); err == nil && a.Host != "" {
		allowed = append(allowed, a.Scheme+"://"+a.Host)
	}
	return slices.Contains(allowed, origin)
}

// startOIDC handles GET /v1/auth/oidc/start?tenant=SLUG&return_to=URL.
func (s *Server) startOIDC(c *gin.Context) error {
	if err := s.throttle(c, "sso", s.LoginLimit); err != nil {
		return err
	}
	returnTo := c.Query("return_to")
	if !s.allowedReturn(returnTo) {
		return badRequest("invalid-return-to", "return_to must be a URL on one of the apps' origins.")
	}
	tenant, err := s.tenantBySlug(c.Request.Context(), c.Query("tenant"))
	if err != nil {
		return err
	}
	ip, secret, err := s.tenantProvider(c.Request.Context(), tenant.ID)
	if err != nil {
		return err
	}
	p, err := s.provider(c.Request.Context(), ip.Issuer)
	if err != nil {
		return unavailable(fmt.Errorf("oidc discovery: %w", err))
	}
	st := oidcState{Tenant: tenant.ID, Issuer: ip.Issuer, Verifier: oauth2.GenerateVerifier(), Nonce: newSecret(), ReturnTo: returnTo}
	state := newSecret()
	body, _ := json.Marshal(st)
	if err := s.Redis.Set(c.Request.Context(), s.oidcStateKey(state), body, oidcStateTTL).Err(); err != nil {
		return unavailable(err)
	}
	to := s.oauthConfig(p, ip, secret).AuthCodeURL(state, oauth2.S256ChallengeOption(st.Verifier), oidc.Nonce(st.Nonce))
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, to)
	return nil
}

// oidcFailure sends the browser back to the app with a bare error code:
// the reason is in the log and the audit log, not in the URL.
func oidcFailure(c *gin.Context, returnTo, code string) {
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, returnTo+"#error="+url.QueryEscape(code))
}

// idTokenClaims are the ID token's claims Carebook reads.
type idTokenClaims struct {
	Email         string       `json:"email"`
	EmailVerified claimBoolean `json:"email_verified"`
	AMR           []string     `json:"amr"`
}

// claimBoolean reads a JSON boolean, or the strings "true" and "false"
// that some providers send for one; anything else is false.
type claimBoolean bool

func (b *claimBoolean) UnmarshalJSON(raw []byte) error {
	switch string(raw) {
	case "true", `"true"`:
		*b = true
	default:
		*b = false
	}
	return nil
}

// usedSecondFactor reports whether amr (RFC 8176) names a second factor.
func usedSecondFactor(amr []string) bool {
	for _, m := range amr {
		switch m {
		case "mfa", "otp", "hwk", "swk", "sms", "fpt", "face", "iris", "retina", "vbm", "sc":
			return true
		}
	}
	return false
}

// oidcCallback handles GET /v1/auth/oidc/callback?code=…&state=…
func (s *Server) oidcCallback(c *gin.Context) error {
	ctx := c.Request.Context()
	state := c.Query("state")
	if state == "" {
		return badRequest("invalid-oidc-state", "The sign-in has expired or was already used; start again.")
	}
	raw, err := s.Redis.GetDel(ctx, s.oidcStateKey(state)).Bytes()
	if errors.Is(err, redis.Nil) {
		return badRequest("invalid-oidc-state", "The sign-in has expired or was already used; start again.")
	}
	if err != nil {
		return unavailable(err)
	}
	var st oidcState
	if err := json.Unmarshal(raw, &st); err != nil {
		return internal(err)
	}
	fail := func(code, why string, err error) error {
		s.Logger.WarnContext(ctx, "oidc sign-in refused", "tenant", st.Tenant, "reason", why, "error", err)
		if aerr := s.auditLogin(c, st.Tenant, nil, "", "login-failed", "oidc: "+why); aerr != nil {
			return aerr
		}
		oidcFailure(c, st.ReturnTo, code)
		return nil
	}
	if e := c.Query("error"); e != "" {
		// The provider's own refusal (the user cancelled, or may not use
		// this client): its standard code is passed on, nothing else.
		code := "access_denied"
		if slices.Contains([]string{"access_denied", "login_required", "interaction_required", "consent_required", "temporarily_unavailable"}, e) {
			code = e
		}
		return fail(code, "provider answered "+code, nil)
	}
	ip, secret, err := s.tenantProvider(ctx, st.Tenant)
	if err != nil || ip.Issuer != st.Issuer {
		return fail("sso-unavailable", "provider removed or changed during sign-in", err)
	}
	p, err := s.provider(ctx, ip.Issuer)
	if err != nil {
		return fail("sso-unavailable", "discovery failed", err)
	}
	tok, err := s.oauthConfig(p, ip, secret).Exchange(s.oidcContext(ctx), c.Query("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return fail("sso-failed", "code exchange failed", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return fail("sso-failed", "no id_token", nil)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: ip.ClientID, Now: s.Now}).Verify(s.oidcContext(ctx), rawID)
	if err != nil {
		return fail("sso-failed", "id_token did not verify", err)
	}
	if idt.Nonce != st.Nonce {
		return fail("sso-failed", "nonce mismatch", nil)
	}
	var claims idTokenClaims
	if err := idt.Claims(&claims); err != nil {
		return fail("sso-failed", "claims unreadable", err)
	}
	user, err := s.linkIdentity(ctx, ip, idt.Subject, claims)
	if err != nil {
		var p *Problem
		if errors.As(err, &p) && p.Kind == KindNotFound {
			return fail("no-account", "no account for this identity", nil)
		}
		return err
	}
	code := "oc_" + newSecret()
	body, _ := json.Marshal(oidcLogin{Tenant: st.Tenant, User: user.ID, IdPMFA: ip.TrustIdPMFA && usedSecondFactor(claims.AMR)})
	if err := s.Redis.Set(ctx, s.oidcCodeKey(code), body, oidcCodeTTL).Err(); err != nil {
		return unavailable(err)
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, st.ReturnTo+"#login_code="+url.QueryEscape(code))
	return nil
}

// linkIdentity finds the account of the provider's subject: by its link,
// or on a first sign-in by a verified e-mail in the allowed domains, which
// it then links. Accounts made unusable by an erasure have no link (the
// erasure deletes it) and an e-mail that matches nothing.
func (s *Server) linkIdentity(ctx context.Context, ip models.IdentityProvider, subject string, claims idTokenClaims) (models.User, error) {
	var u models.User
	err := models.InTenant(ctx, s.DB, ip.TenantID, func(tx *gorm.DB) error {
		var link models.UserIdentity
		err := tx.Where("issuer = ? AND subject = ?", ip.Issuer, subject).Take(&link).Error
		if err == nil {
			if err := tx.Where("id = ?", link.UserID).Take(&u).Error; err != nil {
				return err
			}
			return tx.Model(&models.UserIdentity{}).Where("issuer = ? AND subject = ?", ip.Issuer, subject).
				Update("last_login_at", s.Now().UTC()).Error
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		email, err := normaliseEmail(claims.Email)
		if err != nil || !bool(claims.EmailVerified) || !inDomains(email, ip.EmailDomains) {
			return gorm.ErrRecordNotFound
		}
		if err := tx.Where("lower(email) = ?", email).Take(&u).Error; err != nil {
			return err
		}
		now := s.Now().UTC()
		// An account already linked to another subject of this issuer is
		// not taken over by a second one with the same e-mail.
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&models.UserIdentity{TenantID: ip.TenantID, Issuer: ip.Issuer,
			Subject: subject, UserID: u.ID, CreatedAt: now, LastLoginAt: &now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		return nil
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return u, notFound("account")
	}
	if err != nil {
		return u, internal(err)
	}
	return u, nil
}

func inDomains(email string, domains []string) bool {
	if len(domains) == 0 {
		return true
	}
	at := strings.LastIndexByte(email, '@')
	return at >= 0 && slices.Contains(domains, email[at+1:])
}

type oidcTokenRequest struct {
	Code string `json:"code" binding:"required,max=200"`
}

// oidcToken handles POST /v1/auth/oidc/token: a one-time login code for
// what a password login answers (tokens, or 202 and an MFA step).
func (s *Server) oidcToken(c *gin.Context) error {
	var req oidcTokenRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := s.throttle(c, "sso", s.LoginLimit); err != nil {
		return err
	}
	bad := unauthorized("The login code is invalid, expired or already used; sign in again.")
	raw, err := s.Redis.GetDel(c.Request.Context(), s.oidcCodeKey(req.Code)).Bytes()
	if errors.Is(err, redis.Nil) {
		return bad
	}
	if err != nil {
		return unavailable(err)
	}
	var l oidcLogin
	if err := json.Unmarshal(raw, &l); err != nil {
		return internal(err)
	}
	var u models.User
	err = models.InTenant(c.Request.Context(), s.DB, l.Tenant, func(tx *gorm.DB) error {
		return tx.Where("id = ?", l.User).Take(&u).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return bad
	}
	if err != nil {
		return internal(err)
	}
	if !l.IdPMFA {
		if purpose, err := s.mfaStep(c, u); err != nil || purpose != "" {
			if err != nil {
				return err
			}
			return s.respondMFA(c, u, purpose)
		}
	}
	reason := "oidc"
	if l.IdPMFA {
		reason = "oidc with the provider's second factor"
	}
	if err := s.auditLogin(c, u.TenantID, &u.ID, u.Role, "login", reason); err != nil {
		return err
	}
	return s.respondToken(c, http.StatusOK, u)
}
