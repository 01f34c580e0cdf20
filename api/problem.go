package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"
)

// Kind is one of the few ways a request can fail. Each maps once to an HTTP
// status here, and every layer below maps its own errors to one of these.
type Kind int

// The error kinds.
const (
	KindInternal     Kind = iota // a bug or an outage we did not classify
	KindInvalid                  // malformed or semantically wrong input (400/422)
	KindUnauthorized             // no or bad credentials
	KindForbidden                // authenticated, but the role may not do this
	KindNotFound                 // no such resource, or not visible to the caller
	KindConflict                 // the state of the world refuses the change
	KindTooMany                  // throttled
	KindUnavailable              // a dependency is down; try again
)

// Problem is an error with everything the client is told: an RFC 9457
// problem document. Type is a stable identifier clients switch on; Detail
// is written for a person and never holds internal error text or patient
// data. Err is the cause, for the log only.
type Problem struct {
	Kind   Kind
	Status int
	Type   string
	Title  string
	Detail string
	// Extra members of the problem document, e.g. next_slots.
	Extra map[string]any
	Err   error
}

func (p *Problem) Error() string {
	if p.Err != nil {
		return fmt.Sprintf("%s: %v", p.Type, p.Err)
	}
	return p.Type + ": " + p.Detail
}

func (p *Problem) Unwrap() error { return p.Err }

// problemBase prefixes every problem type; types are URIs per RFC 9457 and
// resolve to the README's list of them.
const problemBase = "https://carebook.dev/problems/"

// newProblem builds a Problem whose status follows from its kind, except
// that KindInvalid may be 400 (syntax) or 422 (meaning).
func newProblem(kind Kind, typ, title, detail string) *Problem {
	status := map[Kind]int{
		KindInternal:     http.StatusInternalServerError,
		KindInvalid:      http.StatusUnprocessableEntity,
		KindUnauthorized: http.StatusUnauthorized,
		KindForbidden:    http.StatusForbidden,
		KindNotFound:     http.StatusNotFound,
		KindConflict:     http.StatusConflict,
		KindTooMany:      http.StatusTooManyRequests,
		KindUnavailable:  http.StatusServiceUnavailable,
	}[kind]
	return &Problem{Kind: kind, Status: status, Type: typ, Title: title, Detail: detail}
}

func badRequest(typ, detail string) *Problem {
	p := newProblem(KindInvalid, typ, "Bad request", detail)
	p.Status = http.StatusBadRequest
	return p
}

func invalid(typ, detail string) *Problem {
	return newProblem(KindInvalid, typ, "Unprocessable request", detail)
}

func notFound(what string) *Problem {
	return newProblem(KindNotFound, "not-found", "Not found", "No such "+what+".")
}

func forbidden() *Problem {
	return newProblem(KindForbidden, "forbidden", "Forbidden", "Your role may not do this.")
}

func conflict(typ, detail string) *Problem {
	return newProblem(KindConflict, typ, "Conflict", detail)
}

func unavailable(err error) *Problem {
	p := newProblem(KindUnavailable, "unavailable", "Service unavailable", "A service this request needs is unavailable; try again shortly.")
	p.Err = err
	return p
}

func internal(err error) *Problem {
	p := newProblem(KindInternal, "internal", "Internal error", "Something went wrong on our side. The request ID identifies it to support.")
	p.Err = err
	return p
}

// with adds members to the problem document.
func (p *Problem) with(key string, v any) *Problem {
	if p.Extra == nil {
		p.Extra = map[string]any{}
	}
	p.Extra[key] = v
	return p
}

// handler is a route handler that returns its failure instead of writing it.
type handler func(c *gin.Context) error

// handle adapts a handler to Gin: the one place errors become responses.
// Unclassified errors are logged with their cause and answered as a bare
// 500, so no internal text reaches the client.
func (s *Server) handle(h handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			s.renderError(c, err)
		}
	}
}

func (s *Server) renderError(c *gin.Context, err error) {
	var p *Problem
	if !errors.As(err, &p) {
		p = internal(err)
	}
	if p.Kind == KindInternal && interrupted(p.Err) {
		p = unavailable(p.Err)
	}
	if p.Status >= 500 {
		s.Logger.ErrorContext(c.Request.Context(), "request failed",
			"route", c.FullPath(), "type", p.Type, "error", p.Err)
	} else if p.Err != nil {
		s.Logger.InfoContext(c.Request.Context(), "request refused",
			"route", c.FullPath(), "type", p.Type, "error", p.Err)
	}
	if p.Kind == KindForbidden {
		s.auditDenial(c)
	}
	writeProblem(c, p)
}

func writeProblem(c *gin.Context, p *Problem) {
	body := gin.H{
		"type":   problemBase + p.Type,
		"title":  p.Title,
		"status": p.Status,
		"detail": p.Detail,
	}
	if id := requestID(c); id != "" {
		body["request_id"] = id
	}
	for k, v := range p.Extra {
		body[k] = v
	}
	c.Header("Content-Type", "application/problem+json")
	c.Status(p.Status)
	c.Abort()
	_ = jsonEncode(c.Writer, body)
}

// interrupted reports whether err is a wait that ended before its answer:
// the request's context was cancelled or ran out (a client gone, a server
// shutting down) or a workflow update's wait timed out. Nothing is known
// to have failed, so the caller is told to retry (with the same
// Idempotency-Key) rather than that we have a bug.
func interrupted(err error) bool {
	var wait *client.WorkflowUpdateServiceTimeoutOrCanceledError
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &wait)
}
