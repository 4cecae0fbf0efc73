-- A cheap change marker for the in-memory catalogue of every instance: each instance polls
-- this one row and reloads the products only when `version` moved. Every write to products,
-- by any writer (another instance, an import, manual SQL), bumps it in the same transaction.
CREATE TABLE catalogue_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO catalogue_version (id, version) VALUES (1, 1);

-- SQLite has row triggers only: one bump per row written.
CREATE TRIGGER products_insert_bumps_catalogue_version AFTER INSERT ON products
BEGIN
    UPDATE catalogue_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER products_update_bumps_catalogue_version AFTER UPDATE ON products
BEGIN
    UPDATE catalogue_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER products_delete_bumps_catalogue_version AFTER DELETE ON products
BEGIN
    UPDATE catalogue_version SET version = version + 1 WHERE id = 1;
END;
