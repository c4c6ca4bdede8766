//! The PostgreSQL schema: versioned migrations (see `crate::migrate`), run
//! under an advisory lock so servers starting together apply each once, and
//! the adoption of databases made before migrations were recorded.

use tokio_postgres::Client;

use crate::Result;
use crate::migrate::{self, Applied, Migration, migration};

pub(super) const MIGRATIONS: &[Migration] = &[
    migration!("postgres", 1, "baseline", "0001_baseline.sql"),
    migration!("postgres", 2, "lz4_documents", "0002_lz4_documents.sql"),
    migration!("postgres", 3, "refusal_retention", "0003_refusal_retention.sql"),
    migration!("postgres", 4, "risk_profiles", "0004_risk_profiles.sql"),
    migration!("postgres", 5, "risk_records", "0005_risk_records.sql"),
    migration!("postgres", 6, "server_keys", "0006_server_keys.sql"),
    migration!("postgres", 7, "holder_keys", "0007_holder_keys.sql"),
    migration!("postgres", 8, "party_certificates", "0008_party_certificates.sql"),
    migration!("postgres", 9, "console_indexes", "0009_console_indexes.sql"),
    migration!("postgres", 10, "push", "0010_push.sql"),
    migration!("postgres", 11, "fallback", "0011_fallback.sql"),
    migration!("postgres", 12, "console_rows", "0012_console_rows.sql"),
    migration!("postgres", 13, "risk_tallies", "0013_risk_tallies.sql"),
    migration!("postgres", 14, "crossing_days", "0014_crossing_days.sql"),
    migration!("postgres", 15, "console_sessions", "0015_console_sessions.sql"),
];

/// The version a database made before migrations is brought to on adoption.
const BASELINE: i64 = 1;

/// Advisory lock key ("TIR" + purpose) held while migrating.
const LOCK_MIGRATIONS: i64 = 0x5449_5200_0002;

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)";

/// Brings the database to the latest schema under `LOCK_MIGRATIONS`, which
/// is released whatever happened: the connection goes back to the pool.
pub(super) async fn migrate(client: &mut Client) -> Result<()> {
    migrate::check_numbering(MIGRATIONS);
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_MIGRATIONS]).await?;
    let migrated = migrate_locked(client).await;
    client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_MIGRATIONS]).await?;
    migrated
}

async fn migrate_locked(client: &mut Client) -> Result<()> {
    if !table_exists(client, "schema_migrations").await? && has_tables(client).await? {
        adopt(client).await?;
    }
    client.batch_execute(MIGRATIONS_TABLE).await?;
    let applied = applied(client).await?;
    for m in migrate::pending(MIGRATIONS, &applied)? {
        let tx = client.transaction().await?;
        tx.batch_execute(m.sql).await?;
        if m.name == "console_rows" {
            backfill_console_rows(&tx).await?;
        }
        record(&tx, m).await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "postgres migration applied");
    }
    Ok(())
}

/// A database from before migrations: brings it to `BASELINE` (what the
/// code of that time created, by checking, at each start) and records it,
/// in one transaction.
async fn adopt(client: &mut Client) -> Result<()> {
    let baseline = &MIGRATIONS[(BASELINE - 1) as usize];
    let tx = client.transaction().await?;
    // Creates the tables added since the database was made; written to run over any of them.
    tx.batch_execute(baseline.sql).await?;
    // Parties of versions before revocation; ALTER TABLE locks the table, which runs once here.
    tx.batch_execute("ALTER TABLE parties ADD COLUMN IF NOT EXISTS revoked_at_ms BIGINT").await?;
    tx.batch_execute(MIGRATIONS_TABLE).await?;
    record(&tx, baseline).await?;
    tx.commit().await?;
    tracing::info!(version = BASELINE, "adopted a postgres database from before versioned migrations");
    Ok(())
}

/// Fills the arrivals' `ahead` and the crossings from the guarantees stored
/// before `console_rows` (the migration made the arrivals from the feeds), with
/// the functions the writer keeps them with, a page of guarantees at a time.
async fn backfill_console_rows(tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
    const PAGE: i64 = 1_000;
    let page =
        tx.prepare("SELECT reference, doc FROM guarantees WHERE reference > $1 ORDER BY reference LIMIT $2").await?;
    let update = tx.prepare(crate::console::sql::ARRIVAL_UPDATE).await?;
    let insert = tx.prepare(crate::console::sql::CROSSING_INSERT).await?;
    let events = tx.prepare(crate::rows::TIMELINE).await?;
    let (mut after, mut filled) = (String::new(), 0u64);
    loop {
        let rows = tx.query(&page, &[&after, &PAGE]).await?;
        let Some(last) = rows.last() else { break };
        after = last.get(0);
        for row in &rows {
            let guarantee: tir_model::guarantee::Guarantee = crate::rows::from_doc(row.get(1))?;
            let (arrivals, _) = crate::console::changes(None, &guarantee, std::iter::empty(), &[], 0);
            for a in arrivals {
                let ahead = a.ahead.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
                tx.execute(&update, &[&ahead, &a.country.as_str(), &a.reference]).await?;
            }
            if guarantee.operations.iter().skip(1).any(|op| op.started_at.is_some()) {
                let timeline = tx
                    .query(&events, &[&guarantee.reference.as_str()])
                    .await?
                    .iter()
                    .map(|r| {
                        crate::rows::event_from_columns(
                            r.get(0),
                            r.get(1),
                            r.get(2),
                            r.get(3),
                            r.get(4),
                            (r.get(5), r.get(6)),
                        )
                    })
                    .collect::<Result<Vec<_>>>()?;
                for c in crate::console::crossings(&guarantee, &timeline) {
                    let operation = i32::from(c.operation);
                    tx.execute(
                        &insert,
                        &[
                            &c.reference,
                            &operation,
                            &c.exit.as_str(),
                            &c.entry.as_str(),
                            &c.exit_office,
                            &c.entry_office,
                            &c.point(),
                            &c.terminated_at_ms,
                            &c.started_at_ms,
                        ],
                    )
                    .await?;
                }
            }
            filled += 1;
        }
    }
    tracing::info!(guarantees = filled, "console rows filled from the stored guarantees");
    Ok(())
}

async fn record(tx: &tokio_postgres::Transaction<'_>, m: &Migration) -> Result<()> {
    tx.execute(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at_ms) VALUES ($1, $2, $3, $4)",
        &[&m.version, &m.name, &m.checksum(), &crate::now_ms()],
    )
    .await?;
    Ok(())
}

async fn applied(client: &Client) -> Result<Vec<Applied>> {
    let rows = client.query("SELECT version, name, checksum FROM schema_migrations ORDER BY version", &[]).await?;
    Ok(rows.iter().map(|r| Applied { version: r.get(0), name: r.get(1), checksum: r.get(2) }).collect())
}

async fn table_exists(client: &Client, name: &str) -> Result<bool> {
    Ok(client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name]).await?.get(0))
}

/// Whether the current schema holds any table: one without `schema_migrations` predates migrations.
async fn has_tables(client: &Client) -> Result<bool> {
    Ok(client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema())", &[])
        .await?
        .get(0))
}
