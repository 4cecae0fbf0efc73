DROP INDEX events_type_position_idx;
CREATE INDEX events_type_position_idx ON events (event_type, position);

DROP INDEX events_user_position_idx;
CREATE INDEX events_user_position_idx ON events (user_id, position);
