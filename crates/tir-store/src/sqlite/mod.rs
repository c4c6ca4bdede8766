//! SQLite backend: one writer thread doing group commit, a sync thread that
//! fsyncs the WAL and only then answers, a checkpoint thread, and a small
//! pool of read connections.
//!
//! The writer commits without waiting for the disk (synchronous=NORMAL) and
//! goes on with the next batch while the sync thread's fsync covers every
//! commit before it. No write is answered, and no read returns what it saw,
//! before the fsync that covers it (see `durability`).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::Connection;

use tir_model::guarantee::{Event, Guarantee};
use tir_model::party::{HolderRecord, Office};
use tir_model::{Country, GuaranteeRef, OfficeCode, TirId};

use crate::engine::{Command, Reply};
use crate::env::Env;
use crate::journal::{JournalEntry, Verdict};
use crate::retention::{Pruning, StoreOptions};
use crate::writer::Writes;
use crate::{
    AssessmentRecord, HolderHistory, InspectionResult, NotificationRow, PolicyRecord, Profile, ProfileHistory, Result,
    Store, StoredModel, TokenParty, corrupt,
};

mod checkpoint;
mod durability;
mod idempotency;
mod reads;
mod schema;
mod tx;
mod walbuf;

use checkpoint::{Checkpoints, checkpoint_loop};
use durability::{Durability, Synced, WalSync, sync_loop};
use idempotency::IdempotencyIndex;
use reads::Readers;
use tx::{Cache, SqliteWriter, writer_loop};

pub struct SqliteStore {
    writes: Writes,
    readers: Readers,
    /// Set on drop: stops the checkpoint thread.
    checkpoints: Arc<Checkpoints>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpoints.stop.store(true, Ordering::Relaxed);
    }
}

impl SqliteStore {
    /// Opens (creating or migrating) the database at `path`, with the system
    /// clock and random admin message ids.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        SqliteStore::open_with(path, Env::system())
    }

    /// As `open`, with the writer's clock and id source given.
    pub fn open_with(path: impl AsRef<Path>, env: Env) -> Result<SqliteStore> {
        SqliteStore::open_with_options(path, env, StoreOptions::default())
    }

    /// As `open_with`, with options (such as how long refusals are kept) given.
    pub fn open_with_options(path: impl AsRef<Path>, env: Env, options: StoreOptions) -> Result<SqliteStore> {
        let pruning = Pruning::new(&options);
        let path = path.as_ref().to_path_buf();
        let conn = open_writer_connection(&path)?;
        schema::migrate(&conn)?;
        let idempotency = IdempotencyIndex::load(&conn)?;
        let (writes, jobs) = Writes::channel();
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
        let writer = SqliteWriter { conn, cache: Cache::default(), idempotency, durability: durability.clone() };
        std::thread::Builder::new()
            .name("tirhub-sqlite-writer".into())
            .spawn(move || writer_loop(writer, jobs, env, (to_sync, writer_wal), for_writer, pruning))
            .map_err(|e| corrupt(format!("cannot start the writer thread: {e}")))?;
        let checkpointer = Connection::open(&path)?;
        checkpointer.busy_timeout(std::time::Duration::from_secs(10))?;
        std::thread::Builder::new()
            .name("tirhub-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, for_checkpointer))
            .map_err(|e| corrupt(format!("cannot start the checkpoint thread: {e}")))?;
        let readers = Readers { path, pool: Arc::new(Mutex::new(Vec::new())), durability };
        Ok(SqliteStore { writes, readers, checkpoints })
    }
}

/// The writer's connection: through the walbuf VFS, in WAL mode, tuned for
/// the write path.
fn open_writer_connection(path: &Path) -> Result<Connection> {
    // The writer's WAL writes are gathered into one pwrite per commit (see walbuf).
    let vfs = walbuf::register().map_err(corrupt)?;
    let conn = Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), vfs)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(corrupt(format!("could not switch {} to WAL (got {mode})", path.display())));
    }
    // Checkpoints run on their own thread, off the writer's commit path. Pages are
    // read through mmap, faster than pread copies (docs/performance.md); the cost
    // is that a disk read error ends the process (SIGBUS) instead of failing a batch.
    // NORMAL: COMMIT writes the WAL frames but does not fsync them; the sync thread does,
    // before any answer. Checkpoints still fsync the WAL before copying it into the database.
    // A small page cache: when a b-tree split swaps page numbers, SQLite scans the whole
    // cache at the next commit (pcache1TruncateUnsafe), which showed in the writer's
    // profile with a larger one (docs/performance.md).
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-4096; PRAGMA wal_autocheckpoint=0; PRAGMA mmap_size=1073741824;
         PRAGMA journal_size_limit=67108864;",
    )?;
    Ok(conn)
}

#[async_trait]
impl Store for SqliteStore {
    async fn write(&self, command: Command) -> Result<Reply> {
        self.writes.write(command).await
    }

    async fn token_party(&self, token_hash: &str) -> Result<Option<TokenParty>> {
        let token_hash = token_hash.to_owned();
        // A token is known only from its party's creation answer, sent after the fsync.
        self.readers.read_unsynced(move |c| reads::token_party(c, &token_hash)).await
    }

    async fn guarantee(&self, reference: &GuaranteeRef) -> Result<Option<Guarantee>> {
        let key = reference.to_string();
        self.readers.read(move |c| reads::doc_by_key(c, "SELECT doc FROM guarantees WHERE reference = ?1", &key)).await
    }

    async fn office(&self, code: &OfficeCode) -> Result<Option<Office>> {
        let key = code.to_string();
        self.readers.read(move |c| reads::doc_by_key(c, "SELECT doc FROM offices WHERE code = ?1", &key)).await
    }

    async fn holder(&self, tir_id: &TirId) -> Result<Option<HolderRecord>> {
        let key = tir_id.to_string();
        self.readers.read(move |c| reads::doc_by_key(c, "SELECT doc FROM holders WHERE tir_id = ?1", &key)).await
    }

    async fn parties(&self, after: Option<&str>, limit: usize) -> Result<Vec<crate::PartyListing>> {
        let after = after.map(str::to_owned);
        self.readers.read(move |c| reads::parties(c, after.as_deref(), limit)).await
    }

    async fn offices(&self, after: Option<&OfficeCode>, limit: usize) -> Result<Vec<Office>> {
        let after = after.map_or_else(String::new, |a| a.as_str().to_owned());
        self.readers
            .read(move |c| {
                reads::docs_after(c, "SELECT doc FROM offices WHERE code > ?2 ORDER BY code LIMIT ?1", &after, limit)
            })
            .await
    }

    async fn holders(&self, after: Option<&TirId>, limit: usize) -> Result<Vec<HolderRecord>> {
        let after = after.map_or_else(String::new, |a| a.as_str().to_owned());
        self.readers
            .read(move |c| {
                reads::docs_after(
                    c,
                    "SELECT doc FROM holders WHERE tir_id > ?2 ORDER BY tir_id LIMIT ?1",
                    &after,
                    limit,
                )
            })
            .await
    }

    async fn profiles(&self, administration: Country) -> Result<Vec<Profile>> {
        self.readers.read(move |c| reads::profiles(c, administration.as_str())).await
    }

    async fn profile_history(&self, administration: Country, id: &str) -> Result<Option<ProfileHistory>> {
        let id = id.to_owned();
        self.readers
            .read(move |c| crate::history_from(&id, reads::profile_versions(c, administration.as_str(), &id)?))
            .await
    }

    async fn risk_cursor(&self) -> Result<i64> {
        self.readers.read(reads::risk_cursor).await
    }

    async fn assessments(&self, administration: Country, reference: &str) -> Result<Vec<AssessmentRecord>> {
        let reference = reference.to_owned();
        self.readers.read(move |c| reads::assessments(c, administration.as_str(), &reference)).await
    }

    async fn recent_assessments(
        &self,
        administration: Country,
        office: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AssessmentRecord>> {
        let office = office.map(str::to_owned);
        self.readers
            .read(move |c| reads::recent_assessments(c, administration.as_str(), office.as_deref(), limit))
            .await
    }

    async fn all_assessments(&self, administration: Country) -> Result<Vec<AssessmentRecord>> {
        self.readers.read(move |c| reads::all_assessments(c, administration.as_str())).await
    }

    async fn holder_history(&self, administration: Country, holder: &str) -> Result<HolderHistory> {
        let holder = holder.to_owned();
        self.readers.read(move |c| reads::holder_history(c, administration.as_str(), &holder)).await
    }

    async fn results(&self, administration: Country) -> Result<Vec<InspectionResult>> {
        self.readers.read(move |c| reads::results(c, administration.as_str())).await
    }

    async fn risk_tallies(&self, administration: Country) -> Result<Vec<(i32, String, tir_risk::stats::Tally)>> {
        self.readers.read(move |c| reads::risk_tallies(c, administration.as_str())).await
    }

    async fn latest_model(&self, administration: Country) -> Result<Option<StoredModel>> {
        self.readers.read(move |c| reads::latest_model(c, administration.as_str())).await
    }

    async fn models(&self, administration: Country) -> Result<Vec<StoredModel>> {
        self.readers.read(move |c| reads::models(c, administration.as_str())).await
    }

    async fn policies(&self, administration: Country) -> Result<Vec<PolicyRecord>> {
        self.readers.read(move |c| reads::policies(c, administration.as_str())).await
    }

    async fn risk_feed(&self, after: i64, limit: usize) -> Result<Vec<NotificationRow>> {
        self.readers.read(move |c| reads::risk_feed(c, after, limit)).await
    }

    async fn notifications(&self, recipient: Option<&str>, after: i64, limit: usize) -> Result<Vec<NotificationRow>> {
        let recipient = recipient.map(str::to_owned);
        self.readers.read(move |c| reads::notifications(c, recipient.as_deref(), after, limit)).await
    }

    async fn timeline(&self, reference: &GuaranteeRef) -> Result<Vec<Event>> {
        let reference = reference.to_string();
        self.readers.read(move |c| reads::timeline(c, &reference)).await
    }

    async fn fallback_periods(&self) -> Result<Vec<tir_model::fallback::FallbackPeriod>> {
        self.readers.read(reads::fallback_periods).await
    }

    async fn fallback_candidates(&self, id: &str) -> Result<Vec<(Guarantee, bool)>> {
        let id = id.to_owned();
        self.readers.read(move |c| reads::fallback_candidates(c, &id)).await
    }

    async fn verify_journal(&self) -> Result<Verdict> {
        self.readers.read(reads::verify_journal).await
    }

    async fn journal(&self, from_seq: i64, limit: usize) -> Result<Vec<JournalEntry>> {
        self.readers.read(move |c| reads::journal(c, from_seq, limit)).await
    }

    async fn journal_head_seq(&self) -> Result<i64> {
        self.readers.read(reads::journal_head_seq).await
    }

    async fn journal_of(&self, reference: &GuaranteeRef, limit: usize) -> Result<Vec<JournalEntry>> {
        let key = reference.to_string();
        self.readers.read(move |c| reads::journal_of(c, &key, limit)).await
    }

    async fn arrivals(&self, country: Country, limit: usize) -> Result<Vec<crate::console::Arrival>> {
        self.readers.read(move |c| reads::arrivals(c, country.as_str(), limit)).await
    }

    async fn crossing_figures(
        &self,
        country: Option<Country>,
        since_ms: i64,
        sample: usize,
    ) -> Result<crate::console::CrossingFigures> {
        self.readers
            .read(move |c| reads::crossing_figures(c, country.as_ref().map(Country::as_str), since_ms, sample))
            .await
    }

    async fn guarantees_of_holder(
        &self,
        holder: &TirId,
        before: Option<&GuaranteeRef>,
        limit: usize,
    ) -> Result<Vec<Guarantee>> {
        let key = holder.to_string();
        let before = before.map(|b| b.as_str().to_owned());
        self.readers.read(move |c| reads::guarantees_by(c, reads::Owner::Holder, &key, before.as_deref(), limit)).await
    }

    async fn guarantees_of_chain(
        &self,
        chain: &str,
        before: Option<&GuaranteeRef>,
        limit: usize,
    ) -> Result<Vec<Guarantee>> {
        let key = chain.to_owned();
        let before = before.map(|b| b.as_str().to_owned());
        self.readers.read(move |c| reads::guarantees_by(c, reads::Owner::Chain, &key, before.as_deref(), limit)).await
    }

    async fn server_keys(&self) -> Result<Vec<crate::PublicKey>> {
        self.readers.read(reads::server_keys).await
    }

    async fn signed_head(&self) -> Result<Option<crate::SignedHead>> {
        self.readers.read(reads::signed_head).await
    }

    async fn holder_keys(&self, tir_id: &str) -> Result<Vec<crate::HolderKey>> {
        let tir_id = tir_id.to_owned();
        self.readers.read(move |c| reads::holder_keys(c, &tir_id)).await
    }

    async fn console_session(&self, id_hash: &str) -> Result<Option<crate::ConsoleSession>> {
        let id_hash = id_hash.to_owned();
        // A session is known only from the sign-in's answer, sent after its write.
        self.readers.read_unsynced(move |c| reads::console_session(c, &id_hash)).await
    }

    async fn push_endpoint(&self, party: &str) -> Result<Option<crate::PushEndpoint>> {
        let party = party.to_owned();
        self.readers.read(move |c| reads::push_endpoints(c, Some(&party)).map(|mut e| e.pop())).await
    }

    async fn push_endpoints_active(&self) -> Result<Vec<crate::PushEndpoint>> {
        self.readers.read(|c| reads::push_endpoints(c, None)).await
    }

    async fn push_attempts(&self, party: &str, after: i64, through: i64) -> Result<Vec<crate::PushAttempt>> {
        let party = party.to_owned();
        self.readers.read(move |c| reads::push_attempts(c, &party, after, through)).await
    }

    fn write_queue_depth(&self) -> usize {
        self.writes.depth()
    }

    fn writes_queued(&self) -> u64 {
        self.writes.queued()
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
