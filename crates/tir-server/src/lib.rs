//! The HTTP layer: parses requests, authenticates the sender, calls the
//! store (which runs the eTIR model) and renders the answer.

mod admin;
mod auth;
mod error;
mod messages;
pub mod openapi;
mod queries;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use tir_model::limits::BODY_BYTES_MAX;
use tir_store::Store;

pub use admin::verdict_json;
pub use auth::Parties;
pub use error::ApiError;

/// The application context handed to every handler.
#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub parties: Arc<Parties>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, admin_token: &str) -> App {
        App { parties: Arc::new(Parties::new(store.clone(), admin_token)), store }
    }
}

/// Every route of the service; `openapi` documents each one.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/health", get(queries::health))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/messages", post(messages::submit))
        .route("/v1/guarantees/{reference}", get(queries::guarantee))
        .route("/v1/guarantees/{reference}/declaration", get(queries::declaration))
        .route("/v1/guarantees/{reference}/timeline", get(queries::timeline))
        .route("/v1/holders/{tir_id}", get(queries::holder))
        .route("/v1/offices/{code}", get(queries::office))
        .route("/v1/notifications", get(queries::notifications))
        .route("/v1/admin/parties", post(admin::create_party))
        .route("/v1/admin/parties/{id}", delete(admin::revoke_party))
        .route("/v1/admin/offices", post(admin::create_office))
        .route("/v1/admin/holders/{tir_id}", put(admin::put_holder))
        .route("/v1/admin/journal/verify", get(admin::verify_journal))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(app)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown).await
}
