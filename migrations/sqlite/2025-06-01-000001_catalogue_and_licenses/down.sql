DROP TABLE licenses;
DROP TABLE products;
