// Package devtemporal runs a single-node Temporal server, and optionally its
// web UI, inside the carebook process, so `carebook dev` needs no Docker and
// no separately installed Temporal CLI.
//
// The server keeps all of its state in one SQLite file in Config.DataDir.
// Stopping and starting again on the same folder resumes the workflows that
// were running, which is the point of using a file rather than memory: a
// developer restarting `carebook dev` keeps their half-finished bookings.
//
// This is a development tool. It binds to loopback by default, has no
// authentication, no TLS and a UI with CSRF cookies that work over plain
// HTTP. Never point it at real patient data.
package devtemporal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/temporal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	// dbFileName is the SQLite file inside Config.DataDir.
	dbFileName = "temporal.db"

	// defaultIP keeps the server off the network unless the caller asks
	// otherwise: it has no authentication.
	defaultIP = "127.0.0.1"

	// readyPollInterval is how often Start asks the frontend and the UI
	// whether they answer yet. Start-up takes a few hundred milliseconds, so
	// polling faster would only add load and slower would add latency.
	readyPollInterval = 100 * time.Millisecond

	// readyCallTimeout bounds one readiness probe, so a call stuck on a
	// half-started listener is retried rather than eating all of Start's
	// context. Answers on loopback take milliseconds.
	readyCallTimeout = time.Second
)

// Config says where the development server keeps its state and where it
// listens.
type Config struct {
	// DataDir is the folder holding the server's state in
	// DataDir/temporal.db. It is created if missing. Required.
	DataDir string

	// Namespace is registered if it does not exist yet, with a retention of
	// seven days. Required; "default" is what the SDK uses when unset.
	Namespace string

	// IP is the address the frontend (gRPC, and its HTTP API on a free
	// port) and the UI bind to. Empty means 127.0.0.1. The history,
	// matching and worker services always bind to 127.0.0.1, since only the
	// frontend talks to them.
	IP string

	// FrontendPort is the gRPC port SDK clients dial, e.g. 7233. Zero picks
	// a free port.
	FrontendPort int

	// UIPort is the web UI's HTTP port, e.g. 8233. Zero picks a free port;
	// -1 runs no UI.
	UIPort int

	// Logger receives the server's own log lines at Warn and above. At Info
	// the server reports every shard, queue and service state change, which
	// drowns carebook's logs. Nil discards them.
	Logger *slog.Logger
}

// Server is a running development server. Stop it when done.
type Server struct {
	namespace        string
	frontendHostPort string
	uiURL            string

	temporal temporal.Server
	ui       *uiserver.Server // nil when Config.UIPort is -1
	uiDone   chan struct{}    // closed once the UI's Start returns

	stopping *atomic.Bool // quiets the server's warnings; see serverLogger
	stopOnce sync.Once
	stopErr  error
}

// Start runs the Temporal server in this process and returns once its
// frontend answers gRPC calls for cfg.Namespace, and the UI (if enabled)
// answers HTTP. ctx bounds only that start-up; the server keeps running
// until Stop.
//
// Start returns an error if cfg is invalid, the SQLite file cannot be
// created or opened, or the server does not become ready before ctx ends;
// whatever it had started is stopped again first.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("devtemporal: create data dir: %w", err)
	}

	p, err := pickPorts(cfg)
	if err != nil {
		return nil, err
	}

	dbPath := filepath.Join(cfg.DataDir, dbFileName)
	sqlCfg := sqliteConfig(dbPath)
	if err := prepareDatabase(sqlCfg, dbPath, cfg.Namespace); err != nil {
		return nil, err
	}

	stopping := new(atomic.Bool)
	ts, err := temporal.NewServer(serverOptions(cfg, p, sqlCfg, stopping)...)
	if err != nil {
		return nil, fmt.Errorf("devtemporal: build server: %w", err)
	}
	if err := ts.Start(); err != nil {
		// Start can fail after some services came up; Stop tears those down.
		stopping.Store(true)
		_ = ts.Stop()
		return nil, fmt.Errorf("devtemporal: start server: %w", err)
	}

	s := &Server{
		namespace:        cfg.Namespace,
		frontendHostPort: dialAddr(cfg.IP, p.frontend),
		temporal:         ts,
		stopping:         stopping,
	}
	if err := waitForFrontend(ctx, s.frontendHostPort, s.namespace); err != nil {
		_ = s.Stop()
		return nil, err
	}

	if p.ui != noUI {
		if err := s.startUI(ctx, cfg.IP, p.ui); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// FrontendHostPort is the address SDK clients dial, such as
// "127.0.0.1:7233".
func (s *Server) FrontendHostPort() string { return s.frontendHostPort }

// UIURL is the web UI's base URL, such as "http://127.0.0.1:8233", or ""
// when the UI is disabled.
func (s *Server) UIURL() string { return s.uiURL }

// Namespace is the namespace Start made sure exists.
func (s *Server) Namespace() string { return s.namespace }

// Stop stops the UI, then the server, and waits for both. Calling it again
// returns the first call's result.
//
// The SQLite plugin in server v1.32 pools one connection per file for the
// life of the process and never closes it (upstream says so in its
// conn_pool.go), so the file handle is released only when carebook exits.
// A later Start on the same DataDir in this process reuses that connection,
// which is harmless: all state is read back from the file either way.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopping.Store(true)
		if s.ui != nil {
			s.ui.Stop()
			<-s.uiDone
		}
		if err := s.temporal.Stop(); err != nil {
			s.stopErr = fmt.Errorf("devtemporal: stop server: %w", err)
		}
	})
	return s.stopErr
}

// withDefaults fills in the optional fields and rejects the rest when
// missing, so Start works on a complete Config.
func (c Config) withDefaults() (Config, error) {
	if c.DataDir == "" {
		return c, errors.New("devtemporal: DataDir is required")
	}
	if c.Namespace == "" {
		return c, errors.New("devtemporal: Namespace is required")
	}
	if c.IP == "" {
		c.IP = defaultIP
	}
	if net.ParseIP(c.IP) == nil {
		return c, fmt.Errorf("devtemporal: IP %q is not an IP address", c.IP)
	}
	if c.FrontendPort < 0 || c.FrontendPort > 65535 {
		return c, fmt.Errorf("devtemporal: FrontendPort %d out of range", c.FrontendPort)
	}
	if c.UIPort < noUI || c.UIPort > 65535 {
		return c, fmt.Errorf("devtemporal: UIPort %d out of range", c.UIPort)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// waitForFrontend polls until the frontend describes namespace, which needs
// the frontend listening, persistence open and the namespace cache loaded:
// the same path every SDK call takes.
func waitForFrontend(ctx context.Context, hostPort, namespace string) error {
	conn, err := grpc.NewClient(hostPort, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("devtemporal: dial frontend: %w", err)
	}
	defer conn.Close()
	svc := workflowservice.NewWorkflowServiceClient(conn)

	return poll(ctx, "frontend", func(ctx context.Context) error {
		_, err := svc.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
		return err
	})
}

// startUI runs the web UI in the background and waits until it answers.
func (s *Server) startUI(ctx context.Context, ip string, port int) error {
	// The UI server exits the whole process (echo's Logger.Fatal) when it
	// cannot listen, so make sure it can before handing it the port. Another
	// program can still take the port in between; that race is small on a
	// developer machine. ui-server v2.56 takes no listener of ours, which
	// would close the race.
	if err := checkFree(ip, port); err != nil {
		return fmt.Errorf("devtemporal: UI port: %w", err)
	}

	s.ui = newUIServer(ip, port, s.frontendHostPort, s.namespace)
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		// Start blocks until Stop and only returns nil; failures exit above.
		_ = s.ui.Start()
	}()

	s.uiURL = "http://" + dialAddr(ip, port)
	health := s.uiURL + "/healthz"
	return poll(ctx, "ui", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, health, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// poll calls probe until it succeeds or ctx ends, and then returns the last
// probe error, which says more than "context deadline exceeded".
func poll(ctx context.Context, what string, probe func(context.Context) error) error {
	t := time.NewTicker(readyPollInterval)
	defer t.Stop()
	for {
		callCtx, cancel := context.WithTimeout(ctx, readyCallTimeout)
		err := probe(callCtx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devtemporal: %s not ready: %w (last error: %v)", what, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// dialAddr is the host:port a client on this machine dials to reach a
// listener bound to ip. A wildcard address is reached through loopback.
func dialAddr(ip string, port int) string {
	if net.ParseIP(ip).IsUnspecified() {
		ip = defaultIP
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}
