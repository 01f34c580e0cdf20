-- +goose Up
-- Per-tenant keys. Each tenant has data-encryption keys (kind 'data'), one
-- active for new writes and older ones retiring while a rotation
-- re-encrypts their rows, and one blind-index key (kind 'index') that is
-- never rotated, so that equality lookups keep finding rows written under
-- any data key. Only wrapped keys are stored: kek_id names the
-- key-encryption key (a local key from configuration, or a KMS key) that
-- unwraps them, so the database and its backups alone open nothing.
--
-- The table is an ordinary tenant table under row security: the keyring
-- reads a tenant's keys inside that tenant's transaction like every other
-- tenant row, and a query that forgets its filter still sees one tenant's
-- keys only. Key material never leaves the row wrapped or not: even the
-- owner sees only ciphertext.
CREATE TABLE tenant_keys (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    kind        text NOT NULL CHECK (kind IN ('data', 'index')),
    version     integer NOT NULL CHECK (version > 0),
    wrapped     bytea NOT NULL,
    kek_id      text NOT NULL CHECK (kek_id <> ''),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retiring', 'retired')),
    -- The rotation (workflow run) that made this version, so that a
    -- retried first step finds its own key instead of making another.
    rotation_id text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    retiring_at timestamptz,
    retired_at  timestamptz,
    PRIMARY KEY (tenant_id, kind, version),
    CHECK (kind = 'data' OR (version = 1 AND state = 'active'))
);
CREATE UNIQUE INDEX tenant_keys_one_active ON tenant_keys (tenant_id, kind) WHERE state = 'active';

ALTER TABLE tenant_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_keys
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
-- Keys are added and change state; their material is never rewritten and
-- no row is deleted by the application.
GRANT SELECT, INSERT ON tenant_keys TO carebook_app;
GRANT UPDATE (state, retiring_at, retired_at) ON tenant_keys TO carebook_app;

-- National ID numbers (US SSN, Turkish T.C. Kimlik No) are kept sealed
-- under the tenant's data key in value_sealed, and found by value_index,
-- an HMAC of the normalised number under the tenant's index key. value is
-- NULL for them; other identifiers (MRNs, a FHIR server's patient URL)
-- stay in value as before. The last CHECK refuses a national ID in the
-- clear whatever code writes it.
ALTER TABLE patient_identifiers DROP CONSTRAINT patient_identifiers_pkey;
ALTER TABLE patient_identifiers ALTER COLUMN value DROP NOT NULL;
ALTER TABLE patient_identifiers
    ADD COLUMN value_sealed bytea,
    ADD COLUMN value_index bytea CHECK (length(value_index) = 32),
    ADD CONSTRAINT patient_identifiers_plain UNIQUE (tenant_id, system, value),
    ADD CONSTRAINT patient_identifiers_indexed UNIQUE (tenant_id, system, value_index),
    ADD CONSTRAINT patient_identifiers_one_form CHECK (
        (value IS NOT NULL AND value_sealed IS NULL AND value_index IS NULL)
        OR (value IS NULL AND value_sealed IS NOT NULL AND value_index IS NOT NULL)),
    ADD CONSTRAINT patient_identifiers_national_sealed CHECK (value IS NULL OR system NOT IN (
        'urn:oid:2.16.840.1.113883.4.1', 'http://hl7.org/fhir/sid/us-ssn',
        'urn:oid:2.16.792.1.56.5.2.1.1', 'urn:oid:2.16.792.1.56.5.2.1.1.1'));

-- +goose Down
ALTER TABLE patient_identifiers
    DROP CONSTRAINT patient_identifiers_national_sealed,
    DROP CONSTRAINT patient_identifiers_one_form,
    DROP CONSTRAINT patient_identifiers_indexed,
    DROP CONSTRAINT patient_identifiers_plain,
    DROP COLUMN value_index,
    DROP COLUMN value_sealed;
ALTER TABLE patient_identifiers ALTER COLUMN value SET NOT NULL;
ALTER TABLE patient_identifiers ADD PRIMARY KEY (tenant_id, system, value);
DROP TABLE tenant_keys;
