//! Rows read back into domain values, the same way on every backend.

use tir_model::guarantee::Event;
use tir_model::party::{Party, PartyKind};
use tir_model::{Country, OfficeCode, Timestamp, TirId};

use crate::journal::JournalEntry;
use crate::{NotificationRow, Result, corrupt};

/// The journal's columns, in `JournalEntry`'s field order.
pub(crate) const JOURNAL_COLUMNS: &str =
    "seq, at_ms, sender, message_type, message_id, reference, body, body_hash, prev_hash, hash";

/// The outbox's columns, in `NotificationRow`'s field order.
pub(crate) const NOTIFICATION_COLUMNS: &str = "cursor, recipient, kind, reference, payload, created_at_ms";

/// A result row of either backend, read by column position.
pub(crate) trait Columns {
    fn text(&self, i: usize) -> Result<String>;
    fn int(&self, i: usize) -> Result<i64>;
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<String> {
        Ok(self.get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.get(i)?)
    }
}

impl Columns for tokio_postgres::Row {
    fn text(&self, i: usize) -> Result<String> {
        Ok(self.try_get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.try_get(i)?)
    }
}

/// A journal entry from a row selecting `JOURNAL_COLUMNS`.
pub(crate) fn journal_entry(r: &impl Columns) -> Result<JournalEntry> {
    Ok(JournalEntry {
        seq: r.int(0)?,
        at_ms: r.int(1)?,
        sender: r.text(2)?,
        message_type: r.text(3)?,
        message_id: r.text(4)?,
        reference: r.text(5)?,
        body: r.text(6)?,
        body_hash: r.text(7)?,
        prev_hash: r.text(8)?,
        hash: r.text(9)?,
    })
}

/// A notification from a row selecting `NOTIFICATION_COLUMNS`.
pub(crate) fn notification(r: &impl Columns) -> Result<NotificationRow> {
    Ok(NotificationRow {
        cursor: r.int(0)?,
        recipient: r.text(1)?,
        kind: r.text(2)?,
        guarantee_reference: r.text(3)?,
        payload: r.text(4)?,
        created_at_ms: r.int(5)?,
    })
}

/// The outbox query for one feed (`recipient` given) or every feed, with
/// `$n` placeholders (SQLite reads them as well as PostgreSQL). A page stops
/// at the first row that starts past `NOTIFICATION_PAGE_BYTES_MAX` of payload
/// (counted in characters, which never exceed the bytes), so a read never
/// holds a thousand large payloads; the caller cuts it to the exact bytes.
pub(crate) fn notifications_sql(one_feed: bool) -> String {
    let filter = if one_feed {
        "recipient = $1 AND cursor > $2 ORDER BY cursor LIMIT $3"
    } else {
        "cursor > $1 ORDER BY cursor LIMIT $2"
    };
    let budget = tir_model::limits::NOTIFICATION_PAGE_BYTES_MAX;
    format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM (\
           SELECT {NOTIFICATION_COLUMNS}, SUM(LENGTH(payload)) OVER (ORDER BY cursor) - LENGTH(payload) AS before \
           FROM (SELECT {NOTIFICATION_COLUMNS} FROM outbox WHERE {filter}) AS page) AS sized \
         WHERE before < {budget} ORDER BY cursor"
    )
}

pub(crate) fn from_doc<T: serde::de::DeserializeOwned>(doc: &str) -> Result<T> {
    serde_json::from_str(doc).map_err(corrupt)
}

pub(crate) fn to_doc<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain types serialize")
}

/// Rebuilds a party from its stored columns.
pub(crate) fn party_from_columns(
    id: String,
    kind: &str,
    country: Option<String>,
    tir_id: Option<String>,
) -> Result<Party> {
    let bad = || corrupt(format!("party {id} has kind {kind:?} without its identifier"));
    match PartyKind::parse(kind) {
        Some(PartyKind::Customs) => {
            let country = country.as_deref().and_then(|c| Country::parse(c).ok()).ok_or_else(bad)?;
            Ok(Party::Customs { id, country })
        }
        Some(PartyKind::GuaranteeChain) => Ok(Party::GuaranteeChain { id }),
        Some(PartyKind::Holder) => {
            let tir_id = tir_id.as_deref().and_then(|t| TirId::parse(t).ok()).ok_or_else(bad)?;
            Ok(Party::Holder { id, tir_id })
        }
        Some(PartyKind::Admin) | None => Err(bad()),
    }
}

pub(crate) fn event_from_columns(
    at_ms: i64,
    message_type: String,
    party: String,
    office: Option<String>,
    summary: String,
) -> Result<Event> {
    let office =
        office.map(|o| OfficeCode::parse(&o).map_err(|e| corrupt(format!("event office {o:?}: {e:?}")))).transpose()?;
    Ok(Event { at: Timestamp::from_unix_ms(at_ms), message_type, party, office, summary })
}
