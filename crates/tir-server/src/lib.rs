//! The HTTP layer: parses requests, authenticates the sender, calls the
//! store (which runs the eTIR model) and renders the answer.

mod admin;
mod assessments;
mod assessor;
mod auth;
mod conn;
pub mod direct;
mod document;
mod error;
mod fallback;
mod heads;
mod messages;
mod observe;
mod openapi;
mod push;
mod queries;
mod rate;
mod risk;
mod signing;
mod tls;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tir_model::limits::BODY_BYTES_MAX;
use tir_store::Store;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use admin::verdict_json;
pub use assessments::submit_result;
pub use assessor::{ASSESSOR_BATCH_ITEMS, ASSESSOR_NICE, Assessor, AssessorThread};
pub use auth::Parties;
pub use conn::{
    BODY_READ_TIMEOUT, CONNECTIONS_MAX, HEADER_BYTES_MAX, HEADER_READ_TIMEOUT, SHUTDOWN_GRACE, ServeLimits,
    URI_BYTES_MAX,
};
pub use error::ApiError;
pub use messages::submit_message;
pub use observe::{FEED_DEPTH_COUNTED_MAX, Metrics};
pub use push::{PushConfig, Pusher, SIGNATURE_HEADER as PUSH_SIGNATURE_HEADER, signature as push_signature};
pub use rate::{
    ADMIN_RATE_LIMIT, CUSTOMS_RATE_LIMIT, GUARANTEE_CHAIN_RATE_LIMIT, HOLDER_RATE_LIMIT, RateLimit, RateLimits,
};
pub use tir_store::HEAD_SIGN_INTERVAL;
pub use tls::{PeerCertificate, PushRoots, Tls, TlsError, certificate_sha256};

/// The application context handed to every handler.
#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub parties: Arc<Parties>,
    /// Per-party token buckets, checked right after authentication (code 386).
    limiter: Arc<rate::Limiter>,
    /// Whether `serve` runs the assessor beside the routes (docs/risk.md).
    risk: bool,
    /// How `serve` pushes feeds to the parties' endpoints; `None`: it does not (`--no-push`).
    push: Option<PushConfig>,
    /// CA certificates push deliveries trust beside the Mozilla roots (`--push-ca`).
    push_roots: PushRoots,
    /// What `GET /metrics` shows.
    metrics: Arc<Metrics>,
    /// The SHA-256 of the token `GET /metrics` asks for; `None`: open.
    metrics_token: Option<String>,
    /// How often `serve` signs the journal's head (`HEAD_SIGN_INTERVAL`).
    head_interval: std::time::Duration,
    /// Routes served beside the API's (the console, nested under `/console`).
    extra: Option<Router>,
}

impl App {
    /// An app with no rate limits: tests, the test kit and `tirhub bench` measure
    /// the exchange, not the limiter. A served instance adds them with `with_rate_limits`.
    pub fn new(store: Arc<dyn Store>, admin_token: &str) -> App {
        App {
            parties: Arc::new(Parties::new(store.clone(), admin_token)),
            store,
            limiter: Arc::new(rate::Limiter::new(RateLimits::unlimited())),
            risk: true,
            push: Some(PushConfig::default()),
            push_roots: PushRoots::default(),
            metrics: Arc::new(Metrics::default()),
            metrics_token: None,
            head_interval: HEAD_SIGN_INTERVAL,
            extra: None,
        }
    }

    /// The same app with `GET /metrics` behind this bearer token.
    pub fn with_metrics_token(mut self, token: &str) -> App {
        self.metrics_token = Some(tir_store::token::hash(token.trim()));
        self
    }

    /// The same app signing the journal's head every `interval` instead of
    /// `HEAD_SIGN_INTERVAL` (tests, which cannot wait 10 s for a checkpoint).
    pub fn with_head_interval(mut self, interval: std::time::Duration) -> App {
        self.head_interval = interval;
        self
    }

    /// The same app with no assessor: `tirhub bench --no-risk` measures the
    /// exchange alone against it.
    pub fn without_risk(mut self) -> App {
        self.risk = false;
        self
    }

    /// The same app pushing with `config` (tests shorten its delays).
    pub fn with_push(mut self, config: PushConfig) -> App {
        self.push = Some(config);
        self
    }

    /// The same app with push deliveries also trusting these CAs.
    pub fn with_push_roots(mut self, roots: PushRoots) -> App {
        self.push_roots = roots;
        self
    }

    /// The same app with no push delivery (`--no-push`): parties read their feeds.
    pub fn without_push(mut self) -> App {
        self.push = None;
        self
    }

    /// The same app with these per-kind rate limits (its buckets start full).
    pub fn with_rate_limits(mut self, limits: RateLimits) -> App {
        self.limiter = Arc::new(rate::Limiter::new(limits));
        self
    }

    /// The same app serving `routes` beside the API's, inside the same
    /// connection limits, body limits and metrics. Their paths must not
    /// overlap the API's (the console keeps to `/console`).
    pub fn with_routes(mut self, routes: Router) -> App {
        self.extra = Some(routes);
        self
    }

    pub fn rate_limits(&self) -> &RateLimits {
        self.limiter.limits()
    }
}

/// Every route of the service, and the OpenAPI document made from the same list.
fn routes() -> (Router<App>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(queries::health))
        .routes(routes!(openapi::serve))
        .routes(routes!(messages::submit))
        .routes(routes!(queries::guarantee))
        .routes(routes!(queries::declaration))
        .routes(routes!(queries::timeline))
        .routes(routes!(queries::holder))
        .routes(routes!(queries::office))
        .routes(routes!(queries::notifications))
        .routes(routes!(push::put_endpoint, push::get_endpoint, push::delete_endpoint))
        .routes(routes!(push::deliveries))
        .routes(routes!(admin::create_party))
        .routes(routes!(admin::revoke_party))
        .routes(routes!(admin::bind_certificate))
        .routes(routes!(admin::create_office))
        .routes(routes!(admin::put_holder))
        .routes(routes!(admin::verify_journal))
        .routes(routes!(signing::put_key, signing::get_key))
        .routes(routes!(signing::revoke_key))
        .routes(routes!(document::accompanying_document))
        .routes(routes!(heads::keys))
        .routes(routes!(heads::head))
        .routes(routes!(risk::create_profile, risk::list_profiles))
        .routes(routes!(risk::edit_profile, risk::get_profile))
        .routes(routes!(assessments::preview_profile))
        .routes(routes!(assessments::assessments))
        .routes(routes!(assessments::record_result))
        .routes(routes!(assessments::stats))
        .routes(routes!(assessments::list_policies))
        .routes(routes!(assessments::put_policy))
        .routes(routes!(assessments::list_models))
        .routes(routes!(fallback::declare, fallback::list))
        .routes(routes!(fallback::get))
        .routes(routes!(fallback::end))
        .routes(routes!(fallback::reconciliation))
        .split_for_parts()
}

/// The OpenAPI document served at `/v1/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    openapi::finish(routes().1)
}

pub fn router(app: App) -> Router {
    router_with(app, BODY_READ_TIMEOUT)
}

fn router_with(app: App, body_read_timeout: std::time::Duration) -> Router {
    let metrics = app.metrics.clone();
    let (router, document) = routes();
    let extra = app.extra.clone();
    let mut router = router.route("/metrics", axum::routing::get(observe::serve)).with_state(app);
    if let Some(extra) = extra {
        router = router.merge(extra);
    }
    // Made once per process, at start: a document that cannot serialize fails here, not in a request.
    openapi::DOCUMENT.get_or_init(|| openapi::finish(document).to_json().expect("the OpenAPI document serializes"));
    router
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn(move |request, next| conn::body_deadline(body_read_timeout, request, next)))
        .layer(axum::middleware::from_fn(conn::uri_limit))
        .layer(axum::middleware::from_fn(move |request, next| observe::observe(metrics.clone(), request, next)))
}

/// Serves until `shutdown` resolves, within the default `ServeLimits`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, ServeLimits::default(), shutdown).await
}

/// Serves until `shutdown` resolves, within `limits`; answers in flight then
/// have `limits.shutdown_grace` to finish.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: App,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_tls(listener, app, limits, None, shutdown).await
}

/// As `serve_with`, over TLS when `tls` is given (`--tls-cert`, `--tls-key`,
/// and `--client-ca` for mutual TLS).
pub async fn serve_with_tls(
    listener: tokio::net::TcpListener,
    app: App,
    limits: ServeLimits,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The assessor reads the feeds the routes write; it stops with the server.
    let assessor = match app.risk {
        true => Some(AssessorThread::start(app.store.clone())?),
        false => None,
    };
    // The journal head is signed at each checkpoint beside the routes, through the writer (docs/architecture.md).
    let signer = tokio::spawn(heads::sign_heads(app.store.clone(), app.head_interval));
    // Push delivery: its state is the store's, so stopping it mid-attempt loses nothing.
    let pusher = app
        .push
        .map(|config| tokio::spawn(Pusher::new(app.store.clone(), config, app.metrics.clone(), &app.push_roots).run()));
    let metrics = app.metrics.clone();
    let router = router_with(app, limits.body_read_timeout);
    let served = conn::serve_connections(listener, router, limits, tls, metrics, shutdown).await;
    if let Some(assessor) = assessor {
        assessor.stop();
    }
    signer.abort();
    if let Some(pusher) = pusher {
        pusher.abort();
    }
    served
}
