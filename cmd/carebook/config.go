package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Config is every setting of the carebook binary. FromEnv reads it; the
// defaults are the local services of a developer's machine. The README's
// configuration table lists the same variables.
type Config struct {
	DatabaseURL       string   // CAREBOOK_DATABASE_URL: the application role (RLS binds it)
	AdminDatabaseURL  string   // CAREBOOK_ADMIN_DATABASE_URL: the owner, for migrate, seed and dev
	RedisURL          string   // CAREBOOK_REDIS_URL
	TemporalAddress   string   // CAREBOOK_TEMPORAL_ADDRESS: host:port of the frontend (api, worker)
	TemporalNamespace string   // CAREBOOK_TEMPORAL_NAMESPACE
	TemporalUIURL     string   // CAREBOOK_TEMPORAL_UI_URL: for deep links from the api
	HTTPAddr          string   // CAREBOOK_HTTP_ADDR: where the api listens
	JWTKey            []byte   // CAREBOOK_JWT_KEY: hex, at least 32 bytes; dev makes one
	AuditKey          []byte   // CAREBOOK_AUDIT_KEY: hex, at least 32 bytes; keys the audit chain's HMAC; dev makes one
	DataDir           string   // CAREBOOK_DATA_DIR: dev's Temporal SQLite file and signing key
	TemporalPort      int      // CAREBOOK_TEMPORAL_PORT: dev's embedded frontend
	TemporalUIPort    int      // CAREBOOK_TEMPORAL_UI_PORT: dev's embedded web UI
	DemoTenant        string   // CAREBOOK_DEMO_TENANT: the slug dev and seed use
	LogLevel          string   // CAREBOOK_LOG_LEVEL: debug, info, warn, error
	TrustedProxies    []string // CAREBOOK_TRUSTED_PROXIES: comma-separated CIDRs whose X-Forwarded-For is believed
	CORSOrigins       []string // CAREBOOK_CORS_ORIGINS: comma-separated origins of the web and mobile apps
	KEK               []byte   // CAREBOOK_KEK: base64, 32 bytes; wraps the tenants' data and index keys; dev makes one
	KMSKeyID          string   // CAREBOOK_KMS_KEY_ID: an AWS KMS key that wraps them instead of CAREBOOK_KEK
	PreviousKEKs      [][]byte // CAREBOOK_PREVIOUS_KEKS: comma-separated base64 KEKs being replaced; they still unwrap, never wrap
	KMSRegion         string   // CAREBOOK_KMS_REGION: the KMS key's region (default CAREBOOK_S3_REGION)
	KMSEndpoint       string   // CAREBOOK_KMS_ENDPOINT: a KMS endpoint other than AWS's (a VPC endpoint)
	StripeURL         string   // CAREBOOK_STRIPE_URL: Stripe API base; empty is Stripe's own (dev: a local stripe-mock)
	RedisPrefix       string   // CAREBOOK_REDIS_PREFIX: starts every Redis key, so deployments can share a Redis
	LoginLimit        int      // CAREBOOK_LOGIN_LIMIT: logins per client address a minute (dev: 1000)
	SignupLimit       int      // CAREBOOK_SIGNUP_LIMIT: sign-ups per client address a minute (dev: 1000)
	MLLPAddr          string   // CAREBOOK_MLLP_ADDR: where the api takes HL7 v2 over MLLP; "off" disables it
	MLLPPartner       string   // CAREBOOK_MLLP_PARTNER: key ID of the partner that unrouted MLLP messages belong to (dev: the demo lab)
	TLSCertFile       string   // CAREBOOK_TLS_CERT_FILE: PEM certificate chain; with the key, the api serves HTTPS itself
	TLSKeyFile        string   // CAREBOOK_TLS_KEY_FILE: PEM private key of that certificate
	S3                S3Config // CAREBOOK_S3_*: the object store (dev: a local versitygw unless S3_ENDPOINT is set)
	SMTP              SMTPConfig
	AppURL            string // CAREBOOK_APP_URL: base of the links in account e-mails (the web app)
	PublicURL         string // CAREBOOK_PUBLIC_URL: the api's base URL as browsers reach it (single sign-on callback)
	BreachedPasswords string // CAREBOOK_BREACHED_PASSWORDS: file of SHA-1 hashes in HIBP's HASH:COUNT lines, refused as passwords
	MailpitUIPort     int    // CAREBOOK_MAILPIT_UI_PORT: dev's Mailpit web UI (its SMTP port is picked free)
	Retention         RetentionConfig
}

// SMTPConfig is the mail server account e-mails are handed to.
type SMTPConfig struct {
	Addr     string // CAREBOOK_SMTP_ADDR: host:port; empty sends no mail (dev: a local Mailpit)
	From     string // CAREBOOK_SMTP_FROM: sender address; required with SMTP_ADDR
	Username string // CAREBOOK_SMTP_USERNAME: PLAIN auth, only over TLS (STARTTLS) or to localhost
	Password string // CAREBOOK_SMTP_PASSWORD
}

// RetentionConfig is how long the nightly retention run keeps what.
type RetentionConfig struct {
	OutboxDays       int // CAREBOOK_OUTBOX_RETENTION_DAYS: sent notifications, counted from sending (30)
	IdempotencyHours int // CAREBOOK_IDEMPOTENCY_RETENTION_HOURS: Idempotency-Key answers (24)
	AuditOnlineDays  int // CAREBOOK_AUDIT_ONLINE_DAYS: audit events in Postgres before they are archived (90)
}

// S3Config is the object store's configuration.
type S3Config struct {
	Endpoint  string // CAREBOOK_S3_ENDPOINT: base URL; empty is AWS S3 in the region
	Region    string // CAREBOOK_S3_REGION
	Bucket    string // CAREBOOK_S3_BUCKET
	AccessKey string // CAREBOOK_S3_ACCESS_KEY
	SecretKey string // CAREBOOK_S3_SECRET_KEY
	PathStyle bool   // CAREBOOK_S3_PATH_STYLE: true for most non-AWS stores
	SSE       string // CAREBOOK_S3_SSE: "", AES256 or aws:kms
	KMSKeyID  string // CAREBOOK_S3_KMS_KEY_ID: with aws:kms
}

// FromEnv reads the configuration from the environment.
func FromEnv() (Config, error) {
	c := Config{
		DatabaseURL:       env("CAREBOOK_DATABASE_URL", "postgres://carebook_app@127.0.0.1:5432/carebook?sslmode=disable"),
		AdminDatabaseURL:  env("CAREBOOK_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/carebook?sslmode=disable"),
		RedisURL:          env("CAREBOOK_REDIS_URL", "redis://127.0.0.1:6379/0"),
		TemporalAddress:   env("CAREBOOK_TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		TemporalNamespace: env("CAREBOOK_TEMPORAL_NAMESPACE", "default"),
		TemporalUIURL:     env("CAREBOOK_TEMPORAL_UI_URL", ""),
		HTTPAddr:          env("CAREBOOK_HTTP_ADDR", "127.0.0.1:8080"),
		DataDir:           env("CAREBOOK_DATA_DIR", ".data"),
		DemoTenant:        env("CAREBOOK_DEMO_TENANT", "demo"),
		LogLevel:          env("CAREBOOK_LOG_LEVEL", "info"),
		RedisPrefix:       env("CAREBOOK_REDIS_PREFIX", "carebook:"),
		MLLPAddr:          env("CAREBOOK_MLLP_ADDR", "127.0.0.1:2575"),
		MLLPPartner:       os.Getenv("CAREBOOK_MLLP_PARTNER"),
		TLSCertFile:       os.Getenv("CAREBOOK_TLS_CERT_FILE"),
		TLSKeyFile:        os.Getenv("CAREBOOK_TLS_KEY_FILE"),
		S3: S3Config{
			Endpoint:  os.Getenv("CAREBOOK_S3_ENDPOINT"),
			Region:    env("CAREBOOK_S3_REGION", "us-east-1"),
			Bucket:    env("CAREBOOK_S3_BUCKET", "carebook"),
			AccessKey: os.Getenv("CAREBOOK_S3_ACCESS_KEY"),
			SecretKey: os.Getenv("CAREBOOK_S3_SECRET_KEY"),
			PathStyle: os.Getenv("CAREBOOK_S3_PATH_STYLE") == "true",
			SSE:       os.Getenv("CAREBOOK_S3_SSE"),
			KMSKeyID:  os.Getenv("CAREBOOK_S3_KMS_KEY_ID"),
		},
	}
	c.SMTP = SMTPConfig{
		Addr:     os.Getenv("CAREBOOK_SMTP_ADDR"),
		From:     os.Getenv("CAREBOOK_SMTP_FROM"),
		Username: os.Getenv("CAREBOOK_SMTP_USERNAME"),
		Password: os.Getenv("CAREBOOK_SMTP_PASSWORD"),
	}
	c.AppURL = os.Getenv("CAREBOOK_APP_URL")
	c.PublicURL = os.Getenv("CAREBOOK_PUBLIC_URL")
	c.BreachedPasswords = os.Getenv("CAREBOOK_BREACHED_PASSWORDS")
	if v := os.Getenv("CAREBOOK_CORS_ORIGINS"); v != "" {
		for _, o := range strings.Split(v, ",") {
			c.CORSOrigins = append(c.CORSOrigins, strings.TrimSpace(o))
		}
	}
	if v := os.Getenv("CAREBOOK_TRUSTED_PROXIES"); v != "" {
		for _, p := range strings.Split(v, ",") {
			c.TrustedProxies = append(c.TrustedProxies, strings.TrimSpace(p))
		}
	}
	var err error
	if c.TemporalPort, err = envInt("CAREBOOK_TEMPORAL_PORT", 7233); err != nil {
		return c, err
	}
	// The commands that talk to a running dev (keys rotate, retention
	// run) follow its port, as send-hl7 follows its MLLP address, unless
	// an address is given.
	if os.Getenv("CAREBOOK_TEMPORAL_ADDRESS") == "" {
		c.TemporalAddress = fmt.Sprintf("127.0.0.1:%d", c.TemporalPort)
	}
	if c.TemporalUIPort, err = envInt("CAREBOOK_TEMPORAL_UI_PORT", 8233); err != nil {
		return c, err
	}
	if c.MailpitUIPort, err = envInt("CAREBOOK_MAILPIT_UI_PORT", 8025); err != nil {
		return c, err
	}
	if c.LoginLimit, err = envInt("CAREBOOK_LOGIN_LIMIT", 0); err != nil {
		return c, err
	}
	if c.SignupLimit, err = envInt("CAREBOOK_SIGNUP_LIMIT", 0); err != nil {
		return c, err
	}
	for _, v := range []struct {
		name string
		def  int
		dst  *int
	}{
		{"CAREBOOK_OUTBOX_RETENTION_DAYS", 30, &c.Retention.OutboxDays},
		{"CAREBOOK_IDEMPOTENCY_RETENTION_HOURS", 24, &c.Retention.IdempotencyHours},
		{"CAREBOOK_AUDIT_ONLINE_DAYS", 90, &c.Retention.AuditOnlineDays},
	} {
		if *v.dst, err = envInt(v.name, v.def); err != nil {
			return c, err
		}
		if *v.dst < 1 {
			return c, fmt.Errorf("%s must be at least 1", v.name)
		}
	}
	c.StripeURL = os.Getenv("CAREBOOK_STRIPE_URL")
	if v := os.Getenv("CAREBOOK_KEK"); v != "" {
		if c.KEK, err = base64.StdEncoding.DecodeString(v); err != nil || len(c.KEK) != 32 {
			return c, fmt.Errorf("CAREBOOK_KEK must be 32 bytes in base64 (44 characters)")
		}
	}
	if v := os.Getenv("CAREBOOK_PREVIOUS_KEKS"); v != "" {
		for _, part := range strings.Split(v, ",") {
			k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(part))
			if err != nil || len(k) != 32 {
				return c, fmt.Errorf("CAREBOOK_PREVIOUS_KEKS must be comma-separated keys of 32 bytes in base64")
			}
			c.PreviousKEKs = append(c.PreviousKEKs, k)
		}
	}
	c.KMSKeyID = os.Getenv("CAREBOOK_KMS_KEY_ID")
	c.KMSRegion = env("CAREBOOK_KMS_REGION", c.S3.Region)
	c.KMSEndpoint = os.Getenv("CAREBOOK_KMS_ENDPOINT")
	if os.Getenv("CAREBOOK_SECRETS_KEY") != "" {
		// Replaced by per-tenant keys: refuse rather than ignore it, so an
		// operator does not believe secrets are sealed under it.
		return c, fmt.Errorf("CAREBOOK_SECRETS_KEY is no longer read: set CAREBOOK_KEK or CAREBOOK_KMS_KEY_ID (see the README's Encryption section)")
	}
	if v := os.Getenv("CAREBOOK_AUDIT_KEY"); v != "" {
		if c.AuditKey, err = hex.DecodeString(v); err != nil || len(c.AuditKey) < 32 {
			return c, fmt.Errorf("CAREBOOK_AUDIT_KEY must be at least 32 bytes in hex (64 hex digits)")
		}
	}
	if v := os.Getenv("CAREBOOK_JWT_KEY"); v != "" {
		if c.JWTKey, err = hex.DecodeString(v); err != nil || len(c.JWTKey) < 32 {
			return c, fmt.Errorf("CAREBOOK_JWT_KEY must be at least 32 bytes in hex (64 hex digits)")
		}
	}
	return c, nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s must be a number: %w", name, err)
	}
	return n, nil
}
