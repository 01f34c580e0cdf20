package api_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/nationalid"
	"github.com/carebook/carebook/payments/accounts"
	"github.com/carebook/carebook/workflows"
)

// cernerBySSN is the Cerner sample message under a fresh MSH-10 whose
// PID-3 names the patient by the SSN the message carries in PID-19, with
// the given assigning authority, and by nothing else.
func cernerBySSN(t *testing.T, authority string) ([]byte, string) {
	t.Helper()
	raw := sharedCase(t, "hl7", cernerFile)
	ssn := hl7Field(t, raw, "PID", 19).Value()
	if ssn != "765894312" {
		t.Fatalf("the Cerner sample's PID-19 is %q; the demo seeds Paul's SSN as 765894312", ssn)
	}
	id := freshID("ssn")
	return withFields(t, raw, fieldEdit{"MSH", 10, id}, fieldEdit{"PID", 3, ssn + "^^^" + authority + "^SS"}), id
}

// dropPaulsMRN leaves Paul known by his national ID alone.
func (st *stack) dropPaulsMRN(t *testing.T) {
	t.Helper()
	if err := st.Admin.Exec("DELETE FROM patient_identifiers WHERE tenant_id = ? AND patient_id = ? AND value IS NOT NULL",
		st.Demo.Tenant.ID, st.paul()).Error; err != nil {
		t.Fatal(err)
	}
}

func TestLabMatchingFindsPatientsThroughTheBlindIndex(t *testing.T) {
	st := newStack(t)
	st.dropPaulsMRN(t)
	demoKey := demo.LabKeyFor("demo")

	t.Run("SSN under the SSA's OID files under Paul", func(t *testing.T) {
		raw, id := cernerBySSN(t, "SSA&2.16.840.1.113883.4.1&ISO")
		if r := st.postLab("hl7", demoKey, raw); r.Status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.Status, r.Raw)
		}
		m := st.settled(t, st.Demo.Tenant.ID, "hl7v2", id)
		eqf(t, "match", m.Match, workflows.LabMatched)
		if m.PatientID == nil || *m.PatientID != st.paul() {
			t.Fatalf("filed under %v, want Paul", m.PatientID)
		}
	})

	t.Run("the same number in another tenant matches nobody there", func(t *testing.T) {
		if err := st.Admin.Exec("DELETE FROM patient_identifiers WHERE tenant_id = ? AND value IS NOT NULL", st.Other.Tenant.ID).Error; err != nil {
			t.Fatal(err)
		}
		if err := st.Admin.Exec("DELETE FROM patient_identifiers WHERE tenant_id = ? AND system = ?", st.Other.Tenant.ID, nationalid.SystemUSSSN).Error; err != nil {
			t.Fatal(err)
		}
		raw, id := cernerBySSN(t, "SSA&2.16.840.1.113883.4.1&ISO")
		if r := st.postLab("hl7", demo.LabKeyFor("harbor"), raw); r.Status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.Status, r.Raw)
		}
		m := st.settled(t, st.Other.Tenant.ID, "hl7v2", id)
		eqf(t, "harbor match", m.Match, workflows.LabUnmatched)
	})

	t.Run("an SSN under an unknown authority waits for staff, who see Paul as a candidate", func(t *testing.T) {
		raw, id := cernerBySSN(t, "SOMEWHERE")
		if r := st.postLab("hl7", demoKey, raw); r.Status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.Status, r.Raw)
		}
		m := st.settled(t, st.Demo.Tenant.ID, "hl7v2", id)
		eqf(t, "match", m.Match, workflows.LabUnmatched)
		staff := st.login("demo", "staff.newyork@demo.carebook.test")
		r := st.do("GET", "/v1/lab-messages/"+m.ID.String(), staff, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET: %d %s", r.Status, r.Raw)
		}
		sent, _ := r.Body["sent_patient"].(map[string]any)
		cands, _ := sent["candidates"].([]any)
		found := false
		for _, c := range cands {
			c := c.(map[string]any)
			if c["patient_id"] == st.paul().String() && c["why"] == "identifier" {
				found = true
			}
		}
		if !found {
			t.Errorf("candidates %v, want Paul by identifier", cands)
		}
	})
}

// hexBytea matches a bytea value as a row's text shows it.
var hexBytea = regexp.MustCompile(`\\+x[0-9a-f]*`)

// TestRawDatabaseHoldsNoNationalIDOrProviderSecret reads every column of
// every table as text with the owner's connection, as a dump would, after
// national IDs were seeded and matched and the Stripe secrets saved.
func TestRawDatabaseHoldsNoNationalIDOrProviderSecret(t *testing.T) {
	st := newStack(t)
	st.dropPaulsMRN(t)
	raw, id := cernerBySSN(t, "SSA&2.16.840.1.113883.4.1&ISO")
	if r := st.postLab("hl7", demo.LabKeyFor("demo"), raw); r.Status != http.StatusAccepted {
		t.Fatalf("POST: %d %s", r.Status, r.Raw)
	}
	if m := st.settled(t, st.Demo.Tenant.ID, "hl7v2", id); m.Match != workflows.LabMatched {
		t.Fatalf("the message did not match: %s", m.Match)
	}
	// A signed clinical note and a draft, each with a phrase found nowhere
	// else.
	const notePhrase, draftPhrase = "suspected porphyria cutanea tarda", "query hemochromatosis workup"
	miller := st.login("demo", millerLogin)
	noteID := st.signedNote(t, miller, st.philip(), "Blistering on sun-exposed skin; "+notePhrase+".")
	if r := st.do("POST", "/v1/patients/"+st.philip().String()+"/notes", miller, map[string]any{"kind": "progress", "body": draftPhrase}); r.Status != http.StatusCreated {
		t.Fatalf("draft: %d %s", r.Status, r.Raw)
	}
	// A message thread: its subject and bodies are sealed too.
	ayse := st.login("demo", "ayse@demo.carebook.test")
	st.bookWith(t, ayse, uuid.Nil)
	st.writeMessages(t, ayse)

	var tables []string
	if err := st.Admin.Raw(`SELECT quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	secrets := []string{"sk_test_123", testWebhookSecret}
	for _, n := range demo.NationalIDs(st.Demo) {
		secrets = append(secrets, n.Value)
	}
	secrets = append(secrets, "765-89-4312", notePhrase, draftPhrase, "porphyria", "hemochromatosis")
	secrets = append(secrets, messagePhrases...)
	rows := 0
	for _, table := range tables {
		var texts []string
		// Every column as text, bytea as Postgres prints it (hex); the
		// sealed columns' bytes themselves are searched below.
		if err := st.Admin.Raw("SELECT t::text FROM " + table + " t").Scan(&texts).Error; err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		for _, s := range texts {
			rows++
			// Bytea prints as hex, where a ciphertext's header and a
			// random nonce can spell a number by chance (01 00000001 46…
			// reads 10000000146): the bytes are searched as bytes below.
			s = hexBytea.ReplaceAllString(s, "")
			for _, secret := range secrets {
				if strings.Contains(s, secret) {
					t.Errorf("table %s holds %q in the clear", table, secret)
				}
			}
		}
	}
	// Every bytea column's bytes, the sealed ones among them.
	var byteaCols []struct{ Table, Column string }
	if err := st.Admin.Raw(`SELECT quote_ident(table_name) AS "table", quote_ident(column_name) AS "column" FROM information_schema.columns
		WHERE table_schema = 'public' AND data_type = 'bytea' ORDER BY 1, 2`).Scan(&byteaCols).Error; err != nil {
		t.Fatal(err)
	}
	var byteaText []string
	for _, c := range byteaCols {
		var vals []string
		if err := st.Admin.Raw("SELECT encode(" + c.Column + ", 'escape') FROM " + c.Table + " WHERE " + c.Column + " IS NOT NULL").Scan(&vals).Error; err != nil {
			t.Fatalf("%s.%s: %v", c.Table, c.Column, err)
		}
		byteaText = append(byteaText, vals...)
	}
	for _, s := range byteaText {
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("a sealed column holds %q in its bytes", secret)
			}
		}
	}
	if rows < 100 || len(byteaText) < 5 {
		t.Fatalf("read %d rows and %d sealed values: the dump missed the data", rows, len(byteaText))
	}
	// The values are there, sealed: the keyring opens them.
	s, err := st.Server.Accounts.Load(context.Background(), st.Demo.Tenant.ID)
	if err != nil || s.SecretKey != "sk_test_123" || s.WebhookSecret != testWebhookSecret {
		t.Fatalf("settings read back: %+v, %v", s, err)
	}
	if r := st.do("GET", "/v1/notes/"+noteID, miller, nil); !strings.Contains(r.str("body"), notePhrase) {
		t.Fatalf("the note read back: %d %s", r.Status, r.Raw)
	}
}

// TestSealedValuesMovedBetweenRowsDoNotOpen: a superuser who copies one
// row's ciphertext into another (or another tenant's) gets an error, never
// the other row's value.
func TestSealedValuesMovedBetweenRowsDoNotOpen(t *testing.T) {
	st := newStack(t)
	ctx := context.Background()
	demoT, harborT := st.Demo.Tenant.ID, st.Other.Tenant.ID
	accts := &accounts.Accounts{DB: st.App, Keys: st.Keys}
	if err := accts.Save(ctx, st.App, harborT, accounts.Settings{Provider: "stripe", SecretKey: "sk_test_harbor", WebhookSecret: "whsec_harbor"}); err != nil {
		t.Fatal(err)
	}
	fresh := func() *accounts.Accounts {
		return &accounts.Accounts{DB: st.App, Keys: keyring.New(st.App, st.Keys.KEK)}
	}
	if s, err := fresh().Load(ctx, harborT); err != nil || s.SecretKey != "sk_test_harbor" {
		t.Fatalf("harbor before: %+v, %v", s, err)
	}
	tests := []struct {
		name, sql string
		args      []any
		tenant    uuid.UUID
	}{
		{"demo's Stripe key in harbor's row",
			"UPDATE tenant_payment_settings SET stripe_secret_key_enc = (SELECT stripe_secret_key_enc FROM tenant_payment_settings WHERE tenant_id = ?) WHERE tenant_id = ?",
			[]any{demoT, harborT}, harborT},
		{"the Stripe key in the webhook secret's column",
			"UPDATE tenant_payment_settings SET webhook_secret_enc = stripe_secret_key_enc WHERE tenant_id = ?",
			[]any{demoT}, demoT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := st.Admin.Exec(tt.sql, tt.args...).Error; err != nil {
				t.Fatal(err)
			}
			s, err := fresh().Load(ctx, tt.tenant)
			if err == nil {
				t.Fatalf("moved secret opened: %+v", s)
			}
			if strings.Contains(err.Error(), "sk_test") {
				t.Errorf("the error names a secret: %v", err)
			}
		})
	}

	t.Run("Paul's SSN in Ayşe's row", func(t *testing.T) {
		if err := st.Admin.Exec(`UPDATE patient_identifiers SET value_sealed =
			(SELECT value_sealed FROM patient_identifiers WHERE tenant_id = ? AND patient_id = ? AND value_sealed IS NOT NULL)
			WHERE tenant_id = ? AND patient_id = ? AND value_sealed IS NOT NULL`, demoT, st.paul(), demoT, st.ayse()).Error; err != nil {
			t.Fatal(err)
		}
		err := models.InTenant(ctx, st.App, demoT, func(tx *gorm.DB) error {
			got, err := nationalid.Reveal(ctx, tx, keyring.New(st.App, st.Keys.KEK), demoT, st.ayse())
			if err == nil {
				t.Errorf("opened as Ayşe's: %v", got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestKeyRotationOverHTTP: an admin starts the rotation; the workflow
// re-encrypts every sealed value of the tenant and retires the old key,
// and every value still reads; the other tenant is untouched.
func TestKeyRotationOverHTTP(t *testing.T) {
	st := newStack(t)
	ctx := context.Background()
	demoT := st.Demo.Tenant.ID

	if r := st.do("POST", "/v1/admin/keys/rotate", st.login("demo", "billing@demo.carebook.test"), nil); r.Status != http.StatusForbidden {
		t.Fatalf("billing: %d, want 403", r.Status)
	}
	// A signed clinical note about Philip, sealed under version 1.
	miller := st.login("demo", millerLogin)
	noteID := st.signedNote(t, miller, st.philip(), "Palpitations at rest; Holter monitor for 48 hours.")
	admin := st.login("demo", "admin@demo.carebook.test")
	r := st.do("POST", "/v1/admin/keys/rotate", admin, nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("rotate: %d %s", r.Status, r.Raw)
	}
	var totpSecrets int64
	st.Admin.Raw("SELECT count(*) FROM user_mfa WHERE tenant_id = ? AND totp_secret_enc IS NOT NULL", demoT).Scan(&totpSecrets)
	if totpSecrets == 0 {
		t.Fatal("the demo staff have no TOTP secrets to rotate")
	}
	wid := r.str("workflow_id")
	eqf(t, "workflow_id", wid, workflows.KeyRotationWorkflowID(demoT.String()))
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var res workflows.KeyRotationResult
	if err := st.Temporal.GetWorkflow(wctx, wid, "").Get(wctx, &res); err != nil {
		t.Fatalf("rotation: %v", err)
	}
	eqf(t, "new version", res.Version, uint32(2))
	if len(res.Retired) != 1 || res.Retired[0] != 1 {
		t.Errorf("retired %v, want [1]", res.Retired)
	}
	// Demo's Stripe key and webhook secret, Ayşe's and Paul's national IDs,
	// the staff's TOTP secrets and Dr. Miller's note.
	eqf(t, "re-encrypted", res.Reencrypted, 5+int(totpSecrets))

	count := func(tenant uuid.UUID, version byte) int64 {
		var n int64
		st.Admin.Raw(`SELECT (SELECT count(*) FROM patient_identifiers WHERE tenant_id = ? AND get_byte(value_sealed, 4) = ?)
			+ (SELECT count(*) FROM tenant_payment_settings WHERE tenant_id = ? AND get_byte(stripe_secret_key_enc, 4) = ?)
			+ (SELECT count(*) FROM tenant_payment_settings WHERE tenant_id = ? AND get_byte(webhook_secret_enc, 4) = ?)
			+ (SELECT count(*) FROM user_mfa WHERE tenant_id = ? AND get_byte(totp_secret_enc, 4) = ?)
			+ (SELECT count(*) FROM clinical_notes WHERE tenant_id = ? AND get_byte(body_sealed, 4) = ?)`,
			tenant, version, tenant, version, tenant, version, tenant, version, tenant, version).Scan(&n)
		return n
	}
	eqf(t, "demo values under version 1", count(demoT, 1), int64(0))
	eqf(t, "demo values under version 2", count(demoT, 2), 5+totpSecrets)
	// The signed note, re-sealed under the new key, reads as it was signed
	// (the schema lets a signed note's body change only to another key
	// version).
	if n := st.do("GET", "/v1/notes/"+noteID, st.login("demo", philipLogin), nil); n.str("body") != "Palpitations at rest; Holter monitor for 48 hours." || n.str("status") != "signed" {
		t.Errorf("the note after rotation: %d %s", n.Status, n.Raw)
	}
	// Harbor's two national IDs and its staff's TOTP secrets stay as they were.
	var harborAll int64
	st.Admin.Raw(`SELECT (SELECT count(*) FROM patient_identifiers WHERE tenant_id = ? AND value_sealed IS NOT NULL)
		+ (SELECT count(*) FROM user_mfa WHERE tenant_id = ? AND totp_secret_enc IS NOT NULL)`, st.Other.Tenant.ID, st.Other.Tenant.ID).Scan(&harborAll)
	eqf(t, "harbor values under version 1", count(st.Other.Tenant.ID, 1), harborAll)
	if harborAll < 3 {
		t.Errorf("harbor holds %d sealed values; want its national IDs and TOTP secrets", harborAll)
	}
	// A re-encrypted TOTP secret still opens: a doctor signs in with MFA.
	if tok := st.login("demo", "doctor1@demo.carebook.test"); tok == "" {
		t.Fatal("no sign-in after rotation")
	}
	var states []string
	st.Admin.Raw("SELECT version || ':' || state FROM tenant_keys WHERE tenant_id = ? AND kind = 'data' ORDER BY version", demoT).Scan(&states)
	eqf(t, "demo data keys", strings.Join(states, " "), "1:retired 2:active")

	// A process that starts now reads everything.
	fresh := keyring.New(st.App, st.Keys.KEK)
	s, err := (&accounts.Accounts{DB: st.App, Keys: fresh}).Load(ctx, demoT)
	if err != nil || s.SecretKey != "sk_test_123" {
		t.Fatalf("settings after rotation: %+v, %v", s, err)
	}
	err = models.InTenant(ctx, st.App, demoT, func(tx *gorm.DB) error {
		ids, err := nationalid.Find(ctx, tx, fresh, demoT, nationalid.SystemUSSSN, "765894312")
		if err != nil {
			return err
		}
		if len(ids) != 1 || ids[0] != st.paul() {
			t.Errorf("blind index after rotation found %v", ids)
		}
		got, err := nationalid.Reveal(ctx, tx, fresh, demoT, st.paul())
		if err != nil {
			return err
		}
		eqf(t, "Paul's SSN", got[nationalid.SystemUSSSN], "765894312")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The history carries IDs and numbers, never a value.
	iter := st.Temporal.GetWorkflowHistory(ctx, wid, "", false, 0)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		text := ev.String()
		for _, secret := range []string{"765894312", "10000000146", "sk_test_123", testWebhookSecret, "Holter"} {
			if strings.Contains(text, secret) {
				t.Errorf("history event %d holds %q", ev.GetEventId(), secret)
			}
		}
	}

	// A second rotation makes version 3 and retires 2.
	r = st.do("POST", "/v1/admin/keys/rotate", admin, nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("second rotate: %d %s", r.Status, r.Raw)
	}
	var res2 workflows.KeyRotationResult
	if err := st.Temporal.GetWorkflow(wctx, wid, "").Get(wctx, &res2); err != nil {
		t.Fatalf("second rotation: %v", err)
	}
	eqf(t, "second version", res2.Version, uint32(3))
	eqf(t, "demo values under version 3", count(demoT, 3), 5+totpSecrets)
}
