//! Reads on PostgreSQL, each on a pooled connection.

use deadpool_postgres::Pool;
use tir_model::guarantee::{Event, Guarantee};

use super::pool_error;
use crate::journal::{JournalEntry, Verdict, Verifier};
use crate::rows::risk;
use crate::rows::{self, JOURNAL_COLUMNS, from_doc};
use crate::{
    AssessmentRecord, HolderHistory, InspectionResult, NotificationRow, PolicyRecord, Profile, Result, StoredModel,
    TokenParty,
};

/// Journal rows fetched per round trip while verifying.
const VERIFY_PAGE_ROWS: i64 = 5_000;

/// The JSON document `sql` selects for one key, parsed.
pub(super) async fn doc_by_key<T: serde::de::DeserializeOwned>(pool: &Pool, sql: &str, key: &str) -> Result<Option<T>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(sql).await?;
    let row = client.query_opt(&stmt, &[&key]).await?;
    row.map(|r| from_doc(r.get(0))).transpose()
}

pub(super) async fn token_party(pool: &Pool, token_hash: &str) -> Result<Option<TokenParty>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client
        .prepare_cached(
            "SELECT id, kind, country, tir_id, certificate_sha256 FROM parties WHERE token_hash = $1 AND revoked_at_ms IS NULL",
        )
        .await?;
    match client.query_opt(&stmt, &[&token_hash]).await? {
        None => Ok(None),
        Some(r) => Ok(Some(TokenParty {
            party: rows::party_from_columns(r.get(0), r.get::<_, &str>(1), r.get(2), r.get(3))?,
            certificate_sha256: r.get(4),
        })),
    }
}

/// Every party but the admin, newest first (the admin's list); with `after`,
/// those listed after that party (none if it does not exist).
pub(super) async fn parties(pool: &Pool, after: Option<&str>, limit: usize) -> Result<Vec<crate::PartyListing>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client
        .prepare_cached(
            "SELECT id, kind, country, tir_id, name, created_at_ms, revoked_at_ms, certificate_sha256 \
             FROM parties p WHERE $2::text IS NULL OR EXISTS (SELECT 1 FROM parties a WHERE a.id = $2 \
               AND (p.created_at_ms < a.created_at_ms OR (p.created_at_ms = a.created_at_ms AND p.id > a.id))) \
             ORDER BY created_at_ms DESC, id LIMIT $1",
        )
        .await?;
    let mut found = Vec::new();
    for r in client.query(&stmt, &[&crate::sql_limit(limit), &after]).await? {
        let party = rows::party_from_columns(r.get(0), r.get::<_, &str>(1), r.get(2), r.get(3))?;
        found.push(crate::PartyListing {
            party,
            name: r.get(4),
            created_at_ms: r.get(5),
            revoked_at_ms: r.get(6),
            certificate_sha256: r.get(7),
        });
    }
    Ok(found)
}

/// The documents `sql` selects with the limit as `$1` and a page's start as
/// `$2` (`''` for the first page: every key sorts after it in `COLLATE "C"`).
pub(super) async fn docs_after<T: serde::de::DeserializeOwned>(
    pool: &Pool,
    sql: &str,
    after: &str,
    limit: usize,
) -> Result<Vec<T>> {
    docs(pool, sql, &[&crate::sql_limit(limit), &after]).await
}

pub(super) async fn notifications(
    pool: &Pool,
    recipient: Option<&str>,
    after: i64,
    limit: usize,
) -> Result<Vec<NotificationRow>> {
    let client = pool.get().await.map_err(pool_error)?;
    let limit = crate::sql_limit(limit);
    let stmt = client.prepare_cached(&rows::notifications_sql(recipient.is_some())).await?;
    let found = match recipient {
        Some(recipient) => client.query(&stmt, &[&recipient, &after, &limit]).await?,
        None => client.query(&stmt, &[&after, &limit]).await?,
    };
    found.iter().map(rows::notification).collect()
}

pub(super) async fn risk_feed(pool: &Pool, after: i64, limit: usize) -> Result<Vec<NotificationRow>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(&rows::risk_feed_sql()).await?;
    client.query(&stmt, &[&after, &crate::sql_limit(limit)]).await?.iter().map(rows::notification).collect()
}

pub(super) async fn timeline(pool: &Pool, reference: &str) -> Result<Vec<Event>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(rows::TIMELINE).await?;
    client
        .query(&stmt, &[&reference])
        .await?
        .iter()
        .map(|r| rows::event_from_columns(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), (r.get(5), r.get(6))))
        .collect()
}

pub(super) async fn fallback_candidates(pool: &Pool, id: &str) -> Result<Vec<(Guarantee, bool)>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(crate::fallback::CANDIDATES).await?;
    client.query(&stmt, &[&id]).await?.iter().map(|r| Ok((from_doc(r.get(0))?, r.get(1)))).collect()
}

pub(super) async fn verify_journal(pool: &Pool) -> Result<Verdict> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client
        .prepare_cached(&format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2"))
        .await?;
    let mut verifier = Verifier::default();
    'pages: loop {
        let after = verifier.last_seq();
        let page = client.query(&stmt, &[&after, &VERIFY_PAGE_ROWS]).await?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            if !verifier.push(&rows::journal_entry(row)?) {
                break 'pages;
            }
        }
    }
    Ok(verifier.finish())
}

pub(super) async fn journal(pool: &Pool, from_seq: i64, limit: usize) -> Result<Vec<JournalEntry>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client
        .prepare_cached(&format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE seq >= $1 ORDER BY seq LIMIT $2"))
        .await?;
    client.query(&stmt, &[&from_seq, &crate::sql_limit(limit)]).await?.iter().map(rows::journal_entry).collect()
}

pub(super) async fn journal_head_seq(pool: &Pool) -> Result<i64> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached("SELECT coalesce(max(seq), 0)::bigint FROM journal").await?;
    Ok(client.query_one(&stmt, &[]).await?.get(0))
}

pub(super) async fn journal_of(pool: &Pool, reference: &str, limit: usize) -> Result<Vec<JournalEntry>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client
        .prepare_cached(&format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE reference = $1 ORDER BY seq LIMIT $2"))
        .await?;
    client.query(&stmt, &[&reference, &crate::sql_limit(limit)]).await?.iter().map(rows::journal_entry).collect()
}

/// Guarantees of a holder (`by_chain` false) or a chain, reference descending.
pub(super) async fn guarantees_by(
    pool: &Pool,
    by_chain: bool,
    key: &str,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<Guarantee>> {
    // Two statements rather than `$3 IS NULL OR ...`, so each keeps to the
    // (owner, reference) index's range; `reference` is `COLLATE "C"`, so
    // pages follow the byte order SQLite and the memory store use.
    let sql = match (by_chain, before.is_some()) {
        (true, false) => "SELECT doc FROM guarantees WHERE chain = $1 ORDER BY reference DESC LIMIT $2",
        (false, false) => "SELECT doc FROM guarantees WHERE holder = $1 ORDER BY reference DESC LIMIT $2",
        (true, true) => {
            "SELECT doc FROM guarantees WHERE chain = $1 AND reference < $3 ORDER BY reference DESC LIMIT $2"
        }
        (false, true) => {
            "SELECT doc FROM guarantees WHERE holder = $1 AND reference < $3 ORDER BY reference DESC LIMIT $2"
        }
    };
    let limit = crate::sql_limit(limit);
    match before {
        Some(before) => docs(pool, sql, &[&key, &limit, &before]).await,
        None => docs(pool, sql, &[&key, &limit]).await,
    }
}

/// Every version of one profile, oldest first (on any client: the writer's transaction or a pooled one).
pub(super) async fn profile_versions(
    client: &deadpool_postgres::Client,
    administration: &str,
    id: &str,
) -> Result<Vec<Profile>> {
    let stmt = client
        .prepare_cached("SELECT doc FROM risk_profiles WHERE administration = $1 AND id = $2 ORDER BY version")
        .await?;
    client.query(&stmt, &[&administration, &id]).await?.iter().map(|r| from_doc(r.get(0))).collect()
}

/// The latest version of each of the administration's profiles, by id.
pub(super) async fn profiles(pool: &Pool, administration: &str) -> Result<Vec<Profile>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client
        .prepare_cached(
            "SELECT DISTINCT ON (id) doc FROM risk_profiles WHERE administration = $1 ORDER BY id, version DESC",
        )
        .await?;
    client.query(&stmt, &[&administration]).await?.iter().map(|r| from_doc(r.get(0))).collect()
}

/// The documents (first column) `sql` selects with `params`, parsed.
pub(super) async fn docs<T: serde::de::DeserializeOwned>(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<T>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(sql).await?;
    client.query(&stmt, params).await?.iter().map(|r| from_doc(r.get(0))).collect()
}

pub(super) async fn risk_cursor(pool: &Pool) -> Result<i64> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(risk::CURSOR_GET).await?;
    Ok(client.query_one(&stmt, &[]).await?.get(0))
}

pub(super) async fn assessments(pool: &Pool, administration: &str, reference: &str) -> Result<Vec<AssessmentRecord>> {
    docs(pool, &risk::assessments_of_guarantee(), &[&administration, &reference]).await
}

/// `Store::risk_tallies` on PostgreSQL.
pub(super) async fn risk_tallies(
    pool: &Pool,
    administration: &str,
) -> Result<Vec<(i32, String, tir_risk::stats::Tally)>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(risk::TALLIES).await?;
    let rows = client.query(&stmt, &[&administration]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let tally =
                tir_risk::stats::Tally { volume: r.get(2), inspected: r.get(3), hits: r.get(4), revenue: r.get(5) };
            (r.get(0), r.get(1), tally)
        })
        .collect())
}

pub(super) async fn recent_assessments(
    pool: &Pool,
    administration: &str,
    office: Option<&str>,
    limit: usize,
) -> Result<Vec<AssessmentRecord>> {
    let limit = crate::sql_limit(limit);
    let sql = risk::recent_assessments(office.is_some());
    match office {
        Some(office) => docs(pool, &sql, &[&administration, &office, &limit]).await,
        None => docs(pool, &sql, &[&administration, &limit]).await,
    }
}

pub(super) async fn all_assessments(pool: &Pool, administration: &str) -> Result<Vec<AssessmentRecord>> {
    docs(pool, &risk::all_assessments(), &[&administration]).await
}

pub(super) async fn holder_history(pool: &Pool, administration: &str, holder: &str) -> Result<HolderHistory> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(risk::HOLDER_HISTORY).await?;
    let row = client.query_one(&stmt, &[&administration, &holder]).await?;
    Ok(HolderHistory { transports: row.get(0), irregularities: row.get(1) })
}

pub(super) async fn results(pool: &Pool, administration: &str) -> Result<Vec<InspectionResult>> {
    docs(pool, risk::RESULTS, &[&administration]).await
}

pub(super) async fn latest_model(pool: &Pool, administration: &str) -> Result<Option<StoredModel>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(risk::LATEST_MODEL).await?;
    let row = client.query_opt(&stmt, &[&administration]).await?;
    row.map(|r| risk::model_with(r.get(0), r.get(1))).transpose()
}

pub(super) async fn models(pool: &Pool, administration: &str) -> Result<Vec<StoredModel>> {
    docs(pool, risk::MODELS, &[&administration]).await
}

pub(super) async fn policies(pool: &Pool, administration: &str) -> Result<Vec<PolicyRecord>> {
    docs(pool, risk::POLICIES, &[&administration]).await
}

/// Every server key, oldest first (public parts).
pub(super) async fn server_keys(pool: &Pool) -> Result<Vec<crate::PublicKey>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(rows::keys::ALL).await?;
    client.query(&stmt, &[]).await?.iter().map(rows::keys::public).collect()
}

/// Every signing key of the holder, oldest first.
pub(super) async fn holder_keys(pool: &Pool, tir_id: &str) -> Result<Vec<crate::HolderKey>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(rows::keys::HOLDER_KEYS).await?;
    client.query(&stmt, &[&tir_id]).await?.iter().map(rows::keys::holder_key).collect()
}

/// The latest signed head.
pub(super) async fn signed_head(pool: &Pool) -> Result<Option<crate::SignedHead>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(rows::keys::HEAD_LATEST).await?;
    client.query_opt(&stmt, &[]).await?.as_ref().map(rows::keys::head).transpose()
}

/// The party's push endpoint (`None`), or every active one.
pub(super) async fn push_endpoints(pool: &Pool, party: Option<&str>) -> Result<Vec<crate::PushEndpoint>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(&crate::push::endpoints_sql(party.is_some())).await?;
    let rows = match party {
        Some(party) => client.query(&stmt, &[&party]).await?,
        None => client.query(&stmt, &[]).await?,
    };
    rows.iter().map(crate::push::endpoint).collect()
}

/// The party's delivery attempts of items in (after, through].
pub(super) async fn push_attempts(
    pool: &Pool,
    party: &str,
    after: i64,
    through: i64,
) -> Result<Vec<crate::PushAttempt>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(&crate::push::attempts_sql()).await?;
    client.query(&stmt, &[&party, &after, &through]).await?.iter().map(crate::push::attempt).collect()
}

/// `Store::arrivals` on PostgreSQL.
pub(super) async fn arrivals(pool: &Pool, country: &str, limit: usize) -> Result<Vec<crate::console::Arrival>> {
    let client = pool.get().await.map_err(pool_error)?;
    let here = crate::console::country(country)?;
    let stmt = client.prepare_cached(crate::console::sql::ARRIVALS_POSTGRES).await?;
    let found = client.query(&stmt, &[&country, &crate::sql_limit(limit)]).await?;
    found
        .iter()
        .map(|r| {
            let fields: [Option<&str>; 6] = [r.get(3), r.get(4), r.get(5), r.get(6), r.get(7), r.get(8)];
            let ahead = u32::try_from(r.get::<_, i32>(1)).unwrap_or(0);
            crate::console::Arrival::from_fields(here, r.get(2), r.get(0), ahead, fields)
        })
        .collect()
}

/// `Store::crossing_figures` on PostgreSQL.
pub(super) async fn crossing_figures(
    pool: &Pool,
    country: Option<&str>,
    since_ms: i64,
    sample: usize,
) -> Result<crate::console::CrossingFigures> {
    use crate::console::{self, PairSample, sql};
    let client = pool.get().await.map_err(pool_error)?;
    let of_country = country.is_some();
    let (since_day, since_ms) = console::window(since_ms);
    let pairs_stmt = client.prepare_cached(&sql::pairs(of_country)).await?;
    let daily_stmt = client.prepare_cached(&sql::daily(of_country)).await?;
    let (counted, days) = match country {
        Some(country) => {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&since_day, &country];
            futures_util::future::try_join(client.query(&pairs_stmt, &params), client.query(&daily_stmt, &params))
                .await?
        }
        None => {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&since_day];
            futures_util::future::try_join(client.query(&pairs_stmt, &params), client.query(&daily_stmt, &params))
                .await?
        }
    };
    let sample_stmt = client.prepare_cached(sql::SAMPLE).await?;
    let limit = crate::sql_limit(sample);
    let (client, sample_stmt) = (&client, &sample_stmt);
    let waits = futures_util::future::try_join_all(counted.iter().map(|r| {
        let (exit, entry): (String, String) = (r.get(0), r.get(1));
        async move { client.query(sample_stmt, &[&exit, &entry, &since_ms, &limit]).await }
    }))
    .await?;
    let mut pairs = Vec::with_capacity(counted.len());
    for (r, waits) in counted.iter().zip(waits) {
        pairs.push(PairSample {
            exit: console::country(r.get(0))?,
            entry: console::country(r.get(1))?,
            count: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
            seconds: waits.iter().map(|w| console::wait_seconds(w.get(0))).collect(),
        });
    }
    let daily = days.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1), r.get::<_, i64>(2))).collect();
    let recent_stmt = client.prepare_cached(&sql::recent(of_country)).await?;
    let rows = match country {
        Some(country) => client.query(&recent_stmt, &[&since_ms, &country]).await?,
        None => client.query(&recent_stmt, &[&since_ms]).await?,
    };
    let mut recent = Vec::with_capacity(rows.len());
    for r in &rows {
        recent.push(console::CrossingRow {
            reference: r.get(0),
            operation: u16::try_from(r.get::<_, i32>(1)).map_err(|_| crate::corrupt("crossing operation"))?,
            exit: console::country(r.get(2))?,
            entry: console::country(r.get(3))?,
            exit_office: r.get(4),
            entry_office: r.get(5),
            terminated_at_ms: r.get(6),
            started_at_ms: r.get(7),
        });
    }
    Ok(console::assemble(pairs, daily, recent))
}

/// `Store::console_session` on PostgreSQL.
pub(super) async fn console_session(pool: &Pool, id_hash: &str) -> Result<Option<crate::ConsoleSession>> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(crate::sessions::sql::READ).await?;
    Ok(client.query_opt(&stmt, &[&id_hash]).await?.map(|r| crate::ConsoleSession {
        token_hash: r.get(0),
        csrf: r.get(1),
        opened_ms: r.get(2),
        seen_ms: r.get(3),
    }))
}
