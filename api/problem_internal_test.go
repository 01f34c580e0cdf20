package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"
)

// A wait cut short (a client gone, a shutdown, an update's wait timing
// out) answers 503 unavailable, to be retried with the same key; any other
// error we did not classify is still a 500, and a refusal keeps its status.
func TestInterruptedWaitsAnswerUnavailable(t *testing.T) {
	s := &Server{Logger: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"cancelled", fmt.Errorf("book: %w", context.Canceled), http.StatusServiceUnavailable},
		{"deadline", context.DeadlineExceeded, http.StatusServiceUnavailable},
		{"update wait", client.NewWorkflowUpdateServiceTimeoutOrCanceledError(errors.New("rpc error: context canceled")), http.StatusServiceUnavailable},
		{"wrapped in a problem", internal(fmt.Errorf("x: %w", context.Canceled)), http.StatusServiceUnavailable},
		{"a bug", errors.New("nil map"), http.StatusInternalServerError},
		{"a refusal", conflict("slot-taken", "taken"), http.StatusConflict},
	} {
		w := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(w)
		c.Request = httptest.NewRequest("POST", "/v1/appointments", nil)
		s.renderError(c, tc.err)
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.want)
		}
	}
}
