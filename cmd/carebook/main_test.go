package main

import (
	"context"
	"strings"
	"testing"

	"github.com/carebook/carebook/reqid"
)

// A one-shot command gets a fresh request ID, so the workflows it starts
// carry it in their memo; the servers make one per request instead.
func TestOneShotCommandsCarryTheirOwnRequestID(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range []string{"keys", "retention", "audit", "send-hl7", "keys"} {
		id := reqid.From(commandContext(context.Background(), name))
		if !strings.HasPrefix(id, "cli-") || !reqid.Valid(id) {
			t.Errorf("%s: request ID %q, want a valid cli- ID", name, id)
		}
		if seen[id] {
			t.Errorf("%s: request ID %q given twice", name, id)
		}
		seen[id] = true
		if m := reqid.Memo(commandContext(context.Background(), name)); m[reqid.MemoKey] == nil {
			t.Errorf("%s: no request ID in the memo of workflows it starts", name)
		}
	}
	for _, name := range []string{"dev", "api", "worker"} {
		if id := reqid.From(commandContext(context.Background(), name)); id != "" {
			t.Errorf("%s: a server got request ID %q for its whole life", name, id)
		}
	}
}
