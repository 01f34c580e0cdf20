package keyring

// Purposes of the sealed columns: the Binding's Purpose and the blind
// index's. Changing one makes every value sealed under it unreadable.
const (
	PurposeStripeSecretKey = "tenant_payment_settings.stripe_secret_key"
	PurposeWebhookSecret   = "tenant_payment_settings.webhook_secret"
	PurposeNationalID      = "patient_identifiers.value"
	PurposeTOTPSecret      = "user_mfa.totp_secret"
	// PurposeOIDCClientSecret: a tenant's client secret at its identity
	// provider (one row per tenant, so the tenant is its row).
	PurposeOIDCClientSecret = "identity_providers.client_secret"
	PurposeClinicalNote     = "clinical_notes.body"
)

// The columns sealed today. A tenant's payment settings are one row per
// tenant, so the tenant (always bound) is their row. A national ID is bound
// to its patient and system, so it cannot be moved to another patient or
// passed off as another kind of number.
func init() {
	Register(Column{Name: "tenant_payment_settings.stripe_secret_key_enc", Table: "tenant_payment_settings",
		Sealed: "stripe_secret_key_enc", Purpose: PurposeStripeSecretKey})
	Register(Column{Name: "tenant_payment_settings.webhook_secret_enc", Table: "tenant_payment_settings",
		Sealed: "webhook_secret_enc", Purpose: PurposeWebhookSecret})
	Register(Column{Name: "patient_identifiers.value_sealed", Table: "patient_identifiers",
		Sealed: "value_sealed", Purpose: PurposeNationalID, Row: "patient_id::text || '|' || system"})
	// A user's TOTP secret, active or waiting for its first code.
	Register(Column{Name: "user_mfa.totp_secret_enc", Table: "user_mfa", Sealed: "totp_secret_enc", Purpose: PurposeTOTPSecret})
	Register(Column{Name: "user_mfa.pending_secret_enc", Table: "user_mfa", Sealed: "pending_secret_enc", Purpose: PurposeTOTPSecret})
	Register(Column{Name: "identity_providers.client_secret_enc", Table: "identity_providers",
		Sealed: "client_secret_enc", Purpose: PurposeOIDCClientSecret})
	// A clinical note's text, bound to its patient and its own row: a body
	// copied to another note, or the note to another patient, does not
	// open.
	Register(Column{Name: "clinical_notes.body_sealed", Table: "clinical_notes", Sealed: "body_sealed",
		Purpose: PurposeClinicalNote, Row: "patient_id::text || '|' || id::text"})
}

// NationalIDRow is the Binding's Row of a national ID: the same value as
// the Row expression registered for patient_identifiers.value_sealed.
func NationalIDRow(patient, system string) string { return patient + "|" + system }

// ClinicalNoteRow is the Binding's Row of a clinical note's body: the same
// value as the Row expression registered for clinical_notes.body_sealed.
func ClinicalNoteRow(patient, note string) string { return patient + "|" + note }
