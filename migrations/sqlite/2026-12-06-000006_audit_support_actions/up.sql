-- The support staff's actions in the audit trail (issue 21): a license suspended or
-- reinstated (replaced by a copy under a new id: `related_id` names the other license of the
-- replacement), and a failed Irdeto job retried by the operator.
--
-- SQLite cannot change a CHECK constraint: the table is rebuilt, its rows copied with their
-- ids. Dropping the old table drops its triggers before its rows, so the append-only rule
-- does not fire; it is set again on the new table.
CREATE TABLE audit_log_new (
    -- INTEGER PRIMARY KEY is SQLite's 64-bit rowid.
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    action        TEXT NOT NULL
        CHECK (action IN ('create', 'update', 'delete', 'suspend', 'reinstate', 'drm_retry')),
    resource_type TEXT NOT NULL CHECK (resource_type IN ('product', 'license')),
    resource_id   TEXT NOT NULL,
    occurred_at   BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    related_id    TEXT
);

INSERT INTO audit_log_new (id, action, resource_type, resource_id, occurred_at, actor)
    SELECT id, action, resource_type, resource_id, occurred_at, actor FROM audit_log;

DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;

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
