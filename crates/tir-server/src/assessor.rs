//! The assessor: runs the risk engine from the notification feed, off the
//! message writer's path (docs/risk.md, "When assessments run").
//!
//! It reads every feed after the stored risk cursor. For each item that tells
//! customs of a transport's declaration (E9, E11 before recording, I15 with a
//! recorded or amended declaration) it assesses the operations of the
//! recipient's country, then stores the batch and moves the cursor in one
//! write. That write checks the cursor it started from, so servers sharing one
//! PostgreSQL database never assess an item twice: the loser of a race reads
//! again from where the winner stopped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use serde::Deserialize;
use tir_model::guarantee::Guarantee;
use tir_model::{Country, GuaranteeRef, Timestamp};
use tir_risk::context::{HolderHistory, TransportContext};
use tir_risk::due::operations_due;
use tir_risk::policy::{PolicyConfig, SelectionPolicy};
use tir_risk::records::{AssessmentRecord, Trigger};
use tir_risk::rules::RuleSet;
use tir_risk::serving::Scorer;
use tir_store::{AssessmentBatch, NotificationRow, Store, StoreError};

/// Feed items read per pass: one write stores their assessments.
pub const ASSESSOR_BATCH_ITEMS: usize = 256;
/// How long the assessor sleeps when the feed has nothing new.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How long profiles, policies and the model of an administration are reused
/// before they are read again: an edit takes effect within this time.
const CONFIG_TTL: Duration = Duration::from_secs(5);
/// Recent scores read on start to place an office's thresholds.
const WARM_SCORES: usize = 2_000;
/// How long a holder's history counts are reused: its read walks the holder's
/// assessments, so reading it for every transport cost about 5 % of the
/// server's CPU in `tirhub bench`. A feature, not a record: a few seconds stale is fine.
const HISTORY_TTL: Duration = CONFIG_TTL;
/// A pass waits for the writer to have had nothing but the assessor's own
/// writes queued for this long before it reads, assesses and stores: under
/// load, messages go first, to the cores as well as to the writer.
const WRITER_QUIET: Duration = Duration::from_millis(20);
/// ... but no longer than this, so assessing keeps moving under sustained load
/// (at least one batch, `ASSESSOR_BATCH_ITEMS` feed items, a second).
const WRITER_YIELD_MAX: Duration = Duration::from_secs(1);
/// How often a waiting pass looks at the writer's queue.
const WRITER_LOOK: Duration = Duration::from_millis(2);
/// Cached histories before the stale ones are dropped (bounds memory).
const HISTORIES_MAX: usize = 100_000;

/// How much lower than the routes the assessor's threads run (a Linux nice
/// value, the lowest). Assessing is due before the truck reaches the border,
/// hours ahead, not within the message's milliseconds: under load the cores go
/// to the exchange and the assessor catches up when it eases.
pub const ASSESSOR_NICE: i32 = 19;

/// The assessor on a thread and runtime of its own at `ASSESSOR_NICE`: a
/// low-priority task inside the routes' runtime would still take its turns
/// on their threads.
pub struct AssessorThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl AssessorThread {
    pub fn start(store: Arc<dyn Store>) -> std::io::Result<AssessorThread> {
        // Its blocking pool (the SQLite reads) runs at the same low priority.
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().on_thread_start(lower_priority).build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new().name("tirhub-assessor".into()).spawn(move || {
            lower_priority();
            runtime.block_on(async move {
                tokio::select! {
                    () = Assessor::new(store).run() => {}
                    _ = stopped => {}
                }
            });
        })?;
        Ok(AssessorThread { stop: Some(stop) })
    }

    /// Ends the assessor at its next await: a pass cut short stores nothing,
    /// so the next start reads the same items again.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for AssessorThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: both calls take and return plain integers; only this thread's nice value changes.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, ASSESSOR_NICE) };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "assessor thread keeps its priority");
        }
    }
}

/// What one administration assesses with, as last loaded.
struct Administration {
    loaded_at: Instant,
    rules: RuleSet,
    policies: HashMap<Option<String>, PolicyConfig>,
    scorer: Option<Scorer>,
    model_version: Option<String>,
}

/// The assessor's state between passes.
pub struct Assessor {
    store: Arc<dyn Store>,
    administrations: HashMap<Country, Administration>,
    /// Per (administration, office): the policy with its recent scores.
    offices: HashMap<(Country, String), SelectionPolicy>,
    /// Per (administration, holder): the history counts and when they were read.
    histories: HashMap<(Country, String), (HolderHistory, Instant)>,
    writer: WriterWatch,
}

/// What the assessor last saw of the writer's queue, kept between passes, so
/// passes back to back on an idle writer do not each wait `WRITER_QUIET`
/// (that wait once made the catch-up after a load take 20 s).
struct WriterWatch {
    /// `Store::writes_queued` as last seen, plus the assessor's own writes since.
    seen: u64,
    /// Since when nothing but the assessor's own writes was queued.
    quiet_since: Instant,
}

impl WriterWatch {
    /// `queued`: `Store::writes_queued` now.
    fn look(&mut self, queued: u64) {
        if queued != self.seen {
            self.seen = queued;
            self.quiet_since = Instant::now();
        }
    }

    fn quiet(&self) -> bool {
        self.quiet_since.elapsed() >= WRITER_QUIET
    }

    /// The assessor queued one write of its own.
    fn own_write(&mut self) {
        self.seen += 1;
    }
}

#[derive(Deserialize)]
struct Payload {
    event: String,
}

impl Assessor {
    pub fn new(store: Arc<dyn Store>) -> Assessor {
        // Assume the writer busy at start: the first pass waits for a quiet moment.
        let writer = WriterWatch { seen: store.writes_queued(), quiet_since: Instant::now() };
        Assessor { store, administrations: HashMap::new(), offices: HashMap::new(), histories: HashMap::new(), writer }
    }

    /// Runs until the task is dropped. A failure is logged and retried: the
    /// cursor only moves with a stored batch, so nothing is skipped.
    pub async fn run(mut self) {
        loop {
            match self.pass().await {
                Ok(0) => tokio::time::sleep(IDLE_POLL).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "risk assessment pass failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One pass over the next feed items: how many items it consumed (0: none new).
    pub async fn pass(&mut self) -> Result<usize, StoreError> {
        self.yield_writer().await;
        let after = self.store.risk_cursor().await?;
        let items = self.store.risk_feed(after, ASSESSOR_BATCH_ITEMS).await?;
        let Some(through) = items.last().map(|i| i.cursor) else {
            return Ok(0);
        };
        let mut guarantees: HashMap<String, Option<Guarantee>> = HashMap::new();
        let mut records = Vec::new();
        for item in &items {
            let Some((country, trigger)) = relevant(item) else { continue };
            if !guarantees.contains_key(&item.guarantee_reference) {
                let g = match GuaranteeRef::parse(&item.guarantee_reference) {
                    Ok(reference) => self.store.guarantee(&reference).await?,
                    Err(_) => None,
                };
                guarantees.insert(item.guarantee_reference.clone(), g);
            }
            let Some(guarantee) = guarantees[&item.guarantee_reference].as_ref() else { continue };
            records.extend(self.assess(item, country, trigger, guarantee).await?);
        }
        // Anything queued before this write is someone else's; this one is ours.
        self.writer.look(self.store.writes_queued());
        let reply = self.store.put_assessments(AssessmentBatch { after, through, records }).await;
        self.writer.own_write();
        let reply = reply?;
        match reply.status {
            // 409: another server stored these items first; its cursor is where to go on from.
            200 | 409 => Ok(items.len()),
            _ => Err(StoreError::Write(format!("assessments refused: {} {}", reply.status, reply.body))),
        }
    }

    /// Waits until nothing but the assessor's own writes has been queued for
    /// the writer for `WRITER_QUIET`, at most `WRITER_YIELD_MAX`: the writer is
    /// the exchange's one bottleneck, and an assessment is due hours ahead, not now.
    async fn yield_writer(&mut self) {
        let start = Instant::now();
        loop {
            self.writer.look(self.store.writes_queued());
            if self.writer.quiet() || start.elapsed() >= WRITER_YIELD_MAX {
                return;
            }
            tokio::time::sleep(WRITER_LOOK).await;
        }
    }

    async fn assess(
        &mut self,
        item: &NotificationRow,
        country: Country,
        trigger: Trigger,
        guarantee: &Guarantee,
    ) -> Result<Vec<AssessmentRecord>, StoreError> {
        let due = operations_due(guarantee, country);
        if due.is_empty() {
            return Ok(Vec::new());
        }
        self.load(country).await?;
        let holder = guarantee.holder.as_str().to_owned();
        let history = self.history(country, &holder).await?;
        let now = Timestamp::from_unix_ms(tir_store::now_ms());
        let mut records = Vec::with_capacity(due.len());
        for d in due {
            let Some(context) = TransportContext::build(guarantee, d.operation, country, &d.office, history, now)
            else {
                continue;
            };
            let office = d.office.as_str().to_owned();
            self.warm(country, &office).await?;
            let admin = self.administrations.get_mut(&country).expect("loaded above");
            let score = admin.scorer.as_mut().map(|s| {
                let score = s.score(&context);
                // Later transports read this one in the holder's, HS code's and origin's counts,
                // as they will after the next reload rebuilds them from the store.
                s.observe(&context, None);
                score
            });
            let policy = self.offices.get_mut(&(country, office)).expect("warmed above");
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed(item.cursor, country, d.operation));
            let assessment = policy.assess(&context, &admin.rules, score.as_ref(), &mut rng, now);
            records.push(AssessmentRecord {
                administration: country,
                guarantee: guarantee.reference.as_str().to_owned(),
                holder: holder.clone(),
                trigger,
                source_cursor: item.cursor,
                declaration_version: guarantee.declaration_version,
                assessment,
                context,
            });
        }
        Ok(records)
    }

    /// (Re)loads the administration's profiles, policies and model when stale.
    async fn load(&mut self, country: Country) -> Result<(), StoreError> {
        if self.administrations.get(&country).is_some_and(|a| a.loaded_at.elapsed() < CONFIG_TTL) {
            return Ok(());
        }
        let profiles = self.store.profiles(country).await?;
        // Profiles are compiled when saved; one that no longer compiles is left out, not fatal.
        let rules = RuleSet::new(profiles.iter().filter(|p| p.draft.check().is_ok()).cloned())
            .unwrap_or_else(|_| RuleSet::new(std::iter::empty()).expect("an empty rule set compiles"));
        let policies: HashMap<Option<String>, PolicyConfig> =
            self.store.policies(country).await?.into_iter().map(|p| (p.office, p.config)).collect();
        let previous = self.administrations.remove(&country);
        let latest = self.store.models(country).await?.into_iter().next().map(|m| m.version);
        let (scorer, model_version) = match previous {
            Some(a) if a.model_version == latest => (a.scorer, a.model_version),
            _ => (self.scorer(country).await?, latest),
        };
        // A changed policy starts its office afresh (its thresholds follow the new shares).
        self.offices.retain(|(c, office), policy| {
            *c != country
                || policies.get(&Some(office.clone())).or(policies.get(&None)).cloned().unwrap_or_default()
                    == *policy.config()
        });
        self.administrations
            .insert(country, Administration { loaded_at: Instant::now(), rules, policies, scorer, model_version });
        Ok(())
    }

    async fn scorer(&self, country: Country) -> Result<Option<Scorer>, StoreError> {
        let Some(model) = self.store.latest_model(country).await? else {
            return Ok(None);
        };
        let records = self.store.all_assessments(country).await?;
        let results = self.store.results(country).await?;
        match Scorer::from_stored(&model, &records, &results) {
            Ok(scorer) => Ok(Some(scorer)),
            Err(e) => {
                tracing::warn!(administration = %country, version = %model.version, error = %e,
                    "stored model cannot be served; assessing without it");
                Ok(None)
            }
        }
    }

    /// The holder's history counts as read at most `HISTORY_TTL` ago.
    async fn history(&mut self, country: Country, holder: &str) -> Result<HolderHistory, StoreError> {
        let key = (country, holder.to_owned());
        if let Some((history, read_at)) = self.histories.get(&key)
            && read_at.elapsed() < HISTORY_TTL
        {
            return Ok(*history);
        }
        if self.histories.len() >= HISTORIES_MAX {
            self.histories.retain(|_, (_, read_at)| read_at.elapsed() < HISTORY_TTL);
        }
        let history = self.store.holder_history(country, holder).await?;
        self.histories.insert(key, (history, Instant::now()));
        Ok(history)
    }

    /// Makes the office's policy, its thresholds placed on its recent scores.
    async fn warm(&mut self, country: Country, office: &str) -> Result<(), StoreError> {
        let key = (country, office.to_owned());
        if self.offices.contains_key(&key) {
            return Ok(());
        }
        let admin = &self.administrations[&country];
        let config = admin.policies.get(&Some(office.to_owned())).or(admin.policies.get(&None)).cloned();
        let mut policy = SelectionPolicy::new(config.unwrap_or_default())
            .unwrap_or_else(|_| SelectionPolicy::new(PolicyConfig::default()).expect("the default policy is valid"));
        let recent = self.store.recent_assessments(country, Some(office), WARM_SCORES).await?;
        policy.observe(recent.iter().rev().filter_map(|r| r.assessment.score));
        self.offices.insert(key, policy);
        Ok(())
    }
}

/// The administration and trigger of a feed item that tells customs of a declaration.
fn relevant(item: &NotificationRow) -> Option<(Country, Trigger)> {
    if !tir_store::risk_feed_item(&item.recipient, &item.kind) {
        return None;
    }
    let country = Country::parse(item.recipient.strip_prefix(tir_store::RISK_FEED_RECIPIENTS)?).ok()?;
    let payload: Payload = serde_json::from_str(&item.payload).ok()?;
    Some((country, Trigger::of_event(&payload.event)?))
}

/// The same item assessed again (after a lost race or a restart) draws the same.
fn seed(cursor: i64, country: Country, operation: u16) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cursor.to_le_bytes().iter().chain(country.as_str().as_bytes()).chain(&operation.to_le_bytes()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> WriterWatch {
        WriterWatch { seen: 10, quiet_since: Instant::now() - WRITER_QUIET }
    }

    #[test]
    fn the_assessors_own_writes_leave_the_writer_quiet() {
        let mut w = watch();
        w.look(10);
        w.own_write();
        w.look(11);
        assert!(w.quiet(), "only its own write was queued since the last look");
    }

    #[test]
    fn a_message_queued_in_between_makes_the_writer_busy() {
        let mut w = watch();
        w.look(11);
        assert!(!w.quiet(), "someone else queued a write");
        let mut w = watch();
        w.own_write();
        w.look(12);
        assert!(!w.quiet(), "a message queued beside its own write");
    }

    #[test]
    fn the_writer_is_quiet_again_after_the_quiet_time() {
        let mut w = watch();
        w.look(11);
        w.quiet_since -= WRITER_QUIET;
        w.look(11);
        assert!(w.quiet());
    }
}
