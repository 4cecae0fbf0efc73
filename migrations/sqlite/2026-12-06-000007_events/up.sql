-- License and product events (docs/events.md; SQLite), written in the transaction of the
-- change that makes them, like the Irdeto outbox.
--
-- `id` is the order of writing, which concurrent transactions commit out of. Readers page by
-- `position`, the commit order: the sequencer (one at a time: SQLite has one writer) gives
-- positions to the committed events that have none, in id order, together with each user's
-- next `user_seq`. An event is visible to readers only once it has a position, so a reader's
-- cursor never passes an event that commits later.
CREATE TABLE events (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    -- The stable id consumers dedupe by (a UUID), also the Nats-Msg-Id and the webhook-id.
    event_id    TEXT NOT NULL UNIQUE,
    event_type  TEXT NOT NULL CHECK (event_type IN (
        'license.created', 'license.deleted', 'license.activated', 'license.order_error', 'license.updated', 'license.expired', 'license.expiring_soon', 'product.created', 'product.updated', 'product.deleted')),
    -- NULL for product events.
    user_id     TEXT,
    -- The license or product the event is about.
    subject_id  TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    -- The resource as it was, in the store's own JSON (rendered as the API renders it on the
    -- way out).
    snapshot    TEXT NOT NULL,
    position    BIGINT UNIQUE,
    user_seq    BIGINT,
    CHECK (position IS NOT NULL OR user_seq IS NULL)
);

-- The sequencer's work.
CREATE INDEX events_unsequenced_idx ON events (id) WHERE position IS NULL;
-- filter[user] and filter[type] of the feed.
CREATE INDEX events_user_position_idx ON events (user_id, position);
CREATE INDEX events_type_position_idx ON events (event_type, position);
-- One expiry event of each kind per license, however many instances schedule them.
CREATE UNIQUE INDEX events_expiry_once_idx ON events (subject_id, event_type)
    WHERE event_type IN ('license.expired', 'license.expiring_soon');

-- Each user's last sequence number (kept when old events are pruned).
CREATE TABLE event_user_sequences (
    user_id  TEXT NOT NULL PRIMARY KEY,
    last_seq BIGINT NOT NULL
);

-- Named marks: how far the feed was pruned ('pruned'), how far each publisher got ('nats',
-- 'webhooks'), how far the expiry scheduler looked ('expired', 'expiring_soon': stop dates).
CREATE TABLE event_marks (
    name  TEXT NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
