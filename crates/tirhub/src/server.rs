//! Server start-up shared by `tirhub serve` and `tirhub demo`.

use std::net::SocketAddr;

use crate::AnyError;

/// Binds, announces the address, and serves with these per-party rate limits
/// until Ctrl-C or SIGTERM. (`tir_server::App::new` alone is unlimited, as the
/// tests and `tirhub bench` need; a served instance is not.)
pub async fn run_server(
    app: tir_server::App,
    listen: SocketAddr,
    limits: tir_server::RateLimits,
) -> Result<(), AnyError> {
    let app = app.with_rate_limits(limits);
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    tir_server::serve(listener, app, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
