// Package mailpit runs Mailpit (MIT), a mail catcher, as a local process on
// loopback, for tests and for `carebook dev`: an SMTP server that keeps
// every message it is sent, a web UI to read them, and an HTTP API that
// tests read delivered mail through.
//
// Both listeners are bound to 127.0.0.1 only, on ports the caller names or
// the kernel picks, and the process dies with its parent. Mailpit's own
// settings from MP_* variables in this process's environment are not passed
// on, so none of them can open another listener (POP3, a relay to a real
// mail server) or move the ones chosen here.
package mailpit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/carebook/carebook/internal/gobin"
	"github.com/carebook/carebook/internal/peer"
)

// Install is the command that builds the binary this package looks for.
const Install = "go install github.com/axllent/mailpit@v1.33.1"

// startTimeout bounds how long Start waits for Mailpit to answer. It starts
// in well under a second; the margin is for a loaded CI machine.
const startTimeout = 30 * time.Second

// portAttempts is how many times Start picks fresh free ports when the
// ones it found were taken before Mailpit could bind them.
const portAttempts = 3

// Binary finds mailpit on PATH or in $GOPATH/bin (where `go install` puts
// it).
func Binary() (string, error) { return gobin.Find("mailpit", Install) }

// Options picks the ports; zero means a free port chosen by the kernel.
type Options struct {
	SMTPPort int
	UIPort   int
}

// Server is a running Mailpit.
type Server struct {
	// SMTPAddr is host:port of its SMTP server (no TLS, no auth).
	SMTPAddr string
	// URL is the base of its web UI and HTTP API, e.g. http://127.0.0.1:40125.
	URL string

	db   string
	proc *peer.Proc
}

// Start runs mailpit keeping its messages in a database file under dir
// (created if missing), and returns once both its SMTP server and its API
// answer. The process is killed if this process dies.
func Start(ctx context.Context, dir string, o Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mailpit: create folder: %w", err)
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mailpit: folder: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	// Only ports Start picked itself are worth picking again.
	attempts := portAttempts
	if o.SMTPPort != 0 && o.UIPort != 0 {
		attempts = 1
	}
	return peer.Retry(attempts, func() (*Server, error) { return start(ctx, bin, root, o) })
}

func start(ctx context.Context, bin, root string, o Options) (*Server, error) {
	smtpPort, uiPort := o.SMTPPort, o.UIPort
	var err error
	if smtpPort == 0 {
		if smtpPort, err = peer.FreePort(); err != nil {
			return nil, err
		}
	}
	if uiPort == 0 {
		if uiPort, err = peer.FreePort(); err != nil {
			return nil, err
		}
	}
	s := &Server{
		SMTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(smtpPort)),
		URL:      "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(uiPort)),
		db:       filepath.Join(root, "mailpit.db"),
	}
	cmd := exec.Command(bin,
		"--smtp", s.SMTPAddr,
		"--listen", strings.TrimPrefix(s.URL, "http://"),
		"--database", s.db,
		// It would otherwise ask GitHub for a newer release at start.
		"--disable-version-check",
		// Reverse DNS of 127.0.0.1 tells nothing and may wait on a
		// resolver.
		"--smtp-disable-rdns",
		"--quiet",
	)
	cmd.Dir = root
	// Settings Mailpit would read from its own variables are not passed
	// on, so the listeners are the ones chosen here and nothing is relayed
	// onward.
	cmd.Env = peer.Env(os.Environ(), "MP_*")
	proc, err := peer.Start(ctx, "mailpit", cmd, s.probe)
	if err != nil {
		return nil, err
	}
	s.proc = proc
	return s, nil
}

// probe answers whether the API reports this start's database file (which
// proves the answer comes from this Mailpit, not from another server that
// took the port) and the SMTP port greets.
func (s *Server) probe(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var info struct{ Database string }
	if err := s.getJSON(pctx, "/api/v1/info", &info); err != nil {
		return err
	}
	if info.Database != s.db {
		return fmt.Errorf("another server answers on %s", s.URL)
	}
	var d net.Dialer
	conn, err := d.DialContext(pctx, "tcp", s.SMTPAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := pctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	greeting, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(greeting, "220") {
		return fmt.Errorf("smtp greeting %q", strings.TrimSpace(greeting))
	}
	return nil
}

// Stop ends the process and waits for it. It is safe to call more than
// once, and on a nil Server.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	s.proc.Stop()
}

// Address is one sender or recipient of a message.
type Address struct {
	Name    string
	Address string
}

// Summary is a message as Mailpit lists it.
type Summary struct {
	ID      string
	From    Address
	To      []Address
	Subject string
	Created time.Time
}

// Message is a message with its decoded text body.
type Message struct {
	Summary
	Text string
	HTML string
}

// Search lists the messages that match query in Mailpit's search syntax
// (e.g. `to:"a@b.test"`), newest first; an empty query lists them all.
func (s *Server) Search(ctx context.Context, query string) ([]Summary, error) {
	var out struct{ Messages []Summary }
	path := "/api/v1/messages?limit=200"
	if query != "" {
		path = "/api/v1/search?limit=200&query=" + url.QueryEscape(query)
	}
	if err := s.getJSON(ctx, path, &out); err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// Message reads one message by its Mailpit ID.
func (s *Server) Message(ctx context.Context, id string) (Message, error) {
	var m Message
	err := s.getJSON(ctx, "/api/v1/message/"+url.PathEscape(id), &m)
	return m, err
}

// DeleteAll empties the mailbox.
func (s *Server) DeleteAll(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.URL+"/api/v1/messages", nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("mailpit: delete messages: %s", res.Status)
	}
	return nil
}

func (s *Server) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("mailpit: GET %s: %s %s", path, res.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(res.Body).Decode(v)
}
