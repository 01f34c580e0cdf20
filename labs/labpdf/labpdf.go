// Package labpdf renders a filed lab report as the PDF a patient downloads.
//
// The caller builds a View from the stored report, choosing what the
// patient sees, and Render lays it out on A4 pages: the clinic, the
// patient, the test, its status (with a banner for corrected, amended and
// preliminary reports), a table of results that flows onto further pages,
// the lab's comments, and a footer with page numbers and the time the PDF
// was generated.
//
// The output is a pure function of the View: the same View gives the same
// bytes, because the lab workflow stores the PDF under its SHA-256 and a
// retried activity must write the same object. That holds for one build of
// the binary; a change of Go, fpdf or font version may change the bytes.
//
// Errors never quote the View: they name what was wrong, not the value.
package labpdf

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
)

// Status is the report status printed on the PDF. The values are FHIR's
// codes, the same strings as labs.Status, so a caller can convert one
// directly.
type Status string

// The statuses a patient's PDF can have. Reports in any other state
// (registered, cancelled, entered in error) are not shown to patients.
const (
	StatusPreliminary Status = "preliminary"
	StatusFinal       Status = "final"
	StatusCorrected   Status = "corrected"
	StatusAmended     Status = "amended"
	StatusCancelled   Status = "cancelled"
	// StatusEnteredInError is a report the lab withdrew.
	StatusEnteredInError Status = "entered-in-error"
)

// View is what the PDF shows, already chosen and worded by the caller.
// Text fields are shown as given (any Unicode; characters the font lacks
// print as "?"); an empty detail prints as "—", an empty table cell
// stays blank. Times are instants,
// shown in Location with its zone abbreviation, and the zone's IANA name
// is printed once in the details.
type View struct {
	// Clinic is the tenant's or clinic's name, at the top of the first
	// page and of every later page.
	Clinic string

	// PatientName is the patient's display name.
	PatientName string
	// BirthDate is the birth date as it should be printed, such as
	// "1984-02-29".
	BirthDate string
	// PatientIDLabel names the identifier, such as "MRN"; "Patient ID"
	// when empty.
	PatientIDLabel string
	// PatientID is the patient's identifier at the clinic.
	PatientID string

	// Test is the name of the ordered test or panel: the report's title.
	Test string
	// TestCode is the code shown after the name, such as
	// "LOINC 58410-2"; optional.
	TestCode string
	// Accession is the lab's number for the report (the filler order
	// number), for patients and staff to quote; optional.
	Accession string

	// Status must be one of the Status constants.
	Status Status
	// Supersedes is when the report this one replaces was issued.
	// Required for StatusCorrected and StatusAmended, whose banner reads
	// "CORRECTED — supersedes the report of <Supersedes>"; ignored
	// otherwise.
	Supersedes time.Time

	// Collected is when the specimen was collected; Issued when the lab
	// issued the results; Released when the clinic released them to the
	// patient. A zero time prints as "—".
	Collected, Issued, Released time.Time

	// Location is the clinic's time zone; every time on the page is shown
	// in it. Required, and it may not be time.Local, whose meaning
	// depends on the machine and would make the output differ between
	// workers.
	Location *time.Location

	// OrderingDoctor is the ordering doctor's display name.
	OrderingDoctor string
	// PerformingLab is the laboratory that performed the tests.
	PerformingLab string

	// Rows are the results in the order to print them.
	Rows []Row
	// Notes are the report's comments and conclusion, each printed as its
	// own paragraph; line breaks within a note are kept.
	Notes []string

	// GeneratedAt is printed in the footer and written as the PDF's
	// creation date. The caller fixes it (for a workflow, from the
	// workflow's clock or the report's release time), never from the
	// clock at render time, so that a retry renders the same bytes.
	// Required.
	GeneratedAt time.Time
}

// Row is one result line.
type Row struct {
	// Test is the name of what was measured.
	Test string
	// Comparator qualifies Value: "<", "<=", ">" or ">=" (printed as <,
	// ≤, > and ≥); empty for an exact value.
	Comparator string
	// Value is the result as it should be printed: a number already
	// formatted, or text such as "Positive". Line breaks are kept.
	Value string
	// Unit is the unit of Value, such as "mg/dL" or "10^3/µL".
	Unit string
	// Range is the reference range as the lab wrote it. Line breaks are
	// kept.
	Range string
	// Flags are the interpretation codes as sent (HL7 table 0078: H, L,
	// HH, LL, A, AA, N...). They print as words (see FlagWord) and mark
	// the row as FlagSeverity says.
	Flags []string
	// Note is a comment on this result, printed under the row; optional.
	Note string
}

// ErrInvalid is returned, wrapped with the reason, for a View that cannot
// be rendered. Rendering it again will fail again.
var ErrInvalid = errors.New("labpdf: invalid view")

// ErrRender is returned when the PDF library fails. The library's own
// message is not passed on because some of its messages quote the text
// being set, which here is patient data.
var ErrRender = errors.New("labpdf: pdf generation failed")

// Render lays out v as a PDF and returns its bytes. The same View always
// gives the same bytes. It returns an error wrapping ErrInvalid when v
// fails the rules documented on View, and ErrRender when the PDF library
// fails; neither error's text holds anything from v.
func Render(v View) (out []byte, err error) {
	if err := v.validate(); err != nil {
		return nil, err
	}
	defer func() {
		// A panic inside the PDF library must not take the worker down,
		// and its value may quote the text being set, so it is dropped.
		if recover() != nil {
			out, err = nil, ErrRender
		}
	}()

	// The first pass only counts pages, so the footer can say "Page 1
	// of 3". fpdf's own page-count alias would also replace that alias
	// if it appeared in patient text; two passes cannot go wrong that
	// way and cost little.
	count, err := layout(v, 0)
	if err != nil {
		return nil, err
	}
	pages := count.PageCount()
	doc, err := layout(v, pages)
	if err != nil {
		return nil, err
	}
	if doc.PageCount() != pages {
		return nil, ErrRender
	}
	var buf bytes.Buffer
	if doc.Output(&buf) != nil {
		return nil, ErrRender
	}
	return buf.Bytes(), nil
}

func (v View) validate() error {
	switch {
	case v.Location == nil:
		return fmt.Errorf("%w: no location", ErrInvalid)
	case v.Location == time.Local:
		return fmt.Errorf("%w: location is time.Local; use the clinic's named zone", ErrInvalid)
	case v.GeneratedAt.IsZero():
		return fmt.Errorf("%w: no generated time", ErrInvalid)
	}
	switch v.Status {
	case StatusPreliminary, StatusFinal:
	case StatusCorrected, StatusAmended, StatusCancelled, StatusEnteredInError:
	default:
		// The status is a code, not patient data, but an unknown value
		// could be anything, so it is not quoted.
		return fmt.Errorf("%w: unsupported status", ErrInvalid)
	}
	return nil
}

// Page geometry, in millimetres on A4 portrait.
const (
	pageW      = 210.0
	pageH      = 297.0
	margin     = 15.0
	contentW   = pageW - 2*margin
	bodyBottom = pageH - 20 // the footer sits below this
	footerY    = pageH - 14
	runningTop = 10.0 // the running header on pages after the first
	bodyTop    = 22.0 // where the body starts after the running header
)

// Type sizes in points, and the line heights (mm) that go with them.
const (
	clinicSize  = 15.0
	titleSize   = 12.0
	bannerSize  = 10.5
	bodySize    = 9.0
	labelSize   = 8.0
	noteSize    = 8.0
	footerSize  = 7.5
	lineH       = 4.4
	noteLineH   = 3.8
	rowPad      = 1.0
	headerRowH  = 6.0
	labelColW   = 30.0
	detailColW  = contentW / 2
	footerLineH = 4.0
)

// column is one column of the results table.
type column struct {
	title string
	w     float64
}

// columns are the results table's columns; their widths add up to
// contentW. The first is the marker column, which carries the row's
// severity as "!" or "!!" so it survives black-and-white printing.
var columns = [...]column{
	{"", 7},
	{"Test", 55},
	{"Result", 32},
	{"Unit", 22},
	{"Reference range", 34},
	{"Flag", 30},
}

// Colours as RGB.
var (
	black    = [3]int{0, 0, 0}
	grey     = [3]int{90, 90, 90}
	ruleGrey = [3]int{190, 190, 190}
	critical = [3]int{150, 20, 20}
)

// renderer holds one pass of the layout.
type renderer struct {
	pdf   *fpdf.Fpdf
	v     View
	pages int     // total pages, or 0 while counting
	y     float64 // where the next line goes
}

// layout draws v onto a new document. pages is the total page count to
// print in the footer, or 0 on the counting pass.
func layout(v View, pages int) (*fpdf.Fpdf, error) {
	pdf := fpdf.New("P", "mm", "A4", "")
	// Everything that would otherwise come from the clock or from map
	// order is fixed, so the bytes depend on v alone.
	created := v.GeneratedAt.UTC()
	pdf.SetCreationDate(created)
	pdf.SetModificationDate(created)
	pdf.SetCatalogSort(true)
	pdf.SetCompression(true)
	// The document title is generic: a file's properties are shown in
	// places (tab titles, recent-file lists) where a test name would be
	// more than the patient chose to show.
	pdf.SetTitle("Laboratory report", true)
	pdf.SetCreator("Carebook", true)
	pdf.SetProducer("Carebook", true)
	pdf.SetMargins(margin, margin, margin)
	// Page breaks are placed by the renderer, which repeats the table
	// header and never splits a row that fits on one page.
	pdf.SetAutoPageBreak(false, 0)
	pdf.AddUTF8FontFromBytes(fontFamily, "", goregular.TTF)
	pdf.AddUTF8FontFromBytes(fontFamily, "B", gobold.TTF)

	r := &renderer{pdf: pdf, v: v, pages: pages}
	pdf.SetFooterFunc(r.footer)
	r.firstPage()
	r.results()
	r.notes()
	if pdf.Err() {
		return nil, ErrRender
	}
	return pdf, nil
}

func (r *renderer) style(style string, size float64, rgb [3]int) {
	r.pdf.SetFont(fontFamily, style, size)
	r.pdf.SetTextColor(rgb[0], rgb[1], rgb[2])
}

// wrap breaks s into lines no wider than w in the current font; it always
// returns at least one line.
func (r *renderer) wrap(s string, w float64) []string {
	if s == "" {
		return []string{""}
	}
	lines := r.pdf.SplitText(s, w)
	if len(lines) == 0 {
		return []string{""}
	}
	return lines
}

// text draws one line of text in a cell at (x, y).
func (r *renderer) text(x, y, w, h float64, s, align string) {
	r.pdf.SetXY(x, y)
	r.pdf.CellFormat(w, h, s, "", 0, align, false, 0, "")
}

// rule draws a horizontal line across the content width at y.
func (r *renderer) rule(y, width float64, rgb [3]int) {
	r.pdf.SetDrawColor(rgb[0], rgb[1], rgb[2])
	r.pdf.SetLineWidth(width)
	r.pdf.Line(margin, y, margin+contentW, y)
}

// when formats t in the clinic's zone, with the zone's abbreviation (or
// its UTC offset where the zone has none, such as "+03" for Istanbul).
func (r *renderer) when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(r.v.Location).Format("2006-01-02 15:04 MST")
}

// orDash is s cleaned for one line, or "—" when blank.
func orDash(s string) string {
	s = strings.TrimSpace(clean(s, false))
	if s == "" {
		return "—"
	}
	return s
}

// title is the report's title line: the test name and its code.
func (v View) title() string {
	name, code := strings.TrimSpace(v.Test), strings.TrimSpace(v.TestCode)
	switch {
	case name == "" && code == "":
		return "Laboratory results"
	case code == "":
		return name
	case name == "":
		return code
	}
	return name + " (" + code + ")"
}

// statusWord is the status as printed in the details.
func (v View) statusWord() string {
	switch v.Status {
	case StatusPreliminary:
		return "Preliminary"
	case StatusCorrected:
		return "Corrected"
	case StatusAmended:
		return "Amended"
	}
	return "Final"
}

// banner is the boxed notice under the title, or "" for a final report.
func (r *renderer) banner() string {
	switch r.v.Status {
	case StatusCorrected, StatusAmended:
		word := "CORRECTED"
		if r.v.Status == StatusAmended {
			word = "AMENDED"
		}
		if r.v.Supersedes.IsZero() {
			// The lab sent only the correction: the report it replaces
			// was never on file here.
			return word + " — replaces an earlier report by the lab"
		}
		return word + " — supersedes the report of " + r.when(r.v.Supersedes)
	case StatusCancelled:
		return "CANCELLED — the lab cancelled this test; there is no result"
	case StatusEnteredInError:
		return "ENTERED IN ERROR — the lab withdrew this report; disregard it"
	case StatusPreliminary:
		return "PRELIMINARY — results may change before the final report"
	}
	return ""
}

// firstPage draws the first page's header: clinic, title, banner and the
// patient and report details.
func (r *renderer) firstPage() {
	pdf := r.pdf
	pdf.AddPage()
	r.y = margin

	r.style("B", clinicSize, black)
	for _, l := range r.wrap(orDash(r.v.Clinic), contentW) {
		r.text(margin, r.y, contentW, 7, l, "L")
		r.y += 7
	}
	r.style("", bodySize, grey)
	r.text(margin, r.y, contentW, 5, "Laboratory report", "L")
	r.y += 6
	r.rule(r.y, 0.4, black)
	r.y += 3

	r.style("B", titleSize, black)
	for _, l := range r.wrap(clean(r.v.title(), false), contentW) {
		r.text(margin, r.y, contentW, 6, l, "L")
		r.y += 6
	}
	r.y += 1

	if b := r.banner(); b != "" {
		// Boxed with a heavy border and set in bold capitals, so the
		// notice holds in black-and-white print as well as on screen.
		r.style("B", bannerSize, black)
		lines := r.wrap(b, contentW-4)
		h := float64(len(lines))*5 + 3
		pdf.SetFillColor(255, 243, 205)
		pdf.SetDrawColor(0, 0, 0)
		pdf.SetLineWidth(0.6)
		pdf.Rect(margin, r.y, contentW, h, "FD")
		y := r.y + 1.5
		for _, l := range lines {
			r.text(margin+2, y, contentW-4, 5, l, "L")
			y += 5
		}
		r.y += h + 3
	}

	idLabel := strings.TrimSpace(r.v.PatientIDLabel)
	if idLabel == "" {
		idLabel = "Patient ID"
	}
	left := [][2]string{
		{"Patient", orDash(r.v.PatientName)},
		{"Date of birth", orDash(r.v.BirthDate)},
		{clean(idLabel, false), orDash(r.v.PatientID)},
		{"Status", r.v.statusWord()},
	}
	if strings.TrimSpace(r.v.Accession) != "" {
		left = append(left, [2]string{"Accession", orDash(r.v.Accession)})
	}
	right := [][2]string{
		{"Ordering doctor", orDash(r.v.OrderingDoctor)},
		{"Performing lab", orDash(r.v.PerformingLab)},
		{"Collected", r.when(r.v.Collected)},
		{"Issued", r.when(r.v.Issued)},
		{"Released", r.when(r.v.Released)},
		{"Time zone", orDash(r.v.Location.String())},
	}
	top := r.y
	yl := r.details(margin, top, left)
	yr := r.details(margin+detailColW, top, right)
	r.y = max(yl, yr) + 3
}

// details draws label–value pairs in a column starting at (x, y) and
// returns the y below them.
func (r *renderer) details(x, y float64, pairs [][2]string) float64 {
	valueW := detailColW - labelColW - 2
	for _, p := range pairs {
		r.style("", labelSize, grey)
		r.text(x, y, labelColW, lineH, p[0], "L")
		r.style("", bodySize, black)
		for _, l := range r.wrap(p[1], valueW) {
			r.text(x+labelColW, y, valueW, lineH, l, "L")
			y += lineH
		}
	}
	return y
}

// newPage starts a page after the first, with the running header that
// names the patient and the test so a loose page can be placed.
func (r *renderer) newPage() {
	r.pdf.AddPage()
	ident := orDash(r.v.PatientName)
	if id := strings.TrimSpace(clean(r.v.PatientID, false)); id != "" {
		ident += " · " + id
	}
	ident += " · " + clean(r.v.title(), false)
	r.style("", labelSize, grey)
	half := contentW / 2
	r.text(margin, runningTop, half+20, 4, r.fit(ident, half+20), "L")
	r.text(margin+half+20, runningTop, half-20, 4, r.fit(orDash(r.v.Clinic), half-20), "R")
	r.rule(runningTop+5, 0.2, ruleGrey)
	r.y = bodyTop
}

// fit shortens s with an ellipsis so it fits one cell of width w.
func (r *renderer) fit(s string, w float64) string {
	avail := w - 2*r.pdf.GetCellMargin()
	if r.pdf.GetStringWidth(s) <= avail {
		return s
	}
	rs := []rune(s)
	for len(rs) > 0 && r.pdf.GetStringWidth(string(rs)+"…") > avail {
		rs = rs[:len(rs)-1]
	}
	return strings.TrimRight(string(rs), " ") + "…"
}

// tableHeader draws the results table's column titles.
func (r *renderer) tableHeader() {
	r.style("B", labelSize, black)
	r.pdf.SetFillColor(232, 232, 232)
	r.pdf.Rect(margin, r.y, contentW, headerRowH, "F")
	x := margin
	for _, c := range columns {
		r.text(x, r.y+0.5, c.w, headerRowH-1, c.title, "L")
		x += c.w
	}
	r.y += headerRowH
}

// results draws the table of rows and, when any row is marked, the key to
// the markers.
func (r *renderer) results() {
	if len(r.v.Rows) == 0 {
		r.style("", bodySize, black)
		r.text(margin, r.y, contentW, lineH, "This report has no results.", "L")
		r.y += lineH
		return
	}
	r.tableHeader()
	marked := false
	for _, row := range r.v.Rows {
		if r.row(row) != Normal {
			marked = true
		}
	}
	if marked {
		r.y += 2
		r.ensure(noteLineH)
		r.style("", noteSize, grey)
		r.text(margin, r.y, contentW, noteLineH,
			"! abnormal result   !! critical result   (marked rows are also set in bold)", "L")
		r.y += noteLineH
	}
}

// ensure starts a new page unless h more millimetres fit on this one.
func (r *renderer) ensure(h float64) {
	if r.y+h > bodyBottom {
		r.newPage()
	}
}

// rowValue is the result with its comparator.
func rowValue(row Row) string {
	v := clean(strings.TrimSpace(row.Value), true)
	c := strings.TrimSpace(row.Comparator)
	switch c {
	case "<=":
		c = "≤"
	case ">=":
		c = "≥"
	default:
		c = clean(c, false)
	}
	switch {
	case c == "":
		return v
	case v == "":
		return c
	}
	return c + " " + v
}

// row draws one result row and returns its severity. A row that fits on
// a page is never split; a longer one continues on the next page under a
// repeated table header.
func (r *renderer) row(row Row) Severity {
	sev := FlagSeverity(row.Flags)
	style, colour := "", black
	switch sev {
	case Critical:
		style, colour = "B", critical
	case Abnormal:
		style = "B"
	}
	texts := [len(columns)]string{
		sev.marker(),
		clean(strings.TrimSpace(row.Test), false),
		rowValue(row),
		clean(strings.TrimSpace(row.Unit), false),
		clean(strings.TrimSpace(row.Range), true),
		clean(flagText(row.Flags), false),
	}
	r.style(style, bodySize, colour)
	var cells [len(columns)][]string
	n := 1
	for i, c := range columns {
		cells[i] = r.wrap(texts[i], c.w)
		n = max(n, len(cells[i]))
	}
	noteX := margin + columns[0].w
	noteW := contentW - columns[0].w
	var note []string
	if s := strings.TrimSpace(row.Note); s != "" {
		r.style("", noteSize, grey)
		note = r.wrap(clean(s, true), noteW)
	}

	h := 2*rowPad + float64(n)*lineH + float64(len(note))*noteLineH
	if r.y+h > bodyBottom && h <= bodyBottom-bodyTop-headerRowH {
		r.tablePage()
	}
	r.y += rowPad
	for i := range n {
		if r.y+lineH > bodyBottom {
			r.tablePage()
		}
		r.style(style, bodySize, colour)
		x := margin
		for c, col := range columns {
			if i < len(cells[c]) {
				r.text(x, r.y, col.w, lineH, cells[c][i], "L")
			}
			x += col.w
		}
		r.y += lineH
	}
	for _, l := range note {
		if r.y+noteLineH > bodyBottom {
			r.tablePage()
		}
		r.style("", noteSize, grey)
		r.text(noteX, r.y, noteW, noteLineH, l, "L")
		r.y += noteLineH
	}
	r.y += rowPad
	r.rule(r.y, 0.1, ruleGrey)
	return sev
}

// tablePage continues the results table on a new page.
func (r *renderer) tablePage() {
	r.newPage()
	r.tableHeader()
}

// notes draws the report's comments, one paragraph per note.
func (r *renderer) notes() {
	var paras []string
	for _, n := range r.v.Notes {
		if s := strings.TrimSpace(clean(n, true)); s != "" {
			paras = append(paras, s)
		}
	}
	if len(paras) == 0 {
		return
	}
	r.y += 5
	r.ensure(6 + lineH)
	r.style("B", bodySize+1, black)
	r.text(margin, r.y, contentW, 6, "Comments", "L")
	r.y += 6
	for i, p := range paras {
		if i > 0 {
			r.y += 2
		}
		r.style("", bodySize, black)
		for _, l := range r.wrap(p, contentW) {
			r.ensure(lineH)
			r.style("", bodySize, black)
			r.text(margin, r.y, contentW, lineH, l, "L")
			r.y += lineH
		}
	}
}

// footer draws the generated time and the page number; fpdf calls it as
// each page closes.
func (r *renderer) footer() {
	r.rule(footerY-1, 0.2, ruleGrey)
	r.style("", footerSize, grey)
	r.text(margin, footerY, contentW*0.7, footerLineH,
		"Generated "+r.when(r.v.GeneratedAt)+" · "+orDash(r.v.Location.String()), "L")
	page := fmt.Sprintf("Page %d", r.pdf.PageNo())
	if r.pages > 0 {
		page += fmt.Sprintf(" of %d", r.pages)
	}
	r.text(margin+contentW*0.7, footerY, contentW*0.3, footerLineH, page, "R")
}
