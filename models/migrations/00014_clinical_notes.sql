-- +goose Up
-- Clinical notes: what a doctor writes about a patient (a progress note, a
-- consultation, a discharge summary), optionally about one visit. A note
-- is a draft its author may rewrite until they sign it; a signed note is
-- part of the medical record and is never rewritten: a correction is an
-- addendum, a note of its own that names the original in amends.
--
-- The text is never stored in the clear: body_sealed holds it sealed with
-- the tenant's data key (package keyring), bound to the tenant, the
-- column and the row (patient and note), so a dump or a backup of the
-- database reads nothing of it and a body copied to another row does not
-- open. The key rotation workflow re-encrypts the column like every
-- other sealed one.
CREATE TABLE clinical_notes (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    patient_id     uuid NOT NULL,
    author_id      uuid NOT NULL,
    appointment_id uuid,
    kind           text NOT NULL CHECK (kind IN ('progress', 'consultation', 'discharge', 'procedure', 'telephone')),
    amends         uuid,
    body_sealed    bytea NOT NULL,
    version        integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    signed_at      timestamptz,
    signed_by      uuid,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),
    FOREIGN KEY (tenant_id, author_id) REFERENCES practitioners (tenant_id, id),
    FOREIGN KEY (tenant_id, signed_by) REFERENCES practitioners (tenant_id, id),
    FOREIGN KEY (tenant_id, appointment_id) REFERENCES appointments (tenant_id, id),
    FOREIGN KEY (tenant_id, amends) REFERENCES clinical_notes (tenant_id, id),
    CHECK (amends IS NULL OR amends <> id),
    CHECK ((signed_at IS NULL) = (signed_by IS NULL)),
    -- Only the author signs their note.
    CHECK (signed_by IS NULL OR signed_by = author_id)
);
CREATE INDEX clinical_notes_patient ON clinical_notes (tenant_id, patient_id, created_at);
CREATE INDEX clinical_notes_amends ON clinical_notes (tenant_id, amends) WHERE amends IS NOT NULL;

ALTER TABLE clinical_notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE clinical_notes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON clinical_notes
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
-- Notes are added, drafts rewritten and signed; none is deleted, and who
-- wrote a note about whom never changes.
GRANT SELECT, INSERT ON clinical_notes TO carebook_app;
GRANT UPDATE (kind, appointment_id, body_sealed, version, updated_at, signed_at, signed_by) ON clinical_notes TO carebook_app;

-- A signed note stays as it was signed, whatever code runs the UPDATE: it
-- is never unsigned, and its kind, visit, version and signature never
-- change. Its body may only be re-sealed under another key version (a
-- rotation; the version is bytes 2-5 of a sealed value): a rewrite under
-- the same key is refused. The keyring binds the value to its row, so
-- nothing but a holder of the tenant's key could forge a new one.
-- +goose StatementBegin
CREATE FUNCTION clinical_notes_signed_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.signed_at IS NOT NULL AND (
        NEW.signed_at IS DISTINCT FROM OLD.signed_at OR NEW.signed_by IS DISTINCT FROM OLD.signed_by
        OR NEW.kind IS DISTINCT FROM OLD.kind OR NEW.appointment_id IS DISTINCT FROM OLD.appointment_id
        OR NEW.version IS DISTINCT FROM OLD.version OR NEW.updated_at IS DISTINCT FROM OLD.updated_at
        OR (NEW.body_sealed IS DISTINCT FROM OLD.body_sealed
            AND substring(NEW.body_sealed FROM 2 FOR 4) = substring(OLD.body_sealed FROM 2 FOR 4))) THEN
        RAISE EXCEPTION 'clinical note % is signed', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER clinical_notes_signed_frozen BEFORE UPDATE ON clinical_notes
    FOR EACH ROW EXECUTE FUNCTION clinical_notes_signed_frozen();

-- +goose Down
DROP TABLE clinical_notes;
DROP FUNCTION clinical_notes_signed_frozen();
