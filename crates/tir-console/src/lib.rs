//! The officer console and the holder portal (docs/console.md): HTML pages
//! rendered on the server under `/console`, which read the same store as the
//! API and send every action as the same eTIR message through
//! `tir_server::submit_message`, so the journal, idempotency (a fresh
//! `message_id` in every rendered form) and the model's authorization hold.

// A page's `Err` is the page answered instead (403, 404, ...): made at most once
// per request, so it is not worth boxing to keep `Result` small.
#![allow(clippy::result_large_err)]

mod admin;
pub mod amendments;
mod chain;
mod customs;
mod dashboard;
mod holder;
mod hs;
pub mod map;
mod once;
mod pages;
mod risk;
mod session;
pub mod stats;
pub mod topojson;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use maud::html;
use tir_model::party::Party;

pub use session::Sessions;

use crate::pages::Page;
use crate::session::Signed;

/// The console's state: the API's app (store, parties, rate limits) and the sessions' rules.
#[derive(Clone)]
pub struct Console {
    app: tir_server::App,
    sessions: Arc<Sessions>,
    /// The answers to the forms that are not eTIR messages, by form key (`once`).
    sent: Arc<once::Sent>,
    /// Cookies get `Secure`: set when the console is reached over TLS (a
    /// TLS-terminating proxy in front of `tirhub serve`).
    secure_cookies: bool,
}

impl Console {
    pub fn new(app: tir_server::App) -> Console {
        Console { app, sessions: Arc::new(Sessions::default()), sent: Arc::default(), secure_cookies: false }
    }

    pub fn with_secure_cookies(mut self, secure: bool) -> Console {
        self.secure_cookies = secure;
        self
    }
}

/// The console's routes, nested under `/console`, for `App::with_routes`.
pub fn router(console: Console) -> Router {
    let routes = Router::new()
        .route("/", get(home))
        .route("/style.css", get(pages::style))
        .route("/assets/htmx.min.js", get(pages::htmx))
        .route("/sign-in", get(session::sign_in_page).post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/arrivals", get(customs::arrivals))
        .route("/arrivals/live", get(customs::arrivals_live))
        .route("/transports/{reference}", get(customs::transport).post(customs::act))
        .route("/my", get(holder::portal))
        .route("/my/transports/{reference}", get(holder::transport).post(holder::withdraw))
        .route("/chain", get(chain::page).post(chain::act))
        .route("/my/advance-data", get(holder::advance_form).post(holder::advance_submit))
        .route("/hs", get(hs::search))
        .route("/hs/results", get(hs::partial))
        .route("/dashboard", get(dashboard::dashboard))
        .route("/dashboard/live", get(dashboard::live))
        .route("/risk/profiles", get(risk::list))
        .route("/risk/profiles/new", get(risk::new_form).post(risk::create))
        .route("/risk/profiles/{id}", get(risk::profile).post(risk::edit))
        .route("/risk/stats", get(risk::stats))
        .route("/admin/parties", get(admin::parties).post(admin::parties_act))
        .route("/admin/offices", get(admin::offices).post(admin::offices_act))
        .route("/admin/holders", get(admin::holders).post(admin::holders_act))
        .route("/admin/journal", get(admin::journal).post(admin::journal_verify))
        .fallback(pages::not_found)
        .with_state(console);
    Router::new().nest("/console", routes)
}

/// `GET /console`: where each kind of party starts.
async fn home(State(_): State<Console>, signed: Signed) -> Response {
    let links = html! {
        p { "Signed in as " (pages::party_label(&signed.party)) "." }
        @match &signed.party {
            Party::Customs { .. } => {
                ul {
                    li { a href="/console/arrivals" { "Arrivals" } }
                    li { a href="/console/dashboard" { "Dashboard" } }
                    li { a href="/console/risk/profiles" { "Risk profiles" } }
                    li { a href="/console/risk/stats" { "Risk hit rates" } }
                }
            }
            Party::Admin => {
                ul {
                    li { a href="/console/dashboard" { "Dashboard" } }
                    li { a href="/console/admin/parties" { "Parties" } }
                    li { a href="/console/admin/offices" { "Offices" } }
                    li { a href="/console/admin/holders" { "Holders" } }
                    li { a href="/console/admin/journal" { "Journal" } }
                }
            }
            Party::GuaranteeChain { .. } => { p { a href="/console/chain" { "My guarantees" } } }
            Party::Holder { .. } => {
                ul {
                    li { a href="/console/my" { "My transports" } }
                    li { a href="/console/my/advance-data" { "Send advance data" } }
                    li { a href="/console/hs" { "Search HS 2022" } }
                }
            }
        }
    };
    Page::new("Console").signed(&signed).body(links)
}
