//! Storage adapter: diesel + r2d2 on PostgreSQL and SQLite
