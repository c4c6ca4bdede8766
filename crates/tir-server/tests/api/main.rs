//! The eTIR binding (docs/etir-binding.md) exercised over real HTTP, one
//! fresh server and store per test: one test binary, a module per concern.

/// A `#[tokio::test]` on SQLite and one on PostgreSQL for each scenario,
/// in a module named after it.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use tir_testkit::server::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let app = spawn_app().await;
                super::$scenario(&app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgresql() {
                let Some(mut app) = spawn_app_pg().await else {
                    eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
                    return;
                };
                super::$scenario(&app).await;
                app.stop().await;
            }
        }
    )*};
}

/// As `on_both_stores!`, with the risk assessor running beside the routes.
macro_rules! on_both_stores_with_risk {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use tir_testkit::server::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let app = spawn_app_with_risk().await;
                super::$scenario(&app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgresql() {
                let Some(mut app) = spawn_app_pg_with_risk().await else {
                    eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
                    return;
                };
                super::$scenario(&app).await;
                app.stop().await;
            }
        }
    )*};
}

mod admin;
mod assessments;
mod authorization;
mod codes;
mod conn;
mod document;
mod errors;
mod fallback;
mod faults;
mod idempotency;
mod input;
mod journal_head;
mod matrix;
mod metrics;
mod openapi;
mod push;
mod queries;
mod rate;
mod risk;
mod robustness;
mod signing;
mod tls;
mod transport;
mod v2;
