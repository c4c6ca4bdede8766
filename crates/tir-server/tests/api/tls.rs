//! TLS and mutual TLS over real handshakes (issue 14): certificates made at
//! test time (tir_testkit::tls), the server as `serve --tls-cert --tls-key
//! [--client-ca]` runs it. A customs party bound to its client certificate is
//! refused (401/390) with its token alone or with another certificate; an
//! unbound party still works with its token; a certificate not signed by the
//! client CA is refused at the handshake. Every connection limit holds over TLS.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tir_server::ServeLimits;
use tir_testkit::server::ADMIN_TOKEN;
use tir_testkit::tls::{ClientCert, Https, Pki};
use tir_testkit::{FreshDatabase, TempSqlite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// How long a test waits for what must happen before it calls it a failure.
const PATIENCE: Duration = Duration::from_secs(20);
const SHORT: Duration = Duration::from_millis(300);

enum Database {
    Sqlite(TempSqlite),
    Postgres(FreshDatabase),
}

struct Served {
    addr: std::net::SocketAddr,
    pki: Pki,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _db: Database,
}

impl Served {
    fn client(&self, cert: Option<&ClientCert>) -> Https {
        Https::new(self.addr, &self.pki.ca_pem, cert)
    }

    /// A party created by the admin over HTTPS: (id, token).
    async fn party(&self, body: Value) -> (String, String) {
        let (status, created) =
            self.client(None).request("POST", "/v1/admin/parties", Some(ADMIN_TOKEN), Some(&body)).await.unwrap();
        assert_eq!(status, 201, "{created}");
        (created["id"].as_str().unwrap().to_owned(), created["token"].as_str().unwrap().to_owned())
    }

    async fn bind(&self, id: &str, certificate_sha256: Value) -> (u16, Value) {
        let body = json!({"certificate_sha256": certificate_sha256});
        let path = format!("/v1/admin/parties/{id}/certificate");
        self.client(None).request("PUT", &path, Some(ADMIN_TOKEN), Some(&body)).await.unwrap()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(PATIENCE, &mut self.server).await;
    }
}

async fn serve_on(db: Database, mutual: bool, limits: ServeLimits) -> Served {
    let url = match &db {
        Database::Sqlite(db) => db.url().to_owned(),
        Database::Postgres(db) => db.url().to_owned(),
    };
    let store = tir_store::open(&url).await.expect("open the store");
    let app = tir_server::App::new(store, ADMIN_TOKEN).without_risk();
    let pki = Pki::new();
    let tls = pki.server_tls(mutual);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(tir_server::serve_with_tls(listener, app, limits, Some(tls), async move {
        let _ = stopped.await;
    }));
    Served { addr, pki, stop: Some(stop), server, _db: db }
}

async fn serve(mutual: bool, limits: ServeLimits) -> Served {
    serve_on(Database::Sqlite(TempSqlite::new("tirhub-tls").expect("a test directory")), mutual, limits).await
}

fn error_code(answer: &Value) -> Option<u64> {
    answer["error"]["code"].as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_health_and_an_authenticated_route() {
    let served = serve(false, ServeLimits::default()).await;
    let https = served.client(None);
    let (status, health) = https.request("GET", "/health", None, None).await.unwrap();
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")), "{health}");
    let (status, verdict) = https.request("GET", "/v1/admin/journal/verify", Some(ADMIN_TOKEN), None).await.unwrap();
    assert_eq!((status, verdict["ok"].as_bool()), (200, Some(true)), "{verdict}");
    let (status, refused) = https.request("GET", "/v1/admin/journal/verify", Some("not-a-token"), None).await.unwrap();
    assert_eq!((status, error_code(&refused)), (401, Some(390)), "{refused}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_server_certificate_is_not_served() {
    let served = serve(false, ServeLimits::default()).await;
    let other = Pki::new();
    let refused = Https::new(served.addr, &other.ca_pem, None).request("GET", "/health", None, None).await;
    assert!(refused.is_err_and(|e| e.contains("TLS handshake")), "served under another CA");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_the_tls_port_gets_a_coded_400_and_the_connection_closes() {
    let served = serve(false, ServeLimits::default()).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: tirhub\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("closed in time, not left hanging")
        .expect("read");
    // Answered at once, far within the header timeout (20 s).
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap();
    assert_eq!(error_code(&body), Some(100), "{answer}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_closed_after_the_header_timeout() {
    let limits = ServeLimits { header_read_timeout: SHORT, ..ServeLimits::default() };
    let served = serve(false, limits).await;
    // Silent from the start, and a ClientHello that stops after its record header.
    for opening in [&b""[..], &[0x16, 0x03, 0x01, 0x02, 0x00][..]] {
        let started = Instant::now();
        let mut stream = TcpStream::connect(served.addr).await.unwrap();
        stream.write_all(opening).await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await.expect("closed in time").ok();
        assert!(started.elapsed() >= SHORT, "closed before the timeout: {:?}", started.elapsed());
    }
    // The server still serves.
    let (status, _) = served.client(None).request("GET", "/health", None, None).await.unwrap();
    assert_eq!(status, 200);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_handshake_holds_a_place_under_the_connection_cap() {
    let limits = ServeLimits { connections_max: 1, ..ServeLimits::default() };
    let served = serve(false, limits).await;
    // A connection that has not finished (not even started) its handshake holds the one place.
    let holder = TcpStream::connect(served.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let https = served.client(None);
    let impatient = tokio::time::timeout(SHORT, https.request("GET", "/health", None, None)).await;
    assert!(impatient.is_err(), "served past the cap: {impatient:?}");
    drop(holder);
    let answer = tokio::time::timeout(PATIENCE, https.request("GET", "/health", None, None)).await;
    assert_eq!(answer.expect("served once the first connection closed").unwrap().0, 200);
    served.stop().await;
}

/// The mutual TLS cases, on one store.
async fn a_bound_party_needs_its_certificate(served: Served) {
    let (customs_id, customs) =
        served.party(json!({"kind": "customs", "name": "Customs of LT", "country": "LT"})).await;
    let (_, holder) = served.party(json!({"kind": "holder", "name": "Baltic Haulage", "tir_id": "LTU/012/345"})).await;
    let own = served.pki.client("customs LT system");
    let another = served.pki.client("another system");

    // Unbound: the token alone works, with or without a certificate.
    for cert in [None, Some(&own)] {
        let (status, feed) =
            served.client(cert).request("GET", "/v1/notifications", Some(&customs), None).await.unwrap();
        assert_eq!(status, 200, "{feed}");
    }

    let (status, bound) = served.bind(&customs_id, json!(own.sha256.to_uppercase())).await;
    assert_eq!(status, 200, "{bound}");
    assert_eq!(bound["certificate_sha256"].as_str(), Some(own.sha256.as_str()), "stored lowercase: {bound}");
    assert_eq!((bound["id"].as_str(), bound["kind"].as_str()), (Some(customs_id.as_str()), Some("customs")));

    let (status, feed) =
        served.client(Some(&own)).request("GET", "/v1/notifications", Some(&customs), None).await.unwrap();
    assert_eq!(status, 200, "with its certificate: {feed}");
    for (cert, label) in [(None, "no certificate"), (Some(&another), "another valid certificate")] {
        let (status, refused) =
            served.client(cert).request("GET", "/v1/notifications", Some(&customs), None).await.unwrap();
        assert_eq!((status, error_code(&refused)), (401, Some(390)), "{label}: {refused}");
    }
    // Another party is not bound: its token alone still works.
    let (status, feed) = served.client(None).request("GET", "/v1/notifications", Some(&holder), None).await.unwrap();
    assert_eq!(status, 200, "unbound holder: {feed}");

    // A certificate the client CA did not sign: refused at the handshake, whatever the token.
    let stranger = Pki::stranger("customs LT system");
    let refused = served.client(Some(&stranger)).request("GET", "/v1/notifications", Some(&holder), None).await;
    assert!(refused.is_err(), "served with a certificate of another CA: {refused:?}");

    // The same binding again: the same answer. With colons (openssl's form): the same.
    let colons: Vec<String> =
        own.sha256.as_bytes().chunks(2).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let (status, again) = served.bind(&customs_id, json!(colons.join(":"))).await;
    assert_eq!((status, &again), (200, &bound));

    // Unbound again (null): the token alone works at once.
    let (status, unbound) = served.bind(&customs_id, Value::Null).await;
    assert_eq!((status, &unbound["certificate_sha256"]), (200, &Value::Null), "{unbound}");
    let (status, feed) = served.client(None).request("GET", "/v1/notifications", Some(&customs), None).await.unwrap();
    assert_eq!(status, 200, "unbound: {feed}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_party_needs_its_certificate_on_sqlite() {
    a_bound_party_needs_its_certificate(serve(true, ServeLimits::default()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_party_needs_its_certificate_on_postgresql() {
    let Some(db) = FreshDatabase::from_env("tirhub_tls").await else {
        eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
        return;
    };
    a_bound_party_needs_its_certificate(serve_on(Database::Postgres(db), true, ServeLimits::default()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_a_certificate_checks_its_input_and_is_for_the_admin() {
    let served = serve(true, ServeLimits::default()).await;
    let (id, token) = served.party(json!({"kind": "customs", "name": "Customs of PL", "country": "PL"})).await;
    let https = served.client(None);
    let path = format!("/v1/admin/parties/{id}/certificate");
    let cases = [
        (json!({"certificate_sha256": "ab"}), 400, 106, "/certificate_sha256"),
        (json!({"certificate_sha256": "g".repeat(64)}), 400, 106, "/certificate_sha256"),
        (json!({"certificate_sha256": 7}), 400, 106, "/certificate_sha256"),
        (json!({}), 400, 101, "/certificate_sha256"),
        (json!({"certificate_sha256": null, "note": "x"}), 400, 107, "/note"),
    ];
    for (body, status, code, pointer) in cases {
        let (got, answer) = https.request("PUT", &path, Some(ADMIN_TOKEN), Some(&body)).await.unwrap();
        assert_eq!((got, error_code(&answer)), (status, Some(code)), "{body}: {answer}");
        assert_eq!(answer["error"]["pointer"].as_str(), Some(pointer), "{body}: {answer}");
    }
    let body = json!({"certificate_sha256": "a".repeat(64)});
    let (status, answer) = https.request("PUT", &path, Some(&token), Some(&body)).await.unwrap();
    assert_eq!((status, error_code(&answer)), (403, Some(380)), "a party binding itself: {answer}");
    let unknown = "/v1/admin/parties/cus_0000000000000000/certificate";
    let (status, answer) = https.request("PUT", unknown, Some(ADMIN_TOKEN), Some(&body)).await.unwrap();
    assert_eq!((status, error_code(&answer)), (404, Some(381)), "{answer}");
    served.stop().await;
}

/// A bound party over a server without TLS: no connection can present its
/// certificate, so its token is refused there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_party_is_refused_over_plain_http() {
    let app = tir_testkit::server::spawn_app().await;
    let body = json!({"kind": "customs", "name": "Customs of LT", "country": "LT"}).to_string().into_bytes();
    let created = app.call(reqwest::Method::POST, "/v1/admin/parties", Some(&app.admin), Some(body)).await.json();
    let (id, token) = (created["id"].as_str().unwrap(), created["token"].as_str().unwrap());
    let body = serde_json::to_vec(&json!({"certificate_sha256": "0".repeat(64)})).unwrap();
    let reply = app
        .call(reqwest::Method::PUT, &format!("/v1/admin/parties/{id}/certificate"), Some(&app.admin), Some(body))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let (status, answer) = app.get(token, "/v1/notifications").await;
    assert_eq!((status, error_code(&answer)), (401, Some(390)), "{answer}");
    assert!(answer["error"]["detail"].as_str().is_some_and(|d| d.contains("certificate")), "{answer}");
}
