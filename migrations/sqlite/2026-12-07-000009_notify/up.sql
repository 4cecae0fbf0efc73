-- PostgreSQL's wake-ups across instances (LISTEN/NOTIFY) have no SQLite counterpart: an
-- embedded database has one instance, whose workers its own writes wake in process. This
-- migration keeps both backends' histories alike.
SELECT 1;
