//! The server in-process on port 0 over a fresh store, as zero2prod's
//! `spawn_app`: a `TestApp` to talk to it over HTTP, the `Reply` of each call,
//! and (in `trip`) the TR → GE → AZ corridor seeded and driven through a
//! transport. Glob-importing this module gives a server test everything it
//! uses, the sample messages of `fixtures` included.

mod trip;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use crate::fixtures::*;
pub use crate::random_hex;
pub use trip::{Corridor, SEEDED_HOLDERS, SEEDED_OFFICES, SEEDED_PARTIES, Sent, Trip};

use crate::{FreshDatabase, TempSqlite};
pub use tir_store::faults::{Fault, Faults, FaultyStore};

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Fails unless this is the contract error `code` at `pointer`.
    #[track_caller]
    pub fn assert_error(&self, code: u16, pointer: &str) {
        self.assert_error_status(status_of(code), code, pointer);
    }

    /// Fails unless this is 404 with `code` at `pointer`: the thing the route names does not exist.
    #[track_caller]
    pub fn assert_not_found(&self, code: u16, pointer: &str) {
        self.assert_error_status(404, code, pointer);
    }

    /// Fails unless this is HTTP `status` with the contract error `code`, its class, at `pointer`.
    #[track_caller]
    pub fn assert_error_status(&self, status: u16, code: u16, pointer: &str) {
        let body = self.json();
        assert!(self.content_type.starts_with("application/json"), "content type {:?}", self.content_type);
        assert_eq!(
            (
                self.status,
                body["error"]["code"].as_u64(),
                body["error"]["class"].as_str(),
                body["error"]["pointer"].as_str()
            ),
            (status, Some(u64::from(code)), Some(class_of(code)), Some(pointer)),
            "expected {status}/{code} at {pointer:?}, got {} {}",
            self.status,
            self.text
        );
    }
}

/// How often a test server signs the journal's head: tests wait for a
/// checkpoint, and `HEAD_SIGN_INTERVAL` (10 s) would make them slow.
pub const HEAD_INTERVAL: Duration = Duration::from_millis(200);

/// How a test server pushes feeds (docs/etir-binding.md, "Push notifications"):
/// retries after milliseconds, not seconds, so a test sees several in a moment.
pub fn test_push_config() -> tir_server::PushConfig {
    tir_server::PushConfig {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        pause_after: Duration::from_secs(24 * 3600),
        lease: Duration::from_secs(3),
        timeout: Duration::from_secs(2),
        poll: Duration::from_millis(50),
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

/// The store's database, held so it outlives every server started over it.
enum Database {
    Sqlite(TempSqlite),
    Postgres(FreshDatabase),
}

impl Database {
    fn url(&self) -> &str {
        match self {
            Database::Sqlite(db) => db.url(),
            Database::Postgres(db) => db.url(),
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub admin: String,
    pub client: reqwest::Client,
    running: Option<Running>,
    admin_writes: AtomicUsize,
    limits: tir_server::RateLimits,
    /// Whether the server runs the risk assessor (off unless a test asks:
    /// its journal entries would race the counts other tests make).
    risk: bool,
    /// The store's fault switch, for a server over a `FaultyStore`.
    faults: Option<Faults>,
    /// How the server pushes feeds (`test_push_config` unless a test sets it).
    push: tir_server::PushConfig,
    /// CAs its pushes trust beside the Mozilla roots (none unless a test sets them).
    push_roots: tir_server::PushRoots,
    // Declared last: dropped after `Drop for TestApp` has told the server to stop.
    database: Database,
}

async fn start(
    db_url: &str,
    limits: tir_server::RateLimits,
    risk: bool,
    faults: Option<&Faults>,
    push: tir_server::PushConfig,
    push_roots: tir_server::PushRoots,
) -> (String, Running) {
    let store: std::sync::Arc<dyn tir_store::Store> = match faults {
        None => tir_store::open(db_url).await.unwrap_or_else(|e| panic!("open {db_url}: {e}")),
        Some(faults) => std::sync::Arc::new(
            FaultyStore::open(db_url, faults).await.unwrap_or_else(|e| panic!("open {db_url}: {e}")),
        ),
    };
    let app = tir_server::App::new(store, ADMIN_TOKEN)
        .with_rate_limits(limits)
        .with_head_interval(HEAD_INTERVAL)
        .with_push(push)
        .with_push_roots(push_roots);
    let app = if risk { app } else { app.without_risk() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let base = format!("http://{}", listener.local_addr().expect("bound address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(tir_server::serve(listener, app, async move {
        let _ = stopped.await;
    }));
    (base, Running { stop, server })
}

/// A server over a fresh SQLite file in its own temporary directory.
/// Without rate limits, as `App::new` has it: tests measure the exchange.
pub async fn spawn_app() -> TestApp {
    spawn_app_limited(tir_server::RateLimits::unlimited()).await
}

/// A server over a fresh PostgreSQL database; `None` without TIRHUB_TEST_DATABASE_URL.
pub async fn spawn_app_pg() -> Option<TestApp> {
    spawn_app_pg_limited(tir_server::RateLimits::unlimited()).await
}

/// `spawn_app` with per-party rate limits.
pub async fn spawn_app_limited(limits: tir_server::RateLimits) -> TestApp {
    let db = TempSqlite::new("tirhub-api").expect("create the test directory");
    TestApp::launch(Database::Sqlite(db), limits, false).await
}

/// `spawn_app_pg` with per-party rate limits.
pub async fn spawn_app_pg_limited(limits: tir_server::RateLimits) -> Option<TestApp> {
    let db = FreshDatabase::from_env("tirhub_t").await?;
    Some(TestApp::launch(Database::Postgres(db), limits, false).await)
}

/// `spawn_app` over a `FaultyStore`: `TestApp::faults` makes its writes or reads fail.
pub async fn spawn_app_faulty() -> TestApp {
    let db = TempSqlite::new("tirhub-api").expect("create the test directory");
    TestApp::launch_with(Database::Sqlite(db), tir_server::RateLimits::unlimited(), false, Some(Faults::new())).await
}

/// `spawn_app_pg` over a `FaultyStore`.
pub async fn spawn_app_pg_faulty() -> Option<TestApp> {
    let db = FreshDatabase::from_env("tirhub_t").await?;
    Some(
        TestApp::launch_with(Database::Postgres(db), tir_server::RateLimits::unlimited(), false, Some(Faults::new()))
            .await,
    )
}

/// `spawn_app` with the risk assessor running, as `tirhub serve` has it.
pub async fn spawn_app_with_risk() -> TestApp {
    let db = TempSqlite::new("tirhub-api").expect("create the test directory");
    TestApp::launch(Database::Sqlite(db), tir_server::RateLimits::unlimited(), true).await
}

/// `spawn_app_pg` with the risk assessor running.
pub async fn spawn_app_pg_with_risk() -> Option<TestApp> {
    let db = FreshDatabase::from_env("tirhub_t").await?;
    Some(TestApp::launch(Database::Postgres(db), tir_server::RateLimits::unlimited(), true).await)
}

impl TestApp {
    async fn launch(database: Database, limits: tir_server::RateLimits, risk: bool) -> TestApp {
        TestApp::launch_with(database, limits, risk, None).await
    }

    async fn launch_with(
        database: Database,
        limits: tir_server::RateLimits,
        risk: bool,
        faults: Option<Faults>,
    ) -> TestApp {
        let push = test_push_config();
        let push_roots = tir_server::PushRoots::default();
        let (base, running) = start(database.url(), limits, risk, faults.as_ref(), push, push_roots.clone()).await;
        TestApp {
            base,
            admin: ADMIN_TOKEN.to_owned(),
            client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
            running: Some(running),
            admin_writes: AtomicUsize::new(0),
            limits,
            risk,
            faults,
            push,
            push_roots,
            database,
        }
    }

    /// The fault switch of a server started by `spawn_app_faulty` or `spawn_app_pg_faulty`.
    pub fn faults(&self) -> &Faults {
        self.faults.as_ref().expect("a server over a FaultyStore (spawn_app_faulty)")
    }

    /// Stops the server and waits until it has let go of the store.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            tokio::time::timeout(Duration::from_secs(20), running.server)
                .await
                .expect("the server stops within 20 s")
                .expect("the server task did not panic")
                .expect("serve ended cleanly");
        }
    }

    /// A new server (new port) over the same database.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (base, running) = start(
            self.database.url(),
            self.limits,
            self.risk,
            self.faults.as_ref(),
            self.push,
            self.push_roots.clone(),
        )
        .await;
        self.base = base;
        self.running = Some(running);
    }

    /// A new server over the same database, pushing with `push` (to see an endpoint paused).
    pub async fn restart_pushing(&mut self, push: tir_server::PushConfig) {
        self.push = push;
        self.restart().await;
    }

    /// A new server over the same database whose pushes also trust `roots` (`--push-ca`).
    pub async fn restart_trusting(&mut self, roots: tir_server::PushRoots) {
        self.push_roots = roots;
        self.restart().await;
    }

    /// Takes the store away from under the running server, so that its next
    /// request finds the store unavailable (HTTP 503, code 400). Only
    /// PostgreSQL can lose its database under a live server (a SQLite file
    /// stays readable through the open handle): on SQLite, a server over a
    /// `FaultyStore` is made to fail with `Fault::Unavailable`, and any other
    /// answers `false`.
    pub async fn lose_store(&self) -> bool {
        match &self.database {
            Database::Postgres(db) => {
                db.drop_under_server()
                    .await
                    .unwrap_or_else(|e| panic!("drop {}: {}", db.name(), crate::pg::detail(&e)));
                true
            }
            Database::Sqlite(_) => match &self.faults {
                Some(faults) => {
                    faults.set(Fault::Unavailable);
                    true
                }
                None => false,
            },
        }
    }

    /// The store's database URL (to read it directly once the server is stopped).
    pub fn db_url(&self) -> &str {
        self.database.url()
    }

    /// Successful admin writes so far: each is one journal entry.
    pub fn admin_writes(&self) -> usize {
        self.admin_writes.load(Ordering::SeqCst)
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Vec<u8>>) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        Self::reply(path, request).await
    }

    /// A request with exactly the headers given (none added: no token, no
    /// Content-Type), for the rules about headers.
    pub async fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        Self::reply(path, request).await
    }

    async fn reply(path: &str, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap_or_else(|e| panic!("{path}: {e:?}"));
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let text = response.text().await.expect("a response body");
        Reply { status, content_type, text }
    }

    pub async fn post_raw(&self, token: &str, body: impl Into<Vec<u8>>) -> Reply {
        self.call(Method::POST, "/v1/messages", Some(token), Some(body.into())).await
    }

    pub async fn post(&self, token: &str, message: &Value) -> Reply {
        self.post_raw(token, message.to_string()).await
    }

    pub async fn send(&self, token: &str, message: &Value) -> (u16, Value) {
        let reply = self.post(token, message).await;
        (reply.status, reply.json())
    }

    pub async fn get_reply(&self, token: &str, path: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let reply = self.get_reply(token, path).await;
        (reply.status, reply.json())
    }

    async fn admin_write(&self, method: Method, path: &str, body: Value) -> Value {
        let reply = self.call(method, path, Some(&self.admin), Some(body.to_string().into_bytes())).await;
        assert!(matches!(reply.status, 200 | 201), "{path} {body}: {} {}", reply.status, reply.text);
        self.admin_writes.fetch_add(1, Ordering::SeqCst);
        reply.json()
    }

    /// Creates a party and returns its token.
    pub async fn create_party(&self, body: Value) -> String {
        let created = self.admin_write(Method::POST, "/v1/admin/parties", body).await;
        created["token"].as_str().expect("a token").to_owned()
    }

    pub async fn customs(&self, country: &str) -> String {
        self.create_party(json!({"kind": "customs", "name": format!("Customs {country}"), "country": country})).await
    }

    pub async fn chain(&self, name: &str) -> String {
        self.create_party(json!({"kind": "guarantee_chain", "name": name})).await
    }

    pub async fn holder_party(&self, tir_id: &str) -> String {
        self.create_party(json!({"kind": "holder", "name": format!("Holder {tir_id}"), "tir_id": tir_id})).await
    }

    pub async fn office(&self, code: &str, roles: &[&str]) {
        let body = json!({"code": code, "country": &code[..2], "name": format!("Office {code}"), "roles": roles});
        self.admin_write(Method::POST, "/v1/admin/offices", body).await;
    }

    pub async fn put_holder(&self, tir_id: &str, status: &str) {
        let body = json!({"name": format!("Carrier {tir_id}"), "country": "TR", "status": status});
        self.admin_write(Method::PUT, &format!("/v1/admin/holders/{}", encode(tir_id)), body).await;
    }

    pub async fn feed_page(&self, token: &str, after: &str, limit: usize) -> Value {
        let (status, page) = self.get(token, &format!("/v1/notifications?after={after}&limit={limit}")).await;
        assert_eq!(status, 200, "{page}");
        page
    }

    /// The whole feed of the caller, read in one page.
    pub async fn feed(&self, token: &str) -> Vec<Value> {
        let page = self.feed_page(token, "", 1000).await;
        page["items"].as_array().expect("items").clone()
    }

    /// The whole feed, read `limit` items at a time by following `next`.
    pub async fn feed_paged(&self, token: &str, limit: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.feed_page(token, &after, limit).await;
            let batch = page["items"].as_array().expect("items").clone();
            let next = page["next"].as_str().expect("next is a string").to_owned();
            assert!(batch.len() <= limit, "a page holds at most `limit` items: {page}");
            if batch.is_empty() {
                // An empty page leaves the cursor where it was.
                if !after.is_empty() {
                    assert_eq!(next, after);
                }
                return items;
            }
            assert_eq!(next, batch.last().unwrap()["cursor"].as_str().unwrap(), "next is the last cursor");
            items.extend(batch);
            after = next;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
        }
    }
}
