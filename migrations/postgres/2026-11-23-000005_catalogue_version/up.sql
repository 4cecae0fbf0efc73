-- A cheap change marker for the in-memory catalogue of every instance: each instance polls
-- this one row and reloads the products only when `version` moved. Every write to products,
-- by any writer (another instance, an import, manual SQL), bumps it in the same transaction.
CREATE TABLE catalogue_version (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO catalogue_version (id, version) VALUES (1, 1);

CREATE FUNCTION bump_catalogue_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalogue_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

-- Statement-level: one bump per statement, however many rows it touched.
CREATE TRIGGER products_bump_catalogue_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION bump_catalogue_version();
