//! The connection layer (issue 14's first resource limits): a cap on open
//! connections, a deadline for a request's headers that also closes idle
//! keep-alive connections, a deadline for its body, and a shutdown that ends
//! within a bounded time however clients behave. Every answer carries the
//! contract's error JSON, hyper's own answers to requests it cannot parse too.
//! With TLS, the handshake is part of the connection: it holds a place under
//! the cap and must end within the header deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use tir_model::{ErrorCode, EtirError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::error::ApiError;
use crate::observe::Metrics;
use crate::tls::{PeerCertificate, Tls, certificate_sha256};

/// Connections served at once; more wait in the listen backlog until one
/// closes. Well below the usual 1,024 open files, so `/health` keeps answering.
pub const CONNECTIONS_MAX: usize = 512;
/// From accepting a connection, or from the end of the previous answer on a
/// kept-alive one, until a request's headers are complete; idle connections
/// close after it too.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// From the headers until the whole body is read (a 256 KiB body at 26 KB/s).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After the shutdown signal: answers in flight may finish within this; then
/// the remaining connections are dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A request's line and headers together, at most: past it, HTTP 431 with
/// code 105. Far above any request of the contract (a token and a few short
/// headers), far below hyper's default of about 400 KiB held per connection.
pub const HEADER_BYTES_MAX: usize = 64 * 1024;
/// A request's target (path and query), at most: past it, HTTP 414 with code
/// 105. The longest route of the contract with its query is under 200 bytes.
pub const URI_BYTES_MAX: usize = 8 * 1024;
/// After answering a request hyper could not parse, or one whose body was not
/// read, what the client still sends is read and dropped for at most this long
/// (or `LINGER_BYTES_MAX`, or until nothing came for `LINGER_IDLE`) before the
/// connection is closed, so that closing does not reset the connection before
/// the client has read the answer.
const LINGER: Duration = Duration::from_secs(2);
/// A client that sends nothing for this long is not sending a body.
const LINGER_IDLE: Duration = Duration::from_millis(250);
const LINGER_BYTES_MAX: usize = 1024 * 1024;

/// The connection layer's limits; `Default` is the constants above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    pub connections_max: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            connections_max: CONNECTIONS_MAX,
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

/// The error a request body gives when its deadline passes first.
#[derive(Debug)]
pub(crate) struct BodyTimedOut(pub Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the body was not received within {} s", self.0.as_secs_f64())
    }
}

impl std::error::Error for BodyTimedOut {}

/// Gives a request's body a deadline: reading it past `timeout` fails with
/// `BodyTimedOut`, which the body extractors answer with HTTP 408.
pub(crate) async fn body_deadline(timeout: Duration, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let deadline = tokio::time::Instant::now() + timeout;
    let chunks = futures_util::stream::unfold(Some(body.into_data_stream()), move |stream| async move {
        let mut stream = stream?;
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((Err(axum::Error::new(BodyTimedOut(timeout))), None)),
        }
    });
    next.run(Request::from_parts(parts, Body::from_stream(chunks))).await
}

/// Refuses a request whose target is over `URI_BYTES_MAX` with 414/105,
/// before routing.
pub(crate) async fn uri_limit(request: Request, next: Next) -> Response {
    let length = request.uri().path_and_query().map_or(0, |target| target.as_str().len());
    if length > URI_BYTES_MAX {
        return ApiError::Etir(uri_too_long()).into_response();
    }
    next.run(request).await
}

fn uri_too_long() -> EtirError {
    EtirError::new(ErrorCode::WrongLength, "")
        .with_status(414)
        .with_detail(format!("the URI has at most {URI_BYTES_MAX} bytes"))
}

/// The contract's error for hyper's own answer with this status.
fn hyper_answer(status: u16) -> EtirError {
    match status {
        414 => uri_too_long(),
        431 => EtirError::new(ErrorCode::WrongLength, "")
            .with_status(431)
            .with_detail(format!("the request line and headers have at most {HEADER_BYTES_MAX} bytes")),
        // The contract names no code for a request that is not HTTP: 100, the message is invalid.
        _ => EtirError::new(ErrorCode::InvalidMessage, "")
            .with_status(400)
            .with_detail("not a well-formed HTTP/1.1 request"),
    }
}

/// The answers hyper writes by itself, after their version (`HTTP/1.1`), when
/// it cannot parse a request (`Server::on_error` in hyper 1.x): always with
/// `content-length: 0` and no `content-type`, unlike every answer of the
/// routes, which all carry JSON.
const HYPER_ANSWERS: [(&[u8], u16); 3] = [
    (b" 400 Bad Request\r\n", 400),
    (b" 414 URI Too Long\r\n", 414),
    (b" 431 Request Header Fields Too Large\r\n", 431),
];

/// Every byte written passes here, a feed page of 1 MiB too: a SIMD search, not a byte loop.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// Where hyper's own answer to an unparsable request starts in `written`, how
/// long it is, and its status.
fn hyper_answer_in(written: &[u8]) -> Option<(usize, usize, u16)> {
    let mut from = 0;
    while let Some(found) = find(&written[from..], b"HTTP/1.") {
        let start = from + found;
        let after_version = &written[start..][b"HTTP/1.1".len().min(written.len() - start)..];
        if let Some(&(_, status)) = HYPER_ANSWERS.iter().find(|(line, _)| after_version.starts_with(line))
            && let Some(end) = find(&written[start..], b"\r\n\r\n")
        {
            let head = &written[start..start + end + 4];
            let lowercase = head.to_ascii_lowercase();
            if find(&lowercase, b"\r\ncontent-length: 0\r\n").is_some() && find(&lowercase, b"content-type").is_none() {
                return Some((start, head.len(), status));
            }
        }
        from = start + 1;
    }
    None
}

/// hyper's head with the contract's error as its body: the same status line
/// and date, a JSON body, and `connection: close` (hyper closes after it).
fn rewrite(head: &[u8], status: u16) -> Vec<u8> {
    let body = hyper_answer(status).to_json().to_string();
    let text = String::from_utf8_lossy(head);
    let mut rewritten = String::with_capacity(head.len() + body.len() + 64);
    for line in text.split("\r\n").filter(|line| !line.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
        if name == "content-length" || name == "connection" {
            continue;
        }
        rewritten.push_str(line);
        rewritten.push_str("\r\n");
    }
    rewritten.push_str("content-type: application/json\r\n");
    rewritten.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    rewritten.push_str(&body);
    rewritten.into_bytes()
}

/// One connection's request bodies: hyper serves a connection's requests one
/// at a time, so one watch serves them all (nothing allocated per request).
#[derive(Default)]
struct BodyWatch {
    /// The request in hand has body still to read.
    unread: AtomicBool,
    /// An answer went out before its request's body was read: hyper closes the
    /// connection after it, with that body still coming (`linger`).
    answered_unread: AtomicBool,
}

impl BodyWatch {
    /// At a request's start: whether its body is still to read.
    fn start(&self, body: &hyper::body::Incoming) {
        use hyper::body::Body as _;
        self.unread.store(!body.is_end_stream(), Ordering::Relaxed);
    }

    /// At its answer: `true` when the answer must say the connection closes.
    fn answered(&self) -> bool {
        let unread = self.unread.load(Ordering::Relaxed);
        if unread {
            self.answered_unread.store(true, Ordering::Relaxed);
        }
        unread
    }
}

/// A request body that tells its connection's `BodyWatch` when it was read to its end.
struct Tracked {
    inner: hyper::body::Incoming,
    watch: Arc<BodyWatch>,
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if frame.is_none() || this.inner.is_end_stream() {
            this.watch.unread.store(false, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's stream as hyper sees it. hyper answers a request it cannot
/// parse (a malformed request line or header: 400; headers over
/// `HEADER_BYTES_MAX`: 431; a URI over its own 64 KiB limit: 414) by itself,
/// with an empty body, and hyper 1.x has no hook to change that answer. So
/// this stream recognises that head as hyper writes it and writes the
/// contract's error JSON in its place; nothing else is touched.
struct ContractAnswers<S> {
    stream: S,
    /// The rewritten answer and how much of it the socket has taken.
    rewritten: Option<(Vec<u8>, usize)>,
    /// The status of hyper's answer, once rewritten.
    answered: Option<u16>,
}

impl<S: AsyncWrite + Unpin> ContractAnswers<S> {
    fn new(stream: S) -> ContractAnswers<S> {
        ContractAnswers { stream, rewritten: None, answered: None }
    }

    /// Writes what is left of the rewritten answer.
    fn poll_rewritten(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.rewritten {
            if *written == bytes.len() {
                self.rewritten = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ContractAnswers<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ContractAnswers<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_rewritten(cx))?;
        let Some((start, length, status)) = hyper_answer_in(buf) else {
            return Pin::new(&mut this.stream).poll_write(cx, buf);
        };
        if start > 0 {
            // What precedes hyper's answer goes out as it is; the answer comes with the next call.
            return Pin::new(&mut this.stream).poll_write(cx, &buf[..start]);
        }
        this.rewritten = Some((rewrite(&buf[..length], status), 0));
        this.answered = Some(status);
        // hyper's head counts as written; what the socket does not take now goes with the flush.
        if let Poll::Ready(Err(e)) = this.poll_rewritten(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(length))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_rewritten(cx))?;
        let Some(at) = bufs.iter().position(|slice| hyper_answer_in(slice).is_some()) else {
            return Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        };
        if bufs[..at].iter().all(|slice| slice.is_empty()) {
            return Pin::new(this).poll_write(cx, &bufs[at]);
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, &bufs[..at])
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_rewritten(cx))?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    /// Flushes only: the connection is closed by `linger`, after it has read
    /// what the client still sends. A client still sending a body the server
    /// answered without reading (390, 413) would take an early close for an
    /// answer cut short (hyper's client: `IncompleteMessage`).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// Drops what the client still sends, within `LINGER`, `LINGER_BYTES_MAX` and
/// `LINGER_IDLE`, then closes: closing a socket with unread data resets it, and
/// a reset can discard the answer before the client reads it; closing before
/// the client has sent its body makes it drop the answer too.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let drain = async {
        let mut scratch = vec![0u8; 16 * 1024];
        let mut drained = 0;
        while drained < LINGER_BYTES_MAX {
            match tokio::time::timeout(LINGER_IDLE, stream.read(&mut scratch)).await {
                Ok(Ok(0) | Err(_)) | Err(_) => break,
                Ok(Ok(n)) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
    let _ = tokio::time::timeout(LINGER_IDLE, stream.shutdown()).await;
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves,
/// then lets answers in flight finish for at most `limits.shutdown_grace`.
/// With `tls`, every connection is TLS.
pub(crate) async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<Tls>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.connections_max));
    let (stopping, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of files or a connection reset before accept: keep serving the others.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let stop = stop.clone();
        let open = metrics.connection_opened();
        let metrics = metrics.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _open = open;
            let Some(tls) = tls else {
                return serve_stream(stream, router, None, limits, stop, metrics).await;
            };
            let mut stopped = stop.clone();
            let stopping = async move {
                let _ = stopped.wait_for(|stopping| *stopping).await.is_ok();
            };
            let handshake = tokio::time::timeout(limits.header_read_timeout, handshake(&tls, stream, &metrics));
            let stream = tokio::select! {
                done = handshake => match done {
                    Ok(Some(stream)) => stream,
                    Ok(None) => return,
                    Err(_) => {
                        tracing::debug!("TLS handshake not done within the header deadline: closed");
                        return;
                    }
                },
                // A handshake under way is not an answer in flight: shutdown does not wait for it.
                () = stopping => return,
            };
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|certificate| PeerCertificate(certificate_sha256(certificate).into()));
            serve_stream(stream, router, peer, limits, stop, metrics).await;
        });
        // Finished connections leave the set as they end, not only at shutdown.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stopping.send(true);
    let drained =
        tokio::time::timeout(limits.shutdown_grace, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!(open = connections.len(), "shutdown grace over: dropping the connections still open");
        connections.abort_all();
    }
    Ok(())
}

/// The TLS handshake on `stream`; `None` when it fails (the reason is logged).
/// A client speaking plain HTTP to the TLS port gets a plain 400 with the
/// contract's error JSON (code 100) instead of a bare close, so it can tell why.
async fn handshake(
    tls: &Tls,
    stream: TcpStream,
    metrics: &Metrics,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    // A TLS connection starts with a handshake record (22); HTTP with a method's capital letter.
    if let Ok(1) = stream.peek(&mut first).await
        && first[0].is_ascii_uppercase()
    {
        tracing::debug!("plain HTTP on the TLS port: answered 400");
        metrics.unparsable(400);
        plain_http_refused(stream).await;
        return None;
    }
    match tls.acceptor.accept(stream).await {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
    }
}

async fn plain_http_refused(mut stream: TcpStream) {
    let body = EtirError::new(ErrorCode::InvalidMessage, "")
        .with_status(400)
        .with_detail("this port speaks HTTPS (TLS): a plain HTTP request is refused")
        .to_json()
        .to_string();
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_ok() {
        linger(stream).await;
    }
}

/// Serves one connection's requests, each carrying the client certificate the
/// connection presented (`peer`), until it closes or the server stops.
async fn serve_stream<S>(
    stream: S,
    router: Router,
    peer: Option<PeerCertificate>,
    limits: ServeLimits,
    mut stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let bodies = Arc::new(BodyWatch::default());
    let watch = bodies.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        if let Some(peer) = &peer {
            request.extensions_mut().insert(peer.clone());
        }
        watch.start(request.body());
        let request = request.map(|inner| Body::new(Tracked { inner, watch: watch.clone() }));
        let answer = tower_service::Service::call(&mut router.clone(), request);
        let watch = watch.clone();
        async move {
            let mut response = answer.await?;
            // Answered before its body was read (390, 413): hyper closes the
            // connection after this answer, so the client must not send the next
            // request on it.
            if watch.answered() {
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).max_header_size(HEADER_BYTES_MAX);
    let mut stream = ContractAnswers::new(stream);
    {
        let connection = builder.serve_connection(TokioIo::new(&mut stream), service);
        tokio::pin!(connection);
        let stopping = async move {
            // The guard `wait_for` returns is not `Send`: dropped here, not held across an await.
            let _ = stop.wait_for(|stopping| *stopping).await.is_ok();
        };
        tokio::select! {
            _ = connection.as_mut() => {}
            () = stopping => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
    if let Some(status) = stream.answered {
        tracing::debug!(status, "answered a request hyper could not parse");
        metrics.unparsable(status);
    }
    // Also after an answer given before the body was read (390, 413 by its
    // Content-Length): hyper then closes the connection with the rest of the
    // body unread, and the reset that would send could discard the answer.
    if stream.answered.is_some() || bodies.answered_unread.load(Ordering::Relaxed) {
        linger(stream.stream).await;
    } else {
        let _ = tokio::time::timeout(LINGER_IDLE, stream.stream.shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_431: &[u8] =
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 01:00:00 GMT\r\n\r\n";

    #[test]
    fn hypers_own_answer_is_found_where_it_starts_and_only_it() {
        assert_eq!(hyper_answer_in(HYPER_431), Some((0, HYPER_431.len(), 431)));
        let after_a_body = [b"{\"status\":\"ok\"}".as_slice(), HYPER_431].concat();
        assert_eq!(hyper_answer_in(&after_a_body), Some((15, HYPER_431.len(), 431)));
        // The routes' own 400s carry JSON: never rewritten.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(hyper_answer_in(ours), None);
        assert_eq!(hyper_answer_in(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), None);
        assert_eq!(hyper_answer_in(b"HTTP/1."), None);
    }

    #[test]
    fn the_rewritten_answer_keeps_the_status_and_date_and_carries_the_json() {
        let rewritten = String::from_utf8(rewrite(HYPER_431, 431)).unwrap();
        let (head, body) = rewritten.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{head}");
        assert!(head.contains("\r\ndate: Mon, 30 Nov 2026 01:00:00 GMT\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/json\r\n"), "{head}");
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())), "{head}");
        assert!(head.ends_with("connection: close"), "{head}");
        let error: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(error["error"]["code"], 105);
    }
}
