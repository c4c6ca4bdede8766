//! SQLite backend: one writer thread doing group commit, a sync thread that
//! fsyncs the WAL and only then answers, and a small pool of read connections.
//!
//! The writer commits without waiting for the disk (synchronous=NORMAL) and
//! goes on with the next batch while the sync thread's fsync covers every
//! commit before it. No write is answered, and no read returns what it saw,
//! before the fsync that covers it (see `Durability`).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use tir_model::guarantee::{Event, Guarantee};
use tir_model::party::{HolderRecord, Office, Party};
use tir_model::{GuaranteeRef, OfficeCode, TirId};

use crate::engine::{BATCH_COMMANDS_MAX, Command, Reply, RevokedParty, StoredReply, Tx, run_batch};
use crate::journal::{GENESIS, JournalEntry, Verdict, Verifier};
use crate::{NewParty, NotificationRow, Result, Store, StoreError, Submission, corrupt, now_ms};

mod idempotency;
use idempotency::IdempotencyIndex;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, sender TEXT NOT NULL, message_type TEXT NOT NULL,
    message_id TEXT NOT NULL, reference TEXT NOT NULL, body TEXT NOT NULL, body_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS guarantees (
    reference TEXT PRIMARY KEY, holder TEXT NOT NULL, chain TEXT NOT NULL, state TEXT NOT NULL,
    doc TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL, kind TEXT NOT NULL,
    reference TEXT NOT NULL, payload TEXT NOT NULL, created_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_by_recipient ON outbox (recipient, cursor);
CREATE TABLE IF NOT EXISTS parties (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, country TEXT, tir_id TEXT,
    token_hash TEXT NOT NULL UNIQUE, created_at_ms INTEGER NOT NULL, revoked_at_ms INTEGER);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, reference TEXT NOT NULL, at_ms INTEGER NOT NULL, message_type TEXT NOT NULL,
    party TEXT NOT NULL, office TEXT, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_reference ON events (reference, id);
CREATE TABLE IF NOT EXISTS offices (code TEXT PRIMARY KEY, country TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS holders (tir_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
";

/// Read connections kept open between queries.
const READERS_MAX: usize = 8;

type Job = (Command, oneshot::Sender<Result<Reply>>);

pub struct SqliteStore {
    writer: mpsc::Sender<Job>,
    path: PathBuf,
    readers: Arc<Mutex<Vec<Connection>>>,
    durability: Arc<Durability>,
    /// Set on drop: stops the checkpoint thread.
    checkpoints: Arc<Checkpoints>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpoints.stop.store(true, Ordering::Relaxed);
    }
}

/// How often the WAL is copied back into the database file. Short passes keep
/// the backlog small, so the writer's own pass before a WAL reset is short too.
const CHECKPOINT_INTERVAL_MS: u64 = 20;
/// Past this size the writer lets the WAL start over (see `reset_wal_if_wanted`).
/// Under constant load PASSIVE checkpoints never find a moment when every frame
/// is copied, so without this the WAL would only grow. Measured at 5,000
/// messages/s (docs/performance.md): larger WALs made each reset and the p99 longer.
const WAL_BYTES_MAX: i64 = 32 << 20;

/// Shared by the writer and the checkpoint thread.
#[derive(Default)]
struct Checkpoints {
    /// Held while either runs a checkpoint, so neither waits in SQLite's busy handler.
    running: Mutex<()>,
    /// The WAL is past `WAL_BYTES_MAX`: the writer finishes the checkpoint between two batches.
    reset_wanted: AtomicBool,
    stop: AtomicBool,
}

/// Commit numbers shared by the writer, the sync thread and readers.
///
/// The writer counts a commit in `committing` before it runs COMMIT, so a
/// reader that saw a commit reads a count at least as high afterwards; it
/// then waits until `durable` (set by the sync thread after its fsync)
/// reaches that count.
#[derive(Default)]
struct Durability {
    committing: AtomicU64,
    durable: Mutex<u64>,
    synced: Condvar,
    /// An fsync failed: from then on nothing can be promised durable.
    failed: AtomicBool,
    /// The sync thread has ended (the writer stopped): nothing more becomes durable.
    closed: AtomicBool,
    /// Batches the sync thread has answered; the writer compares it with how many it sent.
    batches_answered: AtomicU64,
}

impl Durability {
    fn wait_for(&self, commit: u64) -> Result<()> {
        let mut durable = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        while *durable < commit {
            if self.failed.load(Ordering::SeqCst) {
                return Err(fsync_failed());
            }
            if self.closed.load(Ordering::SeqCst) {
                return Err(StoreError::Closed);
            }
            durable = self.synced.wait(durable).unwrap_or_else(|e| e.into_inner());
        }
        Ok(())
    }

    fn is_durable(&self, commit: u64) -> bool {
        *self.durable.lock().unwrap_or_else(|e| e.into_inner()) >= commit
    }

    fn publish(&self, commit: u64) {
        let mut durable = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        *durable = (*durable).max(commit);
        self.synced.notify_all();
    }

    fn fail(&self) {
        self.set_and_wake(&self.failed);
    }

    fn close(&self) {
        self.set_and_wake(&self.closed);
    }

    /// Sets `flag` under the lock waiters check it under, then wakes them.
    fn set_and_wake(&self, flag: &AtomicBool) {
        let _durable = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        flag.store(true, Ordering::SeqCst);
        self.synced.notify_all();
    }
}

fn fsync_failed() -> StoreError {
    StoreError::Write(
        "an fsync of the WAL failed: writes since the last good one may not be durable; restart the server".into(),
    )
}

/// Answers for one batch, sent once every commit up to `upto` is durable.
struct Synced {
    upto: u64,
    answers: Vec<(oneshot::Sender<Result<Reply>>, Result<Reply>)>,
}

/// Fsyncs the WAL once for all the batches queued since the last fsync, then
/// answers them. The writer meanwhile commits the next batch, so its CPU work
/// and the disk's work overlap.
fn sync_loop(wal_path: PathBuf, pending: std::sync::mpsc::Receiver<Synced>, durability: Arc<Durability>) {
    let mut wal = WalSync::new(wal_path);
    while let Ok(first) = pending.recv() {
        let mut batches = vec![first];
        batches.extend(pending.try_iter());
        let count = batches.len() as u64;
        wal.sync_and_answer(batches, &durability);
        durability.batches_answered.fetch_add(count, Ordering::SeqCst);
    }
    // A read still waiting for a commit the writer counted but never handed over.
    durability.close();
}

/// The writer's WAL, opened again for fsync: SQLite keeps the file (same
/// inode) while the writer's connection is open.
struct WalSync {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl WalSync {
    fn new(path: PathBuf) -> WalSync {
        WalSync { path, file: None }
    }

    /// Writes the WAL's data (and its size) to disk.
    fn sync(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(std::fs::File::open(&self.path)?);
        }
        self.file.as_ref().map_or(Ok(()), std::fs::File::sync_data)
    }

    /// Fsyncs unless every commit up to the batches' is durable already, then
    /// answers them; after a failed fsync, answers only errors.
    fn sync_and_answer(&mut self, batches: Vec<Synced>, durability: &Durability) {
        let upto = batches.iter().map(|b| b.upto).max().unwrap_or(0);
        let failed = || durability.failed.load(Ordering::SeqCst);
        let outcome = if !failed() && !durability.is_durable(upto) { self.sync() } else { Ok(()) };
        match outcome {
            Ok(()) if !failed() => {
                durability.publish(upto);
                for (waiter, answer) in batches.into_iter().flat_map(|b| b.answers) {
                    let _ = waiter.send(answer);
                }
            }
            outcome => {
                if let Err(e) = outcome {
                    tracing::error!(error = %e, path = %self.path.display(), "fsync of the WAL failed; no write is acknowledged from now on");
                }
                durability.fail();
                for (waiter, _) in batches.into_iter().flat_map(|b| b.answers) {
                    let _ = waiter.send(Err(fsync_failed()));
                }
            }
        }
    }
}

/// Runs a checkpoint; returns the number of frames in the WAL.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get::<_, i64>(1))
}

/// Copies the WAL into the database without blocking the writer (PASSIVE),
/// so commits only append to the WAL and fsync it.
fn checkpoint_loop(conn: Connection, shared: Arc<Checkpoints>) {
    use std::sync::atomic::Ordering::Relaxed;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap_or(4096);
    while !shared.stop.load(Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(CHECKPOINT_INTERVAL_MS));
        let _running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
        match checkpoint(&conn, "PASSIVE") {
            Ok(frames) if frames * page_size > WAL_BYTES_MAX => shared.reset_wanted.store(true, Relaxed),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying"),
        }
    }
}

/// Run by the writer between batches: it copies the few frames written since
/// the checkpoint thread's last pass, so the WAL is fully copied and the next
/// write transaction starts it over. PASSIVE, not RESTART: RESTART sleeps in
/// the busy handler while a reader is open; if a reader keeps the WAL from
/// starting over, the next pass asks again. Measured: RESTART resets took 10
/// to 13 ms, these 1 to 6 ms.
fn reset_wal_if_wanted(conn: &Connection, shared: &Checkpoints) {
    use std::sync::atomic::Ordering::Relaxed;
    if !shared.reset_wanted.swap(false, Relaxed) {
        return;
    }
    let _running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = checkpoint(conn, "PASSIVE") {
        tracing::warn!(error = %e, "WAL checkpoint before reset failed; retrying later");
        shared.reset_wanted.store(true, Relaxed);
    }
}

impl SqliteStore {
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        // The writer's WAL writes are gathered into one pwrite per commit (see walbuf).
        let vfs = crate::walbuf::register().map_err(corrupt)?;
        let conn = Connection::open_with_flags_and_vfs(&path, rusqlite::OpenFlags::default(), vfs)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(corrupt(format!("could not switch {} to WAL (got {mode})", path.display())));
        }
        // Checkpoints run on their own thread, off the writer's commit path. Pages are
        // read through mmap: about 20 % more messages/s than pread copies (docs/performance.md);
        // the cost is that a disk read error ends the process (SIGBUS) instead of failing a batch.
        // NORMAL: COMMIT writes the WAL frames but does not fsync them; the sync thread does,
        // before any answer. Checkpoints still fsync the WAL before copying it into the database.
        // A 4 MiB page cache: when a b-tree split swaps page numbers, SQLite scans the whole
        // cache at the next commit (pcache1TruncateUnsafe, 5.8 % of the writer with 16 MiB).
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-4096; PRAGMA wal_autocheckpoint=0; PRAGMA mmap_size=1073741824;
             PRAGMA journal_size_limit=67108864;",
        )?;
        conn.execute_batch(SCHEMA)?;
        add_revocation_column(&conn)?;
        let idempotency = IdempotencyIndex::load(&conn)?;
        let (writer, jobs) = mpsc::channel::<Job>(BATCH_COMMANDS_MAX * 4);
        let checkpoints = Arc::new(Checkpoints::default());
        let (for_writer, for_checkpointer) = (checkpoints.clone(), checkpoints.clone());
        let durability = Arc::new(Durability::default());
        let (to_sync, pending) = std::sync::mpsc::channel::<Synced>();
        let mut wal_path = path.clone().into_os_string();
        wal_path.push("-wal");
        let wal_path = PathBuf::from(wal_path);
        let writer_wal = WalSync::new(wal_path.clone());
        let for_sync = durability.clone();
        std::thread::Builder::new()
            .name("tirhub-sqlite-sync".into())
            .spawn(move || sync_loop(wal_path, pending, for_sync))
            .map_err(|e| corrupt(format!("cannot start the sync thread: {e}")))?;
        let tx = SqliteTx { conn, cache: Cache::default(), idempotency, durability: durability.clone() };
        std::thread::Builder::new()
            .name("tirhub-sqlite-writer".into())
            .spawn(move || writer_loop(tx, jobs, (to_sync, writer_wal), for_writer))
            .map_err(|e| corrupt(format!("cannot start the writer thread: {e}")))?;
        let checkpointer = Connection::open(&path)?;
        checkpointer.busy_timeout(std::time::Duration::from_secs(10))?;
        std::thread::Builder::new()
            .name("tirhub-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, for_checkpointer))
            .map_err(|e| corrupt(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(SqliteStore { writer, path, readers: Arc::new(Mutex::new(Vec::new())), durability, checkpoints })
    }

    async fn write(&self, command: Command) -> Result<Reply> {
        let (done, answer) = oneshot::channel();
        self.writer.send((command, done)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read connection and returns its result once everything it
    /// could have seen is durable.
    async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> Result<T> + Send + 'static) -> Result<T> {
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
    async fn read_unsynced<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.readers.clone();
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

fn writer_loop(
    mut tx: SqliteTx,
    mut jobs: mpsc::Receiver<Job>,
    (to_sync, mut wal): (std::sync::mpsc::Sender<Synced>, WalSync),
    checkpoints: Arc<Checkpoints>,
) {
    let durability = tx.durability.clone();
    let mut batches_sent = 0;
    while let Some(first) = jobs.blocking_recv() {
        reset_wal_if_wanted(&tx.conn, &checkpoints);
        let mut batch = vec![first];
        while batch.len() < BATCH_COMMANDS_MAX {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (commands, waiters): (Vec<Command>, Vec<_>) = batch.into_iter().unzip();
        let results = write_isolated(&commands, |batch| write_batch(&mut tx, batch));
        // Every commit so far has been handed to the kernel (walbuf passes a commit on
        // with its last frame); the sync thread answers once they are on disk.
        let upto = durability.committing.load(Ordering::SeqCst);
        let synced = Synced { upto, answers: waiters.into_iter().zip(results).collect() };
        if jobs.is_empty() && durability.batches_answered.load(Ordering::SeqCst) == batches_sent {
            // Nothing to overlap with: fsync here and save a thread wake-up (about
            // 100 µs per message at low load, store/submit_sqlite/1_task).
            wal.sync_and_answer(vec![synced], &durability);
            continue;
        }
        batches_sent += 1;
        if to_sync.send(synced).is_err() {
            tracing::error!("the sync thread has stopped; the writer stops");
            return;
        }
    }
}

/// Writes the batch; if it fails, rolls back and writes each command alone,
/// so one failing write cannot fail the others batched with it.
fn write_isolated(commands: &[Command], mut write: impl FnMut(&[Command]) -> Result<Vec<Reply>>) -> Vec<Result<Reply>> {
    let failed = match write(commands) {
        Ok(replies) => return replies.into_iter().map(Ok).collect(),
        Err(e) => e,
    };
    if commands.len() > 1 {
        tracing::warn!(error = %failed, commands = commands.len(), "sqlite batch rolled back; writing its commands one by one");
    }
    if commands.len() == 1 {
        tracing::error!(error = %failed, "sqlite write rolled back");
        return vec![Err(StoreError::Write(failed.to_string()))];
    }
    commands
        .chunks(1)
        .map(|one| match write(one) {
            Ok(mut replies) => Ok(replies.remove(0)),
            Err(e) => Err(StoreError::Write(e.to_string())),
        })
        .collect()
}

fn write_batch(tx: &mut SqliteTx, commands: &[Command]) -> Result<Vec<Reply>> {
    let committed = block_on(run_batch(tx, commands, now_ms()));
    if committed.is_err() {
        tx.cache.clear();
        tx.idempotency.rolled_back();
        if !tx.conn.is_autocommit() {
            let _ = tx.conn.execute_batch("ROLLBACK");
        }
    }
    committed
}

/// The SQLite transaction's futures never wait: poll once.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("SQLite transaction futures complete without waiting"),
    }
}

/// Rows kept by the writer between batches. Only this writer changes the
/// file, so what it caches is current; a rolled-back batch clears the cache.
const CACHED_GUARANTEES_MAX: usize = 50_000;

struct SqliteTx {
    conn: Connection,
    cache: Cache,
    idempotency: IdempotencyIndex,
    durability: Arc<Durability>,
}

#[derive(Default)]
struct Cache {
    guarantees: HashMap<String, Guarantee>,
    offices: HashMap<OfficeCode, Office>,
    holders: HashMap<TirId, HolderRecord>,
}

impl Cache {
    fn clear(&mut self) {
        self.guarantees.clear();
        self.offices.clear();
        self.holders.clear();
    }
}

/// Databases from before party revocation lack the column.
fn add_revocation_column(conn: &Connection) -> Result<()> {
    let present: i64 =
        conn.query_row("SELECT count(*) FROM pragma_table_info('parties') WHERE name = 'revoked_at_ms'", [], |r| {
            r.get(0)
        })?;
    if present == 0 {
        conn.execute_batch("ALTER TABLE parties ADD COLUMN revoked_at_ms INTEGER")?;
    }
    Ok(())
}

/// The JSON document `sql` selects for one key, parsed.
fn doc_by_key<T: serde::de::DeserializeOwned>(conn: &Connection, sql: &str, key: &str) -> Result<Option<T>> {
    let doc: Option<String> = conn.prepare_cached(sql)?.query_row([key], |r| r.get(0)).optional()?;
    doc.map(|d| from_doc(&d)).transpose()
}

/// Documents for `keys`, from the writer's cache or else the database (then cached).
fn cached<K: std::hash::Hash + Eq + Clone, V: serde::de::DeserializeOwned + Clone>(
    conn: &Connection,
    cache: &mut HashMap<K, V>,
    sql: &str,
    keys: &[K],
    as_str: impl Fn(&K) -> &str,
) -> Result<Vec<V>> {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(value) = cache.get(key) {
            out.push(value.clone());
            continue;
        }
        if let Some(value) = doc_by_key::<V>(conn, sql, as_str(key))? {
            cache.insert(key.clone(), value.clone());
            out.push(value);
        }
    }
    Ok(out)
}

fn from_doc<T: serde::de::DeserializeOwned>(doc: &str) -> Result<T> {
    serde_json::from_str(doc).map_err(corrupt)
}

fn to_doc<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain types serialize")
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JournalEntry> {
    Ok(JournalEntry {
        seq: r.get(0)?,
        at_ms: r.get(1)?,
        sender: r.get(2)?,
        message_type: r.get(3)?,
        message_id: r.get(4)?,
        reference: r.get(5)?,
        body: r.get(6)?,
        body_hash: r.get(7)?,
        prev_hash: r.get(8)?,
        hash: r.get(9)?,
    })
}

const JOURNAL_COLUMNS: &str =
    "seq, at_ms, sender, message_type, message_id, reference, body, body_hash, prev_hash, hash";

#[async_trait]
impl Tx for SqliteTx {
    async fn begin(&mut self, _commands: &[Command]) -> Result<(i64, String)> {
        // SQLite's single write lock, held to COMMIT.
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let head = self
            .conn
            .prepare_cached("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(head.unwrap_or((0, GENESIS.to_owned())))
    }

    async fn commit(&mut self) -> Result<()> {
        if self.durability.failed.load(Ordering::SeqCst) {
            return Err(fsync_failed());
        }
        // Counted before it becomes visible: see `Durability`.
        self.durability.committing.fetch_add(1, Ordering::SeqCst);
        self.conn.execute_batch("COMMIT")?;
        self.idempotency.committed();
        Ok(())
    }

    async fn journal_append(&mut self, e: &JournalEntry) -> Result<()> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO journal ({JOURNAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))?
            .execute(params![
                e.seq,
                e.at_ms,
                e.sender,
                e.message_type,
                e.message_id,
                e.reference,
                e.body,
                e.body_hash,
                e.prev_hash,
                e.hash
            ])?;
        Ok(())
    }

    async fn idempotency_get(&mut self, sender: &str, message_id: &str) -> Result<Option<StoredReply>> {
        self.idempotency.get(&self.conn, sender, message_id)
    }

    async fn idempotency_put(&mut self, sender: &str, message_id: &str, body_hash: &str, reply: &Reply) -> Result<()> {
        self.idempotency.put(&self.conn, sender, message_id, body_hash, reply)
    }

    async fn guarantee_get(&mut self, reference: &str) -> Result<Option<Guarantee>> {
        // Taken out: the engine puts the new version back, a rejection reloads it.
        if let Some(cached) = self.cache.guarantees.remove(reference) {
            return Ok(Some(cached));
        }
        doc_by_key(&self.conn, "SELECT doc FROM guarantees WHERE reference = ?1", reference)
    }

    async fn guarantee_put(&mut self, g: Guarantee, at_ms: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO guarantees (reference, holder, chain, state, doc, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (reference) DO UPDATE SET state = excluded.state, doc = excluded.doc, updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![g.reference.as_str(), g.holder.as_str(), g.chain, g.state.as_str(), to_doc(&g), at_ms])?;
        if self.cache.guarantees.len() >= CACHED_GUARANTEES_MAX {
            self.cache.guarantees.clear();
        }
        self.cache.guarantees.insert(g.reference.to_string(), g);
        Ok(())
    }

    async fn offices_get(&mut self, codes: &[OfficeCode]) -> Result<Vec<Office>> {
        cached(&self.conn, &mut self.cache.offices, "SELECT doc FROM offices WHERE code = ?1", codes, |c| c.as_str())
    }

    async fn holders_get(&mut self, tir_ids: &[TirId]) -> Result<Vec<HolderRecord>> {
        cached(&self.conn, &mut self.cache.holders, "SELECT doc FROM holders WHERE tir_id = ?1", tir_ids, |t| {
            t.as_str()
        })
    }

    async fn outbox_push(
        &mut self,
        recipient: &str,
        kind: &str,
        reference: &str,
        payload: &str,
        at_ms: i64,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO outbox (recipient, kind, reference, payload, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![recipient, kind, reference, payload, at_ms])?;
        Ok(())
    }

    async fn event_push(&mut self, reference: &str, e: &Event) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO events (reference, at_ms, message_type, party, office, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                reference,
                e.at.unix_ms(),
                e.message_type,
                e.party,
                e.office.as_ref().map(|o| o.as_str()),
                e.summary
            ])?;
        Ok(())
    }

    async fn party_revoke(&mut self, id: &str, at_ms: i64) -> Result<Option<RevokedParty>> {
        let now = self
            .conn
            .prepare_cached("UPDATE parties SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL")?
            .execute(params![id, at_ms])?;
        let row = self
            .conn
            .prepare_cached("SELECT kind, name, revoked_at_ms FROM parties WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        Ok(row.map(|(kind, name, revoked_at_ms)| RevokedParty { kind, name, revoked_at_ms, now: now == 1 }))
    }

    async fn party_insert(&mut self, p: &NewParty, at_ms: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO parties (id, kind, name, country, tir_id, token_hash, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                p.id,
                p.kind.as_str(),
                p.name,
                p.country.map(|c| c.to_string()),
                p.tir_id.as_ref().map(|t| t.to_string()),
                p.token_hash,
                at_ms
            ])?;
        Ok(())
    }

    async fn office_put(&mut self, office: &Office) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO offices (code, country, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT (code) DO UPDATE SET country = excluded.country, doc = excluded.doc",
            )?
            .execute(params![office.code.as_str(), office.country.as_str(), to_doc(office)])?;
        self.cache.offices.insert(office.code.clone(), office.clone());
        Ok(())
    }

    async fn holder_put(&mut self, holder: &HolderRecord) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO holders (tir_id, doc) VALUES (?1, ?2) ON CONFLICT (tir_id) DO UPDATE SET doc = excluded.doc")?
            .execute(params![holder.tir_id.as_str(), to_doc(holder)])?;
        self.cache.holders.insert(holder.tir_id.clone(), holder.clone());
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn submit(&self, submission: Submission) -> Result<Reply> {
        self.write(Command::Message(Box::new(submission))).await
    }

    async fn create_party(&self, party: NewParty) -> Result<()> {
        self.write(Command::CreateParty(party)).await.map(drop)
    }

    async fn put_office(&self, office: Office) -> Result<()> {
        self.write(Command::PutOffice(office)).await.map(drop)
    }

    async fn put_holder(&self, holder: HolderRecord) -> Result<()> {
        self.write(Command::PutHolder(holder)).await.map(drop)
    }

    async fn revoke_party(&self, id: &str) -> Result<Reply> {
        self.write(Command::RevokeParty(id.to_owned())).await
    }

    async fn party_by_token_hash(&self, token_hash: &str) -> Result<Option<Party>> {
        let token_hash = token_hash.to_owned();
        // A token is known only from its party's creation answer, sent after the fsync.
        self.read_unsynced(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT id, kind, country, tir_id FROM parties WHERE token_hash = ?1 AND revoked_at_ms IS NULL",
                )?
                .query_row([token_hash], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .optional()?;
            row.map(|(id, kind, country, tir_id)| crate::party_from_columns(id, &kind, country, tir_id)).transpose()
        })
        .await
    }

    async fn guarantee(&self, reference: &GuaranteeRef) -> Result<Option<Guarantee>> {
        let key = reference.to_string();
        self.read(move |c| doc_by_key(c, "SELECT doc FROM guarantees WHERE reference = ?1", &key)).await
    }

    async fn office(&self, code: &OfficeCode) -> Result<Option<Office>> {
        let key = code.to_string();
        self.read(move |c| doc_by_key(c, "SELECT doc FROM offices WHERE code = ?1", &key)).await
    }

    async fn holder(&self, tir_id: &TirId) -> Result<Option<HolderRecord>> {
        let key = tir_id.to_string();
        self.read(move |c| doc_by_key(c, "SELECT doc FROM holders WHERE tir_id = ?1", &key)).await
    }

    async fn notifications(&self, recipient: Option<&str>, after: i64, limit: usize) -> Result<Vec<NotificationRow>> {
        let recipient = recipient.map(str::to_owned);
        self.read(move |c| {
            let map = |r: &rusqlite::Row<'_>| {
                Ok(NotificationRow {
                    cursor: r.get(0)?,
                    recipient: r.get(1)?,
                    kind: r.get(2)?,
                    guarantee_reference: r.get(3)?,
                    payload: r.get(4)?,
                    created_at_ms: r.get(5)?,
                })
            };
            let columns = "cursor, recipient, kind, reference, payload, created_at_ms";
            let rows = match recipient {
                Some(recipient) => c
                    .prepare_cached(&format!(
                        "SELECT {columns} FROM outbox WHERE recipient = ?1 AND cursor > ?2 ORDER BY cursor LIMIT ?3"
                    ))?
                    .query_map(params![recipient, after, crate::sql_limit(limit)], map)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
                None => c
                    .prepare_cached(&format!(
                        "SELECT {columns} FROM outbox WHERE cursor > ?1 ORDER BY cursor LIMIT ?2"
                    ))?
                    .query_map(params![after, crate::sql_limit(limit)], map)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
            };
            Ok(rows)
        })
        .await
    }

    async fn timeline(&self, reference: &GuaranteeRef) -> Result<Vec<Event>> {
        let reference = reference.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT at_ms, message_type, party, office, summary FROM events WHERE reference = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([reference], |r| {
                Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get::<_, Option<String>>(3)?, r.get(4)?))
            })?;
            rows.map(|row| {
                let (at, message_type, party, office, summary) = row?;
                crate::event_from_columns(at, message_type, party, office, summary)
            })
            .collect()
        })
        .await
    }

    async fn verify_journal(&self) -> Result<Verdict> {
        self.read(|c| {
            let mut verifier = Verifier::default();
            let mut stmt = c.prepare(&format!("SELECT {JOURNAL_COLUMNS} FROM journal ORDER BY seq"))?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                if !verifier.push(&entry_from_row(row)?) {
                    break;
                }
            }
            Ok(verifier.finish())
        })
        .await
    }

    async fn journal(&self, from_seq: i64, limit: usize) -> Result<Vec<JournalEntry>> {
        self.read(move |c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {JOURNAL_COLUMNS} FROM journal WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
            ))?
            .query_map(params![from_seq, crate::sql_limit(limit)], entry_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(upto: u64, body: &str) -> (Synced, oneshot::Receiver<Result<Reply>>) {
        let (waiter, answer) = oneshot::channel();
        let reply = Ok(Reply { status: 200, body: body.into() });
        (Synced { upto, answers: vec![(waiter, reply)] }, answer)
    }

    fn start(wal: PathBuf) -> (std::sync::mpsc::Sender<Synced>, Arc<Durability>, std::thread::JoinHandle<()>) {
        let durability = Arc::new(Durability::default());
        let (to_sync, pending) = std::sync::mpsc::channel();
        let for_sync = durability.clone();
        let thread = std::thread::spawn(move || sync_loop(wal, pending, for_sync));
        (to_sync, durability, thread)
    }

    #[test]
    fn batches_are_answered_after_the_fsync_that_covers_them() {
        let wal = std::env::temp_dir().join(format!("tirhub-sync-test-{}.db-wal", crate::token::random_hex(6)));
        std::fs::write(&wal, b"frames").unwrap();
        let (to_sync, durability, thread) = start(wal.clone());
        durability.committing.store(2, Ordering::SeqCst);
        let (first, first_answer) = batch(1, "one");
        let (second, second_answer) = batch(2, "two");
        to_sync.send(first).unwrap();
        to_sync.send(second).unwrap();
        durability.wait_for(2).unwrap();
        assert_eq!(*durability.durable.lock().unwrap(), 2);
        assert_eq!(first_answer.blocking_recv().unwrap().unwrap().body, "one");
        assert_eq!(second_answer.blocking_recv().unwrap().unwrap().body, "two");
        drop(to_sync);
        thread.join().unwrap();
        std::fs::remove_file(wal).unwrap();
    }

    #[test]
    fn a_read_waiting_for_a_commit_that_never_comes_ends_when_the_sync_thread_does() {
        let wal = std::env::temp_dir().join(format!("tirhub-sync-test-{}.db-wal", crate::token::random_hex(6)));
        let (to_sync, durability, thread) = start(wal);
        // Counted by a writer that then stopped before handing the batch over.
        durability.committing.store(1, Ordering::SeqCst);
        let reader = {
            let durability = durability.clone();
            std::thread::spawn(move || durability.wait_for(1))
        };
        drop(to_sync);
        thread.join().unwrap();
        assert!(matches!(reader.join().unwrap(), Err(StoreError::Closed)));
    }

    #[test]
    fn a_failed_fsync_answers_errors_and_fails_every_later_write_and_read() {
        // No such file: the fsync cannot happen, so nothing may be acknowledged.
        let wal = std::env::temp_dir().join("tirhub-sync-test-missing-dir").join("db-wal");
        let (to_sync, durability, thread) = start(wal);
        durability.committing.store(1, Ordering::SeqCst);
        let (first, first_answer) = batch(1, "one");
        to_sync.send(first).unwrap();
        let error = first_answer.blocking_recv().unwrap().unwrap_err();
        assert!(error.to_string().contains("fsync of the WAL failed"), "{error}");
        assert!(durability.wait_for(1).is_err(), "a reader of the unsynced commit gets an error");
        assert_eq!(*durability.durable.lock().unwrap(), 0);
        // Even a batch with nothing new to sync is refused once an fsync has failed.
        let (later, later_answer) = batch(1, "later");
        to_sync.send(later).unwrap();
        assert!(later_answer.blocking_recv().unwrap().is_err());
        drop(to_sync);
        thread.join().unwrap();
    }

    #[test]
    fn a_parties_table_from_before_revocation_gets_the_column_once() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE parties (id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, country TEXT,
                 tir_id TEXT, token_hash TEXT NOT NULL UNIQUE, created_at_ms INTEGER NOT NULL);
             INSERT INTO parties VALUES ('gc_1', 'guarantee_chain', 'Chain', NULL, NULL, 'h', 1);",
        )
        .unwrap();
        add_revocation_column(&conn).unwrap();
        add_revocation_column(&conn).unwrap();
        let revoked: Option<i64> =
            conn.query_row("SELECT revoked_at_ms FROM parties WHERE id = 'gc_1'", [], |r| r.get(0)).unwrap();
        assert_eq!(revoked, None);
    }
}
