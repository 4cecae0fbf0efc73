-- The feed's filter indexes hold sequenced events only (SQLite). An event is written without
-- a position and given one by the sequencer; indexed in full, each event went into these
-- indexes twice, once with a NULL nobody reads by. The feed's reads ask for a position
-- (`position > ?`), which SQLite takes as implying `position IS NOT NULL`. The unique index
-- of the `position UNIQUE` column stays whole: SQLite drops it only with the table.
DROP INDEX events_user_position_idx;
CREATE INDEX events_user_position_idx ON events (user_id, position) WHERE position IS NOT NULL;

DROP INDEX events_type_position_idx;
CREATE INDEX events_type_position_idx ON events (event_type, position) WHERE position IS NOT NULL;
