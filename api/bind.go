package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// bindJSON decodes the body into v strictly: one JSON object, no unknown
// fields, no trailing data. The OpenAPI validator has usually refused bad
// bodies already; this keeps handlers safe when it is bypassed in tests.
func bindJSON(c *gin.Context, v any) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return badRequest("invalid-body", "Field "+typeErr.Field+" has the wrong type.")
		}
		return badRequest("invalid-body", "The body is not a valid JSON object for this request.")
	}
	if dec.More() {
		return badRequest("invalid-body", "The body holds more than one JSON value.")
	}
	return nil
}

// readBody reads the body once and keeps it for later readers (the OpenAPI
// validator reads it first).
func readBody(c *gin.Context) ([]byte, error) {
	if b, ok := c.Get(gin.BodyBytesKey); ok {
		return b.([]byte), nil
	}
	if c.Request.Body == nil {
		return nil, badRequest("invalid-body", "A JSON body is required.")
	}
	b, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			p := badRequest("body-too-large", "The body is too large.")
			p.Status, p.Title = http.StatusRequestEntityTooLarge, "Payload too large"
			return nil, p
		}
		return nil, badRequest("invalid-body", "The body could not be read.")
	}
	c.Set(gin.BodyBytesKey, b)
	c.Request.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

// cleanText refuses text Postgres cannot store or that no person typed:
// invalid UTF-8 and NUL, in the query, the path or a JSON body (where NUL
// arrives escaped as \u0000). Refusing it here keeps it from failing deep
// inside a transaction or a workflow.
func cleanText(c *gin.Context) error {
	bad := func(s string) bool { return !utf8.ValidString(s) || strings.ContainsRune(s, 0) }
	if bad(c.Request.URL.Path) {
		return badRequest("invalid-parameter", "The path holds characters that are not text.")
	}
	for name, values := range c.Request.URL.Query() {
		for _, v := range values {
			if bad(name) || bad(v) {
				return badRequest("invalid-parameter", "A query parameter holds characters that are not text.")
			}
		}
	}
	// Webhook bodies are the provider's, verified by signature and kept
	// byte for byte, and lab messages are kept as sent (HL7 may be in
	// another character set); what they hold is not ours to refuse here.
	asSent := strings.HasPrefix(c.Request.URL.Path, "/v1/webhooks/") || strings.HasPrefix(c.Request.URL.Path, "/v1/labs/")
	if !asSent && c.Request.ContentLength != 0 && c.Request.Body != nil && c.Request.Method != http.MethodGet {
		body, err := readBody(c)
		if err != nil {
			return err
		}
		if !utf8.Valid(body) || strings.Contains(strings.ToLower(string(body)), `\u0000`) || strings.ContainsRune(string(body), 0) {
			return badRequest("invalid-body", "The body holds characters that are not text.")
		}
	}
	c.Next()
	return nil
}

// visibleText reports whether s shows as it reads: no control characters
// (line breaks included) and no invisible format characters (zero-width
// spaces and joiners, direction overrides), which could make a name or a
// reason display as something else to the doctor or reviewer reading it.
func visibleText(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || blank(r) {
			return false
		}
	}
	return true
}

// blank reports whether r draws nothing though Unicode does not call it a
// format character: Hangul fillers, the blank Braille pattern, variation
// selectors and Mongolian and Khmer invisible marks.
func blank(r rune) bool {
	switch {
	case r == 0x115F, r == 0x1160, r == 0x3164, r == 0xFFA0, r == 0x2800, r == 0x17B4, r == 0x17B5:
		return true
	case r >= 0x180B && r <= 0x180F, r >= 0xFE00 && r <= 0xFE0F, r >= 0xE0100 && r <= 0xE01EF:
		return true
	}
	return false
}

// readableName reports whether a name shows as written: visible, and with
// at least one letter (a name of combining marks alone draws nothing).
func readableName(s string) bool {
	if !visibleText(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}
