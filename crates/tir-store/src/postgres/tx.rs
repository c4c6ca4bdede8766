//! The PostgreSQL writer: a task that takes batches from the queue and runs
//! each in one transaction on a pooled connection.

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use futures_util::future::{try_join, try_join3, try_join4};
use tokio::sync::mpsc;
use tokio_postgres::Row;

use tir_model::guarantee::{Event, Guarantee};
use tir_model::party::{HolderRecord, Office};
use tir_model::{Country, OfficeCode, TirId};

use super::deferred::{Deferred, GuaranteeColumns};
use super::{LOCK_WRITERS, pool_error};
use crate::engine::{BoundParty, Command, OutboxItem, Reply, RevokedParty, StoredReply, Tx, run_batch};
use crate::env::{Env, Stamp};
use crate::fallback;
use crate::journal::{GENESIS, JournalEntry};
use crate::keys::{ServerKey, SignedHead};
use crate::retention::Pruning;
use crate::rows::{from_doc, keys, risk, to_doc};
use crate::writer::{Batch, BatchWriter, Job, prune_if_due, write_isolated};
use crate::{AssessmentRecord, InspectionResult, NewParty, PolicyRecord, Profile, Result, StoredModel, Submission};
use tir_model::fallback::FallbackPeriod;
use tir_risk::stats::{Tally, TallyKey};

/// `risk::ASSESSMENT_INSERT` for many rows: arrays in, in their order (the `id`s follow it).
const ASSESSMENTS_INSERT: &str = "INSERT INTO risk_assessments
        (administration, guarantee, operation, office, source_cursor, assessed_at_ms, holder, record)
    SELECT administration, guarantee, operation, office, source_cursor, assessed_at_ms, holder, record
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[])
         WITH ORDINALITY AS t(administration, guarantee, operation, office, source_cursor, assessed_at_ms, holder, record, n)
    ORDER BY n";

/// The results of many (administration, guarantee) in one statement, as `risk::RESULTS_OF_GUARANTEE` orders them.
const RESULTS_OF: &str = "SELECT r.doc FROM risk_results r
    JOIN unnest($1::text[], $2::text[]) AS k(administration, guarantee)
      ON r.administration = k.administration AND r.guarantee = k.guarantee
    ORDER BY r.administration, r.guarantee, r.recorded_at_ms, r.office";

/// `risk::TALLY_ADD` for many keys (each once) in one statement.
const TALLIES_ADD: &str = "INSERT INTO risk_tallies (administration, day, selector, volume, inspected, hits, revenue)
    SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::float8[])
    ON CONFLICT (administration, day, selector) DO UPDATE SET volume = risk_tallies.volume + excluded.volume,
        inspected = risk_tallies.inspected + excluded.inspected, hits = risk_tallies.hits + excluded.hits,
        revenue = risk_tallies.revenue + excluded.revenue";

pub(super) async fn writer_loop(pool: Pool, mut jobs: mpsc::Receiver<Job>, mut env: Env, mut pruning: Pruning) {
    let mut writer = PgWriter { pool };
    while let Some(first) = jobs.recv().await {
        let batch = Batch::drain(first, &mut jobs, &mut env);
        prune_if_due(&mut writer, &mut pruning, &batch).await;
        let results = write_isolated(&mut writer, &batch).await;
        for (waiter, result) in batch.answers(results) {
            let _ = waiter.send(result);
        }
    }
}

struct PgWriter {
    pool: Pool,
}

impl BatchWriter for PgWriter {
    const BACKEND: &'static str = "postgres";

    async fn write_batch(&mut self, commands: &[Command], stamps: &[Stamp]) -> Result<Vec<Reply>> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let mut pg = PgTx {
            client: &client,
            deferred: Deferred::default(),
            dirty: Vec::new(),
            guarantees: HashMap::new(),
            replies: HashMap::new(),
            offices: HashMap::new(),
            holders: HashMap::new(),
        };
        let result = run_batch(&mut pg, commands, stamps).await;
        if result.is_err() && client.batch_execute("ROLLBACK").await.is_err() {
            // A connection that may still be inside a transaction never goes back to the pool.
            drop(deadpool_postgres::Object::take(client));
        }
        result
    }

    async fn prune_refusals(&mut self, stored_before_ms: i64, limit: usize) -> Result<usize> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let lock_stmt = client.prepare_cached("SELECT pg_advisory_xact_lock($1)").await?;
        // `status <> 200` as the partial index idempotency_refusals has it. The
        // rows go by ctid (a TID scan; a join on the key scanned the whole
        // table), which no other writer can change while this one holds the lock.
        let delete_stmt = client
            .prepare_cached(
                "DELETE FROM idempotency WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM idempotency
                     WHERE status <> 200 AND stored_at_ms < $1 ORDER BY stored_at_ms LIMIT $2))",
            )
            .await?;
        let limit = crate::sql_limit(limit);
        // One round trip, as a batch's: BEGIN, the writers' lock, the delete, COMMIT.
        let pruned = async {
            let (_, _, deleted, _) = try_join4(
                client.batch_execute("BEGIN"),
                client.execute(&lock_stmt, &[&LOCK_WRITERS]),
                client.execute(&delete_stmt, &[&stored_before_ms, &limit]),
                client.batch_execute("COMMIT"),
            )
            .await?;
            Ok::<_, tokio_postgres::Error>(deleted)
        }
        .await;
        match pruned {
            Ok(deleted) => Ok(usize::try_from(deleted).unwrap_or(usize::MAX)),
            Err(e) => {
                if client.batch_execute("ROLLBACK").await.is_err() {
                    drop(deadpool_postgres::Object::take(client));
                }
                Err(e.into())
            }
        }
    }
}

/// A write transaction, opened and committed by hand so that BEGIN and COMMIT
/// travel with the statements next to them instead of costing round trips of
/// their own. The message path's inserts are deferred and written before
/// commit as one multi-row INSERT per table; what the batch wrote is read back
/// from the overlays.
pub(super) struct PgTx<'a> {
    client: &'a deadpool_postgres::Client,
    deferred: Deferred,
    /// References whose latest version in `guarantees` is still to be written,
    /// with the time of that version.
    dirty: Vec<(String, i64)>,
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

#[async_trait]
#[async_trait]
impl Tx for PgTx<'_> {
    async fn commit(&mut self) -> Result<()> {
        let deferred = std::mem::take(&mut self.deferred);
        let mut g = GuaranteeColumns::default();
        for (reference, at_ms) in std::mem::take(&mut self.dirty) {
            if let Some(Some(guarantee)) = self.guarantees.get(&reference) {
                g.push(guarantee, at_ms);
            }
        }
        deferred.write_and_commit(self.client, g).await
    }

    async fn journal_append(&mut self, e: &JournalEntry) -> Result<()> {
        self.deferred.journal(e);
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

    async fn idempotency_put(&mut self, key: [&str; 3], reply: &Reply, at_ms: i64) -> Result<()> {
        self.deferred.reply(key, reply, at_ms);
        let [sender, message_id, body_hash] = key;
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
        let reference = g.reference.to_string();
        match self.dirty.iter_mut().find(|(r, _)| *r == reference) {
            Some((_, last_ms)) => *last_ms = at_ms,
            None => self.dirty.push((reference.clone(), at_ms)),
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

    async fn customs_countries(&mut self, countries: &[Country]) -> Result<Vec<Country>> {
        let codes: Vec<&str> = countries.iter().map(|c| c.as_str()).collect();
        let statement = self
            .client
            .prepare_cached(
                "SELECT DISTINCT country FROM parties WHERE country = ANY($1) AND kind = 'customs' AND revoked_at_ms IS NULL",
            )
            .await?;
        let rows = self.client.query(&statement, &[&codes]).await?;
        let found: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        Ok(countries.iter().copied().filter(|c| found.iter().any(|f| f == c.as_str())).collect())
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

    async fn outbox_push(&mut self, item: &OutboxItem<'_>) -> Result<()> {
        self.deferred.notification(item);
        Ok(())
    }

    async fn event_push(&mut self, reference: &str, e: &Event) -> Result<()> {
        self.deferred.event(reference, e);
        Ok(())
    }

    async fn arrival_put(&mut self, a: &crate::console::ArrivalWrite) -> Result<()> {
        self.deferred.arrival(a);
        Ok(())
    }

    async fn crossing_insert(&mut self, c: &crate::console::CrossingRow) -> Result<()> {
        self.deferred.crossing(c);
        Ok(())
    }

    async fn party_revoke(&mut self, id: &str, at_ms: i64) -> Result<Option<RevokedParty>> {
        let changed = self
            .exec("UPDATE parties SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL", &[&id, &at_ms])
            .await?;
        let row = self.opt("SELECT kind, name, revoked_at_ms FROM parties WHERE id = $1", &[&id]).await?;
        Ok(row.map(|r| RevokedParty {
            kind: r.get(0),
            name: r.get(1),
            revoked_at_ms: r.get(2),
            newly_revoked: changed == 1,
        }))
    }

    async fn party_bind_certificate(
        &mut self,
        id: &str,
        certificate_sha256: Option<&str>,
    ) -> Result<Option<BoundParty>> {
        let changed = self
            .exec(
                "UPDATE parties SET certificate_sha256 = $2 WHERE id = $1 AND certificate_sha256 IS DISTINCT FROM $2",
                &[&id, &certificate_sha256],
            )
            .await?;
        let row = self.opt("SELECT kind, name FROM parties WHERE id = $1", &[&id]).await?;
        Ok(row.map(|r| BoundParty { kind: r.get(0), name: r.get(1), changed: changed == 1 }))
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

    async fn profile_versions(&mut self, administration: Country, id: &str) -> Result<Vec<Profile>> {
        super::reads::profile_versions(self.client, administration.as_str(), id).await
    }

    async fn profile_insert(&mut self, profile: &Profile, at_ms: i64) -> Result<()> {
        let version = i32::try_from(profile.version).map_err(crate::corrupt)?;
        self.exec(
            "INSERT INTO risk_profiles (administration, id, version, doc, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
            &[&profile.administration.as_str(), &profile.id, &version, &to_doc(profile), &at_ms],
        )
        .await?;
        Ok(())
    }

    // Read after `begin` took the writers' lock: no other server moves the cursor until commit.
    async fn risk_cursor_get(&mut self) -> Result<i64> {
        let row = self.opt(risk::CURSOR_GET, &[]).await?;
        row.map(|r| r.get(0)).ok_or_else(|| crate::corrupt("risk_cursor has no row"))
    }

    async fn risk_cursor_set(&mut self, cursor: i64) -> Result<()> {
        self.exec(risk::CURSOR_SET, &[&cursor]).await?;
        Ok(())
    }

    async fn assessments_insert(&mut self, records: &[AssessmentRecord], docs: &[String]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        // Column by column, one statement: a round trip per record would hold every writer's lock that long.
        let column = |f: fn(&AssessmentRecord) -> String| records.iter().map(f).collect::<Vec<String>>();
        let number = |f: fn(&AssessmentRecord) -> i64| records.iter().map(f).collect::<Vec<i64>>();
        self.exec(
            ASSESSMENTS_INSERT,
            &[
                &column(|r| r.administration.to_string()),
                &column(|r| r.guarantee.clone()),
                &number(|r| r.assessment.operation),
                &column(|r| r.assessment.office.clone()),
                &number(|r| r.source_cursor),
                &number(|r| r.assessment.assessed_at.unix_ms()),
                &column(|r| r.holder.clone()),
                &docs,
            ],
        )
        .await?;
        Ok(())
    }

    async fn result_put(&mut self, r: &InspectionResult) -> Result<bool> {
        let administration = r.administration.as_str();
        let new = self.opt(risk::RESULT_EXISTS, &[&administration, &r.guarantee, &r.office]).await?.is_none();
        let at_ms = r.recorded_at.unix_ms();
        self.exec(
            risk::RESULT_PUT,
            &[&administration, &r.guarantee, &r.office, &r.outcome.as_str(), &at_ms, &to_doc(r)],
        )
        .await?;
        Ok(new)
    }

    async fn results_of(&mut self, keys: &[(Country, String)]) -> Result<Vec<InspectionResult>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let administrations: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let guarantees: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let stmt = self.client.prepare_cached(RESULTS_OF).await?;
        let rows = self.client.query(&stmt, &[&administrations, &guarantees]).await?;
        rows.iter().map(|r| from_doc(r.get(0))).collect()
    }

    async fn assessments_of(&mut self, administration: Country, guarantee: &str) -> Result<Vec<AssessmentRecord>> {
        let stmt = self.client.prepare_cached(&risk::assessments_of_guarantee()).await?;
        let rows = self.client.query(&stmt, &[&administration.as_str(), &guarantee]).await?;
        rows.iter().map(|r| from_doc(r.get(0))).collect()
    }

    async fn tallies_add(&mut self, changes: &[(TallyKey, Tally)]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let administrations: Vec<&str> = changes.iter().map(|(k, _)| k.0.as_str()).collect();
        let days: Vec<i32> = changes.iter().map(|(k, _)| k.1).collect();
        let selectors: Vec<&str> = changes.iter().map(|(k, _)| k.2.as_str()).collect();
        let number = |f: fn(&Tally) -> i64| changes.iter().map(|(_, t)| f(t)).collect::<Vec<i64>>();
        let revenue: Vec<f64> = changes.iter().map(|(_, t)| t.revenue).collect();
        self.exec(
            TALLIES_ADD,
            &[
                &administrations,
                &days,
                &selectors,
                &number(|t| t.volume),
                &number(|t| t.inspected),
                &number(|t| t.hits),
                &revenue,
            ],
        )
        .await?;
        Ok(())
    }

    async fn model_get(&mut self, administration: Country, version: &str) -> Result<Option<(StoredModel, String)>> {
        let row = self.opt(risk::MODEL_GET, &[&administration.as_str(), &version]).await?;
        row.map(|r| Ok((from_doc(r.get(0))?, r.get(1)))).transpose()
    }

    async fn model_insert(&mut self, m: &StoredModel, model_sha256: &str) -> Result<()> {
        self.exec(
            risk::MODEL_INSERT,
            &[&m.administration.as_str(), &m.version, &risk::metadata_doc(m), &model_sha256, &m.model_json],
        )
        .await?;
        Ok(())
    }

    async fn policy_put(&mut self, p: &PolicyRecord) -> Result<()> {
        let at_ms = p.updated_at.unix_ms();
        self.exec(risk::POLICY_PUT, &[&p.administration.as_str(), &crate::policy_office_key(p), &to_doc(p), &at_ms])
            .await?;
        Ok(())
    }
    async fn key_current(&mut self) -> Result<Option<ServerKey>> {
        self.opt(keys::CURRENT, &[]).await?.as_ref().map(keys::current).transpose()
    }

    async fn key_insert(&mut self, key: &ServerKey) -> Result<()> {
        let (public, private) = (key.public_key_hex(), key.private_key_hex());
        self.exec(keys::INSERT, &[&key.key_id, &public, &private, &key.created_at_ms]).await?;
        Ok(())
    }

    async fn key_retire(&mut self, key_id: &str, at_ms: i64) -> Result<()> {
        self.exec(keys::RETIRE, &[&at_ms, &key_id]).await?;
        Ok(())
    }

    async fn head_latest(&mut self) -> Result<Option<SignedHead>> {
        self.opt(keys::HEAD_LATEST, &[]).await?.as_ref().map(keys::head).transpose()
    }

    async fn holder_keys_of(&mut self, tir_id: &str) -> Result<Vec<crate::HolderKey>> {
        let stmt = self.client.prepare_cached(keys::HOLDER_KEYS).await?;
        self.client.query(&stmt, &[&tir_id]).await?.iter().map(keys::holder_key).collect()
    }

    async fn holder_key_insert(&mut self, k: &crate::HolderKey) -> Result<()> {
        self.exec(
            keys::HOLDER_KEY_INSERT,
            &[&k.tir_id, &k.key_id, &k.public_key, &k.registered_by, &k.registered_at_ms],
        )
        .await?;
        Ok(())
    }

    async fn holder_key_revoke(&mut self, tir_id: &str, key_id: &str, at_ms: i64) -> Result<()> {
        self.exec(keys::HOLDER_KEY_REVOKE, &[&at_ms, &tir_id, &key_id]).await?;
        Ok(())
    }

    async fn head_insert(&mut self, h: &SignedHead) -> Result<()> {
        self.exec(keys::HEAD_INSERT, &[&h.entries, &h.head, &h.signed_at, &h.signed_at_ms, &h.key_id, &h.signature])
            .await?;
        Ok(())
    }

    async fn session_write(&mut self, write: &crate::SessionWrite, at_ms: i64) -> Result<bool> {
        use crate::sessions::{EXPIRED_PER_OPEN, SessionWrite, sql};
        let changed = match write {
            SessionWrite::Open { id_hash, token_hash, csrf, expire_before_ms } => {
                self.exec(sql::EXPIRE, &[expire_before_ms, &EXPIRED_PER_OPEN]).await?;
                self.exec(sql::OPEN, &[id_hash, token_hash, csrf, &at_ms]).await?
            }
            SessionWrite::Seen { id_hash } => self.exec(sql::SEEN, &[&at_ms, id_hash]).await?,
            SessionWrite::Close { id_hash } => self.exec(sql::CLOSE, &[id_hash]).await?,
        };
        Ok(changed == 1)
    }

    async fn push_endpoint_get(&mut self, party: &str) -> Result<Option<crate::PushEndpoint>> {
        self.opt(&crate::push::endpoints_sql(true), &[&party]).await?.as_ref().map(crate::push::endpoint).transpose()
    }

    async fn push_endpoint_put(&mut self, e: &crate::PushEndpoint) -> Result<()> {
        self.exec(
            crate::push::ENDPOINT_UPSERT,
            &[
                &e.party,
                &e.feed,
                &e.url,
                &e.secret,
                &e.status,
                &e.paused_reason,
                &e.registered_at_ms,
                &e.generation,
                &e.confirmed_cursor,
                &e.failures,
                &e.first_failure_ms,
                &e.next_attempt_ms,
                &e.lease_owner,
                &e.lease_until_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn push_attempt_insert(&mut self, a: &crate::PushAttempt) -> Result<()> {
        let confirmed = i64::from(a.confirmed);
        self.exec(
            crate::push::ATTEMPT_INSERT,
            &[&a.party, &a.cursor, &a.at_ms, &a.http_status, &a.error, &a.next_attempt_ms, &confirmed],
        )
        .await?;
        Ok(())
    }

    async fn fallback_periods_of(&mut self, scope: &str) -> Result<Vec<FallbackPeriod>> {
        let stmt = self.client.prepare_cached(fallback::PERIODS_OF_SCOPE).await?;
        self.client.query(&stmt, &[&scope]).await?.iter().map(|r| from_doc(r.get(0))).collect()
    }

    async fn fallback_get(&mut self, id: &str) -> Result<Option<FallbackPeriod>> {
        self.opt(fallback::PERIOD_GET, &[&id]).await?.map(|r| from_doc(r.get(0))).transpose()
    }

    async fn fallback_put(&mut self, p: &FallbackPeriod) -> Result<()> {
        self.exec(fallback::PERIOD_PUT, &[&p.id, &p.scope.as_str(), &p.from.unix_ms(), &to_doc(p)]).await?;
        Ok(())
    }

    async fn party_feeds(&mut self) -> Result<Vec<String>> {
        let stmt = self.client.prepare_cached(fallback::PARTY_FEEDS).await?;
        let mut feeds: Vec<String> = self
            .client
            .query(&stmt, &[])
            .await?
            .iter()
            .filter_map(|r| {
                let (country, tir_id): (Option<String>, Option<String>) = (r.get(2), r.get(3));
                fallback::feed_key(r.get(0), r.get(1), country.as_deref(), tir_id.as_deref())
            })
            .collect();
        feeds.sort();
        feeds.dedup();
        Ok(feeds)
    }
}
