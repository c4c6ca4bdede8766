//! The SQLite writer: one thread that owns the write connection, applies
//! batches through the engine, and hands their answers to the sync thread.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::mpsc;

use tir_model::guarantee::{Event, Guarantee};
use tir_model::party::{HolderRecord, Office};
use tir_model::{Country, OfficeCode, TirId};

use super::checkpoint::{Checkpoints, reset_wal_if_wanted};
use super::durability::{Durability, Synced, WalSync, fsync_failed};
use super::idempotency::IdempotencyIndex;
use super::reads;
use crate::console::{self, ArrivalWrite, CrossingRow};
use crate::engine::{BoundParty, Command, OutboxItem, Reply, RevokedParty, StoredReply, Tx, run_batch};
use crate::env::{Env, Stamp};
use crate::fallback;
use crate::journal::{GENESIS, JournalEntry};
use crate::keys::{ServerKey, SignedHead};
use crate::retention::Pruning;
use crate::rows::{self, JOURNAL_COLUMNS, risk, to_doc};
use crate::writer::{Batch, BatchWriter, Job, block_on_ready, prune_if_due, write_isolated};
use crate::{AssessmentRecord, InspectionResult, NewParty, PolicyRecord, Profile, Result, StoredModel};
use tir_model::fallback::FallbackPeriod;
use tir_risk::stats::{Tally, TallyKey};

/// Rows kept by the writer between batches. Only this writer changes the
/// file, so what it caches is current; a rolled-back batch clears the cache.
const CACHED_GUARANTEES_MAX: usize = 50_000;

/// The writer thread's state: its connection, caches and idempotency map.
pub(super) struct SqliteWriter {
    pub conn: Connection,
    pub cache: Cache,
    pub idempotency: IdempotencyIndex,
    pub durability: Arc<Durability>,
}

#[derive(Default)]
pub(super) struct Cache {
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

pub(super) fn writer_loop(
    mut writer: SqliteWriter,
    mut jobs: mpsc::Receiver<Job>,
    mut env: Env,
    (to_sync, mut wal): (std::sync::mpsc::Sender<Synced>, WalSync),
    checkpoints: Arc<Checkpoints>,
    mut pruning: Pruning,
) {
    let durability = writer.durability.clone();
    let mut batches_sent = 0;
    while let Some(first) = jobs.blocking_recv() {
        reset_wal_if_wanted(&writer.conn, &checkpoints);
        let batch = Batch::drain(first, &mut jobs, &mut env);
        block_on_ready(prune_if_due(&mut writer, &mut pruning, &batch));
        let results = block_on_ready(write_isolated(&mut writer, &batch));
        // Every commit so far has been handed to the kernel (walbuf passes a commit on
        // with its last frame); the sync thread answers once they are on disk.
        let upto = durability.committing.load(Ordering::SeqCst);
        let synced = Synced { upto, answers: batch.answers(results) };
        if jobs.is_empty() && durability.batches_answered.load(Ordering::SeqCst) == batches_sent {
            // Nothing to overlap with: fsync here and save a thread wake-up, which
            // costs a measurable share of a message's time at low load (docs/performance.md).
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

impl BatchWriter for SqliteWriter {
    const BACKEND: &'static str = "sqlite";

    async fn write_batch(&mut self, commands: &[Command], stamps: &[Stamp]) -> Result<Vec<Reply>> {
        let committed = run_batch(self, commands, stamps).await;
        if committed.is_err() {
            self.cache.clear();
            self.idempotency.rolled_back();
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
        }
        committed
    }

    async fn prune_refusals(&mut self, stored_before_ms: i64, limit: usize) -> Result<usize> {
        if self.durability.failed.load(Ordering::SeqCst) {
            return Err(fsync_failed());
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let pruned = IdempotencyIndex::prune(&self.conn, stored_before_ms, limit).and_then(|pruned| {
            // Counted like any commit, so that a reader that saw it waits for its fsync.
            self.durability.committing.fetch_add(1, Ordering::SeqCst);
            self.conn.execute_batch("COMMIT")?;
            Ok(pruned)
        });
        match pruned {
            Ok(pruned) => {
                self.idempotency.forget(&pruned);
                Ok(pruned.len())
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        }
    }
}

/// Inserts a crossing with `console::sql::CROSSING_INSERT` (the writer's and the migration's).
pub(super) fn insert_crossing(insert: &mut rusqlite::Statement<'_>, c: &CrossingRow) -> Result<()> {
    insert.execute(params![
        c.reference,
        c.operation,
        c.exit.as_str(),
        c.entry.as_str(),
        c.exit_office,
        c.entry_office,
        c.point(),
        c.terminated_at_ms,
        c.started_at_ms
    ])?;
    Ok(())
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
        if let Some(value) = reads::doc_by_key::<V>(conn, sql, as_str(key))? {
            cache.insert(key.clone(), value.clone());
            out.push(value);
        }
    }
    Ok(out)
}

#[async_trait]
#[async_trait]
impl Tx for SqliteWriter {
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
                "INSERT INTO journal ({JOURNAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
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
                e.hash,
                e.holder_signature.as_ref().map(crate::HolderSignature::to_column)
            ])?;
        Ok(())
    }

    async fn idempotency_get(&mut self, sender: &str, message_id: &str) -> Result<Option<StoredReply>> {
        self.idempotency.get(&self.conn, sender, message_id)
    }

    async fn idempotency_put(&mut self, key: [&str; 3], reply: &Reply, at_ms: i64) -> Result<()> {
        let [sender, message_id, body_hash] = key;
        self.idempotency.put(&self.conn, sender, message_id, body_hash, reply, at_ms)
    }

    async fn guarantee_get(&mut self, reference: &str) -> Result<Option<Guarantee>> {
        // Taken out: the engine puts the new version back, a rejection reloads it.
        if let Some(cached) = self.cache.guarantees.remove(reference) {
            return Ok(Some(cached));
        }
        reads::doc_by_key(&self.conn, "SELECT doc FROM guarantees WHERE reference = ?1", reference)
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

    async fn customs_countries(&mut self, countries: &[Country]) -> Result<Vec<Country>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT 1 FROM parties WHERE country = ?1 AND kind = 'customs' AND revoked_at_ms IS NULL LIMIT 1",
        )?;
        let mut found = Vec::new();
        for country in countries {
            if statement.exists(params![country.as_str()])? {
                found.push(*country);
            }
        }
        Ok(found)
    }

    async fn outbox_push(&mut self, item: &OutboxItem<'_>) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO outbox (recipient, kind, reference, payload, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![item.recipient, item.kind, item.reference, item.payload, item.at_ms])?;
        Ok(())
    }

    async fn event_push(&mut self, reference: &str, e: &Event) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO events (reference, at_ms, message_type, party, office, summary, occurred_at_ms, fallback_period) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                reference,
                e.at.unix_ms(),
                e.message_type,
                e.party,
                e.office.as_ref().map(|o| o.as_str()),
                e.summary,
                e.occurred_at.map(|t| t.unix_ms()),
                e.fallback_period
            ])?;
        Ok(())
    }

    async fn fallback_periods_of(&mut self, scope: &str) -> Result<Vec<FallbackPeriod>> {
        let mut statement = self.conn.prepare_cached(fallback::PERIODS_OF_SCOPE)?;
        let found = statement.query_map([scope], |r| r.get::<_, String>(0))?;
        found.map(|doc| rows::from_doc(&doc?)).collect()
    }

    async fn fallback_get(&mut self, id: &str) -> Result<Option<FallbackPeriod>> {
        let mut statement = self.conn.prepare_cached(fallback::PERIOD_GET)?;
        let doc: Option<String> = statement.query_row([id], |r| r.get(0)).optional()?;
        doc.map(|d| rows::from_doc(&d)).transpose()
    }

    async fn fallback_put(&mut self, p: &FallbackPeriod) -> Result<()> {
        self.conn.prepare_cached(fallback::PERIOD_PUT)?.execute(params![
            p.id,
            p.scope.as_str(),
            p.from.unix_ms(),
            to_doc(p)
        ])?;
        Ok(())
    }

    async fn party_feeds(&mut self) -> Result<Vec<String>> {
        let mut statement = self.conn.prepare_cached(fallback::PARTY_FEEDS)?;
        let found = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut feeds = Vec::new();
        for row in found {
            let (kind, id, country, tir_id) = row?;
            feeds.extend(fallback::feed_key(&kind, &id, country.as_deref(), tir_id.as_deref()));
        }
        feeds.sort();
        feeds.dedup();
        Ok(feeds)
    }

    async fn arrival_put(&mut self, a: &ArrivalWrite) -> Result<()> {
        if a.announce {
            self.conn.prepare_cached(console::sql::ARRIVAL_ANNOUNCE)?.execute(params![
                a.country.as_str(),
                a.reference,
                a.at_ms,
                a.ahead
            ])?;
        } else {
            self.conn.prepare_cached(console::sql::ARRIVAL_UPDATE)?.execute(params![
                a.ahead,
                a.country.as_str(),
                a.reference
            ])?;
        }
        Ok(())
    }

    async fn crossing_insert(&mut self, c: &CrossingRow) -> Result<()> {
        let mut insert = self.conn.prepare_cached(console::sql::CROSSING_INSERT)?;
        insert_crossing(&mut insert, c)
    }

    async fn party_revoke(&mut self, id: &str, at_ms: i64) -> Result<Option<RevokedParty>> {
        let changed = self
            .conn
            .prepare_cached("UPDATE parties SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL")?
            .execute(params![id, at_ms])?;
        let row = self
            .conn
            .prepare_cached("SELECT kind, name, revoked_at_ms FROM parties WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        Ok(row.map(|(kind, name, revoked_at_ms)| RevokedParty {
            kind,
            name,
            revoked_at_ms,
            newly_revoked: changed == 1,
        }))
    }

    async fn party_bind_certificate(
        &mut self,
        id: &str,
        certificate_sha256: Option<&str>,
    ) -> Result<Option<BoundParty>> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE parties SET certificate_sha256 = ?2 WHERE id = ?1 AND certificate_sha256 IS NOT ?2",
            )?
            .execute(params![id, certificate_sha256])?;
        let row = self
            .conn
            .prepare_cached("SELECT kind, name FROM parties WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row.map(|(kind, name)| BoundParty { kind, name, changed: changed == 1 }))
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

    async fn profile_versions(&mut self, administration: Country, id: &str) -> Result<Vec<Profile>> {
        reads::profile_versions(&self.conn, administration.as_str(), id)
    }

    async fn profile_insert(&mut self, profile: &Profile, at_ms: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO risk_profiles (administration, id, version, doc, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![profile.administration.as_str(), profile.id, profile.version, to_doc(profile), at_ms])?;
        Ok(())
    }

    async fn risk_cursor_get(&mut self) -> Result<i64> {
        reads::risk_cursor(&self.conn)
    }

    async fn risk_cursor_set(&mut self, cursor: i64) -> Result<()> {
        self.conn.prepare_cached(risk::CURSOR_SET)?.execute([cursor])?;
        Ok(())
    }

    async fn assessments_insert(&mut self, records: &[AssessmentRecord], docs: &[String]) -> Result<()> {
        let mut insert = self.conn.prepare_cached(risk::ASSESSMENT_INSERT)?;
        for (r, doc) in records.iter().zip(docs) {
            let a = &r.assessment;
            insert.execute(params![
                r.administration.as_str(),
                r.guarantee,
                a.operation,
                a.office,
                r.source_cursor,
                a.assessed_at.unix_ms(),
                r.holder,
                doc
            ])?;
        }
        Ok(())
    }

    async fn result_put(&mut self, r: &InspectionResult) -> Result<bool> {
        let key = params![r.administration.as_str(), r.guarantee, r.office];
        let new = !self.conn.prepare_cached(risk::RESULT_EXISTS)?.exists(key)?;
        self.conn.prepare_cached(risk::RESULT_PUT)?.execute(params![
            r.administration.as_str(),
            r.guarantee,
            r.office,
            r.outcome.as_str(),
            r.recorded_at.unix_ms(),
            to_doc(r)
        ])?;
        Ok(new)
    }

    async fn results_of(&mut self, keys: &[(Country, String)]) -> Result<Vec<InspectionResult>> {
        let mut found = Vec::new();
        for (administration, guarantee) in keys {
            found.extend(reads::results_of(&self.conn, administration.as_str(), guarantee)?);
        }
        Ok(found)
    }

    async fn assessments_of(&mut self, administration: Country, guarantee: &str) -> Result<Vec<AssessmentRecord>> {
        reads::assessments(&self.conn, administration.as_str(), guarantee)
    }

    async fn tallies_add(&mut self, changes: &[(TallyKey, Tally)]) -> Result<()> {
        let mut add = self.conn.prepare_cached(risk::TALLY_ADD)?;
        for ((administration, day, selector), t) in changes {
            add.execute(params![administration.as_str(), day, selector, t.volume, t.inspected, t.hits, t.revenue])?;
        }
        Ok(())
    }

    async fn model_get(&mut self, administration: Country, version: &str) -> Result<Option<(StoredModel, String)>> {
        let row: Option<(String, String)> = self
            .conn
            .prepare_cached(risk::MODEL_GET)?
            .query_row(params![administration.as_str(), version], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(doc, sha256)| Ok((rows::from_doc(&doc)?, sha256))).transpose()
    }

    async fn model_insert(&mut self, m: &StoredModel, model_sha256: &str) -> Result<()> {
        self.conn.prepare_cached(risk::MODEL_INSERT)?.execute(params![
            m.administration.as_str(),
            m.version,
            risk::metadata_doc(m),
            model_sha256,
            m.model_json
        ])?;
        Ok(())
    }

    async fn policy_put(&mut self, p: &PolicyRecord) -> Result<()> {
        self.conn.prepare_cached(risk::POLICY_PUT)?.execute(params![
            p.administration.as_str(),
            crate::policy_office_key(p),
            to_doc(p),
            p.updated_at.unix_ms()
        ])?;
        Ok(())
    }

    async fn key_current(&mut self) -> Result<Option<ServerKey>> {
        let mut statement = self.conn.prepare_cached(rows::keys::CURRENT)?;
        let mut found = statement.query([])?;
        found.next()?.map(rows::keys::current).transpose()
    }

    async fn key_insert(&mut self, key: &ServerKey) -> Result<()> {
        self.conn.prepare_cached(rows::keys::INSERT)?.execute(params![
            key.key_id,
            key.public_key_hex(),
            key.private_key_hex(),
            key.created_at_ms
        ])?;
        Ok(())
    }

    async fn key_retire(&mut self, key_id: &str, at_ms: i64) -> Result<()> {
        self.conn.prepare_cached(rows::keys::RETIRE)?.execute(params![at_ms, key_id])?;
        Ok(())
    }

    async fn head_latest(&mut self) -> Result<Option<SignedHead>> {
        reads::signed_head(&self.conn)
    }

    async fn holder_keys_of(&mut self, tir_id: &str) -> Result<Vec<crate::HolderKey>> {
        reads::holder_keys(&self.conn, tir_id)
    }

    async fn holder_key_insert(&mut self, k: &crate::HolderKey) -> Result<()> {
        self.conn.prepare_cached(rows::keys::HOLDER_KEY_INSERT)?.execute(params![
            k.tir_id,
            k.key_id,
            k.public_key,
            k.registered_by,
            k.registered_at_ms
        ])?;
        Ok(())
    }

    async fn holder_key_revoke(&mut self, tir_id: &str, key_id: &str, at_ms: i64) -> Result<()> {
        self.conn.prepare_cached(rows::keys::HOLDER_KEY_REVOKE)?.execute(params![at_ms, tir_id, key_id])?;
        Ok(())
    }

    async fn head_insert(&mut self, h: &SignedHead) -> Result<()> {
        self.conn.prepare_cached(rows::keys::HEAD_INSERT)?.execute(params![
            h.entries,
            h.head,
            h.signed_at,
            h.signed_at_ms,
            h.key_id,
            h.signature
        ])?;
        Ok(())
    }

    async fn session_write(&mut self, write: &crate::SessionWrite, at_ms: i64) -> Result<bool> {
        use crate::sessions::{EXPIRED_PER_OPEN, SessionWrite, sql};
        let changed = match write {
            SessionWrite::Open { id_hash, token_hash, csrf, expire_before_ms } => {
                self.conn.prepare_cached(sql::EXPIRE)?.execute(params![expire_before_ms, EXPIRED_PER_OPEN])?;
                self.conn.prepare_cached(sql::OPEN)?.execute(params![id_hash, token_hash, csrf, at_ms])?
            }
            SessionWrite::Seen { id_hash } => self.conn.prepare_cached(sql::SEEN)?.execute(params![at_ms, id_hash])?,
            SessionWrite::Close { id_hash } => self.conn.prepare_cached(sql::CLOSE)?.execute(params![id_hash])?,
        };
        Ok(changed == 1)
    }

    async fn push_endpoint_get(&mut self, party: &str) -> Result<Option<crate::PushEndpoint>> {
        Ok(reads::push_endpoints(&self.conn, Some(party))?.pop())
    }

    async fn push_endpoint_put(&mut self, e: &crate::PushEndpoint) -> Result<()> {
        self.conn.prepare_cached(crate::push::ENDPOINT_UPSERT)?.execute(params![
            e.party,
            e.feed,
            e.url,
            e.secret,
            e.status,
            e.paused_reason,
            e.registered_at_ms,
            e.generation,
            e.confirmed_cursor,
            e.failures,
            e.first_failure_ms,
            e.next_attempt_ms,
            e.lease_owner,
            e.lease_until_ms
        ])?;
        Ok(())
    }

    async fn push_attempt_insert(&mut self, a: &crate::PushAttempt) -> Result<()> {
        self.conn.prepare_cached(crate::push::ATTEMPT_INSERT)?.execute(params![
            a.party,
            a.cursor,
            a.at_ms,
            a.http_status,
            a.error,
            a.next_attempt_ms,
            i64::from(a.confirmed)
        ])?;
        Ok(())
    }
}
