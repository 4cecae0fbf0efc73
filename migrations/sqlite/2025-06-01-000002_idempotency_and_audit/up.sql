-- Idempotency records and the audit trail (SQLite). Both are written in the transaction of
-- the change they belong to.

CREATE TABLE idempotency_keys (
    -- Whose key it is (`key:NAME`, `user:ID`): one client cannot replay another's.
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    response_status INTEGER NOT NULL CHECK (response_status BETWEEN 100 AND 599),
    response_body   BLOB NOT NULL,
    created_at      BIGINT NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, key)
);

-- Pruning of old keys.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

CREATE TABLE audit_log (
    -- INTEGER PRIMARY KEY is SQLite's 64-bit rowid.
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    action        TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    resource_type TEXT NOT NULL CHECK (resource_type IN ('product', 'license')),
    resource_id   TEXT NOT NULL,
    occurred_at   BIGINT NOT NULL,
    actor         TEXT NOT NULL
);

CREATE INDEX audit_log_resource_idx ON audit_log (resource_type, resource_id);

-- The audit trail is append-only: rows can be added, never changed nor removed.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
