//! `licenses import`: the wiring of the legacy import ([`licenses_import`]). Opens the
//! import's files first, then the store of the settings (refused while a migration is
//! pending: the import never changes the schema) and the use cases over it, and runs the
//! import through them.

use licenses_import::{Import, ImportArgs, Summary};

use crate::settings::Settings;
use crate::{Services, StartError};

/// Why `licenses import` stopped: the service could not be opened, or the import failed.
/// Batches committed before stay committed: running the same command again continues after
/// them.
#[derive(Debug, thiserror::Error)]
pub enum ImportCommandError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(
        "database.url: {0} migration(s) pending: run `licenses migrate` first (the import never \
         changes the schema)"
    )]
    Pending(usize),
    #[error(transparent)]
    Import(#[from] licenses_import::ImportError),
}

/// `licenses import`: opens the store of `settings`, imports `args.file`, and returns the
/// summary (already printed).
pub async fn run(settings: Settings, args: ImportArgs) -> Result<Summary, ImportCommandError> {
    let import = Import::open(args)?;
    settings.validate().map_err(StartError::from)?;
    let store = crate::open_store(&settings).await?;
    let pending = store
        .pending_migrations()
        .await
        .map_err(|e| StartError::Database(format!("database.url: {e}")))?;
    if pending > 0 {
        return Err(ImportCommandError::Pending(pending));
    }
    let app = Services::new(&store, settings)?.app;
    Ok(import.run(&app).await?)
}
