package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/workflows"
)

// rotateKeys handles POST /v1/admin/keys/rotate: an admin starts the
// rotation of the tenant's data key (or joins the one running). The answer
// is the workflow's ID and link; the re-encryption goes on there.
func (s *Server) rotateKeys(c *gin.Context) error {
	p := principal(c)
	settle := keyring.DefaultActiveTTL
	if s.Keys != nil {
		settle = s.Keys.ActiveCacheTTL()
	}
	run, err := workflows.StartKeyRotation(c.Request.Context(), s.Temporal, p.TenantID.String(), settle)
	if err != nil {
		return unavailable(err)
	}
	err = s.inTenant(c, func(tx *gorm.DB) error {
		return s.record(c, tx, models.AuditEvent{TenantID: p.TenantID, ActorUser: &p.UserID, ActorRole: string(p.Role),
			Action: "rotate", ResourceType: "data-key", Reason: run.GetID()})
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, gin.H{"workflow_id": run.GetID(), "workflow_url": s.temporalLink(run.GetID())})
	return nil
}
