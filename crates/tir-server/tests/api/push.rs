//! Push notifications (docs/etir-binding.md, "Push notifications"): a receiver
//! on loopback that fails its first deliveries still gets each feed item
//! confirmed exactly once, in order, signed with the party's secret: through
//! retries, a server restart, and two servers sharing one PostgreSQL database.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use tir_testkit::server::*;

const SECRET: &str = "a-secret-of-the-chain-0123456789";
const ENDPOINT: &str = "/v1/notifications/endpoint";

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// Answer 500 to this many requests first.
    fail_first: usize,
    /// Answer 503 to every request while set.
    down: bool,
    /// Every request: its item's cursor and the status answered.
    requests: Vec<(i64, u16)>,
    /// The items answered with a 2xx, in order.
    confirmed: Vec<Value>,
    bad_signatures: usize,
}

struct Receiver {
    url: String,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn verified(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(header) = headers.get("tirhub-signature").and_then(|v| v.to_str().ok()) else { return false };
    let Some((t, v1)) = header.strip_prefix("t=").and_then(|rest| rest.split_once(",v1=")) else { return false };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    t.parse::<u64>().is_ok() && v1 == expected
}

impl Receiver {
    async fn start(fail_first: usize) -> Receiver {
        let seen = Arc::new(Mutex::new(Seen { fail_first, ..Seen::default() }));
        let state = seen.clone();
        let hook = move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                // A little time per answer, so that two servers' attempts would overlap.
                tokio::time::sleep(Duration::from_millis(5)).await;
                let item: Value = serde_json::from_slice(&body).expect("the body is JSON");
                let cursor = item["cursor"].as_str().expect("a cursor").parse::<i64>().expect("a number");
                let mut seen = state.lock().unwrap();
                if !verified(&headers, &body) {
                    seen.bad_signatures += 1;
                }
                let status = if seen.down {
                    StatusCode::SERVICE_UNAVAILABLE
                } else if seen.fail_first > 0 {
                    seen.fail_first -= 1;
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    seen.confirmed.push(item);
                    StatusCode::NO_CONTENT
                };
                seen.requests.push((cursor, status.as_u16()));
                status
            }
        };
        let router = axum::Router::new().route("/hook", axum::routing::post(hook));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { url, seen, task }
    }

    /// As `start(0)`, over HTTPS with `pki`'s server certificate (for
    /// 127.0.0.1): a private CA that the Mozilla roots do not hold.
    async fn start_https(pki: &tir_testkit::tls::Pki) -> Receiver {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let plain = Receiver::start(0).await;
        let chain = CertificateDer::pem_slice_iter(pki.server_cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>();
        let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain.unwrap(), key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/hook", listener.local_addr().unwrap());
        // Each TLS connection is piped to the plain receiver, which does the
        // answering; the task owns it, so aborting the task stops both.
        let target = plain.url.trim_start_matches("http://").trim_end_matches("/hook").to_owned();
        let seen = plain.seen.clone();
        let task = tokio::spawn(async move {
            let _plain = plain;
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, target) = (acceptor.clone(), target.clone());
                tokio::spawn(async move {
                    // A refused handshake (the pusher not trusting the CA) just ends the connection.
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
        Receiver { url, seen, task }
    }

    fn set_down(&self, down: bool) {
        self.seen.lock().unwrap().down = down;
    }

    fn confirmed(&self) -> Vec<Value> {
        self.seen.lock().unwrap().confirmed.clone()
    }

    /// Waits (up to 60 s) until `n` items are confirmed.
    async fn wait_for(&self, n: usize) {
        for _ in 0..1200 {
            if self.confirmed().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} of {n} items confirmed after 60 s", self.confirmed().len());
    }

    /// Every item of `feed` confirmed once, in order, each request signed, and
    /// no item sent before the one before it was confirmed.
    fn assert_delivered(&self, feed: &[Value]) {
        let seen = self.seen.lock().unwrap();
        assert_eq!(seen.confirmed, feed, "each item confirmed exactly once, in feed order, as the feed shows it");
        assert_eq!(seen.bad_signatures, 0, "every delivery is signed with the secret");
        for pair in seen.requests.windows(2) {
            let ((before, status), (after, _)) = (pair[0], pair[1]);
            assert!(after >= before, "in order: {:?}", seen.requests);
            if after > before {
                assert!(
                    (200..300).contains(&status),
                    "item {after} sent before {before} was confirmed: {:?}",
                    seen.requests
                );
            }
        }
    }
}

/// Waits (up to 60 s) until the store has recorded the confirmation of the last
/// item of `feed`: the receiver answers before the server stores the outcome.
async fn settled(app: &TestApp, token: &str, feed: &[Value]) {
    let last = &feed.last().expect("a feed item")["cursor"];
    for _ in 0..1200 {
        if app.get(token, ENDPOINT).await.1["confirmed_through"] == *last {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("item {last} not recorded as confirmed after 60 s");
}

async fn register(app: &TestApp, token: &str, url: &str) -> Reply {
    let body = json!({"url": url, "secret": SECRET});
    app.call(Method::PUT, ENDPOINT, Some(token), Some(body.to_string().into_bytes())).await
}

async fn deliveries(app: &TestApp, token: &str) -> Value {
    let (status, page) = app.get(token, "/v1/notifications/deliveries?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    page
}

async fn delivers_every_item_once_in_order_through_failures(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let receiver = Receiver::start(3).await;
    let registered = register(app, &c.chain_a, &receiver.url).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    assert!(!registered.text.contains(SECRET), "the secret is never shown: {}", registered.text);
    Trip::new(app, &c).full().await;
    let feed = app.feed(&c.chain_a).await;
    assert!(feed.len() >= 2, "the trip fills the chain's feed: {feed:?}");
    receiver.wait_for(feed.len()).await;
    receiver.assert_delivered(&feed);
    settled(app, &c.chain_a, &feed).await;

    let page = deliveries(app, &c.chain_a).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), feed.len());
    let first = &items[0];
    assert_eq!(first["cursor"], feed[0]["cursor"]);
    let attempts = first["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4, "three refused, then confirmed: {first}");
    for failed in &attempts[..3] {
        assert_eq!(failed["http_status"], 500);
        assert!(failed["next_attempt_at"].is_string(), "a failure says when it is tried again: {failed}");
    }
    assert_eq!(attempts[3]["http_status"], 204);
    assert_eq!(first["confirmed"]["http_status"], 204);
    for item in &items[1..] {
        assert_eq!(item["attempts"].as_array().unwrap().len(), 1, "{item}");
        assert!(item["confirmed"].is_object(), "{item}");
    }
    let (status, endpoint) = app.get(&c.chain_a, ENDPOINT).await;
    assert_eq!(status, 200);
    assert_eq!(endpoint["status"], "active");
    assert_eq!(endpoint["confirmed_through"], feed.last().unwrap()["cursor"]);
    assert_eq!(endpoint["failures"], 0);
    assert!(endpoint.get("secret").is_none() && !endpoint.to_string().contains(SECRET));
}

async fn routes_check_urls_and_keep_to_the_caller(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let put = |token: &str, body: Value| {
        let token = token.to_owned();
        async move { app.call(Method::PUT, ENDPOINT, Some(&token), Some(body.to_string().into_bytes())).await }
    };
    for url in
        ["http://example.org/hook", "http://10.1.2.3/hook", "ftp://127.0.0.1/hook", "hook", "https://u:p@example.org/"]
    {
        put(&c.chain_a, json!({"url": url, "secret": SECRET})).await.assert_error(106, "/url");
    }
    put(&c.chain_a, json!({"url": "https://example.org/hook", "secret": "short"})).await.assert_error(105, "/secret");
    put(&c.chain_a, json!({"secret": SECRET})).await.assert_error(101, "/url");
    put(&c.chain_a, json!({"url": "https://example.org/", "secret": SECRET, "x": 1})).await.assert_error(107, "/x");
    put(&app.admin, json!({"url": "https://example.org/", "secret": SECRET})).await.assert_error(380, "");
    app.call(Method::GET, ENDPOINT, Some(&c.chain_a), None).await.assert_not_found(183, "");

    // An unreachable loopback port: every attempt fails, nothing is confirmed.
    let receiver = Receiver::start(0).await;
    receiver.set_down(true);
    assert_eq!(register(app, &c.chain_a, &receiver.url).await.status, 201);
    let again = register(app, &c.chain_a, &receiver.url).await;
    assert_eq!(again.status, 200, "{}", again.text);
    for party in [&c.chain_b, &c.tr, &c.holder] {
        // Another party sees no endpoint, removes none, and sees none of the chain's attempts.
        app.call(Method::GET, ENDPOINT, Some(party), None).await.assert_not_found(183, "");
        app.call(Method::DELETE, ENDPOINT, Some(party), None).await.assert_not_found(183, "");
    }
    let (status, endpoint) = app.get(&c.chain_a, ENDPOINT).await;
    assert_eq!((status, endpoint["status"].as_str()), (200, Some("active")));

    Trip::new(app, &c).up_to_recorded().await;
    // The receiver sees a request before the attempt's outcome is stored: wait for the store.
    let mut page = deliveries(app, &c.chain_a).await;
    for _ in 0..1200 {
        if page["items"][0]["attempts"].as_array().is_some_and(|a| a.len() >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        page = deliveries(app, &c.chain_a).await;
    }
    assert!(receiver.seen.lock().unwrap().requests.len() >= 2, "the item is tried again");
    assert!(page["items"][0]["attempts"].as_array().unwrap().len() >= 2, "{page}");
    assert!(page["items"][0]["confirmed"].is_null());
    let others = deliveries(app, &c.chain_b).await;
    assert!(others["items"].as_array().unwrap().is_empty(), "chain B's feed is its own: {others}");

    let removed = app.call(Method::DELETE, ENDPOINT, Some(&c.chain_a), None).await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(removed.json()["status"], "removed");
    app.call(Method::GET, ENDPOINT, Some(&c.chain_a), None).await.assert_not_found(183, "");
    // An attempt in flight at DELETE (claimed before it) still ends, against the
    // receiver still down: wait past the longest backoff (200 ms) before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tried: usize = deliveries(app, &c.chain_a).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["attempts"].as_array().unwrap().len())
        .sum();
    // Removed: more items come, none is tried (ten polls of the test server's pusher).
    receiver.set_down(false);
    Trip::new(app, &c).up_to_recorded().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = deliveries(app, &c.chain_a).await;
    let attempts: usize =
        after["items"].as_array().unwrap().iter().map(|i| i["attempts"].as_array().unwrap().len()).sum();
    assert_eq!(attempts, tried, "nothing tried after DELETE: {after}");
    assert!(receiver.confirmed().is_empty());
}

async fn deliveries_of_the_admin_are_refused(app: &TestApp) {
    let reply = app.get_reply(&app.admin, "/v1/notifications/deliveries").await;
    reply.assert_error(380, "");
}

on_both_stores!(
    delivers_every_item_once_in_order_through_failures,
    routes_check_urls_and_keep_to_the_caller,
    deliveries_of_the_admin_are_refused
);

/// The journal records the endpoint and each confirmation, never the secret.
async fn journal_has_confirmations_and_no_secret(mut app: TestApp) {
    let c = Corridor::seed(&app).await;
    let receiver = Receiver::start(1).await;
    register(&app, &c.chain_a, &receiver.url).await;
    Trip::new(&app, &c).up_to_recorded().await;
    let feed = app.feed(&c.chain_a).await;
    receiver.wait_for(feed.len()).await;
    settled(&app, &c.chain_a, &feed).await;
    app.stop().await;
    let store = tir_store::open(app.db_url()).await.unwrap();
    let journal = store.journal(0, 100_000).await.unwrap();
    assert!(journal.iter().all(|e| !e.body.contains(SECRET)), "the secret is never journaled");
    let types = |t: &str| journal.iter().filter(|e| e.message_type == t).count();
    assert_eq!(types("PUSH_ENDPOINT"), 1);
    assert_eq!(types("PUSH_CONFIRMED"), feed.len());
    assert!(store.verify_journal().await.unwrap().ok, "the chain still verifies");
}

/// Items written while the receiver is down are delivered by the next server
/// over the same store, from the first unconfirmed one.
async fn delivery_resumes_after_a_restart(mut app: TestApp) {
    let c = Corridor::seed(&app).await;
    let receiver = Receiver::start(0).await;
    register(&app, &c.chain_a, &receiver.url).await;
    Trip::new(&app, &c).full().await;
    let feed = app.feed(&c.chain_a).await;
    receiver.wait_for(feed.len()).await;
    // Restarted before the outcome is stored, the item would be sent again (at least once).
    settled(&app, &c.chain_a, &feed).await;
    receiver.set_down(true);
    Trip::new(&app, &c).full().await;
    app.restart().await;
    receiver.set_down(false);
    Trip::new(&app, &c).full().await;
    let feed = app.feed(&c.chain_a).await;
    receiver.wait_for(feed.len()).await;
    receiver.assert_delivered(&feed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_on_sqlite() {
    journal_has_confirmations_and_no_secret(spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_sqlite() {
    delivery_resumes_after_a_restart(spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_postgresql() {
    let Some(app) = spawn_app_pg().await else {
        eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
        return;
    };
    delivery_resumes_after_a_restart(app).await;
}

/// Two servers over one PostgreSQL database, both pushing: each item is still
/// confirmed once, in order (the endpoint's lease is the database's).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_postgresql_deliver_each_item_once() {
    let Some(mut app) = spawn_app_pg().await else {
        eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
        return;
    };
    let store = tir_store::open(app.db_url()).await.unwrap();
    let second = tir_server::App::new(store, ADMIN_TOKEN).without_risk().with_push(test_push_config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tir_server::serve(listener, second, async move {
        let _ = stopped.await;
    }));

    let c = Corridor::seed(&app).await;
    let receiver = Receiver::start(5).await;
    register(&app, &c.chain_a, &receiver.url).await;
    Trip::new(&app, &c).full().await;
    Trip::new(&app, &c).full().await;
    let feed = app.feed(&c.chain_a).await;
    receiver.wait_for(feed.len()).await;
    receiver.assert_delivered(&feed);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    app.stop().await;
}

/// An endpoint failing past `pause_after` is paused, says why, and is tried no
/// more; a new PUT resumes it from the first unconfirmed item.
async fn a_failing_endpoint_is_paused_and_a_put_resumes_it(mut app: TestApp) {
    app.restart_pushing(tir_server::PushConfig { pause_after: Duration::from_millis(300), ..test_push_config() }).await;
    let c = Corridor::seed(&app).await;
    let receiver = Receiver::start(0).await;
    receiver.set_down(true);
    register(&app, &c.chain_a, &receiver.url).await;
    Trip::new(&app, &c).up_to_recorded().await;
    let mut endpoint = Value::Null;
    for _ in 0..1200 {
        endpoint = app.get(&c.chain_a, ENDPOINT).await.1;
        if endpoint["status"] == "paused" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(endpoint["status"], "paused", "{endpoint}");
    let reason = endpoint["paused_reason"].as_str().expect("a reason");
    assert!(reason.contains("HTTP 503"), "{reason}");
    assert!(endpoint["next_attempt_at"].is_null());
    let page = deliveries(&app, &c.chain_a).await;
    let last = page["items"][0]["attempts"].as_array().unwrap().last().unwrap().clone();
    assert!(last["next_attempt_at"].is_null(), "the last attempt before the pause has no next one: {last}");

    receiver.set_down(false);
    let resumed = register(&app, &c.chain_a, &receiver.url).await;
    assert_eq!((resumed.status, resumed.json()["status"].as_str()), (200, Some("active")), "{}", resumed.text);
    let feed = app.feed(&c.chain_a).await;
    receiver.wait_for(feed.len()).await;
    receiver.assert_delivered(&feed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_on_sqlite() {
    a_failing_endpoint_is_paused_and_a_put_resumes_it(spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_on_postgresql() {
    let Some(app) = spawn_app_pg().await else {
        eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
        return;
    };
    a_failing_endpoint_is_paused_and_a_put_resumes_it(app).await;
}

/// An HTTPS endpoint whose certificate a private CA signed: each attempt
/// fails on the certificate while the server trusts only the Mozilla roots,
/// and every item is delivered once it also trusts that CA (`--push-ca`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_https_endpoint_of_a_private_ca_is_delivered_to_once_that_ca_is_trusted() {
    let mut app = spawn_app().await;
    let pki = tir_testkit::tls::Pki::new();
    let receiver = Receiver::start_https(&pki).await;
    let c = Corridor::seed(&app).await;
    assert_eq!(register(&app, &c.chain_a, &receiver.url).await.status, 201);
    Trip::new(&app, &c).full().await;
    let mut refused = None;
    for _ in 0..1200 {
        let page = deliveries(&app, &c.chain_a).await;
        refused = page["items"][0]["attempts"][0]["error"].as_str().map(str::to_owned);
        if refused.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = refused.expect("an attempt within 60 s");
    assert!(refused.contains("certificate") || refused.contains("Certificate"), "{refused}");
    assert!(receiver.confirmed().is_empty());
    let roots = tir_server::PushRoots::from_pem(std::path::Path::new("test CA"), pki.ca_pem.as_bytes()).unwrap();
    app.restart_trusting(roots).await;
    let feed = app.feed(&c.chain_a).await;
    receiver.wait_for(feed.len()).await;
    receiver.assert_delivered(&feed);
    app.stop().await;
}
