//! The console's sign-in sessions, kept in the store so that every server
//! sharing the database knows them (stateless servers behind a load balancer):
//! a session opened through one server is used, seen and closed through any.
//! Rows hold the SHA-256 of the session id (the cookie's secret) and of the
//! party's token, never either itself. They are not journaled: a session
//! changes no state of the exchange.

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The SHA-256 (hex) of the party's bearer token, authenticated again on every request.
    pub token_hash: String,
    /// The session's CSRF synchronizer token.
    pub csrf: String,
    pub opened_ms: i64,
    /// When a request last used it (the writer's time; updated at most once a `SEEN_EVERY_MS`).
    pub seen_ms: i64,
}

/// A change to the sessions, run by the writer (`Store::console_session_write`).
#[derive(Debug, Clone)]
pub enum SessionWrite {
    /// A new session under `id_hash`; first, at most `EXPIRED_PER_OPEN` sessions last seen
    /// before `expire_before_ms` are deleted (idle too long), the oldest first.
    Open { id_hash: String, token_hash: String, csrf: String, expire_before_ms: i64 },
    /// The session was used now.
    Seen { id_hash: String },
    /// Signed out (or its party no longer authenticates).
    Close { id_hash: String },
}

/// Idle sessions deleted per opening: a bound on the writer's work, enough to keep up
/// with sign-ins (each opening removes more than it adds).
pub const EXPIRED_PER_OPEN: i64 = 100;

/// SQL both databases run as it is (`$n` placeholders, used in order of first use).
pub(crate) mod sql {
    pub(crate) const OPEN: &str = "INSERT INTO console_sessions (id_hash, token_hash, csrf, opened_ms, seen_ms) \
        VALUES ($1, $2, $3, $4, $4)";
    pub(crate) const EXPIRE: &str = "DELETE FROM console_sessions WHERE id_hash IN \
        (SELECT id_hash FROM console_sessions WHERE seen_ms < $1 ORDER BY seen_ms LIMIT $2)";
    pub(crate) const SEEN: &str = "UPDATE console_sessions SET seen_ms = $1 WHERE id_hash = $2";
    pub(crate) const CLOSE: &str = "DELETE FROM console_sessions WHERE id_hash = $1";
    pub(crate) const READ: &str =
        "SELECT token_hash, csrf, opened_ms, seen_ms FROM console_sessions WHERE id_hash = $1";
}
