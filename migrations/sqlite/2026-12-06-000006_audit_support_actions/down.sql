-- The table is rebuilt with the narrower rule: the rows of the new actions cannot be kept
-- under it and are left out.
CREATE TABLE audit_log_old (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    action        TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    resource_type TEXT NOT NULL CHECK (resource_type IN ('product', 'license')),
    resource_id   TEXT NOT NULL,
    occurred_at   BIGINT NOT NULL,
    actor         TEXT NOT NULL
);

INSERT INTO audit_log_old (id, action, resource_type, resource_id, occurred_at, actor)
    SELECT id, action, resource_type, resource_id, occurred_at, actor FROM audit_log
    WHERE action IN ('create', 'update', 'delete');

DROP TABLE audit_log;
ALTER TABLE audit_log_old RENAME TO audit_log;

CREATE INDEX audit_log_resource_idx ON audit_log (resource_type, resource_id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
