package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/carebook/carebook/audit"
	"github.com/carebook/carebook/models"
)

// runAudit is `carebook audit verify [TENANT-SLUG...]`: it checks every
// named tenant's audit hash chain (every tenant's without names), prints
// one line per tenant, the first breaks of a broken chain, and fails when
// any chain is broken.
func runAudit(ctx context.Context, cfg Config, _ *slog.Logger) error {
	args := os.Args[2:]
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: carebook audit verify [TENANT-SLUG...]")
	}
	if len(cfg.AuditKey) == 0 {
		// The key dev keeps, when this runs beside a dev.
		if b, err := os.ReadFile(filepath.Join(cfg.DataDir, "audit.key")); err == nil {
			cfg.AuditKey, _ = hex.DecodeString(strings.TrimSpace(string(b)))
		}
	}
	if len(cfg.AuditKey) == 0 {
		return errors.New("CAREBOOK_AUDIT_KEY is required (the api's key; dev keeps it in CAREBOOK_DATA_DIR/audit.key)")
	}
	db, err := openApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	var tenants []models.Tenant
	q := db.WithContext(ctx).Order("slug")
	if len(args) > 1 {
		q = q.Where("slug IN ?", args[1:])
	}
	if err := q.Find(&tenants).Error; err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	if len(args) > 1 && len(tenants) != len(args)-1 {
		return fmt.Errorf("some of the tenants %v do not exist", args[1:])
	}
	// With the object store, archived segments are checked too and each
	// verified head is anchored. Beside dev, its running store is found
	// in the data folder. Without one, only the chain in Postgres is
	// checked, and the command says so and does not answer ok.
	var opts []audit.Option
	if cfg.S3.AccessKey == "" {
		if dev, ok := readDevS3(cfg); ok {
			cfg.S3 = dev
		}
	}
	unanchored := cfg.S3.AccessKey == ""
	if !unanchored {
		store, err := openStore(ctx, cfg.S3)
		if err != nil {
			return err
		}
		opts = append(opts, audit.WithArchive(store), audit.WithAnchor(time.Now))
	} else {
		fmt.Println("no object store configured (CAREBOOK_S3_*): archived segments and head anchors are not checked")
	}
	broken := 0
	for _, t := range tenants {
		rep, err := audit.Verify(ctx, db, cfg.AuditKey, t.ID, opts...)
		if err != nil {
			return err
		}
		if rep.OK() && unanchored {
			// A cut tail with the head moved back looks whole without
			// the anchors: not "ok".
			broken++
			fmt.Printf("UNCHECKED %s  %d events, head %d: the chain holds, but archive and anchors were not checked\n", t.Slug, rep.Events, rep.Head)
			continue
		}
		if rep.OK() {
			// The anchor the head was checked against, and the one this
			// check left (the head itself): printing only the first showed
			// the anchor one check behind.
			fmt.Printf("ok      %s  %d events (%d archived), head %d, anchor %d, checked against %d\n",
				t.Slug, rep.Events, rep.Archived, rep.Head, rep.Reanchored, rep.Anchored)
			continue
		}
		broken++
		fmt.Printf("BROKEN  %s  %d events, head %d\n", t.Slug, rep.Events, rep.Head)
		for _, b := range rep.Breaks {
			fmt.Printf("        event %d: %s\n", b.Seq, b.Why)
		}
	}
	if broken > 0 {
		return fmt.Errorf("%d tenant audit chain(s) broken or not fully checked", broken)
	}
	return nil
}
