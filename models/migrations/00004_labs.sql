-- +goose Up
-- Lab results: the labs that send them, every message as received, the
-- reports and observations filed from them, the tenant's release rule, and
-- the audit trail of who read what.

-- Identifiers a patient is known by outside Carebook (a hospital MRN, a
-- national ID): system is the assigning authority as labs.Identifier
-- writes it ("urn:oid:..." or a namespace). Results are matched on these
-- and nothing else.
CREATE TABLE patient_identifiers (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    patient_id uuid NOT NULL,
    system     text NOT NULL,
    value      text NOT NULL CHECK (value <> ''),
    type       text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, system, value),
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id)
);
CREATE INDEX patient_identifiers_patient ON patient_identifiers (tenant_id, patient_id);

-- The same for practitioners, so that an ordering provider in a message
-- finds the doctor to tell.
CREATE TABLE practitioner_identifiers (
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    practitioner_id uuid NOT NULL,
    system          text NOT NULL,
    value           text NOT NULL CHECK (value <> ''),
    PRIMARY KEY (tenant_id, system, value),
    FOREIGN KEY (tenant_id, practitioner_id) REFERENCES practitioners (tenant_id, id)
);

-- A lab that sends results to one tenant. HTTP partners authenticate with
-- an API key "<key_id>.<secret>": key_id finds the row before the tenant is
-- known, key_hash is SHA-256 of the secret. MLLP messages are routed by
-- their sending facility (MSH-4) and, where one lab serves several tenants,
-- receiving facility (MSH-6); '' there matches any.
CREATE TABLE lab_partners (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    name               text NOT NULL,
    key_id             text NOT NULL UNIQUE CHECK (key_id ~ '^[a-z0-9]{8,32}$'),
    key_hash           bytea NOT NULL CHECK (length(key_hash) = 32),
    sending_facility   text NOT NULL DEFAULT '',
    receiving_facility text NOT NULL DEFAULT '',
    -- The system assumed for a patient identifier sent without an
    -- assigning authority; '' means such identifiers never match.
    default_id_system  text NOT NULL DEFAULT '',
    active             boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX lab_partners_route ON lab_partners (sending_facility, receiving_facility)
    WHERE sending_facility <> '' AND active;

-- The tenant's release rule: results reach patients at once, only after a
-- doctor releases them, or release_days after they are filed (a doctor may
-- release earlier).
CREATE TABLE lab_settings (
    tenant_id    uuid PRIMARY KEY REFERENCES tenants (id),
    release_rule text NOT NULL DEFAULT 'after_review'
        CHECK (release_rule IN ('immediate', 'after_review', 'after_days')),
    release_days integer NOT NULL DEFAULT 3 CHECK (release_days BETWEEN 0 AND 60)
);

-- Every message received, once per sender's message ID. The raw bytes live
-- in the object store at raw_key; nothing here copies their content.
-- status: received (stored, workflow started), filed, unmatched (waiting
-- for staff), rejected (unreadable; reason says why), dismissed (staff
-- closed an unmatched message).
CREATE TABLE lab_messages (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    partner_id    uuid NOT NULL,
    format        text NOT NULL CHECK (format IN ('hl7v2', 'fhir')),
    transport     text NOT NULL CHECK (transport IN ('mllp', 'http')),
    message_id    text NOT NULL CHECK (message_id <> ''),
    raw_key       text NOT NULL,
    -- SHA-256 of the message, trailing line ends and blanks aside: how a
    -- resend is told from a different message under the same ID.
    content_sha256 text NOT NULL,
    size          integer NOT NULL,
    workflow_id   text NOT NULL,
    status        text NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'filed', 'unmatched', 'rejected', 'dismissed')),
    reason        text NOT NULL DEFAULT '',
    match         text NOT NULL DEFAULT '' CHECK (match IN ('', 'matched', 'unmatched', 'ambiguous', 'assigned')),
    patient_id    uuid,
    resolved_by   uuid,
    resolved_at   timestamptz,
    received_at   timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    FOREIGN KEY (tenant_id, partner_id) REFERENCES lab_partners (tenant_id, id),
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),
    -- A sender's message IDs are its own: two labs may both send "1001".
    UNIQUE (tenant_id, partner_id, format, message_id),
    UNIQUE (tenant_id, id)
);
CREATE INDEX lab_messages_queue ON lab_messages (tenant_id, status, received_at);

-- One version of a report. A report is the same lab's report_key for the
-- same patient: a later message about it (a correction) adds a version and
-- points the earlier one at it, so only the newest result has
-- superseded_by NULL; a message issued before the current version is kept
-- as a version that is born superseded. An order number reused for another
-- patient, or by another lab, is another report: a message can never move
-- a result to another patient. Review and release belong to a version.
CREATE TABLE lab_reports (
    id                       uuid PRIMARY KEY,
    tenant_id                uuid NOT NULL REFERENCES tenants (id),
    message_id               uuid NOT NULL,
    partner_id               uuid NOT NULL,
    patient_id               uuid NOT NULL,
    report_key               text NOT NULL,
    version                  integer NOT NULL CHECK (version >= 1),
    superseded_by            uuid,
    status                   text NOT NULL,
    code_system              text NOT NULL DEFAULT '',
    code                     text NOT NULL DEFAULT '',
    display                  text NOT NULL DEFAULT '',
    placer_number            text NOT NULL DEFAULT '',
    filler_number            text NOT NULL DEFAULT '',
    effective_at             timestamptz,
    issued_at                timestamptz,
    ordering_practitioner_id uuid,
    severity                 text NOT NULL CHECK (severity IN ('normal', 'abnormal', 'critical')),
    notes                    text NOT NULL DEFAULT '',
    conclusion               text NOT NULL DEFAULT '',
    pdf_key                  text NOT NULL DEFAULT '',
    reviewed_by              uuid,
    reviewed_at              timestamptz,
    review_comment           text NOT NULL DEFAULT '',
    release_rule             text NOT NULL,
    release_due_at           timestamptz,
    released_at              timestamptz,
    released_by              uuid,
    filed_at                 timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, message_id) REFERENCES lab_messages (tenant_id, id),
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),
    FOREIGN KEY (tenant_id, ordering_practitioner_id) REFERENCES practitioners (tenant_id, id),
    FOREIGN KEY (tenant_id, partner_id) REFERENCES lab_partners (tenant_id, id),
    UNIQUE (tenant_id, partner_id, patient_id, report_key, version),
    UNIQUE (tenant_id, message_id, report_key),
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX lab_reports_current ON lab_reports (tenant_id, partner_id, patient_id, report_key)
    WHERE superseded_by IS NULL;
CREATE INDEX lab_reports_patient ON lab_reports (tenant_id, patient_id, filed_at);
CREATE INDEX lab_reports_review ON lab_reports (tenant_id, ordering_practitioner_id) WHERE reviewed_at IS NULL;

-- The observations of one report version, in the order sent.
CREATE TABLE lab_observations (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    report_id       uuid NOT NULL,
    patient_id      uuid NOT NULL,
    seq             integer NOT NULL,
    obs_key         text NOT NULL,
    code_system     text NOT NULL DEFAULT '',
    code            text NOT NULL DEFAULT '',
    display         text NOT NULL DEFAULT '',
    status          text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('quantity', 'range', 'ratio', 'coded', 'text', 'none')),
    value_text      text NOT NULL DEFAULT '',
    value_number    double precision,
    value_number2   double precision,
    comparator      text NOT NULL DEFAULT '' CHECK (comparator IN ('', '<', '<=', '>', '>=', '=', '<>')),
    unit            text NOT NULL DEFAULT '',
    coded_system    text NOT NULL DEFAULT '',
    coded_code      text NOT NULL DEFAULT '',
    coded_display   text NOT NULL DEFAULT '',
    reference_range text NOT NULL DEFAULT '',
    ref_low         double precision,
    ref_high        double precision,
    flags           jsonb NOT NULL DEFAULT '[]', -- interpretation codes as sent
    severity        text NOT NULL CHECK (severity IN ('normal', 'abnormal', 'critical')),
    effective_at    timestamptz,
    notes           text NOT NULL DEFAULT '',
    members         jsonb NOT NULL DEFAULT '[]', -- obs_keys grouped under this one
    FOREIGN KEY (tenant_id, report_id) REFERENCES lab_reports (tenant_id, id),
    UNIQUE (report_id, seq),
    UNIQUE (report_id, obs_key)
);
-- Previous values of the same test for the same patient.
CREATE INDEX lab_observations_trend ON lab_observations (tenant_id, patient_id, code_system, code, effective_at);

-- Who read or changed what. Append-only for the application: it may insert
-- and read, never update or delete. Each tenant's events form a hash chain
-- (package audit): seq counts them from 1, hash covers the event and the
-- hash before it, and audit_heads holds the last link, so that an edited,
-- removed or reordered event, or a cut-off tail, is found by
-- `carebook audit verify`.
CREATE TABLE audit_events (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    seq           bigint NOT NULL CHECK (seq >= 1),
    prev_hash     bytea NOT NULL,
    hash          bytea NOT NULL CHECK (length(hash) = 32),
    at            timestamptz NOT NULL DEFAULT now(),
    actor_user    uuid,
    actor_role    text NOT NULL,
    action        text NOT NULL,
    resource_type text NOT NULL,
    resource_id   uuid,
    patient_id    uuid,
    client_addr   text NOT NULL DEFAULT '',
    request_id    text NOT NULL DEFAULT '',
    reason        text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX audit_events_chain ON audit_events (tenant_id, seq);
CREATE INDEX audit_events_resource ON audit_events (tenant_id, resource_type, resource_id, at);
CREATE INDEX audit_events_patient ON audit_events (tenant_id, patient_id, at);

-- The last link of each tenant's chain. Appending locks the tenant's row,
-- so a tenant's events are chained one at a time.
CREATE TABLE audit_heads (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
    seq       bigint NOT NULL,
    hash      bytea NOT NULL
);

-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['patient_identifiers', 'practitioner_identifiers', 'lab_partners', 'lab_settings',
                             'lab_messages', 'lab_reports', 'lab_observations', 'audit_events', 'audit_heads'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant())', t);
        EXECUTE format('GRANT SELECT, INSERT ON %I TO carebook_app', t);
    END LOOP;
END
$$;
-- +goose StatementEnd
GRANT UPDATE ON patient_identifiers, practitioner_identifiers, lab_partners, lab_settings, lab_messages, lab_reports,
    audit_heads TO carebook_app;
GRANT DELETE ON patient_identifiers, practitioner_identifiers TO carebook_app;

-- Before a lab partner's tenant is known (an API key, or an MLLP message's
-- facilities), row security would hide its row; these two functions run as
-- the migration's owner and answer only the routing facts.
-- +goose StatementBegin
CREATE FUNCTION lab_partner_by_key(p_key_id text)
RETURNS TABLE (partner_id uuid, tenant_id uuid, key_hash bytea)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT id, tenant_id, key_hash FROM lab_partners WHERE key_id = p_key_id AND active
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION lab_partner_by_facility(p_sending text, p_receiving text)
RETURNS TABLE (partner_id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT id, tenant_id FROM lab_partners
    WHERE active AND sending_facility = p_sending AND sending_facility <> ''
      AND receiving_facility IN (p_receiving, '')
    ORDER BY receiving_facility DESC
    LIMIT 1
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION lab_partner_by_key(text), lab_partner_by_facility(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lab_partner_by_key(text), lab_partner_by_facility(text, text) TO carebook_app;

-- +goose Down
DROP FUNCTION lab_partner_by_facility(text, text);
DROP FUNCTION lab_partner_by_key(text);
DROP TABLE audit_heads, audit_events, lab_observations, lab_reports, lab_messages, lab_settings, lab_partners,
    practitioner_identifiers, patient_identifiers;
