package mail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/carebook/carebook/mail"
	"github.com/carebook/carebook/mail/mailpit"
)

// TestSMTPDeliversToMailpit sends through the real SMTP client to a local
// Mailpit and reads the message back through Mailpit's API: the Turkish
// subject and body arrive intact, and a header value with a line break is
// refused before anything is sent.
func TestSMTPDeliversToMailpit(t *testing.T) {
	ctx := context.Background()
	mp, err := mailpit.Start(ctx, t.TempDir(), mailpit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mp.Stop)
	m := &mail.SMTP{Addr: mp.SMTPAddr, From: "no-reply@carebook.test"}

	long := strings.Repeat("uzun satır ", 20)
	want := mail.Message{To: "ayse@example.test", Subject: "Şifrenizi sıfırlayın", Text: "Merhaba,\nbağlantı: https://x.test/#token=abc\n" + long}
	if err := m.Send(ctx, want); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  mail.Message
	}{
		{"recipient with a line break", mail.Message{To: "a@example.test\r\nBcc: b@example.test", Subject: "x", Text: "x"}},
		{"subject with a line break", mail.Message{To: "a@example.test", Subject: "x\nBcc: b@example.test", Text: "x"}},
		{"no recipient", mail.Message{Subject: "x", Text: "x"}},
	}
	for _, tt := range tests {
		if err := m.Send(ctx, tt.msg); err == nil {
			t.Errorf("%s: sent", tt.name)
		}
	}

	got := waitFor(t, mp, `to:"ayse@example.test"`)
	if got.Subject != want.Subject {
		t.Errorf("subject %q, want %q", got.Subject, want.Subject)
	}
	if got.From.Address != "no-reply@carebook.test" {
		t.Errorf("from %q", got.From.Address)
	}
	if text := strings.ReplaceAll(got.Text, "\r\n", "\n"); strings.TrimRight(text, "\n") != want.Text {
		t.Errorf("text %q, want %q", text, want.Text)
	}
	all, err := mp.Search(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Errorf("%d messages in the mailbox, want 1", len(all))
	}
}

// waitFor polls Mailpit until one message matches query.
func waitFor(t *testing.T, mp *mailpit.Server, query string) mailpit.Message {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := mp.Search(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) > 0 {
			m, err := mp.Message(ctx, list[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message matches %s", query)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
