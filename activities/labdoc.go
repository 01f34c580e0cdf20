package activities

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/labs/labpdf"
	"github.com/carebook/carebook/models"
)

// ReportDocument is everything the printed report shows, loaded in one
// place so the PDF depends only on what is filed.
type ReportDocument struct {
	TenantName string
	Location   *time.Location // the tenant's business zone
	Patient    models.Patient
	// PatientIdentifier is the patient's first identifier on file (an
	// MRN), as "value (system)"; "" when there is none.
	PatientIdentifier string
	Report            models.LabReport
	Observations      []models.LabObservation
	OrderingDoctor    string // display name, "" when unknown
	PerformingLab     string // the lab partner's name
	// Supersedes is when the version this one corrects was filed; zero
	// for a first version.
	Supersedes time.Time
}

// LoadReportDocument loads a report version with what its page shows.
func LoadReportDocument(tx *gorm.DB, id uuid.UUID) (ReportDocument, error) {
	var d ReportDocument
	if err := tx.Where("id = ?", id).Take(&d.Report).Error; err != nil {
		return d, notFoundOr(err, "load report")
	}
	if err := tx.Where("report_id = ?", id).Order("seq").Find(&d.Observations).Error; err != nil {
		return d, fmt.Errorf("load observations: %w", err)
	}
	if err := tx.Where("id = ?", d.Report.PatientID).Take(&d.Patient).Error; err != nil {
		return d, notFoundOr(err, "load patient")
	}
	var t models.Tenant
	if err := tx.Where("id = ?", d.Report.TenantID).Take(&t).Error; err != nil {
		return d, notFoundOr(err, "load tenant")
	}
	d.TenantName = t.Name
	zone, err := models.TenantZone(tx)
	if err != nil {
		return d, err
	}
	if d.Location, err = time.LoadLocation(zone); err != nil {
		return d, fmt.Errorf("tenant zone: %w", err)
	}
	var ids []models.PatientIdentifier
	if err := tx.Where("patient_id = ?", d.Patient.ID).Order("system, value").Limit(1).Find(&ids).Error; err != nil {
		return d, fmt.Errorf("load identifiers: %w", err)
	}
	if len(ids) == 1 {
		d.PatientIdentifier = ids[0].Value
		if ids[0].Type != "" {
			d.PatientIdentifier = ids[0].Type + " " + d.PatientIdentifier
		}
	}
	if d.Report.OrderingPractitionerID != nil {
		var p models.Practitioner
		if err := tx.Where("id = ?", *d.Report.OrderingPractitionerID).Take(&p).Error; err == nil {
			d.OrderingDoctor = p.DisplayName
		}
	}
	var partner struct{ Name string }
	if err := tx.Table("lab_partners p").Select("p.name").
		Joins("JOIN lab_messages m ON m.tenant_id = p.tenant_id AND m.partner_id = p.id").
		Where("m.id = ?", d.Report.MessageID).Take(&partner).Error; err == nil {
		d.PerformingLab = partner.Name
	}
	var prev models.LabReport
	if err := tx.Where("superseded_by = ?", id).Take(&prev).Error; err == nil {
		d.Supersedes = prev.FiledAt
	}
	return d, nil
}

// RenderReportPDF lays the document out as the printed report. The page
// shows the patient's name, birth date and identifier: it is for the
// patient and their clinicians, fetched through short-lived links only.
func RenderReportPDF(d ReportDocument) ([]byte, error) {
	v := labpdf.View{
		Clinic:         d.TenantName,
		PatientName:    strings.TrimSpace(d.Patient.GivenName + " " + d.Patient.FamilyName),
		PatientIDLabel: "Patient ID",
		PatientID:      d.PatientIdentifier,
		Test:           d.Report.Display,
		TestCode:       d.Report.Code,
		Accession:      d.Report.FillerNumber,
		Status:         pdfStatus(d.Report.Status),
		Supersedes:     d.Supersedes,
		Location:       d.Location,
		OrderingDoctor: d.OrderingDoctor,
		PerformingLab:  d.PerformingLab,
		GeneratedAt:    d.Report.FiledAt,
	}
	if d.Patient.BirthDate != nil {
		v.BirthDate = d.Patient.BirthDate.Format(time.DateOnly)
	}
	if v.Test == "" {
		v.Test = d.Report.Code
	}
	if d.Report.EffectiveAt != nil {
		v.Collected = *d.Report.EffectiveAt
	}
	if d.Report.IssuedAt != nil {
		v.Issued = *d.Report.IssuedAt
	}
	for _, n := range []string{d.Report.Notes, d.Report.Conclusion} {
		if n != "" {
			v.Notes = append(v.Notes, n)
		}
	}
	for _, o := range d.Observations {
		row := labpdf.Row{Test: o.Display, Comparator: o.Comparator, Unit: o.Unit, Range: o.ReferenceRange,
			Flags: o.Flags, Note: o.Notes}
		if row.Test == "" {
			row.Test = o.Code
		}
		row.Value = o.ValueText
		if o.Kind == "coded" && row.Value == "" {
			row.Value = o.CodedDisplay
			if row.Value == "" {
				row.Value = o.CodedCode
			}
		}
		if row.Value == "" && o.ValueNumber != nil {
			row.Value = strconv.FormatFloat(*o.ValueNumber, 'f', -1, 64)
		}
		v.Rows = append(v.Rows, row)
	}
	return labpdf.Render(v)
}

// pdfStatus maps a report status to the page's: a registered report has
// no final values yet, so it prints as preliminary.
func pdfStatus(s string) labpdf.Status {
	if s == "registered" {
		return labpdf.StatusPreliminary
	}
	return labpdf.Status(s)
}
