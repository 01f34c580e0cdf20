package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/gin-gonic/gin"
)

//go:embed openapi.yaml
var openapiSpec []byte

// newValidator returns middleware that checks each /v1 request against its
// operation in openapi.yaml: path, query and header parameters and the JSON
// body, including additionalProperties: false. Authentication is left to
// our own middleware.
func newValidator() (handler, error) {
	// kin-openapi checks only the formats it is told about; every ID in
	// the API is a UUID, and a malformed one is a client's syntax error.
	openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562))
	doc, err := openapi3.NewLoader().LoadFromData(openapiSpec)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml is invalid: %w", err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	return func(c *gin.Context) error {
		path := ginToOpenAPI(c.FullPath())
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(c.Request.Method) == nil {
			// A route in the router but not in the spec is a bug that the
			// spec test catches; serving it unvalidated would hide it.
			return internal(fmt.Errorf("route %s %s is not in openapi.yaml", c.Request.Method, path))
		}
		if _, err := readBody(c); err != nil && c.Request.ContentLength != 0 {
			return err
		}
		params := map[string]string{}
		for _, p := range c.Params {
			params[p.Key] = p.Value
		}
		in := &openapi3filter.RequestValidationInput{
			Request:    c.Request,
			PathParams: params,
			Route:      &routers.Route{Spec: doc, Path: path, PathItem: item, Method: c.Request.Method, Operation: item.GetOperation(c.Request.Method)},
			Options:    opts,
		}
		if err := openapi3filter.ValidateRequest(c.Request.Context(), in); err != nil {
			return validationProblem(err)
		}
		c.Next()
		return nil
	}, nil
}

// ginToOpenAPI turns /v1/appointments/:id into /v1/appointments/{id}.
func ginToOpenAPI(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// validationProblem says which field is wrong and why, without echoing the
// value (it may be personal data).
func validationProblem(err error) error {
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return badRequest("invalid-request", "The request does not match the API description.")
	}
	var se *openapi3.SchemaError
	errors.As(re.Err, &se)
	if re.Parameter != nil {
		detail := fmt.Sprintf("Parameter %s is invalid.", re.Parameter.Name)
		if se != nil {
			detail = fmt.Sprintf("Parameter %s is invalid: %s", re.Parameter.Name, se.Reason)
		}
		return badRequest("invalid-parameter", detail)
	}
	if se != nil {
		if len(se.JSONPointer()) == 0 {
			return badRequest("invalid-body", "The body is invalid: "+se.Reason)
		}
		field := "/" + strings.Join(se.JSONPointer(), "/")
		return badRequest("invalid-body", fmt.Sprintf("Field %s is invalid: %s", field, se.Reason))
	}
	return badRequest("invalid-body", "The body is not a valid JSON object for this request.")
}
