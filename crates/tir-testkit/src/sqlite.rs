//! A SQLite database file for one test or one bench run.

use std::path::{Path, PathBuf};

/// A database file in a directory of its own, removed with the directory when
/// dropped (a panicking test included), so the `-wal` and `-shm` files beside
/// the database go too.
#[derive(Debug)]
pub struct TempSqlite {
    dir: PathBuf,
    path: PathBuf,
    url: String,
}

impl TempSqlite {
    /// `prefix` names the directory, so a leftover says which test made it.
    pub fn new(prefix: &str) -> std::io::Result<TempSqlite> {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{}", std::process::id(), crate::random_hex(6)));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("tirhub.db");
        let url = format!("sqlite://{}", path.display());
        Ok(TempSqlite { dir, path, url })
    }

    /// `sqlite://PATH`, as `tir_store::open` and `tirhub --db` take it.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding the database and its WAL.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_goes_with_the_database_and_its_wal() {
        let db = TempSqlite::new("tirhub-testkit").unwrap();
        assert!(db.url().starts_with("sqlite://") && db.url().ends_with("tirhub.db"));
        for suffix in ["", "-wal", "-shm"] {
            std::fs::write(format!("{}{suffix}", db.path().display()), b"x").unwrap();
        }
        let dir = db.dir().to_owned();
        drop(db);
        assert!(!dir.exists());
    }
}
