-- +goose Up
-- Single sign-on through a tenant's own OpenID Connect identity provider
-- (a hospital's Entra ID, Okta, Keycloak...). One provider per tenant. The
-- client secret is sealed under the tenant's data key (keyring), bound to
-- the tenant and to this column.
CREATE TABLE identity_providers (
    tenant_id         uuid PRIMARY KEY REFERENCES tenants (id),
    issuer            text NOT NULL CHECK (issuer <> ''),
    client_id         text NOT NULL CHECK (client_id <> ''),
    client_secret_enc bytea NOT NULL,
    -- Accounts are linked on first sign-in by a verified e-mail in one of
    -- these domains (none: any domain the provider vouches for).
    email_domains     jsonb NOT NULL DEFAULT '[]',
    -- When true, a sign-in whose ID token says it used a second factor
    -- (amr) counts as Carebook's MFA step for roles that require one.
    trust_idp_mfa     boolean NOT NULL DEFAULT false,
    enabled           boolean NOT NULL DEFAULT true,
    updated_by        uuid NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Which provider subject is which Carebook account: set on the first
-- sign-in, after which the e-mail no longer matters (it may change at the
-- provider; the subject does not).
CREATE TABLE user_identities (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    issuer     text NOT NULL,
    subject    text NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    PRIMARY KEY (tenant_id, issuer, subject),
    UNIQUE (user_id, issuer)
);

ALTER TABLE identity_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity_providers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON identity_providers
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
ALTER TABLE user_identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_identities FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_identities
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON identity_providers TO carebook_app;
GRANT SELECT, INSERT, DELETE ON user_identities TO carebook_app;
GRANT UPDATE (last_login_at) ON user_identities TO carebook_app;

-- +goose Down
DROP TABLE user_identities;
DROP TABLE identity_providers;
