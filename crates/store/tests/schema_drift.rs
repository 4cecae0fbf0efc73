//! Fails when `src/schema.rs` no longer matches what the migrations build: after migrating a
//! fresh database of each backend, its tables, columns, types, nullability and primary keys
//! (PostgreSQL: information_schema; SQLite: pragma_table_info) are compared with the
//! `diesel::table!` blocks of the schema.rs source.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use licenses_store::AnyConnection;
use licenses_testkit::TestDatabase;

const SCHEMA_RS: &str = include_str!("../src/schema.rs");

/// A column as diesel sees it: its type (`BigInt`) and whether it is `Nullable<…>`.
type Column = (String, bool);

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Table {
    primary_key: Vec<String>,
    columns: BTreeMap<String, Column>,
}

type Schema = BTreeMap<String, Table>;

/// The tables that `diesel::table!` declares in `source`.
fn declared(source: &str) -> Schema {
    let mut schema = Schema::new();
    let mut lines = source.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if !line.starts_with("diesel::table!") {
            continue;
        }
        let head = lines.next().expect("a table head after diesel::table!");
        // `licenses (id) {`
        let (name, rest) = head.split_once(' ').expect("`name (key) {`");
        let key = rest
            .trim_end_matches('{')
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')');
        let mut table = Table {
            primary_key: key.split(',').map(|k| k.trim().to_owned()).collect(),
            ..Table::default()
        };
        for line in lines.by_ref() {
            if line == "}" {
                break;
            }
            if line.is_empty() || line.starts_with("//") || line.starts_with('#') {
                continue;
            }
            let (column, ty) = line
                .trim_end_matches(',')
                .split_once("->")
                .unwrap_or_else(|| panic!("`column -> Type,` expected, got {line:?}"));
            let ty = ty.trim();
            let column_type = match ty
                .strip_prefix("Nullable<")
                .and_then(|t| t.strip_suffix('>'))
            {
                Some(inner) => (inner.to_owned(), true),
                None => (ty.to_owned(), false),
            };
            table.columns.insert(column.trim().to_owned(), column_type);
        }
        schema.insert(name.to_owned(), table);
    }
    schema
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

#[derive(QueryableByName)]
struct PgKey {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

#[derive(QueryableByName)]
struct SqliteTable {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    r#type: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

const BOOKKEEPING: &str = "__diesel_schema_migrations";

/// What the database holds, in diesel's terms.
fn introspect(conn: &mut AnyConnection) -> Schema {
    let mut schema = Schema::new();
    match conn {
        AnyConnection::Postgresql(pg) => {
            let columns: Vec<PgColumn> = diesel::sql_query(
                "SELECT table_name::text AS table_name, column_name::text AS column_name, \
                        data_type::text AS data_type, is_nullable::text AS is_nullable \
                 FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
            )
            .load(pg)
            .unwrap();
            for c in columns {
                let ty = match c.data_type.as_str() {
                    "text" => "Text",
                    "bigint" => "BigInt",
                    "integer" => "Integer",
                    "boolean" => "Bool",
                    "bytea" => "Binary",
                    other => panic!(
                        "{}.{}: no diesel type for {other}",
                        c.table_name, c.column_name
                    ),
                };
                schema
                    .entry(c.table_name)
                    .or_default()
                    .columns
                    .insert(c.column_name, (ty.to_owned(), c.is_nullable == "YES"));
            }
            let keys: Vec<PgKey> = diesel::sql_query(
                "SELECT tc.table_name::text AS table_name, kcu.column_name::text AS column_name \
                 FROM information_schema.table_constraints tc \
                 JOIN information_schema.key_column_usage kcu \
                   ON kcu.constraint_name = tc.constraint_name \
                  AND kcu.table_schema = tc.table_schema \
                  AND kcu.table_name = tc.table_name \
                 WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public' \
                   AND tc.table_name <> '__diesel_schema_migrations' \
                 ORDER BY tc.table_name, kcu.ordinal_position",
            )
            .load(pg)
            .unwrap();
            for k in keys {
                schema
                    .entry(k.table_name)
                    .or_default()
                    .primary_key
                    .push(k.column_name);
            }
        }
        AnyConnection::Sqlite(lite) => {
            let tables: Vec<SqliteTable> = diesel::sql_query(format!(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name <> '{BOOKKEEPING}'"
            ))
            .load(lite)
            .unwrap();
            for t in tables {
                let mut columns: Vec<SqliteColumn> = diesel::sql_query(
                    "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)",
                )
                .bind::<Text, _>(&t.name)
                .load(lite)
                .unwrap();
                columns.sort_by_key(|c| c.pk);
                let keys = columns.iter().filter(|c| c.pk > 0).count();
                let table = schema.entry(t.name.clone()).or_default();
                for c in columns {
                    // INTEGER PRIMARY KEY is the rowid: 64-bit, never NULL.
                    let rowid = c.pk > 0 && keys == 1 && c.r#type.eq_ignore_ascii_case("INTEGER");
                    let ty = match c.r#type.to_ascii_uppercase().as_str() {
                        "TEXT" => "Text",
                        "BIGINT" => "BigInt",
                        "INTEGER" if rowid => "BigInt",
                        "INTEGER" => "Integer",
                        "BOOLEAN" => "Bool",
                        "BLOB" => "Binary",
                        other => panic!("{}.{}: no diesel type for {other}", t.name, c.name),
                    };
                    if c.pk > 0 {
                        table.primary_key.push(c.name.clone());
                    }
                    table
                        .columns
                        .insert(c.name, (ty.to_owned(), c.notnull == 0 && !rowid));
                }
            }
        }
    }
    schema
}

async fn check(db: TestDatabase) {
    let ctx = support::Ctx::new(db).await;
    let actual = ctx.store.with_connection(introspect).await.unwrap();
    let expected = declared(SCHEMA_RS);
    for (name, table) in &expected {
        assert_eq!(
            actual.get(name),
            Some(table),
            "{:?}: schema.rs declares table {name} differently from the migrations",
            ctx.store.backend()
        );
    }
    let names = |s: &Schema| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&actual),
        names(&expected),
        "tables in the database vs schema.rs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_rs_matches_the_postgres_migrations() {
    check(TestDatabase::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_rs_matches_the_sqlite_migrations() {
    check(TestDatabase::sqlite()).await;
}

#[test]
fn the_parser_reads_every_table_and_notices_a_change() {
    let schema = declared(SCHEMA_RS);
    assert_eq!(
        schema.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "audit_log",
            "catalogue_version",
            "entitlement_jobs",
            "event_marks",
            "event_user_sequences",
            "events",
            "idempotency_keys",
            "licenses",
            "products",
            "webhook_deliveries",
            "webhook_endpoints"
        ]
    );
    assert_eq!(schema["idempotency_keys"].primary_key, ["scope", "key"]);
    assert_eq!(
        schema["licenses"].columns["stop_date"],
        ("BigInt".to_owned(), true)
    );
    assert_eq!(schema["licenses"].columns.len(), 16);

    // A drift the comparison must see: a column made nullable in schema.rs only.
    let drifted = declared(&SCHEMA_RS.replace("title -> Text,", "title -> Nullable<Text>,"));
    assert_ne!(drifted, schema);
}
