//! The connection layer (issue 14's first resource limits): a cap on open
//! connections, a deadline for a request's headers that also closes idle
//! keep-alive connections, a deadline for its body, and a shutdown that ends
//! within a bounded time however clients behave.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

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

/// Serves `router` on `listener` within `limits` until `shutdown` resolves,
/// then lets answers in flight finish for at most `limits.shutdown_grace`.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
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
        let service = TowerToHyperService::new(router.clone());
        let mut stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
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
