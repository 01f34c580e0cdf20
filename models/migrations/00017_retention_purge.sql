-- +goose Up
-- Retention, second part: what an erasure kept is deleted once the law no
-- longer requires it, and export archives expire.

-- When the nightly retention run deleted what an erasure had kept. The
-- pseudonymised row itself stays: dsr_requests, legal_holds, audit events
-- and accounts refer to it, and it names nobody.
ALTER TABLE patients ADD COLUMN purged_at timestamptz;
CREATE INDEX patients_erased_unpurged ON patients (tenant_id, id) WHERE erased_at IS NOT NULL AND purged_at IS NULL;

-- An export whose archive the retention run deleted after its lifetime.
ALTER TABLE dsr_requests DROP CONSTRAINT dsr_requests_status_check;
ALTER TABLE dsr_requests ADD CONSTRAINT dsr_requests_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'refused', 'failed', 'expired'));
CREATE INDEX dsr_requests_exports_done ON dsr_requests (tenant_id, completed_at) WHERE kind = 'export' AND status = 'completed';

-- retention_purge_state says where an erased patient of the current
-- tenant stands: 'live' (not erased), 'purged' (already), 'held' (an
-- active legal hold, whenever it was placed), 'kept' (retention has not
-- run out) or 'due'. It is the one place the rule lives:
--
--   medical records (visits, lab results, consents, break-glass grants,
--   care relations) are kept medical_records_years after the patient's
--   last visit ended or last lab result was filed, or after the erasure
--   when there is neither; financial records (payments, refunds, their
--   provider events) financial_records_years after the last payment was
--   created. The patient is due when both periods have run out, measured
--   against the database's clock and the tenant's retention settings as
--   they are now (models.DefaultRetention without a row: 20 and 10).
--
-- Both periods must have run out because payments refer to their
-- appointments; see README "Retention and archival".
-- +goose StatementBegin
CREATE FUNCTION retention_purge_state(p_patient uuid)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    pat        patients%ROWTYPE;
    med_years  integer;
    fin_years  integer;
    last_med   timestamptz;
    last_fin   timestamptz;
BEGIN
    SELECT * INTO pat FROM patients WHERE id = p_patient AND tenant_id = app_tenant();
    IF NOT FOUND OR pat.erased_at IS NULL THEN
        RETURN 'live';
    END IF;
    IF pat.purged_at IS NOT NULL THEN
        RETURN 'purged';
    END IF;
    IF EXISTS (SELECT 1 FROM legal_holds WHERE tenant_id = pat.tenant_id AND patient_id = pat.id AND released_at IS NULL) THEN
        RETURN 'held';
    END IF;
    SELECT medical_records_years, financial_records_years INTO med_years, fin_years
        FROM retention_settings WHERE tenant_id = pat.tenant_id;
    med_years := coalesce(med_years, 20);
    fin_years := coalesce(fin_years, 10);
    SELECT greatest((SELECT max(ends_at) FROM appointments WHERE tenant_id = pat.tenant_id AND patient_id = pat.id),
                    (SELECT max(filed_at) FROM lab_reports WHERE tenant_id = pat.tenant_id AND patient_id = pat.id))
        INTO last_med;
    SELECT max(created_at) INTO last_fin FROM payments WHERE tenant_id = pat.tenant_id AND patient_id = pat.id;
    IF coalesce(last_med, pat.erased_at) + make_interval(years => med_years) > now() THEN
        RETURN 'kept';
    END IF;
    IF last_fin IS NOT NULL AND last_fin + make_interval(years => fin_years) > now() THEN
        RETURN 'kept';
    END IF;
    RETURN 'due';
END
$$;
-- +goose StatementEnd

-- retention_purge_patient deletes what the erasure of a patient of the
-- current tenant kept, when retention_purge_state says 'due', and marks
-- the patient purged; in any other state it deletes nothing and returns
-- -1. It returns how many rows it deleted. The application may not delete
-- clinical or financial rows itself: this function, run as the
-- migration's owner, is its only way, and only for a patient the rule
-- releases. The ledger (the tenant's books, which name no one) and the
-- audit log stay; so do the request and hold rows, which hold IDs only.
-- Tables added later that refer to a patient or an appointment must be
-- added here.
-- +goose StatementBegin
CREATE FUNCTION retention_purge_patient(p_patient uuid)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    t     uuid := app_tenant();
    n     bigint := 0;
    c     bigint;
    accts uuid[];
BEGIN
    -- The same lock a legal hold and an erasure take: a hold placed now
    -- either waits for this purge or is seen by it.
    PERFORM 1 FROM patients WHERE id = p_patient AND tenant_id = t FOR UPDATE;
    IF retention_purge_state(p_patient) <> 'due' THEN
        RETURN -1;
    END IF;
    SELECT coalesce(array_agg(id), '{}') INTO accts FROM users WHERE tenant_id = t AND patient_id = p_patient;

    DELETE FROM lab_observations WHERE tenant_id = t AND patient_id = p_patient;
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    DELETE FROM lab_reports WHERE tenant_id = t AND patient_id = p_patient;
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    DELETE FROM lab_messages m WHERE m.tenant_id = t AND m.patient_id = p_patient
        AND NOT EXISTS (SELECT 1 FROM lab_reports r WHERE r.tenant_id = t AND r.message_id = m.id);
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    DELETE FROM consents WHERE tenant_id = t AND patient_id = p_patient;
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    DELETE FROM break_glass_grants WHERE tenant_id = t AND patient_id = p_patient;
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    DELETE FROM care_assignments WHERE tenant_id = t AND patient_id = p_patient;
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    -- Relations where the patient was the one cared for; those where they
    -- acted for someone else are that person's record.
    DELETE FROM proxy_relations WHERE tenant_id = t AND patient_id = p_patient;
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    DELETE FROM notification_outbox o WHERE o.tenant_id = t AND (o.recipient_user = ANY (accts)
        OR o.appointment_id IN (SELECT id FROM appointments WHERE tenant_id = t AND patient_id = p_patient));
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    DELETE FROM refunds WHERE tenant_id = t AND payment_id IN (SELECT id FROM payments WHERE tenant_id = t AND patient_id = p_patient);
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    -- The provider's events as received may carry the card holder's name.
    DELETE FROM webhook_events WHERE tenant_id = t AND payment_id IN (SELECT id FROM payments WHERE tenant_id = t AND patient_id = p_patient);
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    DELETE FROM payments WHERE tenant_id = t AND patient_id = p_patient;
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    DELETE FROM appointments WHERE tenant_id = t AND patient_id = p_patient;
    GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    UPDATE patients SET purged_at = now() WHERE id = p_patient AND tenant_id = t;
    RETURN n;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION retention_purge_state(uuid), retention_purge_patient(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retention_purge_state(uuid), retention_purge_patient(uuid) TO carebook_app;

-- +goose Down
DROP FUNCTION retention_purge_patient(uuid);
DROP FUNCTION retention_purge_state(uuid);
DROP INDEX dsr_requests_exports_done;
ALTER TABLE dsr_requests DROP CONSTRAINT dsr_requests_status_check;
ALTER TABLE dsr_requests ADD CONSTRAINT dsr_requests_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'refused', 'failed'));
DROP INDEX patients_erased_unpurged;
ALTER TABLE patients DROP COLUMN purged_at;
