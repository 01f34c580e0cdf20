package labs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const microFile = "fhir_r4_diagnosticreport_micro1_bundle.json"

func microBundle(t testing.TB) []byte { return readCase(t, "fhir", microFile) }

func mustFHIR(t *testing.T, body []byte) Message {
	t.Helper()
	m, err := ParseFHIR(body)
	if err != nil {
		t.Fatalf("ParseFHIR: %v", err)
	}
	return m
}

func byKey(t *testing.T, r Report, key string) Observation {
	t.Helper()
	for _, o := range r.Observations {
		if o.Key == key {
			return o
		}
	}
	t.Fatalf("no observation %q", key)
	return Observation{}
}

func TestParseFHIRMicroBundle(t *testing.T) {
	m := mustFHIR(t, microBundle(t))
	eq(t, "Format", m.Format, FormatFHIR)
	eq(t, "ID", m.ID, "micro")
	eq(t, "SendingFacility", m.SendingFacility, "")
	eq(t, "SentAt.IsZero", m.SentAt.IsZero(), true)
	// The bundle holds no Patient and the subject reference carries no
	// identifier: the patient is the literal reference made absolute
	// against the entries' base https://example.com/base.
	deq(t, "Patient", m.Patient, Patient{Identifiers: []Identifier{
		{System: "urn:ietf:rfc:3986", Value: "https://example.com/base/Patient/example"},
	}})

	r := oneReport(t, m)
	eq(t, "Report.Key", r.Key, "http://hnam.org/identifiers/orders|290741144")
	eq(t, "Report.FillerNumber", r.FillerNumber, "290741144")
	// From the ServiceRequest the report is basedOn.
	eq(t, "Report.PlacerNumber", r.PlacerNumber, "255337816")
	eq(t, "Report.Status", r.Status, StatusFinal)
	eq(t, "Report.Code", r.Code, Code{System: "http://loinc.org", Code: "632-0", Display: "Culture, MRSA"})
	// issued 2009-08-10T08:25:44+10:00; no effective[x] is sent.
	eq(t, "Report.IssuedAt", r.IssuedAt, utc("2009-08-09T22:25:44Z"))
	eq(t, "Report.EffectiveAt.IsZero", r.EffectiveAt.IsZero(), true)
	eq(t, "Report.Severity", r.Severity(), SeverityAbnormal)

	// The file holds 25 Observations (SOURCES.md says 24), and the
	// report reaches every one: org1 from result, then its members depth
	// first.
	var keys []string
	for _, o := range r.Observations {
		keys = append(keys, o.Key)
		eq(t, o.Key+".Status", o.Status, StatusFinal)
	}
	deq(t, "observation keys", keys, []string{
		"org1", "obx1-4", "obx1-5", "obr-2",
		"obx2-1", "obx2-2", "obx2-4", "obx2-6", "obx2-8", "obx2-10", "obx2-12", "obx2-14", "obx2-16",
		"obx2-18", "obx2-20", "obx2-22", "obx2-24", "obx2-26", "obx2-28", "obx2-30", "obx2-32", "obx2-34",
		"nte-1", "obr-3", "obx3-1",
	})

	org1 := byKey(t, r, "org1")
	eq(t, "org1.Kind", org1.Kind, ValueNone)
	eq(t, "org1.Code", org1.Code, Code{System: "http://acme.org/lab/codes/organisms", Code: "Staaur", Display: "Staphylococcus aureus Panel"})
	deq(t, "org1.Members", org1.Members, []string{"obx1-4", "obx1-5", "obr-2", "obr-3"})
	deq(t, "obr-2.Members", byKey(t, r, "obr-2").Members, []string{
		"obx2-1", "obx2-2", "obx2-4", "obx2-6", "obx2-8", "obx2-10", "obx2-12", "obx2-14", "obx2-16",
		"obx2-18", "obx2-20", "obx2-22", "obx2-24", "obx2-26", "obx2-28", "obx2-30", "obx2-32", "obx2-34",
		"nte-1",
	})
	eq(t, "obr-2.Code.Display", byKey(t, r, "obr-2").Code.Display, "Susceptibility - Automated broth dilution (Billed)")
	deq(t, "obr-3.Members", byKey(t, r, "obr-3").Members, []string{"obx3-1"})
	deq(t, "obx2-2.Members", byKey(t, r, "obx2-2").Members, []string(nil))

	// The organism, coded.
	org := byKey(t, r, "obx1-4")
	eq(t, "obx1-4.Code", org.Code, Code{System: "http://acme.org/lab/codes/tests", Code: "ORGANISM"})
	eq(t, "obx1-4.Kind", org.Kind, ValueCoded)
	eq(t, "obx1-4.Coded", org.Coded, Code{System: "http://acme.org/lab/codes/organisms", Code: "Staaur", Display: "Staphylococcus aureus"})
	eq(t, "obx1-4.Text", org.Text, "Staphylococcus aureus")
	pos := byKey(t, r, "obx1-5")
	eq(t, "obx1-5.Kind", pos.Kind, ValueCoded)
	eq(t, "obx1-5.Coded", pos.Coded, Code{System: "http://acme.org/lab/codes/flags", Code: "POS"})

	// The string value.
	nte := byKey(t, r, "nte-1")
	eq(t, "nte-1.Kind", nte.Kind, ValueText)
	eq(t, "nte-1.Text", nte.Text, "D-Test:  Negative - This isolate does not demonstrate inducible clindamycin resistance in vitro.")
	eq(t, "nte-1.Code", nte.Code, Code{System: "http://acme.org/lab/codes/tests", Code: "2099930", Display: "D-Test"})

	// Susceptibilities: value, comparator and interpretation of each, as
	// written in the file. No Quantity in the file carries a unit.
	susceptibilities := []struct {
		key, drug  string
		comparator string
		number     float64
		text       string
		flag       string
	}{
		{"obx2-2", "Cefazolin", "<=", 2, "<=2", "S"},
		{"obx2-4", "Cefoxitin", "<=", 4, "<=4", "S"},
		{"obx2-6", "Clindamycin", ">=", 0.5, ">=0.5", "S"},
		{"obx2-8", "Daptomycin", ">=", 1, ">=1", "S"},
		{"obx2-10", "Doxycycline", "<=", 0.5, "<=0.5", "S"},
		{"obx2-12", "Erythromycin", ">=", 8, ">=8", "R"},
		{"obx2-14", "Gentamicin", "<=", 2, "<=2", "S"},
		{"obx2-16", "Levofloxacin", "<=", 0.5, "<=0.5", "S"},
		{"obx2-18", "Linezolid", "", 4, "4", "S"},
		{"obx2-20", "Moxifloxacin", "<=", 0.5, "<=0.5", "S"},
		{"obx2-22", "Oxacillin", "", 0.5, "0.5", "S"},
		{"obx2-24", "Penicillin", ">=", 2, ">=2", "R"},
		{"obx2-26", "Quinupristin/Dalfopristin", "", 0.5, "0.5", "S"},
		{"obx2-28", "Rifampin", "<=", 0.5, "<=0.5", "S"},
		{"obx2-30", "Tetracycline", "<=", 0.5, "<=0.5", "S"},
		{"obx2-32", "Trimethoprim/Sulfamethoxazole", "<=", 0.0526, "<=0.0526", "S"},
		{"obx2-34", "Vancomycin", "", 1, "1", "S"},
	}
	for _, s := range susceptibilities {
		o := byKey(t, r, s.key)
		eq(t, s.key+".Code", o.Code, Code{System: "http://acme.org/lab/codes/tests", Code: o.Code.Code, Display: s.drug})
		eq(t, s.key+".Kind", o.Kind, ValueQuantity)
		eq(t, s.key+".Comparator", o.Comparator, s.comparator)
		eq(t, s.key+".Number", o.Number, s.number)
		eq(t, s.key+".Text", o.Text, s.text)
		eq(t, s.key+".Unit", o.Unit, "")
		deq(t, s.key+".Flags", o.Flags, []string{s.flag})
	}
	eq(t, "obx2-32.Code.Code", byKey(t, r, "obx2-32").Code.Code, "60561")

	// Interpretation only, no value.
	amp := byKey(t, r, "obx2-1")
	eq(t, "obx2-1.Kind", amp.Kind, ValueNone)
	deq(t, "obx2-1.Flags", amp.Flags, []string{"R"})
	eq(t, "obx2-1.Code.Display", amp.Code.Display, "Ampicillin")
	ox := byKey(t, r, "obx3-1")
	eq(t, "obx3-1.Kind", ox.Kind, ValueNone)
	deq(t, "obx3-1.Flags", ox.Flags, []string{"S"})

	// Every flag but N counts as abnormal, so resistant (R) and, by the
	// same simple rule, susceptible (S) results are abnormal; the organism
	// panel with no flag is normal.
	eq(t, "obx2-1.Severity", amp.Severity(), SeverityAbnormal)
	eq(t, "obx2-12.Severity", byKey(t, r, "obx2-12").Severity(), SeverityAbnormal)
	eq(t, "obx2-2.Severity", byKey(t, r, "obx2-2").Severity(), SeverityAbnormal)
	eq(t, "org1.Severity", org1.Severity(), SeverityNormal)
	counts := map[string]int{}
	for _, o := range r.Observations {
		for _, f := range o.Flags {
			counts[f]++
		}
	}
	deq(t, "flag counts", counts, map[string]int{"R": 3, "S": 16})
}

// TestParseFHIREscapedComparator: "\u003c=" is how encoding/json (and many
// other writers) spell "<=" and must read the same.
func TestParseFHIREscapedComparator(t *testing.T) {
	body := bytes.Replace(microBundle(t), []byte(`"comparator": "<="`), []byte(`"comparator": "\u003c="`), -1)
	if bytes.Equal(body, microBundle(t)) {
		t.Fatal("the bundle no longer has the comparator this test rewrites")
	}
	r := oneReport(t, mustFHIR(t, body))
	eq(t, "obx2-2.Comparator", byKey(t, r, "obx2-2").Comparator, "<=")
}

// generic is the bundle as maps and slices, for building variants.
type generic = map[string]any

func decodeGeneric(t testing.TB, body []byte) generic {
	t.Helper()
	var g generic
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&g); err != nil {
		t.Fatal(err)
	}
	return g
}

func encodeGeneric(t testing.TB, g generic) []byte {
	t.Helper()
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entry is the resource of entry i of a generic bundle.
func entry(g generic, i int) generic {
	return g["entry"].([]any)[i].(generic)["resource"].(generic)
}

func addEntry(g generic, fullURL string, res generic) {
	g["entry"] = append(g["entry"].([]any), generic{"fullUrl": fullURL, "resource": res})
}

// microVariant rewrites the micro bundle with edit.
func microVariant(t testing.TB, edit func(g generic)) []byte {
	t.Helper()
	g := decodeGeneric(t, microBundle(t))
	edit(g)
	return encodeGeneric(t, g)
}

// secret marks values the tests inject; no error may repeat one.
const secret = "SECRETVALUE"

// The micro bundle's entries: 0 the DiagnosticReport, 1 obx1-4, 2 obx1-5,
// 3 obx2-1, 4 obx2-2 (<=2), ..., 21 nte-1, 22 obx3-1, 23 obr-2, 24 obr-3,
// 25 org1, 26 the ServiceRequest.
func TestParseFHIRRefusesInvalidBundles(t *testing.T) {
	tests := []struct {
		name string
		body func(t *testing.T) []byte
		want string // the reason starts with this path and text
	}{
		{
			name: "report status missing",
			body: edited(func(g generic) { delete(entry(g, 0), "status") }),
			want: "Bundle.entry[0].resource.status is missing",
		},
		{
			name: "report status not an R4 code",
			body: edited(func(g generic) { entry(g, 0)["status"] = secret }),
			want: "Bundle.entry[0].resource.status is not an R4 status code",
		},
		{
			name: "report status unknown",
			body: edited(func(g generic) { entry(g, 0)["status"] = "unknown" }),
			want: "Bundle.entry[0].resource.status unknown is not accepted",
		},
		{
			name: "report code missing",
			body: edited(func(g generic) { delete(entry(g, 0), "code") }),
			want: "Bundle.entry[0].resource.code is missing",
		},
		{
			name: "report subject missing",
			body: edited(func(g generic) { delete(entry(g, 0), "subject") }),
			want: "Bundle.entry[0].resource.subject is missing",
		},
		{
			name: "observation status missing",
			body: edited(func(g generic) { delete(entry(g, 4), "status") }),
			want: "Bundle.entry[4].resource.status is missing",
		},
		{
			name: "observation status of the wrong JSON type",
			body: edited(func(g generic) { entry(g, 4)["status"] = 7 }),
			want: "Bundle.entry[4].resource.status: wrong JSON type",
		},
		{
			name: "observation code missing",
			body: edited(func(g generic) { delete(entry(g, 4), "code") }),
			want: "Bundle.entry[4].resource.code is missing",
		},
		{
			name: "bad comparator",
			body: edited(func(g generic) { entry(g, 4)["valueQuantity"].(generic)["comparator"] = "<" + secret }),
			want: "Bundle.entry[4].resource.valueQuantity.comparator is not one of < <= >= >",
		},
		{
			name: "comparator ad is R5, not R4",
			body: edited(func(g generic) { entry(g, 4)["valueQuantity"].(generic)["comparator"] = "ad" }),
			want: "Bundle.entry[4].resource.valueQuantity.comparator is not one of < <= >= >",
		},
		{
			name: "quantity value sent as a string",
			body: edited(func(g generic) { entry(g, 4)["valueQuantity"].(generic)["value"] = "2" }),
			want: "Bundle.entry[4].resource.valueQuantity.value is not a JSON number",
		},
		{
			name: "quantity without a value",
			body: edited(func(g generic) { delete(entry(g, 4)["valueQuantity"].(generic), "value") }),
			want: "Bundle.entry[4].resource.valueQuantity.value is missing",
		},
		{
			name: "dangling result reference",
			body: edited(func(g generic) {
				entry(g, 0)["result"].([]any)[0].(generic)["reference"] = "Observation/" + secret
			}),
			want: "Bundle.entry[0].resource.result[0].reference does not resolve within the message",
		},
		{
			name: "dangling hasMember reference",
			body: edited(func(g generic) {
				entry(g, 25)["hasMember"].([]any)[2].(generic)["reference"] = "https://example.com/base/Observation/" + secret
			}),
			want: "Bundle.entry[25].resource.hasMember[2].reference does not resolve within the message",
		},
		{
			name: "result that is not an Observation",
			body: edited(func(g generic) {
				entry(g, 0)["result"].([]any)[0].(generic)["reference"] = "ServiceRequest/req"
			}),
			want: "Bundle.entry[0].resource.result[0].reference leads to a resource that is not an Observation",
		},
		{
			name: "hasMember leading back to its group",
			body: edited(func(g generic) {
				entry(g, 4)["hasMember"] = []any{generic{"reference": "Observation/org1"}}
			}),
			want: "Bundle.entry[4].resource.hasMember[0].reference leads back to an Observation that holds it",
		},
		{
			name: "observation about another patient",
			body: edited(func(g generic) { entry(g, 4)["subject"].(generic)["reference"] = "Patient/" + secret }),
			want: "Bundle.entry[4].resource.subject names a different patient from the first subject",
		},
		{
			name: "two Patient resources",
			body: edited(func(g generic) {
				addEntry(g, "https://example.com/base/Patient/example", generic{"resourceType": "Patient", "id": "example"})
				addEntry(g, "https://example.com/base/Patient/"+secret, generic{"resourceType": "Patient", "id": secret})
			}),
			want: "Bundle.entry[28].resource: the message holds more than one Patient",
		},
		{
			name: "a Patient that is not the subject",
			body: edited(func(g generic) {
				addEntry(g, "https://example.com/base/Patient/"+secret, generic{
					"resourceType": "Patient", "id": secret,
					"identifier": []any{generic{"system": "urn:oid:1.2.3", "value": secret}},
				})
			}),
			want: "Bundle.entry[27].resource: the Patient in the message is not the reports' subject",
		},
		{
			name: "unsupported value type",
			body: edited(func(g generic) {
				delete(entry(g, 4), "valueQuantity")
				entry(g, 4)["valueBoolean"] = true
			}),
			want: "Bundle.entry[4].resource.valueBoolean is not supported (supported: valueQuantity, valueCodeableConcept, valueString, valueInteger, valueRange, valueRatio)",
		},
		{
			name: "unknown value type",
			body: edited(func(g generic) { entry(g, 4)["value"+secret] = 1 }),
			want: "Bundle.entry[4].resource: an element value[x] of an unknown type",
		},
		{
			name: "two values",
			body: edited(func(g generic) { entry(g, 4)["valueString"] = secret }),
			want: "Bundle.entry[4].resource holds more than one value[x]",
		},
		{
			name: "component",
			body: edited(func(g generic) {
				entry(g, 4)["component"] = []any{generic{"code": generic{"text": secret}}}
			}),
			want: "Bundle.entry[4].resource.component is not supported",
		},
		{
			name: "interpretation without a code",
			body: edited(func(g generic) { entry(g, 4)["interpretation"] = []any{generic{"text": secret}} }),
			want: "Bundle.entry[4].resource.interpretation[0] has no coding with a code",
		},
		{
			name: "modifier extension",
			body: edited(func(g generic) {
				entry(g, 4)["modifierExtension"] = []any{generic{"url": "http://example.org/" + secret, "valueString": secret}}
			}),
			want: "Bundle.entry[4].resource.modifierExtension: modifier extensions are not supported",
		},
		{
			name: "an Observation no report reaches",
			body: edited(func(g generic) {
				members := entry(g, 25)["hasMember"].([]any)
				entry(g, 25)["hasMember"] = members[:3] // drops obr-3, and so obx3-1
			}),
			want: "Bundle.entry[22].resource: Observation is not reached from any DiagnosticReport.result or hasMember",
		},
		{
			name: "unknown resourceType in an entry",
			body: edited(func(g generic) { entry(g, 4)["resourceType"] = "Observatoin" + secret }),
			want: "Bundle.entry[4].resource.resourceType is not an R4 resource type",
		},
		{
			name: "wrong resourceType at the top",
			body: edited(func(g generic) { g["resourceType"] = "Patient" }),
			want: "resourceType: a body must be a Bundle or a DiagnosticReport",
		},
		{
			name: "unknown resourceType at the top",
			body: edited(func(g generic) { g["resourceType"] = secret }),
			want: "resourceType is not an R4 resource type",
		},
		{
			name: "no resourceType",
			body: edited(func(g generic) { delete(g, "resourceType") }),
			want: "resourceType is missing",
		},
		{
			name: "document bundle",
			body: edited(func(g generic) { g["type"] = "document" }),
			want: "Bundle.type is not one Carebook reads",
		},
		{
			name: "bundle without a report",
			body: edited(func(g generic) { g["entry"] = g["entry"].([]any)[1:] }),
			want: "Bundle.entry: the bundle holds no DiagnosticReport",
		},
		{
			name: "no bundle id and two reports",
			body: edited(func(g generic) {
				delete(g, "id")
				second := generic{"resourceType": "DiagnosticReport", "id": "second", "status": "final",
					"code": generic{"text": "x"}, "subject": generic{"reference": "Patient/example"}}
				addEntry(g, "https://example.com/base/DiagnosticReport/second", second)
			}),
			want: "Bundle.id is missing",
		},
		{
			name: "duplicate key",
			body: func(t *testing.T) []byte {
				b := bytes.Replace(microBundle(t), []byte(`"id": "obx2-2",`), []byte(`"id": "obx2-2", "id": "`+secret+`",`), 1)
				if bytes.Equal(b, microBundle(t)) {
					t.Fatal("id of obx2-2 not found")
				}
				return b
			},
			want: "Bundle.entry[4].resource.id: the key appears twice in one object",
		},
		{
			name: "a key repeated in another case",
			body: edited(func(g generic) { entry(g, 4)["STATUS"] = "cancelled" }),
			want: "Bundle.entry[4].resource.STATUS: the key differs only in case from a FHIR element name",
		},
		{
			name: "a key that folds to an element name",
			body: edited(func(g generic) {
				delete(entry(g, 0), "status")
				entry(g, 0)["ſtatus"] = "final" // long s folds to s
			}),
			want: "Bundle.entry[0].resource.<key>: the key differs only in case from a FHIR element name",
		},
		{
			name: "not JSON",
			body: func(t *testing.T) []byte { b := microBundle(t); return b[:len(b)/2] },
			want: "body is not valid JSON",
		},
		{
			name: "JSON syntax error",
			body: func(t *testing.T) []byte {
				return bytes.Replace(microBundle(t), []byte(`"id": "obx2-2",`), []byte(`"id": `+secret+`,`), 1)
			},
			want: "body is not valid JSON (syntax error at byte",
		},
		{
			name: "not an object",
			body: func(t *testing.T) []byte { return []byte(`["` + secret + `"]`) },
			want: "body is not a JSON object",
		},
		{
			name: "not UTF-8",
			body: func(t *testing.T) []byte {
				return bytes.Replace(microBundle(t), []byte("Cefazolin"), []byte("Cef\xffzolin"), 1)
			},
			want: "body is not UTF-8",
		},
	}
	leaves := bundleValues(t, microBundle(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFHIR(tt.body(t))
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("error = %v, want *InvalidError", err)
			}
			if !strings.HasPrefix(ie.Reason, tt.want) {
				t.Errorf("Reason = %q, want it to start with %q", ie.Reason, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error quotes an injected value: %q", err)
			}
			for _, v := range leaves {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error quotes the bundle's value %q: %q", v, err)
				}
			}
		})
	}
}

func edited(edit func(g generic)) func(t *testing.T) []byte {
	return func(t *testing.T) []byte { return microVariant(t, edit) }
}

// bundleValues lists the string and number values of a body that an error
// might leak: every leaf of three characters or more, except resource type
// names, which element paths are made of, and Bundle.type, a code of a FHIR
// value set that reasons list.
func bundleValues(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch v := v.(type) {
		case generic:
			for k, c := range v {
				walk(k, c)
			}
		case []any:
			for _, c := range v {
				walk(key, c)
			}
		case string:
			if key != "resourceType" && key != "type" && len(v) >= 3 && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		case json.Number:
			if len(v) >= 3 && !seen[v.String()] {
				seen[v.String()] = true
				out = append(out, v.String())
			}
		}
	}
	walk("", decodeGeneric(t, body))
	if len(out) < 50 {
		t.Fatalf("only %d values found in the bundle", len(out))
	}
	return out
}

// loneReport is a DiagnosticReport with its patient and observations
// contained, exercising the value types the micro bundle does not.
const loneReport = `{
  "resourceType": "DiagnosticReport",
  "id": "r1",
  "contained": [
    {"resourceType": "Patient", "id": "p",
     "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1",
                     "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}],
     "name": [{"use": "usual", "family": "Usual", "given": ["U"]},
              {"use": "official", "family": "Testpatient", "given": ["Alex", "B"]}],
     "gender": "female", "birthDate": "1980-02-29"},
    {"resourceType": "Observation", "id": "k", "status": "preliminary",
     "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium"}]},
     "subject": {"reference": "#p"},
     "effectiveDateTime": "2024-03-01T08:30:00+03:00",
     "valueQuantity": {"value": 6.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
     "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "HH"}]}],
     "referenceRange": [{"low": {"value": 3.5, "unit": "mmol/L"}, "high": {"value": 5.1, "unit": "mmol/L"}}],
     "note": [{"text": "haemolysed"}]},
    {"resourceType": "Observation", "id": "titer", "status": "final",
     "code": {"text": "Titer"},
     "valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 128}}},
    {"resourceType": "Observation", "id": "count", "status": "final",
     "code": {"text": "Count"},
     "valueInteger": 12,
     "referenceRange": [{"text": "10 - 20"}]},
    {"resourceType": "Observation", "id": "span", "status": "final",
     "code": {"text": "Span"},
     "valueRange": {"low": {"value": 2, "code": "mg"}, "high": {"value": 4, "code": "mg"}}},
    {"resourceType": "Observation", "id": "atleast", "status": "final",
     "code": {"text": "At least"},
     "valueRange": {"low": {"value": 100, "unit": "U/L"}}},
    {"resourceType": "Observation", "id": "absent", "status": "cancelled",
     "code": {"text": "Absent"},
     "dataAbsentReason": {"coding": [{"code": "not-performed", "display": "Not Performed"}]}}
  ],
  "identifier": [{"value": "ACC-9"}],
  "status": "partial",
  "code": {"text": "Chemistry"},
  "subject": {"reference": "#p"},
  "effectiveDateTime": "2024-03-01",
  "issued": "2024-03-01T10:00:00Z",
  "conclusion": "See notes.",
  "result": [{"reference": "#k"}, {"reference": "#titer"}, {"reference": "#count"},
             {"reference": "#span"}, {"reference": "#atleast"}, {"reference": "#absent"}]
}`

func TestParseFHIRLoneReportWithContained(t *testing.T) {
	m := mustFHIR(t, []byte(loneReport))
	eq(t, "ID", m.ID, "r1")
	deq(t, "Patient", m.Patient, Patient{
		Identifiers: []Identifier{{System: "urn:oid:1.2.3", Value: "MRN-1", Type: "MR"}},
		Family:      "Testpatient", Given: "Alex", BirthDate: "1980-02-29", Sex: "F",
	})
	r := oneReport(t, m)
	eq(t, "Key", r.Key, "|ACC-9")
	eq(t, "Status", r.Status, StatusPreliminary)
	eq(t, "Code", r.Code, Code{Display: "Chemistry"})
	eq(t, "EffectiveAt", r.EffectiveAt, utc("2024-03-01T00:00:00Z"))
	eq(t, "IssuedAt", r.IssuedAt, utc("2024-03-01T10:00:00Z"))
	eq(t, "Conclusion", r.Conclusion, "See notes.")
	eq(t, "Severity", r.Severity(), SeverityCritical)

	k := byKey(t, r, "k")
	eq(t, "k.Kind", k.Kind, ValueQuantity)
	eq(t, "k.Number", k.Number, 6.1)
	eq(t, "k.Text", k.Text, "6.1")
	eq(t, "k.Unit", k.Unit, "mmol/L")
	eq(t, "k.Status", k.Status, StatusPreliminary)
	eq(t, "k.EffectiveAt", k.EffectiveAt, utc("2024-03-01T05:30:00Z"))
	eq(t, "k.ReferenceRange", k.ReferenceRange, "3.5-5.1")
	deq(t, "k.Low", k.Low, fptr(3.5))
	deq(t, "k.High", k.High, fptr(5.1))
	deq(t, "k.Flags", k.Flags, []string{"HH"})
	deq(t, "k.Notes", k.Notes, []string{"haemolysed"})

	titer := byKey(t, r, "titer")
	eq(t, "titer", fmt.Sprintf("%v %v %v %v", titer.Kind, titer.Number, titer.Number2, titer.Text), "ratio 1 128 1:128")
	count := byKey(t, r, "count")
	eq(t, "count", fmt.Sprintf("%v %v %v %v", count.Kind, count.Number, count.Text, count.ReferenceRange), "quantity 12 12 10 - 20")
	deq(t, "count.Low", count.Low, fptr(10))
	deq(t, "count.High", count.High, fptr(20))
	// Effective time falls back to the report's.
	eq(t, "count.EffectiveAt", count.EffectiveAt, utc("2024-03-01T00:00:00Z"))
	span := byKey(t, r, "span")
	eq(t, "span", fmt.Sprintf("%v %v %v %v %v", span.Kind, span.Number, span.Number2, span.Unit, span.Text), "range 2 4 mg 2-4")
	atleast := byKey(t, r, "atleast")
	eq(t, "atleast", fmt.Sprintf("%v %v %v %v %v", atleast.Kind, atleast.Comparator, atleast.Number, atleast.Unit, atleast.Text), "quantity >= 100 U/L >=100")
	absent := byKey(t, r, "absent")
	eq(t, "absent", fmt.Sprintf("%v %v %v", absent.Kind, absent.Status, absent.Text), "none cancelled Not Performed")
}

func TestParseFHIRLogicalSubject(t *testing.T) {
	body := microVariant(t, func(g generic) {
		for i := 0; i <= 25; i++ {
			entry(g, i)["subject"] = generic{"identifier": generic{"system": "urn:oid:1.2.3", "value": "MRN-7"}}
		}
	})
	m := mustFHIR(t, body)
	deq(t, "Patient.Identifiers", m.Patient.Identifiers, []Identifier{{System: "urn:oid:1.2.3", Value: "MRN-7"}})
}

func TestParseFHIRPatientResourceInTheBundle(t *testing.T) {
	body := microVariant(t, func(g generic) {
		addEntry(g, "https://example.com/base/Patient/example", generic{
			"resourceType": "Patient", "id": "example",
			"identifier": []any{generic{"system": "urn:oid:1.2.3", "value": "MRN-7"}},
			"gender":     "male", "birthDate": "1990-07",
		})
		// One observation names the patient by identifier instead: the
		// same patient.
		entry(g, 4)["subject"] = generic{"identifier": generic{"system": "urn:oid:1.2.3", "value": "MRN-7"}}
	})
	m := mustFHIR(t, body)
	deq(t, "Patient", m.Patient, Patient{
		Identifiers: []Identifier{{System: "urn:oid:1.2.3", Value: "MRN-7"}},
		Sex:         "M",
	})
}

func TestParseFHIRBundleIDFallsBackToTheReport(t *testing.T) {
	m := mustFHIR(t, microVariant(t, func(g generic) { delete(g, "id"); g["type"] = "searchset" }))
	eq(t, "ID", m.ID, "micro")
}

func TestParseFHIRReportKeyFallsBackToItsID(t *testing.T) {
	m := mustFHIR(t, microVariant(t, func(g generic) { delete(entry(g, 0), "identifier") }))
	eq(t, "Key", m.Reports[0].Key, "DiagnosticReport/micro")
}
