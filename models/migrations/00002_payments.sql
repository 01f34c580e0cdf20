-- +goose Up
-- Payments: one payment per paid appointment, its provider intent, refunds,
-- the webhook events that moved it, and an append-only double-entry ledger.

-- Money rules of a paid appointment type: how long the slot is held while
-- the patient pays, until when cancelling is free, what a late cancel or a
-- no-show costs (basis points of the price) and when the hold is captured.
ALTER TABLE appointment_types
    ADD COLUMN hold_minutes        integer NOT NULL DEFAULT 15 CHECK (hold_minutes BETWEEN 5 AND 120),
    ADD COLUMN free_cancel_hours   integer NOT NULL DEFAULT 24 CHECK (free_cancel_hours BETWEEN 0 AND 720),
    ADD COLUMN late_cancel_fee_bps integer NOT NULL DEFAULT 0 CHECK (late_cancel_fee_bps BETWEEN 0 AND 10000),
    ADD COLUMN no_show_fee_bps     integer NOT NULL DEFAULT 0 CHECK (no_show_fee_bps BETWEEN 0 AND 10000),
    ADD COLUMN capture_at          text NOT NULL DEFAULT 'after_visit' CHECK (capture_at IN ('check_in', 'after_visit'));

-- Each tenant's provider account. Secrets are sealed (AES-GCM) by the
-- application before they reach the database; the row holds ciphertext.
CREATE TABLE tenant_payment_settings (
    tenant_id              uuid PRIMARY KEY REFERENCES tenants (id),
    provider               text NOT NULL CHECK (provider IN ('stripe', 'offline')),
    stripe_secret_key_enc  bytea,
    webhook_secret_enc     bytea,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- Payments reference their appointment within the tenant.
ALTER TABLE appointments ADD CONSTRAINT appointments_tenant_id_unique UNIQUE (tenant_id, id);

CREATE TABLE payments (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL,
    appointment_id      uuid NOT NULL,
    patient_id          uuid NOT NULL,
    practitioner_id     uuid NOT NULL,
    provider            text NOT NULL CHECK (provider IN ('stripe', 'offline')),
    provider_intent_id  text,
    status              text NOT NULL CHECK (status IN
        ('requires_payment', 'authorized', 'captured', 'voided', 'failed', 'expired', 'refunded', 'partially_refunded')),
    amount_minor        bigint NOT NULL CHECK (amount_minor > 0),
    currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    captured_minor      bigint NOT NULL DEFAULT 0 CHECK (captured_minor >= 0),
    refunded_minor      bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    fee_minor           bigint NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
    hold_expires_at     timestamptz,
    failure_code        text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, appointment_id) REFERENCES appointments (tenant_id, id) DEFERRABLE INITIALLY DEFERRED,
    UNIQUE (tenant_id, appointment_id),
    UNIQUE (tenant_id, id),
    CHECK (refunded_minor <= captured_minor)
);
-- Not unique: Stripe never repeats an intent ID, but stripe-mock answers
-- every create with the same one, and dev and tests run against it.
CREATE INDEX payments_intent ON payments (provider_intent_id) WHERE provider_intent_id IS NOT NULL;
CREATE INDEX payments_tenant_created ON payments (tenant_id, created_at);

CREATE TABLE refunds (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL,
    payment_id          uuid NOT NULL,
    provider_refund_id  text,
    amount_minor        bigint NOT NULL CHECK (amount_minor > 0),
    currency            text NOT NULL,
    reason              text NOT NULL,
    requested_by        uuid,
    status              text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    idempotency_key     text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, payment_id) REFERENCES payments (tenant_id, id),
    UNIQUE (tenant_id, idempotency_key)
);

-- Every webhook event is kept once, by the provider's event ID, before it
-- is acted on: "persist, then signal".
CREATE TABLE webhook_events (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    event_id      text NOT NULL,
    type          text NOT NULL,
    object_id     text NOT NULL DEFAULT '',
    -- The charge the event is about: its object for charge.*, the intent's
    -- latest_charge for payment_intent.*; settlement links charges by it.
    charge_id     text NOT NULL DEFAULT '',
    payment_id    uuid,
    -- The body exactly as signed and received: bytes, not jsonb, so that
    -- whatever a verified event holds (a lone surrogate escape in a card
    -- holder's name, say) is kept rather than refused.
    payload       bytea NOT NULL,
    created_at    timestamptz NOT NULL, -- the provider's event time
    received_at   timestamptz NOT NULL DEFAULT now(),
    routed_at     timestamptz,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX webhook_events_payment ON webhook_events (tenant_id, payment_id, created_at);

-- The ledger is append-only: the application role may insert and read,
-- never update or delete. Balances are sums, never stored.
CREATE TABLE ledger_entries (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    key         text NOT NULL,
    kind        text NOT NULL,
    payment_id  uuid,
    memo        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key),
    UNIQUE (tenant_id, id)
);

CREATE TABLE ledger_postings (
    id            bigserial PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    entry_id      uuid NOT NULL,
    account       text NOT NULL CHECK (account IN ('patient_receivable', 'clinic_revenue', 'refunds', 'fees',
                                                   'provider_fees', 'provider_balance', 'payouts')),
    amount_minor  bigint NOT NULL CHECK (amount_minor <> 0),
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id)
);
CREATE INDEX ledger_postings_entry ON ledger_postings (tenant_id, entry_id);

-- A transaction's postings must balance per currency; checked at commit so
-- the postings of one entry can be inserted one by one.
-- +goose StatementBegin
CREATE FUNCTION ledger_entry_balances() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM ledger_postings
        WHERE entry_id = NEW.entry_id
        GROUP BY currency HAVING sum(amount_minor) <> 0
    ) THEN
        RAISE EXCEPTION 'ledger entry % does not balance', NEW.entry_id USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE CONSTRAINT TRIGGER ledger_postings_balance
    AFTER INSERT ON ledger_postings DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_balances();

-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'tenant_payment_settings', 'payments', 'refunds', 'webhook_events',
        'ledger_entries', 'ledger_postings'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant())', t);
        EXECUTE format('GRANT SELECT, INSERT ON %I TO carebook_app', t);
    END LOOP;
END
$$;
-- +goose StatementEnd
GRANT UPDATE ON tenant_payment_settings, payments, refunds, webhook_events TO carebook_app;
GRANT USAGE ON SEQUENCE ledger_postings_id_seq TO carebook_app;

-- +goose Down
ALTER TABLE appointment_types DROP COLUMN hold_minutes, DROP COLUMN free_cancel_hours,
    DROP COLUMN late_cancel_fee_bps, DROP COLUMN no_show_fee_bps, DROP COLUMN capture_at;
DROP TABLE ledger_postings, ledger_entries, webhook_events, refunds, payments, tenant_payment_settings;
DROP FUNCTION ledger_entry_balances();
ALTER TABLE appointments DROP CONSTRAINT appointments_tenant_id_unique;
