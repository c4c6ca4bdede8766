//! Push notifications (E7/E8, I15/I16; docs/etir-binding.md, "Push
//! notifications"): a party registers an endpoint, and the server POSTs its
//! feed's items to it one at a time, in feed order, signed with the party's
//! secret. A 2xx answer is the party's confirmation; anything else is tried
//! again with exponential backoff and jitter until the endpoint has failed for
//! `PushConfig::pause_after`, when it is paused until the next PUT.
//!
//! The feed stays the source of truth: the store keeps only how far the party
//! confirmed it, so an endpoint that is down loses nothing and delivery resumes
//! from the first unconfirmed item, after a restart too. Servers sharing one
//! PostgreSQL database take an endpoint's lease through the writer before
//! delivering (`Store::push_claim`), so one server at a time delivers to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use hmac::{KeyInit, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tir_model::party::Party;
use tir_model::wire::Obj;
use tir_model::{ErrorCode, EtirError, Timestamp};
use tir_store::{NotificationRow, PushClaim, PushEndpoint, PushEndpointWrite, PushOutcome, Store, StoreError};
use utoipa::ToSchema;

use crate::App;
use crate::auth::AnyParty;
use crate::error::{ApiError, json_body, json_response};
use crate::observe::Metrics;
use crate::openapi::ErrorBody;
use crate::queries::{FeedQuery, NotificationItem, feed_query};
use crate::tls::PushRoots;

/// The header each delivery carries: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "tirhub-signature";
/// Longest endpoint URL accepted.
pub const URL_CHARS_MAX: usize = 2048;
/// A secret's length bounds, in bytes.
pub const SECRET_BYTES_MIN: usize = 16;
pub const SECRET_BYTES_MAX: usize = 256;

/// How deliveries are paced. Tests shorten every duration.
#[derive(Debug, Clone, Copy)]
pub struct PushConfig {
    /// The first retry's delay; each failure doubles it, up to `max_delay`.
    /// Each delay is drawn between its half and itself (jitter).
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// An endpoint failing for this long since its first failure is paused.
    pub pause_after: Duration,
    /// How long a server may deliver to an endpoint before another may take
    /// over: longer than `timeout`, so a live server never loses it mid-attempt.
    pub lease: Duration,
    /// One attempt's limit: connecting, TLS, sending and the answer's head.
    pub timeout: Duration,
    /// How often the endpoints are read when nothing is due.
    pub poll: Duration,
}

impl Default for PushConfig {
    fn default() -> PushConfig {
        PushConfig {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(3600),
            pause_after: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            poll: Duration::from_millis(500),
        }
    }
}

impl PushConfig {
    /// The delay after `failures` failures in a row (1 for the first), before
    /// jitter: `base_delay * 2^(failures-1)`, at most `max_delay`.
    pub fn backoff(&self, failures: i64) -> Duration {
        let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 31)).unwrap_or(31);
        self.base_delay.saturating_mul(1u32 << doublings).min(self.max_delay)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>" under secret>`.
pub fn signature(secret: &str, t: u64, body: &str) -> String {
    format!("t={t},v1={}", hmac_hex(secret, &format!("{t}.{body}")))
}

fn hmac_hex(secret: &str, data: &str) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Whether plain HTTP may go to `host`: a loopback address (127.0.0.0/8, ::1) or localhost.
fn loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The endpoint's URL, checked: HTTPS, or plain HTTP to a loopback address;
/// a host, no user info; 106 at `/url` otherwise.
fn check_url(raw: &str) -> Result<String, ApiError> {
    let refuse = |detail: &str| ApiError::Etir(EtirError::new(ErrorCode::WrongFormat, "/url").with_detail(detail));
    if raw.chars().count() > URL_CHARS_MAX {
        return Err(ApiError::Etir(
            EtirError::new(ErrorCode::WrongLength, "/url").with_detail(format!("at most {URL_CHARS_MAX} characters")),
        ));
    }
    let uri: Uri = raw.parse().map_err(|_| refuse("not an absolute http(s) URL"))?;
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| refuse("not an absolute http(s) URL"))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(refuse("a URL without user information"));
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if loopback(host) => {}
        Some("http") => {
            return Err(refuse("https, or plain http only to a loopback address (127.0.0.0/8, ::1, localhost)"));
        }
        _ => return Err(refuse("an https URL")),
    }
    Ok(raw.to_owned())
}

/// The caller's feed, which only a party with one may have pushed: 403/380 for the admin.
fn own_feed(party: &Party) -> Result<String, ApiError> {
    party.feed().map(|r| r.key()).ok_or_else(|| {
        ApiError::Etir(
            EtirError::new(ErrorCode::PartyNotAuthorized, "").with_detail("the admin has no feed of its own to push"),
        )
    })
}

/// The body of `PUT /v1/notifications/endpoint`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body `put_endpoint` reads
struct EndpointBody {
    /// https://..., or http:// only to a loopback address (127.0.0.0/8, ::1, localhost).
    #[schema(max_length = 2048)]
    url: String,
    /// Signs each delivery (HMAC-SHA256); never shown again.
    #[schema(min_length = 16, max_length = 256)]
    secret: String,
}

/// A party's push endpoint (never its secret).
#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by tir-store (`PushEndpoint::view`)
struct EndpointView {
    url: String,
    /// active, paused (until the next PUT), or removed (in DELETE's answer).
    status: String,
    /// Why it was paused; null when it is not.
    paused_reason: Option<String>,
    /// RFC 3339, UTC.
    registered_at: String,
    /// The cursor of the last item the party confirmed; "0" before any.
    confirmed_through: String,
    /// Failed attempts since the last confirmation.
    failures: i64,
    /// RFC 3339, UTC: the next attempt's earliest time when active; null otherwise.
    next_attempt_at: Option<String>,
}

#[utoipa::path(put, path = "/v1/notifications/endpoint", tag = "push",
    request_body(content = EndpointBody, description = "Where to push the caller's feed, and the secret that signs each delivery"),
    responses(
        (status = 201, description = "Registered: delivery starts after the last item confirmed", body = EndpointView),
        (status = 200, description = "Replaced (and resumed, if paused)", body = EndpointView),
        (status = 400, description = "Codes 100, 101, 105 (a secret not of 16 to 256 bytes, a URL over 2048 characters), 106 (not https, or plain http to an address that is not loopback), 107", body = ErrorBody),
        (status = 403, description = "Code 380: the admin has no feed", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn put_endpoint(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let feed = own_feed(&party)?;
    let value = json_body(&headers, body)?;
    let obj = Obj::new(&value, "")?;
    let url = check_url(obj.str("url")?)?;
    let secret = obj.str("secret")?;
    if !(SECRET_BYTES_MIN..=SECRET_BYTES_MAX).contains(&secret.len()) {
        // The detail never echoes the secret.
        return Err(ApiError::Etir(
            EtirError::new(ErrorCode::WrongLength, "/secret")
                .with_detail(format!("{SECRET_BYTES_MIN} to {SECRET_BYTES_MAX} bytes")),
        ));
    }
    let secret = secret.to_owned();
    obj.finish()?;
    let write = PushEndpointWrite { party: party.id().to_owned(), feed, url, secret };
    let reply = app.store.put_push_endpoint(write).await?;
    Ok(json_response(reply.status, reply.body))
}

/// The caller's endpoint as stored; 404/183 when it has none.
async fn endpoint_of(app: &App, party: &Party) -> Result<PushEndpoint, ApiError> {
    own_feed(party)?;
    app.store
        .push_endpoint(party.id())
        .await?
        .filter(|e| e.status != tir_store::push::REMOVED)
        .ok_or_else(|| ApiError::Etir(EtirError::not_found_on_route(ErrorCode::NoSuchRoute, "")))
}

#[utoipa::path(get, path = "/v1/notifications/endpoint", tag = "push",
    responses(
        (status = 200, description = "The caller's endpoint and its status", body = EndpointView),
        (status = 403, description = "Code 380: the admin has no feed", body = ErrorBody),
        (status = 404, description = "Code 183: the caller has no endpoint", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_endpoint(State(app): State<App>, AnyParty(party): AnyParty) -> Result<Response, ApiError> {
    let endpoint = endpoint_of(&app, &party).await?;
    Ok(json_response(200, endpoint.view().to_string()))
}

#[utoipa::path(delete, path = "/v1/notifications/endpoint", tag = "push",
    responses(
        (status = 200, description = "Removed: nothing more is pushed; the feed and its confirmations stay", body = EndpointView),
        (status = 403, description = "Code 380: the admin has no feed", body = ErrorBody),
        (status = 404, description = "Code 183: the caller has no endpoint", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_endpoint(State(app): State<App>, AnyParty(party): AnyParty) -> Result<Response, ApiError> {
    own_feed(&party)?;
    let reply = app.store.remove_push_endpoint(party.id()).await?;
    Ok(json_response(reply.status, reply.body))
}

/// One attempt to deliver an item.
#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    /// RFC 3339, UTC.
    at: String,
    /// The endpoint's HTTP status; null when none came (see `error`).
    http_status: Option<i64>,
    error: Option<String>,
    /// RFC 3339, UTC: when the item is tried again; null once confirmed or paused.
    next_attempt_at: Option<String>,
}

/// The party's confirmation of an item (E8/I16): its 2xx answer.
#[derive(Serialize, ToSchema)]
pub struct ConfirmationView {
    at: String,
    http_status: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    cursor: String,
    #[serde(rename = "type")]
    kind: String,
    guarantee_reference: String,
    /// Oldest first.
    attempts: Vec<AttemptView>,
    /// Null until confirmed.
    confirmed: Option<ConfirmationView>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryPage {
    items: Vec<DeliveryView>,
    /// Pass as `after` to read on.
    next: String,
}

#[utoipa::path(get, path = "/v1/notifications/deliveries", tag = "push",
    params(FeedQuery),
    responses(
        (status = 200, description = "The caller's feed items after `after`, each with its delivery attempts and confirmation", body = DeliveryPage),
        (status = 400, description = "Code 105: a limit that is not a whole number from 1 to 1000; 106: a malformed after", body = ErrorBody),
        (status = 403, description = "Code 380: the admin has no feed", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn deliveries(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let feed = own_feed(&party)?;
    let (after, limit) = feed_query(query)?;
    let rows = app.store.notifications(Some(&feed), after, limit).await?;
    let through = rows.last().map_or(after, |r| r.cursor);
    let mut attempts = app.store.push_attempts(party.id(), after, through).await?.into_iter().peekable();
    let at = |ms: i64| Timestamp::from_unix_ms(ms).to_string();
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let mut item = DeliveryView {
            cursor: row.cursor.to_string(),
            kind: row.kind,
            guarantee_reference: row.guarantee_reference,
            attempts: Vec::new(),
            confirmed: None,
        };
        while let Some(a) = attempts.next_if(|a| a.cursor <= row.cursor) {
            if a.cursor < row.cursor {
                continue;
            }
            if a.confirmed && item.confirmed.is_none() {
                item.confirmed = Some(ConfirmationView { at: at(a.at_ms), http_status: a.http_status });
            }
            item.attempts.push(AttemptView {
                at: at(a.at_ms),
                http_status: a.http_status,
                error: a.error,
                next_attempt_at: a.next_attempt_ms.map(at),
            });
        }
        items.push(item);
    }
    let page = DeliveryPage { items, next: through.to_string() };
    Ok(json_response(200, serde_json::to_string(&page).expect("pages serialize")))
}

/// The delivery worker: one per server, delivering to every active endpoint.
pub struct Pusher {
    store: Arc<dyn Store>,
    config: PushConfig,
    /// This worker's name in leases: unique per process start.
    owner: String,
    tls: Arc<rustls::ClientConfig>,
    metrics: Arc<Metrics>,
    /// Draws the jitter (splitmix64 over a per-worker seed).
    jitter: AtomicU64,
}

impl Pusher {
    pub fn new(store: Arc<dyn Store>, config: PushConfig, metrics: Arc<Metrics>, roots: &PushRoots) -> Pusher {
        let seed = {
            let mut hash = Sha256::new();
            hash.update(std::process::id().to_le_bytes());
            hash.update(format!("{:?}", std::time::SystemTime::now()).as_bytes());
            hash.update((&hash as *const Sha256 as usize).to_le_bytes());
            hash.finalize()
        };
        let owner = hex(&seed[..8]);
        let jitter = AtomicU64::new(u64::from_le_bytes(seed[8..16].try_into().expect("8 bytes")));
        Pusher { store, config, owner, tls: client_tls(roots), metrics, jitter }
    }

    /// Runs until the task is dropped. A store failure is logged and retried
    /// after `poll`: the state is the store's, so nothing is lost.
    pub async fn run(self) {
        loop {
            match self.pass().await {
                Ok(0) => tokio::time::sleep(self.config.poll).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "push delivery pass failed; retried");
                    tokio::time::sleep(self.config.poll).await;
                }
            }
        }
    }

    /// Delivers at most one item to each endpoint due; returns how many were attempted.
    async fn pass(&self) -> Result<usize, StoreError> {
        let now_ms = tir_store::now_ms();
        let endpoints = self.store.push_endpoints_active().await?;
        let due: Vec<PushEndpoint> = endpoints
            .into_iter()
            .filter(|e| {
                e.next_attempt_ms <= now_ms
                    && (e.lease_until_ms <= now_ms || e.lease_owner.as_deref() == Some(&self.owner))
            })
            .collect();
        let mut attempted = 0;
        // Endpoints are delivered to side by side, a bounded number at once.
        for chunk in due.chunks(32) {
            let results = futures_util::future::join_all(chunk.iter().map(|e| self.deliver(e))).await;
            for result in results {
                attempted += usize::from(result?);
            }
        }
        Ok(attempted)
    }

    /// Delivers the item after the endpoint's confirmed cursor, if there is one and
    /// this server wins its lease; true when an attempt was made.
    async fn deliver(&self, e: &PushEndpoint) -> Result<bool, StoreError> {
        let Some(item) = self.store.notifications(Some(&e.feed), e.confirmed_cursor, 1).await?.pop() else {
            return Ok(false);
        };
        let claim = PushClaim {
            party: e.party.clone(),
            owner: self.owner.clone(),
            generation: e.generation,
            confirmed_cursor: e.confirmed_cursor,
            lease_ms: millis(self.config.lease),
        };
        if self.store.push_claim(claim).await?.status != 200 {
            return Ok(false);
        }
        let (http_status, error) = self.post(e, &item).await;
        let failures = e.failures + 1;
        let outcome = PushOutcome {
            party: e.party.clone(),
            owner: self.owner.clone(),
            generation: e.generation,
            cursor: item.cursor,
            kind: item.kind,
            reference: item.guarantee_reference,
            http_status,
            error,
            retry_in_ms: self.jittered(self.config.backoff(failures)),
            pause_after_ms: millis(self.config.pause_after),
        };
        let confirmed = outcome.confirmed();
        self.metrics.push_attempt(confirmed);
        if !confirmed {
            tracing::debug!(party = %e.party, cursor = outcome.cursor, status = ?outcome.http_status,
                error = ?outcome.error, "push delivery failed");
        }
        self.store.push_record(outcome).await?;
        Ok(true)
    }

    /// Sends one item: its HTTP status, or why none came.
    async fn post(&self, e: &PushEndpoint, item: &NotificationRow) -> (Option<u16>, Option<String>) {
        let body = serde_json::to_string(&NotificationItem::from_row(item.clone())).expect("items serialize");
        let t = u64::try_from(tir_store::now_ms() / 1000).unwrap_or(0);
        let signature = signature(&e.secret, t, &body);
        let sent = tokio::time::timeout(self.config.timeout, send(&e.url, body, signature, &self.tls)).await;
        match sent {
            Ok(Ok(status)) => (Some(status), None),
            Ok(Err(error)) => (None, Some(error)),
            Err(_) => (None, Some(format!("no answer within {} ms", self.config.timeout.as_millis()))),
        }
    }

    /// A delay drawn uniformly from [d/2, d].
    fn jittered(&self, d: Duration) -> i64 {
        let ms = millis(d).max(1);
        let draw = splitmix64(self.jitter.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed));
        let half = ms / 2;
        half + i64::try_from(draw % u64::try_from(ms - half + 1).unwrap_or(1)).unwrap_or(0)
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The client side of TLS: rustls with ring, as the server's, trusting the
/// Mozilla roots of `webpki-roots` (docs/architecture.md) and `extra`.
fn client_tls(extra: &PushRoots) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    roots.roots.extend(extra.0.roots.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// POSTs `body` to `url` on a connection of its own (HTTP/1.1), and answers the status.
async fn send(url: &str, body: String, signature: String, tls: &Arc<rustls::ClientConfig>) -> Result<u16, String> {
    use axum::http::header;
    let uri: Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let https = uri.scheme_str() == Some("https");
    let authority = uri.authority().ok_or("no host")?.clone();
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = axum::http::Request::post(path)
        .header(header::HOST, authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "tirhub")
        .header(SIGNATURE_HEADER, signature)
        .body(http_body_util::Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if https {
        let name = rustls::pki_types::ServerName::try_from(host).map_err(|e| format!("TLS name: {e}"))?;
        let stream =
            tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
        exchange(hyper_util::rt::TokioIo::new(stream), request).await
    } else {
        exchange(hyper_util::rt::TokioIo::new(tcp), request).await
    }
}

async fn exchange<IO>(io: IO, request: axum::http::Request<http_body_util::Full<Bytes>>) -> Result<u16, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("HTTP: {e}"))?;
    let connection = tokio::spawn(connection);
    let answer = sender.send_request(request).await.map_err(|e| format!("HTTP: {e}"));
    // The answer's body is not read: its status is the confirmation.
    connection.abort();
    Ok(answer?.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_goes_only_to_loopback() {
        for ok in [
            "https://example.org/hook",
            "http://127.0.0.1:8080/x",
            "http://127.9.9.9/",
            "http://[::1]:9/",
            "http://localhost/",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.org/",
            "http://10.0.0.1/",
            "ftp://127.0.0.1/",
            "https://",
            "/relative",
            "https://u:p@example.org/",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let c = PushConfig {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            ..PushConfig::default()
        };
        let delays: Vec<u128> = (1..=5).map(|n| c.backoff(n).as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 50, 50]);
        assert_eq!(c.backoff(1_000).as_millis(), 50);
    }

    #[test]
    fn signature_is_hmac_sha256_of_time_dot_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            signature("Jefe", 1700000000, "{}"),
            format!("t=1700000000,v1={}", hmac_hex("Jefe", "1700000000.{}"))
        );
    }
}
