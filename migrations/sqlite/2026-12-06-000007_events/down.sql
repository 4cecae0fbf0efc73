DROP TABLE event_marks;
DROP TABLE event_user_sequences;
DROP TABLE events;
