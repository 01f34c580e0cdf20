package workers

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/workflows"
)

// RegisterDSR registers the data subject request workflows (export and
// erasure) and their activities under the names their contract uses.
func RegisterDSR(r Registrar, d Deps) {
	r.RegisterWorkflowWithOptions(workflows.DSRExport, workflow.RegisterOptions{Name: workflows.DSRExportWorkflowType})
	r.RegisterWorkflowWithOptions(workflows.DSRErasure, workflow.RegisterOptions{Name: workflows.DSRErasureWorkflowType})
	a := d.DSR
	if a == nil {
		a = &activities.DSR{}
	}
	for name, fn := range map[string]any{
		workflows.ActivityDSRStart:         a.DSRStart,
		workflows.ActivityDSRBuildExport:   a.DSRBuildExport,
		workflows.ActivityDSREraseObjects:  a.DSREraseObjects,
		workflows.ActivityDSREraseSessions: a.DSREraseSessions,
		workflows.ActivityDSREraseRecords:  a.DSREraseRecords,
		workflows.ActivityDSRFinish:        a.DSRFinish,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}
