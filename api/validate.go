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
		op := item.GetOperation(c.Request.Method)
		o := opts
		if op.Extensions[rawBodyExtension] == true {
			// Lab messages are validated by their own parsers, which
			// know HL7 and FHIR; the spec only names their media types.
			o = &openapi3filter.Options{AuthenticationFunc: opts.AuthenticationFunc, ExcludeRequestBody: true}
		}
		in := &openapi3filter.RequestValidationInput{
			Request:    c.Request,
			PathParams: params,
			Route:      &routers.Route{Spec: doc, Path: path, PathItem: item, Method: c.Request.Method, Operation: op},
			Options:    o,
		}
		if err := openapi3filter.ValidateRequest(c.Request.Context(), in); err != nil {
			return validationProblem(err)
		}
		c.Next()
		return nil
	}, nil
}

// rawBodyExtension marks an operation whose body the validator leaves to
// the handler.
const rawBodyExtension = "x-raw-body"

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

// validationProblem says which field is wrong and what it must be, in our
// own words: the validator's messages can echo the value (personal data) or
// its regular expressions.
func validationProblem(err error) error {
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return badRequest("invalid-request", "The request does not match the API description.")
	}
	var se *openapi3.SchemaError
	errors.As(re.Err, &se)
	if re.Parameter != nil {
		return badRequest("invalid-parameter", fmt.Sprintf("Parameter %s %s.", re.Parameter.Name, expectation(se)))
	}
	if se == nil {
		return badRequest("invalid-body", "The body is not a valid JSON object for this request.")
	}
	if len(se.JSONPointer()) == 0 {
		if se.SchemaField == "additionalProperties" {
			return badRequest("invalid-body", "The body has a field this request does not take.")
		}
		return badRequest("invalid-body", "The body "+expectation(se)+".")
	}
	field := strings.Join(se.JSONPointer(), ".")
	return badRequest("invalid-body", fmt.Sprintf("Field %s %s.", field, expectation(se)))
}

// expectation words what the schema wanted, from its own fields only.
func expectation(se *openapi3.SchemaError) string {
	if se == nil || se.Schema == nil {
		return "is invalid"
	}
	sc := se.Schema
	switch se.SchemaField {
	case "required":
		return "is required"
	case "additionalProperties":
		return "has a field this request does not take"
	case "format":
		return "must be a " + sc.Format
	case "enum":
		vals := make([]string, len(sc.Enum))
		for i, v := range sc.Enum {
			vals[i] = fmt.Sprint(v)
		}
		return "must be one of " + strings.Join(vals, ", ")
	case "minLength", "maxLength":
		max := "no limit"
		if sc.MaxLength != nil {
			max = fmt.Sprint(*sc.MaxLength)
		}
		return fmt.Sprintf("must be %d to %s characters long", sc.MinLength, max)
	case "type":
		if sc.Type != nil && len(sc.Type.Slice()) > 0 {
			return "must be of type " + strings.Join(sc.Type.Slice(), " or ")
		}
	}
	return "is invalid"
}
