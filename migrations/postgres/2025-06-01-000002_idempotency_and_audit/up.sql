-- Idempotency records and the audit trail (PostgreSQL). Both are written in the transaction
-- of the change they belong to.

CREATE TABLE idempotency_keys (
    -- Whose key it is (`key:NAME`, `user:ID`): one client cannot replay another's.
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    response_status INTEGER NOT NULL CHECK (response_status BETWEEN 100 AND 599),
    response_body   BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, key)
);

-- Pruning of old keys.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

CREATE TABLE audit_log (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action        TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    resource_type TEXT NOT NULL CHECK (resource_type IN ('product', 'license')),
    resource_id   TEXT NOT NULL,
    occurred_at   BIGINT NOT NULL,
    actor         TEXT NOT NULL
);

CREATE INDEX audit_log_resource_idx ON audit_log (resource_type, resource_id);

-- The audit trail is append-only: rows can be added, never changed nor removed.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
