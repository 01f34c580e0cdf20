package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/carebook/carebook/workers"
	"github.com/carebook/carebook/workflows"
)

// fakeKeys plays the rotation's activities: each column holds pending
// values, and late holds values that a process with a stale cache writes
// under the old version after the first pass, per retire call.
type fakeKeys struct {
	pending map[string]int
	late    []int64
	retires int
	order   []string
}

func (f *fakeKeys) begin(_ context.Context, req workflows.KeyRotationBeginRequest) (workflows.KeyRotationBegun, error) {
	f.order = append(f.order, "begin")
	return workflows.KeyRotationBegun{Version: 2, Old: []uint32{1}, Columns: []string{"a.x", "b.y"}}, nil
}

func (f *fakeKeys) reencrypt(_ context.Context, req workflows.KeyReencryptRequest) (workflows.KeyReencrypted, error) {
	n := min(f.pending[req.Column], req.Limit)
	f.pending[req.Column] -= n
	if n > 0 {
		f.order = append(f.order, "batch "+req.Column)
	}
	return workflows.KeyReencrypted{Done: n}, nil
}

func (f *fakeKeys) retire(_ context.Context, req workflows.KeyRetireRequest) (workflows.KeyRetired, error) {
	f.order = append(f.order, "retire")
	i := f.retires
	f.retires++
	if i < len(f.late) && f.late[i] > 0 {
		f.pending["a.x"] += int(f.late[i])
		return workflows.KeyRetired{Remaining: f.late[i]}, nil
	}
	return workflows.KeyRetired{Retired: []uint32{1}}, nil
}

func runRotation(t *testing.T, f *fakeKeys) (*testsuite.TestWorkflowEnvironment, workflows.KeyRotationResult) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	workers.RegisterKeys(env, workers.Deps{})
	env.OnActivity(workflows.ActivityKeyRotationBegin, mock.Anything, mock.Anything).Return(f.begin)
	env.OnActivity(workflows.ActivityKeyReencrypt, mock.Anything, mock.Anything).Return(f.reencrypt)
	env.OnActivity(workflows.ActivityKeyRetire, mock.Anything, mock.Anything).Return(f.retire)
	env.ExecuteWorkflow(workflows.KeyRotationWorkflowType, workflows.KeyRotationInput{
		TenantID: "6f1c1f43-5a7e-4c38-9a44-2f1d6a1f0a01", Settle: 30 * time.Second, BatchSize: 2})
	var res workflows.KeyRotationResult
	if env.GetWorkflowError() == nil {
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
	}
	return env, res
}

func TestKeyRotationReencryptsInBatchesThenRetires(t *testing.T) {
	tests := []struct {
		name        string
		late        []int64
		wantRetires int
		wantDone    int
		wantErr     bool
	}{
		{name: "no late writes", wantRetires: 1, wantDone: 5},
		{name: "a late write is re-encrypted in a second pass", late: []int64{1}, wantRetires: 2, wantDone: 6},
		{name: "late writes three times stop the rotation", late: []int64{1, 1, 1}, wantRetires: 3, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeKeys{pending: map[string]int{"a.x": 3, "b.y": 2}, late: tt.late}
			env, res := runRotation(t, f)
			if gotErr := env.GetWorkflowError() != nil; gotErr != tt.wantErr {
				t.Fatalf("error = %v, want error %v", env.GetWorkflowError(), tt.wantErr)
			}
			if f.retires != tt.wantRetires {
				t.Errorf("retire called %d times, want %d", f.retires, tt.wantRetires)
			}
			if tt.wantErr {
				return
			}
			if res.Version != 2 || res.Reencrypted != tt.wantDone || len(res.Retired) != 1 || res.Retired[0] != 1 {
				t.Errorf("result %+v, want version 2, %d re-encrypted, [1] retired", res, tt.wantDone)
			}
			// Batches of two: a.x takes two, b.y one; nothing is retired
			// before every batch ran.
			want := []string{"begin", "batch a.x", "batch a.x", "batch b.y", "retire"}
			for i, w := range want {
				if i >= len(f.order) || f.order[i] != w {
					t.Fatalf("steps %v, want them to start %v", f.order, want)
				}
			}
		})
	}
}
