package reqid_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"

	"github.com/carebook/carebook/reqid"
)

// lockedBuffer collects log output written from the worker's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type seen struct{ Workflow, Activity, Child string }

func echoActivity(ctx context.Context) (string, error) {
	activity.GetLogger(ctx).Info("activity ran")
	return reqid.From(ctx), nil
}

func childWorkflow(ctx workflow.Context) (string, error) { return reqid.FromWorkflow(ctx), nil }

func echoWorkflow(ctx workflow.Context) (seen, error) {
	workflow.GetLogger(ctx).Info("workflow ran")
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var a string
	if err := workflow.ExecuteActivity(ctx, echoActivity).Get(ctx, &a); err != nil {
		return seen{}, err
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID + "-child"})
	var child string
	err := workflow.ExecuteChildWorkflow(cctx, childWorkflow).Get(ctx, &child)
	return seen{Workflow: reqid.FromWorkflow(ctx), Activity: a, Child: child}, err
}

func TestRequestIDReachesWorkflowActivityAndLogs(t *testing.T) {
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	ts := temporaltest.NewServer(temporaltest.WithT(t), temporaltest.WithBaseClientOptions(client.Options{
		Logger:             tlog.NewStructuredLogger(logger),
		ContextPropagators: []workflow.ContextPropagator{reqid.Propagator()},
		Interceptors:       []interceptor.ClientInterceptor{reqid.Interceptor()},
	}))
	ts.NewWorker("reqid", func(r worker.Registry) {
		r.RegisterWorkflow(echoWorkflow)
		r.RegisterWorkflow(childWorkflow)
		r.RegisterActivity(echoActivity)
	})
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const id = "req-0123456789abcdef"
	rctx := reqid.With(ctx, id)
	run, err := c.ExecuteWorkflow(rctx, client.StartWorkflowOptions{ID: "echo-with", TaskQueue: "reqid"}, echoWorkflow)
	if err != nil {
		t.Fatal(err)
	}
	var got seen
	if err := run.Get(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if got.Workflow != id || got.Activity != id || got.Child != id {
		t.Fatalf("workflow saw %q, activity %q, child %q; want %q in all", got.Workflow, got.Activity, got.Child, id)
	}
	// The memo names the request on the workflow the client started and on
	// the child it started, with no caller setting Memo.
	for _, wid := range []string{"echo-with", "echo-with-child"} {
		desc, err := c.DescribeWorkflowExecution(ctx, wid, "")
		if err != nil {
			t.Fatal(err)
		}
		var memo string
		if p, ok := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()[reqid.MemoKey]; !ok {
			t.Fatalf("%s: the memo has no request ID", wid)
		} else if err := converter.GetDefaultDataConverter().FromPayload(p, &memo); err != nil || memo != id {
			t.Fatalf("%s: memo request ID = %q (%v), want %q", wid, memo, err, id)
		}
	}
	for _, msg := range []string{"workflow ran", "activity ran"} {
		if !logLineHas(logs.String(), msg, "requestID="+id) {
			t.Errorf("the %q log line does not name the request:\n%s", msg, logs.String())
		}
	}

	// Without an ID nothing is invented, and nothing breaks.
	run, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "echo-without", TaskQueue: "reqid"}, echoWorkflow)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if got.Workflow != "" || got.Activity != "" || got.Child != "" {
		t.Fatalf("without a request ID, workflow saw %q, activity %q, child %q", got.Workflow, got.Activity, got.Child)
	}
	desc, err := c.DescribeWorkflowExecution(ctx, "echo-without", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()[reqid.MemoKey]; ok {
		t.Fatal("a workflow started without a request names one")
	}
}

func logLineHas(logs, msg, attr string) bool {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "msg=\""+msg+"\"") && strings.Contains(line, attr) {
			return true
		}
	}
	return false
}

func TestHandlerAddsTheIDOnce(t *testing.T) {
	var b bytes.Buffer
	l := reqid.Logger(reqid.Logger(slog.New(slog.NewTextHandler(&b, nil))))
	l.InfoContext(reqid.With(context.Background(), "abcdefgh12"), "hello")
	l.InfoContext(context.Background(), "plain")
	out := b.String()
	if strings.Count(out, "requestID=abcdefgh12") != 1 {
		t.Fatalf("want the ID exactly once on the first line:\n%s", out)
	}
	if strings.Contains(strings.Split(strings.TrimSpace(out), "\n")[1], "requestID") {
		t.Fatalf("a line without a request names one:\n%s", out)
	}
}

func TestValid(t *testing.T) {
	for id, want := range map[string]bool{
		"abcdefgh":                true,
		"abc":                     false,
		"abcdefgh\nforged=1":      false,
		"abcdefgh ijk":            false,
		strings.Repeat("a", 64):   true,
		strings.Repeat("a", 65):   false,
		"4f7c2a9e-1b3d-4e5f-a6b7": true,
	} {
		if reqid.Valid(id) != want {
			t.Errorf("Valid(%q) = %v, want %v", id, !want, want)
		}
	}
}
