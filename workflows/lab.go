package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// labRetry is for lab steps: database and object-store calls that either
// succeed on a retry or fail for good with a typed error. Nobody waits on
// them interactively, so back off to a minute and keep trying for the day
// labStep allows; an outage longer than that leaves the workflow failed and
// visible in the Temporal UI, with the raw message safe in the object store.
var labRetry = &temporal.RetryPolicy{
	InitialInterval:    500 * time.Millisecond,
	BackoffCoefficient: 2,
	MaximumInterval:    time.Minute,
	NonRetryableErrorTypes: []string{
		ErrTypeNotFound, ErrTypeInvalidState,
		ErrTypeLabNotReviewed, ErrTypeLabSuperseded, ErrTypeLabUnknownReport,
	},
}

func labStep(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy:            labRetry,
	})
}

// releaseStep is for a release a doctor is waiting on: a few quick
// attempts, then a clear failure.
func releaseStep(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        interactiveRetry.InitialInterval,
			BackoffCoefficient:     interactiveRetry.BackoffCoefficient,
			MaximumInterval:        interactiveRetry.MaximumInterval,
			MaximumAttempts:        interactiveRetry.MaximumAttempts,
			NonRetryableErrorTypes: labRetry.NonRetryableErrorTypes,
		},
	})
}

// LabIngestion takes one stored message to filed, reviewed and released
// results. Intake has already stored the raw bytes and the message's row;
// this workflow parses them, matches the patient by identifier within the
// tenant (or waits for staff to choose when there is no single match),
// files the reports, renders each as a PDF, tells the ordering doctor, and
// releases each report by the tenant's rule: at once, when a doctor
// releases it, or when its days have passed. It ends when every report is
// released or replaced by a correction.
func LabIngestion(ctx workflow.Context, in LabInput) (LabState, error) {
	l := &lab{in: in, superseded: map[string]bool{}}
	if err := l.register(ctx); err != nil {
		return l.state, err
	}
	step := labStep(ctx)

	l.state.Stage = "parsing"
	var parsed LabParsed
	if err := workflow.ExecuteActivity(step, ActivityLabParse, in).Get(ctx, &parsed); err != nil {
		return l.state, err
	}
	if parsed.Rejected {
		l.state.Stage, l.state.Outcome = "done", "rejected"
		return l.state, nil
	}

	l.state.Stage = "matching"
	var m LabMatch
	if err := workflow.ExecuteActivity(step, ActivityLabMatch, in).Get(ctx, &m); err != nil {
		return l.state, err
	}
	l.state.Match = m.Outcome
	fileReq := LabFileRequest{TenantID: in.TenantID, MessageID: in.MessageID, PatientID: m.PatientID, Match: m.Outcome}
	if m.Outcome != LabMatched {
		req := LabUnmatchedRequest{TenantID: in.TenantID, MessageID: in.MessageID, Outcome: m.Outcome}
		if err := workflow.ExecuteActivity(step, ActivityLabMarkUnmatched, req).Get(ctx, nil); err != nil {
			return l.state, err
		}
		l.state.Stage = "waiting-for-staff"
		if err := workflow.Await(ctx, func() bool { return l.assigned != nil || l.dismissed != nil }); err != nil {
			return l.state, err
		}
		if l.dismissed != nil {
			if err := workflow.ExecuteActivity(step, ActivityLabDismiss, *l.dismissed).Get(ctx, nil); err != nil {
				return l.state, err
			}
			l.state.Stage, l.state.Outcome = "done", "dismissed"
			return l.state, l.finish(ctx)
		}
		l.state.Match = LabAssigned
		fileReq.PatientID, fileReq.Match, fileReq.UserID = l.assigned.PatientID, LabAssigned, l.assigned.UserID
	}

	l.state.Stage = "filing"
	var filed LabFiled
	if err := workflow.ExecuteActivity(step, ActivityLabFile, fileReq).Get(ctx, &filed); err != nil {
		return l.state, err
	}
	l.state.Reports = filed.Reports
	l.state.Outcome = "filed"
	// A doctor may release as soon as the reports are on file; the PDF
	// follows within moments (the link answers pdf-not-ready until then).
	l.ready = true
	for _, r := range filed.Reports {
		if r.Released {
			l.state.Released = append(l.state.Released, r.ReportID)
		}
		if r.Superseded {
			l.superseded[r.ReportID] = true
		}
		if r.SupersededWorkflowID != "" && r.SupersededWorkflowID != workflow.GetInfo(ctx).WorkflowExecution.ID {
			// The earlier workflow may have ended (its report released);
			// then there is nobody to tell, which is fine.
			_ = workflow.SignalExternalWorkflow(ctx, r.SupersededWorkflowID, "", SignalLabSuperseded,
				LabSuperseded{ReportID: r.SupersededReportID}).Get(ctx, nil)
		}
	}
	for _, r := range filed.Reports {
		ref := LabReportRef{TenantID: in.TenantID, ReportID: r.ReportID}
		if err := workflow.ExecuteActivity(step, ActivityLabRenderPDF, ref).Get(ctx, nil); err != nil {
			return l.state, err
		}
		if l.superseded[r.ReportID] {
			// Filed as history behind a newer version: nobody needs to
			// act on it.
			continue
		}
		if err := workflow.ExecuteActivity(step, ActivityLabNotifyDoctor, ref).Get(ctx, nil); err != nil {
			return l.state, err
		}
	}

	l.state.Stage = "waiting-for-release"
	if err := l.releaseByRule(ctx, filed.Reports); err != nil {
		return l.state, err
	}
	if err := workflow.Await(ctx, l.settled); err != nil {
		return l.state, err
	}
	l.state.Stage = "done"
	return l.state, l.finish(ctx)
}

type lab struct {
	in         LabInput
	state      LabState
	ready      bool // reports are filed; releases may run
	assigned   *LabAssignment
	dismissed  *LabDismissal
	superseded map[string]bool
}

func (l *lab) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryLabState, func() (LabState, error) { return l.state, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateLabAssign,
		func(ctx workflow.Context, a LabAssignment) error { l.assigned = &a; return nil },
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, a LabAssignment) error {
			if l.state.Stage != "waiting-for-staff" || l.assigned != nil || l.dismissed != nil {
				return temporal.NewApplicationError("the message is not waiting for a patient", ErrTypeInvalidState)
			}
			if a.PatientID == "" {
				return errors.New("patient ID is required")
			}
			return nil
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateLabDismiss,
		func(ctx workflow.Context, d LabDismissal) error {
			d.TenantID, d.MessageID = l.in.TenantID, l.in.MessageID
			l.dismissed = &d
			return nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d LabDismissal) error {
			if l.state.Stage != "waiting-for-staff" || l.assigned != nil || l.dismissed != nil {
				return temporal.NewApplicationError("the message is not waiting for a patient", ErrTypeInvalidState)
			}
			return nil
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateLabRelease, l.release,
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r LabRelease) error {
			if !l.ready {
				return temporal.NewApplicationError("the results are not filed yet", ErrTypeInvalidState)
			}
			if !l.owns(r.ReportID) {
				return temporal.NewApplicationError("this message did not file that report", ErrTypeLabUnknownReport)
			}
			if l.superseded[r.ReportID] {
				return temporal.NewApplicationError("a correction replaced this report", ErrTypeLabSuperseded)
			}
			return nil
		}}); err != nil {
		return err
	}
	ch := workflow.GetSignalChannel(ctx, SignalLabSuperseded)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var s LabSuperseded
			ch.Receive(ctx, &s)
			l.superseded[s.ReportID] = true
		}
	})
	return nil
}

func (l *lab) owns(reportID string) bool {
	return slices.ContainsFunc(l.state.Reports, func(r FiledReport) bool { return r.ReportID == reportID })
}

// release runs one release; the activity is idempotent and checks the
// rule, so a doctor's release and the rule's timer may race safely.
func (l *lab) release(ctx workflow.Context, r LabRelease) (LabReleased, error) {
	var out LabReleased
	req := LabReleaseRequest{TenantID: l.in.TenantID, ReportID: r.ReportID, UserID: r.UserID}
	if err := workflow.ExecuteActivity(releaseStep(ctx), ActivityLabRelease, req).Get(ctx, &out); err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.Type() == ErrTypeLabSuperseded {
			l.superseded[r.ReportID] = true
		}
		return out, err
	}
	if !slices.Contains(l.state.Released, r.ReportID) {
		l.state.Released = append(l.state.Released, r.ReportID)
	}
	return out, nil
}

// releaseByRule releases the reports the rule releases now, and starts a
// timer for those it releases later. Under after_review it does nothing:
// the doctor's release update does it.
func (l *lab) releaseByRule(ctx workflow.Context, reports []FiledReport) error {
	for _, r := range reports {
		if r.Released || l.superseded[r.ReportID] {
			continue
		}
		switch r.ReleaseRule {
		case "immediate":
			if _, err := l.release(ctx, LabRelease{ReportID: r.ReportID}); err != nil && !l.superseded[r.ReportID] {
				return err
			}
		case "after_days":
			r := r
			workflow.Go(ctx, func(ctx workflow.Context) {
				wait := r.ReleaseDueAt.Sub(workflow.Now(ctx))
				if wait > 0 {
					if err := workflow.Sleep(ctx, wait); err != nil {
						return
					}
				}
				if l.done(r.ReportID) {
					return
				}
				if _, err := l.release(ctx, LabRelease{ReportID: r.ReportID}); err != nil && !l.superseded[r.ReportID] {
					workflow.GetLogger(ctx).Error("release by rule failed", "report", r.ReportID, "error", err)
				}
			})
		case "after_review":
		default:
			return fmt.Errorf("unknown release rule %q", r.ReleaseRule)
		}
	}
	return nil
}

func (l *lab) done(reportID string) bool {
	return l.superseded[reportID] || slices.Contains(l.state.Released, reportID)
}

// settled reports whether every filed report is released or replaced.
func (l *lab) settled() bool {
	for _, r := range l.state.Reports {
		if !l.done(r.ReportID) {
			return false
		}
	}
	return true
}

func (l *lab) finish(ctx workflow.Context) error {
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}
