-- +goose Up
-- Retention and archival. Old audit events leave Postgres for the object
-- store in segments: a gzip of JSON lines, one event a line in chain
-- order, content-addressed. audit_segments is what Verify needs to walk
-- the chain across the archive: where each segment starts and ends in the
-- chain, the hashes at both ends, and the object's key and SHA-256.
CREATE TABLE audit_segments (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    first_seq       bigint NOT NULL CHECK (first_seq >= 1),
    last_seq        bigint NOT NULL,
    first_prev_hash bytea NOT NULL,
    last_hash       bytea NOT NULL CHECK (length(last_hash) = 32),
    object_key      text NOT NULL,
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    events          bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (last_seq >= first_seq AND events = last_seq - first_seq + 1),
    UNIQUE (tenant_id, first_seq)
);

ALTER TABLE audit_segments ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_segments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_segments
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
-- Like the log itself, the record of its archive is append-only for the
-- application.
GRANT SELECT, INSERT ON audit_segments TO carebook_app;

-- Sent notifications are pruned by the retention run.
GRANT DELETE ON notification_outbox TO carebook_app;

-- The application may not delete audit events. This function, run as the
-- migration's owner, deletes the current tenant's events that one
-- recorded segment covers, and only when the rows still in the table are
-- exactly the segment's: its first row links to the recorded prev_hash,
-- its last row has the recorded hash, and none is missing. Anything else
-- is refused and nothing is deleted. It returns how many rows it deleted;
-- 0 when an earlier call already did.
-- +goose StatementBegin
CREATE FUNCTION audit_delete_archived(p_segment uuid)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    seg   audit_segments%ROWTYPE;
    n     bigint;
    first audit_events%ROWTYPE;
    last  audit_events%ROWTYPE;
BEGIN
    SELECT * INTO seg FROM audit_segments WHERE id = p_segment AND tenant_id = app_tenant();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no recorded audit segment % in this tenant', p_segment USING ERRCODE = 'P0002';
    END IF;
    SELECT count(*) INTO n FROM audit_events
        WHERE tenant_id = seg.tenant_id AND seq BETWEEN seg.first_seq AND seg.last_seq;
    IF n = 0 THEN
        RETURN 0;
    END IF;
    SELECT * INTO first FROM audit_events WHERE tenant_id = seg.tenant_id AND seq = seg.first_seq;
    SELECT * INTO last FROM audit_events WHERE tenant_id = seg.tenant_id AND seq = seg.last_seq;
    IF n <> seg.events OR first.id IS NULL OR last.id IS NULL
       OR first.prev_hash <> seg.first_prev_hash OR last.hash <> seg.last_hash THEN
        RAISE EXCEPTION 'audit segment % does not match the events it names', p_segment USING ERRCODE = 'P0001';
    END IF;
    DELETE FROM audit_events WHERE tenant_id = seg.tenant_id AND seq BETWEEN seg.first_seq AND seg.last_seq;
    RETURN n;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION audit_delete_archived(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_delete_archived(uuid) TO carebook_app;

-- +goose Down
DROP FUNCTION audit_delete_archived(uuid);
REVOKE DELETE ON notification_outbox FROM carebook_app;
DROP TABLE audit_segments;
