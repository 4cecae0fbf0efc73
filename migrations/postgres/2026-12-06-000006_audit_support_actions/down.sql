-- The rows of the new actions stay (the trail is append-only): the narrower rule applies to
-- new rows only.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check
    CHECK (action IN ('create', 'update', 'delete')) NOT VALID;

ALTER TABLE audit_log DROP COLUMN related_id;
