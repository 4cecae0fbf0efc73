//! Housekeeping that runs in the background of `licenses serve`.

use std::time::Duration;

use licenses_app::App;

/// How often idempotency keys and delivered entitlement jobs past their retention are deleted.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Deletes expired idempotency keys and delivered entitlement jobs now and then every
/// [`PRUNE_EVERY`], for as long as the runtime lives. Each prune is one statement, so stopping the service mid-way is harmless;
/// several instances pruning at once delete the same rows and no more.
pub fn spawn_key_pruning(app: App) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            prune_once(&app).await;
        }
    })
}

/// One prune of each; failures are logged and retried at the next tick.
pub async fn prune_once(app: &App) {
    match app.prune_idempotency_keys().await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "idempotency keys past their retention deleted"),
        Err(error) => tracing::warn!(%error, "cannot prune idempotency keys; retrying later"),
    }
    match app.prune_delivered_jobs().await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(
            pruned,
            "delivered entitlement jobs past their retention deleted"
        ),
        Err(error) => {
            tracing::warn!(%error, "cannot prune delivered entitlement jobs; retrying later")
        }
    }
}
