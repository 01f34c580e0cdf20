// Package reqid carries a request's ID from the API through the workflows
// and activities it starts, so that one ID names every log line a request
// caused, wherever the work ran, and the workflow it started in the
// Temporal UI.
//
// The ID travels in the request's context, in a Temporal header of each
// workflow and activity started with that context, and in the loggers the
// SDK hands to workflow and activity code. It is random and says nothing
// about who asked or what for.
package reqid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"
)

// HTTPHeader is where a caller sends and gets the ID, LogKey its name on
// log lines, MemoKey its name in a workflow's memo, and header its name
// among a Temporal call's headers.
const (
	HTTPHeader = "X-Request-ID"
	LogKey     = "requestID"
	MemoKey    = "request_id"
	header     = "carebook-request-id"
)

type ctxKey struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the ID ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Memo is the memo a workflow started for ctx's request carries, so that
// the Temporal UI shows which request started it; nil without an ID.
func Memo(ctx context.Context) map[string]any {
	if id := From(ctx); id != "" {
		return map[string]any{MemoKey: id}
	}
	return nil
}

// FromWorkflow returns the ID a workflow was started with, or "".
func FromWorkflow(ctx workflow.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Handler wraps h so that every record logged with a context carrying an
// ID has it as an attribute.
func Handler(h slog.Handler) slog.Handler {
	if _, ok := h.(handler); ok {
		return h
	}
	return handler{h}
}

// Logger returns l with its handler wrapped by Handler (once).
func Logger(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(handler); ok {
		return l
	}
	return slog.New(handler{l.Handler()})
}

type handler struct{ slog.Handler }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r.AddAttrs(slog.String(LogKey, id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler { return handler{h.Handler.WithAttrs(as)} }
func (h handler) WithGroup(name string) slog.Handler    { return handler{h.Handler.WithGroup(name)} }

// Propagator moves the ID between contexts and Temporal headers: from the
// API's request into the workflow it starts, and from a workflow into its
// activities and children.
func Propagator() workflow.ContextPropagator { return propagator{} }

type propagator struct{}

func encode(id string) (*commonpb.Payload, error) {
	return converter.GetDefaultDataConverter().ToPayload(id)
}

func decode(h workflow.HeaderReader) (string, bool) {
	p, ok := h.Get(header)
	if !ok {
		return "", false
	}
	var id string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &id); err != nil || !valid(id) {
		return "", false
	}
	return id, true
}

func (propagator) Inject(ctx context.Context, w workflow.HeaderWriter) error {
	if id := From(ctx); id != "" {
		p, err := encode(id)
		if err != nil {
			return err
		}
		w.Set(header, p)
	}
	return nil
}

func (propagator) Extract(ctx context.Context, r workflow.HeaderReader) (context.Context, error) {
	if id, ok := decode(r); ok {
		return With(ctx, id), nil
	}
	return ctx, nil
}

func (propagator) InjectFromWorkflow(ctx workflow.Context, w workflow.HeaderWriter) error {
	if id := FromWorkflow(ctx); id != "" {
		p, err := encode(id)
		if err != nil {
			return err
		}
		w.Set(header, p)
	}
	return nil
}

func (propagator) ExtractToWorkflow(ctx workflow.Context, r workflow.HeaderReader) (workflow.Context, error) {
	if id, ok := decode(r); ok {
		return workflow.WithValue(ctx, ctxKey{}, id), nil
	}
	return ctx, nil
}

// New makes a fresh ID: 24 hex digits from the system's random source.
func New() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Valid reports whether id may be taken from a caller: 8 to 64 letters,
// digits, '-' or '_', so that it cannot carry text into logs.
func Valid(id string) bool { return valid(id) }

func valid(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Interceptor adds the ID to the loggers that workflow and activity code
// gets from the SDK (and so to the SDK's own lines about them). Set it in
// client.Options.Interceptors: workers made from that client use it too.
func Interceptor() interceptor.ClientInterceptor { return &logInterceptor{} }

type logInterceptor struct {
	interceptor.ClientInterceptorBase
	interceptor.WorkerInterceptorBase
}

func (*logInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityIn{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}}
}

func (*logInterceptor) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &workflowIn{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}}
}

// InterceptClient names the request in the memo of every workflow the
// client starts with a context that carries one (the Temporal UI shows
// memos). Update-With-Start hides its start options from interceptors:
// its callers set Memo themselves.
func (*logInterceptor) InterceptClient(next interceptor.ClientOutboundInterceptor) interceptor.ClientOutboundInterceptor {
	return &clientOut{ClientOutboundInterceptorBase: interceptor.ClientOutboundInterceptorBase{Next: next}}
}

type clientOut struct {
	interceptor.ClientOutboundInterceptorBase
}

func (o *clientOut) ExecuteWorkflow(ctx context.Context, in *interceptor.ClientExecuteWorkflowInput) (client.WorkflowRun, error) {
	if id := From(ctx); id != "" && in.Options != nil {
		in.Options.Memo = withMemo(in.Options.Memo, id)
	}
	return o.Next.ExecuteWorkflow(ctx, in)
}

// withMemo returns memo with the request ID added, copying rather than
// changing the caller's map; a memo that names a request already keeps it.
func withMemo(memo map[string]any, id string) map[string]any {
	if _, ok := memo[MemoKey]; ok {
		return memo
	}
	out := make(map[string]any, len(memo)+1)
	for k, v := range memo {
		out[k] = v
	}
	out[MemoKey] = id
	return out
}

type activityIn struct {
	interceptor.ActivityInboundInterceptorBase
}

func (a *activityIn) Init(out interceptor.ActivityOutboundInterceptor) error {
	return a.Next.Init(&activityOut{ActivityOutboundInterceptorBase: interceptor.ActivityOutboundInterceptorBase{Next: out}})
}

type activityOut struct {
	interceptor.ActivityOutboundInterceptorBase
}

func (a *activityOut) GetLogger(ctx context.Context) log.Logger {
	l := a.Next.GetLogger(ctx)
	if id := From(ctx); id != "" {
		return log.With(l, LogKey, id)
	}
	return l
}

type workflowIn struct {
	interceptor.WorkflowInboundInterceptorBase
}

func (w *workflowIn) Init(out interceptor.WorkflowOutboundInterceptor) error {
	return w.Next.Init(&workflowOut{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: out}})
}

type workflowOut struct {
	interceptor.WorkflowOutboundInterceptorBase
}

// ExecuteChildWorkflow gives a child the memo its parent's request would
// have given it, so that the payment a booking starts names the booking's
// request too. The ID comes from the workflow's header: replay-safe.
func (w *workflowOut) ExecuteChildWorkflow(ctx workflow.Context, childType string, args ...any) workflow.ChildWorkflowFuture {
	if id := FromWorkflow(ctx); id != "" {
		opts := workflow.GetChildWorkflowOptions(ctx)
		opts.Memo = withMemo(opts.Memo, id)
		ctx = workflow.WithChildOptions(ctx, opts)
	}
	return w.Next.ExecuteChildWorkflow(ctx, childType, args...)
}

func (w *workflowOut) GetLogger(ctx workflow.Context) log.Logger {
	l := w.Next.GetLogger(ctx)
	if id := FromWorkflow(ctx); id != "" {
		return log.With(l, LogKey, id)
	}
	return l
}
