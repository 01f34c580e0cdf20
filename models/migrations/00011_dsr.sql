-- +goose Up
-- Data subject requests (GDPR articles 15, 17 and 20; KVKK article 11): a
-- patient's export of everything held about them, and erasure of what no
-- law requires to keep. Legal holds stop an erasure while litigation or an
-- investigation needs the record; retention settings say how long medical
-- and financial records must be kept in the tenant's jurisdiction.

-- One request, export or erasure, run by the workflow
-- dsr-<kind>:<tenant>:<id>. The row holds IDs and states only; the archive
-- of an export lives in the object store at archive_key.
CREATE TABLE dsr_requests (
    id                     uuid PRIMARY KEY,
    tenant_id              uuid NOT NULL REFERENCES tenants (id),
    patient_id             uuid NOT NULL,
    kind                   text NOT NULL CHECK (kind IN ('export', 'erasure')),
    requested_by           uuid NOT NULL,
    requested_role         text NOT NULL,
    status                 text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'refused', 'failed')),
    -- Why a request was refused or failed, as a stable code (legal-hold).
    outcome                text NOT NULL DEFAULT '',
    workflow_id            text NOT NULL,
    archive_key            text NOT NULL DEFAULT '',
    -- For an erasure, until when the pseudonymised records must be kept.
    medical_retained_until   date,
    financial_retained_until date,
    requested_at           timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    completed_at           timestamptz,
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),
    UNIQUE (tenant_id, id)
);
CREATE INDEX dsr_requests_patient ON dsr_requests (tenant_id, patient_id, requested_at);

-- A legal hold blocks erasure of a patient until an admin releases it.
CREATE TABLE legal_holds (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    patient_id     uuid NOT NULL,
    reason         text NOT NULL CHECK (length(btrim(reason)) >= 5),
    placed_by      uuid NOT NULL,
    placed_at      timestamptz NOT NULL DEFAULT now(),
    released_by    uuid,
    released_at    timestamptz,
    release_reason text NOT NULL DEFAULT '',
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id)
);
CREATE INDEX legal_holds_active ON legal_holds (tenant_id, patient_id) WHERE released_at IS NULL;

-- How long records must outlive an erasure request, per tenant. Without a
-- row the defaults in models.DefaultRetention apply.
CREATE TABLE retention_settings (
    tenant_id               uuid PRIMARY KEY REFERENCES tenants (id),
    jurisdiction            text NOT NULL CHECK (jurisdiction ~ '^[A-Z]{2}(-[A-Z0-9]{1,3})?$'),
    medical_records_years   integer NOT NULL CHECK (medical_records_years BETWEEN 1 AND 100),
    financial_records_years integer NOT NULL CHECK (financial_records_years BETWEEN 1 AND 100),
    updated_by              uuid,
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- When a patient was erased: the row stays (appointments, payments and
-- results refer to it) under a pseudonym.
ALTER TABLE patients ADD COLUMN erased_at timestamptz;

-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['dsr_requests', 'legal_holds', 'retention_settings'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant())', t);
        EXECUTE format('GRANT SELECT, INSERT ON %I TO carebook_app', t);
    END LOOP;
END
$$;
-- +goose StatementEnd
GRANT UPDATE ON dsr_requests, retention_settings TO carebook_app;
-- A hold is placed once and released once; its reason is not rewritten.
GRANT UPDATE (released_by, released_at, release_reason) ON legal_holds TO carebook_app;

-- +goose Down
ALTER TABLE patients DROP COLUMN erased_at;
DROP TABLE retention_settings, legal_holds, dsr_requests;
