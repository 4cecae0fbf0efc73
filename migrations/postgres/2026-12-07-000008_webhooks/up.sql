-- Webhook endpoints and their deliveries (docs/events.md, "Webhooks").
--
-- The fan-out reads the sequenced events after the mark 'webhooks' (event_marks) and queues
-- one delivery per event and endpoint whose filter takes it, in the transaction that moves
-- the mark: an event is queued once per endpoint, whatever the number of instances.
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    -- `whsec_…`: what signs; shown to the receiver once, when the endpoint is created.
    secret          TEXT NOT NULL,
    -- Space-separated event types; empty: every type.
    event_types     TEXT NOT NULL,
    description     TEXT NOT NULL,
    -- Events after this position are delivered (the head when the endpoint was created or
    -- enabled again).
    after_position  BIGINT NOT NULL,
    -- Set when disabled (by a PATCH, a 410 answer or failures for webhooks.disable_after_days).
    disabled_at_ms  BIGINT,
    disabled_reason TEXT CHECK (disabled_reason IN ('manual', 'gone', 'failing')),
    -- The first failed attempt since the last delivered one.
    failing_since_ms BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CHECK ((disabled_at_ms IS NULL) = (disabled_reason IS NULL))
);

CREATE TABLE webhook_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The event (its body is rendered from `events` at each attempt).
    position        BIGINT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    -- NULL for product events; a user's deliveries to one endpoint are made in order.
    user_id         TEXT,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    -- A worker's claim: another instance takes the delivery only once it has passed.
    lease_until_ms  BIGINT,
    lease_token     TEXT,
    last_attempt_ms BIGINT,
    last_status     INTEGER,
    last_answer     TEXT,
    UNIQUE (endpoint_id, position)
);

-- The workers' claims: pending deliveries, oldest first (a claim walks them in id order and
-- stops at its LIMIT, rather than sorting every pending delivery by due time).
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (id)
    WHERE state = 'pending';
-- A user's earlier pending delivery to the same endpoint holds back the later ones.
CREATE INDEX webhook_deliveries_user_idx ON webhook_deliveries (endpoint_id, user_id, position)
    WHERE state = 'pending';
-- An endpoint's deliveries, by state, for the API's list and replay.
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, state, id);
