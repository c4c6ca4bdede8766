//! PostgreSQL backend. Several tirhub servers may share one database: every
//! write transaction first takes one advisory transaction lock, so journal
//! order, idempotency and state transitions hold across processes. Each
//! server batches its own messages into one transaction (group commit).

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::future::{try_join, try_join3, try_join4};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

use tokio_postgres::{NoTls, Row};

use tir_model::guarantee::{Event, Guarantee};
use tir_model::party::{HolderRecord, Office, Party};
use tir_model::{GuaranteeRef, OfficeCode, TirId};

use crate::engine::{BATCH_COMMANDS_MAX, Command, Reply, RevokedParty, StoredReply, Tx, run_batch};
use crate::journal::{GENESIS, JournalEntry, Verdict, Verifier};
use crate::{NewParty, NotificationRow, Result, Store, StoreError, Submission, corrupt, now_ms};

// Key columns use the "C" collation: they are compared byte for byte, and
// locale-aware comparison (strcoll) showed in profiles of the write path.
// Guarantees are rewritten by every message: free space on their pages lets
// PostgreSQL update them in place (HOT) without a new primary-key entry.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, sender TEXT NOT NULL, message_type TEXT NOT NULL,
    message_id TEXT NOT NULL, reference TEXT NOT NULL, body TEXT NOT NULL, body_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    sender TEXT COLLATE \"C\" NOT NULL, message_id TEXT COLLATE \"C\" NOT NULL, body_hash TEXT NOT NULL,
    status INT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (sender, message_id));
CREATE TABLE IF NOT EXISTS guarantees (
    reference TEXT COLLATE \"C\" PRIMARY KEY, holder TEXT NOT NULL, chain TEXT NOT NULL, state TEXT NOT NULL,
    doc TEXT NOT NULL, updated_at_ms BIGINT NOT NULL) WITH (fillfactor = 70);
CREATE TABLE IF NOT EXISTS outbox (
    cursor BIGSERIAL PRIMARY KEY, recipient TEXT COLLATE \"C\" NOT NULL, kind TEXT NOT NULL,
    reference TEXT NOT NULL, payload TEXT NOT NULL, created_at_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_by_recipient ON outbox (recipient, cursor);
CREATE TABLE IF NOT EXISTS parties (
    id TEXT COLLATE \"C\" PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, country TEXT, tir_id TEXT,
    token_hash TEXT COLLATE \"C\" NOT NULL UNIQUE, created_at_ms BIGINT NOT NULL, revoked_at_ms BIGINT);
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY, reference TEXT COLLATE \"C\" NOT NULL, at_ms BIGINT NOT NULL,
    message_type TEXT NOT NULL, party TEXT NOT NULL, office TEXT, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_reference ON events (reference, id);
CREATE TABLE IF NOT EXISTS offices (code TEXT COLLATE \"C\" PRIMARY KEY, country TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS holders (tir_id TEXT COLLATE \"C\" PRIMARY KEY, doc TEXT NOT NULL);
";

/// Large documents are compressed with LZ4 where the server supports it: the
/// default (pglz) took about 14 % of PostgreSQL's CPU in the bench profile.
/// Only new values are affected; a server built without LZ4 keeps pglz.
const LZ4_COLUMNS: [(&str, &str); 4] =
    [("journal", "body"), ("idempotency", "body"), ("guarantees", "doc"), ("outbox", "payload")];

/// Advisory lock keys ("TIR" + purpose).
const LOCK_WRITERS: i64 = 0x5449_5200_0001;
const LOCK_MIGRATIONS: i64 = 0x5449_5200_0002;
const POOL_CONNECTIONS_MAX: usize = 16;
/// Journal rows fetched per round trip while verifying.
const VERIFY_PAGE_ROWS: i64 = 5_000;

type Job = (Command, oneshot::Sender<Result<Reply>>);

pub struct PgStore {
    pool: Pool,
    writer: mpsc::Sender<Job>,
}

fn pool_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Pool(e.to_string())
}

impl PgStore {
    pub async fn open(url: &str) -> Result<PgStore> {
        let config: tokio_postgres::Config = url.parse().map_err(|_| StoreError::BadUrl(url.to_owned()))?;
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(POOL_CONNECTIONS_MAX).build().map_err(pool_error)?;
        let client = pool.get().await.map_err(pool_error)?;
        // Servers starting together must not race on CREATE TABLE IF NOT EXISTS.
        client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_MIGRATIONS]).await?;
        let migrated = migrate(&client).await;
        // Unlocked whatever happened: the connection goes back to the pool.
        client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_MIGRATIONS]).await?;
        migrated?;
        drop(client);
        let (writer, jobs) = mpsc::channel::<Job>(BATCH_COMMANDS_MAX * 4);
        tokio::spawn(writer_loop(pool.clone(), jobs));
        Ok(PgStore { pool, writer })
    }

    async fn write(&self, command: Command) -> Result<Reply> {
        let (done, answer) = oneshot::channel();
        self.writer.send((command, done)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn query_doc<T: serde::de::DeserializeOwned>(&self, sql: &str, key: &str) -> Result<Option<T>> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client.prepare_cached(sql).await?;
        let row = client.query_opt(&stmt, &[&key]).await?;
        row.map(|r| from_doc(r.get(0))).transpose()
    }
}

/// Creates what is missing; run under `LOCK_MIGRATIONS`.
async fn migrate(client: &tokio_postgres::Client) -> Result<()> {
    client.batch_execute(SCHEMA).await?;
    add_revocation_column(client).await?;
    compress_with_lz4(client).await
}

/// Databases from before party revocation lack the column. Looked up first:
/// ALTER TABLE, even one with nothing to do, locks out every token lookup.
async fn add_revocation_column(client: &tokio_postgres::Client) -> Result<()> {
    let present: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'parties' AND column_name = 'revoked_at_ms')",
            &[],
        )
        .await?
        .get(0);
    if !present {
        client.batch_execute("ALTER TABLE parties ADD COLUMN revoked_at_ms BIGINT").await?;
    }
    Ok(())
}

/// Switches `LZ4_COLUMNS` to LZ4. ALTER TABLE locks the table briefly, so it
/// runs only while one of them still uses another method.
async fn compress_with_lz4(client: &tokio_postgres::Client) -> Result<()> {
    let tables: Vec<&str> = LZ4_COLUMNS.iter().map(|(t, _)| *t).collect();
    let columns: Vec<&str> = LZ4_COLUMNS.iter().map(|(_, c)| *c).collect();
    let done: Option<bool> = client
        .query_one(
            "SELECT bool_and(a.attcompression = 'l') FROM pg_attribute a
             JOIN unnest($1::text[], $2::text[]) AS v(t, c) ON a.attrelid = v.t::regclass AND a.attname = v.c",
            &[&tables, &columns],
        )
        .await?
        .get(0);
    if done == Some(true) {
        return Ok(());
    }
    let alter: String = LZ4_COLUMNS
        .iter()
        .map(|(table, column)| format!("ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4;"))
        .collect();
    if let Err(e) = client.batch_execute(&alter).await {
        tracing::info!(error = %crate::postgres_detail(&e), "LZ4 compression unavailable; documents stay pglz-compressed");
    }
    Ok(())
}

async fn writer_loop(pool: Pool, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_COMMANDS_MAX {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (commands, waiters): (Vec<Command>, Vec<_>) = batch.into_iter().unzip();
        let results = match write_batch(&pool, &commands).await {
            Ok(replies) => replies.into_iter().map(Ok).collect(),
            Err(e) if commands.len() == 1 => {
                tracing::error!(error = %e, "postgres write rolled back");
                vec![Err(StoreError::Write(e.to_string()))]
            }
            Err(e) => {
                // One failing write must not fail the others batched with it.
                tracing::warn!(error = %e, commands = commands.len(), "postgres batch rolled back; writing its commands one by one");
                let mut results = Vec::with_capacity(commands.len());
                for command in commands.chunks(1) {
                    results.push(match write_batch(&pool, command).await {
                        Ok(mut replies) => Ok(replies.remove(0)),
                        Err(e) => Err(StoreError::Write(e.to_string())),
                    });
                }
                results
            }
        };
        for (waiter, result) in waiters.into_iter().zip(results) {
            let _ = waiter.send(result);
        }
    }
}

async fn write_batch(pool: &Pool, commands: &[Command]) -> Result<Vec<Reply>> {
    let client = pool.get().await.map_err(pool_error)?;
    let mut pg = PgTx {
        client: &client,
        deferred: Deferred::default(),
        dirty: Vec::new(),
        guarantees: HashMap::new(),
        replies: HashMap::new(),
        offices: HashMap::new(),
        holders: HashMap::new(),
    };
    let result = run_batch(&mut pg, commands, now_ms()).await;
    if result.is_err() && client.batch_execute("ROLLBACK").await.is_err() {
        // A connection that may still be inside a transaction never goes back to the pool.
        drop(deadpool_postgres::Object::take(client));
    }
    result
}

/// A write transaction, opened and committed by hand so that BEGIN and COMMIT
/// travel with the statements next to them instead of costing round trips of
/// their own. The message path's inserts are deferred and written before
/// commit as one multi-row INSERT per table; what the batch wrote is read back
/// from the overlays.
struct PgTx<'a> {
    client: &'a deadpool_postgres::Client,
    deferred: Deferred,
    /// References whose latest version in `guarantees` is still to be written.
    dirty: Vec<String>,
    // What this transaction knows: `None` = known to be absent.
    guarantees: HashMap<String, Option<Guarantee>>,
    replies: HashMap<(String, String), Option<StoredReply>>,
    offices: HashMap<OfficeCode, Option<Office>>,
    holders: HashMap<TirId, Option<HolderRecord>>,
}

impl PgTx<'_> {
    async fn exec(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<u64> {
        let stmt = self.client.prepare_cached(sql).await?;
        Ok(self.client.execute(&stmt, params).await?)
    }

    async fn opt(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<Option<Row>> {
        let stmt = self.client.prepare_cached(sql).await?;
        Ok(self.client.query_opt(&stmt, params).await?)
    }
}

/// Rows to insert at the end of the batch, column by column.
#[derive(Default)]
struct Deferred {
    at_ms: i64,
    journal: JournalColumns,
    replies: ReplyColumns,
    events: EventColumns,
    outbox: OutboxColumns,
}

#[derive(Default)]
struct JournalColumns {
    seq: Vec<i64>,
    at_ms: Vec<i64>,
    sender: Vec<String>,
    message_type: Vec<String>,
    message_id: Vec<String>,
    reference: Vec<String>,
    body: Vec<String>,
    body_hash: Vec<String>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
}

#[derive(Default)]
struct ReplyColumns {
    sender: Vec<String>,
    message_id: Vec<String>,
    body_hash: Vec<String>,
    status: Vec<i32>,
    body: Vec<String>,
}

#[derive(Default)]
struct EventColumns {
    reference: Vec<String>,
    at_ms: Vec<i64>,
    message_type: Vec<String>,
    party: Vec<String>,
    office: Vec<Option<String>>,
    summary: Vec<String>,
}

#[derive(Default)]
struct OutboxColumns {
    recipient: Vec<String>,
    kind: Vec<String>,
    reference: Vec<String>,
    payload: Vec<String>,
    at_ms: Vec<i64>,
}

#[derive(Default)]
struct GuaranteeColumns {
    reference: Vec<String>,
    holder: Vec<String>,
    chain: Vec<String>,
    state: Vec<String>,
    doc: Vec<String>,
    at_ms: Vec<i64>,
}

impl GuaranteeColumns {
    fn push(&mut self, g: &Guarantee, at_ms: i64) {
        self.reference.push(g.reference.to_string());
        self.holder.push(g.holder.to_string());
        self.chain.push(g.chain.clone());
        self.state.push(g.state.as_str().to_owned());
        self.doc.push(to_doc(g));
        self.at_ms.push(at_ms);
    }
}

/// Documents for `keys`: from what the transaction knows, else one query for the rest.
async fn lookup<K: std::hash::Hash + Eq + Clone, V: serde::de::DeserializeOwned + Clone>(
    tx: &deadpool_postgres::Client,
    known: &mut HashMap<K, Option<V>>,
    sql: &str,
    keys: &[K],
    as_str: impl Fn(&K) -> &str,
    key_of: impl Fn(&V) -> K,
) -> Result<Vec<V>> {
    let missing: Vec<&str> = keys.iter().filter(|k| !known.contains_key(*k)).map(&as_str).collect();
    if !missing.is_empty() {
        let stmt = tx.prepare_cached(sql).await?;
        let found: Vec<V> =
            tx.query(&stmt, &[&missing]).await?.iter().map(|r| from_doc(r.get(0))).collect::<Result<_>>()?;
        remember(known, keys, found, key_of);
    }
    Ok(keys.iter().filter_map(|k| known.get(k).cloned().flatten()).collect())
}

/// Records what a lookup of `asked` found; the rest is known to be absent.
fn remember<K: std::hash::Hash + Eq + Clone, V>(
    known: &mut HashMap<K, Option<V>>,
    asked: &[K],
    found: Vec<V>,
    key: impl Fn(&V) -> K,
) {
    for k in asked {
        known.entry(k.clone()).or_insert(None);
    }
    for v in found {
        known.insert(key(&v), Some(v));
    }
}

fn from_doc<T: serde::de::DeserializeOwned>(doc: &str) -> Result<T> {
    serde_json::from_str(doc).map_err(corrupt)
}

fn to_doc<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain types serialize")
}

const JOURNAL_COLUMNS: &str =
    "seq, at_ms, sender, message_type, message_id, reference, body, body_hash, prev_hash, hash";

fn entry_from_row(r: &Row) -> JournalEntry {
    JournalEntry {
        seq: r.get(0),
        at_ms: r.get(1),
        sender: r.get(2),
        message_type: r.get(3),
        message_id: r.get(4),
        reference: r.get(5),
        body: r.get(6),
        body_hash: r.get(7),
        prev_hash: r.get(8),
        hash: r.get(9),
    }
}

// The deferred inserts: arrays in, one statement per table; WITH ORDINALITY keeps journal and outbox order.
const JOURNAL_INSERT: &str =
    "INSERT INTO journal (seq, at_ms, sender, message_type, message_id, reference, body, body_hash, prev_hash, hash)
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::text[], $10::text[])";
const REPLIES_INSERT: &str = "INSERT INTO idempotency (sender, message_id, body_hash, status, body)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[])";
const GUARANTEES_INSERT: &str = "INSERT INTO guarantees (reference, holder, chain, state, doc, updated_at_ms)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
    ON CONFLICT (reference) DO UPDATE SET state = excluded.state, doc = excluded.doc, updated_at_ms = excluded.updated_at_ms";
const EVENTS_INSERT: &str = "INSERT INTO events (reference, at_ms, message_type, party, office, summary)
    SELECT reference, at_ms, message_type, party, office, summary
    FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
         WITH ORDINALITY AS t(reference, at_ms, message_type, party, office, summary, n)
    ORDER BY n";
const OUTBOX_INSERT: &str = "INSERT INTO outbox (recipient, kind, reference, payload, created_at_ms)
    SELECT recipient, kind, reference, payload, created_at_ms
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
         WITH ORDINALITY AS t(recipient, kind, reference, payload, created_at_ms, n)
    ORDER BY n";

#[async_trait]
impl Tx for PgTx<'_> {
    async fn commit(&mut self) -> Result<()> {
        let d = std::mem::take(&mut self.deferred);
        let mut g = GuaranteeColumns::default();
        for reference in std::mem::take(&mut self.dirty) {
            if let Some(Some(guarantee)) = self.guarantees.get(&reference) {
                g.push(guarantee, d.at_ms);
            }
        }
        let tx = self.client;
        // Every statement is prepared before any is sent: an insert still waiting
        // on its prepare would let the COMMIT below overtake it.
        let journal_stmt = tx.prepare_cached(JOURNAL_INSERT).await?;
        let replies_stmt = tx.prepare_cached(REPLIES_INSERT).await?;
        let guarantees_stmt = tx.prepare_cached(GUARANTEES_INSERT).await?;
        let events_stmt = tx.prepare_cached(EVENTS_INSERT).await?;
        let outbox_stmt = tx.prepare_cached(OUTBOX_INSERT).await?;
        let journal = async {
            if d.journal.seq.is_empty() {
                return Ok(0);
            }
            let j = &d.journal;
            tx.execute(
                &journal_stmt,
                &[
                    &j.seq,
                    &j.at_ms,
                    &j.sender,
                    &j.message_type,
                    &j.message_id,
                    &j.reference,
                    &j.body,
                    &j.body_hash,
                    &j.prev_hash,
                    &j.hash,
                ],
            )
            .await
        };
        let replies = async {
            if d.replies.sender.is_empty() {
                return Ok(0);
            }
            let r = &d.replies;
            tx.execute(&replies_stmt, &[&r.sender, &r.message_id, &r.body_hash, &r.status, &r.body]).await
        };
        let guarantees = async {
            if g.reference.is_empty() {
                return Ok(0);
            }
            tx.execute(&guarantees_stmt, &[&g.reference, &g.holder, &g.chain, &g.state, &g.doc, &g.at_ms]).await
        };
        let events = async {
            if d.events.reference.is_empty() {
                return Ok(0);
            }
            let e = &d.events;
            tx.execute(&events_stmt, &[&e.reference, &e.at_ms, &e.message_type, &e.party, &e.office, &e.summary]).await
        };
        let outbox = async {
            if d.outbox.recipient.is_empty() {
                return Ok(0);
            }
            let o = &d.outbox;
            tx.execute(&outbox_stmt, &[&o.recipient, &o.kind, &o.reference, &o.payload, &o.at_ms]).await
        };
        // COMMIT goes right behind the inserts. If one of them fails, PostgreSQL
        // answers that COMMIT with a rollback, and the error comes back from the insert.
        let inserts = futures_util::future::try_join5(journal, replies, guarantees, events, outbox);
        try_join(inserts, tx.batch_execute("COMMIT")).await?;
        Ok(())
    }

    async fn journal_append(&mut self, e: &JournalEntry) -> Result<()> {
        let j = &mut self.deferred.journal;
        j.seq.push(e.seq);
        j.at_ms.push(e.at_ms);
        j.sender.push(e.sender.clone());
        j.message_type.push(e.message_type.clone());
        j.message_id.push(e.message_id.clone());
        j.reference.push(e.reference.clone());
        j.body.push(e.body.clone());
        j.body_hash.push(e.body_hash.clone());
        j.prev_hash.push(e.prev_hash.clone());
        j.hash.push(e.hash.clone());
        Ok(())
    }

    async fn idempotency_get(&mut self, sender: &str, message_id: &str) -> Result<Option<StoredReply>> {
        let key = (sender.to_owned(), message_id.to_owned());
        if let Some(known) = self.replies.get(&key) {
            return Ok(known.clone());
        }
        let row = self
            .opt(
                "SELECT body_hash, status, body FROM idempotency WHERE sender = $1 AND message_id = $2",
                &[&sender, &message_id],
            )
            .await?;
        let stored = row.map(|r| StoredReply {
            body_hash: r.get(0),
            reply: Reply { status: r.get::<_, i32>(1) as u16, body: r.get(2) },
        });
        self.replies.insert(key, stored.clone());
        Ok(stored)
    }

    async fn idempotency_put(&mut self, sender: &str, message_id: &str, body_hash: &str, reply: &Reply) -> Result<()> {
        let r = &mut self.deferred.replies;
        r.sender.push(sender.to_owned());
        r.message_id.push(message_id.to_owned());
        r.body_hash.push(body_hash.to_owned());
        r.status.push(reply.status as i32);
        r.body.push(reply.body.clone());
        let stored = StoredReply { body_hash: body_hash.to_owned(), reply: reply.clone() };
        self.replies.insert((sender.to_owned(), message_id.to_owned()), Some(stored));
        Ok(())
    }

    async fn guarantee_get(&mut self, reference: &str) -> Result<Option<Guarantee>> {
        if let Some(known) = self.guarantees.get(reference) {
            return Ok(known.clone());
        }
        let row = self.opt("SELECT doc FROM guarantees WHERE reference = $1", &[&reference]).await?;
        let guarantee: Option<Guarantee> = row.map(|r| from_doc(r.get(0))).transpose()?;
        self.guarantees.insert(reference.to_owned(), guarantee.clone());
        Ok(guarantee)
    }

    async fn guarantee_put(&mut self, g: Guarantee, at_ms: i64) -> Result<()> {
        self.deferred.at_ms = at_ms;
        let reference = g.reference.to_string();
        if !self.dirty.contains(&reference) {
            self.dirty.push(reference.clone());
        }
        self.guarantees.insert(reference, Some(g));
        Ok(())
    }

    async fn offices_get(&mut self, codes: &[OfficeCode]) -> Result<Vec<Office>> {
        let sql = "SELECT doc FROM offices WHERE code = ANY($1)";
        lookup(self.client, &mut self.offices, sql, codes, |c| c.as_str(), |o: &Office| o.code.clone()).await
    }

    async fn holders_get(&mut self, tir_ids: &[TirId]) -> Result<Vec<HolderRecord>> {
        let sql = "SELECT doc FROM holders WHERE tir_id = ANY($1)";
        lookup(self.client, &mut self.holders, sql, tir_ids, |t| t.as_str(), |h: &HolderRecord| h.tir_id.clone()).await
    }

    async fn begin(&mut self, commands: &[Command]) -> Result<(i64, String)> {
        let submissions: Vec<&Submission> = commands
            .iter()
            .filter_map(|c| match c {
                Command::Message(s) => Some(&**s),
                _ => None,
            })
            .collect();
        let senders: Vec<&str> = submissions.iter().map(|s| s.sender.id()).collect();
        let message_ids: Vec<&str> = submissions.iter().map(|s| s.request.message_id.as_str()).collect();
        let references: Vec<&str> = submissions.iter().map(|s| s.request.guarantee_reference.as_str()).collect();
        let mut offices: Vec<OfficeCode> = submissions.iter().flat_map(|s| s.request.referenced_offices()).collect();
        offices.sort();
        offices.dedup();
        let mut holders: Vec<TirId> =
            submissions.iter().flat_map(|s| tir_model::exchange::holders_needed(&s.request, &s.sender)).collect();
        holders.sort();
        holders.dedup();
        let office_keys: Vec<&str> = offices.iter().map(|o| o.as_str()).collect();
        let holder_keys: Vec<&str> = holders.iter().map(|h| h.as_str()).collect();
        let lock_stmt = self.client.prepare_cached("SELECT pg_advisory_xact_lock($1)").await?;
        let head_stmt = self.client.prepare_cached("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").await?;
        let replies_stmt = self
            .client
            .prepare_cached(
                "SELECT i.sender, i.message_id, i.body_hash, i.status, i.body FROM idempotency i
                 JOIN unnest($1::text[], $2::text[]) AS k(sender, message_id)
                   ON i.sender = k.sender AND i.message_id = k.message_id",
            )
            .await?;
        let guarantees_stmt =
            self.client.prepare_cached("SELECT reference, doc FROM guarantees WHERE reference = ANY($1)").await?;
        let offices_stmt = self.client.prepare_cached("SELECT doc FROM offices WHERE code = ANY($1)").await?;
        let holders_stmt = self.client.prepare_cached("SELECT doc FROM holders WHERE tir_id = ANY($1)").await?;
        // One round trip: BEGIN, the lock, then the head and the batch's reads.
        // The statements are sent in this order (futures-util's joins poll
        // their futures in order) and PostgreSQL runs them one after another,
        // each with a snapshot taken after the lock is held (READ COMMITTED), so
        // they see every earlier writer's rows.
        let lock_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&LOCK_WRITERS];
        let reply_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&senders, &message_ids];
        let begin = self.client.batch_execute("BEGIN");
        let ((_, _, head), (reply_rows, guarantee_rows, office_rows, holder_rows)) = try_join(
            try_join3(begin, self.client.execute(&lock_stmt, &lock_params), self.client.query_opt(&head_stmt, &[])),
            try_join4(
                self.client.query(&replies_stmt, &reply_params),
                self.client.query(&guarantees_stmt, &[&references]),
                self.client.query(&offices_stmt, &[&office_keys]),
                self.client.query(&holders_stmt, &[&holder_keys]),
            ),
        )
        .await?;
        for (sender, message_id) in senders.iter().zip(&message_ids) {
            self.replies.insert((sender.to_string(), message_id.to_string()), None);
        }
        for r in &reply_rows {
            let stored =
                StoredReply { body_hash: r.get(2), reply: Reply { status: r.get::<_, i32>(3) as u16, body: r.get(4) } };
            self.replies.insert((r.get(0), r.get(1)), Some(stored));
        }
        for reference in &references {
            self.guarantees.insert(reference.to_string(), None);
        }
        for r in &guarantee_rows {
            self.guarantees.insert(r.get(0), Some(from_doc(r.get(1))?));
        }
        let found_offices: Vec<Office> = office_rows.iter().map(|r| from_doc(r.get(0))).collect::<Result<_>>()?;
        remember(&mut self.offices, &offices, found_offices, |o| o.code.clone());
        let found_holders: Vec<HolderRecord> = holder_rows.iter().map(|r| from_doc(r.get(0))).collect::<Result<_>>()?;
        remember(&mut self.holders, &holders, found_holders, |h| h.tir_id.clone());
        Ok(head.map(|r| (r.get(0), r.get(1))).unwrap_or((0, GENESIS.to_owned())))
    }

    async fn outbox_push(
        &mut self,
        recipient: &str,
        kind: &str,
        reference: &str,
        payload: &str,
        at_ms: i64,
    ) -> Result<()> {
        let o = &mut self.deferred.outbox;
        o.recipient.push(recipient.to_owned());
        o.kind.push(kind.to_owned());
        o.reference.push(reference.to_owned());
        o.payload.push(payload.to_owned());
        o.at_ms.push(at_ms);
        Ok(())
    }

    async fn event_push(&mut self, reference: &str, e: &Event) -> Result<()> {
        let v = &mut self.deferred.events;
        v.reference.push(reference.to_owned());
        v.at_ms.push(e.at.unix_ms());
        v.message_type.push(e.message_type.clone());
        v.party.push(e.party.clone());
        v.office.push(e.office.as_ref().map(|o| o.to_string()));
        v.summary.push(e.summary.clone());
        Ok(())
    }

    async fn party_revoke(&mut self, id: &str, at_ms: i64) -> Result<Option<RevokedParty>> {
        let now = self
            .exec("UPDATE parties SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL", &[&id, &at_ms])
            .await?;
        let row = self.opt("SELECT kind, name, revoked_at_ms FROM parties WHERE id = $1", &[&id]).await?;
        Ok(row.map(|r| RevokedParty { kind: r.get(0), name: r.get(1), revoked_at_ms: r.get(2), now: now == 1 }))
    }

    async fn party_insert(&mut self, p: &NewParty, at_ms: i64) -> Result<()> {
        let country = p.country.map(|c| c.to_string());
        let tir_id = p.tir_id.as_ref().map(|t| t.to_string());
        self.exec(
            "INSERT INTO parties (id, kind, name, country, tir_id, token_hash, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&p.id, &p.kind.as_str(), &p.name, &country, &tir_id, &p.token_hash, &at_ms],
        )
        .await?;
        Ok(())
    }

    async fn office_put(&mut self, office: &Office) -> Result<()> {
        self.exec(
            "INSERT INTO offices (code, country, doc) VALUES ($1, $2, $3)
             ON CONFLICT (code) DO UPDATE SET country = excluded.country, doc = excluded.doc",
            &[&office.code.as_str(), &office.country.as_str(), &to_doc(office)],
        )
        .await?;
        self.offices.insert(office.code.clone(), Some(office.clone()));
        Ok(())
    }

    async fn holder_put(&mut self, holder: &HolderRecord) -> Result<()> {
        self.exec(
            "INSERT INTO holders (tir_id, doc) VALUES ($1, $2) ON CONFLICT (tir_id) DO UPDATE SET doc = excluded.doc",
            &[&holder.tir_id.as_str(), &to_doc(holder)],
        )
        .await?;
        self.holders.insert(holder.tir_id.clone(), Some(holder.clone()));
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
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
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached(
                "SELECT id, kind, country, tir_id FROM parties WHERE token_hash = $1 AND revoked_at_ms IS NULL",
            )
            .await?;
        match client.query_opt(&stmt, &[&token_hash]).await? {
            None => Ok(None),
            Some(r) => crate::party_from_columns(r.get(0), r.get::<_, &str>(1), r.get(2), r.get(3)).map(Some),
        }
    }

    async fn guarantee(&self, reference: &GuaranteeRef) -> Result<Option<Guarantee>> {
        self.query_doc("SELECT doc FROM guarantees WHERE reference = $1", reference.as_str()).await
    }

    async fn office(&self, code: &OfficeCode) -> Result<Option<Office>> {
        self.query_doc("SELECT doc FROM offices WHERE code = $1", code.as_str()).await
    }

    async fn holder(&self, tir_id: &TirId) -> Result<Option<HolderRecord>> {
        self.query_doc("SELECT doc FROM holders WHERE tir_id = $1", tir_id.as_str()).await
    }

    async fn notifications(&self, recipient: Option<&str>, after: i64, limit: usize) -> Result<Vec<NotificationRow>> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let columns = "cursor, recipient, kind, reference, payload, created_at_ms";
        let limit = crate::sql_limit(limit);
        let rows = match recipient {
            Some(recipient) => {
                let stmt = client
                    .prepare_cached(&format!(
                        "SELECT {columns} FROM outbox WHERE recipient = $1 AND cursor > $2 ORDER BY cursor LIMIT $3"
                    ))
                    .await?;
                client.query(&stmt, &[&recipient, &after, &limit]).await?
            }
            None => {
                let stmt = client
                    .prepare_cached(&format!("SELECT {columns} FROM outbox WHERE cursor > $1 ORDER BY cursor LIMIT $2"))
                    .await?;
                client.query(&stmt, &[&after, &limit]).await?
            }
        };
        Ok(rows
            .iter()
            .map(|r| NotificationRow {
                cursor: r.get(0),
                recipient: r.get(1),
                kind: r.get(2),
                guarantee_reference: r.get(3),
                payload: r.get(4),
                created_at_ms: r.get(5),
            })
            .collect())
    }

    async fn timeline(&self, reference: &GuaranteeRef) -> Result<Vec<Event>> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached(
                "SELECT at_ms, message_type, party, office, summary FROM events WHERE reference = $1 ORDER BY id",
            )
            .await?;
        client
            .query(&stmt, &[&reference.as_str()])
            .await?
            .iter()
            .map(|r| crate::event_from_columns(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
    }

    async fn verify_journal(&self) -> Result<Verdict> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached(&format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2"))
            .await?;
        let mut verifier = Verifier::default();
        'pages: loop {
            let after = verifier.last_seq();
            let rows = client.query(&stmt, &[&after, &VERIFY_PAGE_ROWS]).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                if !verifier.push(&entry_from_row(row)) {
                    break 'pages;
                }
            }
        }
        Ok(verifier.finish())
    }

    async fn journal(&self, from_seq: i64, limit: usize) -> Result<Vec<JournalEntry>> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached(&format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE seq >= $1 ORDER BY seq LIMIT $2"))
            .await?;
        Ok(client.query(&stmt, &[&from_seq, &(crate::sql_limit(limit))]).await?.iter().map(entry_from_row).collect())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
