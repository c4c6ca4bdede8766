//! Per-party rate limits over HTTP (binding v2, code 386): 429 with
//! `Retry-After`, one bucket per party, checked after authentication and
//! before the body. The test kit's `spawn_app` runs unlimited, so these tests
//! start their own server with the limits they need. Rates are chosen so that
//! no assertion depends on how fast the machine is: a rate of 0.01/s refills
//! nothing during a test, and the refill test only waits longer than needed.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tir_server::{RateLimit, RateLimits};
use tir_testkit::TempSqlite;
use tir_testkit::server::*;
use tokio::sync::oneshot;

/// A rate so slow that no token comes back while a test runs.
fn frozen(burst: u32) -> Option<RateLimit> {
    RateLimit::new(0.01, burst)
}

struct Limited {
    base: String,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
    _db: TempSqlite,
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    reply: Reply,
}

impl Limited {
    async fn start(limits: RateLimits) -> Limited {
        let db = TempSqlite::new("tirhub-rate").expect("a test directory");
        let store = tir_store::open(db.url()).await.expect("open the store");
        let app = tir_server::App::new(store, ADMIN_TOKEN).with_rate_limits(limits);
        assert_eq!(app.rate_limits(), &limits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(tir_server::serve(listener, app, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Limited { base, client, _stop: stop, _db: db }
    }

    async fn call(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{path}: {e:?}"));
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let retry_after = header("retry-after");
        let content_type = header("content-type").unwrap_or_default();
        let text = response.text().await.unwrap();
        Answer { status, retry_after, reply: Reply { status, content_type, text } }
    }

    async fn get(&self, token: &str, path: &str) -> Answer {
        self.call(Method::GET, path, &[("authorization", &format!("Bearer {token}"))], None).await
    }

    async fn post(&self, token: &str, body: &Value) -> Answer {
        let auth = format!("Bearer {token}");
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        self.call(Method::POST, "/v1/messages", &headers, Some(body.to_string().into_bytes())).await
    }

    async fn party(&self, body: Value) -> String {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        let answer = self.call(Method::POST, "/v1/admin/parties", &headers, Some(body.to_string().into_bytes())).await;
        assert_eq!(answer.status, 201, "{}", answer.reply.text);
        answer.reply.json()["token"].as_str().unwrap().to_owned()
    }

    async fn holder(&self, tir_id: &str) -> String {
        self.party(json!({"kind": "holder", "name": "Holder", "tir_id": tir_id})).await
    }
}

/// Fails unless this is 429/386 at "" with a Retry-After of whole seconds in `seconds`.
#[track_caller]
fn assert_limited(answer: &Answer, seconds: std::ops::RangeInclusive<u64>) {
    answer.reply.assert_error_status(429, 386, "");
    let detail = answer.reply.json()["error"]["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("rate limit") && detail.contains("per second"), "{detail}");
    let retry_after: u64 = answer
        .retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("no Retry-After: {}", answer.reply.text))
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(seconds.contains(&retry_after), "Retry-After {retry_after} not in {seconds:?}");
}

const FEED: &str = "/v1/notifications";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_at_its_burst_is_served_and_past_it_gets_429_386_with_retry_after_on_every_route() {
    let limits = RateLimits { holder: frozen(3), ..RateLimits::unlimited() };
    let server = Limited::start(limits).await;
    let holder = server.holder("TUR/012/345").await;
    // At the limit: the whole burst is served, on queries and messages alike.
    assert_eq!(server.get(&holder, FEED).await.status, 200);
    assert_eq!(server.get(&holder, "/v1/holders/TUR%2F012%2F345").await.status, 404);
    let advance = message("E13", &reference(), json!({"reason": "not needed"}));
    let refused = server.post(&holder, &advance).await;
    assert_ne!(refused.status, 429, "{}", refused.reply.text);
    // Past it: every authenticated route answers 429/386; one token comes back in 100 s.
    assert_limited(&server.get(&holder, FEED).await, 1..=100);
    assert_limited(&server.post(&holder, &advance).await, 1..=100);
    assert_limited(&server.get(&holder, "/v1/guarantees/XH1").await, 1..=100);
    assert_limited(&server.get(&holder, "/v1/offices/TR000100").await, 1..=100);
    // On an admin route too: 386 answers before 380.
    assert_limited(&server.get(&holder, "/v1/admin/journal/verify").await, 1..=100);
    // A route without a token is not limited.
    assert_eq!(server.call(Method::GET, "/health", &[], None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_past_its_limit_does_not_slow_the_others() {
    let limits = RateLimits {
        holder: frozen(2),
        customs: frozen(2),
        guarantee_chain: frozen(2),
        admin: RateLimit::new(1000.0, 1000),
    };
    let server = Limited::start(limits).await;
    let flooding = server.holder("TUR/012/345").await;
    let other_holder = server.holder("TUR/012/346").await;
    let customs = server.party(json!({"kind": "customs", "name": "Customs TR", "country": "TR"})).await;
    let chain = server.party(json!({"kind": "guarantee_chain", "name": "Chain"})).await;
    for _ in 0..2 {
        assert_eq!(server.get(&flooding, FEED).await.status, 200);
    }
    for _ in 0..5 {
        assert_limited(&server.get(&flooding, FEED).await, 1..=100);
    }
    // Meanwhile, each other party still has its whole burst: same kind or not.
    for token in [&other_holder, &customs, &chain] {
        for _ in 0..2 {
            let answer = server.get(token, FEED).await;
            assert_eq!(answer.status, 200, "{}", answer.reply.text);
        }
        assert_limited(&server.get(token, FEED).await, 1..=100);
    }
    assert_limited(&server.get(&flooding, FEED).await, 1..=100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_has_its_own_bucket() {
    let limits = RateLimits { admin: frozen(2), holder: frozen(1), ..RateLimits::unlimited() };
    let server = Limited::start(limits).await;
    let holder = server.holder("TUR/012/345").await; // the admin's first token
    assert_eq!(server.get(ADMIN_TOKEN, "/v1/admin/journal/verify").await.status, 200);
    assert_limited(&server.get(ADMIN_TOKEN, "/v1/admin/journal/verify").await, 1..=100);
    assert_limited(&server.get(ADMIN_TOKEN, FEED).await, 1..=100);
    assert_eq!(server.get(&holder, FEED).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_refills_continuously() {
    // One token every 200 ms, two at most.
    let limits = RateLimits { holder: RateLimit::new(5.0, 2), ..RateLimits::unlimited() };
    let server = Limited::start(limits).await;
    let holder = server.holder("TUR/012/345").await;
    // Spend the burst; however slow the requests, a refusal comes within a few.
    let mut refused = None;
    for _ in 0..20 {
        let answer = server.get(&holder, FEED).await;
        if answer.status != 200 {
            refused = Some(answer);
            break;
        }
    }
    let refused = refused.expect("five requests a second, two in a burst: a refusal within 20 requests");
    // Less than one token is missing: at most 200 ms, so Retry-After rounds up to 1.
    assert_limited(&refused, 1..=1);
    // 300 ms bring at least one token (1.5), never a refusal.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = server.get(&holder, FEED).await;
    assert_eq!(answer.status, 200, "{}", answer.reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_answers_before_the_rate_limit_and_the_rate_limit_before_the_body() {
    let limits = RateLimits { holder: frozen(1), ..RateLimits::unlimited() };
    let server = Limited::start(limits).await;
    let holder = server.holder("TUR/012/345").await;
    assert_eq!(server.get(&holder, FEED).await.status, 200);
    assert_limited(&server.get(&holder, FEED).await, 1..=100);
    // 390 before 386: an unknown token, or the exhausted holder's given twice.
    server.get("not-a-token", FEED).await.reply.assert_error_status(401, 390, "");
    let auth = format!("Bearer {holder}");
    let twice = [("authorization", auth.as_str()), ("authorization", auth.as_str())];
    server.call(Method::GET, FEED, &twice, None).await.reply.assert_error_status(401, 390, "");
    // 386 before 415/100 (not JSON), 100 (a broken body) and 413/105 (too large): the body is not read.
    let plain = [("authorization", auth.as_str()), ("content-type", "text/plain")];
    assert_limited(&server.call(Method::POST, "/v1/messages", &plain, Some(b"{}".to_vec())).await, 1..=100);
    let json_type = [("authorization", auth.as_str()), ("content-type", "application/json")];
    assert_limited(&server.call(Method::POST, "/v1/messages", &json_type, Some(b"{\"a\":".to_vec())).await, 1..=100);
    let large = vec![b' '; 300 * 1024];
    assert_limited(&server.call(Method::POST, "/v1/messages", &json_type, Some(large)).await, 1..=100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_gives_every_authenticated_route_429_with_retry_after() {
    let server = Limited::start(RateLimits { holder: frozen(1), ..RateLimits::unlimited() }).await;
    let doc = server.call(Method::GET, "/v1/openapi.json", &[], None).await.reply.json();
    let mut secured = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let answer = &operation["responses"]["429"];
            if operation.get("security").is_none() {
                assert!(answer.is_null(), "{method} {path} has no token, so no rate limit");
                continue;
            }
            secured += 1;
            assert_eq!(answer["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody");
            let retry_after = &answer["headers"]["Retry-After"]["schema"];
            assert_eq!((&retry_after["type"], &retry_after["minimum"]), (&json!("integer"), &json!(1)), "{path}");
        }
    }
    assert!(secured >= 12, "{secured}");
    // And a real refusal is what it says.
    let holder = server.holder("TUR/012/345").await;
    server.get(&holder, FEED).await;
    let answer = server.get(&holder, FEED).await;
    assert_limited(&answer, 1..=100);
    let error = &answer.reply.json()["error"];
    let documented = doc["components"]["schemas"]["ErrorDetail"]["required"].as_array().unwrap();
    for field in documented {
        assert!(error.get(field.as_str().unwrap()).is_some(), "{field} missing from {error}");
    }
}
