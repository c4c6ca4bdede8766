//! Where each (sender, message_id) answer lives in `idempotency_log`, held in
//! the writer's memory instead of a SQLite index.
//!
//! Message ids are chosen by clients, so an index on them takes each new
//! entry at a random place: one more page written per message to the WAL and
//! again by the checkpoint (a quarter of all WAL frames, docs/performance.md).
//! The log itself only appends. The map is rebuilt when the store opens from
//! `idempotency_keys`, a narrow table of (row id, key hash) kept beside the log
//! so that opening does not read every stored answer (16 bytes per answer in
//! memory); valid because this process's writer is the only one writing the
//! file, which the writer's other caches assume too.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::Result;
use crate::engine::{Reply, StoredReply};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS idempotency_log (
    id INTEGER PRIMARY KEY, sender TEXT NOT NULL, message_id TEXT NOT NULL,
    body_hash TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency_keys (id INTEGER PRIMARY KEY, key_hash INTEGER NOT NULL);
";

/// The first 8 bytes of SHA-256 over the key: stable across versions (it is
/// stored), and clients cannot make their ids collide on purpose.
fn key_hash(sender: &str, message_id: &str) -> i64 {
    let mut hasher = Sha256::new();
    hasher.update(sender.as_bytes());
    hasher.update([0]);
    hasher.update(message_id.as_bytes());
    let digest = hasher.finalize();
    i64::from_be_bytes(digest[..8].try_into().expect("SHA-256 has 32 bytes"))
}

#[derive(Default)]
pub struct IdempotencyIndex {
    /// key hash → row id, for committed rows.
    rows: HashMap<i64, i64>,
    /// Rows whose key hash is already in `rows` (distinct keys, same hash).
    collided: Vec<(i64, i64)>,
    /// Written by the open transaction: kept only if it commits.
    pending: Vec<(i64, i64)>,
}

impl IdempotencyIndex {
    /// Reads the log's key hashes; moves answers from the indexed table of
    /// earlier versions into the log first.
    pub fn load(conn: &Connection) -> Result<IdempotencyIndex> {
        conn.execute_batch(SCHEMA)?;
        migrate_indexed_table(conn)?;
        let mut index = IdempotencyIndex::default();
        let mut stmt = conn.prepare("SELECT key_hash, id FROM idempotency_keys")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            index.insert_committed(row.get(0)?, row.get(1)?);
        }
        Ok(index)
    }

    fn insert_committed(&mut self, hash: i64, id: i64) {
        match self.rows.entry(hash) {
            Entry::Vacant(slot) => {
                slot.insert(id);
            }
            Entry::Occupied(_) => self.collided.push((hash, id)),
        }
    }

    fn candidates(&self, hash: i64) -> impl Iterator<Item = i64> + '_ {
        let others = self.collided.iter().chain(&self.pending).filter(move |(h, _)| *h == hash).map(|(_, id)| *id);
        self.rows.get(&hash).copied().into_iter().chain(others)
    }

    pub fn get(&self, conn: &Connection, sender: &str, message_id: &str) -> Result<Option<StoredReply>> {
        let hash = key_hash(sender, message_id);
        for id in self.candidates(hash) {
            let row = conn
                .prepare_cached(
                    "SELECT sender, message_id, body_hash, status, body FROM idempotency_log WHERE id = ?1",
                )?
                .query_row([id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        StoredReply { body_hash: r.get(2)?, reply: Reply { status: r.get(3)?, body: r.get(4)? } },
                    ))
                })
                .optional()?;
            if let Some((s, m, stored)) = row
                && s == sender
                && m == message_id
            {
                return Ok(Some(stored));
            }
        }
        Ok(None)
    }

    pub fn put(
        &mut self,
        conn: &Connection,
        sender: &str,
        message_id: &str,
        body_hash: &str,
        reply: &Reply,
    ) -> Result<()> {
        let hash = key_hash(sender, message_id);
        let id = append(conn, hash, [sender, message_id, body_hash], reply.status.into(), &reply.body)?;
        self.pending.push((hash, id));
        Ok(())
    }

    pub fn committed(&mut self) {
        for (hash, id) in std::mem::take(&mut self.pending) {
            self.insert_committed(hash, id);
        }
    }

    pub fn rolled_back(&mut self) {
        self.pending.clear();
    }
}

/// Appends one answer (under `key`: sender, message id, body hash) to the log
/// and its key hash beside it; returns its row id.
fn append(conn: &Connection, hash: i64, key: [&str; 3], status: i64, body: &str) -> Result<i64> {
    let [sender, message_id, body_hash] = key;
    conn.prepare_cached(
        "INSERT INTO idempotency_log (sender, message_id, body_hash, status, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![sender, message_id, body_hash, status, body])?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached("INSERT INTO idempotency_keys (id, key_hash) VALUES (?1, ?2)")?.execute(params![id, hash])?;
    Ok(id)
}

/// Versions before the log kept answers in `idempotency`, indexed by
/// (sender, message_id): copied into the log once, in one transaction.
fn migrate_indexed_table(conn: &Connection) -> Result<()> {
    let old: Option<String> = conn
        .query_row("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'idempotency'", [], |r| r.get(0))
        .optional()?;
    if old.is_none() {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    {
        let mut read =
            tx.prepare("SELECT sender, message_id, body_hash, status, body FROM idempotency ORDER BY rowid")?;
        let mut rows = read.query([])?;
        while let Some(r) = rows.next()? {
            let (sender, message_id): (String, String) = (r.get(0)?, r.get(1)?);
            let (body_hash, status, body): (String, i64, String) = (r.get(2)?, r.get(3)?, r.get(4)?);
            append(&tx, key_hash(&sender, &message_id), [&sender, &message_id, &body_hash], status, &body)?;
        }
    }
    tx.execute_batch("DROP TABLE idempotency")?;
    tx.commit()?;
    tracing::info!("moved stored answers from the indexed idempotency table into idempotency_log");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: &str) -> Reply {
        Reply { status: 200, body: body.into() }
    }

    fn open() -> (Connection, IdempotencyIndex) {
        let conn = Connection::open_in_memory().unwrap();
        let index = IdempotencyIndex::load(&conn).unwrap();
        (conn, index)
    }

    #[test]
    fn answers_are_found_by_sender_and_message_id_and_survive_reloading() {
        let (conn, mut index) = open();
        index.put(&conn, "holder-1", "m-1", "h1", &reply("one")).unwrap();
        index.put(&conn, "holder-2", "m-1", "h2", &reply("two")).unwrap();
        // Visible inside the transaction that wrote them, before it commits.
        assert_eq!(index.get(&conn, "holder-1", "m-1").unwrap().unwrap().reply.body, "one");
        index.committed();
        assert_eq!(index.get(&conn, "holder-2", "m-1").unwrap().unwrap().body_hash, "h2");
        assert!(index.get(&conn, "holder-1", "m-2").unwrap().is_none());
        let reloaded = IdempotencyIndex::load(&conn).unwrap();
        assert_eq!(reloaded.get(&conn, "holder-1", "m-1").unwrap().unwrap().reply.body, "one");
        assert_eq!(reloaded.rows.len(), 2);
    }

    #[test]
    fn a_rolled_back_answer_is_forgotten() {
        let (conn, mut index) = open();
        conn.execute_batch("BEGIN").unwrap();
        index.put(&conn, "holder-1", "m-1", "h1", &reply("one")).unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
        index.rolled_back();
        assert!(index.get(&conn, "holder-1", "m-1").unwrap().is_none());
        index.put(&conn, "holder-1", "m-1", "h1", &reply("again")).unwrap();
        index.committed();
        assert_eq!(index.get(&conn, "holder-1", "m-1").unwrap().unwrap().reply.body, "again");
    }

    #[test]
    fn keys_with_the_same_hash_are_told_apart_by_their_stored_key() {
        let (conn, mut index) = open();
        // Another key filed under the same hash first, as a real collision would be.
        let hash = key_hash("holder-1", "m-1");
        append(&conn, hash, ["holder-9", "m-9", "h9"], 200, "nine").unwrap();
        index.put(&conn, "holder-1", "m-1", "h1", &reply("one")).unwrap();
        index.committed();
        let index = IdempotencyIndex::load(&conn).unwrap();
        assert_eq!(index.collided.len(), 1);
        assert_eq!(index.get(&conn, "holder-1", "m-1").unwrap().unwrap().reply.body, "one");
        assert!(index.get(&conn, "holder-9", "m-9").unwrap().is_none(), "looked up by its own hash, not found");
        assert_eq!(index.candidates(hash).count(), 2);
    }

    #[test]
    fn answers_in_the_indexed_table_of_earlier_versions_are_moved_into_the_log() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE idempotency (sender TEXT NOT NULL, message_id TEXT NOT NULL, body_hash TEXT NOT NULL,
                 status INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (sender, message_id));
             INSERT INTO idempotency VALUES ('holder-1', 'm-1', 'h1', 200, 'one'), ('office-1', 'm-2', 'h2', 409, 'no');",
        )
        .unwrap();
        let index = IdempotencyIndex::load(&conn).unwrap();
        let stored = index.get(&conn, "office-1", "m-2").unwrap().unwrap();
        assert_eq!((stored.body_hash.as_str(), stored.reply.status, stored.reply.body.as_str()), ("h2", 409, "no"));
        assert!(index.get(&conn, "holder-1", "m-1").unwrap().is_some());
        let old: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'idempotency'", [], |r| r.get(0)).unwrap();
        assert_eq!(old, 0);
    }
}
