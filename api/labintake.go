package api

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/carebook/carebook/intake"
)

// Lab partners post results over HTTPS with their own API key, scoped to
// one tenant: "Authorization: Bearer <key id>.<secret>". The answer comes
// once the raw message is stored and its workflow started, as for MLLP.

const partnerKey = "labPartner"

// authenticatePartner requires a lab partner's API key.
func (s *Server) authenticatePartner(c *gin.Context) error {
	scheme, key, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return unauthorized("Send the lab partner's API key as 'Authorization: Bearer <key>'.")
	}
	p, err := s.Intake.PartnerByKey(c.Request.Context(), key)
	if errors.Is(err, intake.ErrUnknownPartner) {
		return unauthorized("The API key is not an active lab partner's.")
	}
	if err != nil {
		return unavailable(err)
	}
	c.Set(partnerKey, p)
	if err := s.rateLimit(c, "partner:"+p.ID.String(), s.PartnerRate, "Too many messages from this lab partner; wait and send again."); err != nil {
		return err
	}
	c.Next()
	return nil
}

type labReceipt struct {
	Status       string `json:"status"`
	MessageID    string `json:"message_id"`
	LabMessageID string `json:"lab_message_id"`
	Duplicate    bool   `json:"duplicate"`
	Reason       string `json:"reason,omitempty"`
}

// postHL7 handles POST /v1/labs/hl7: one HL7 v2 ORU^R01 message as the
// body. 202 when taken (a resend included); 422 lab-message-rejected when
// its content cannot be trusted (the message is kept, marked rejected);
// 400 lab-message-refused when it is not taken at all.
func (s *Server) postHL7(c *gin.Context) error {
	if err := mediaType(c, "application/hl7-v2", "x-application/hl7-v2+er7", "text/plain"); err != nil {
		return err
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	p := c.MustGet(partnerKey).(intake.Partner)
	ctx, cancel := context.WithTimeout(c.Request.Context(), intake.IntakeTimeout)
	defer cancel()
	res, _ := s.Intake.HL7(ctx, &p, intake.TransportHTTP, body)
	return s.labAnswer(c, res)
}

// postFHIR handles POST /v1/labs/fhir: a FHIR R4 Bundle, or one
// DiagnosticReport with contained Observations. Answers as postHL7.
func (s *Server) postFHIR(c *gin.Context) error {
	if err := mediaType(c, "application/fhir+json", "application/json"); err != nil {
		return err
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	p := c.MustGet(partnerKey).(intake.Partner)
	ctx, cancel := context.WithTimeout(c.Request.Context(), intake.IntakeTimeout)
	defer cancel()
	return s.labAnswer(c, s.Intake.FHIR(ctx, p, body))
}

func (s *Server) labAnswer(c *gin.Context, res intake.Result) error {
	switch res.Status {
	case intake.Accepted:
		c.JSON(http.StatusAccepted, labReceipt{Status: "accepted", MessageID: res.Message.MessageID,
			LabMessageID: res.Message.ID.String(), Duplicate: res.Duplicate})
		return nil
	case intake.Invalid:
		return invalid("lab-message-rejected", "The message was kept but cannot be filed: "+res.Reason).
			with("reason", res.Reason).with("lab_message_id", res.Message.ID.String())
	case intake.Refused:
		return badRequest("lab-message-refused", "The message was not taken: "+res.Reason).with("reason", res.Reason)
	}
	return unavailable(res.Err)
}

// mediaType refuses a body whose Content-Type is none of want (parameters
// such as charset aside), so an HL7 message posted as JSON, or FHIR as
// text, is not guessed at.
func mediaType(c *gin.Context, want ...string) error {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err == nil && slices.Contains(want, strings.ToLower(mt)) {
		return nil
	}
	p := badRequest("unsupported-media-type", "Send the body as "+strings.Join(want, " or ")+".")
	p.Status, p.Title = http.StatusUnsupportedMediaType, "Unsupported media type"
	return p
}
