// Package workers builds the Temporal workers: which workflows and
// activities run on which task queue.
package workers

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/workflows"
)

// Deps are what the activities need, built once per process.
type Deps struct {
	Appointments *activities.Appointments
	Payments     *activities.Payments
	Settlement   *activities.Settlement
	Labs         *activities.Labs
	Retention    *activities.Retention
	Keys         *activities.Keys
	DSR          *activities.DSR
}

// Registrar is the part of a worker (or of the SDK's test environment) that
// registration needs.
type Registrar interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// RegisterAppointments registers the appointment and payment workflows and
// their activities under the names the workflow contracts use.
func RegisterAppointments(r Registrar, d Deps) {
	r.RegisterWorkflowWithOptions(workflows.Appointment, workflow.RegisterOptions{Name: workflows.AppointmentWorkflowType})
	a := d.Appointments
	for name, fn := range map[string]any{
		workflows.ActivityHoldSlot:    a.HoldSlot,
		workflows.ActivityCancel:      a.CancelAppointment,
		workflows.ActivityReschedule:  a.RescheduleAppointment,
		workflows.ActivityCheckIn:     a.CheckInAppointment,
		workflows.ActivityClose:       a.CloseAppointment,
		workflows.ActivityEnqueueNote: a.EnqueueNotification,
		workflows.ActivityConfirmHeld: a.ConfirmHeldAppointment,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	r.RegisterWorkflowWithOptions(workflows.Payment, workflow.RegisterOptions{Name: workflows.PaymentWorkflowType})
	p := d.Payments
	if p == nil {
		p = &activities.Payments{}
	}
	for name, fn := range map[string]any{
		workflows.ActivityStartPayment:   p.StartPayment,
		workflows.ActivityRecordPayment:  p.RecordPaymentStatus,
		workflows.ActivityCapturePayment: p.CapturePayment,
		workflows.ActivityVoidPayment:    p.VoidPayment,
		workflows.ActivityRefundPayment:  p.RefundPayment,
		workflows.ActivityChargeNoShow:   p.ChargeNoShowFee,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// RegisterLabs registers lab ingestion and its activities under the names
// its contract uses.
func RegisterLabs(r Registrar, d Deps) {
	r.RegisterWorkflowWithOptions(workflows.LabIngestion, workflow.RegisterOptions{Name: workflows.LabWorkflowType})
	l := d.Labs
	if l == nil {
		l = &activities.Labs{}
	}
	for name, fn := range map[string]any{
		workflows.ActivityLabParse:         l.LabParse,
		workflows.ActivityLabMatch:         l.LabMatch,
		workflows.ActivityLabMarkUnmatched: l.LabMarkUnmatched,
		workflows.ActivityLabDismiss:       l.LabDismiss,
		workflows.ActivityLabFile:          l.LabFile,
		workflows.ActivityLabRenderPDF:     l.LabRenderPDF,
		workflows.ActivityLabNotifyDoctor:  l.LabNotifyDoctor,
		workflows.ActivityLabRelease:       l.LabRelease,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// RegisterKeys registers the key rotation and its activities under the
// names its contract uses.
func RegisterKeys(r Registrar, d Deps) {
	r.RegisterWorkflowWithOptions(workflows.KeyRotation, workflow.RegisterOptions{Name: workflows.KeyRotationWorkflowType})
	k := d.Keys
	if k == nil {
		k = &activities.Keys{}
	}
	for name, fn := range map[string]any{
		workflows.ActivityKeyRotationBegin: k.KeyRotationBegin,
		workflows.ActivityKeyReencrypt:     k.KeyReencrypt,
		workflows.ActivityKeyRetire:        k.KeyRetire,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// Register registers every workflow and activity the worker runs.
func Register(r Registrar, d Deps) {
	RegisterAppointments(r, d)
	RegisterSettlement(r, d)
	RegisterLabs(r, d)
	RegisterRetention(r, d)
	RegisterKeys(r, d)
	RegisterDSR(r, d)
}

// New returns the worker, not yet started.
func New(c client.Client, d Deps) worker.Worker {
	w := worker.New(c, workflows.AppointmentTaskQueue, worker.Options{})
	Register(w, d)
	return w
}
