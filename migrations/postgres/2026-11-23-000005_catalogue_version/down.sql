DROP TRIGGER products_bump_catalogue_version ON products;
DROP FUNCTION bump_catalogue_version();
DROP TABLE catalogue_version;
