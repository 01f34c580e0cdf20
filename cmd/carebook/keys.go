package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"gorm.io/gorm"

	"github.com/carebook/carebook/audit"
	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/reqid"
	"github.com/carebook/carebook/workflows"
)

// newKeyring builds the tenants' keyring over db, its keys wrapped by the
// KMS key when CAREBOOK_KMS_KEY_ID is set and by CAREBOOK_KEK otherwise.
func newKeyring(ctx context.Context, cfg Config, db *gorm.DB) (*keyring.Keyring, error) {
	kek, err := newKEK(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return keyring.New(db, kek), nil
}

// newKEK is the configured KEK; with CAREBOOK_PREVIOUS_KEKS, a chain in
// which the KEKs being replaced still unwrap the keys they wrapped.
func newKEK(ctx context.Context, cfg Config) (keyring.KEK, error) {
	current, err := currentKEK(ctx, cfg)
	if err != nil || len(cfg.PreviousKEKs) == 0 {
		return current, err
	}
	chain := keyring.Chain{Current: current}
	for _, raw := range cfg.PreviousKEKs {
		k, err := keyring.NewLocalKEK(raw)
		if err != nil {
			return nil, fmt.Errorf("CAREBOOK_PREVIOUS_KEKS: %w", err)
		}
		chain.Previous = append(chain.Previous, k)
	}
	return chain, nil
}

func currentKEK(ctx context.Context, cfg Config) (keyring.KEK, error) {
	if cfg.KMSKeyID != "" {
		// KMS credentials come from the standard AWS chain (the pod's or
		// instance's role in production), never from Carebook's settings:
		// a role can be limited to Encrypt and Decrypt on this one key.
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.KMSRegion))
		if err != nil {
			return nil, fmt.Errorf("CAREBOOK_KMS_KEY_ID: aws configuration: %w", err)
		}
		client := kms.NewFromConfig(awsCfg, func(o *kms.Options) {
			if cfg.KMSEndpoint != "" {
				o.BaseEndpoint = aws.String(cfg.KMSEndpoint)
			}
		})
		return &keyring.KMSKEK{Client: client, KeyID: cfg.KMSKeyID}, nil
	}
	if len(cfg.KEK) == 0 {
		return nil, errors.New("CAREBOOK_KEK (32 bytes in base64) or CAREBOOK_KMS_KEY_ID is required; carebook dev makes its own KEK")
	}
	return keyring.NewLocalKEK(cfg.KEK)
}

// devKEK returns the configured KEK, or dev's own kept in the data folder
// as kek.key (base64), made on first start. A KMS key, when configured,
// takes its place and dev makes nothing.
func devKEK(cfg Config) ([]byte, error) {
	if len(cfg.KEK) > 0 || cfg.KMSKeyID != "" {
		return cfg.KEK, nil
	}
	path := filepath.Join(cfg.DataDir, "kek.key")
	if b, err := os.ReadFile(path); err == nil {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%s is not 32 bytes in base64", path)
		}
		return key, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		return nil, fmt.Errorf("write kek.key: %w", err)
	}
	return key, nil
}

const keysUsage = "usage: carebook keys rotate TENANT-SLUG | carebook keys rewrap"

// runKeys is `carebook keys rotate TENANT-SLUG`: it starts the rotation of
// the tenant's data key (or joins the one running) on the configured
// Temporal and prints the workflow's ID. The worker does the rest.
// `carebook keys rewrap` wraps every tenant's keys again under the
// current KEK (see rewrapKeys).
func runKeys(ctx context.Context, cfg Config, logger *slog.Logger) error {
	args := os.Args[2:]
	if len(args) == 1 && args[0] == "rewrap" {
		return rewrapKeys(ctx, cfg, os.Stdout)
	}
	if len(args) != 2 || args[0] != "rotate" {
		return errors.New(keysUsage)
	}
	db, err := openApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	var t models.Tenant
	if err := db.WithContext(ctx).Where("slug = ?", args[1]).Take(&t).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return fmt.Errorf("no tenant %q", args[1])
		}
		return fmt.Errorf("look up tenant: %w", err)
	}
	tc, err := dialTemporal(ctx, cfg.TemporalAddress, cfg.TemporalNamespace, logger)
	if err != nil {
		return err
	}
	defer tc.Close()
	run, err := workflows.StartKeyRotation(ctx, tc, t.ID.String(), keyring.DefaultActiveTTL)
	if err != nil {
		return err
	}
	fmt.Println(run.GetID())
	if cfg.TemporalUIURL != "" {
		fmt.Printf("%s/namespaces/%s/workflows/%s\n", strings.TrimRight(cfg.TemporalUIURL, "/"), cfg.TemporalNamespace, run.GetID())
	}
	return nil
}

// rewrapKeys is `carebook keys rewrap`: the last step of replacing the KEK.
// Every process already runs with the new KEK as CAREBOOK_KEK (or
// CAREBOOK_KMS_KEY_ID) and the old one in CAREBOOK_PREVIOUS_KEKS; this
// wraps every tenant's keys again under the new one, through the owner's
// connection (the application role may not rewrite wrapped keys), prints
// a line per tenant and records it in the tenant's audit log. Afterwards
// CAREBOOK_PREVIOUS_KEKS can go. Data is not re-encrypted: the keys'
// material does not change, only what wraps it.
func rewrapKeys(ctx context.Context, cfg Config, out io.Writer) error {
	if len(cfg.KEK) == 0 && cfg.KMSKeyID == "" {
		return errors.New("CAREBOOK_KEK (the new KEK) or CAREBOOK_KMS_KEY_ID is required, with the KEKs being replaced in CAREBOOK_PREVIOUS_KEKS")
	}
	if len(cfg.AuditKey) == 0 {
		return errors.New("CAREBOOK_AUDIT_KEY is required: each tenant's rewrap is recorded in its audit log")
	}
	kek, err := newKEK(ctx, cfg)
	if err != nil {
		return err
	}
	if err := pingPostgres(ctx, cfg.AdminDatabaseURL); err != nil {
		return err
	}
	db, err := models.Open(cfg.AdminDatabaseURL)
	if err != nil {
		return err
	}
	defer closeDB(db)
	var tenants []models.Tenant
	if err := db.WithContext(ctx).Order("slug").Find(&tenants).Error; err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	keys := keyring.New(db, kek)
	for _, t := range tenants {
		r, err := keys.Rewrap(ctx, t.ID)
		if err != nil {
			return fmt.Errorf("tenant %s: %w", t.Slug, err)
		}
		if r.Keys == 0 {
			fmt.Fprintf(out, "%s: every key already wrapped by %s\n", t.Slug, kek.ID())
			continue
		}
		err = models.InTenant(ctx, db, t.ID, func(tx *gorm.DB) error {
			return audit.Append(tx, cfg.AuditKey, &models.AuditEvent{TenantID: t.ID, ActorRole: "system", Action: "kek-rewrap",
				ResourceType: "tenant_keys", RequestID: reqid.From(ctx),
				Reason: fmt.Sprintf("%d keys from %s to %s", r.Keys, strings.Join(r.From, ", "), kek.ID())})
		})
		if err != nil {
			return fmt.Errorf("tenant %s: keys rewrapped, audit event not written: %w", t.Slug, err)
		}
		fmt.Fprintf(out, "%s: %d keys rewrapped from %s to %s\n", t.Slug, r.Keys, strings.Join(r.From, ", "), kek.ID())
	}
	return nil
}
