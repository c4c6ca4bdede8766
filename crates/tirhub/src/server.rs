//! Server start-up shared by `tirhub serve` and `tirhub demo`.

use std::net::SocketAddr;

use crate::AnyError;

/// Binds, announces the address, and serves with these per-party rate limits
/// and connection limits (over TLS when `tls` is given) until Ctrl-C or SIGTERM,
/// the console beside the API under `/console` (its cookies `Secure` when
/// `secure_cookies`, for a TLS proxy in front, or when serving TLS itself).
/// (`tir_server::App::new` alone is unlimited, as the tests and `tirhub bench`
/// need; a served instance is not.)
pub async fn run_server(
    app: tir_server::App,
    listen: SocketAddr,
    limits: tir_server::RateLimits,
    serve_limits: tir_server::ServeLimits,
    secure_cookies: bool,
    tls: Option<tir_server::Tls>,
) -> Result<(), AnyError> {
    let listener = bind(listen).await?;
    serve_on(app, listener, limits, serve_limits, secure_cookies, tls).await
}

pub async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener, AnyError> {
    Ok(tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?)
}

/// `run_server` on a listener already bound (`tirhub demo` learns its port first).
pub async fn serve_on(
    app: tir_server::App,
    listener: tokio::net::TcpListener,
    limits: tir_server::RateLimits,
    serve_limits: tir_server::ServeLimits,
    secure_cookies: bool,
    tls: Option<tir_server::Tls>,
) -> Result<(), AnyError> {
    let app = app.with_rate_limits(limits);
    // The console acts through this same app: same store, parties and rate limits.
    let console = tir_console::Console::new(app.clone()).with_secure_cookies(secure_cookies || tls.is_some());
    let app = app.with_routes(tir_console::router(console));
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal();
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{addr}");
    tir_server::serve_with_tls(listener, app, serve_limits, tls, shutdown).await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a SIGTERM arriving just after
/// `listening on` is printed then shuts down gracefully instead of killing.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    }
}
