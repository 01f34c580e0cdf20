-- +goose Up
-- Break-glass: a doctor opens a patient's record outside their normal
-- reach by stating a reason. The grant lasts a short window, the tenant's
-- privacy officers (admins) are alerted, and it waits in a review queue
-- until one of them reviews it.
CREATE TABLE break_glass_grants (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    user_id         uuid NOT NULL,
    practitioner_id uuid NOT NULL,
    patient_id      uuid NOT NULL,
    reason          text NOT NULL CHECK (length(btrim(reason)) >= 10),
    granted_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    reviewed_by     uuid,
    reviewed_at     timestamptz,
    review_note     text NOT NULL DEFAULT '',
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),
    FOREIGN KEY (tenant_id, practitioner_id) REFERENCES practitioners (tenant_id, id),
    CHECK (expires_at > granted_at)
);
CREATE INDEX break_glass_active ON break_glass_grants (tenant_id, practitioner_id, patient_id, expires_at);
CREATE INDEX break_glass_review ON break_glass_grants (tenant_id, granted_at) WHERE reviewed_at IS NULL;

ALTER TABLE break_glass_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE break_glass_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON break_glass_grants
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
-- The application may only add grants and record their review.
GRANT SELECT, INSERT ON break_glass_grants TO carebook_app;
GRANT UPDATE (reviewed_by, reviewed_at, review_note) ON break_glass_grants TO carebook_app;

-- +goose Down
DROP TABLE break_glass_grants;
