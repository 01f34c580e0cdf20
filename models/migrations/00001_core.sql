-- +goose Up
-- The core scheduling schema: tenants and their facilities, people, the
-- rules that make a practitioner bookable, appointments and the outbox.
--
-- Every tenant-owned table carries tenant_id and is guarded by a row-level
-- security policy keyed on the transaction-local setting app.tenant_id, so a
-- query that forgets its tenant filter still sees only its own tenant. The
-- policies are FORCEd so that they bind the table owner too; only a
-- superuser or a BYPASSRLS role escapes them, and the application role is
-- neither.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'carebook_app') THEN
        CREATE ROLE carebook_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
-- +goose StatementEnd

-- app_tenant returns the tenant of the current transaction, or NULL when none
-- is set, so that a policy compares against NULL and matches no row.
-- +goose StatementBegin
CREATE FUNCTION app_tenant() RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid
$$;
-- +goose StatementEnd

-- Tenants are looked up by slug at login, before a tenant is known, so the
-- table itself is not tenant-scoped; the application may only read it.
CREATE TABLE tenants (
    id         uuid PRIMARY KEY,
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE facilities (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    name       text NOT NULL,
    address    text NOT NULL DEFAULT '',
    city       text NOT NULL DEFAULT '',
    country    text NOT NULL DEFAULT '',
    time_zone  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);

CREATE TABLE specialties (
    id        uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    code      text NOT NULL,
    name      text NOT NULL,
    UNIQUE (tenant_id, code),
    UNIQUE (tenant_id, id)
);

CREATE TABLE practitioners (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    display_name text NOT NULL,
    title        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);

-- A practitioner works in a specialty at a facility; one person may hold
-- several roles (two facilities, or two specialties).
CREATE TABLE practitioner_roles (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    practitioner_id uuid NOT NULL,
    facility_id     uuid NOT NULL,
    specialty_id    uuid NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    FOREIGN KEY (tenant_id, practitioner_id) REFERENCES practitioners (tenant_id, id),
    FOREIGN KEY (tenant_id, facility_id) REFERENCES facilities (tenant_id, id),
    FOREIGN KEY (tenant_id, specialty_id) REFERENCES specialties (tenant_id, id),
    UNIQUE (tenant_id, practitioner_id, facility_id, specialty_id)
);

CREATE TABLE patients (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    given_name  text NOT NULL,
    family_name text NOT NULL,
    birth_date  date,
    phone       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    email           text NOT NULL,
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('patient', 'doctor', 'staff', 'billing', 'admin')),
    patient_id      uuid,
    practitioner_id uuid,
    facility_id     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),
    FOREIGN KEY (tenant_id, practitioner_id) REFERENCES practitioners (tenant_id, id),
    FOREIGN KEY (tenant_id, facility_id) REFERENCES facilities (tenant_id, id),
    CHECK (role <> 'patient' OR patient_id IS NOT NULL),
    CHECK (role <> 'doctor' OR practitioner_id IS NOT NULL),
    CHECK (role <> 'staff' OR facility_id IS NOT NULL)
);
-- Emails compare case-insensitively within a tenant.
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));

CREATE TABLE appointment_types (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    specialty_id       uuid,
    code               text NOT NULL,
    name               text NOT NULL,
    duration_minutes   integer NOT NULL CHECK (duration_minutes BETWEEN 5 AND 480),
    mode               text NOT NULL CHECK (mode IN ('in_person', 'video')),
    -- Money is integer minor units plus an ISO 4217 code; 0 means free.
    price_minor        bigint NOT NULL DEFAULT 0 CHECK (price_minor >= 0),
    currency           text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    buffer_before_min  integer NOT NULL DEFAULT 0 CHECK (buffer_before_min BETWEEN 0 AND 120),
    buffer_after_min   integer NOT NULL DEFAULT 0 CHECK (buffer_after_min BETWEEN 0 AND 120),
    min_notice_min     integer NOT NULL DEFAULT 60 CHECK (min_notice_min >= 0),
    horizon_days       integer NOT NULL DEFAULT 60 CHECK (horizon_days BETWEEN 1 AND 366),
    FOREIGN KEY (tenant_id, specialty_id) REFERENCES specialties (tenant_id, id),
    UNIQUE (tenant_id, code),
    UNIQUE (tenant_id, id)
);

-- Weekly wall-clock rules in the facility's zone. end_time <= start_time
-- means the window runs past midnight; 24:00 is written as end_minute 1440.
CREATE TABLE schedule_rules (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    practitioner_id uuid NOT NULL,
    facility_id     uuid NOT NULL,
    weekday         smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6), -- 0 = Sunday
    start_minute    smallint NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute      smallint NOT NULL CHECK (end_minute BETWEEN 1 AND 1440),
    is_break        boolean NOT NULL DEFAULT false,
    valid_from      date,
    valid_until     date,
    FOREIGN KEY (tenant_id, practitioner_id) REFERENCES practitioners (tenant_id, id),
    FOREIGN KEY (tenant_id, facility_id) REFERENCES facilities (tenant_id, id),
    CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_until >= valid_from)
);
CREATE INDEX schedule_rules_practitioner ON schedule_rules (tenant_id, practitioner_id, facility_id);

CREATE TABLE schedule_exceptions (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    practitioner_id uuid NOT NULL,
    facility_id     uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('time_off', 'extra_hours')),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    reason          text NOT NULL DEFAULT '',
    FOREIGN KEY (tenant_id, practitioner_id) REFERENCES practitioners (tenant_id, id),
    FOREIGN KEY (tenant_id, facility_id) REFERENCES facilities (tenant_id, id),
    CHECK (ends_at > starts_at)
);
CREATE INDEX schedule_exceptions_practitioner ON schedule_exceptions (tenant_id, practitioner_id, starts_at);

-- Appointment status uses FHIR's Appointment.status codes, plus 'held' for
-- a slot that is reserved while a payment is pending.
CREATE TABLE appointments (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL,
    practitioner_id     uuid NOT NULL,
    patient_id          uuid NOT NULL,
    facility_id         uuid NOT NULL,
    appointment_type_id uuid NOT NULL,
    starts_at           timestamptz NOT NULL,
    ends_at             timestamptz NOT NULL,
    -- The practitioner's blocked range: the visit plus its buffers. It is
    -- what the practitioner constraint compares, so a buffer can never be
    -- booked over.
    blocked_from        timestamptz NOT NULL,
    blocked_until       timestamptz NOT NULL,
    status              text NOT NULL CHECK (status IN
        ('proposed', 'pending', 'held', 'booked', 'arrived', 'fulfilled', 'cancelled', 'noshow')),
    hold_expires_at     timestamptz,
    mode                text NOT NULL CHECK (mode IN ('in_person', 'video')),
    price_minor         bigint NOT NULL DEFAULT 0,
    currency            text NOT NULL DEFAULT 'USD',
    cancel_reason       text NOT NULL DEFAULT '',
    cancelled_by        text NOT NULL DEFAULT '',
    -- version counts reschedules; reminders are keyed on it so a moved
    -- appointment never gets a reminder for its old time.
    version             integer NOT NULL DEFAULT 1,
    booked_by           uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, practitioner_id) REFERENCES practitioners (tenant_id, id),
    FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),
    FOREIGN KEY (tenant_id, facility_id) REFERENCES facilities (tenant_id, id),
    FOREIGN KEY (tenant_id, appointment_type_id) REFERENCES appointment_types (tenant_id, id),
    CHECK (ends_at > starts_at),
    CHECK (blocked_from <= starts_at AND blocked_until >= ends_at),
    -- No double booking: two active appointments may never overlap for the
    -- same practitioner (including buffers) nor for the same patient.
    CONSTRAINT appointments_no_practitioner_overlap EXCLUDE USING gist (
        tenant_id WITH =,
        practitioner_id WITH =,
        tstzrange(blocked_from, blocked_until, '[)') WITH &&
    ) WHERE (status IN ('pending', 'held', 'booked', 'arrived')),
    CONSTRAINT appointments_no_patient_overlap EXCLUDE USING gist (
        tenant_id WITH =,
        patient_id WITH =,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status IN ('pending', 'held', 'booked', 'arrived'))
);
CREATE INDEX appointments_patient ON appointments (tenant_id, patient_id, starts_at);
CREATE INDEX appointments_facility ON appointments (tenant_id, facility_id, starts_at);

-- Idempotency-Key answers: the first response to a key is kept and
-- replayed; request_hash refuses the same key reused for another body.
CREATE TABLE idempotency_keys (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    user_id       uuid NOT NULL,
    key           text NOT NULL,
    request_hash  text NOT NULL,
    status_code   integer,
    response_body bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, key)
);

-- The notification outbox. Bodies never hold patient data: a template name
-- and IDs; the sender renders the message from them. dedupe_key makes every
-- enqueue idempotent under activity retries.
CREATE TABLE notification_outbox (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    dedupe_key     text NOT NULL,
    recipient_user uuid,
    channel        text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    template       text NOT NULL,
    appointment_id uuid,
    payload        jsonb NOT NULL DEFAULT '{}',
    scheduled_for  timestamptz NOT NULL DEFAULT now(),
    created_at     timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz,
    UNIQUE (tenant_id, dedupe_key)
);

-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'facilities', 'specialties', 'practitioners', 'practitioner_roles',
        'patients', 'users', 'appointment_types', 'schedule_rules',
        'schedule_exceptions', 'appointments', 'idempotency_keys',
        'notification_outbox'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO carebook_app', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

GRANT SELECT ON tenants TO carebook_app;
GRANT DELETE ON idempotency_keys TO carebook_app;
GRANT EXECUTE ON FUNCTION app_tenant() TO carebook_app;

-- +goose Down
DROP TABLE notification_outbox, idempotency_keys, appointments,
    schedule_exceptions, schedule_rules, appointment_types, users, patients,
    practitioner_roles, practitioners, specialties, facilities, tenants;
DROP FUNCTION app_tenant();
