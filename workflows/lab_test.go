package workflows_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/carebook/carebook/workflows"
)

// fakeLabs stands in for activities.Labs: it records the calls and answers
// from the scenario's fields. The database behaviour is tested against
// Postgres in the api package; these tests pin the workflow's order of
// steps and its waiting.
type fakeLabs struct {
	mu       sync.Mutex
	calls    []string
	parsed   workflows.LabParsed
	match    workflows.LabMatch
	filed    workflows.LabFiled
	fileReq  workflows.LabFileRequest
	released map[string]time.Time
	dismiss  *workflows.LabDismissal
	now      func() time.Time // the test environment's clock
}

func (f *fakeLabs) record(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

func (f *fakeLabs) register(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterWorkflowWithOptions(workflows.LabIngestion, workflow.RegisterOptions{Name: workflows.LabWorkflowType})
	reg := func(name string, fn any) {
		env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	reg(workflows.ActivityLabParse, func(ctx context.Context, in workflows.LabInput) (workflows.LabParsed, error) {
		f.record("parse")
		return f.parsed, nil
	})
	reg(workflows.ActivityLabMatch, func(ctx context.Context, in workflows.LabInput) (workflows.LabMatch, error) {
		f.record("match")
		return f.match, nil
	})
	reg(workflows.ActivityLabMarkUnmatched, func(ctx context.Context, r workflows.LabUnmatchedRequest) error {
		f.record("unmatched:" + r.Outcome)
		return nil
	})
	reg(workflows.ActivityLabDismiss, func(ctx context.Context, d workflows.LabDismissal) error {
		f.record("dismiss")
		f.dismiss = &d
		return nil
	})
	reg(workflows.ActivityLabFile, func(ctx context.Context, r workflows.LabFileRequest) (workflows.LabFiled, error) {
		f.record("file")
		f.fileReq = r
		return f.filed, nil
	})
	reg(workflows.ActivityLabRenderPDF, func(ctx context.Context, r workflows.LabReportRef) error {
		f.record("pdf:" + r.ReportID)
		return nil
	})
	reg(workflows.ActivityLabNotifyDoctor, func(ctx context.Context, r workflows.LabReportRef) error {
		f.record("notify:" + r.ReportID)
		return nil
	})
	reg(workflows.ActivityLabRelease, func(ctx context.Context, r workflows.LabReleaseRequest) (workflows.LabReleased, error) {
		f.record("release:" + r.ReportID + ":" + r.UserID)
		f.mu.Lock()
		defer f.mu.Unlock()
		if at, ok := f.released[r.ReportID]; ok {
			return workflows.LabReleased{ReportID: r.ReportID, ReleasedAt: at, Already: true}, nil
		}
		now := f.now()
		f.released[r.ReportID] = now
		return workflows.LabReleased{ReportID: r.ReportID, ReleasedAt: now}, nil
	})
}

var labIn = workflows.LabInput{TenantID: "t1", MessageID: "m1"}

func newLabEnv(t *testing.T, f *fakeLabs) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	if f.released == nil {
		f.released = map[string]time.Time{}
	}
	f.now = env.Now
	f.register(env)
	return env
}

func labResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.LabState {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var st workflows.LabState
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func equalCalls(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("calls = %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("calls = %q, want %q", got, want)
		}
	}
}

// A message that cannot be trusted ends after parsing: nothing is matched
// or filed.
func TestLabRejectedEndsAfterParse(t *testing.T) {
	f := &fakeLabs{parsed: workflows.LabParsed{Rejected: true, Reason: "OBX-5"}}
	env := newLabEnv(t, f)
	env.ExecuteWorkflow(workflows.LabWorkflowType, labIn)
	st := labResult(t, env)
	if st.Outcome != "rejected" {
		t.Fatalf("outcome = %q", st.Outcome)
	}
	equalCalls(t, f.calls, []string{"parse"})
}

// Under the immediate rule a matched message is filed, rendered, told to
// the doctor and released by the rule in one go.
func TestLabImmediateRelease(t *testing.T) {
	f := &fakeLabs{
		parsed: workflows.LabParsed{Reports: 1},
		match:  workflows.LabMatch{Outcome: workflows.LabMatched, PatientID: "p1"},
		filed:  workflows.LabFiled{Reports: []workflows.FiledReport{{ReportID: "r1", ReleaseRule: "immediate"}}},
	}
	env := newLabEnv(t, f)
	env.ExecuteWorkflow(workflows.LabWorkflowType, labIn)
	st := labResult(t, env)
	equalCalls(t, f.calls, []string{"parse", "match", "file", "pdf:r1", "notify:r1", "release:r1:"})
	if st.Outcome != "filed" || len(st.Released) != 1 || f.fileReq.PatientID != "p1" || f.fileReq.Match != workflows.LabMatched {
		t.Fatalf("state %+v, file request %+v", st, f.fileReq)
	}
}

// Under after_days the rule releases at the due time and not before; a
// doctor's release before then would have ended the wait early.
func TestLabReleaseAfterDays(t *testing.T) {
	due := t0.Add(3 * 24 * time.Hour)
	f := &fakeLabs{
		parsed: workflows.LabParsed{Reports: 1},
		match:  workflows.LabMatch{Outcome: workflows.LabMatched, PatientID: "p1"},
		filed: workflows.LabFiled{Reports: []workflows.FiledReport{
			{ReportID: "r1", ReleaseRule: "after_days", ReleaseDueAt: due},
		}},
	}
	env := newLabEnv(t, f)
	env.ExecuteWorkflow(workflows.LabWorkflowType, labIn)
	labResult(t, env)
	at, ok := f.released["r1"]
	if !ok {
		t.Fatal("never released")
	}
	if at.Before(due) || at.After(due.Add(time.Minute)) {
		t.Fatalf("released at %s, due %s", at, due)
	}
	equalCalls(t, f.calls, []string{"parse", "match", "file", "pdf:r1", "notify:r1", "release:r1:"})
}

// Under after_review the workflow waits for the doctor's release update;
// an update about a report it did not file is refused by the validator.
func TestLabAfterReviewWaitsForTheDoctor(t *testing.T) {
	f := &fakeLabs{
		parsed: workflows.LabParsed{Reports: 2},
		match:  workflows.LabMatch{Outcome: workflows.LabMatched, PatientID: "p1"},
		filed: workflows.LabFiled{Reports: []workflows.FiledReport{
			{ReportID: "r1", ReleaseRule: "after_review"}, {ReportID: "r2", ReleaseRule: "after_review"},
		}},
	}
	env := newLabEnv(t, f)
	var unknownErr error
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(workflows.UpdateLabRelease, "u0", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { unknownErr = err },
			OnAccept: func() { t.Error("release of an unknown report accepted") },
		}, workflows.LabRelease{ReportID: "other", UserID: "doc"})
		env.UpdateWorkflow(workflows.UpdateLabRelease, "u1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Errorf("release rejected: %v", err) },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, workflows.LabRelease{ReportID: "r1", UserID: "doc"})
	}, time.Hour)
	// r2 is replaced by a correction a day later: the workflow stops
	// waiting for it.
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.SignalLabSuperseded, workflows.LabSuperseded{ReportID: "r2"})
	}, 24*time.Hour)
	env.ExecuteWorkflow(workflows.LabWorkflowType, labIn)
	st := labResult(t, env)
	var app *temporal.ApplicationError
	if !asApp(unknownErr, &app) || app.Type() != workflows.ErrTypeLabUnknownReport {
		t.Fatalf("unknown report update: %v", unknownErr)
	}
	equalCalls(t, f.calls, []string{"parse", "match", "file", "pdf:r1", "notify:r1", "pdf:r2", "notify:r2", "release:r1:doc"})
	if len(st.Released) != 1 || st.Released[0] != "r1" {
		t.Fatalf("released %v", st.Released)
	}
}

// An unmatched message waits for staff: assigning a patient files it under
// that patient, marked as assigned by the user.
func TestLabUnmatchedAssigned(t *testing.T) {
	f := &fakeLabs{
		parsed: workflows.LabParsed{Reports: 1},
		match:  workflows.LabMatch{Outcome: workflows.LabAmbiguous},
		filed:  workflows.LabFiled{Reports: []workflows.FiledReport{{ReportID: "r1", ReleaseRule: "immediate"}}},
	}
	env := newLabEnv(t, f)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(workflows.UpdateLabAssign, "a1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("assign rejected: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, workflows.LabAssignment{PatientID: "p9", UserID: "staff1"})
	}, 2*time.Hour)
	env.ExecuteWorkflow(workflows.LabWorkflowType, labIn)
	st := labResult(t, env)
	equalCalls(t, f.calls, []string{"parse", "match", "unmatched:ambiguous", "file", "pdf:r1", "notify:r1", "release:r1:"})
	if f.fileReq.PatientID != "p9" || f.fileReq.Match != workflows.LabAssigned || f.fileReq.UserID != "staff1" || st.Match != workflows.LabAssigned {
		t.Fatalf("file request %+v, state %+v", f.fileReq, st)
	}
}

// Dismissing an unmatched message closes it without filing; a second
// dismissal or an assignment afterwards is refused.
func TestLabUnmatchedDismissed(t *testing.T) {
	f := &fakeLabs{parsed: workflows.LabParsed{Reports: 1}, match: workflows.LabMatch{Outcome: workflows.LabUnmatched}}
	env := newLabEnv(t, f)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(workflows.UpdateLabDismiss, "d1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("dismiss rejected: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, workflows.LabDismissal{UserID: "staff1"})
	}, time.Hour)
	env.ExecuteWorkflow(workflows.LabWorkflowType, labIn)
	st := labResult(t, env)
	equalCalls(t, f.calls, []string{"parse", "match", "unmatched:unmatched", "dismiss"})
	if st.Outcome != "dismissed" || f.dismiss == nil || f.dismiss.TenantID != "t1" || f.dismiss.MessageID != "m1" || f.dismiss.UserID != "staff1" {
		t.Fatalf("state %+v, dismissal %+v", st, f.dismiss)
	}
}

func asApp(err error, target **temporal.ApplicationError) bool {
	return err != nil && errors.As(err, target)
}
