//! Reads on SQLite: a small pool of read-only connections, and the queries
//! they run. A read returns only what is durable (see `durability`).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use tir_model::guarantee::{Event, Guarantee};

use super::durability::Durability;
use crate::journal::{JournalEntry, Verdict, Verifier};
use crate::rows::risk;
use crate::rows::{self, JOURNAL_COLUMNS, from_doc};
use crate::{
    AssessmentRecord, HolderHistory, InspectionResult, NotificationRow, PolicyRecord, Profile, Result, StoreError,
    StoredModel, TokenParty,
};

/// Read connections kept open between queries.
const READERS_MAX: usize = 8;

pub(super) struct Readers {
    pub path: PathBuf,
    pub pool: Arc<Mutex<Vec<Connection>>>,
    pub durability: Arc<Durability>,
}

impl Readers {
    /// Runs `f` on a read connection and returns its result once everything it
    /// could have seen is durable.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let durability = self.durability.clone();
        self.read_unsynced(move |conn| {
            let result = f(conn)?;
            durability.wait_for(durability.committing.load(Ordering::SeqCst))?;
            Ok(result)
        })
        .await
    }

    /// Runs `f` without waiting for the fsync of what it reads: only for reads
    /// whose result is never shown, only acted on by a later write (whose own
    /// answer waits for an fsync that covers everything before it).
    pub async fn read_unsynced<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.pool.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => {
                    let conn = Connection::open(&path)?;
                    conn.busy_timeout(std::time::Duration::from_secs(10))?;
                    conn.execute_batch("PRAGMA query_only=1; PRAGMA mmap_size=1073741824;")?;
                    conn
                }
            };
            let result = f(&conn);
            let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < READERS_MAX {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

/// The JSON document `sql` selects for one key, parsed.
pub(super) fn doc_by_key<T: serde::de::DeserializeOwned>(conn: &Connection, sql: &str, key: &str) -> Result<Option<T>> {
    let doc: Option<String> = conn.prepare_cached(sql)?.query_row([key], |r| r.get(0)).optional()?;
    doc.map(|d| from_doc(&d)).transpose()
}

pub(super) fn token_party(c: &Connection, token_hash: &str) -> Result<Option<TokenParty>> {
    let row = c
        .prepare_cached(
            "SELECT id, kind, country, tir_id, certificate_sha256 FROM parties WHERE token_hash = ?1 AND revoked_at_ms IS NULL",
        )?
        .query_row([token_hash], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .optional()?;
    row.map(|(id, kind, country, tir_id, certificate_sha256)| {
        Ok(TokenParty { party: rows::party_from_columns(id, &kind, country, tir_id)?, certificate_sha256 })
    })
    .transpose()
}

/// Every party but the admin, newest first (the admin's list); with `after`,
/// those listed after that party (none if it does not exist).
pub(super) fn parties(c: &Connection, after: Option<&str>, limit: usize) -> Result<Vec<crate::PartyListing>> {
    let mut stmt = c.prepare_cached(PARTIES_AFTER)?;
    let rows = stmt.query_map(params![crate::sql_limit(limit), after], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, Option<i64>>(6)?,
            r.get::<_, Option<String>>(7)?,
        ))
    })?;
    let mut found = Vec::new();
    for row in rows {
        let (id, kind, country, tir_id, name, created_at_ms, revoked_at_ms, certificate_sha256) = row?;
        let party = rows::party_from_columns(id, &kind, country, tir_id)?;
        found.push(crate::PartyListing { party, name, created_at_ms, revoked_at_ms, certificate_sha256 });
    }
    Ok(found)
}

/// The admin's list of parties after party `?2` (all when `?2` is NULL), in its
/// order: newest first, then by id.
const PARTIES_AFTER: &str = "SELECT id, kind, country, tir_id, name, created_at_ms, revoked_at_ms, certificate_sha256 \
     FROM parties p WHERE ?2 IS NULL OR EXISTS (SELECT 1 FROM parties a WHERE a.id = ?2 \
       AND (p.created_at_ms < a.created_at_ms OR (p.created_at_ms = a.created_at_ms AND p.id > a.id))) \
     ORDER BY created_at_ms DESC, id LIMIT ?1";

/// The documents `sql` selects with the limit as `?1` and a page's start as
/// `?2` (`''` for the first page: every key sorts after it).
pub(super) fn docs_after<T: serde::de::DeserializeOwned>(
    c: &Connection,
    sql: &str,
    after: &str,
    limit: usize,
) -> Result<Vec<T>> {
    docs(c, sql, params![crate::sql_limit(limit), after])
}

pub(super) fn notifications(
    c: &Connection,
    recipient: Option<&str>,
    after: i64,
    limit: usize,
) -> Result<Vec<NotificationRow>> {
    let limit = crate::sql_limit(limit);
    let mut stmt = c.prepare_cached(&rows::notifications_sql(recipient.is_some()))?;
    match recipient {
        Some(recipient) => stmt.query_and_then(params![recipient, after, limit], |r| rows::notification(r))?.collect(),
        None => stmt.query_and_then(params![after, limit], |r| rows::notification(r))?.collect(),
    }
}

pub(super) fn risk_feed(c: &Connection, after: i64, limit: usize) -> Result<Vec<NotificationRow>> {
    let mut stmt = c.prepare_cached(&rows::risk_feed_sql())?;
    stmt.query_and_then(params![after, crate::sql_limit(limit)], |r| rows::notification(r))?.collect()
}

pub(super) fn timeline(c: &Connection, reference: &str) -> Result<Vec<Event>> {
    let mut stmt = c.prepare_cached(rows::TIMELINE)?;
    let found = stmt.query_map([reference], |r| {
        Ok((
            (r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get::<_, Option<String>>(3)?, r.get(4)?),
            (r.get::<_, Option<i64>>(5)?, r.get::<_, Option<String>>(6)?),
        ))
    })?;
    found
        .map(|row| {
            let ((at, message_type, party, office, summary), late) = row?;
            rows::event_from_columns(at, message_type, party, office, summary, late)
        })
        .collect()
}

pub(super) fn fallback_periods(c: &Connection) -> Result<Vec<tir_model::fallback::FallbackPeriod>> {
    docs(c, crate::fallback::PERIODS_ALL, [])
}

pub(super) fn fallback_candidates(c: &Connection, id: &str) -> Result<Vec<(Guarantee, bool)>> {
    let mut stmt = c.prepare_cached(crate::fallback::CANDIDATES)?;
    let found = stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
    found.map(|row| row.map_err(Into::into).and_then(|(doc, recorded)| Ok((from_doc(&doc)?, recorded)))).collect()
}

pub(super) fn verify_journal(c: &Connection) -> Result<Verdict> {
    let mut verifier = Verifier::default();
    let mut stmt = c.prepare(&format!("SELECT {JOURNAL_COLUMNS} FROM journal ORDER BY seq"))?;
    let mut found = stmt.query([])?;
    while let Some(row) = found.next()? {
        if !verifier.push(&rows::journal_entry(row)?) {
            break;
        }
    }
    Ok(verifier.finish())
}

pub(super) fn journal(c: &Connection, from_seq: i64, limit: usize) -> Result<Vec<JournalEntry>> {
    c.prepare_cached(&format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE seq >= ?1 ORDER BY seq LIMIT ?2"))?
        .query_and_then(params![from_seq, crate::sql_limit(limit)], |r| rows::journal_entry(r))?
        .collect()
}

pub(super) fn journal_head_seq(c: &Connection) -> Result<i64> {
    Ok(c.prepare_cached("SELECT coalesce(max(seq), 0) FROM journal")?.query_row([], |r| r.get(0))?)
}

pub(super) fn journal_of(c: &Connection, reference: &str, limit: usize) -> Result<Vec<JournalEntry>> {
    c.prepare_cached(&format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE reference = ?1 ORDER BY seq LIMIT ?2"))?
        .query_and_then(params![reference, crate::sql_limit(limit)], |r| rows::journal_entry(r))?
        .collect()
}

/// Guarantees whose `column` (holder or chain) is `key`, reference descending.
pub(super) fn guarantees_by(
    c: &Connection,
    column: Owner,
    key: &str,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<Guarantee>> {
    // Two statements rather than `?3 IS NULL OR ...`, so each keeps to the
    // (owner, reference) index's range.
    let sql = match (column, before.is_some()) {
        (Owner::Holder, false) => "SELECT doc FROM guarantees WHERE holder = ?1 ORDER BY reference DESC LIMIT ?2",
        (Owner::Chain, false) => "SELECT doc FROM guarantees WHERE chain = ?1 ORDER BY reference DESC LIMIT ?2",
        (Owner::Holder, true) => {
            "SELECT doc FROM guarantees WHERE holder = ?1 AND reference < ?3 ORDER BY reference DESC LIMIT ?2"
        }
        (Owner::Chain, true) => {
            "SELECT doc FROM guarantees WHERE chain = ?1 AND reference < ?3 ORDER BY reference DESC LIMIT ?2"
        }
    };
    match before {
        Some(before) => docs(c, sql, params![key, crate::sql_limit(limit), before]),
        None => docs(c, sql, params![key, crate::sql_limit(limit)]),
    }
}

/// Which column of `guarantees` a list is by.
#[derive(Clone, Copy)]
pub(super) enum Owner {
    Holder,
    Chain,
}

/// Every version of one profile, oldest first.
pub(super) fn profile_versions(c: &Connection, administration: &str, id: &str) -> Result<Vec<Profile>> {
    let mut stmt =
        c.prepare_cached("SELECT doc FROM risk_profiles WHERE administration = ?1 AND id = ?2 ORDER BY version")?;
    let docs = stmt.query_map(params![administration, id], |r| r.get::<_, String>(0))?;
    docs.map(|d| from_doc(&d?)).collect()
}

/// The latest version of each of the administration's profiles, by id.
pub(super) fn profiles(c: &Connection, administration: &str) -> Result<Vec<Profile>> {
    let mut stmt = c.prepare_cached(
        "SELECT doc FROM risk_profiles p WHERE administration = ?1
           AND version = (SELECT max(version) FROM risk_profiles q WHERE q.administration = p.administration AND q.id = p.id)
         ORDER BY id",
    )?;
    let docs = stmt.query_map([administration], |r| r.get::<_, String>(0))?;
    docs.map(|d| from_doc(&d?)).collect()
}

/// The documents (first column) `sql` selects with `params`, parsed.
fn docs<T: serde::de::DeserializeOwned>(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let found = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    found.map(|d| from_doc(&d?)).collect()
}

pub(super) fn risk_cursor(c: &Connection) -> Result<i64> {
    Ok(c.prepare_cached(risk::CURSOR_GET)?.query_row([], |r| r.get(0))?)
}

pub(super) fn assessments(c: &Connection, administration: &str, reference: &str) -> Result<Vec<AssessmentRecord>> {
    docs(c, &risk::assessments_of_guarantee(), params![administration, reference])
}

/// The results of one guarantee by its administration, by recorded time then office.
pub(super) fn results_of(c: &Connection, administration: &str, guarantee: &str) -> Result<Vec<InspectionResult>> {
    docs(c, risk::RESULTS_OF_GUARANTEE, params![administration, guarantee])
}

/// `Store::risk_tallies` on SQLite.
pub(super) fn risk_tallies(c: &Connection, administration: &str) -> Result<Vec<(i32, String, tir_risk::stats::Tally)>> {
    let mut stmt = c.prepare_cached(risk::TALLIES)?;
    let rows = stmt.query_map([administration], |r| {
        let tally =
            tir_risk::stats::Tally { volume: r.get(2)?, inspected: r.get(3)?, hits: r.get(4)?, revenue: r.get(5)? };
        Ok((r.get(0)?, r.get(1)?, tally))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn recent_assessments(
    c: &Connection,
    administration: &str,
    office: Option<&str>,
    limit: usize,
) -> Result<Vec<AssessmentRecord>> {
    let limit = crate::sql_limit(limit);
    let sql = risk::recent_assessments(office.is_some());
    match office {
        Some(office) => docs(c, &sql, params![administration, office, limit]),
        None => docs(c, &sql, params![administration, limit]),
    }
}

pub(super) fn all_assessments(c: &Connection, administration: &str) -> Result<Vec<AssessmentRecord>> {
    docs(c, &risk::all_assessments(), [administration])
}

pub(super) fn holder_history(c: &Connection, administration: &str, holder: &str) -> Result<HolderHistory> {
    let (transports, irregularities) = c
        .prepare_cached(risk::HOLDER_HISTORY)?
        .query_row(params![administration, holder], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(HolderHistory { transports, irregularities })
}

pub(super) fn results(c: &Connection, administration: &str) -> Result<Vec<InspectionResult>> {
    docs(c, risk::RESULTS, [administration])
}

pub(super) fn latest_model(c: &Connection, administration: &str) -> Result<Option<StoredModel>> {
    let row: Option<(String, String)> =
        c.prepare_cached(risk::LATEST_MODEL)?.query_row([administration], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    row.map(|(doc, model_json)| risk::model_with(&doc, model_json)).transpose()
}

pub(super) fn models(c: &Connection, administration: &str) -> Result<Vec<StoredModel>> {
    docs(c, risk::MODELS, [administration])
}

pub(super) fn policies(c: &Connection, administration: &str) -> Result<Vec<PolicyRecord>> {
    docs(c, risk::POLICIES, [administration])
}

/// Every server key, oldest first (public parts).
pub(super) fn server_keys(conn: &Connection) -> Result<Vec<crate::PublicKey>> {
    let mut statement = conn.prepare_cached(rows::keys::ALL)?;
    let mut found = statement.query([])?;
    let mut keys = Vec::new();
    while let Some(row) = found.next()? {
        keys.push(rows::keys::public(row)?);
    }
    Ok(keys)
}

/// Every signing key of the holder, oldest first.
pub(super) fn holder_keys(conn: &Connection, tir_id: &str) -> Result<Vec<crate::HolderKey>> {
    let mut statement = conn.prepare_cached(rows::keys::HOLDER_KEYS)?;
    let mut found = statement.query([tir_id])?;
    let mut keys = Vec::new();
    while let Some(row) = found.next()? {
        keys.push(rows::keys::holder_key(row)?);
    }
    Ok(keys)
}

/// The latest signed head.
pub(super) fn signed_head(conn: &Connection) -> Result<Option<crate::SignedHead>> {
    let mut statement = conn.prepare_cached(rows::keys::HEAD_LATEST)?;
    let mut found = statement.query([])?;
    found.next()?.map(rows::keys::head).transpose()
}

/// The party's push endpoint (`None`), or every active one.
pub(super) fn push_endpoints(conn: &Connection, party: Option<&str>) -> Result<Vec<crate::PushEndpoint>> {
    let mut statement = conn.prepare_cached(&crate::push::endpoints_sql(party.is_some()))?;
    let mut found = match party {
        Some(party) => statement.query([party])?,
        None => statement.query([])?,
    };
    let mut endpoints = Vec::new();
    while let Some(row) = found.next()? {
        endpoints.push(crate::push::endpoint(row)?);
    }
    Ok(endpoints)
}

/// The party's delivery attempts of items in (after, through].
pub(super) fn push_attempts(
    conn: &Connection,
    party: &str,
    after: i64,
    through: i64,
) -> Result<Vec<crate::PushAttempt>> {
    let mut statement = conn.prepare_cached(&crate::push::attempts_sql())?;
    let mut found = statement.query(rusqlite::params![party, after, through])?;
    let mut attempts = Vec::new();
    while let Some(row) = found.next()? {
        attempts.push(crate::push::attempt(row)?);
    }
    Ok(attempts)
}

/// `Store::arrivals` on SQLite.
pub(super) fn arrivals(c: &Connection, country: &str, limit: usize) -> Result<Vec<crate::console::Arrival>> {
    let here = crate::console::country(country)?;
    let mut stmt = c.prepare_cached(crate::console::sql::ARRIVALS_SQLITE)?;
    let mut found = stmt.query(params![country, crate::sql_limit(limit)])?;
    let mut out = Vec::new();
    while let Some(r) = found.next()? {
        let text = |i: usize| r.get::<_, Option<String>>(i);
        let fields = [text(3)?, text(4)?, text(5)?, text(6)?, text(7)?, text(8)?];
        let fields = fields.each_ref().map(Option::as_deref);
        out.push(crate::console::Arrival::from_fields(here, r.get(2)?, r.get(0)?, r.get(1)?, fields)?);
    }
    Ok(out)
}

/// `Store::crossing_figures` on SQLite.
pub(super) fn crossing_figures(
    c: &Connection,
    country: Option<&str>,
    since_ms: i64,
    sample: usize,
) -> Result<crate::console::CrossingFigures> {
    use crate::console::{self, PairSample, sql};
    let of_country = country.is_some();
    let (since_day, since_ms) = console::window(since_ms);
    let days: Vec<&dyn rusqlite::ToSql> = match &country {
        Some(country) => vec![&since_day, country],
        None => vec![&since_day],
    };
    let window: Vec<&dyn rusqlite::ToSql> = match &country {
        Some(country) => vec![&since_ms, country],
        None => vec![&since_ms],
    };
    let counted: Vec<(String, String, i64)> = c
        .prepare_cached(&sql::pairs(of_country))?
        .query_map(days.as_slice(), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut pairs = Vec::with_capacity(counted.len());
    let mut waits = c.prepare_cached(sql::SAMPLE)?;
    for (exit, entry, count) in counted {
        let seconds = waits
            .query_map(params![exit, entry, since_ms, crate::sql_limit(sample)], |r| r.get::<_, i64>(0))?
            .map(|ms| ms.map(console::wait_seconds))
            .collect::<rusqlite::Result<_>>()?;
        pairs.push(PairSample {
            exit: console::country(&exit)?,
            entry: console::country(&entry)?,
            count: count as u64,
            seconds,
        });
    }
    let daily: Vec<(String, i64, i64)> = c
        .prepare_cached(&sql::daily(of_country))?
        .query_map(days.as_slice(), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut recent = Vec::new();
    let mut rows = c.prepare_cached(&sql::recent(of_country))?;
    let mut found = rows.query(window.as_slice())?;
    while let Some(r) = found.next()? {
        recent.push(console::CrossingRow {
            reference: r.get(0)?,
            operation: r.get(1)?,
            exit: console::country(&r.get::<_, String>(2)?)?,
            entry: console::country(&r.get::<_, String>(3)?)?,
            exit_office: r.get(4)?,
            entry_office: r.get(5)?,
            terminated_at_ms: r.get(6)?,
            started_at_ms: r.get(7)?,
        });
    }
    Ok(console::assemble(pairs, daily, recent))
}

/// `Store::console_session` on SQLite.
pub(super) fn console_session(c: &Connection, id_hash: &str) -> Result<Option<crate::ConsoleSession>> {
    Ok(c.prepare_cached(crate::sessions::sql::READ)?
        .query_row([id_hash], |r| {
            Ok(crate::ConsoleSession {
                token_hash: r.get(0)?,
                csrf: r.get(1)?,
                opened_ms: r.get(2)?,
                seen_ms: r.get(3)?,
            })
        })
        .optional()?)
}
