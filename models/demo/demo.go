// Package demo seeds a demonstration network: one tenant with two
// facilities in different zones, six doctors in three specialties, a month
// of weekly rules, patients and staff with known passwords. Seeding is
// idempotent: IDs derive from names, and rows that exist are left alone.
package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/nationalid"
)

// Password is every demo user's password. It exists only in demo data.
const Password = "carebook-demo-2026"

// Options say which tenant to seed.
type Options struct {
	Slug string    // e.g. "demo"
	Name string    // e.g. "Anatolia & Hudson Health"
	Now  time.Time // rules run from Now's date for RuleDays
	// HashPassword hashes Password (the api's argon2id), passed in so this
	// package does not import the api.
	HashPassword func(string) (string, error)
	// SealSecret seals each doctor's, staff member's, billing clerk's and
	// admin's TOTP secret (TOTPSecretFor) the way the api stores it (its
	// SecretSealer). Nil leaves them without MFA enrolled.
	SealSecret func(ctx context.Context, tenant uuid.UUID, plain string) ([]byte, error)
	// Keys seals the patients' national ID numbers; nil seeds none.
	Keys *keyring.Keyring
}

// LabKey is the demo tenant's lab partner API key, for POST /v1/labs/hl7
// and /v1/labs/fhir. It exists only in demo data.
const LabKey = LabKeyID + labSecret

const labSecret = ".carebook-demo-lab-2026"

// LabKeyFor is the demo lab partner's API key in the tenant slug seeds.
func LabKeyFor(slug string) string { return LabKeyID + labSuffix(slug) + labSecret }

// LabKeyID is the public part of LabKey; `carebook dev` dedicates its MLLP
// listener to this partner for messages that name no known facility.
const LabKeyID = "demolab01"

// RuleDays is how long the seeded weekly rules stay valid.
const RuleDays = 31

// Login is one seeded account.
type Login struct {
	Email string
	Role  models.Role
	Note  string
}

// Network is what Seed created, for printing and for tests.
type Network struct {
	Tenant        models.Tenant
	Facilities    []models.Facility
	Specialties   []models.Specialty
	Practitioners []models.Practitioner
	Types         []models.AppointmentType
	Patients      []models.Patient
	LabPartners   []models.LabPartner
	Logins        []Login
}

// id derives a stable ID for a named row of a tenant.
func id(slug, kind, name string) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("carebook-demo:"+slug+":"+kind+":"+name))
}

// Seed writes the network through db, which must be an owner connection
// (it creates the tenant row, which the application role may only read).
func Seed(ctx context.Context, db *gorm.DB, o Options) (Network, error) {
	n := build(o)
	hash, err := o.HashPassword(Password)
	if err != nil {
		return n, fmt.Errorf("hash demo password: %w", err)
	}
	err = models.InTenant(ctx, db, n.Tenant.ID, func(tx *gorm.DB) error {
		steps := []any{&n.Tenant, &n.Facilities, &n.Specialties, &n.Practitioners, roles(o.Slug, n), &n.Types,
			rules(o, n), &n.Patients, users(o.Slug, n, hash)}
		steps = append(steps, labs(n)...)
		steps = append(steps, notices(n))
		steps = append(steps, care(o, n)...)
		for _, rows := range steps {
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(rows).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("seed tenant %s: %w", o.Slug, err)
	}
	// National IDs are sealed under the tenant's key, which the keyring
	// makes in a transaction of its own: after the tenant row exists.
	if o.Keys != nil {
		err = models.InTenant(ctx, db, n.Tenant.ID, func(tx *gorm.DB) error {
			for _, id := range nationalIDs(n) {
				if err := nationalid.Store(ctx, tx, o.Keys, n.Tenant.ID, id.PatientID, id.System, id.Value, id.Type); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("seed national IDs of tenant %s: %w", o.Slug, err)
		}
	}
	// After the tenant is committed: a sealer with per-tenant data keys
	// may need to find the tenant to make its key.
	if err := seedMFA(ctx, db, o, n); err != nil {
		return n, fmt.Errorf("seed tenant %s: %w", o.Slug, err)
	}
	return n, nil
}

// nationalIDs are the demo patients' national ID numbers, fictitious:
// Ayşe's T.C. Kimlik No passes the number's checksum and belongs to nobody;
// Paul's SSN is the one the Cerner sample message sends in PID-19.
func nationalIDs(n Network) []models.PatientIdentifier {
	t, s := n.Tenant.ID, n.Tenant.Slug
	return []models.PatientIdentifier{
		{TenantID: t, PatientID: id(s, "patient", "ayse"), System: nationalid.SystemTCKimlik, Value: "10000000146", Type: "NI"},
		{TenantID: t, PatientID: id(s, "patient", "paul"), System: nationalid.SystemUSSSN, Value: "765894312", Type: "SS"},
	}
}

// NationalIDs returns the seeded national ID numbers by patient, for tests
// and the README's walk-through.
func NationalIDs(n Network) []models.PatientIdentifier { return nationalIDs(n) }

type doctor struct {
	name, title, specialty string
	facility               int
}

var doctors = []doctor{
	{"Dr. Elif Yılmaz", "Cardiologist", "cardiology", 0},
	{"Dr. Mehmet Kaya", "Dermatologist", "dermatology", 0},
	{"Dr. Zeynep Demir", "Family physician", "family", 0},
	{"Dr. Sarah Miller", "Cardiologist", "cardiology", 1},
	{"Dr. James Chen", "Dermatologist", "dermatology", 1},
	{"Dr. Maria Garcia", "Family physician", "family", 1},
}

func build(o Options) Network {
	s := o.Slug
	n := Network{Tenant: models.Tenant{ID: id(s, "tenant", s), Slug: s, Name: o.Name}}
	t := n.Tenant.ID
	n.Facilities = []models.Facility{
		{ID: id(s, "facility", "istanbul"), TenantID: t, Name: "Bosphorus Clinic", Address: "Barbaros Bulvarı 1, Beşiktaş", City: "Istanbul", Country: "TR", TimeZone: "Europe/Istanbul"},
		{ID: id(s, "facility", "newyork"), TenantID: t, Name: "Hudson Clinic", Address: "350 Hudson St", City: "New York", Country: "US", TimeZone: "America/New_York"},
	}
	for _, sp := range [][2]string{{"cardiology", "Cardiology"}, {"dermatology", "Dermatology"}, {"family", "Family medicine"}} {
		n.Specialties = append(n.Specialties, models.Specialty{ID: id(s, "specialty", sp[0]), TenantID: t, Code: sp[0], Name: sp[1]})
	}
	for _, d := range doctors {
		n.Practitioners = append(n.Practitioners, models.Practitioner{ID: id(s, "practitioner", d.name), TenantID: t, DisplayName: d.name, Title: d.title})
	}
	spec := func(code string) *uuid.UUID { u := id(s, "specialty", code); return &u }
	n.Types = []models.AppointmentType{
		{ID: id(s, "type", "family-visit"), TenantID: t, SpecialtyID: spec("family"), Code: "family-visit", Name: "Family medicine visit",
			DurationMinutes: 20, Mode: models.ModeInPerson, Currency: "USD", MinNoticeMin: 60, HorizonDays: 60,
			HoldMinutes: 15, FreeCancelHours: 24, CaptureAt: "after_visit"},
		{ID: id(s, "type", "cardiology-consult"), TenantID: t, SpecialtyID: spec("cardiology"), Code: "cardiology-consult", Name: "Cardiology consultation",
			DurationMinutes: 30, Mode: models.ModeInPerson, PriceMinor: 12000, Currency: "USD", BufferAfterMin: 10, MinNoticeMin: 120, HorizonDays: 60,
			HoldMinutes: 15, FreeCancelHours: 24, LateCancelFeeBps: 5000, NoShowFeeBps: 10000, CaptureAt: "check_in"},
		{ID: id(s, "type", "dermatology-video"), TenantID: t, SpecialtyID: spec("dermatology"), Code: "dermatology-video", Name: "Dermatology video visit",
			DurationMinutes: 15, Mode: models.ModeVideo, PriceMinor: 5000, Currency: "USD", MinNoticeMin: 30, HorizonDays: 30,
			HoldMinutes: 15, FreeCancelHours: 12, LateCancelFeeBps: 2500, NoShowFeeBps: 5000, CaptureAt: "after_visit"},
	}
	n.Patients = []models.Patient{
		{ID: id(s, "patient", "ayse"), TenantID: t, GivenName: "Ayşe", FamilyName: "Öztürk", Phone: "+90 555 000 0001"},
		{ID: id(s, "patient", "john"), TenantID: t, GivenName: "John", FamilyName: "Doe", Phone: "+1 212 555 0101"},
		// The patients of two of the public sample messages in
		// ../shared/cases/hl7, so that sending them files real results.
		{ID: id(s, "patient", "philip"), TenantID: t, GivenName: "Philip", FamilyName: "Johnson", BirthDate: date(2007, 5, 26), Phone: "+1 303 555 8889"},
		{ID: id(s, "patient", "paul"), TenantID: t, GivenName: "Paul", FamilyName: "Miller", BirthDate: date(2005, 7, 15), Phone: "+1 303 554 9936"},
		// Ayşe's son, a child without an account of his own: she books and
		// reads for him as his proxy (see care).
		{ID: id(s, "patient", "deniz"), TenantID: t, GivenName: "Deniz", FamilyName: "Öztürk", BirthDate: date(2016, 4, 12)},
	}
	n.LabPartners = []models.LabPartner{
		// The demo's own lab: HTTP partners use its key, and dev's MLLP
		// listener files messages from unknown facilities under it.
		{ID: id(s, "lab", "demo"), TenantID: t, Name: "Demo Reference Lab", KeyID: LabKeyID + labSuffix(s), KeyHash: keyHash(LabKey), Active: true},
		// Facilities of the sample messages, routed by MSH-4.
		{ID: id(s, "lab", "nist"), TenantID: t, Name: "EHR Facility (NIST sample)", KeyID: "nist" + labSuffix(s) + "x0001",
			KeyHash: keyHash(uuid.NewString()), SendingFacility: "2.16.840.1.113883.3.72.7.2", Active: true},
		{ID: id(s, "lab", "baseline"), TenantID: t, Name: "Baseline West MC (Cerner sample)", KeyID: "baseline" + labSuffix(s) + "x01",
			KeyHash: keyHash(uuid.NewString()), SendingFacility: "33D1234567", Active: true},
	}
	return n
}

func date(y int, m time.Month, d int) *time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return &t
}

// labSuffix keeps partner key IDs unique across demo tenants (key IDs are
// global, since a key finds its tenant); the demo tenant itself has none.
func labSuffix(slug string) string {
	if slug == "demo" {
		return ""
	}
	sum := sha256.Sum256([]byte(slug))
	return hex.EncodeToString(sum[:4])
}

func keyHash(key string) []byte {
	_, secret, _ := strings.Cut(key, ".")
	if secret == "" {
		secret = key
	}
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// labs seeds what lab results need: the partners, the identifiers the
// sample messages' patients and ordering doctors are known by, and the
// release rule (a doctor releases each result).
func labs(n Network) []any {
	t := n.Tenant.ID
	s := n.Tenant.Slug
	ids := []models.PatientIdentifier{
		{TenantID: t, PatientID: id(s, "patient", "philip"), System: "urn:oid:2.16.840.1.113883.19.3.2.1", Value: "9817566735", Type: "MR"},
		{TenantID: t, PatientID: id(s, "patient", "paul"), System: "Baseline West MC", Value: "9339683996", Type: "MR"},
		// The FHIR sample bundle names its patient by a reference on the
		// sender's server; here that is John Doe.
		{TenantID: t, PatientID: id(s, "patient", "john"), System: "urn:ietf:rfc:3986", Value: "https://example.com/base/Patient/example"},
	}
	// Every sample message's ordering provider is Dr. Maria Garcia here.
	garcia := id(s, "practitioner", "Dr. Maria Garcia")
	docs := []models.PractitionerIdentifier{
		{TenantID: t, PractitionerID: garcia, System: "urn:oid:2.16.840.1.113883.19.4.6", Value: "1234"},
		{TenantID: t, PractitionerID: garcia, System: "Baseline West MC", Value: "Harrison , Kyle"},
		{TenantID: t, PractitionerID: garcia, System: "", Value: "00002"},
	}
	settings := models.LabSettings{TenantID: t, ReleaseRule: models.ReleaseAfterReview, ReleaseDays: 3}
	return []any{&n.LabPartners, &ids, &docs, &settings}
}

func roles(s string, n Network) *[]models.PractitionerRole {
	var out []models.PractitionerRole
	for i, d := range doctors {
		p := n.Practitioners[i]
		out = append(out, models.PractitionerRole{ID: id(s, "role", d.name), TenantID: p.TenantID, PractitionerID: p.ID,
			FacilityID: n.Facilities[d.facility].ID, SpecialtyID: id(s, "specialty", d.specialty), Active: true})
	}
	return &out
}

// rules gives every doctor weekday hours 09:00–17:00 with a lunch break,
// and the family doctors Saturday mornings, valid for RuleDays from Now.
// The rule IDs carry the start date, so seeding on a later day adds the
// next month's rules beside the old ones instead of stretching them.
func rules(o Options, n Network) *[]models.ScheduleRule {
	from := time.Date(o.Now.Year(), o.Now.Month(), o.Now.Day(), 0, 0, 0, 0, time.UTC)
	until := from.AddDate(0, 0, RuleDays)
	var out []models.ScheduleRule
	add := func(p models.Practitioner, f uuid.UUID, wd, start, end int, brk bool) {
		key := fmt.Sprintf("%s/%s/%d/%d/%v", p.DisplayName, from.Format(time.DateOnly), wd, start, brk)
		out = append(out, models.ScheduleRule{ID: id(o.Slug, "rule", key), TenantID: p.TenantID, PractitionerID: p.ID, FacilityID: f,
			Weekday: wd, StartMinute: start, EndMinute: end, IsBreak: brk, ValidFrom: &from, ValidUntil: &until})
	}
	for i, d := range doctors {
		p, f := n.Practitioners[i], n.Facilities[d.facility].ID
		for wd := 1; wd <= 5; wd++ {
			add(p, f, wd, 9*60, 17*60, false)
			add(p, f, wd, 12*60, 13*60, true)
		}
		if d.specialty == "family" {
			add(p, f, 6, 10*60, 14*60, false)
		}
	}
	return &out
}

// patientLogins are the seeded patients' e-mail names, in Patients order.
var patientLogins = []string{"ayse", "john", "philip", "paul"}

func users(s string, n Network, hash string) *[]models.User {
	t := n.Tenant.ID
	u := func(email string, role models.Role) models.User {
		// Demo addresses receive no mail, so they are seeded verified.
		verified := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		return models.User{ID: id(s, "user", email), TenantID: t, Email: email, PasswordHash: hash, Role: role, EmailVerifiedAt: &verified}
	}
	var out []models.User
	for i := range patientLogins {
		email := patientLogins[i] + "@" + s + ".carebook.test"
		x := u(email, models.RolePatient)
		x.PatientID = &n.Patients[i].ID
		out = append(out, x)
	}
	for i := range doctors {
		x := u(fmt.Sprintf("doctor%d@%s.carebook.test", i+1, s), models.RoleDoctor)
		x.PractitionerID = &n.Practitioners[i].ID
		out = append(out, x)
	}
	for i, f := range []string{"istanbul", "newyork"} {
		x := u("staff."+f+"@"+s+".carebook.test", models.RoleStaff)
		x.FacilityID = &n.Facilities[i].ID
		out = append(out, x)
	}
	out = append(out, u("billing@"+s+".carebook.test", models.RoleBilling), u("admin@"+s+".carebook.test", models.RoleAdmin))
	return &out
}

// Logins lists the seeded accounts of a tenant, for printing.
func Logins(slug string) []Login {
	d := "@" + slug + ".carebook.test"
	out := []Login{
		{"ayse" + d, models.RolePatient, "patient Ayşe Öztürk, proxy (parent) of her son Deniz, who has no account"},
		{"john" + d, models.RolePatient, "patient John Doe"},
		{"philip" + d, models.RolePatient, "patient Philip Johnson (the NIST sample lab message)"},
		{"paul" + d, models.RolePatient, "patient Paul Miller (the Cerner sample lab message)"},
	}
	for i, doc := range doctors {
		out = append(out, Login{fmt.Sprintf("doctor%d%s", i+1, d), models.RoleDoctor, doc.name + ", " + doc.title})
	}
	return append(out,
		Login{"staff.istanbul" + d, models.RoleStaff, "front desk, Bosphorus Clinic (Istanbul)"},
		Login{"staff.newyork" + d, models.RoleStaff, "front desk, Hudson Clinic (New York)"},
		Login{"billing" + d, models.RoleBilling, "billing"},
		Login{"admin" + d, models.RoleAdmin, "tenant admin"},
	)
}

// care seeds one of each way beyond a visit that reaches a patient's
// record: Ayşe acts for her son Deniz (a parent's relation, checked at
// the Istanbul desk, until his 18th birthday), and Philip Johnson is
// referred to Dr. Sarah Miller (doctor4) by the New York desk, so she
// reads his results without having seen him.
func care(o Options, n Network) []any {
	t, s := n.Tenant.ID, n.Tenant.Slug
	from := time.Date(o.Now.Year(), o.Now.Month(), o.Now.Day(), 0, 0, 0, 0, time.UTC)
	proxies := []models.ProxyRelation{{ID: id(s, "proxy", "ayse/deniz"), TenantID: t, ProxyPatientID: id(s, "patient", "ayse"),
		PatientID: id(s, "patient", "deniz"), Kind: "parent", VerifiedBy: id(s, "user", "staff.istanbul@"+s+".carebook.test"),
		ValidFrom: from, ValidUntil: date(2034, 4, 12)}}
	assignments := []models.CareAssignment{{ID: id(s, "care", "philip/Dr. Sarah Miller"), TenantID: t,
		PractitionerID: id(s, "practitioner", "Dr. Sarah Miller"), PatientID: id(s, "patient", "philip"), Reason: "referral",
		AssignedBy: id(s, "user", "staff.newyork@"+s+".carebook.test"), ValidFrom: from}}
	return []any{&proxies, &assignments}
}

// notices seeds version 1 of the privacy notice and the KVKK clarification
// text in Turkish and English. The texts are placeholders that say what
// the real ones must cover; a clinic network publishes its own.
func notices(n Network) *[]models.Notice {
	t, slug := n.Tenant.ID, n.Tenant.Slug
	text := map[string][2]string{
		"privacy/en":       {"Privacy notice", "How " + n.Tenant.Name + " processes your personal and health data, for which purposes, on which legal grounds, for how long, with whom it is shared, and how to exercise your rights (access, correction, erasure, objection, portability)."},
		"privacy/tr":       {"Gizlilik bildirimi", n.Tenant.Name + " kişisel ve sağlık verilerinizi hangi amaçlarla, hangi hukuki sebeplere dayanarak, ne kadar süreyle işlediği, kimlerle paylaştığı ve haklarınızı nasıl kullanabileceğiniz."},
		"clarification/en": {"Clarification text (KVKK art. 10)", "The data controller, the purposes of processing, to whom and why data may be transferred, how it is collected and on which legal ground, and your rights under article 11 of KVKK."},
		"clarification/tr": {"Aydınlatma metni (KVKK md. 10)", "Veri sorumlusunun kimliği, kişisel verilerin hangi amaçla işleneceği, kimlere ve hangi amaçla aktarılabileceği, toplama yöntemi ve hukuki sebebi ile KVKK'nın 11. maddesinde sayılan haklarınız."},
	}
	var out []models.Notice
	for _, kind := range []string{"privacy", "clarification"} {
		for _, lang := range []string{"en", "tr"} {
			tt := text[kind+"/"+lang]
			out = append(out, models.Notice{ID: id(slug, "notice", kind+"/"+lang+"/1"), TenantID: t, Kind: kind, Language: lang,
				Version: 1, Title: tt[0], Body: tt[1], PublishedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
		}
	}
	return &out
}
