//! The one-shot commands that open the store and run a use case: `licenses migrate` and
//! `licenses irdeto resync|retry`. [`crate::cli`] parses them and prints what these answer;
//! the serving wiring they share (the store, [`Services`]) is the crate root's.

use crate::settings::{self, Settings};
use crate::{Services, StartError, cli, open_store};

/// `licenses irdeto …`: a resync of the grants of active licenses, or the retry of a failed
/// job; what to print.
pub async fn irdeto_command(
    settings: Settings,
    command: cli::IrdetoCommand,
) -> Result<String, StartError> {
    settings.validate()?;
    if !settings.irdeto.enabled {
        return Err(StartError::Irdeto(
            "irdeto.enabled is false here: there are no Irdeto entitlements to resync or retry"
                .into(),
        ));
    }
    let store = open_store(&settings).await?;
    let services = Services::new(&store, settings)?;
    let failed = |e: licenses_app::AppError| StartError::Irdeto(format!("irdeto: {e}"));
    match command {
        cli::IrdetoCommand::Resync { user } => {
            let user = user
                .map(licenses_domain::UserId::parse)
                .transpose()
                .map_err(|e| StartError::Irdeto(format!("--user: {e}")))?;
            let queued = services
                .app
                .resync_entitlements(user)
                .await
                .map_err(failed)?;
            Ok(format!(
                "queued {queued} Irdeto grant(s); the workers of `licenses serve` deliver them"
            ))
        }
        cli::IrdetoCommand::Retry { job } => {
            services
                .app
                .retry_entitlement_job(licenses_app::ports::Actor::System("cli"), job)
                .await
                .map_err(failed)?;
            Ok(format!("job {job} is due again"))
        }
    }
}

/// `licenses migrate`: applies the pending migrations to `database.url`; their names.
pub async fn migrate(settings: &Settings) -> Result<Vec<String>, StartError> {
    settings.validate()?;
    let store = open_store(settings).await?;
    store.migrate().await.map_err(|e| StartError::Migrations {
        url: settings::redacted_url(&settings.database.url),
        reason: e.to_string(),
    })
}
