package devtemporal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

const (
	testTaskQueue = "devtemporal-test"
	testNamespace = "carebook-dev"

	// proceedSignal releases waitForSignal.
	proceedSignal = "proceed"
)

// greet is the trivial workflow: it proves a worker can poll, run a
// workflow task and complete it.
func greet(ctx workflow.Context, name string) (string, error) {
	return "hello " + name, nil
}

// waitForSignal stays open until proceedSignal arrives and returns its
// payload, so it is running across a server restart.
func waitForSignal(ctx workflow.Context) (string, error) {
	var payload string
	workflow.GetSignalChannel(ctx, proceedSignal).Receive(ctx, &payload)
	return payload, nil
}

// testLogger writes Warn and above to stderr. It does not use t.Log: the
// server's goroutines can still log while Stop winds down, after the test
// has returned.
func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func TestServerKeepsWorkflowsAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	cfg := Config{
		DataDir:   t.TempDir(),
		Namespace: testNamespace,
		IP:        "127.0.0.1",
		UIPort:    -1,
		Logger:    testLogger(),
	}

	// First run: no UI, a fresh database.
	first := startServer(ctx, t, cfg)
	if got := first.UIURL(); got != "" {
		t.Errorf("UIURL() with UIPort -1 = %q, want \"\"", got)
	}
	if got := first.Namespace(); got != testNamespace {
		t.Errorf("Namespace() = %q, want %q", got, testNamespace)
	}
	c, closeClient := dial(t, first)
	stopWorker := startWorker(t, c)

	greeting, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        "greet",
		TaskQueue: testTaskQueue,
	}, greet, "Ayşe")
	if err != nil {
		t.Fatalf("start greet: %v", err)
	}
	var got string
	if err := greeting.Get(ctx, &got); err != nil {
		t.Fatalf("greet result: %v", err)
	}
	if want := "hello Ayşe"; got != want {
		t.Errorf("greet = %q, want %q", got, want)
	}

	waiting, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        "wait-for-signal",
		TaskQueue: testTaskQueue,
	}, waitForSignal)
	if err != nil {
		t.Fatalf("start waitForSignal: %v", err)
	}
	// Let the worker run the first workflow task, so the restart interrupts
	// a workflow that has executed code and is blocked, not one still queued.
	eventually(ctx, t, "waitForSignal's first task completes", func() error {
		desc, err := c.DescribeWorkflowExecution(ctx, waiting.GetID(), waiting.GetRunID())
		if err != nil {
			return err
		}
		if desc.GetPendingWorkflowTask() != nil {
			return fmt.Errorf("workflow task pending")
		}
		return nil
	})

	stopWorker()
	closeClient()
	if err := first.Stop(); err != nil {
		t.Fatalf("first Stop: %v", err)
	}

	// Second run: same folder, with the UI this time.
	cfg.UIPort = 0
	second := startServer(ctx, t, cfg)
	c, _ = dial(t, second)

	desc, err := c.DescribeWorkflowExecution(ctx, waiting.GetID(), waiting.GetRunID())
	if err != nil {
		t.Fatalf("describe waitForSignal after restart: %v", err)
	}
	if got, want := desc.GetWorkflowExecutionInfo().GetStatus(), enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING; got != want {
		t.Fatalf("waitForSignal status after restart = %v, want %v", got, want)
	}

	startWorker(t, c)
	if err := c.SignalWorkflow(ctx, waiting.GetID(), waiting.GetRunID(), proceedSignal, "confirmed"); err != nil {
		t.Fatalf("signal waitForSignal: %v", err)
	}
	if err := c.GetWorkflow(ctx, waiting.GetID(), waiting.GetRunID()).Get(ctx, &got); err != nil {
		t.Fatalf("waitForSignal result: %v", err)
	}
	if want := "confirmed"; got != want {
		t.Errorf("waitForSignal = %q, want %q", got, want)
	}

	checkUI(ctx, t, second)
}

// checkUI asserts that the UI serves its page and that its API reaches the
// frontend.
func checkUI(ctx context.Context, t *testing.T, s *Server) {
	t.Helper()
	if !strings.HasPrefix(s.UIURL(), "http://127.0.0.1:") {
		t.Fatalf("UIURL() = %q, want http://127.0.0.1:<port>", s.UIURL())
	}

	page := httpGet(ctx, t, s.UIURL()+"/")
	if !strings.Contains(strings.ToLower(page), "<html") {
		t.Errorf("GET / returned no HTML page: %.200q", page)
	}

	var list struct {
		Namespaces []struct {
			NamespaceInfo struct {
				Name string `json:"name"`
			} `json:"namespaceInfo"`
		} `json:"namespaces"`
	}
	body := httpGet(ctx, t, s.UIURL()+"/api/v1/namespaces")
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("decode /api/v1/namespaces: %v; body %.200q", err, body)
	}
	var names []string
	for _, ns := range list.Namespaces {
		names = append(names, ns.NamespaceInfo.Name)
	}
	if !slices.Contains(names, testNamespace) {
		t.Errorf("/api/v1/namespaces lists %v, want it to include %q", names, testNamespace)
	}
}

func TestStartRejectsIncompleteConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{
			name: "no data dir",
			cfg:  Config{Namespace: "default"},
			want: "DataDir is required",
		},
		{
			name: "no namespace",
			cfg:  Config{DataDir: dir},
			want: "Namespace is required",
		},
		{
			name: "host name instead of IP",
			cfg:  Config{DataDir: dir, Namespace: "default", IP: "localhost"},
			want: `IP "localhost" is not an IP address`,
		},
		{
			name: "UI port below -1",
			cfg:  Config{DataDir: dir, Namespace: "default", UIPort: -2},
			want: "UIPort -2 out of range",
		},
		{
			name: "frontend port too high",
			cfg:  Config{DataDir: dir, Namespace: "default", FrontendPort: 70000},
			want: "FrontendPort 70000 out of range",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(t.Context(), tt.cfg)
			if err == nil {
				s.Stop()
				t.Fatalf("Start succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func startServer(ctx context.Context, t *testing.T, cfg Config) *Server {
	t.Helper()
	began := time.Now()
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("server ready at %s (UI %q) in %v", s.FrontendHostPort(), s.UIURL(), time.Since(began))
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// dial connects a client to s. It is closed when the test ends, or earlier
// by calling the returned func.
func dial(t *testing.T, s *Server) (client.Client, func()) {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendHostPort(),
		Namespace: s.Namespace(),
		Logger:    sdklog.NewStructuredLogger(testLogger()),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", s.FrontendHostPort(), err)
	}
	closeOnce := sync.OnceFunc(c.Close)
	t.Cleanup(closeOnce)
	return c, closeOnce
}

// startWorker runs a worker for both test workflows. It stops when the test
// ends, or earlier by calling the returned func.
func startWorker(t *testing.T, c client.Client) func() {
	t.Helper()
	w := worker.New(c, testTaskQueue, worker.Options{})
	w.RegisterWorkflow(greet)
	w.RegisterWorkflow(waitForSignal)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	stopOnce := sync.OnceFunc(w.Stop)
	t.Cleanup(stopOnce)
	return stopOnce
}

// eventually retries check every 100ms until it passes or ctx ends.
func eventually(ctx context.Context, t *testing.T, what string, check func() error) {
	t.Helper()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func httpGet(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200; body %.200q", url, resp.StatusCode, body)
	}
	return string(body)
}
