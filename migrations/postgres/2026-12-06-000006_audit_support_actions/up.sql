-- The support staff's actions in the audit trail (issue 21): a license suspended or
-- reinstated (replaced by a copy under a new id: `related_id` names the other license of the
-- replacement), and a failed Irdeto job retried by the operator.
ALTER TABLE audit_log ADD COLUMN related_id TEXT;

ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check
    CHECK (action IN ('create', 'update', 'delete', 'suspend', 'reinstate', 'drm_retry'));
