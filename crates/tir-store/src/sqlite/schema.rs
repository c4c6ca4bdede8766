//! The SQLite schema: versioned migrations (see `crate::migrate`), and the
//! adoption of databases made before migrations were recorded.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::Result;
use crate::migrate::{self, Applied, Migration, migration};

pub(super) const MIGRATIONS: &[Migration] = &[
    migration!("sqlite", 1, "baseline", "0001_baseline.sql"),
    migration!("sqlite", 2, "refusal_retention", "0002_refusal_retention.sql"),
    migration!("sqlite", 3, "risk_profiles", "0003_risk_profiles.sql"),
    migration!("sqlite", 4, "risk_records", "0004_risk_records.sql"),
    migration!("sqlite", 5, "server_keys", "0005_server_keys.sql"),
    migration!("sqlite", 6, "holder_keys", "0006_holder_keys.sql"),
    migration!("sqlite", 7, "party_certificates", "0007_party_certificates.sql"),
    migration!("sqlite", 8, "console_indexes", "0008_console_indexes.sql"),
    migration!("sqlite", 9, "push", "0009_push.sql"),
    migration!("sqlite", 10, "fallback", "0010_fallback.sql"),
    migration!("sqlite", 11, "console_rows", "0011_console_rows.sql"),
    migration!("sqlite", 12, "risk_tallies", "0012_risk_tallies.sql"),
    migration!("sqlite", 13, "crossing_days", "0013_crossing_days.sql"),
    migration!("sqlite", 14, "console_sessions", "0014_console_sessions.sql"),
];

/// The version a database made before migrations is brought to on adoption.
const BASELINE: i64 = 1;

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)";

/// Brings the database to the latest schema. Each step holds SQLite's write
/// lock (BEGIN IMMEDIATE), so processes opening one file at once apply each
/// migration once.
pub(super) fn migrate(conn: &Connection) -> Result<()> {
    migrate::check_numbering(MIGRATIONS);
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    if !table_exists(&tx, "schema_migrations")? && has_tables(&tx)? {
        adopt(&tx)?;
    }
    tx.execute_batch(MIGRATIONS_TABLE)?;
    tx.commit()?;
    loop {
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let Some(&next) = migrate::pending(MIGRATIONS, &applied(&tx)?)?.first() else {
            return Ok(());
        };
        tx.execute_batch(next.sql)?;
        if next.name == "console_rows" {
            backfill_console_rows(&tx)?;
        }
        record(&tx, next)?;
        tx.commit()?;
        tracing::info!(version = next.version, name = next.name, "sqlite migration applied");
    }
}

/// A database from before migrations: brings it to `BASELINE` (what the
/// code of that time created, by checking, at each start) and records it.
fn adopt(tx: &Transaction<'_>) -> Result<()> {
    let baseline = &MIGRATIONS[(BASELINE - 1) as usize];
    // Creates the tables added since the database was made; written to run over any of them.
    tx.execute_batch(baseline.sql)?;
    if !column_exists(tx, "parties", "revoked_at_ms")? {
        tx.execute_batch("ALTER TABLE parties ADD COLUMN revoked_at_ms INTEGER")?;
    }
    if table_exists(tx, "idempotency")? {
        super::idempotency::move_indexed_table(tx)?;
    }
    tx.execute_batch(MIGRATIONS_TABLE)?;
    record(tx, baseline)?;
    tracing::info!(version = BASELINE, "adopted a sqlite database from before versioned migrations");
    Ok(())
}

/// Fills the arrivals' `ahead` and the crossings from the guarantees stored
/// before `console_rows` (the migration made the arrivals from the feeds), with
/// the functions the writer keeps them with.
fn backfill_console_rows(tx: &Transaction<'_>) -> Result<()> {
    let mut guarantees = tx.prepare("SELECT doc FROM guarantees")?;
    let mut docs = guarantees.query([])?;
    let mut update = tx.prepare(crate::console::sql::ARRIVAL_UPDATE)?;
    let mut insert = tx.prepare(crate::console::sql::CROSSING_INSERT)?;
    let mut filled = 0u64;
    while let Some(row) = docs.next()? {
        let doc: String = row.get(0)?;
        let guarantee: tir_model::guarantee::Guarantee = crate::rows::from_doc(&doc)?;
        let (arrivals, _) = crate::console::changes(None, &guarantee, std::iter::empty(), &[], 0);
        for a in arrivals {
            update.execute(params![a.ahead, a.country.as_str(), a.reference])?;
        }
        if guarantee.operations.iter().skip(1).any(|op| op.started_at.is_some()) {
            let events = super::reads::timeline(tx, guarantee.reference.as_str())?;
            for c in crate::console::crossings(&guarantee, &events) {
                super::tx::insert_crossing(&mut insert, &c)?;
            }
        }
        filled += 1;
    }
    tracing::info!(guarantees = filled, "console rows filled from the stored guarantees");
    Ok(())
}

fn record(tx: &Transaction<'_>, m: &Migration) -> Result<()> {
    tx.execute(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![m.version, m.name, m.checksum(), crate::now_ms()],
    )?;
    Ok(())
}

fn applied(conn: &Connection) -> Result<Vec<Applied>> {
    let mut stmt = conn.prepare("SELECT version, name, checksum FROM schema_migrations ORDER BY version")?;
    let rows = stmt.query_map([], |r| Ok(Applied { version: r.get(0)?, name: r.get(1)?, checksum: r.get(2)? }))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool> {
    let found: Option<i64> = conn
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |r| r.get(0))
        .optional()?;
    Ok(found.is_some())
}

/// Whether the file holds any table: one without `schema_migrations` predates migrations.
fn has_tables(conn: &Connection) -> Result<bool> {
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        [],
        |r| r.get(0),
    )?;
    Ok(count > 0)
}

fn column_exists(conn: &Connection, table: &str, column: &str) -> Result<bool> {
    let count: i64 =
        conn.query_row("SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2", [table, column], |r| r.get(0))?;
    Ok(count > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(conn: &Connection) -> Vec<i64> {
        applied(conn).unwrap().iter().map(|a| a.version).collect()
    }

    #[test]
    fn a_fresh_database_gets_every_migration_once() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        migrate(&conn).unwrap();
        let all: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(versions(&conn), all);
        assert!(column_exists(&conn, "parties", "revoked_at_ms").unwrap());
        assert!(table_exists(&conn, "idempotency_keys").unwrap());
    }

    #[test]
    fn a_migration_whose_recorded_checksum_differs_stops_the_open() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1", []).unwrap();
        let error = migrate(&conn).unwrap_err();
        assert!(error.to_string().contains("applied with another text"), "{error}");
    }
}
