package labpdf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the machine's zoneinfo
)

// istanbul is the clinic's zone in the tests: UTC+3 all year, no
// abbreviation, so times print with "+03".
func istanbul(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Istanbul")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// sampleView is a corrected report for a Turkish patient, with names and
// units that need more than cp1252.
func sampleView(t *testing.T) View {
	loc := istanbul(t)
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	return View{
		Clinic:         "Üsküdar Aile Sağlığı Merkezi",
		PatientName:    "Ayşe Işıl Göğüşoğlu İnceçöz",
		BirthDate:      "1984-02-29",
		PatientIDLabel: "MRN",
		PatientID:      "MRN-004217",
		Test:           "Hemogram ve biyokimya",
		TestCode:       "LOINC 58410-2",
		Accession:      "ACC-77-1902",
		Status:         StatusCorrected,
		Supersedes:     at("2026-03-13 16:20"),
		Collected:      at("2026-03-13 08:05"),
		Issued:         at("2026-03-14 09:30"),
		Released:       at("2026-03-14 11:00"),
		Location:       loc,
		OrderingDoctor: "Dr. Şebnem Ağaoğlu",
		PerformingLab:  "Çamlıca Tıbbi Laboratuvarı",
		Rows: []Row{
			{Test: "Hemoglobin", Value: "10.9", Unit: "g/dL", Range: "12.0–15.5", Flags: []string{"L"}},
			{Test: "Lökosit", Value: "7.2", Unit: "10^3/µL", Range: "4.0–10.0", Flags: []string{"N"}},
			{Test: "C-reaktif protein", Comparator: "<=", Value: "0.5", Unit: "mg/L", Range: "≤ 5"},
			{Test: "Potasyum", Value: "6.8", Unit: "mmol/L", Range: "3.5–5.1", Flags: []string{"HH"}, Note: "Hemoliz olmayan örnekte tekrarlandı."},
			{Test: "Glikoz (açlık)", Comparator: ">=", Value: "126", Unit: "mg/dL", Range: "70–99", Flags: []string{"H"}},
			{Test: "İdrar kültürü", Value: "Üreme yok", Flags: []string{"A"}},
		},
		Notes: []string{
			"Potasyum sonucu düzeltildi: ilk raporda birim hatası vardı.\nLütfen doktorunuzla görüşünüz.",
			"Örnek 08:05'te alındı.",
		},
		GeneratedAt: at("2026-03-14 11:00"),
	}
}

// render renders v and fails the test on error.
func render(t *testing.T, v View) []byte {
	t.Helper()
	b, err := Render(v)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return b
}

// poppler returns the path of a poppler-utils tool. These tests read the
// PDF back the way a person's viewer would, so a missing tool is a failure,
// not a skip.
func poppler(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: the labpdf tests need poppler-utils (Debian: apt-get install -y poppler-utils)", name)
	}
	return p
}

// writePDF stores b in a temporary file and returns its path.
func writePDF(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pdfText is the text pdftotext extracts, laid out as on the page, from
// pages first to last (0 for all).
func pdfText(t *testing.T, b []byte, first, last int) string {
	t.Helper()
	args := []string{"-layout", "-enc", "UTF-8"}
	if first > 0 {
		args = append(args, "-f", strconv.Itoa(first), "-l", strconv.Itoa(last))
	}
	args = append(args, writePDF(t, b), "-")
	out, err := exec.Command(poppler(t, "pdftotext"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	return string(out)
}

// pdfPages is the page count pdfinfo reads; pdfinfo failing means the
// file is not a PDF poppler can open.
func pdfPages(t *testing.T, b []byte) int {
	t.Helper()
	out, err := exec.Command(poppler(t, "pdfinfo"), writePDF(t, b)).CombinedOutput()
	if err != nil {
		t.Fatalf("pdfinfo: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)$`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("pdfinfo printed no page count:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// lineWith returns the first line of text that holds s.
func lineWith(text, s string) (string, bool) {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l, true
		}
	}
	return "", false
}

// inOrder reports whether parts occur in line left to right. A space in a
// part matches any run of spaces, or none: pdftotext guesses word gaps from
// glyph positions and drops the one in "≤ 5", though the page shows it.
func inOrder(line string, parts ...string) bool {
	pats := make([]string, len(parts))
	for i, p := range parts {
		pats[i] = strings.ReplaceAll(regexp.QuoteMeta(p), " ", `\s*`)
	}
	return regexp.MustCompile(strings.Join(pats, ".*")).MatchString(line)
}

func TestRenderIsDeterministic(t *testing.T) {
	v := sampleView(t)
	first := render(t, v)
	// Map order in Go changes on every range, so repeated renders in one
	// process exercise any map-ordered output; running some at once
	// checks that renders share no state.
	const n = 6
	outs := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := Render(v)
			if err != nil {
				t.Error(err)
				return
			}
			outs[i] = b
		}()
	}
	wg.Wait()
	for i, b := range outs {
		if !bytes.Equal(b, first) {
			t.Fatalf("render %d differs from the first (%d vs %d bytes)", i+1, len(b), len(first))
		}
	}
}

func TestRenderDependsOnTheInstantNotItsZone(t *testing.T) {
	v := sampleView(t)
	want := render(t, v)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	v.GeneratedAt = v.GeneratedAt.In(ny)
	v.Issued = v.Issued.UTC()
	if got := render(t, v); !bytes.Equal(got, want) {
		t.Fatal("the same instants in other zones rendered different bytes")
	}
}

func TestRenderGeneratedTimeIsTheCreationDate(t *testing.T) {
	v := sampleView(t)
	b := render(t, v)
	// 2026-03-14 11:00 in Istanbul is 08:00 UTC.
	if !bytes.Contains(b, []byte("/CreationDate (D:20260314080000")) {
		t.Fatal("creation date is not the View's generated time")
	}
	v.GeneratedAt = v.GeneratedAt.Add(time.Minute)
	if bytes.Equal(render(t, v), b) {
		t.Fatal("a different generated time rendered the same bytes")
	}
}

func TestRenderIsAValidPDF(t *testing.T) {
	b := render(t, sampleView(t))
	if !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Errorf("does not start with %%PDF-: %q", b[:min(len(b), 16)])
	}
	if !bytes.HasSuffix(bytes.TrimRight(b, "\r\n"), []byte("%%EOF")) {
		t.Errorf("does not end with %%%%EOF: %q", b[max(0, len(b)-16):])
	}
	if got := pdfPages(t, b); got != 1 {
		t.Errorf("pages = %d, want 1", got)
	}
}

func TestRenderText(t *testing.T) {
	v := sampleView(t)
	text := pdfText(t, render(t, v), 0, 0)
	for _, want := range []string{
		"Üsküdar Aile Sağlığı Merkezi",
		"Ayşe Işıl Göğüşoğlu İnceçöz",
		"1984-02-29",
		"MRN-004217",
		"Hemogram ve biyokimya (LOINC 58410-2)",
		"ACC-77-1902",
		"Dr. Şebnem Ağaoğlu",
		"Çamlıca Tıbbi Laboratuvarı",
		"CORRECTED — supersedes the report of 2026-03-13 16:20 +03",
		"2026-03-13 08:05 +03", // collected
		"2026-03-14 09:30 +03", // issued
		"Europe/Istanbul",
		"Potasyum sonucu düzeltildi: ilk raporda birim hatası vardı.",
		"Lütfen doktorunuzla görüşünüz.",
		"Hemoliz olmayan örnekte tekrarlandı.",
		"Generated 2026-03-14 11:00 +03",
		"Page 1 of 1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}

	rows := []struct {
		name string
		want []string // in order on the row's line
	}{
		{name: "low", want: []string{"!", "Hemoglobin", "10.9", "g/dL", "12.0–15.5", "Low"}},
		{name: "normal", want: []string{"Lökosit", "7.2", "10^3/µL", "4.0–10.0", "Normal"}},
		{name: "comparator <=", want: []string{"C-reaktif protein", "≤ 0.5", "mg/L", "≤ 5"}},
		{name: "critical", want: []string{"!!", "Potasyum", "6.8", "mmol/L", "3.5–5.1", "Critical high"}},
		{name: "comparator >=", want: []string{"!", "Glikoz (açlık)", "≥ 126", "mg/dL", "70–99", "High"}},
		{name: "text value", want: []string{"!", "İdrar kültürü", "Üreme yok", "Abnormal"}},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			line, ok := lineWith(text, tt.want[1])
			if !ok {
				t.Fatalf("no line holds %q", tt.want[1])
			}
			if !inOrder(line, tt.want...) {
				t.Errorf("line %q does not hold %q in order", line, tt.want)
			}
		})
	}
	if line, _ := lineWith(text, "Lökosit"); strings.Contains(line, "!") {
		t.Errorf("normal row is marked: %q", line)
	}
}

func TestRenderBanner(t *testing.T) {
	tests := []struct {
		name    string
		status  Status
		noPrior bool
		want    string // "" for no banner
	}{
		{name: "final", status: StatusFinal, want: ""},
		{name: "corrected", status: StatusCorrected, want: "CORRECTED — supersedes the report of 2026-03-13 16:20 +03"},
		{name: "amended", status: StatusAmended, want: "AMENDED — supersedes the report of 2026-03-13 16:20 +03"},
		{name: "cancelled", status: StatusCancelled, want: "CANCELLED — the lab cancelled this test"},
		{name: "entered in error", status: StatusEnteredInError, want: "ENTERED IN ERROR — the lab withdrew this report"},
		{name: "preliminary", status: StatusPreliminary, want: "PRELIMINARY — results may change"},
		{name: "correction of a report never on file", status: StatusCorrected, noPrior: true,
			want: "CORRECTED — replaces an earlier report by the lab"},
	}
	banners := []string{"CORRECTED", "AMENDED", "PRELIMINARY", "CANCELLED", "ENTERED IN ERROR"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := sampleView(t)
			v.Status = tt.status
			if tt.noPrior {
				v.Supersedes = time.Time{}
			}
			text := pdfText(t, render(t, v), 0, 0)
			if tt.want != "" && !strings.Contains(text, tt.want) {
				t.Errorf("text lacks banner %q", tt.want)
			}
			for _, b := range banners {
				if !strings.HasPrefix(tt.want, b) && strings.Contains(text, b) {
					t.Errorf("text holds %q for a %s report", b, tt.status)
				}
			}
		})
	}
}

// manyRows is n rows with names that are unique and not substrings of one
// another.
func manyRows(n int) []Row {
	rows := make([]Row, n)
	for i := range rows {
		rows[i] = Row{
			Test:  fmt.Sprintf("Analyte %03d", i+1),
			Value: fmt.Sprintf("%d.%d", 10+i, i%10),
			Unit:  "mmol/L",
			Range: "1.0–99.0",
		}
		if i%7 == 0 {
			rows[i].Flags = []string{"H"}
		}
	}
	return rows
}

func TestRenderManyRowsFlowOntoPages(t *testing.T) {
	v := sampleView(t)
	v.Rows = manyRows(120)
	b := render(t, v)
	pages := pdfPages(t, b)
	if pages < 2 {
		t.Fatalf("120 rows on %d page(s), want at least 2", pages)
	}
	text := pdfText(t, b, 0, 0)
	for _, row := range v.Rows {
		if n := strings.Count(text, row.Test); n != 1 {
			t.Errorf("%s appears %d times, want 1", row.Test, n)
		}
	}
	if want := fmt.Sprintf("Page %d of %d", pages, pages); !strings.Contains(text, want) {
		t.Errorf("text lacks %q", want)
	}
	// Later pages carry the patient and test, and repeat the table
	// header.
	for p := 2; p <= pages; p++ {
		page := pdfText(t, b, p, p)
		for _, want := range []string{
			"Ayşe Işıl Göğüşoğlu İnceçöz",
			"MRN-004217",
			"Üsküdar Aile Sağlığı Merkezi",
			fmt.Sprintf("Page %d of %d", p, pages),
		} {
			if !strings.Contains(page, want) {
				t.Errorf("page %d lacks %q", p, want)
			}
		}
		if strings.Contains(page, "Analyte") {
			if line, ok := lineWith(page, "Reference range"); !ok || !inOrder(line, "Test", "Result", "Unit", "Reference range", "Flag") {
				t.Errorf("page %d has rows but no table header", p)
			}
		}
	}
}

func TestRenderWrapsLongText(t *testing.T) {
	v := sampleView(t)
	long := strings.Repeat("uzun değer ", 30) + "sonu"
	word := strings.Repeat("x", 60) + "son"
	v.Rows = []Row{
		// No unit or range, so the value's lines hold nothing else.
		{Test: "Long value", Value: long},
		{Test: "Unbroken", Value: word},
	}
	v.Notes = []string{strings.Repeat("Açıklama metni devam ediyor. ", 40) + "Bitti."}
	text := pdfText(t, render(t, v), 0, 0)
	compact := strings.Join(strings.Fields(text), " ")
	if n := strings.Count(compact, "uzun değer"); n != 30 {
		t.Errorf("long value: %d of 30 words found", n)
	}
	if !strings.Contains(compact, "sonu") || !strings.Contains(compact, "Bitti.") {
		t.Error("the end of long text is missing")
	}
	if line, _ := lineWith(text, "Long value"); strings.Count(line, "uzun değer") >= 30 {
		t.Error("long value was not wrapped")
	}
	// The unbroken word is cut across lines; together they hold it all.
	if got := strings.Count(strings.ReplaceAll(text, " ", ""), "x"); got < 60 {
		t.Errorf("unbroken value: %d of 60 characters found", got)
	}
}

func TestRenderRowTallerThanAPage(t *testing.T) {
	v := sampleView(t)
	var lines []string
	for i := range 150 {
		lines = append(lines, fmt.Sprintf("line %03d", i+1))
	}
	v.Rows = []Row{{Test: "Tall", Value: strings.Join(lines, "\n")}, {Test: "After"}}
	b := render(t, v)
	if pages := pdfPages(t, b); pages < 2 {
		t.Fatalf("a 150-line row fits on %d page(s)?", pages)
	}
	text := pdfText(t, b, 0, 0)
	for _, l := range append(lines, "After") {
		if strings.Count(text, l) != 1 {
			t.Errorf("%q appears %d times, want 1", l, strings.Count(text, l))
		}
	}
}

func TestRenderReplacesCharactersTheFontLacks(t *testing.T) {
	v := sampleView(t)
	v.PatientName = "Ayşe 😀 中 Yılmaz\x00\x07"
	text := pdfText(t, render(t, v), 0, 0)
	if !strings.Contains(text, "Ayşe ? ? Yılmaz") {
		line, _ := lineWith(text, "Ayşe")
		t.Errorf("name printed as %q, want %q", line, "Ayşe ? ? Yılmaz")
	}
}

func TestRenderWithoutRowsOrNotes(t *testing.T) {
	v := sampleView(t)
	v.Rows, v.Notes = nil, nil
	v.Accession, v.OrderingDoctor, v.Released = "", "", time.Time{}
	text := pdfText(t, render(t, v), 0, 0)
	for _, want := range []string{"This report has no results.", "Ordering doctor"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	for _, unwanted := range []string{"Comments", "Accession", "abnormal result"} {
		if strings.Contains(text, unwanted) {
			t.Errorf("text holds %q", unwanted)
		}
	}
}

func TestRenderRejectsInvalidViews(t *testing.T) {
	tests := []struct {
		name   string
		change func(*View)
		want   string
	}{
		{name: "no location", change: func(v *View) { v.Location = nil }, want: "no location"},
		{name: "local location", change: func(v *View) { v.Location = time.Local }, want: "time.Local"},
		{name: "no generated time", change: func(v *View) { v.GeneratedAt = time.Time{} }, want: "no generated time"},
		{name: "unknown status", change: func(v *View) { v.Status = Status(v.PatientName) }, want: "unsupported status"},
		{name: "empty status", change: func(v *View) { v.Status = "" }, want: "unsupported status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := sampleView(t)
			tt.change(&v)
			b, err := Render(v)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if b != nil {
				t.Error("returned bytes with an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
			assertNoPatientData(t, err.Error(), v)
		})
	}
}

// assertNoPatientData fails if msg quotes any text from v.
func assertNoPatientData(t *testing.T, msg string, v View) {
	t.Helper()
	fields := []string{v.Clinic, v.PatientName, v.BirthDate, v.PatientID, v.Test, v.TestCode,
		v.Accession, v.OrderingDoctor, v.PerformingLab}
	for _, r := range v.Rows {
		fields = append(fields, r.Test, r.Value, r.Unit, r.Range, r.Note)
	}
	fields = append(fields, v.Notes...)
	for _, f := range fields {
		if f != "" && strings.Contains(msg, f) {
			t.Errorf("error %q quotes view text %q", msg, f)
		}
	}
}
