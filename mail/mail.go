// Package mail sends Carebook's account e-mails (address verification,
// password reset) over SMTP.
//
// Messages are plain text in UTF-8 and carry a link and nothing about the
// patient: a mailbox is read on shared screens and kept by providers we
// do not control. The SMTP client refuses header values with line breaks,
// so a value can never add a header or a recipient.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// Message is one e-mail to one recipient.
type Message struct {
	To      string // a bare address, already validated
	Subject string
	Text    string // the plain-text body
}

// Mailer delivers messages. Send returns once the server has accepted the
// message for delivery, or with why it did not.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// SMTP is a Mailer that hands each message to one SMTP server (a relay or
// a provider's submission endpoint). It opens a connection per message:
// account e-mails are rare, and a held connection would only go stale.
type SMTP struct {
	// Addr is host:port of the server.
	Addr string
	// From is the envelope sender and From address.
	From string
	// Username and Password, when set, authenticate with PLAIN, which
	// net/smtp allows only over TLS or to localhost.
	Username, Password string
	// Hello is the name sent in EHLO; empty means "localhost".
	Hello string
	// Now stamps the Date header; nil means time.Now.
	Now func() time.Time
}

// dialTimeout bounds connecting to the server when the caller's context
// has no earlier deadline; a relay that does not answer in this long is
// down, and the caller says so rather than hanging a request.
const dialTimeout = 10 * time.Second

// Send delivers m. It uses STARTTLS whenever the server offers it.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	for _, v := range []string{m.To, m.Subject, s.From} {
		if strings.ContainsAny(v, "\r\n") {
			return errors.New("mail: line break in a header value")
		}
	}
	if m.To == "" || s.From == "" {
		return errors.New("mail: recipient and sender are required")
	}
	body, err := s.compose(m)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("mail: server address %q: %w", s.Addr, err)
	}
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return stageError("connect", err)
	}
	// The whole conversation shares the caller's deadline: net/smtp has
	// no context of its own.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return stageError("greeting", err)
	}
	defer c.Close()
	hello := s.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return stageError("hello", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return stageError("starttls", err)
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return stageError("auth", err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return stageError("sender", err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return stageError("recipient", err)
	}
	w, err := c.Data()
	if err != nil {
		return stageError("data", err)
	}
	if _, err := w.Write(body); err != nil {
		return stageError("write", err)
	}
	if err := w.Close(); err != nil {
		return stageError("message", err)
	}
	if err := c.Quit(); err != nil {
		return stageError("quit", err)
	}
	return nil
}

// Error is a failed delivery. Its text names the stage and the server's
// reply code only: servers echo the address in their replies ("550 <x@y>:
// no such user"), and an address must not reach a log. Unwrap gives the
// full reply to code that needs it.
type Error struct {
	Stage string // connect, hello, recipient, message...
	Code  int    // the SMTP reply code, 0 when there was none
	Err   error
}

func (e *Error) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("mail: %s: smtp %d", e.Stage, e.Code)
	}
	if e.Stage == "connect" {
		// A dial error names only the server's address.
		return "mail: connect: " + e.Err.Error()
	}
	var ne net.Error
	if errors.As(e.Err, &ne) && ne.Timeout() {
		return "mail: " + e.Stage + ": timeout"
	}
	return "mail: " + e.Stage + ": failed"
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the server asked to try again later (4xx).
func (e *Error) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

func stageError(stage string, err error) error {
	e := &Error{Stage: stage, Err: err}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		e.Code = tp.Code
	}
	return e
}

// compose renders m as an RFC 5322 message: UTF-8 text, quoted-printable
// so that every line stays short and 7-bit whatever the language.
func (s *SMTP) compose(m Message) ([]byte, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	_, domain, _ := strings.Cut(s.From, "@")
	if domain == "" {
		domain = "localhost"
	}
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", s.From)
	header("To", m.To)
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", now().Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	// Account mails are sent automatically; this keeps out-of-office
	// replies from coming back.
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	text := strings.ReplaceAll(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n", "\r\n")
	if _, err := qp.Write([]byte(text)); err != nil {
		return nil, fmt.Errorf("mail: encode body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("mail: encode body: %w", err)
	}
	return b.Bytes(), nil
}
