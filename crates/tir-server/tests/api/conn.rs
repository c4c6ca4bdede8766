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
