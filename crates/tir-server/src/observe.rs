//! What an operator watches: Prometheus metrics at `GET /metrics` and one log
//! line per request (docs/architecture.md, "Metrics and logs").
//!
//! A small registry of its own rather than the `metrics` and
//! `metrics-exporter-prometheus` crates: those bring a process-wide recorder
//! and their own dependency tree (metrics-util, quanta, a sketch crate, and
//! more) into a workspace built on two cores, for a dozen series whose labels
//! are all known here (routes, message types, codes, party kinds). Counters
//! keyed by label sit in one `Mutex<BTreeMap>` each, held for a lookup and an
//! add (well under a microsecond against a store write of a millisecond or
//! more), and the map's order is the exposition's order.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tir_model::ErrorCode;
use tir_model::message::MessageType;
use tir_model::party::PartyKind;

use crate::App;
use crate::error::ApiError;

/// Upper bounds (seconds) of the request latency histogram's buckets: from a
/// cached query (well under a millisecond) to a store that stalls.
const LATENCY_BUCKETS_S: [f64; 14] =
    [0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Feed items after the risk cursor counted at most per scrape: past it the
/// gauge shows this number (the assessor is that far behind, or more).
pub const FEED_DEPTH_COUNTED_MAX: usize = 1_000;
/// The route label of a request no route matched (404, or refused before routing).
const UNMATCHED: &str = "unmatched";

#[derive(Default)]
struct Latency {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; LATENCY_BUCKETS_S.len()],
    count: u64,
    sum_s: f64,
}

/// The server's counters: requests and their latency by route, messages by
/// type and result, open connections. Rate-limit refusals are counted by the
/// limiter, the feed depth read from the store at each scrape.
#[derive(Default)]
pub struct Metrics {
    /// Route → method → latency and statuses.
    requests: Mutex<BTreeMap<String, BTreeMap<String, Latency>>>,
    /// (type, HTTP status, code; 0 when accepted) → messages.
    messages: Mutex<BTreeMap<(&'static str, u16, u16), u64>>,
    connections_open: AtomicI64,
    connections_total: AtomicU64,
    /// HTTP status → requests hyper could not parse, answered by the connection layer.
    unparsable: Mutex<BTreeMap<u16, u64>>,
    /// Push delivery attempts this process made: confirmed (2xx), failed.
    push_attempts: [AtomicU64; 2],
}

/// Counts a connection as open until dropped.
pub(crate) struct OpenConnection(Arc<Metrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub(crate) fn connection_opened(self: &Arc<Self>) -> OpenConnection {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    /// A push delivery attempt, confirmed (2xx) or not (push.rs).
    pub(crate) fn push_attempt(&self, confirmed: bool) {
        self.push_attempts[usize::from(!confirmed)].fetch_add(1, Ordering::Relaxed);
    }

    /// A request hyper could not parse, answered with `status` (conn.rs).
    pub(crate) fn unparsable(&self, status: u16) {
        *self.unparsable.lock().unwrap_or_else(|e| e.into_inner()).entry(status).or_default() += 1;
    }

    fn request(&self, route: &str, method: &str, status: u16, latency: Duration) {
        let latency_s = latency.as_secs_f64();
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        if !requests.contains_key(route) {
            requests.insert(route.to_owned(), BTreeMap::new());
        }
        let by_method = requests.get_mut(route).expect("inserted above");
        if !by_method.contains_key(method) {
            by_method.insert(method.to_owned(), Latency::default());
        }
        let stats = by_method.get_mut(method).expect("inserted above");
        *stats.by_status.entry(status).or_default() += 1;
        if let Some(bucket) = LATENCY_BUCKETS_S.iter().position(|bound| latency_s <= *bound) {
            stats.buckets[bucket] += 1;
        }
        stats.count += 1;
        stats.sum_s += latency_s;
    }

    /// One message handled by `POST /v1/messages`: its type (`None` when the
    /// body did not name a known one) and its answer's status and code (0: accepted).
    pub(crate) fn message(&self, kind: Option<MessageType>, status: u16, code: u16) {
        let kind = kind.map_or("unknown", MessageType::as_str);
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        *messages.entry((kind, status, code)).or_default() += 1;
    }

    /// Counters and histograms in the Prometheus text format (version 0.0.4).
    fn render(&self, out: &mut String) {
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        header(out, "tirhub_http_requests_total", "counter", "HTTP requests answered, by route, method and status.");
        for (route, by_method) in requests.iter() {
            for (method, stats) in by_method {
                for (status, n) in &stats.by_status {
                    let _ = writeln!(
                        out,
                        "tirhub_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                        escape(route),
                        escape(method)
                    );
                }
            }
        }
        let name = "tirhub_http_request_duration_seconds";
        header(out, name, "histogram", "Time from a request's headers to its answer, by route and method.");
        for (route, by_method) in requests.iter() {
            for (method, stats) in by_method {
                let labels = format!("route=\"{}\",method=\"{}\"", escape(route), escape(method));
                let mut cumulative = 0;
                for (bound, n) in LATENCY_BUCKETS_S.iter().zip(stats.buckets) {
                    cumulative += n;
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
                }
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", stats.count);
                let _ = writeln!(out, "{name}_sum{{{labels}}} {}", stats.sum_s);
                let _ = writeln!(out, "{name}_count{{{labels}}} {}", stats.count);
            }
        }
        drop(requests);
        let messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        header(
            out,
            "tirhub_messages_total",
            "counter",
            "eTIR messages handled, by type, HTTP status and contract code (0: accepted).",
        );
        for ((kind, status, code), n) in messages.iter() {
            let _ = writeln!(out, "tirhub_messages_total{{type=\"{kind}\",status=\"{status}\",code=\"{code}\"}} {n}");
        }
        drop(messages);
        header(
            out,
            "tirhub_http_unparsable_requests_total",
            "counter",
            "Requests refused before routing because they are not well-formed HTTP or too large (400, 414, 431).",
        );
        for (status, n) in self.unparsable.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "tirhub_http_unparsable_requests_total{{status=\"{status}\"}} {n}");
        }
        header(out, "tirhub_connections_open", "gauge", "TCP connections being served.");
        let _ = writeln!(out, "tirhub_connections_open {}", self.connections_open.load(Ordering::Relaxed));
        header(out, "tirhub_push_attempts_total", "counter", "Push deliveries this server attempted, by outcome.");
        for (outcome, n) in ["confirmed", "failed"].iter().zip(&self.push_attempts) {
            let _ = writeln!(out, "tirhub_push_attempts_total{{outcome=\"{outcome}\"}} {}", n.load(Ordering::Relaxed));
        }
        header(out, "tirhub_connections_total", "counter", "TCP connections accepted.");
        let _ = writeln!(out, "tirhub_connections_total {}", self.connections_total.load(Ordering::Relaxed));
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format wants it (routes and methods are ASCII; this keeps it so).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Where the authentication extractors leave the party's kind for the request's log line.
#[derive(Clone, Default)]
pub(crate) struct PartySlot(Arc<OnceLock<PartyKind>>);

/// Notes the authenticated party's kind for the log line (never its token nor id).
pub(crate) fn note_party(extensions: &axum::http::Extensions, kind: PartyKind) {
    if let Some(slot) = extensions.get::<PartySlot>() {
        let _ = slot.0.set(kind);
    }
}

/// Times every request, counts it by route, method and status, and logs it
/// (`debug`, target `tir_server::observe`): method, route, status, latency and
/// the party's kind.
pub(crate) async fn observe(metrics: Arc<Metrics>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let method = request.method().clone();
    let party = PartySlot::default();
    request.extensions_mut().insert(party.clone());
    let response = next.run(request).await;
    let latency = started.elapsed();
    let route = route.as_deref().unwrap_or(UNMATCHED);
    let status = response.status().as_u16();
    metrics.request(route, method.as_str(), status, latency);
    tracing::debug!(
        method = method.as_str(),
        route,
        status,
        latency_ms = latency.as_secs_f64() * 1e3,
        party = party.0.get().map_or("none", |kind| kind.as_str()),
        "request"
    );
    response
}

/// `GET /metrics`: open, or with `Authorization: Bearer <metrics token>` when
/// the server was given one (401/390 otherwise). Not part of the contract, and
/// not in the OpenAPI document.
pub(crate) async fn serve(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(expected) = &app.metrics_token {
        let given = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        let token = given.and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")));
        // Compared by hash, so the time taken says nothing about the token.
        if token.map(|token| tir_store::token::hash(token.trim())) != Some(expected.clone()) {
            return Err(ApiError::code(ErrorCode::Unauthenticated, ""));
        }
    }
    let mut out = String::with_capacity(16 * 1024);
    app.metrics.render(&mut out);
    header(
        &mut out,
        "tirhub_rate_limit_refusals_total",
        "counter",
        "Requests refused by a party's rate limit (429, code 386), by party kind.",
    );
    for (kind, n) in app.limiter.refusals() {
        let _ = writeln!(out, "tirhub_rate_limit_refusals_total{{party_kind=\"{}\"}} {n}", kind.as_str());
    }
    header(
        &mut out,
        "tirhub_writer_queue_depth",
        "gauge",
        "Write commands queued for the store's writer and not yet taken into a batch.",
    );
    let _ = writeln!(out, "tirhub_writer_queue_depth {}", app.store.write_queue_depth());
    // The risk assessor's backlog: feed items written and not yet assessed. The cursor is the
    // database's, so this holds whichever server runs the assessor.
    let cursor = app.store.risk_cursor().await?;
    let behind = app.store.notifications(None, cursor, FEED_DEPTH_COUNTED_MAX).await?.len();
    header(&mut out, "tirhub_risk_cursor", "gauge", "The last feed cursor the risk assessor has assessed.");
    let _ = writeln!(out, "tirhub_risk_cursor {cursor}");
    header(
        &mut out,
        "tirhub_feed_unassessed_items",
        "gauge",
        "Feed items after the risk cursor (counted up to FEED_DEPTH_COUNTED_MAX, 1000).",
    );
    let _ = writeln!(out, "tirhub_feed_unassessed_items {behind}");
    let pushing = app.store.push_endpoints_active().await?.len();
    header(&mut out, "tirhub_push_endpoints_active", "gauge", "Push endpoints delivered to (not paused or removed).");
    let _ = writeln!(out, "tirhub_push_endpoints_active {pushing}");
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response())
}
