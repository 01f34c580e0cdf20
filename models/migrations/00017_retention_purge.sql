-- +goose Up
-- Retention, second part: what an erasure kept is deleted once the law no
-- longer requires it, and export archives expire.

-- When the nightly retention run deleted what an erasure had kept of a
-- patient: their medical records (medical_purged_at), and all of it
-- (purged_at). The pseudonymised row itself stays: dsr_requests,
-- legal_holds, audit events and accounts refer to it, and it names nobody.
ALTER TABLE patients ADD COLUMN medical_purged_at timestamptz, ADD COLUMN purged_at timestamptz;
CREATE INDEX patients_erased_unpurged ON patients (tenant_id, id) WHERE erased_at IS NOT NULL AND purged_at IS NULL;

-- An export whose archive the retention run deleted after its lifetime.
ALTER TABLE dsr_requests DROP CONSTRAINT dsr_requests_status_check;
ALTER TABLE dsr_requests ADD CONSTRAINT dsr_requests_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'refused', 'failed', 'expired'));
CREATE INDEX dsr_requests_exports_done ON dsr_requests (tenant_id, completed_at) WHERE kind = 'export' AND status = 'completed';

-- retention_purge_parts is the rule, in one place: for an erased patient
-- of the current tenant not yet purged, whether a legal hold stands
-- (whenever it was placed), and whether each part of what the erasure
-- kept may go:
--
--   medical records (visits, lab results, clinical notes, consents,
--   break-glass grants, care relations, notifications, and any message
--   thread left) medical_records_years after the patient's last visit
--   ended, last lab result was filed or last note was signed, or after the
--   erasure when there is none; financial records (payments, refunds,
--   the provider's events about them) financial_records_years after the
--   last payment was created. Years are the tenant's retention settings
--   as they are now (models.DefaultRetention without a row: 20 and 10),
--   measured against the database's clock.
--
-- A part already deleted counts as due. Visits that a payment still
-- refers to stay with the payment until it goes.
-- +goose StatementBegin
CREATE FUNCTION retention_purge_parts(p_patient uuid,
    OUT erased boolean, OUT purged boolean, OUT held boolean,
    OUT medical_due boolean, OUT medical_done boolean, OUT financial_due boolean, OUT has_payments boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    pat        patients%ROWTYPE;
    med_years  integer;
    fin_years  integer;
    last_med   timestamptz;
    last_fin   timestamptz;
BEGIN
    SELECT * INTO pat FROM patients WHERE id = p_patient AND tenant_id = app_tenant();
    erased := FOUND AND pat.erased_at IS NOT NULL;
    purged := erased AND pat.purged_at IS NOT NULL;
    held := false; medical_due := false; medical_done := false; financial_due := false; has_payments := false;
    IF NOT erased OR purged THEN
        RETURN;
    END IF;
    held := EXISTS (SELECT 1 FROM legal_holds WHERE tenant_id = pat.tenant_id AND patient_id = pat.id AND released_at IS NULL);
    SELECT medical_records_years, financial_records_years INTO med_years, fin_years
        FROM retention_settings WHERE tenant_id = pat.tenant_id;
    med_years := coalesce(med_years, 20);
    fin_years := coalesce(fin_years, 10);
    SELECT greatest((SELECT max(ends_at) FROM appointments WHERE tenant_id = pat.tenant_id AND patient_id = pat.id),
                    (SELECT max(filed_at) FROM lab_reports WHERE tenant_id = pat.tenant_id AND patient_id = pat.id),
                    (SELECT max(coalesce(signed_at, created_at)) FROM clinical_notes WHERE tenant_id = pat.tenant_id AND patient_id = pat.id))
        INTO last_med;
    SELECT max(created_at) INTO last_fin FROM payments WHERE tenant_id = pat.tenant_id AND patient_id = pat.id;
    has_payments := last_fin IS NOT NULL;
    medical_done := pat.medical_purged_at IS NOT NULL;
    medical_due := medical_done OR coalesce(last_med, pat.erased_at) + make_interval(years => med_years) <= now();
    financial_due := NOT has_payments OR last_fin + make_interval(years => fin_years) <= now();
END
$$;
-- +goose StatementEnd

-- retention_purge_state says where a patient of the current tenant
-- stands: 'live' (not erased), 'purged' (already), 'held', 'due' (a part
-- may be deleted now, or both are gone and the row is to be marked) or
-- 'kept' (nothing may go yet).
-- +goose StatementBegin
CREATE FUNCTION retention_purge_state(p_patient uuid)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT CASE
        WHEN NOT erased THEN 'live'
        WHEN purged THEN 'purged'
        WHEN held THEN 'held'
        WHEN (medical_due AND NOT medical_done) OR (financial_due AND has_payments) OR (medical_due AND financial_due) THEN 'due'
        ELSE 'kept'
    END
    FROM retention_purge_parts(p_patient)
$$;
-- +goose StatementEnd

-- retention_purge_patient deletes the parts of what the erasure of a
-- patient of the current tenant kept that retention_purge_parts releases,
-- and marks the patient purged once both are gone; when
-- retention_purge_state is not 'due' it deletes nothing and returns -1.
-- It returns how many rows it deleted. The application may not delete
-- clinical or financial rows itself: this function, run as the
-- migration's owner, is its only way, and only what the rule releases.
-- The ledger (the tenant's books, which name no one) and the audit log
-- stay; so do the request and hold rows, which hold IDs only. Tables added
-- later that refer to a patient or an appointment must be added here.
-- +goose StatementBegin
CREATE FUNCTION retention_purge_patient(p_patient uuid)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    t     uuid := app_tenant();
    n     bigint := 0;
    c     bigint;
    accts uuid[];
    parts record;
BEGIN
    -- The same lock a legal hold and an erasure take: a hold placed now
    -- either waits for this purge or is seen by it.
    PERFORM 1 FROM patients WHERE id = p_patient AND tenant_id = t FOR UPDATE;
    IF retention_purge_state(p_patient) <> 'due' THEN
        RETURN -1;
    END IF;
    SELECT * INTO parts FROM retention_purge_parts(p_patient);

    IF parts.financial_due AND parts.has_payments THEN
        DELETE FROM refunds WHERE tenant_id = t AND payment_id IN (SELECT id FROM payments WHERE tenant_id = t AND patient_id = p_patient);
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        -- The provider's events as received may carry the card holder's name.
        DELETE FROM webhook_events WHERE tenant_id = t AND payment_id IN (SELECT id FROM payments WHERE tenant_id = t AND patient_id = p_patient);
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        DELETE FROM payments WHERE tenant_id = t AND patient_id = p_patient;
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
    END IF;

    IF parts.medical_due THEN
        SELECT coalesce(array_agg(id), '{}') INTO accts FROM users WHERE tenant_id = t AND patient_id = p_patient;
        DELETE FROM lab_observations WHERE tenant_id = t AND patient_id = p_patient;
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        DELETE FROM lab_reports WHERE tenant_id = t AND patient_id = p_patient;
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        DELETE FROM lab_messages m WHERE m.tenant_id = t AND m.patient_id = p_patient
            AND NOT EXISTS (SELECT 1 FROM lab_reports r WHERE r.tenant_id = t AND r.message_id = m.id);
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        -- Notes before the visits they name; addenda go with their
        -- originals in the same statement.
        DELETE FROM clinical_notes WHERE tenant_id = t AND patient_id = p_patient;
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        -- An erasure deleted the threads; one a proxy opened since would
        -- go here (messages and read marks follow their thread).
        DELETE FROM message_threads WHERE tenant_id = t AND patient_id = p_patient;
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        DELETE FROM consents WHERE tenant_id = t AND patient_id = p_patient;
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        DELETE FROM break_glass_grants WHERE tenant_id = t AND patient_id = p_patient;
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        DELETE FROM care_assignments WHERE tenant_id = t AND patient_id = p_patient;
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        -- Relations where the patient was the one cared for; those where
        -- they acted for someone else are that person's record.
        DELETE FROM proxy_relations WHERE tenant_id = t AND patient_id = p_patient;
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        DELETE FROM notification_outbox o WHERE o.tenant_id = t AND (o.recipient_user = ANY (accts)
            OR o.appointment_id IN (SELECT id FROM appointments WHERE tenant_id = t AND patient_id = p_patient));
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        -- Visits a payment still refers to wait for the payment.
        DELETE FROM appointments a WHERE a.tenant_id = t AND a.patient_id = p_patient
            AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.tenant_id = t AND p.appointment_id = a.id);
        GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
        UPDATE patients SET medical_purged_at = coalesce(medical_purged_at, now()) WHERE id = p_patient AND tenant_id = t;
    END IF;

    IF parts.medical_due AND parts.financial_due THEN
        UPDATE patients SET purged_at = now() WHERE id = p_patient AND tenant_id = t;
    END IF;
    RETURN n;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION retention_purge_parts(uuid), retention_purge_state(uuid), retention_purge_patient(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retention_purge_parts(uuid), retention_purge_state(uuid), retention_purge_patient(uuid) TO carebook_app;

-- +goose Down
DROP FUNCTION retention_purge_patient(uuid);
DROP FUNCTION retention_purge_state(uuid);
DROP FUNCTION retention_purge_parts(uuid);
DROP INDEX dsr_requests_exports_done;
ALTER TABLE dsr_requests DROP CONSTRAINT dsr_requests_status_check;
ALTER TABLE dsr_requests ADD CONSTRAINT dsr_requests_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'refused', 'failed'));
DROP INDEX patients_erased_unpurged;
ALTER TABLE patients DROP COLUMN purged_at, DROP COLUMN medical_purged_at;
