-- The outbox of Irdeto entitlement jobs (SQLite), written in the transaction of the license
-- change that needs them.

CREATE TABLE entitlement_jobs (
    -- INTEGER PRIMARY KEY is SQLite's 64-bit rowid.
    id             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL CHECK (kind IN ('GRANT', 'REVOKE')),
    -- No foreign key: a revoke outlives its license.
    license_id     TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    irdeto_product TEXT NOT NULL,
    valid_from     BIGINT NOT NULL,
    valid_until    BIGINT,
    -- PENDING: to deliver (again, when attempts > 0) at due_at; DONE: delivered;
    -- PARKED: given up on, last_error says why.
    state          TEXT NOT NULL CHECK (state IN ('PENDING', 'DONE', 'PARKED')),
    attempts       INTEGER NOT NULL CHECK (attempts >= 0),
    due_at         BIGINT NOT NULL,
    leased_until   BIGINT,
    last_error     TEXT,
    created_at     BIGINT NOT NULL
);

-- Claiming due jobs, and the backlog.
CREATE INDEX entitlement_jobs_state_due_at_idx ON entitlement_jobs (state, due_at);
CREATE INDEX entitlement_jobs_license_id_idx ON entitlement_jobs (license_id);
