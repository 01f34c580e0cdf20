package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"gorm.io/gorm"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
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

func newKEK(ctx context.Context, cfg Config) (keyring.KEK, error) {
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

// runKeys is `carebook keys rotate TENANT-SLUG`: it starts the rotation of
// the tenant's data key (or joins the one running) on the configured
// Temporal and prints the workflow's ID. The worker does the rest.
func runKeys(ctx context.Context, cfg Config, logger *slog.Logger) error {
	args := os.Args[2:]
	if len(args) != 2 || args[0] != "rotate" {
		return errors.New("usage: carebook keys rotate TENANT-SLUG")
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
