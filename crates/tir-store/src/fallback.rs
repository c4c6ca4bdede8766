//! Fallback periods (etir-binding.md, "Fallback procedure"): declared and
//! ended through the writer, journaled, and told to the parties concerned.
//! Which message falls in which period is decided by tir-model
//! (`exchange::apply`), with the periods the writer loads for it.

use serde_json::json;
use tir_model::fallback::{FallbackPeriod, FallbackScope};
use tir_model::{ErrorCode, EtirError, Timestamp};

/// The journal's entry types, and the feed items' kind.
pub const FALLBACK: &str = "FALLBACK";
pub const FALLBACK_END: &str = "FALLBACK_END";

/// A period to declare; the caller has checked that `by` may (`fallback::may_declare`).
#[derive(Debug, Clone)]
pub struct FallbackDeclaration {
    /// The declaring party's id: the journal entry's sender.
    pub by: String,
    pub scope: FallbackScope,
    pub reason: String,
    pub from: Timestamp,
}

/// The end of period `id`; the caller has checked that `by` may end it.
#[derive(Debug, Clone)]
pub struct FallbackEnd {
    pub by: String,
    pub id: String,
    pub until: Timestamp,
}

/// The SQL both databases run as it is.
pub(crate) const PERIOD_PUT: &str = "INSERT INTO fallback_periods (id, scope, from_ms, doc) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (id) DO UPDATE SET doc = excluded.doc";
pub(crate) const PERIOD_GET: &str = "SELECT doc FROM fallback_periods WHERE id = $1";
pub(crate) const PERIODS_OF_SCOPE: &str = "SELECT doc FROM fallback_periods WHERE scope = $1 ORDER BY from_ms, id";
pub(crate) const PERIODS_ALL: &str = "SELECT doc FROM fallback_periods ORDER BY from_ms, id";
/// The feeds of every party whose token works, for a period of the whole system.
pub(crate) const PARTY_FEEDS: &str = "SELECT DISTINCT kind, id, country, tir_id FROM parties \
    WHERE revoked_at_ms IS NULL AND kind <> 'admin' ORDER BY kind, id";
/// The guarantees a period may have touched: those with a message recorded in
/// fallback under it, and those not released (an operation may have been open
/// during it), each with whether it has such a message. `tir_model::fallback`
/// then keeps those with an operation in scope open during the period.
pub(crate) const CANDIDATES: &str = "SELECT g.doc, EXISTS (SELECT 1 FROM events e \
        WHERE e.fallback_period = $1 AND e.reference = g.reference) \
    FROM guarantees g \
    WHERE g.state IN ('accepted', 'cancelled') \
       OR g.reference IN (SELECT reference FROM events WHERE fallback_period = $1) \
    ORDER BY g.reference";

/// The feed key of a party row (`parties`: kind, id, country, tir_id).
pub(crate) fn feed_key(kind: &str, id: &str, country: Option<&str>, tir_id: Option<&str>) -> Option<String> {
    match kind {
        "customs" => country.map(|c| format!("customs:{c}")),
        "guarantee_chain" => Some(format!("chain:{id}")),
        "holder" => tir_id.map(|t| format!("holder:{t}")),
        _ => None,
    }
}

/// The answer when a declaration repeats a stored period: 200 with it when
/// the reason is the same, 409/299 when it differs; `None` when it repeats none.
pub(crate) fn repeated(periods: &[FallbackPeriod], d: &FallbackDeclaration) -> Option<crate::Reply> {
    periods.iter().find_map(|p| {
        p.repeated_by(d.scope, d.from, &d.reason).map(|same| {
            if same {
                crate::Reply { status: 200, body: p.view().to_string() }
            } else {
                crate::Reply::error(&EtirError::new(ErrorCode::DuplicateMessage, "/reason").with_detail(format!(
                    "fallback period {} of {} from {} was declared with another reason",
                    p.id,
                    p.scope.as_str(),
                    p.from
                )))
            }
        })
    })
}

/// The feed item's payload: what happened to which period.
pub(crate) fn payload(event: &str, period: &FallbackPeriod) -> String {
    json!({"event": event, "period": period.view()}).to_string()
}
