//! The health endpoints, on every listener:
//! - `GET /health/live`: 200 while the process runs;
//! - `GET /health/ready`: 200 when the store answers and no migration is pending
//!   ([`StoreHealth::ready`]), else 503 with `Retry-After: 1`.
//!
//! Both answer JSON: `{"status":"ok"}` or `{"status":"unavailable"}`.

use std::sync::Arc;

use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpResponse, web};
use licenses_app::ports::StoreHealth;
use serde_json::json;

/// Mounts both endpoints, reading readiness from `health`.
pub(crate) fn routes(cfg: &mut web::ServiceConfig, health: Arc<dyn StoreHealth>) {
    cfg.app_data(web::Data::from(health))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn ready(health: web::Data<dyn StoreHealth>) -> HttpResponse {
    match health.ready().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ok" })),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            HttpResponse::ServiceUnavailable()
                .insert_header((RETRY_AFTER, "1"))
                .json(json!({ "status": "unavailable" }))
        }
    }
}
