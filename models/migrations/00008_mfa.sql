-- +goose Up
-- Multi-factor authentication: one TOTP enrolment per user and its
-- single-use recovery codes. The TOTP secret is kept sealed (the api's
-- SecretSealer; the database never sees it in the clear), the recovery
-- codes only as hashes.
CREATE TABLE user_mfa (
    user_id            uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    -- The active secret; NULL until an enrolment is confirmed.
    totp_secret_enc    bytea,
    enrolled_at        timestamptz,
    -- A secret handed out and not yet confirmed with a code from it.
    pending_secret_enc bytea,
    pending_at         timestamptz,
    -- The last TOTP step spent: a code from it or an earlier step is a
    -- replay and is refused.
    last_step          bigint NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((totp_secret_enc IS NULL) = (enrolled_at IS NULL))
);
CREATE INDEX user_mfa_tenant ON user_mfa (tenant_id);

CREATE TABLE mfa_recovery_codes (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Hex SHA-256 of the user's ID and the normalised code: the codes are
    -- random with 80 bits each, so a fast hash is not a weakness.
    code_hash  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);
CREATE INDEX mfa_recovery_codes_tenant ON mfa_recovery_codes (tenant_id);

ALTER TABLE user_mfa ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_mfa FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_mfa
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
ALTER TABLE mfa_recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE mfa_recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mfa_recovery_codes
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
-- Patients may turn MFA off and everyone may replace their codes, so the
-- application deletes here; it never rewrites a code's hash.
GRANT SELECT, INSERT, UPDATE, DELETE ON user_mfa TO carebook_app;
GRANT SELECT, INSERT, DELETE ON mfa_recovery_codes TO carebook_app;
GRANT UPDATE (used_at) ON mfa_recovery_codes TO carebook_app;

-- +goose Down
DROP TABLE mfa_recovery_codes;
DROP TABLE user_mfa;
