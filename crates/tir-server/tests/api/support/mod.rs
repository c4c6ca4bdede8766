//! Test harness: a real server on a random port over a fresh store, the
//! corridor fixture TR → GE → AZ, and a driver for the transport.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "tirhub-test-admin-token";
pub const HOLDER: &str = "TUR/012/345";
pub const OTHER_HOLDER: &str = "TUR/012/346";
pub const WITHDRAWN_HOLDER: &str = "TUR/012/999";
pub const SEAL: &str = "TR-884211";
/// The itinerary with the office each country acts through.
pub const ROUTE: [(&str, &str); 3] = [("TR", "TR000100"), ("GE", "GE000100"), ("AZ", "AZ000200")];

pub fn random_hex(bytes: usize) -> String {
    tir_store::token::random_hex(bytes)
}

static NEXT_MESSAGE: AtomicU64 = AtomicU64::new(1);

/// The counter keeps ids unique within a run, the random part across runs.
pub fn message_id() -> String {
    format!("m-{}-{}", NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed), random_hex(6))
}

pub fn reference() -> String {
    format!("XH{}", random_hex(5).to_uppercase())
}

/// Path segments carry `/` in TIR ids.
pub fn encode(segment: &str) -> String {
    segment.replace('/', "%2F")
}

/// An envelope with a fresh message_id and the given body fields.
pub fn message(kind: &str, reference: &str, fields: Value) -> Value {
    let mut m = json!({"message_id": message_id(), "type": kind, "guarantee_reference": reference});
    if let (Some(m), Value::Object(fields)) = (m.as_object_mut(), fields) {
        m.extend(fields);
    }
    m
}

pub fn declaration() -> Value {
    json!({
        "itinerary": ["TR", "GE", "AZ"],
        "offices": [
            {"code": "TR000100", "role": "departure"},
            {"code": "GE000100", "role": "entry"},
            {"code": "AZ000200", "role": "destination"}
        ],
        "vehicle": {"registration": "34ABC123", "country": "TR"},
        "seals": [SEAL],
        "consignments": [{
            "consignor": {"name": "Anatolia Export", "country": "TR"},
            "consignee": {"name": "Baku Import", "country": "AZ"},
            "goods": [{"hs_code": "870323", "description": "Passenger cars",
                       "packages": 4, "gross_mass_kg": 6200.0,
                       "value": {"amount": 88000.0, "currency": "EUR"}}]
        }]
    })
}

/// Status the contract gives each error code.
pub fn status_of(code: u16) -> u16 {
    match code {
        340 => 409,
        360 => 403,
        401 | 404 | 405 | 413 => code,
        c if c < 200 => 400,
        c if c < 300 => 409,
        _ => 422,
    }
}

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
        let body = self.json();
        assert!(self.content_type.starts_with("application/json"), "content type {:?}", self.content_type);
        assert_eq!(
            (self.status, body["error"]["code"].as_u64(), body["error"]["pointer"].as_str()),
            (status_of(code), Some(u64::from(code)), Some(pointer)),
            "expected {code} at {pointer:?}, got {} {}",
            self.status,
            self.text
        );
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

enum Cleanup {
    Dir(PathBuf),
    PgDatabase { server_url: String, name: String },
}

pub struct TestApp {
    pub base: String,
    pub admin: String,
    pub client: reqwest::Client,
    db_url: String,
    running: Option<Running>,
    admin_writes: AtomicUsize,
    cleanup: Cleanup,
}

async fn start(db_url: &str) -> (String, Running) {
    let store = tir_store::open(db_url).await.unwrap_or_else(|e| panic!("open {db_url}: {e}"));
    let app = tir_server::App::new(store, ADMIN_TOKEN);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let base = format!("http://{}", listener.local_addr().expect("bound address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(tir_server::serve(listener, app, async move {
        let _ = stopped.await;
    }));
    (base, Running { stop, server })
}

/// A server over a fresh SQLite file in its own temporary directory.
pub async fn spawn_app() -> TestApp {
    let dir = std::env::temp_dir().join(format!("tirhub-api-{}", random_hex(8)));
    std::fs::create_dir_all(&dir).expect("create the test directory");
    let db_url = format!("sqlite://{}/{}.db", dir.display(), random_hex(4));
    TestApp::launch(db_url, Cleanup::Dir(dir)).await
}

/// A server over a fresh PostgreSQL database; `None` without TIRHUB_TEST_DATABASE_URL.
pub async fn spawn_app_pg() -> Option<TestApp> {
    let server_url = std::env::var("TIRHUB_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
    let name = format!("tirhub_t_{}", random_hex(6));
    let (client, connection) = tokio_postgres::connect(&server_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {server_url}: {e}"));
    let connection = tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create the test database");
    drop(client);
    let _ = connection.await;
    let db_url = with_database(&server_url, &name);
    Some(TestApp::launch(db_url, Cleanup::PgDatabase { server_url, name }).await)
}

/// `postgres://u@h:p/db?x` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (url, None),
    };
    let authority = main.find("://").map_or(0, |i| i + 3);
    let path = main[authority..].find('/').map_or(main.len(), |i| authority + i);
    let mut out = format!("{}/{name}", &main[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

impl TestApp {
    async fn launch(db_url: String, cleanup: Cleanup) -> TestApp {
        let (base, running) = start(&db_url).await;
        TestApp {
            base,
            admin: ADMIN_TOKEN.to_owned(),
            client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
            db_url,
            running: Some(running),
            admin_writes: AtomicUsize::new(0),
            cleanup,
        }
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
        let (base, running) = start(&self.db_url).await;
        self.base = base;
        self.running = Some(running);
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
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::PgDatabase { server_url, name } => {
                let (url, sql) = (server_url.clone(), format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                // Drop may run on the test's runtime, which cannot block on itself.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                    runtime.block_on(async {
                        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.ok()?;
                        tokio::spawn(connection);
                        client.batch_execute(&sql).await.ok()
                    })
                })
                .join();
            }
        }
    }
}

/// Tokens of the seeded parties.
pub struct Corridor {
    pub tr: String,
    pub ge: String,
    pub az: String,
    /// Customs of a country off the itinerary.
    pub am: String,
    pub chain_a: String,
    pub chain_b: String,
    pub holder: String,
    pub other_holder: String,
    /// No test sends as it yet; seeded so every ITDB holder has a party.
    #[allow(dead_code)]
    pub withdrawn_holder: String,
}

impl Corridor {
    pub async fn seed(app: &TestApp) -> Corridor {
        app.office("TR000100", &["departure", "exit"]).await;
        app.office("GE000100", &["entry", "exit"]).await;
        app.office("AZ000200", &["entry", "destination"]).await;
        app.office("AM000100", &["departure", "destination", "entry", "exit"]).await;
        app.put_holder(HOLDER, "authorized").await;
        app.put_holder(OTHER_HOLDER, "authorized").await;
        app.put_holder(WITHDRAWN_HOLDER, "withdrawn").await;
        Corridor {
            tr: app.customs("TR").await,
            ge: app.customs("GE").await,
            az: app.customs("AZ").await,
            am: app.customs("AM").await,
            chain_a: app.chain("Chain A").await,
            chain_b: app.chain("Chain B").await,
            holder: app.holder_party(HOLDER).await,
            other_holder: app.holder_party(OTHER_HOLDER).await,
            withdrawn_holder: app.holder_party(WITHDRAWN_HOLDER).await,
        }
    }

    pub fn customs(&self, country: &str) -> &str {
        match country {
            "TR" => &self.tr,
            "GE" => &self.ge,
            "AZ" => &self.az,
            "AM" => &self.am,
            other => panic!("no customs party for {other}"),
        }
    }
}

pub fn office_of(country: &str) -> &'static str {
    ROUTE.iter().find(|(c, _)| *c == country).map(|(_, o)| *o).unwrap_or_else(|| panic!("{country} is off the route"))
}

/// One accepted message: who sent what, and the answer.
#[derive(Debug, Clone)]
pub struct Sent {
    pub token: String,
    pub body: Value,
    pub reply: Reply,
}

/// Drives one guarantee through the transport, asserting every step succeeds.
pub struct Trip<'a> {
    pub app: &'a TestApp,
    pub c: &'a Corridor,
    pub reference: String,
    pub sent: Vec<Sent>,
}

impl<'a> Trip<'a> {
    pub fn new(app: &'a TestApp, c: &'a Corridor) -> Trip<'a> {
        Trip { app, c, reference: reference(), sent: Vec::new() }
    }

    pub fn path(&self) -> String {
        format!("/v1/guarantees/{}", self.reference)
    }

    async fn ok(&mut self, token: &str, body: Value, response_type: &str) -> Value {
        let reply = self.app.post(token, &body).await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.text);
        assert!(reply.content_type.starts_with("application/json"), "{:?}", reply.content_type);
        let json = reply.json();
        assert_eq!(json["type"], response_type, "{}", reply.text);
        assert_eq!(json["message_id"], body["message_id"]);
        assert_eq!(json["guarantee"]["reference"], self.reference.as_str());
        self.sent.push(Sent { token: token.to_owned(), body, reply });
        json
    }

    pub async fn register(&mut self) -> Value {
        let body = message("E1", &self.reference, json!({"holder": HOLDER, "valid_until": "2099-12-31"}));
        let c = self.c;
        self.ok(&c.chain_a, body, "E2").await
    }

    pub async fn advance(&mut self) -> Value {
        let body = message("E9", &self.reference, json!({"declaration": declaration()}));
        let c = self.c;
        self.ok(&c.holder, body, "E10").await
    }

    pub async fn accept(&mut self) -> Value {
        let body = message("I1", &self.reference, json!({"office": "TR000100"}));
        let c = self.c;
        self.ok(&c.tr, body, "I2").await
    }

    pub async fn record(&mut self) -> Value {
        let body = message("I7", &self.reference, json!({"office": "TR000100"}));
        let c = self.c;
        self.ok(&c.tr, body, "I8").await
    }

    pub async fn start(&mut self, country: &str) -> Value {
        let mut fields = json!({"office": office_of(country)});
        if country == "TR" {
            fields["seals"] = json!([SEAL]);
        }
        let body = message("I9", &self.reference, fields);
        let c = self.c;
        self.ok(c.customs(country), body, "I10").await
    }

    pub async fn terminate(&mut self, country: &str) -> Value {
        let body = message("I11", &self.reference, json!({"office": office_of(country), "reservations": []}));
        let c = self.c;
        self.ok(c.customs(country), body, "I12").await
    }

    pub async fn discharge(&mut self, country: &str) -> Value {
        let body = message("I13", &self.reference, json!({"office": office_of(country)}));
        let c = self.c;
        self.ok(c.customs(country), body, "I14").await
    }

    /// E1, E9, I1, I7: the guarantee is accepted and the declaration recorded.
    pub async fn up_to_recorded(&mut self) {
        self.register().await;
        self.advance().await;
        self.accept().await;
        self.record().await;
    }

    /// The whole transport: start and terminate in each country, then discharge each.
    pub async fn full(&mut self) {
        self.up_to_recorded().await;
        for (country, _) in ROUTE {
            self.start(country).await;
            self.terminate(country).await;
        }
        for (country, _) in ROUTE {
            self.discharge(country).await;
        }
    }
}
