package api

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/carebook/carebook/models"
)

// AccessTTL is the life of an access token. Every request also checks
// that the token's session is still open (sessions.go), so a logout or a
// revoked session ends the token at once; the short life bounds what a
// stolen token is worth should that check be skipped (no Redis).
const AccessTTL = 15 * time.Minute

const tokenIssuer = "carebook"

// Principal is who is calling: decoded from the access token.
type Principal struct {
	UserID         uuid.UUID
	TenantID       uuid.UUID
	Role           models.Role
	PatientID      uuid.UUID // set for patients
	PractitionerID uuid.UUID // set for doctors
	FacilityID     uuid.UUID // set for staff
	// IssuedAt is when the access token was issued.
	IssuedAt time.Time
	// SessionID is the session (refresh token family) the token was
	// issued in; the token works only while that session is open. Empty
	// when the server keeps no sessions (no Redis).
	SessionID string
}

type claims struct {
	jwt.RegisteredClaims
	Tenant       string `json:"tid"`
	Role         string `json:"role"`
	Patient      string `json:"pat,omitempty"`
	Practitioner string `json:"prac,omitempty"`
	Facility     string `json:"fac,omitempty"`
	// IssuedMs is iat in milliseconds: "log out everywhere" must tell a
	// token issued just before it from one issued just after.
	IssuedMs int64 `json:"iat_ms,omitempty"`
	// Session is the session's family ID: logging that session out, or
	// revoking it for a reused refresh token, ends this token too.
	Session string `json:"sid,omitempty"`
}

// Tokens signs and verifies access tokens with HMAC-SHA256.
type Tokens struct {
	key []byte
	now func() time.Time
}

// NewTokens returns a signer for key, which must hold at least 32 bytes.
func NewTokens(key []byte, now func() time.Time) (*Tokens, error) {
	if len(key) < 32 {
		return nil, errors.New("token signing key must be at least 32 bytes")
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{key: key, now: now}, nil
}

// Issue returns a signed access token for p and its expiry.
func (t *Tokens) Issue(p Principal) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(AccessTTL)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   p.UserID.String(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        uuid.NewString(),
		},
		Tenant:   p.TenantID.String(),
		Role:     string(p.Role),
		IssuedMs: now.UnixMilli(),
		Session:  p.SessionID,
	}
	if p.PatientID != uuid.Nil {
		c.Patient = p.PatientID.String()
	}
	if p.PractitionerID != uuid.Nil {
		c.Practitioner = p.PractitionerID.String()
	}
	if p.FacilityID != uuid.Nil {
		c.Facility = p.FacilityID.String()
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return signed, exp, nil
}

// Verify checks the signature, algorithm, issuer and expiry of token.
func (t *Tokens) Verify(token string) (Principal, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		return Principal{}, err
	}
	p := Principal{Role: models.Role(c.Role)}
	if p.UserID, err = uuid.Parse(c.Subject); err != nil {
		return Principal{}, errors.New("token subject is not a user id")
	}
	if p.TenantID, err = uuid.Parse(c.Tenant); err != nil {
		return Principal{}, errors.New("token tenant is not an id")
	}
	if !p.Role.Valid() {
		return Principal{}, errors.New("token role is unknown")
	}
	p.PatientID = parseOptional(c.Patient)
	p.PractitionerID = parseOptional(c.Practitioner)
	p.FacilityID = parseOptional(c.Facility)
	p.IssuedAt = time.UnixMilli(c.IssuedMs)
	p.SessionID = c.Session
	return p, nil
}

func parseOptional(s string) uuid.UUID {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil
	}
	return id
}
