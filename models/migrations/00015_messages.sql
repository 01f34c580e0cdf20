-- +goose Up
-- Secure messaging between a patient (or their proxy) and a doctor who
-- reaches them. A thread is about one patient and one practitioner; its
-- subject and every message body are sealed with the tenant's data key
-- (keyring, bound to the row), so nothing a person wrote is stored in the
-- clear. Threads are the patient's correspondence, not the medical record:
-- an erasure deletes them with their messages and read marks.
CREATE TABLE message_threads (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    patient_id      uuid NOT NULL,
    practitioner_id uuid NOT NULL,
    -- Sealed for (message_threads.subject, id).
    subject_sealed  bytea NOT NULL,
    started_by      uuid NOT NULL,
    started_role    text NOT NULL CHECK (started_role IN ('patient', 'doctor')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,
    closed_by       uuid,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),
    FOREIGN KEY (tenant_id, practitioner_id) REFERENCES practitioners (tenant_id, id),
    CHECK ((closed_at IS NULL) = (closed_by IS NULL))
);
CREATE INDEX message_threads_patient ON message_threads (tenant_id, patient_id, last_message_at DESC);
CREATE INDEX message_threads_practitioner ON message_threads (tenant_id, practitioner_id, last_message_at DESC);

CREATE TABLE messages (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    thread_id         uuid NOT NULL,
    -- seq orders the messages and the read marks count against it: two
    -- messages in the same microsecond still have an order.
    seq               bigint GENERATED ALWAYS AS IDENTITY,
    sender_user       uuid NOT NULL,
    sender_role       text NOT NULL CHECK (sender_role IN ('patient', 'doctor')),
    -- The sending patient: the thread's own, or a proxy acting for them.
    sender_patient_id uuid,
    -- Sealed for (messages.body, thread_id|id).
    body_sealed       bytea NOT NULL,
    sent_at           timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, thread_id) REFERENCES message_threads (tenant_id, id) ON DELETE CASCADE,
    CHECK ((sender_role = 'patient') = (sender_patient_id IS NOT NULL))
);
CREATE INDEX messages_thread ON messages (tenant_id, thread_id, seq);

-- How far each user has read each thread.
CREATE TABLE message_reads (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    thread_id     uuid NOT NULL,
    user_id       uuid NOT NULL,
    last_read_seq bigint NOT NULL,
    read_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (thread_id, user_id),
    FOREIGN KEY (tenant_id, thread_id) REFERENCES message_threads (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX message_reads_tenant ON message_reads (tenant_id, user_id);

ALTER TABLE message_threads ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_threads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_threads
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON messages
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
ALTER TABLE message_reads ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_reads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_reads
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());

-- The application writes threads and messages and never rewrites who
-- wrote what: only the close, the latest time, and (a key rotation) the
-- sealed columns change. Erasure deletes.
GRANT SELECT, INSERT, DELETE ON message_threads, messages, message_reads TO carebook_app;
GRANT UPDATE (subject_sealed, last_message_at, closed_at, closed_by) ON message_threads TO carebook_app;
GRANT UPDATE (body_sealed) ON messages TO carebook_app;
GRANT UPDATE (last_read_seq, read_at) ON message_reads TO carebook_app;
GRANT USAGE ON SEQUENCE messages_seq_seq TO carebook_app;

-- +goose Down
DROP TABLE message_reads;
DROP TABLE messages;
DROP TABLE message_threads;
