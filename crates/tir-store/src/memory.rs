//! The engine on plain memory: the same `run_batch` as the SQLite and
//! PostgreSQL backends, with nothing written to disk. Made for deterministic
//! tests: opened with a seeded `Env`, the same commands give the same journal
//! (and journal head) as on the durable backends opened with the same `Env`.
//!
//! Each write runs as a batch of its own; batching does not change the
//! journal, since every command is stamped with its own time and id.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use tir_model::fallback::FallbackPeriod;
use tir_model::guarantee::{Event, Guarantee, GuaranteeState};
use tir_model::party::{HolderRecord, Office, PartyKind};
use tir_model::{Country, GuaranteeRef, OfficeCode, TirId};
use tir_risk::stats::{Tally, TallyKey};

use crate::engine::{BoundParty, Command, OutboxItem, Reply, RevokedParty, StoredReply, Tx, run_batch};
use crate::env::Env;
use crate::journal::{GENESIS, JournalEntry, Verdict, Verifier};
use crate::keys::{PublicKey, ServerKey, SignedHead};
use crate::retention::{Pruning, StoreOptions};
use crate::writer::block_on_ready;
use crate::{
    AssessmentRecord, HolderHistory, InspectionResult, NewParty, NotificationRow, PolicyRecord, Profile,
    ProfileHistory, Result, Store, StoreError, StoredModel, TokenParty,
};

/// A store held in memory; see the module documentation.
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

struct Inner {
    state: State,
    env: Env,
    pruning: Pruning,
}

#[derive(Default)]
struct State {
    journal: Vec<JournalEntry>,
    replies: HashMap<(String, String), StoredReply>,
    /// The keys of stored refusals with when they were stored, in store order.
    refusals: VecDeque<(i64, (String, String))>,
    guarantees: HashMap<String, Guarantee>,
    /// Cursor order: an item's cursor is its position plus one.
    outbox: Vec<NotificationRow>,
    events: Vec<(String, Event)>,
    parties: HashMap<String, PartyRow>,
    offices: HashMap<OfficeCode, Office>,
    holders: HashMap<TirId, HolderRecord>,
    /// Every version of every profile, in the order written.
    profiles: Vec<Profile>,
    /// The last feed cursor assessed.
    risk_cursor: i64,
    /// In the order stored.
    assessments: Vec<AssessmentRecord>,
    /// By (administration, guarantee, office).
    results: HashMap<(String, String, String), InspectionResult>,
    /// In the order stored, each with its model's SHA-256.
    models: Vec<(StoredModel, String)>,
    /// Server keys in the order created; signed heads in the order signed.
    keys: Vec<ServerKey>,
    heads: Vec<SignedHead>,
    /// Holders' signing keys in the order registered.
    holder_keys: Vec<crate::HolderKey>,
    /// By (administration, office or `*`).
    policies: HashMap<(String, String), PolicyRecord>,
    /// Push endpoints by party; attempts in the order made.
    push_endpoints: HashMap<String, crate::PushEndpoint>,
    push_attempts: Vec<crate::PushAttempt>,
    /// In the order declared.
    fallback: Vec<FallbackPeriod>,
    /// The arrivals: by (country, reference), when announced and the operations ahead.
    arrivals: HashMap<(Country, String), (i64, Option<u32>)>,
    crossings: Vec<crate::console::CrossingRow>,
    /// The hit rates' sums, as the databases' `risk_tallies`.
    tallies: HashMap<TallyKey, Tally>,
    /// The console's sessions by the SHA-256 of their id.
    sessions: HashMap<String, crate::ConsoleSession>,
}

impl State {
    /// Deletes at most `limit` refusals stored before `stored_before_ms`, oldest first.
    fn prune_refusals(&mut self, stored_before_ms: i64, limit: usize) -> usize {
        let mut deleted = 0;
        while deleted < limit {
            match self.refusals.front() {
                Some((at_ms, _)) if *at_ms < stored_before_ms => {}
                _ => break,
            }
            let Some((_, key)) = self.refusals.pop_front() else { break };
            self.replies.remove(&key);
            deleted += 1;
        }
        deleted
    }
}

#[derive(Clone)]
struct PartyRow {
    party: NewParty,
    created_at_ms: i64,
    revoked_at_ms: Option<i64>,
    certificate_sha256: Option<String>,
}

impl MemoryStore {
    /// An empty store whose writer takes its time and ids from `env`.
    pub fn open_with(env: Env) -> MemoryStore {
        MemoryStore::open_with_options(env, StoreOptions::default())
    }

    /// As `open_with`, with options (such as how long refusals are kept) given.
    pub fn open_with_options(env: Env, options: StoreOptions) -> MemoryStore {
        let pruning = Pruning::new(&options);
        MemoryStore { inner: Mutex::new(Inner { state: State::default(), env, pruning }) }
    }

    /// How many answers are stored (accepted and refused).
    pub fn stored_answers(&self) -> usize {
        self.lock().state.replies.len()
    }

    /// The journal's last (seq, hash): `(0, GENESIS)` while it is empty.
    pub fn journal_head(&self) -> (i64, String) {
        let inner = self.lock();
        inner.state.journal.last().map_or((0, GENESIS.to_owned()), |e| (e.seq, e.hash.clone()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Up to `limit` guarantees that match, by reference descending (as the SQL backends order them).
    fn guarantees_where(
        &self,
        before: Option<&GuaranteeRef>,
        limit: usize,
        matches: impl Fn(&Guarantee) -> bool,
    ) -> Vec<Guarantee> {
        let inner = self.lock();
        let mut found: Vec<&Guarantee> = inner
            .state
            .guarantees
            .values()
            .filter(|g| before.is_none_or(|b| g.reference.as_str() < b.as_str()) && matches(g))
            .collect();
        found.sort_by(|a, b| b.reference.as_str().cmp(a.reference.as_str()));
        found.into_iter().take(limit).cloned().collect()
    }

    /// Runs `command` as a batch of its own, before returning.
    fn apply(&self, command: Command) -> Result<Reply> {
        let mut inner = self.lock();
        let Inner { state, env, pruning } = &mut *inner;
        let stamps = [env.stamp(&command)];
        let now_ms = stamps[0].at_ms;
        if let Some(pass) = pruning.due(now_ms) {
            pruning.done(now_ms, Ok(state.prune_refusals(pass.stored_before_ms, pass.limit)));
        }
        let mut tx = MemoryTx::new(state);
        match block_on_ready(run_batch(&mut tx, std::slice::from_ref(&command), &stamps)) {
            Ok(mut replies) => Ok(replies.remove(0)),
            Err(e) => {
                tx.roll_back();
                Err(StoreError::Write(e.to_string()))
            }
        }
    }
}

/// A change to undo if the transaction rolls back; appends are undone by length.
enum Undo {
    Reply((String, String)),
    Guarantee(String, Option<Box<Guarantee>>),
    Party(String, Option<PartyRow>),
    Office(OfficeCode, Option<Office>),
    Holder(TirId, Option<HolderRecord>),
    RiskCursor(i64),
    RiskResult((String, String, String), Option<InspectionResult>),
    Policy((String, String), Option<PolicyRecord>),
    /// The keys as they were before the first change to them.
    Keys(Vec<ServerKey>),
    /// The holders' keys as they were before the first change to them.
    HolderKeys(Vec<crate::HolderKey>),
    PushEndpoint(String, Option<crate::PushEndpoint>),
    /// The attempts' length before one was added.
    PushAttempts(usize),
    /// The fallback periods as they were before a change.
    Fallback(Vec<FallbackPeriod>),
    Arrival((Country, String), Option<(i64, Option<u32>)>),
    /// How many crossings there were before one was added.
    Crossings(usize),
    Tally(TallyKey, Option<Tally>),
    Session(String, Option<crate::ConsoleSession>),
}

struct MemoryTx<'a> {
    state: &'a mut State,
    undo: Vec<Undo>,
    /// Lengths of the journal, outbox and events when the transaction began.
    appended_from: (usize, usize, usize),
    /// Lengths of the profiles' versions, assessments and models when the transaction began.
    profiles_from: (usize, usize, usize),
    /// Length of the refusals' queue when the transaction began.
    refusals_from: usize,
    /// Length of the signed heads when the transaction began.
    heads_from: usize,
}

impl<'a> MemoryTx<'a> {
    fn new(state: &'a mut State) -> MemoryTx<'a> {
        let appended_from = (state.journal.len(), state.outbox.len(), state.events.len());
        let refusals_from = state.refusals.len();
        let profiles_from = (state.profiles.len(), state.assessments.len(), state.models.len());
        let heads_from = state.heads.len();
        MemoryTx { state, undo: Vec::new(), appended_from, refusals_from, profiles_from, heads_from }
    }

    fn roll_back(self) {
        let state = self.state;
        let (journal, outbox, events) = self.appended_from;
        state.journal.truncate(journal);
        state.outbox.truncate(outbox);
        state.events.truncate(events);
        state.refusals.truncate(self.refusals_from);
        let (profiles, assessments, models) = self.profiles_from;
        state.profiles.truncate(profiles);
        state.assessments.truncate(assessments);
        state.models.truncate(models);
        state.heads.truncate(self.heads_from);
        for undo in self.undo.into_iter().rev() {
            match undo {
                Undo::Reply(key) => {
                    state.replies.remove(&key);
                }
                Undo::Guarantee(k, old) => restore(&mut state.guarantees, k, old.map(|g| *g)),
                Undo::Party(k, old) => restore(&mut state.parties, k, old),
                Undo::Office(k, old) => restore(&mut state.offices, k, old),
                Undo::Holder(k, old) => restore(&mut state.holders, k, old),
                Undo::RiskCursor(old) => state.risk_cursor = old,
                Undo::RiskResult(k, old) => restore(&mut state.results, k, old),
                Undo::Policy(k, old) => restore(&mut state.policies, k, old),
                Undo::Keys(old) => state.keys = old,
                Undo::HolderKeys(old) => state.holder_keys = old,
                Undo::PushEndpoint(k, old) => restore(&mut state.push_endpoints, k, old),
                Undo::PushAttempts(len) => state.push_attempts.truncate(len),
                Undo::Fallback(old) => state.fallback = old,
                Undo::Arrival(k, old) => restore(&mut state.arrivals, k, old),
                Undo::Crossings(len) => state.crossings.truncate(len),
                Undo::Tally(k, old) => restore(&mut state.tallies, k, old),
                Undo::Session(k, old) => restore(&mut state.sessions, k, old),
            }
        }
    }
}

/// Puts back what a key held before the transaction (nothing: removes it).
fn restore<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, old: Option<V>) {
    match old {
        Some(v) => map.insert(key, v),
        None => map.remove(&key),
    };
}

#[async_trait]
impl Tx for MemoryTx<'_> {
    async fn begin(&mut self, _commands: &[Command]) -> Result<(i64, String)> {
        Ok(self.state.journal.last().map_or((0, GENESIS.to_owned()), |e| (e.seq, e.hash.clone())))
    }

    async fn commit(&mut self) -> Result<()> {
        self.undo.clear();
        self.appended_from = (self.state.journal.len(), self.state.outbox.len(), self.state.events.len());
        self.refusals_from = self.state.refusals.len();
        self.profiles_from = (self.state.profiles.len(), self.state.assessments.len(), self.state.models.len());
        self.heads_from = self.state.heads.len();
        Ok(())
    }

    async fn journal_append(&mut self, entry: &JournalEntry) -> Result<()> {
        self.state.journal.push(entry.clone());
        Ok(())
    }

    async fn idempotency_get(&mut self, sender: &str, message_id: &str) -> Result<Option<StoredReply>> {
        Ok(self.state.replies.get(&(sender.to_owned(), message_id.to_owned())).cloned())
    }

    async fn idempotency_put(
        &mut self,
        [sender, message_id, body_hash]: [&str; 3],
        reply: &Reply,
        at_ms: i64,
    ) -> Result<()> {
        let key = (sender.to_owned(), message_id.to_owned());
        let stored = StoredReply { body_hash: body_hash.to_owned(), reply: reply.clone() };
        if reply.status != 200 {
            self.state.refusals.push_back((at_ms, key.clone()));
        }
        if self.state.replies.insert(key.clone(), stored).is_none() {
            self.undo.push(Undo::Reply(key));
        }
        Ok(())
    }

    async fn guarantee_get(&mut self, reference: &str) -> Result<Option<Guarantee>> {
        Ok(self.state.guarantees.get(reference).cloned())
    }

    async fn guarantee_put(&mut self, guarantee: Guarantee, _at_ms: i64) -> Result<()> {
        let reference = guarantee.reference.to_string();
        let old = self.state.guarantees.insert(reference.clone(), guarantee);
        self.undo.push(Undo::Guarantee(reference, old.map(Box::new)));
        Ok(())
    }

    async fn offices_get(&mut self, codes: &[OfficeCode]) -> Result<Vec<Office>> {
        Ok(codes.iter().filter_map(|c| self.state.offices.get(c).cloned()).collect())
    }

    async fn holders_get(&mut self, tir_ids: &[TirId]) -> Result<Vec<HolderRecord>> {
        Ok(tir_ids.iter().filter_map(|t| self.state.holders.get(t).cloned()).collect())
    }

    async fn customs_countries(&mut self, countries: &[Country]) -> Result<Vec<Country>> {
        let parties = &self.state.parties;
        let active = |c: &Country| {
            parties
                .values()
                .any(|p| p.revoked_at_ms.is_none() && p.party.kind == PartyKind::Customs && p.party.country == Some(*c))
        };
        Ok(countries.iter().copied().filter(active).collect())
    }

    async fn outbox_push(&mut self, item: &OutboxItem<'_>) -> Result<()> {
        let cursor = self.state.outbox.len() as i64 + 1;
        self.state.outbox.push(NotificationRow {
            cursor,
            recipient: item.recipient.to_owned(),
            kind: item.kind.to_owned(),
            guarantee_reference: item.reference.to_owned(),
            payload: item.payload.to_owned(),
            created_at_ms: item.at_ms,
        });
        Ok(())
    }

    async fn fallback_periods_of(&mut self, scope: &str) -> Result<Vec<FallbackPeriod>> {
        Ok(sorted_periods(self.state.fallback.iter().filter(|p| p.scope.as_str() == scope)))
    }

    async fn fallback_get(&mut self, id: &str) -> Result<Option<FallbackPeriod>> {
        Ok(self.state.fallback.iter().find(|p| p.id == id).cloned())
    }

    async fn fallback_put(&mut self, period: &FallbackPeriod) -> Result<()> {
        self.undo.push(Undo::Fallback(self.state.fallback.clone()));
        match self.state.fallback.iter_mut().find(|p| p.id == period.id) {
            Some(stored) => *stored = period.clone(),
            None => self.state.fallback.push(period.clone()),
        }
        Ok(())
    }

    async fn party_feeds(&mut self) -> Result<Vec<String>> {
        let mut feeds: Vec<String> = self
            .state
            .parties
            .values()
            .filter(|p| p.revoked_at_ms.is_none())
            .filter_map(|p| {
                let n = &p.party;
                let country = n.country.map(|c| c.to_string());
                let tir_id = n.tir_id.as_ref().map(|t| t.to_string());
                crate::fallback::feed_key(n.kind.as_str(), &n.id, country.as_deref(), tir_id.as_deref())
            })
            .collect();
        feeds.sort();
        feeds.dedup();
        Ok(feeds)
    }

    async fn event_push(&mut self, reference: &str, event: &Event) -> Result<()> {
        self.state.events.push((reference.to_owned(), event.clone()));
        Ok(())
    }

    async fn arrival_put(&mut self, a: &crate::console::ArrivalWrite) -> Result<()> {
        let key = (a.country, a.reference.clone());
        let old = self.state.arrivals.get(&key).copied();
        let row = match old {
            Some((announced_ms, _)) => (announced_ms, a.ahead),
            None if a.announce => (a.at_ms, a.ahead),
            None => return Ok(()),
        };
        self.state.arrivals.insert(key.clone(), row);
        self.undo.push(Undo::Arrival(key, old));
        Ok(())
    }

    async fn crossing_insert(&mut self, c: &crate::console::CrossingRow) -> Result<()> {
        let crossings = &mut self.state.crossings;
        if !crossings.iter().any(|k| k.reference == c.reference && k.operation == c.operation) {
            self.undo.push(Undo::Crossings(crossings.len()));
            crossings.push(c.clone());
        }
        Ok(())
    }

    async fn party_insert(&mut self, party: &NewParty, at_ms: i64) -> Result<()> {
        // The durable backends' unique keys: the id and the token hash.
        let taken = self.state.parties.contains_key(&party.id)
            || self.state.parties.values().any(|p| p.party.token_hash == party.token_hash);
        if taken {
            return Err(StoreError::Write(format!("party {} or its token already exists", party.id)));
        }
        self.state.parties.insert(
            party.id.clone(),
            PartyRow { party: party.clone(), created_at_ms: at_ms, revoked_at_ms: None, certificate_sha256: None },
        );
        self.undo.push(Undo::Party(party.id.clone(), None));
        Ok(())
    }

    async fn party_bind_certificate(
        &mut self,
        id: &str,
        certificate_sha256: Option<&str>,
    ) -> Result<Option<BoundParty>> {
        let Some(row) = self.state.parties.get_mut(id) else { return Ok(None) };
        let changed = row.certificate_sha256.as_deref() != certificate_sha256;
        if changed {
            let old = row.clone();
            row.certificate_sha256 = certificate_sha256.map(str::to_owned);
            self.undo.push(Undo::Party(id.to_owned(), Some(old)));
        }
        let row = &self.state.parties[id];
        Ok(Some(BoundParty { kind: row.party.kind.as_str().to_owned(), name: row.party.name.clone(), changed }))
    }

    async fn party_revoke(&mut self, id: &str, at_ms: i64) -> Result<Option<RevokedParty>> {
        let Some(row) = self.state.parties.get_mut(id) else { return Ok(None) };
        let newly_revoked = row.revoked_at_ms.is_none();
        if newly_revoked {
            let old = row.clone();
            row.revoked_at_ms = Some(at_ms);
            self.undo.push(Undo::Party(id.to_owned(), Some(old)));
        }
        let row = &self.state.parties[id];
        Ok(Some(RevokedParty {
            kind: row.party.kind.as_str().to_owned(),
            name: row.party.name.clone(),
            revoked_at_ms: row.revoked_at_ms.unwrap_or(at_ms),
            newly_revoked,
        }))
    }

    async fn office_put(&mut self, office: &Office) -> Result<()> {
        let old = self.state.offices.insert(office.code.clone(), office.clone());
        self.undo.push(Undo::Office(office.code.clone(), old));
        Ok(())
    }

    async fn holder_put(&mut self, holder: &HolderRecord) -> Result<()> {
        let old = self.state.holders.insert(holder.tir_id.clone(), holder.clone());
        self.undo.push(Undo::Holder(holder.tir_id.clone(), old));
        Ok(())
    }

    async fn profile_versions(&mut self, administration: Country, id: &str) -> Result<Vec<Profile>> {
        Ok(versions_of(&self.state.profiles, administration, id))
    }

    async fn profile_insert(&mut self, profile: &Profile, _at_ms: i64) -> Result<()> {
        self.state.profiles.push(profile.clone());
        Ok(())
    }

    async fn risk_cursor_get(&mut self) -> Result<i64> {
        Ok(self.state.risk_cursor)
    }

    async fn risk_cursor_set(&mut self, cursor: i64) -> Result<()> {
        self.undo.push(Undo::RiskCursor(self.state.risk_cursor));
        self.state.risk_cursor = cursor;
        Ok(())
    }

    async fn assessments_insert(&mut self, records: &[AssessmentRecord], _docs: &[String]) -> Result<()> {
        self.state.assessments.extend_from_slice(records);
        Ok(())
    }

    async fn result_put(&mut self, result: &InspectionResult) -> Result<bool> {
        let key = (result.administration.to_string(), result.guarantee.clone(), result.office.clone());
        let old = self.state.results.insert(key.clone(), result.clone());
        let new = old.is_none();
        self.undo.push(Undo::RiskResult(key, old));
        Ok(new)
    }

    async fn results_of(&mut self, keys: &[(Country, String)]) -> Result<Vec<InspectionResult>> {
        let mut found: Vec<InspectionResult> = self
            .state
            .results
            .values()
            .filter(|r| keys.iter().any(|(a, g)| r.administration == *a && r.guarantee == *g))
            .cloned()
            .collect();
        found.sort_by(|a, b| (&a.guarantee, a.recorded_at, &a.office).cmp(&(&b.guarantee, b.recorded_at, &b.office)));
        Ok(found)
    }

    async fn assessments_of(&mut self, administration: Country, guarantee: &str) -> Result<Vec<AssessmentRecord>> {
        let mut found: Vec<AssessmentRecord> = self
            .state
            .assessments
            .iter()
            .filter(|a| a.administration == administration && a.guarantee == guarantee)
            .cloned()
            .collect();
        found.sort_by_key(assessment_order);
        Ok(found)
    }

    async fn tallies_add(&mut self, changes: &[(TallyKey, Tally)]) -> Result<()> {
        for (key, change) in changes {
            let old = self.state.tallies.get(key).copied();
            let t = old.unwrap_or_default();
            let sum = Tally {
                volume: t.volume + change.volume,
                inspected: t.inspected + change.inspected,
                hits: t.hits + change.hits,
                revenue: t.revenue + change.revenue,
            };
            self.state.tallies.insert(key.clone(), sum);
            self.undo.push(Undo::Tally(key.clone(), old));
        }
        Ok(())
    }

    async fn model_get(&mut self, administration: Country, version: &str) -> Result<Option<(StoredModel, String)>> {
        let found = self.state.models.iter().find(|(m, _)| m.administration == administration && m.version == version);
        Ok(found.map(|(m, sha256)| (StoredModel { model_json: String::new(), ..m.clone() }, sha256.clone())))
    }

    async fn model_insert(&mut self, model: &StoredModel, model_sha256: &str) -> Result<()> {
        self.state.models.push((model.clone(), model_sha256.to_owned()));
        Ok(())
    }

    async fn key_current(&mut self) -> Result<Option<ServerKey>> {
        Ok(self.state.keys.iter().find(|k| k.retired_at_ms.is_none()).cloned())
    }

    async fn key_insert(&mut self, key: &ServerKey) -> Result<()> {
        self.undo.push(Undo::Keys(self.state.keys.clone()));
        self.state.keys.push(key.clone());
        Ok(())
    }

    async fn key_retire(&mut self, key_id: &str, at_ms: i64) -> Result<()> {
        self.undo.push(Undo::Keys(self.state.keys.clone()));
        for key in self.state.keys.iter_mut().filter(|k| k.key_id == key_id) {
            key.retired_at_ms = Some(at_ms);
        }
        Ok(())
    }

    async fn head_latest(&mut self) -> Result<Option<SignedHead>> {
        Ok(self.state.heads.last().cloned())
    }

    async fn head_insert(&mut self, head: &SignedHead) -> Result<()> {
        self.state.heads.push(head.clone());
        Ok(())
    }

    async fn session_write(&mut self, write: &crate::SessionWrite, at_ms: i64) -> Result<bool> {
        use crate::sessions::{EXPIRED_PER_OPEN, SessionWrite};
        let sessions = &mut self.state.sessions;
        let (id_hash, new) = match write {
            SessionWrite::Open { id_hash, token_hash, csrf, expire_before_ms } => {
                let mut idle: Vec<(i64, String)> = sessions
                    .iter()
                    .filter(|(_, s)| s.seen_ms < *expire_before_ms)
                    .map(|(k, s)| (s.seen_ms, k.clone()))
                    .collect();
                idle.sort();
                for (_, key) in idle.into_iter().take(EXPIRED_PER_OPEN as usize) {
                    let old = sessions.remove(&key);
                    self.undo.push(Undo::Session(key, old));
                }
                let session = crate::ConsoleSession {
                    token_hash: token_hash.clone(),
                    csrf: csrf.clone(),
                    opened_ms: at_ms,
                    seen_ms: at_ms,
                };
                if sessions.contains_key(id_hash) {
                    return Err(StoreError::Corrupt(format!("session {id_hash} exists")));
                }
                (id_hash, Some(session))
            }
            SessionWrite::Seen { id_hash } => match sessions.get(id_hash) {
                Some(s) => (id_hash, Some(crate::ConsoleSession { seen_ms: at_ms, ..s.clone() })),
                None => return Ok(false),
            },
            SessionWrite::Close { id_hash } => {
                if !sessions.contains_key(id_hash) {
                    return Ok(false);
                }
                (id_hash, None)
            }
        };
        let old = match new {
            Some(session) => sessions.insert(id_hash.clone(), session),
            None => sessions.remove(id_hash),
        };
        self.undo.push(Undo::Session(id_hash.clone(), old));
        Ok(true)
    }

    async fn push_endpoint_get(&mut self, party: &str) -> Result<Option<crate::PushEndpoint>> {
        Ok(self.state.push_endpoints.get(party).cloned())
    }

    async fn push_endpoint_put(&mut self, endpoint: &crate::PushEndpoint) -> Result<()> {
        let old = self.state.push_endpoints.insert(endpoint.party.clone(), endpoint.clone());
        self.undo.push(Undo::PushEndpoint(endpoint.party.clone(), old));
        Ok(())
    }

    async fn push_attempt_insert(&mut self, attempt: &crate::PushAttempt) -> Result<()> {
        self.undo.push(Undo::PushAttempts(self.state.push_attempts.len()));
        self.state.push_attempts.push(attempt.clone());
        Ok(())
    }

    async fn holder_keys_of(&mut self, tir_id: &str) -> Result<Vec<crate::HolderKey>> {
        Ok(self.state.holder_keys.iter().filter(|k| k.tir_id == tir_id).cloned().collect())
    }

    async fn holder_key_insert(&mut self, key: &crate::HolderKey) -> Result<()> {
        self.undo.push(Undo::HolderKeys(self.state.holder_keys.clone()));
        self.state.holder_keys.push(key.clone());
        Ok(())
    }

    async fn holder_key_revoke(&mut self, tir_id: &str, key_id: &str, at_ms: i64) -> Result<()> {
        self.undo.push(Undo::HolderKeys(self.state.holder_keys.clone()));
        for key in self.state.holder_keys.iter_mut() {
            if key.tir_id == tir_id && key.key_id == key_id && key.revoked_at_ms.is_none() {
                key.revoked_at_ms = Some(at_ms);
            }
        }
        Ok(())
    }

    async fn policy_put(&mut self, policy: &PolicyRecord) -> Result<()> {
        let key = (policy.administration.to_string(), crate::policy_office_key(policy).to_owned());
        let old = self.state.policies.insert(key.clone(), policy.clone());
        self.undo.push(Undo::Policy(key, old));
        Ok(())
    }
}

/// The order the databases read assessments in, oldest first (stored order last).
fn assessment_order(a: &AssessmentRecord) -> (i64, i64, i64) {
    (a.assessment.assessed_at.unix_ms(), a.source_cursor, a.assessment.operation)
}

/// The versions of one profile, oldest first.
fn versions_of(profiles: &[Profile], administration: Country, id: &str) -> Vec<Profile> {
    let mut versions: Vec<Profile> =
        profiles.iter().filter(|p| p.administration == administration && p.id == id).cloned().collect();
    versions.sort_by_key(|p| p.version);
    versions
}

#[async_trait]
impl Store for MemoryStore {
    async fn write(&self, command: Command) -> Result<Reply> {
        self.apply(command)
    }

    async fn token_party(&self, token_hash: &str) -> Result<Option<TokenParty>> {
        let inner = self.lock();
        let Some(row) =
            inner.state.parties.values().find(|p| p.party.token_hash == token_hash && p.revoked_at_ms.is_none())
        else {
            return Ok(None);
        };
        let p = &row.party;
        let (country, tir_id) = (p.country.map(|c| c.to_string()), p.tir_id.as_ref().map(|t| t.to_string()));
        let party = crate::rows::party_from_columns(p.id.clone(), p.kind.as_str(), country, tir_id)?;
        Ok(Some(TokenParty { party, certificate_sha256: row.certificate_sha256.clone() }))
    }

    async fn guarantee(&self, reference: &GuaranteeRef) -> Result<Option<Guarantee>> {
        Ok(self.lock().state.guarantees.get(reference.as_str()).cloned())
    }

    async fn office(&self, code: &OfficeCode) -> Result<Option<Office>> {
        Ok(self.lock().state.offices.get(code).cloned())
    }

    async fn holder(&self, tir_id: &TirId) -> Result<Option<HolderRecord>> {
        Ok(self.lock().state.holders.get(tir_id).cloned())
    }

    async fn parties(&self, after: Option<&str>, limit: usize) -> Result<Vec<crate::PartyListing>> {
        let inner = self.lock();
        let mut rows: Vec<&PartyRow> = inner.state.parties.values().collect();
        rows.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then_with(|| a.party.id.cmp(&b.party.id)));
        let skip = match after {
            Some(id) => rows.iter().position(|r| r.party.id == id).map_or(rows.len(), |at| at + 1),
            None => 0,
        };
        rows.into_iter()
            .skip(skip)
            .take(limit)
            .map(|row| {
                let p = &row.party;
                let (country, tir_id) = (p.country.map(|c| c.to_string()), p.tir_id.as_ref().map(|t| t.to_string()));
                Ok(crate::PartyListing {
                    party: crate::rows::party_from_columns(p.id.clone(), p.kind.as_str(), country, tir_id)?,
                    name: p.name.clone(),
                    created_at_ms: row.created_at_ms,
                    revoked_at_ms: row.revoked_at_ms,
                    certificate_sha256: row.certificate_sha256.clone(),
                })
            })
            .collect()
    }

    async fn offices(&self, after: Option<&OfficeCode>, limit: usize) -> Result<Vec<Office>> {
        let inner = self.lock();
        let after = after.map_or("", OfficeCode::as_str);
        let mut offices: Vec<Office> =
            inner.state.offices.values().filter(|o| o.code.as_str() > after).cloned().collect();
        offices.sort_by(|a, b| a.code.as_str().cmp(b.code.as_str()));
        offices.truncate(limit);
        Ok(offices)
    }

    async fn holders(&self, after: Option<&TirId>, limit: usize) -> Result<Vec<HolderRecord>> {
        let inner = self.lock();
        let after = after.map_or("", TirId::as_str);
        let mut holders: Vec<HolderRecord> =
            inner.state.holders.values().filter(|h| h.tir_id.as_str() > after).cloned().collect();
        holders.sort_by(|a, b| a.tir_id.as_str().cmp(b.tir_id.as_str()));
        holders.truncate(limit);
        Ok(holders)
    }

    async fn profiles(&self, administration: Country) -> Result<Vec<Profile>> {
        let inner = self.lock();
        let mut latest: std::collections::BTreeMap<&str, &Profile> = std::collections::BTreeMap::new();
        for p in inner.state.profiles.iter().filter(|p| p.administration == administration) {
            if latest.get(p.id.as_str()).is_none_or(|l| l.version < p.version) {
                latest.insert(&p.id, p);
            }
        }
        Ok(latest.into_values().cloned().collect())
    }

    async fn profile_history(&self, administration: Country, id: &str) -> Result<Option<ProfileHistory>> {
        let versions = versions_of(&self.lock().state.profiles, administration, id);
        crate::history_from(id, versions)
    }

    async fn risk_cursor(&self) -> Result<i64> {
        Ok(self.lock().state.risk_cursor)
    }

    async fn arrivals(&self, country: Country, limit: usize) -> Result<Vec<crate::console::Arrival>> {
        let inner = self.lock();
        let state = &inner.state;
        let mut open: Vec<(&String, i64, u32)> = state
            .arrivals
            .iter()
            .filter(|((c, _), _)| *c == country)
            .filter_map(|((_, reference), (announced_ms, ahead))| Some((reference, *announced_ms, (*ahead)?)))
            .collect();
        open.sort_by(|a, b| (b.1, b.0).cmp(&(a.1, a.0)));
        Ok(open
            .into_iter()
            .filter_map(|(reference, announced_ms, ahead)| {
                let guarantee = state.guarantees.get(reference)?;
                // The latest in the order `assessments` reads them: the last stored of the greatest key.
                let assessment = state
                    .assessments
                    .iter()
                    .filter(|a| a.administration == country && a.guarantee == *reference)
                    .max_by_key(|a| assessment_order(a));
                Some(crate::console::Arrival::of(guarantee, country, announced_ms, ahead, assessment))
            })
            .take(limit)
            .collect())
    }

    async fn crossing_figures(
        &self,
        country: Option<Country>,
        since_ms: i64,
        sample: usize,
    ) -> Result<crate::console::CrossingFigures> {
        Ok(crate::console::figures_of(self.lock().state.crossings.iter(), country, since_ms, sample))
    }

    async fn assessments(&self, administration: Country, reference: &str) -> Result<Vec<AssessmentRecord>> {
        let mut found = self.all_assessments(administration).await?;
        found.retain(|a| a.guarantee == reference);
        Ok(found)
    }

    async fn recent_assessments(
        &self,
        administration: Country,
        office: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AssessmentRecord>> {
        let mut found = self.all_assessments(administration).await?;
        found.retain(|a| office.is_none_or(|o| a.assessment.office == o));
        found.reverse();
        found.truncate(limit);
        Ok(found)
    }

    async fn all_assessments(&self, administration: Country) -> Result<Vec<AssessmentRecord>> {
        let inner = self.lock();
        let mut found: Vec<AssessmentRecord> =
            inner.state.assessments.iter().filter(|a| a.administration == administration).cloned().collect();
        // Stable: equal keys keep the order stored, as the databases' `id`.
        found.sort_by_key(assessment_order);
        Ok(found)
    }

    async fn holder_history(&self, administration: Country, holder: &str) -> Result<HolderHistory> {
        let inner = self.lock();
        let guarantees: std::collections::BTreeSet<&str> = inner
            .state
            .assessments
            .iter()
            .filter(|a| a.administration == administration && a.holder == holder)
            .map(|a| a.guarantee.as_str())
            .collect();
        let irregular: std::collections::BTreeSet<&str> = inner
            .state
            .results
            .values()
            .filter(|r| r.administration == administration && r.outcome.is_irregular())
            .map(|r| r.guarantee.as_str())
            .filter(|g| guarantees.contains(g))
            .collect();
        Ok(HolderHistory { transports: guarantees.len() as i64, irregularities: irregular.len() as i64 })
    }

    async fn results(&self, administration: Country) -> Result<Vec<InspectionResult>> {
        let inner = self.lock();
        let mut found: Vec<InspectionResult> =
            inner.state.results.values().filter(|r| r.administration == administration).cloned().collect();
        found.sort_by(|a, b| (a.recorded_at, &a.guarantee, &a.office).cmp(&(b.recorded_at, &b.guarantee, &b.office)));
        Ok(found)
    }

    async fn risk_tallies(&self, administration: Country) -> Result<Vec<(i32, String, Tally)>> {
        let inner = self.lock();
        let mut found: Vec<(i32, String, Tally)> = inner
            .state
            .tallies
            .iter()
            .filter(|(k, _)| k.0 == administration)
            .map(|(k, t)| (k.1, k.2.clone(), *t))
            .collect();
        found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(found)
    }

    async fn latest_model(&self, administration: Country) -> Result<Option<StoredModel>> {
        let inner = self.lock();
        Ok(inner.state.models.iter().rev().find(|(m, _)| m.administration == administration).map(|(m, _)| m.clone()))
    }

    async fn models(&self, administration: Country) -> Result<Vec<StoredModel>> {
        let inner = self.lock();
        Ok(inner
            .state
            .models
            .iter()
            .rev()
            .filter(|(m, _)| m.administration == administration)
            .map(|(m, _)| StoredModel { model_json: String::new(), ..m.clone() })
            .collect())
    }

    async fn policies(&self, administration: Country) -> Result<Vec<PolicyRecord>> {
        let inner = self.lock();
        let mut found: Vec<(&String, &PolicyRecord)> = inner
            .state
            .policies
            .iter()
            .filter(|((a, _), _)| a.as_str() == administration.as_str())
            .map(|((_, office), p)| (office, p))
            .collect();
        found.sort_by_key(|(office, _)| *office);
        Ok(found.into_iter().map(|(_, p)| p.clone()).collect())
    }

    async fn notifications(&self, recipient: Option<&str>, after: i64, limit: usize) -> Result<Vec<NotificationRow>> {
        let inner = self.lock();
        let from = usize::try_from(after.max(0)).unwrap_or(usize::MAX).min(inner.state.outbox.len());
        // As the databases' query: stop at the first row that starts past the page's bytes.
        let mut before = 0;
        Ok(inner.state.outbox[from..]
            .iter()
            .filter(|n| recipient.is_none_or(|r| n.recipient == r))
            .take(limit)
            .take_while(|n| {
                let starts = before;
                before += n.payload.chars().count();
                starts < tir_model::limits::NOTIFICATION_PAGE_BYTES_MAX
            })
            .cloned()
            .collect())
    }

    async fn timeline(&self, reference: &GuaranteeRef) -> Result<Vec<Event>> {
        let inner = self.lock();
        Ok(inner.state.events.iter().filter(|(r, _)| r == reference.as_str()).map(|(_, e)| e.clone()).collect())
    }

    async fn verify_journal(&self) -> Result<Verdict> {
        let inner = self.lock();
        let mut verifier = Verifier::default();
        for entry in &inner.state.journal {
            if !verifier.push(entry) {
                break;
            }
        }
        Ok(verifier.finish())
    }

    async fn journal(&self, from_seq: i64, limit: usize) -> Result<Vec<JournalEntry>> {
        let inner = self.lock();
        Ok(inner.state.journal.iter().filter(|e| e.seq >= from_seq).take(limit).cloned().collect())
    }

    async fn journal_head_seq(&self) -> Result<i64> {
        Ok(self.lock().state.journal.last().map_or(0, |e| e.seq))
    }

    async fn journal_of(&self, reference: &GuaranteeRef, limit: usize) -> Result<Vec<JournalEntry>> {
        let inner = self.lock();
        Ok(inner.state.journal.iter().filter(|e| e.reference == reference.as_str()).take(limit).cloned().collect())
    }

    async fn guarantees_of_holder(
        &self,
        holder: &TirId,
        before: Option<&GuaranteeRef>,
        limit: usize,
    ) -> Result<Vec<Guarantee>> {
        Ok(self.guarantees_where(before, limit, |g| g.holder == *holder))
    }

    async fn guarantees_of_chain(
        &self,
        chain: &str,
        before: Option<&GuaranteeRef>,
        limit: usize,
    ) -> Result<Vec<Guarantee>> {
        Ok(self.guarantees_where(before, limit, |g| g.chain == chain))
    }

    async fn server_keys(&self) -> Result<Vec<PublicKey>> {
        Ok(self.lock().state.keys.iter().map(ServerKey::public).collect())
    }

    async fn signed_head(&self) -> Result<Option<SignedHead>> {
        Ok(self.lock().state.heads.last().cloned())
    }

    async fn holder_keys(&self, tir_id: &str) -> Result<Vec<crate::HolderKey>> {
        Ok(self.lock().state.holder_keys.iter().filter(|k| k.tir_id == tir_id).cloned().collect())
    }

    async fn console_session(&self, id_hash: &str) -> Result<Option<crate::ConsoleSession>> {
        Ok(self.lock().state.sessions.get(id_hash).cloned())
    }

    async fn push_endpoint(&self, party: &str) -> Result<Option<crate::PushEndpoint>> {
        Ok(self.lock().state.push_endpoints.get(party).cloned())
    }

    async fn push_endpoints_active(&self) -> Result<Vec<crate::PushEndpoint>> {
        let inner = self.lock();
        let mut active: Vec<crate::PushEndpoint> =
            inner.state.push_endpoints.values().filter(|e| e.status == crate::push::ACTIVE).cloned().collect();
        active.sort_by(|a, b| a.party.cmp(&b.party));
        Ok(active)
    }

    async fn push_attempts(&self, party: &str, after: i64, through: i64) -> Result<Vec<crate::PushAttempt>> {
        let inner = self.lock();
        let mut found: Vec<crate::PushAttempt> = inner
            .state
            .push_attempts
            .iter()
            .filter(|a| a.party == party && a.cursor > after && a.cursor <= through)
            .cloned()
            .collect();
        // Stable: attempts of one item stay in the order made.
        found.sort_by_key(|a| a.cursor);
        Ok(found)
    }

    async fn fallback_periods(&self) -> Result<Vec<FallbackPeriod>> {
        Ok(sorted_periods(self.lock().state.fallback.iter()))
    }

    async fn fallback_candidates(&self, id: &str) -> Result<Vec<(Guarantee, bool)>> {
        let inner = self.lock();
        let state = &inner.state;
        let recorded = |g: &Guarantee| {
            state.events.iter().any(|(r, e)| r == g.reference.as_str() && e.fallback_period.as_deref() == Some(id))
        };
        let mut found: Vec<(Guarantee, bool)> = state
            .guarantees
            .values()
            .map(|g| (g, recorded(g)))
            .filter(|(g, recorded)| {
                *recorded || matches!(g.state, GuaranteeState::Accepted | GuaranteeState::Cancelled)
            })
            .map(|(g, recorded)| (g.clone(), recorded))
            .collect();
        found.sort_by(|a, b| a.0.reference.as_str().cmp(b.0.reference.as_str()));
        Ok(found)
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

/// Periods by start, then id, as the databases order them.
fn sorted_periods<'a>(periods: impl Iterator<Item = &'a FallbackPeriod>) -> Vec<FallbackPeriod> {
    let mut found: Vec<FallbackPeriod> = periods.cloned().collect();
    found.sort_by(|a, b| (a.from, &a.id).cmp(&(b.from, &b.id)));
    found
}
