//! The embedded migrations, one set per backend (`migrations/postgres`, `migrations/sqlite`).

use diesel::backend::Backend as DieselBackend;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use licenses_app::ports::StoreError;

use crate::connection::AnyConnection;
use crate::error::{Error, translate};

/// The PostgreSQL migrations.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
/// The SQLite migrations.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// The session advisory lock that lets one PostgreSQL migrator in at a time ("LICENSES").
const MIGRATION_LOCK: i64 = 0x4C49_4345_4E53_4553;

/// Diesel's bookkeeping table.
const BOOKKEEPING: &str = "__diesel_schema_migrations";

type MigrationError = Box<dyn std::error::Error + Send + Sync>;

fn migration_error(e: MigrationError) -> Error {
    match e.downcast::<diesel::result::Error>() {
        Ok(db) => Error::Store(translate(&db)),
        Err(other) => Error::Store(StoreError::Internal(format!("migration failed: {other}"))),
    }
}

/// Applies the pending migrations, each in a transaction of its own; their names.
fn apply<DB, C>(conn: &mut C, source: EmbeddedMigrations) -> Result<Vec<String>, Error>
where
    DB: DieselBackend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let pending = conn.pending_migrations(source).map_err(migration_error)?;
    let mut applied = Vec::with_capacity(pending.len());
    for migration in pending {
        conn.run_migration(&*migration).map_err(migration_error)?;
        let name = migration.name().to_string();
        tracing::info!(migration = %name, "migration applied");
        applied.push(name);
    }
    Ok(applied)
}

/// Applies the pending migrations; their names.
///
/// PostgreSQL: under a session advisory lock, so that instances starting at once migrate one
/// after the other (the later ones find nothing pending). SQLite: inside one `BEGIN
/// IMMEDIATE` transaction, which excludes every other writer of the file.
pub(crate) fn migrate(conn: &mut AnyConnection) -> Result<Vec<String>, Error> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            diesel::sql_query("SELECT pg_advisory_lock($1)")
                .bind::<BigInt, _>(MIGRATION_LOCK)
                .execute(pg)?;
            let applied = apply(pg, POSTGRES_MIGRATIONS);
            let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<BigInt, _>(MIGRATION_LOCK)
                .execute(pg);
            let applied = applied?;
            unlocked?;
            Ok(applied)
        }
        AnyConnection::Sqlite(lite) => {
            AnsiTransactionManager::begin_transaction_sql(lite, "BEGIN IMMEDIATE")?;
            match apply(lite, SQLITE_MIGRATIONS) {
                Ok(applied) => {
                    <AnsiTransactionManager as TransactionManager<SqliteConnection>>::commit_transaction(lite)?;
                    Ok(applied)
                }
                Err(e) => {
                    // The error that matters is the migration's.
                    let _ = <AnsiTransactionManager as TransactionManager<SqliteConnection>>::rollback_transaction(lite);
                    Err(e)
                }
            }
        }
    }
}

#[derive(QueryableByName)]
struct Present {
    #[diesel(sql_type = Bool)]
    present: bool,
}

/// How many migrations are not applied yet. Reads only: on a database never migrated, the
/// bookkeeping table is not created (which could race with a migrator).
pub(crate) fn pending(conn: &mut AnyConnection) -> Result<usize, Error> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            let present = diesel::sql_query(format!(
                "SELECT to_regclass('{BOOKKEEPING}') IS NOT NULL AS present"
            ))
            .get_result::<Present>(pg)?
            .present;
            count_pending::<diesel::pg::Pg, PgConnection>(pg, present, POSTGRES_MIGRATIONS)
        }
        AnyConnection::Sqlite(lite) => {
            let present = diesel::sql_query(format!(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
                 AND name = '{BOOKKEEPING}') AS present"
            ))
            .get_result::<Present>(lite)?
            .present;
            count_pending::<diesel::sqlite::Sqlite, SqliteConnection>(
                lite,
                present,
                SQLITE_MIGRATIONS,
            )
        }
    }
}

fn count_pending<DB, C>(
    conn: &mut C,
    present: bool,
    source: EmbeddedMigrations,
) -> Result<usize, Error>
where
    DB: DieselBackend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    if present {
        Ok(conn
            .pending_migrations(source)
            .map_err(migration_error)?
            .len())
    } else {
        Ok(MigrationSource::<DB>::migrations(&source)
            .map_err(migration_error)?
            .len())
    }
}
