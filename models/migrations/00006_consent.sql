-- +goose Up
-- KVKK and GDPR: the notices a tenant shows (privacy notice and KVKK's
-- clarification text, "aydınlatma metni"), versioned per language, and the
-- consent ledger: every grant and withdrawal, per patient and purpose,
-- with the notice version it answered, when and through which channel.
-- The ledger is append-only for the application; a patient's consent to a
-- purpose is their latest entry for it.
CREATE TABLE notices (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    kind         text NOT NULL CHECK (kind IN ('privacy', 'clarification')),
    language     text NOT NULL CHECK (language IN ('tr', 'en')),
    version      integer NOT NULL CHECK (version >= 1),
    title        text NOT NULL,
    body         text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, kind, language, version),
    UNIQUE (tenant_id, id)
);

CREATE TABLE consents (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    patient_id  uuid NOT NULL,
    purpose     text NOT NULL CHECK (purpose IN ('health_data', 'sms_reminders', 'marketing')),
    granted     boolean NOT NULL,
    notice_id   uuid,
    channel     text NOT NULL CHECK (channel IN ('web', 'mobile', 'desk')),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    recorded_by uuid,
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),
    FOREIGN KEY (tenant_id, notice_id) REFERENCES notices (tenant_id, id)
);
CREATE INDEX consents_current ON consents (tenant_id, patient_id, purpose, recorded_at DESC);

-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['notices', 'consents'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant())', t);
        EXECUTE format('GRANT SELECT, INSERT ON %I TO carebook_app', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE consents, notices;
