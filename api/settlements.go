package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/slots"
	"github.com/carebook/carebook/workflows"
)

type settlementRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// startSettlements handles POST /v1/billing/settlements {from, to}: billing
// staff settle a range of days now (each day its own workflow; a day that
// was settled before is settled again, replacing its report).
func (s *Server) startSettlements(c *gin.Context) error {
	var req settlementRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	from, err1 := parseDay(req.From)
	to, err2 := parseDay(req.To)
	if err1 != nil || err2 != nil || to.Before(from) || from.AddDays(31).Before(to) {
		return invalid("invalid-range", "from and to are dates (YYYY-MM-DD), from not after to.")
	}
	var loc *time.Location
	if err := s.inTenant(c, func(tx *gorm.DB) error {
		var err error
		loc, _, err = tenantZone(tx)
		return err
	}); err != nil {
		return err
	}
	if !to.Before(slots.DateOf(s.Now().In(loc))) {
		return invalid("day-not-over", "Only days that have ended can be settled.")
	}
	p := principal(c)
	runs, err := workflows.StartSettlements(c.Request.Context(), s.Temporal, p.TenantID.String(), from.String(), to.String())
	if from.AddDays(31).Before(to) {
		return invalid("invalid-range", "Settle at most 31 days at once.")
	}
	if err != nil && len(runs) == 0 {
		return unavailable(err)
	}
	out := []gin.H{}
	for _, r := range runs {
		out = append(out, gin.H{"workflow_id": r.GetID(), "workflow_url": s.temporalLink(r.GetID())})
	}
	c.JSON(http.StatusAccepted, gin.H{"started": out})
	return nil
}

type settlementRow struct {
	ID            uuid.UUID
	Day           time.Time
	TimeZone      string
	Provider      string
	Status        string
	Transactions  int
	Payouts       int
	Matched       int
	Discrepancies int
	GeneratedAt   time.Time
	ReportJSON    []byte
	ReportCSV     string
}

func viewSettlement(r settlementRow) gin.H {
	return gin.H{"id": r.ID, "day": r.Day.Format(time.DateOnly), "time_zone": r.TimeZone, "provider": r.Provider,
		"status": r.Status, "transactions": r.Transactions, "payouts": r.Payouts, "matched": r.Matched,
		"discrepancies": r.Discrepancies, "generated_at": r.GeneratedAt.UTC()}
}

// listSettlements handles GET /v1/billing/settlements?from=&to=: the daily
// reports, newest first.
func (s *Server) listSettlements(c *gin.Context) error {
	var rows []settlementRow
	err := s.inTenant(c, func(tx *gorm.DB) error {
		q := tx.Table("settlement_reports").Order("day DESC").Limit(366)
		if v := c.Query("from"); v != "" {
			d, err := parseDay(v)
			if err != nil {
				return badRequest("invalid-parameter", "from must be YYYY-MM-DD.")
			}
			q = q.Where("day >= ?", d.String())
		}
		if v := c.Query("to"); v != "" {
			d, err := parseDay(v)
			if err != nil {
				return badRequest("invalid-parameter", "to must be YYYY-MM-DD.")
			}
			q = q.Where("day <= ?", d.String())
		}
		return q.Select("id, day, time_zone, provider, status, transactions, payouts, matched, discrepancies, generated_at").Scan(&rows).Error
	})
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	if err != nil {
		return internal(err)
	}
	out := make([]gin.H, len(rows))
	for i, r := range rows {
		out[i] = viewSettlement(r)
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

// getSettlement handles GET /v1/billing/settlements/{day}?format=json|csv:
// one day's report with every line, as JSON or as the CSV file.
func (s *Server) getSettlement(c *gin.Context) error {
	day, err := parseDay(c.Param("day"))
	if err != nil {
		return notFound("settlement report")
	}
	var row settlementRow
	err = s.inTenant(c, func(tx *gorm.DB) error {
		return tx.Table("settlement_reports").Where("day = ?", day.String()).Take(&row).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return notFound("settlement report")
	}
	if err != nil {
		return internal(err)
	}
	if c.Query("format") == "csv" {
		c.Header("Content-Disposition", `attachment; filename="settlement-`+day.String()+`.csv"`)
		c.Data(http.StatusOK, "text/csv; charset=utf-8", []byte(row.ReportCSV))
		return nil
	}
	v := viewSettlement(row)
	v["report"] = rawJSON(row.ReportJSON)
	c.JSON(http.StatusOK, v)
	return nil
}

// rawJSON embeds stored JSON in an answer as it is.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}
