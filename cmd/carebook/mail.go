package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/carebook/carebook/mail"
	"github.com/carebook/carebook/mail/mailpit"
	"github.com/carebook/carebook/passwords"
)

// newMailer builds the account mailer from the configuration, or nil when
// no mail server is configured (sign-ups then go unverified and password
// reset answers 503; the api says so at start).
func newMailer(cfg Config, logger *slog.Logger) (mail.Mailer, error) {
	if cfg.SMTP.Addr == "" {
		logger.Warn("no mail server (CAREBOOK_SMTP_ADDR): account e-mails are off, password reset answers 503")
		return nil, nil
	}
	if cfg.SMTP.From == "" {
		return nil, errors.New("CAREBOOK_SMTP_FROM is required with CAREBOOK_SMTP_ADDR")
	}
	return &mail.SMTP{Addr: cfg.SMTP.Addr, From: cfg.SMTP.From, Username: cfg.SMTP.Username, Password: cfg.SMTP.Password}, nil
}

// loadBreached reads the configured breached-password hashes, if any.
func loadBreached(cfg Config, logger *slog.Logger) (*passwords.HashList, error) {
	if cfg.BreachedPasswords == "" {
		return nil, nil
	}
	l, err := passwords.LoadHIBP(cfg.BreachedPasswords)
	if err != nil {
		return nil, fmt.Errorf("CAREBOOK_BREACHED_PASSWORDS: %w", err)
	}
	logger.Info("breached passwords loaded", "count", l.Len())
	return l, nil
}

// devMail starts a local Mailpit for dev's account e-mails unless
// CAREBOOK_SMTP_ADDR names a server, and returns what to print about it.
// Without Mailpit installed dev runs on, with account e-mails off.
func devMail(ctx context.Context, cfg *Config) (string, func(), error) {
	if cfg.SMTP.Addr != "" {
		return "SMTP server " + cfg.SMTP.Addr, func() {}, nil
	}
	mp, err := mailpit.Start(ctx, filepath.Join(cfg.DataDir, "mail"), mailpit.Options{UIPort: cfg.MailpitUIPort})
	if err != nil {
		if _, missing := mailpit.Binary(); missing != nil {
			return "off: Mailpit is not installed; `" + mailpit.Install + "` or `make tools` adds it", func() {}, nil
		}
		return "", nil, fmt.Errorf("start the local mail catcher (port %d; set CAREBOOK_MAILPIT_UI_PORT to move it): %w", cfg.MailpitUIPort, err)
	}
	cfg.SMTP.Addr = mp.SMTPAddr
	if cfg.SMTP.From == "" {
		cfg.SMTP.From = "no-reply@carebook.test"
	}
	return "every account e-mail lands in Mailpit: " + mp.URL + " (SMTP " + mp.SMTPAddr + ")", mp.Stop, nil
}
