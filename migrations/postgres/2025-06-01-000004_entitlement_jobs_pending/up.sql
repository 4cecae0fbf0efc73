-- Claiming stays cheap however long the history of delivered jobs grows: the claim walks the
-- PENDING jobs in id order, and checks each for an earlier PENDING job of its license.
CREATE INDEX entitlement_jobs_pending_id_idx ON entitlement_jobs (id) WHERE state = 'PENDING';
CREATE INDEX entitlement_jobs_pending_license_idx
    ON entitlement_jobs (license_id, id) WHERE state = 'PENDING';
