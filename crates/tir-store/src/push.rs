//! Push notifications (docs/etir-binding.md, "Push notifications"): a party's
//! endpoint, to which the server POSTs its feed's items in order, and every
//! attempt with its answer. The feed stays the source of truth: the endpoint
//! only records how far the party confirmed it (`confirmed_cursor`).
//!
//! Every change goes through the writer, so servers sharing one PostgreSQL
//! database see one order: a server delivers to an endpoint only while it
//! holds its lease (`push_claim`, a conditional update with an expiry), and
//! gives it back with the attempt's outcome (`push_record`).

use serde_json::json;
use tir_model::Timestamp;

use crate::Result;
use crate::rows::Columns;

/// Journal message types: the endpoint registered, removed, paused, and an item confirmed (E8/I16).
pub const PUSH_ENDPOINT: &str = "PUSH_ENDPOINT";
pub const PUSH_ENDPOINT_REMOVED: &str = "PUSH_ENDPOINT_REMOVED";
pub const PUSH_PAUSED: &str = "PUSH_PAUSED";
pub const PUSH_CONFIRMED: &str = "PUSH_CONFIRMED";

/// An endpoint's status: delivered to, given up on until the next PUT, or removed.
pub const ACTIVE: &str = "active";
pub const PAUSED: &str = "paused";
pub const REMOVED: &str = "removed";

/// A party's endpoint with its delivery state, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct PushEndpoint {
    pub party: String,
    /// The feed delivered (`Recipient::key`).
    pub feed: String,
    pub url: String,
    /// Signs deliveries; never shown, logged or journaled.
    pub secret: String,
    pub status: String,
    pub paused_reason: Option<String>,
    pub registered_at_ms: i64,
    /// Bumped by each PUT and DELETE: an attempt started under an older one changes no state.
    pub generation: i64,
    /// The last item the party confirmed; 0 before any.
    pub confirmed_cursor: i64,
    /// Failed attempts since the last confirmation.
    pub failures: i64,
    pub first_failure_ms: Option<i64>,
    pub next_attempt_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_until_ms: i64,
}

impl std::fmt::Debug for PushEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand: the secret must not reach a log through `{:?}`.
        f.debug_struct("PushEndpoint")
            .field("party", &self.party)
            .field("url", &self.url)
            .field("status", &self.status)
            .field("generation", &self.generation)
            .field("confirmed_cursor", &self.confirmed_cursor)
            .field("failures", &self.failures)
            .field("next_attempt_ms", &self.next_attempt_ms)
            .field("lease_owner", &self.lease_owner)
            .field("lease_until_ms", &self.lease_until_ms)
            .finish_non_exhaustive()
    }
}

impl PushEndpoint {
    /// As answers show it: never the secret.
    pub fn view(&self) -> serde_json::Value {
        let at = |ms: i64| Timestamp::from_unix_ms(ms).to_string();
        json!({
            "url": self.url,
            "status": self.status,
            "paused_reason": self.paused_reason,
            "registered_at": at(self.registered_at_ms),
            "confirmed_through": self.confirmed_cursor.to_string(),
            "failures": self.failures,
            "next_attempt_at": (self.status == ACTIVE).then(|| at(self.next_attempt_ms)),
        })
    }
}

/// One delivery attempt of one feed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushAttempt {
    pub party: String,
    pub cursor: i64,
    pub at_ms: i64,
    /// The endpoint's HTTP status; `None` when no answer came (`error` says why).
    pub http_status: Option<i64>,
    pub error: Option<String>,
    /// When the item is tried again; `None` once confirmed or paused.
    pub next_attempt_ms: Option<i64>,
    /// A 2xx answer: the party's confirmation (E8/I16).
    pub confirmed: bool,
}

/// A party's endpoint to register (`Store::put_push_endpoint`); the caller checked the URL.
#[derive(Clone)]
pub struct PushEndpointWrite {
    pub party: String,
    pub feed: String,
    pub url: String,
    pub secret: String,
}

/// A server asking to deliver the item after `confirmed_cursor` to `party`'s endpoint,
/// as it read it (`generation`), for `lease_ms`.
#[derive(Debug, Clone)]
pub struct PushClaim {
    pub party: String,
    pub owner: String,
    pub generation: i64,
    pub confirmed_cursor: i64,
    pub lease_ms: i64,
}

/// What came of one attempt (`Store::push_record`).
#[derive(Debug, Clone)]
pub struct PushOutcome {
    pub party: String,
    pub owner: String,
    pub generation: i64,
    pub cursor: i64,
    /// The item's type and guarantee, for the confirmation's journal entry.
    pub kind: String,
    pub reference: String,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    /// The delay before the next attempt if this one failed (the server's backoff, with jitter).
    pub retry_in_ms: i64,
    /// Failing for this long since the first failure pauses the endpoint.
    pub pause_after_ms: i64,
}

impl PushOutcome {
    pub fn confirmed(&self) -> bool {
        self.http_status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The SQL both backends run (parameters in order).
pub(crate) const ENDPOINT_COLUMNS: &str = "party, feed, url, secret, status, paused_reason, registered_at_ms, \
    generation, confirmed_cursor, failures, first_failure_ms, next_attempt_ms, lease_owner, lease_until_ms";
pub(crate) const ENDPOINT_UPSERT: &str = "INSERT INTO push_endpoints (party, feed, url, secret, status, \
    paused_reason, registered_at_ms, generation, confirmed_cursor, failures, first_failure_ms, next_attempt_ms, \
    lease_owner, lease_until_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
    ON CONFLICT (party) DO UPDATE SET feed = excluded.feed, url = excluded.url, secret = excluded.secret, \
    status = excluded.status, paused_reason = excluded.paused_reason, registered_at_ms = excluded.registered_at_ms, \
    generation = excluded.generation, confirmed_cursor = excluded.confirmed_cursor, failures = excluded.failures, \
    first_failure_ms = excluded.first_failure_ms, next_attempt_ms = excluded.next_attempt_ms, \
    lease_owner = excluded.lease_owner, lease_until_ms = excluded.lease_until_ms";
pub(crate) const ATTEMPT_COLUMNS: &str = "party, cursor, at_ms, http_status, error, next_attempt_ms, confirmed";
pub(crate) const ATTEMPT_INSERT: &str = "INSERT INTO push_attempts \
    (party, cursor, at_ms, http_status, error, next_attempt_ms, confirmed) VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(crate) fn endpoints_sql(one: bool) -> String {
    if one {
        format!("SELECT {ENDPOINT_COLUMNS} FROM push_endpoints WHERE party = $1")
    } else {
        format!("SELECT {ENDPOINT_COLUMNS} FROM push_endpoints WHERE status = 'active' ORDER BY party")
    }
}

pub(crate) fn attempts_sql() -> String {
    format!(
        "SELECT {ATTEMPT_COLUMNS} FROM push_attempts WHERE party = $1 AND cursor > $2 AND cursor <= $3 \
         ORDER BY cursor, id"
    )
}

/// An endpoint from a row selecting `ENDPOINT_COLUMNS`.
pub(crate) fn endpoint(r: &impl Columns) -> Result<PushEndpoint> {
    Ok(PushEndpoint {
        party: r.text(0)?,
        feed: r.text(1)?,
        url: r.text(2)?,
        secret: r.text(3)?,
        status: r.text(4)?,
        paused_reason: r.opt_text(5)?,
        registered_at_ms: r.int(6)?,
        generation: r.int(7)?,
        confirmed_cursor: r.int(8)?,
        failures: r.int(9)?,
        first_failure_ms: r.opt_int(10)?,
        next_attempt_ms: r.int(11)?,
        lease_owner: r.opt_text(12)?,
        lease_until_ms: r.int(13)?,
    })
}

/// An attempt from a row selecting `ATTEMPT_COLUMNS`.
pub(crate) fn attempt(r: &impl Columns) -> Result<PushAttempt> {
    Ok(PushAttempt {
        party: r.text(0)?,
        cursor: r.int(1)?,
        at_ms: r.int(2)?,
        http_status: r.opt_int(3)?,
        error: r.opt_text(4)?,
        next_attempt_ms: r.opt_int(5)?,
        confirmed: r.int(6)? != 0,
    })
}

impl std::fmt::Debug for PushEndpointWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushEndpointWrite")
            .field("party", &self.party)
            .field("feed", &self.feed)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}
