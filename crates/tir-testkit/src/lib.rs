//! What tirhub's tests (and the bench, which needs throw-away databases too)
//! share, so each fixture is written once: fresh PostgreSQL databases (`pg`),
//! temporary SQLite files (`sqlite`), sample declarations and message
//! builders (`fixtures`), a longer corridor seeded over HTTP (`seeded`), and
//! the server in-process on port 0 (`server`); test certificates and an
//! HTTPS client (`tls`).

pub mod fixtures;
pub mod pg;
pub mod seeded;
pub mod server;
pub mod sqlite;
#[cfg(feature = "tls")]
pub mod tls;

pub use pg::FreshDatabase;
pub use sqlite::TempSqlite;

/// The variable that turns the PostgreSQL half of the tests on.
pub const DATABASE_URL_VAR: &str = "TIRHUB_TEST_DATABASE_URL";

/// Unique enough to keep parallel tests and repeated runs apart.
pub fn random_hex(bytes: usize) -> String {
    tir_store::token::random_hex(bytes)
}
