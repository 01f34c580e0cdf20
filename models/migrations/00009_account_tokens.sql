-- +goose Up
-- Account e-mails: a user's address is verified by a link sent to it, and a
-- forgotten password is reset by another. Each link carries a single-use
-- secret; only its SHA-256 is kept, so a copy of this table (a backup, a
-- replica, a dump) opens no account.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
-- Accounts older than this migration were never sent a link; they count as
-- verified rather than being asked to prove an address they signed up with
-- before the question existed.
UPDATE users SET email_verified_at = created_at;

CREATE TABLE account_tokens (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    user_id    uuid NOT NULL,
    purpose    text NOT NULL CHECK (purpose IN ('verify-email', 'password-reset')),
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    FOREIGN KEY (user_id) REFERENCES users (id),
    CHECK (expires_at > created_at)
);
CREATE INDEX account_tokens_user ON account_tokens (tenant_id, user_id, purpose) WHERE used_at IS NULL;

ALTER TABLE account_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON account_tokens
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
-- The application adds tokens and spends them; it never rewrites one.
GRANT SELECT, INSERT ON account_tokens TO carebook_app;
GRANT UPDATE (used_at) ON account_tokens TO carebook_app;

-- A link names no tenant: before the tenant is known row security hides
-- the row, so this function, run as the migration's owner, answers the one
-- routing fact for a token's hash and nothing else.
-- +goose StatementBegin
CREATE FUNCTION account_token_tenant(p_hash bytea)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT tenant_id FROM account_tokens WHERE token_hash = p_hash
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION account_token_tenant(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION account_token_tenant(bytea) TO carebook_app;

-- +goose Down
DROP FUNCTION account_token_tenant(bytea);
DROP TABLE account_tokens;
ALTER TABLE users DROP COLUMN email_verified_at;
