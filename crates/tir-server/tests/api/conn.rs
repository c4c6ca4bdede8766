//! The connection layer's limits over raw TCP (issue 14): idle and slow
//! clients are closed, a slow body gets 408, the token is checked before the
//! body is read, the connection cap holds, and shutdown ends in bounded time.
//! The limits are set small here; every wait is bounded generously so that a
//! slow machine makes a test slower, never wrong.

use std::time::Duration;

use serde_json::Value;
use tir_server::ServeLimits;
use tir_testkit::TempSqlite;
use tir_testkit::server::ADMIN_TOKEN;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for what must happen before it calls it a failure.
const PATIENCE: Duration = Duration::from_secs(20);
const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(600);

struct Served {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
    _db: TempSqlite,
}

async fn serve(limits: ServeLimits) -> Served {
    let db = TempSqlite::new("tirhub-conn").expect("a test directory");
    let store = tir_store::open(db.url()).await.expect("open the store");
    let app = tir_server::App::new(store, ADMIN_TOKEN);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(tir_server::serve_with(listener, app, limits, async move {
        let _ = stopped.await;
    }));
    Served { addr, stop: Some(stop), server, _db: db }
}

fn limits(header_read: Duration, body_read: Duration) -> ServeLimits {
    ServeLimits { header_read_timeout: header_read, body_read_timeout: body_read, ..ServeLimits::default() }
}

/// Everything the server sends until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection in time")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

fn body_of(answer: &str) -> Value {
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let served = serve(limits(SHORT, LONG)).await;
    let mut silent = TcpStream::connect(served.addr).await.unwrap();
    read_to_close(&mut silent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_left_idle_is_closed_after_the_header_timeout() {
    let served = serve(limits(SHORT, LONG)).await;
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: tirhub\r\n\r\n").await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_its_deadline_gets_408_with_100() {
    let served = serve(limits(LONG, SHORT)).await;
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: tirhub\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"message_id\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let error = &body_of(&answer)["error"];
    assert_eq!((error["code"].as_u64(), error["pointer"].as_str()), (Some(100), Some("")), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_checked_before_the_body_is_read() {
    // No body deadline in play: the 401 can only come before the body.
    let served = serve(limits(LONG, LONG)).await;
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    let head = "POST /v1/messages HTTP/1.1\r\nHost: tirhub\r\nContent-Type: application/json\r\n\
                Content-Length: 200000\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut first = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut first)).await.expect("an answer in time").unwrap();
    let answer = String::from_utf8_lossy(&first[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_client_waits_until_a_connection_closes() {
    let served = serve(ServeLimits { connections_max: 1, ..limits(LONG, LONG) }).await;
    let holder = TcpStream::connect(served.addr).await.unwrap();
    // Give the server the moment it needs to take the first connection's permit.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = format!("http://{}/health", served.addr);
    let impatient = reqwest::Client::builder().timeout(SHORT).build().unwrap();
    assert!(impatient.get(&url).send().await.is_err(), "served past the cap");
    drop(holder);
    let patient = reqwest::Client::builder().timeout(PATIENCE).build().unwrap();
    let answer = patient.get(&url).send().await.expect("served once the first connection closed");
    assert_eq!(answer.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_within_its_grace_even_with_a_half_sent_request() {
    let mut served = serve(ServeLimits { shutdown_grace: SHORT, ..limits(LONG, LONG) }).await;
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream.write_all(b"POST /v1/messages HTTP/1.1\r\nHost: tir").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    served.stop.take().unwrap().send(()).unwrap();
    let ended = tokio::time::timeout(PATIENCE, &mut served.server).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "the server did not end: {ended:?}");
    // The connection was dropped: the client sees the end of the stream.
    read_to_close(&mut stream).await;
}

/// Sends `request` as it is and reads the answer until the server closes.
async fn raw(served: &Served, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_to_close(&mut stream).await
}

/// The answer's status, its Content-Type and its error's code.
fn contract_error(answer: &str) -> (u16, String, Option<u64>) {
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let head = answer.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
    let content_type = head
        .lines()
        .find_map(|line| line.strip_prefix("content-type:"))
        .map(|value| value.trim().to_owned())
        .unwrap_or_default();
    (status, content_type, body_of(answer)["error"]["code"].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_line_gets_400_with_100_in_json() {
    let served = serve(limits(LONG, LONG)).await;
    let answer = raw(&served, b"GET /health HTTP/1.1 trailing\r\nHost: tirhub\r\n\r\n").await;
    assert_eq!(contract_error(&answer), (400, "application/json".into(), Some(100)), "{answer}");
    let answer = raw(&served, b"\x01\x02 nonsense\r\n\r\n").await;
    assert_eq!(contract_error(&answer), (400, "application/json".into(), Some(100)), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_without_a_colon_gets_400_with_100_in_json() {
    let served = serve(limits(LONG, LONG)).await;
    let answer = raw(&served, b"GET /health HTTP/1.1\r\nHost: tirhub\r\nno colon here\r\n\r\n").await;
    assert_eq!(contract_error(&answer), (400, "application/json".into(), Some(100)), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_long_uri_gets_414_with_105_in_json() {
    let served = serve(limits(LONG, LONG)).await;
    let path = format!("/v1/guarantees/{}", "X".repeat(tir_server::URI_BYTES_MAX));
    let request = format!("GET {path} HTTP/1.1\r\nHost: tirhub\r\nConnection: close\r\n\r\n");
    let answer = raw(&served, request.as_bytes()).await;
    assert_eq!(contract_error(&answer), (414, "application/json".into(), Some(105)), "{answer}");
    // At the limit the request reaches its route.
    let path = format!("/v1/guarantees/{}", "X".repeat(tir_server::URI_BYTES_MAX - "/v1/guarantees/".len()));
    let request = format!("GET {path} HTTP/1.1\r\nHost: tirhub\r\nConnection: close\r\n\r\n");
    let answer = raw(&served, request.as_bytes()).await;
    assert_eq!(contract_error(&answer), (401, "application/json".into(), Some(390)), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_over_their_limit_get_431_with_105_in_json() {
    let served = serve(limits(LONG, LONG)).await;
    let filler = "a".repeat(1000);
    let headers: String =
        (0..tir_server::HEADER_BYTES_MAX / 1000 + 1).map(|i| format!("X-Filler-{i}: {filler}\r\n")).collect();
    let request = format!("GET /health HTTP/1.1\r\nHost: tirhub\r\n{headers}\r\n");
    let answer = raw(&served, request.as_bytes()).await;
    assert_eq!(contract_error(&answer), (431, "application/json".into(), Some(105)), "{answer}");
    // More headers than hyper counts (100) is the same answer.
    let headers: String = (0..120).map(|i| format!("X-Many-{i}: 1\r\n")).collect();
    let request = format!("GET /health HTTP/1.1\r\nHost: tirhub\r\n{headers}\r\n");
    let answer = raw(&served, request.as_bytes()).await;
    assert_eq!(contract_error(&answer), (431, "application/json".into(), Some(105)), "{answer}");
    // Counted when the server side of the connection ends, which may be just after the client read the answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = raw(&served, b"GET /metrics HTTP/1.1\r\nHost: tirhub\r\nConnection: close\r\n\r\n").await;
        if metrics.contains("\ntirhub_http_unparsable_requests_total{status=\"431\"} 2\n") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_after_a_good_one_on_the_same_connection_gets_the_json_too() {
    let served = serve(limits(LONG, LONG)).await;
    let answer = raw(&served, b"GET /health HTTP/1.1\r\nHost: tirhub\r\n\r\nGET / HTTP/1.1 x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let second = &answer[answer.find("HTTP/1.1 400").unwrap_or_else(|| panic!("no 400: {answer}"))..];
    assert_eq!(contract_error(second), (400, "application/json".into(), Some(100)), "{answer}");
}
