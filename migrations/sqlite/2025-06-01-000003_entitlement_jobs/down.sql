DROP TABLE entitlement_jobs;
