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
}

// Registrar is the part of a worker (or of the SDK's test environment) that
// registration needs.
type Registrar interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// RegisterAppointments registers the appointment workflow and its
// activities under the names the workflow contract uses.
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
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// New returns the appointment worker, not yet started.
func New(c client.Client, d Deps) worker.Worker {
	w := worker.New(c, workflows.AppointmentTaskQueue, worker.Options{})
	RegisterAppointments(w, d)
	return w
}
