-- Wake-ups across instances (docs/operations.md, "Scaling out"): a transaction that queues
-- Irdeto jobs or writes events notifies the instances' listeners when it commits, so that
-- every instance's delivery worker and sequencer wake at once instead of at their next poll.
-- One notification per statement, not per row: PostgreSQL folds repeats within a transaction
-- into one, delivered after COMMIT and never for a rollback.
CREATE FUNCTION licenses_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END
$$;

CREATE TRIGGER entitlement_jobs_notify AFTER INSERT ON entitlement_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION licenses_notify('licenses_jobs');
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION licenses_notify('licenses_events');
