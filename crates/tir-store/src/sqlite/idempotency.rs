//! Where each (sender, message_id) answer lives in `idempotency_log`, held in
//! the writer's memory instead of a SQLite index.
//!
//! Message ids are chosen by clients, so an index on them takes each new
//! entry at a random place: one more page written per message to the WAL and
//! again by the checkpoint (docs/performance.md).
//! The log itself only appends. The map is rebuilt when the store opens from
//! `idempotency_keys`, a narrow table of (row id, key hash) kept beside the log
//! so that opening does not read every stored answer (16 bytes per answer in
//! memory); valid because this process's writer is the only one writing the
//! file, which the writer's other caches assume too.
//!
//! Answers are stored LZ4-compressed, as a BLOB in the TEXT-declared `body`
//! column (SQLite keeps a value's own type). An answer repeats the transport
//! view, so few fitted a page as JSON, and it packs well (docs/performance.md).
//! Rows from earlier versions are TEXT and are read as they are.
//!
//! Refusals are pruned after their retention window (see `crate::retention`):
//! deleted from the log and `idempotency_keys` in one transaction, and from
//! the map once that has committed.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::engine::{Reply, StoredReply};
use crate::{Result, StoreError};

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
    /// Reads the log's key hashes (the schema is migrated before).
    pub fn load(conn: &Connection) -> Result<IdempotencyIndex> {
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
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get::<_, Value>(4)?))
                })
                .optional()?;
            if let Some((s, m, body_hash, status, body)) = row
                && s == sender
                && m == message_id
            {
                return Ok(Some(StoredReply { body_hash, reply: Reply { status, body: unpack(body)? } }));
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
        at_ms: i64,
    ) -> Result<()> {
        let hash = key_hash(sender, message_id);
        let id = append(conn, hash, [sender, message_id, body_hash], reply.status.into(), &reply.body, Some(at_ms))?;
        self.pending.push((hash, id));
        Ok(())
    }

    /// Deletes at most `limit` refusals stored before `stored_before_ms`,
    /// oldest first, inside the caller's transaction; returns their (key hash,
    /// row id), to `forget` once it has committed.
    pub fn prune(conn: &Connection, stored_before_ms: i64, limit: usize) -> Result<Vec<(i64, i64)>> {
        // `status <> 200` as the partial index idempotency_log_refusals has it.
        let expired: Vec<(i64, i64)> = conn
            .prepare_cached(
                "SELECT k.key_hash, l.id FROM idempotency_log l JOIN idempotency_keys k ON k.id = l.id
                 WHERE l.status <> 200 AND l.stored_at_ms < ?1 ORDER BY l.stored_at_ms, l.id LIMIT ?2",
            )?
            .query_map(params![stored_before_ms, crate::sql_limit(limit)], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut delete_log = conn.prepare_cached("DELETE FROM idempotency_log WHERE id = ?1")?;
        let mut delete_key = conn.prepare_cached("DELETE FROM idempotency_keys WHERE id = ?1")?;
        for (_, id) in &expired {
            delete_log.execute([id])?;
            delete_key.execute([id])?;
        }
        Ok(expired)
    }

    /// Drops committed rows (key hash, row id) that `prune` deleted.
    pub fn forget(&mut self, pruned: &[(i64, i64)]) {
        for &(hash, id) in pruned {
            if self.rows.get(&hash) == Some(&id) {
                self.rows.remove(&hash);
                // Another key filed under the same hash takes the free slot.
                if let Some(at) = self.collided.iter().position(|(h, _)| *h == hash) {
                    let (_, other) = self.collided.swap_remove(at);
                    self.rows.insert(hash, other);
                }
            } else {
                self.collided.retain(|&(h, i)| (h, i) != (hash, id));
            }
        }
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
/// and its key hash beside it; returns its row id. `stored_at_ms` is `None`
/// only when adopting an old file, whose log has no such column yet (the
/// migration that adds it dates the rows).
fn append(
    conn: &Connection,
    hash: i64,
    key: [&str; 3],
    status: i64,
    body: &str,
    stored_at_ms: Option<i64>,
) -> Result<i64> {
    let [sender, message_id, body_hash] = key;
    match stored_at_ms {
        Some(at_ms) => conn
            .prepare_cached(
                "INSERT INTO idempotency_log (sender, message_id, body_hash, status, body, stored_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![sender, message_id, body_hash, status, pack(body), at_ms])?,
        None => conn
            .prepare_cached(
                "INSERT INTO idempotency_log (sender, message_id, body_hash, status, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![sender, message_id, body_hash, status, pack(body)])?,
    };
    let id = conn.last_insert_rowid();
    conn.prepare_cached("INSERT INTO idempotency_keys (id, key_hash) VALUES (?1, ?2)")?.execute(params![id, hash])?;
    Ok(id)
}

/// Larger than any answer the server sends; a bigger stored size is corruption.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// The answer's length (4 bytes, little-endian), then its LZ4 block.
fn pack(body: &str) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size(body.as_bytes())
}

fn unpack(stored: Value) -> Result<String> {
    let corrupt = |what: String| StoreError::Corrupt(format!("stored answer: {what}"));
    let raw = match stored {
        Value::Text(text) => return Ok(text),
        Value::Blob(blob) => {
            let (len, block) =
                blob.split_first_chunk::<4>().ok_or_else(|| corrupt("shorter than its length".into()))?;
            let len = u32::from_le_bytes(*len) as usize;
            if len > MAX_ANSWER_BYTES {
                return Err(corrupt(format!("length {len} is too large")));
            }
            lz4_flex::block::decompress(block, len).map_err(|e| corrupt(e.to_string()))?
        }
        other => return Err(corrupt(format!("unexpected type {:?}", other.data_type()))),
    };
    String::from_utf8(raw).map_err(|e| corrupt(e.to_string()))
}

/// Versions before the log kept answers in `idempotency`, indexed by
/// (sender, message_id): copied into the log once, inside the caller's
/// transaction (the adoption of such a database), then dropped.
pub(super) fn move_indexed_table(conn: &Connection) -> Result<()> {
    {
        let mut read =
            conn.prepare("SELECT sender, message_id, body_hash, status, body FROM idempotency ORDER BY rowid")?;
        let mut rows = read.query([])?;
        while let Some(r) = rows.next()? {
            let (sender, message_id): (String, String) = (r.get(0)?, r.get(1)?);
            let (body_hash, status, body): (String, i64, String) = (r.get(2)?, r.get(3)?, r.get(4)?);
            append(conn, key_hash(&sender, &message_id), [&sender, &message_id, &body_hash], status, &body, None)?;
        }
    }
    conn.execute_batch("DROP TABLE idempotency")?;
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
        super::super::schema::migrate(&conn).unwrap();
        let index = IdempotencyIndex::load(&conn).unwrap();
        (conn, index)
    }

    #[test]
    fn answers_are_found_by_sender_and_message_id_and_survive_reloading() {
        let (conn, mut index) = open();
        index.put(&conn, "holder-1", "m-1", "h1", &reply("one"), 0).unwrap();
        index.put(&conn, "holder-2", "m-1", "h2", &reply("two"), 0).unwrap();
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
        index.put(&conn, "holder-1", "m-1", "h1", &reply("one"), 0).unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
        index.rolled_back();
        assert!(index.get(&conn, "holder-1", "m-1").unwrap().is_none());
        index.put(&conn, "holder-1", "m-1", "h1", &reply("again"), 0).unwrap();
        index.committed();
        assert_eq!(index.get(&conn, "holder-1", "m-1").unwrap().unwrap().reply.body, "again");
    }

    #[test]
    fn keys_with_the_same_hash_are_told_apart_by_their_stored_key() {
        let (conn, mut index) = open();
        // Another key filed under the same hash first, as a real collision would be.
        let hash = key_hash("holder-1", "m-1");
        append(&conn, hash, ["holder-9", "m-9", "h9"], 200, "nine", Some(0)).unwrap();
        index.put(&conn, "holder-1", "m-1", "h1", &reply("one"), 0).unwrap();
        index.committed();
        let index = IdempotencyIndex::load(&conn).unwrap();
        assert_eq!(index.collided.len(), 1);
        assert_eq!(index.get(&conn, "holder-1", "m-1").unwrap().unwrap().reply.body, "one");
        assert!(index.get(&conn, "holder-9", "m-9").unwrap().is_none(), "looked up by its own hash, not found");
        assert_eq!(index.candidates(hash).count(), 2);
    }

    #[test]
    fn answers_are_stored_compressed_and_text_rows_of_earlier_versions_still_read() {
        let (conn, mut index) = open();
        let body = r#"{"transport":{"operations":[{"state":"pending"},{"state":"pending"}]}}"#.repeat(10);
        index.put(&conn, "holder-1", "m-1", "h1", &reply(&body), 0).unwrap();
        index.committed();
        let (kind, len): (String, i64) = conn
            .query_row("SELECT typeof(body), length(body) FROM idempotency_log", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(kind, "blob");
        assert!((len as usize) < body.len() / 4, "{len} bytes stored for {}", body.len());
        assert_eq!(index.get(&conn, "holder-1", "m-1").unwrap().unwrap().reply.body, body);

        conn.execute_batch(
            "INSERT INTO idempotency_log (id, sender, message_id, body_hash, status, body)
                 VALUES (7, 'office-1', 'm-2', 'h2', 409, '{\"error\":360}');",
        )
        .unwrap();
        conn.execute("INSERT INTO idempotency_keys (id, key_hash) VALUES (7, ?1)", [key_hash("office-1", "m-2")])
            .unwrap();
        let index = IdempotencyIndex::load(&conn).unwrap();
        let stored = index.get(&conn, "office-1", "m-2").unwrap().unwrap();
        assert_eq!((stored.reply.status, stored.reply.body.as_str()), (409, r#"{"error":360}"#));
    }

    fn refusal(body: &str) -> Reply {
        Reply { status: 409, body: body.into() }
    }

    fn prune(conn: &Connection, index: &mut IdempotencyIndex, before_ms: i64, limit: usize) -> usize {
        conn.execute_batch("BEGIN").unwrap();
        let pruned = IdempotencyIndex::prune(conn, before_ms, limit).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        index.forget(&pruned);
        pruned.len()
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn expired_refusals_are_pruned_oldest_first_in_bounded_passes_and_acceptances_stay() {
        let (conn, mut index) = open();
        index.put(&conn, "holder-1", "ok", "h", &reply("accepted"), 0).unwrap();
        for (i, at_ms) in [30, 10, 20, 40].into_iter().enumerate() {
            index.put(&conn, "holder-1", &format!("no-{i}"), "h", &refusal("refused"), at_ms).unwrap();
        }
        index.committed();
        assert_eq!(prune(&conn, &mut index, 35, 2), 2, "bounded by the limit");
        // The two oldest went: stored at 10 (no-1) and 20 (no-2).
        let left = |index: &IdempotencyIndex, id: &str| index.get(&conn, "holder-1", id).unwrap().is_some();
        assert_eq!(["no-0", "no-1", "no-2", "no-3"].map(|m| left(&index, m)), [true, false, false, true]);
        assert_eq!(prune(&conn, &mut index, 35, 2), 1, "stored at 30; 40 is not expired");
        assert_eq!(prune(&conn, &mut index, i64::MAX, 10), 1);
        assert!(left(&index, "ok"), "an acceptance is never pruned");
        assert_eq!((count(&conn, "idempotency_log"), count(&conn, "idempotency_keys")), (1, 1));
        let reloaded = IdempotencyIndex::load(&conn).unwrap();
        assert_eq!(reloaded.rows.len(), 1);
        // A pruned key can be stored again, and is found.
        index.put(&conn, "holder-1", "no-1", "h", &reply("accepted now"), 50).unwrap();
        index.committed();
        assert_eq!(index.get(&conn, "holder-1", "no-1").unwrap().unwrap().reply.body, "accepted now");
    }

    #[test]
    fn pruning_one_of_two_keys_with_the_same_hash_keeps_the_other_found() {
        let (conn, mut index) = open();
        let hash = key_hash("holder-1", "m-1");
        // Another key filed under the same hash first, then the real one: a collision.
        append(&conn, hash, ["holder-9", "m-9", "h9"], 409, "nine", Some(0)).unwrap();
        index.put(&conn, "holder-1", "m-1", "h1", &refusal("one"), 100).unwrap();
        index.committed();
        let mut index = IdempotencyIndex::load(&conn).unwrap();
        assert_eq!(index.collided.len(), 1);
        assert_eq!(prune(&conn, &mut index, 50, 10), 1, "only the row stored at 0");
        assert!(index.collided.is_empty());
        assert_eq!(index.get(&conn, "holder-1", "m-1").unwrap().unwrap().reply.body, "one");
        assert_eq!(prune(&conn, &mut index, 150, 10), 1);
        assert!(index.rows.is_empty() && index.get(&conn, "holder-1", "m-1").unwrap().is_none());
    }

    #[test]
    fn a_corrupt_stored_answer_is_an_error_not_a_panic() {
        for blob in [vec![1u8, 2], vec![255, 255, 255, 255, 0], vec![20, 0, 0, 0, 0xF0, 1, 2]] {
            let err = unpack(Value::Blob(blob.clone())).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{blob:?}: {err}");
        }
        assert!(matches!(unpack(Value::Integer(3)), Err(StoreError::Corrupt(_))));
        assert_eq!(unpack(Value::Blob(pack("é"))).unwrap(), "é");
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
        // A file with tables and no migration record is adopted, which moves them.
        super::super::schema::migrate(&conn).unwrap();
        let index = IdempotencyIndex::load(&conn).unwrap();
        let stored = index.get(&conn, "office-1", "m-2").unwrap().unwrap();
        assert_eq!((stored.body_hash.as_str(), stored.reply.status, stored.reply.body.as_str()), ("h2", 409, "no"));
        assert!(index.get(&conn, "holder-1", "m-1").unwrap().is_some());
        let old: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'idempotency'", [], |r| r.get(0)).unwrap();
        assert_eq!(old, 0);
    }
}
