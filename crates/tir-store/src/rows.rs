//! Rows read back into domain values, the same way on every backend.

use tir_model::guarantee::Event;
use tir_model::party::{Party, PartyKind};
use tir_model::{Country, OfficeCode, Timestamp, TirId};

use crate::journal::JournalEntry;
use crate::{NotificationRow, Result, corrupt};

/// The journal's columns, in `JournalEntry`'s field order.
pub(crate) const JOURNAL_COLUMNS: &str =
    "seq, at_ms, sender, message_type, message_id, reference, body, body_hash, prev_hash, hash, holder_signature";

/// The outbox's columns, in `NotificationRow`'s field order.
pub(crate) const NOTIFICATION_COLUMNS: &str = "cursor, recipient, kind, reference, payload, created_at_ms";

/// A result row of either backend, read by column position.
pub(crate) trait Columns {
    fn text(&self, i: usize) -> Result<String>;
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<String> {
        Ok(self.get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
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
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
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
        holder_signature: r
            .opt_text(10)?
            .map(|text| crate::HolderSignature::from_column(&text))
            .transpose()
            .map_err(corrupt)?,
    })
}

/// The server keys and signed heads, the same SQL on both backends (parameters in order).
pub(crate) mod keys {
    use super::Columns;
    use crate::Result;
    use crate::keys::{PublicKey, ServerKey, SignedHead};

    pub(crate) const ALL: &str =
        "SELECT key_id, public_key, created_at_ms, retired_at_ms FROM server_keys ORDER BY created_at_ms, key_id";
    pub(crate) const CURRENT: &str =
        "SELECT key_id, public_key, private_key, created_at_ms FROM server_keys WHERE retired_at_ms IS NULL";
    pub(crate) const INSERT: &str = "INSERT INTO server_keys (key_id, public_key, private_key, created_at_ms) \
        VALUES ($1, $2, $3, $4)";
    pub(crate) const RETIRE: &str = "UPDATE server_keys SET retired_at_ms = $1 WHERE key_id = $2";
    pub(crate) const HEAD_LATEST: &str = "SELECT entries, head, signed_at, signed_at_ms, key_id, signature \
        FROM journal_heads ORDER BY entries DESC LIMIT 1";
    pub(crate) const HEAD_INSERT: &str = "INSERT INTO journal_heads \
        (entries, head, signed_at, signed_at_ms, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6)";

    pub(crate) const HOLDER_KEYS: &str = "SELECT tir_id, key_id, public_key, registered_by, registered_at_ms, \
        revoked_at_ms FROM holder_keys WHERE tir_id = $1 ORDER BY registered_at_ms, key_id";
    pub(crate) const HOLDER_KEY_INSERT: &str = "INSERT INTO holder_keys \
        (tir_id, key_id, public_key, registered_by, registered_at_ms) VALUES ($1, $2, $3, $4, $5)";
    pub(crate) const HOLDER_KEY_REVOKE: &str =
        "UPDATE holder_keys SET revoked_at_ms = $1 WHERE tir_id = $2 AND key_id = $3 AND revoked_at_ms IS NULL";

    /// A holder's key from a row selecting `HOLDER_KEYS`' columns.
    pub(crate) fn holder_key(r: &impl Columns) -> Result<crate::HolderKey> {
        Ok(crate::HolderKey {
            tir_id: r.text(0)?,
            key_id: r.text(1)?,
            public_key: r.text(2)?,
            registered_by: r.text(3)?,
            registered_at_ms: r.int(4)?,
            revoked_at_ms: r.opt_int(5)?,
        })
    }

    /// A key from a row selecting `ALL`'s columns.
    pub(crate) fn public(r: &impl Columns) -> Result<PublicKey> {
        Ok(PublicKey {
            key_id: r.text(0)?,
            public_key: r.text(1)?,
            created_at_ms: r.int(2)?,
            retired_at_ms: r.opt_int(3)?,
        })
    }

    /// The current key from a row selecting `CURRENT`'s columns.
    pub(crate) fn current(r: &impl Columns) -> Result<ServerKey> {
        ServerKey::from_row(&r.text(0)?, &r.text(1)?, &r.text(2)?, r.int(3)?, None)
    }

    /// A head from a row selecting `HEAD_LATEST`'s columns.
    pub(crate) fn head(r: &impl Columns) -> Result<SignedHead> {
        Ok(SignedHead {
            entries: r.int(0)?,
            head: r.text(1)?,
            signed_at: r.text(2)?,
            signed_at_ms: r.int(3)?,
            key_id: r.text(4)?,
            signature: r.text(5)?,
        })
    }
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
    if one_feed {
        feed_sql("recipient = $1 AND cursor > $2 ORDER BY cursor LIMIT $3", NOTIFICATION_COLUMNS)
    } else {
        feed_sql("cursor > $1 ORDER BY cursor LIMIT $2", NOTIFICATION_COLUMNS)
    }
}

/// Every feed as `notifications_sql(false)`, the payload only of the items the
/// risk engine reads (`crate::risk_feed_item`), others empty.
pub(crate) fn risk_feed_sql() -> String {
    let kinds = crate::RISK_FEED_KINDS.map(|k| format!("'{k}'")).join(", ");
    let columns = format!(
        "cursor, recipient, kind, reference, \
         CASE WHEN recipient LIKE '{}%' AND kind IN ({kinds}) THEN payload ELSE '' END AS payload, created_at_ms",
        crate::RISK_FEED_RECIPIENTS
    );
    feed_sql("cursor > $1 ORDER BY cursor LIMIT $2", &columns)
}

fn feed_sql(filter: &str, columns: &str) -> String {
    let budget = tir_model::limits::NOTIFICATION_PAGE_BYTES_MAX;
    format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM (\
           SELECT {NOTIFICATION_COLUMNS}, SUM(LENGTH(payload)) OVER (ORDER BY cursor) - LENGTH(payload) AS before \
           FROM (SELECT {columns} FROM outbox WHERE {filter}) AS page) AS sized \
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

/// A transport's timeline, oldest first (`event_from_columns`' columns in order).
pub(crate) const TIMELINE: &str = "SELECT at_ms, message_type, party, office, summary, occurred_at_ms, fallback_period \
    FROM events WHERE reference = $1 ORDER BY id";

/// `late`: for a message recorded in fallback, when it happened and its period.
pub(crate) fn event_from_columns(
    at_ms: i64,
    message_type: String,
    party: String,
    office: Option<String>,
    summary: String,
    (occurred_at_ms, fallback_period): (Option<i64>, Option<String>),
) -> Result<Event> {
    let office =
        office.map(|o| OfficeCode::parse(&o).map_err(|e| corrupt(format!("event office {o:?}: {e:?}")))).transpose()?;
    Ok(Event {
        at: Timestamp::from_unix_ms(at_ms),
        message_type,
        party,
        office,
        summary,
        occurred_at: occurred_at_ms.map(Timestamp::from_unix_ms),
        fallback_period,
    })
}

/// The risk engine's records: SQL both databases run as it is (`$n`
/// placeholders; SQLite numbers them by first use, which is their order here).
pub(crate) mod risk {
    use tir_risk::records::StoredModel;

    use super::from_doc;
    use crate::Result;

    /// The order assessments are read oldest first; reversed for newest first.
    const OLDEST_FIRST: &str = "assessed_at_ms, source_cursor, operation, id";
    const NEWEST_FIRST: &str = "assessed_at_ms DESC, source_cursor DESC, operation DESC, id DESC";

    pub(crate) const CURSOR_GET: &str = "SELECT cursor FROM risk_cursor WHERE id = 1";
    pub(crate) const CURSOR_SET: &str = "UPDATE risk_cursor SET cursor = $1 WHERE id = 1";
    pub(crate) const ASSESSMENT_INSERT: &str = "INSERT INTO risk_assessments \
        (administration, guarantee, operation, office, source_cursor, assessed_at_ms, holder, record) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    pub(crate) const RESULT_EXISTS: &str =
        "SELECT 1 FROM risk_results WHERE administration = $1 AND guarantee = $2 AND office = $3";
    pub(crate) const RESULT_PUT: &str = "INSERT INTO risk_results \
        (administration, guarantee, office, outcome, recorded_at_ms, doc) VALUES ($1, $2, $3, $4, $5, $6) \
        ON CONFLICT (administration, guarantee, office) \
        DO UPDATE SET outcome = excluded.outcome, recorded_at_ms = excluded.recorded_at_ms, doc = excluded.doc";
    /// `$1` administration, `$2` guarantee: in the order `RESULTS` reads them. (`+`: as in
    /// `assessments_of_guarantee`, so that SQLite finds the guarantee's rows by their key.)
    pub(crate) const RESULTS_OF_GUARANTEE: &str = "SELECT doc FROM risk_results \
        WHERE administration = $1 AND guarantee = $2 ORDER BY +recorded_at_ms, office";
    /// Adds to the sums of (administration, day, selector) (`tir_risk::stats::Tally`).
    pub(crate) const TALLY_ADD: &str = "INSERT INTO risk_tallies \
        (administration, day, selector, volume, inspected, hits, revenue) VALUES ($1, $2, $3, $4, $5, $6, $7) \
        ON CONFLICT (administration, day, selector) DO UPDATE SET volume = risk_tallies.volume + excluded.volume, \
        inspected = risk_tallies.inspected + excluded.inspected, hits = risk_tallies.hits + excluded.hits, \
        revenue = risk_tallies.revenue + excluded.revenue";
    /// The administration's sums, by day then selector.
    pub(crate) const TALLIES: &str = "SELECT day, selector, volume, inspected, hits, revenue FROM risk_tallies \
        WHERE administration = $1 ORDER BY day, selector";
    pub(crate) const MODEL_GET: &str =
        "SELECT doc, model_sha256 FROM risk_models WHERE administration = $1 AND version = $2";
    pub(crate) const MODEL_INSERT: &str = "INSERT INTO risk_models \
        (administration, version, doc, model_sha256, model_json) VALUES ($1, $2, $3, $4, $5)";
    pub(crate) const POLICY_PUT: &str = "INSERT INTO risk_policies (administration, office, doc, updated_at_ms) \
        VALUES ($1, $2, $3, $4) \
        ON CONFLICT (administration, office) DO UPDATE SET doc = excluded.doc, updated_at_ms = excluded.updated_at_ms";

    /// `+`: without it SQLite (no statistics) sorts by walking the administration's whole
    /// `risk_assessments_by_time` index, every assessment of the administration, rather than
    /// the guarantee's few rows of `risk_assessments_by_guarantee` (seen at 20,000 transports).
    pub(crate) fn assessments_of_guarantee() -> String {
        format!(
            "SELECT record FROM risk_assessments WHERE administration = $1 AND guarantee = $2 ORDER BY +{OLDEST_FIRST}"
        )
    }
    pub(crate) fn all_assessments() -> String {
        format!("SELECT record FROM risk_assessments WHERE administration = $1 ORDER BY {OLDEST_FIRST}")
    }
    /// `$1` administration, then `$2` office and `$3` limit, or `$2` limit.
    pub(crate) fn recent_assessments(of_office: bool) -> String {
        let office = if of_office { "AND office = $2 ORDER BY" } else { "ORDER BY" };
        let limit = if of_office { "$3" } else { "$2" };
        format!("SELECT record FROM risk_assessments WHERE administration = $1 {office} {NEWEST_FIRST} LIMIT {limit}")
    }
    /// The holder's guarantees known from this administration's assessments. Both counts walk
    /// the holder's index entries (the results by their key), never all of the administration's.
    pub(crate) const HOLDER_HISTORY: &str = "SELECT \
        (SELECT count(DISTINCT guarantee) FROM risk_assessments WHERE administration = $1 AND holder = $2), \
        (SELECT count(DISTINCT a.guarantee) FROM risk_assessments a JOIN risk_results r \
           ON r.administration = a.administration AND r.guarantee = a.guarantee \
           WHERE a.administration = $1 AND a.holder = $2 AND r.outcome = 'irregularity')";
    pub(crate) const RESULTS: &str =
        "SELECT doc FROM risk_results WHERE administration = $1 ORDER BY recorded_at_ms, guarantee, office";
    pub(crate) const LATEST_MODEL: &str =
        "SELECT doc, model_json FROM risk_models WHERE administration = $1 ORDER BY id DESC LIMIT 1";
    pub(crate) const MODELS: &str = "SELECT doc FROM risk_models WHERE administration = $1 ORDER BY id DESC";
    pub(crate) const POLICIES: &str = "SELECT doc FROM risk_policies WHERE administration = $1 ORDER BY office";

    /// A model's stored metadata with its model put back.
    pub(crate) fn model_with(doc: &str, model_json: String) -> Result<StoredModel> {
        Ok(StoredModel { model_json, ..from_doc(doc)? })
    }

    /// The metadata row of a model: the model itself is stored in a column of its own.
    pub(crate) fn metadata_doc(model: &StoredModel) -> String {
        super::to_doc(&StoredModel { model_json: String::new(), ..model.clone() })
    }
}
