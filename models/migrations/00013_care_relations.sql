-- +goose Up
-- Who may reach a patient's record besides the patient and the doctors
-- they have seen: doctors assigned to their care by the clinic (a care
-- assignment), and other patients who act for them (a proxy: a parent,
-- a guardian, a caregiver). Both are created and ended by staff or
-- admins; an ended row stays as the record of who could see what, when.
CREATE TABLE care_assignments (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    practitioner_id uuid NOT NULL,
    patient_id      uuid NOT NULL,
    reason          text NOT NULL CHECK (reason IN ('primary-care', 'referral', 'inpatient', 'cover', 'care-team')),
    assigned_by     uuid NOT NULL,
    valid_from      timestamptz NOT NULL,
    valid_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    ended_by        uuid,
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),
    FOREIGN KEY (tenant_id, practitioner_id) REFERENCES practitioners (tenant_id, id),
    CHECK (valid_until IS NULL OR valid_until > valid_from),
    CHECK ((ended_at IS NULL) = (ended_by IS NULL))
);
CREATE INDEX care_assignments_reach ON care_assignments (tenant_id, practitioner_id, patient_id) WHERE ended_at IS NULL;
CREATE INDEX care_assignments_patient ON care_assignments (tenant_id, patient_id);

CREATE TABLE proxy_relations (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    proxy_patient_id uuid NOT NULL,
    patient_id       uuid NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('parent', 'guardian', 'caregiver')),
    verified_by      uuid NOT NULL,
    valid_from       timestamptz NOT NULL,
    valid_until      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    ended_at         timestamptz,
    ended_by         uuid,
    FOREIGN KEY (tenant_id, proxy_patient_id) REFERENCES patients (tenant_id, id),
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),
    CHECK (proxy_patient_id <> patient_id),
    CHECK (valid_until IS NULL OR valid_until > valid_from),
    CHECK ((ended_at IS NULL) = (ended_by IS NULL))
);
CREATE INDEX proxy_relations_reach ON proxy_relations (tenant_id, proxy_patient_id, patient_id) WHERE ended_at IS NULL;
CREATE INDEX proxy_relations_patient ON proxy_relations (tenant_id, patient_id);

ALTER TABLE care_assignments ENABLE ROW LEVEL SECURITY;
ALTER TABLE care_assignments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON care_assignments
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
ALTER TABLE proxy_relations ENABLE ROW LEVEL SECURITY;
ALTER TABLE proxy_relations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON proxy_relations
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
-- The application adds rows and ends them; it never rewrites who was
-- given access, for what or since when.
GRANT SELECT, INSERT ON care_assignments, proxy_relations TO carebook_app;
GRANT UPDATE (ended_at, ended_by) ON care_assignments, proxy_relations TO carebook_app;

-- +goose Down
DROP TABLE proxy_relations;
DROP TABLE care_assignments;
