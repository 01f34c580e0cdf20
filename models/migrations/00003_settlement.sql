-- +goose Up
-- Nightly settlement: what the provider says happened on a day, matched
-- against the ledger, with one discrepancy per mismatch for billing staff.

-- One report per tenant and day (in the tenant's zone); a re-run of the day
-- replaces its content, never adds a second report.
CREATE TABLE settlement_reports (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    day                date NOT NULL,
    time_zone          text NOT NULL,
    provider           text NOT NULL,
    status             text NOT NULL CHECK (status IN ('matched', 'mismatched')),
    transactions       integer NOT NULL DEFAULT 0,
    payouts            integer NOT NULL DEFAULT 0,
    matched            integer NOT NULL DEFAULT 0,
    discrepancies      integer NOT NULL DEFAULT 0,
    report_json        jsonb NOT NULL,
    report_csv         text NOT NULL,
    object_key         text NOT NULL DEFAULT '', -- the JSON file in the object store, when one is configured
    generated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, day)
);

-- A mismatch between the provider and the ledger. key identifies the
-- mismatch (kind and the object it is about) so that a re-run of the same
-- day finds the open item instead of opening another.
CREATE TABLE discrepancies (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    day             date NOT NULL,
    key             text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('missing_in_ledger', 'missing_at_provider', 'amount_differs',
                                                  'currency_differs', 'duplicate')),
    payment_id      uuid,
    provider_object text NOT NULL DEFAULT '', -- e.g. the balance transaction or payout ID
    ledger_key      text NOT NULL DEFAULT '',
    expected_minor  bigint,
    actual_minor    bigint,
    currency        text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    resolution_note text NOT NULL DEFAULT '',
    resolved_by     uuid,
    resolved_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key)
);
CREATE INDEX discrepancies_open ON discrepancies (tenant_id, status, day);

-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['settlement_reports', 'discrepancies'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO carebook_app', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE discrepancies, settlement_reports;
