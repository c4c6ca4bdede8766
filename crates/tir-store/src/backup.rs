//! Online backup of an SQLite store: a consistent copy taken while the server
//! runs. PostgreSQL has its own tools (pg_dump; docs/reliability.md).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::{Result, StoreError};

/// Writes a consistent copy of the SQLite database at `db` to `out` (which
/// must not exist) with `VACUUM INTO`: it reads one snapshot, so writers go on
/// and the copy holds every transaction committed before it began, and none
/// after. The copy is compact (no WAL, free pages dropped).
pub fn backup_sqlite(db: &Path, out: &Path) -> Result<()> {
    if !db.exists() {
        return Err(StoreError::BadUrl(format!("no database at {}", db.display())));
    }
    if out.exists() {
        return Err(StoreError::Write(format!("{} exists: a backup never overwrites", out.display())));
    }
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let out = out.to_str().ok_or_else(|| StoreError::Write(format!("{} is not UTF-8", out.display())))?;
    conn.execute("VACUUM INTO ?1", [out])?;
    Ok(())
}
