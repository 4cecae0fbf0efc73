DROP TRIGGER events_notify ON events;
DROP TRIGGER entitlement_jobs_notify ON entitlement_jobs;
DROP FUNCTION licenses_notify();
