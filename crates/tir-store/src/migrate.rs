//! Versioned schema migrations, shared by both backends.
//!
//! Each backend lists its migrations (numbered SQL files under
//! `migrations/<backend>/`, embedded at build time) and records those it has
//! applied in `schema_migrations (version, name, checksum, applied_at_ms)`.
//! Each migration runs in its own transaction with its record. An applied
//! migration whose text has changed since is an error, and so is a database
//! at a version this build does not know: both mean the code and the
//! database disagree about the schema.
//!
//! Written here rather than taken from refinery or sqlx: refinery 0.10 wants
//! rusqlite <= 0.41 (this workspace links 0.43, and two libsqlite3-sys cannot
//! link into one binary) and Rust 1.92, and sqlx would bring a second
//! database stack of its own.

use crate::{Result, StoreError};

/// One schema change, as embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    /// SHA-256 of the SQL text, hex.
    pub(crate) fn checksum(&self) -> String {
        crate::journal::body_hash(self.sql)
    }
}

/// Embeds `migrations/<dir>/<file>` as migration `version`.
macro_rules! migration {
    ($dir:literal, $version:literal, $name:literal, $file:literal) => {
        $crate::migrate::Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $dir, "/", $file)),
        }
    };
}
pub(crate) use migration;

/// A row of `schema_migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    pub version: i64,
    pub name: String,
    pub checksum: String,
}

/// Checks what the database has applied against `known`; returns the
/// migrations still to apply, in order.
pub(crate) fn pending<'a>(known: &'a [Migration], applied: &[Applied]) -> Result<Vec<&'a Migration>> {
    for a in applied {
        let Some(m) = known.iter().find(|m| m.version == a.version) else {
            return Err(StoreError::Migration(format!(
                "the database has migration {} ({}), which this tirhub does not know: it was written by a newer version",
                a.version, a.name
            )));
        };
        if m.checksum() != a.checksum {
            return Err(StoreError::Migration(format!(
                "migration {} ({}) was applied with another text than this tirhub has (checksum {} here, {} in the database)",
                m.version,
                m.name,
                m.checksum(),
                a.checksum
            )));
        }
    }
    Ok(known.iter().filter(|m| !applied.iter().any(|a| a.version == m.version)).collect())
}

/// Debug builds check that a list of migrations is numbered 1, 2, 3...
pub(crate) fn check_numbering(known: &[Migration]) {
    for (i, m) in known.iter().enumerate() {
        debug_assert_eq!(m.version, i as i64 + 1, "migration {} is out of sequence", m.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [Migration; 2] = [
        Migration { version: 1, name: "one", sql: "CREATE TABLE a (x INT);" },
        Migration { version: 2, name: "two", sql: "CREATE TABLE b (x INT);" },
    ];

    fn applied(m: &Migration) -> Applied {
        Applied { version: m.version, name: m.name.into(), checksum: m.checksum() }
    }

    #[test]
    fn only_migrations_not_yet_applied_are_pending() {
        let pending_versions =
            |applied: &[Applied]| -> Vec<i64> { pending(&KNOWN, applied).unwrap().iter().map(|m| m.version).collect() };
        assert_eq!(pending_versions(&[]), [1, 2]);
        assert_eq!(pending_versions(&[applied(&KNOWN[0])]), [2]);
        assert!(pending_versions(&[applied(&KNOWN[0]), applied(&KNOWN[1])]).is_empty());
    }

    #[test]
    fn an_applied_migration_whose_text_changed_is_an_error() {
        let changed = Applied { checksum: crate::journal::body_hash("CREATE TABLE a (y INT);"), ..applied(&KNOWN[0]) };
        let error = pending(&KNOWN, &[changed]).unwrap_err();
        assert!(error.to_string().contains("migration 1 (one) was applied with another text"), "{error}");
    }

    #[test]
    fn a_database_from_a_newer_version_is_an_error() {
        let newer = Applied { version: 3, name: "three".into(), checksum: "x".into() };
        let error = pending(&KNOWN, &[newer]).unwrap_err();
        assert!(error.to_string().contains("written by a newer version"), "{error}");
    }
}
