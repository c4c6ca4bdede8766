//! Storage faults a test switches on and off under a running store: a failing
//! write or fsync must answer an error, leave nothing behind, and stop
//! mattering once the fault clears (docs/reliability.md).
//!
//! A `Faults` switch is shared by the test and the store. Given to a
//! backend's writer through its `Env` (`Env::with_faults`), `Fault::Write`
//! makes each command fail inside its transaction after all its work (journal
//! entry, state, feed items, stored answer) and before the commit, so the
//! rollback is what is tested: the durable backends run the same code with or
//! without a switch, which is off unless a test turns it on. The wrapper
//! `FaultyStore` (feature `testing`) opens a store so and adds
//! `Fault::Unavailable`: every write and read fails before reaching the store,
//! as when the database has gone away.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::StoreError;

/// What the store does wrong while the switch is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: the store works.
    None,
    /// Each write command fails inside its transaction, after its work and
    /// before the commit (a failing write, or a failing fsync of the commit).
    Write,
    /// Every write and read fails before reaching the store (`FaultyStore` only).
    Unavailable,
}

impl Fault {
    fn from_u8(value: u8) -> Fault {
        match value {
            1 => Fault::Write,
            2 => Fault::Unavailable,
            _ => Fault::None,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Fault::None => 0,
            Fault::Write => 1,
            Fault::Unavailable => 2,
        }
    }
}

/// A fault switch: clones share it.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<AtomicU8>);

impl Faults {
    pub fn new() -> Faults {
        Faults::default()
    }

    pub fn set(&self, fault: Fault) {
        self.0.store(fault.as_u8(), Ordering::SeqCst);
    }

    /// The store works again.
    pub fn clear(&self) {
        self.set(Fault::None);
    }

    pub fn get(&self) -> Fault {
        Fault::from_u8(self.0.load(Ordering::SeqCst))
    }
}

/// The error an injected write fault makes the transaction fail with.
pub(crate) fn injected_write() -> StoreError {
    StoreError::Write("injected fault: the write failed before its commit".into())
}

#[cfg(feature = "testing")]
pub use wrapper::FaultyStore;

#[cfg(feature = "testing")]
mod wrapper {
    use std::sync::Arc;

    use async_trait::async_trait;
    use tir_model::guarantee::{Event, Guarantee};
    use tir_model::party::{HolderRecord, Office, Party};
    use tir_model::{Country, GuaranteeRef, OfficeCode, TirId};

    use super::{Fault, Faults};
    use crate::engine::{Command, Reply};
    use crate::{
        AssessmentRecord, Env, HolderHistory, InspectionResult, JournalEntry, NotificationRow, PolicyRecord, Profile,
        ProfileHistory, PublicKey, Result, SignedHead, Store, StoreError, StoreOptions, StoredModel, Verdict,
    };

    /// A store that fails while its `Faults` say so, and otherwise is the store it wraps.
    pub struct FaultyStore {
        inner: Arc<dyn Store>,
        faults: Faults,
        /// The inner store's writer holds the switch: it fails `Fault::Write` in the transaction.
        in_writer: bool,
    }

    impl FaultyStore {
        /// Opens the store named by `url` (as `crate::open`) with `faults` given to its
        /// writer, so `Fault::Write` fails commands inside their transaction.
        pub async fn open(url: &str, faults: &Faults) -> Result<FaultyStore> {
            let env = Env::system().with_faults(faults);
            let inner = crate::open_with_options(url, env, StoreOptions::default()).await?;
            Ok(FaultyStore { inner, faults: faults.clone(), in_writer: true })
        }

        /// Wraps a store opened elsewhere: `Fault::Write` then fails writes before they
        /// reach it, unless its `Env` was given the same switch.
        pub fn wrap(inner: Arc<dyn Store>, faults: &Faults) -> FaultyStore {
            FaultyStore { inner, faults: faults.clone(), in_writer: false }
        }

        fn check(&self, write: bool) -> Result<()> {
            match self.faults.get() {
                Fault::Unavailable => Err(StoreError::Pool("injected fault: the store is unavailable".into())),
                Fault::Write if write && !self.in_writer => Err(super::injected_write()),
                _ => Ok(()),
            }
        }
    }

    #[async_trait]
    impl Store for FaultyStore {
        async fn write(&self, command: Command) -> Result<Reply> {
            self.check(true)?;
            self.inner.write(command).await
        }

        async fn profiles(&self, administration: Country) -> Result<Vec<Profile>> {
            self.check(false)?;
            self.inner.profiles(administration).await
        }

        async fn profile_history(&self, administration: Country, id: &str) -> Result<Option<ProfileHistory>> {
            self.check(false)?;
            self.inner.profile_history(administration, id).await
        }

        async fn risk_cursor(&self) -> Result<i64> {
            self.check(false)?;
            self.inner.risk_cursor().await
        }

        async fn assessments(&self, administration: Country, reference: &str) -> Result<Vec<AssessmentRecord>> {
            self.check(false)?;
            self.inner.assessments(administration, reference).await
        }

        async fn recent_assessments(
            &self,
            administration: Country,
            office: Option<&str>,
            limit: usize,
        ) -> Result<Vec<AssessmentRecord>> {
            self.check(false)?;
            self.inner.recent_assessments(administration, office, limit).await
        }

        async fn all_assessments(&self, administration: Country) -> Result<Vec<AssessmentRecord>> {
            self.check(false)?;
            self.inner.all_assessments(administration).await
        }

        async fn holder_history(&self, administration: Country, holder: &str) -> Result<HolderHistory> {
            self.check(false)?;
            self.inner.holder_history(administration, holder).await
        }

        async fn results(&self, administration: Country) -> Result<Vec<InspectionResult>> {
            self.check(false)?;
            self.inner.results(administration).await
        }

        async fn risk_tallies(&self, administration: Country) -> Result<Vec<(i32, String, tir_risk::stats::Tally)>> {
            self.check(false)?;
            self.inner.risk_tallies(administration).await
        }

        async fn latest_model(&self, administration: Country) -> Result<Option<StoredModel>> {
            self.check(false)?;
            self.inner.latest_model(administration).await
        }

        async fn models(&self, administration: Country) -> Result<Vec<StoredModel>> {
            self.check(false)?;
            self.inner.models(administration).await
        }

        async fn policies(&self, administration: Country) -> Result<Vec<PolicyRecord>> {
            self.check(false)?;
            self.inner.policies(administration).await
        }

        async fn party_by_token_hash(&self, token_hash: &str) -> Result<Option<Party>> {
            self.check(false)?;
            self.inner.party_by_token_hash(token_hash).await
        }

        async fn journal_of(&self, reference: &GuaranteeRef, limit: usize) -> Result<Vec<JournalEntry>> {
            self.check(false)?;
            self.inner.journal_of(reference, limit).await
        }

        async fn arrivals(&self, country: Country, limit: usize) -> Result<Vec<crate::console::Arrival>> {
            self.check(false)?;
            self.inner.arrivals(country, limit).await
        }

        async fn crossing_figures(
            &self,
            country: Option<Country>,
            since_ms: i64,
            sample: usize,
        ) -> Result<crate::console::CrossingFigures> {
            self.check(false)?;
            self.inner.crossing_figures(country, since_ms, sample).await
        }

        async fn guarantees_of_holder(
            &self,
            holder: &TirId,
            before: Option<&GuaranteeRef>,
            limit: usize,
        ) -> Result<Vec<Guarantee>> {
            self.check(false)?;
            self.inner.guarantees_of_holder(holder, before, limit).await
        }

        async fn guarantees_of_chain(
            &self,
            chain: &str,
            before: Option<&GuaranteeRef>,
            limit: usize,
        ) -> Result<Vec<Guarantee>> {
            self.check(false)?;
            self.inner.guarantees_of_chain(chain, before, limit).await
        }

        async fn risk_feed(&self, after: i64, limit: usize) -> Result<Vec<NotificationRow>> {
            self.check(false)?;
            self.inner.risk_feed(after, limit).await
        }

        async fn token_party(&self, token_hash: &str) -> Result<Option<crate::TokenParty>> {
            self.check(false)?;
            self.inner.token_party(token_hash).await
        }

        async fn console_session(&self, id_hash: &str) -> Result<Option<crate::ConsoleSession>> {
            self.check(false)?;
            self.inner.console_session(id_hash).await
        }

        async fn push_endpoint(&self, party: &str) -> Result<Option<crate::PushEndpoint>> {
            self.check(false)?;
            self.inner.push_endpoint(party).await
        }

        async fn push_endpoints_active(&self) -> Result<Vec<crate::PushEndpoint>> {
            self.check(false)?;
            self.inner.push_endpoints_active().await
        }

        async fn push_attempts(&self, party: &str, after: i64, through: i64) -> Result<Vec<crate::PushAttempt>> {
            self.check(false)?;
            self.inner.push_attempts(party, after, through).await
        }

        async fn holder_keys(&self, tir_id: &str) -> Result<Vec<crate::HolderKey>> {
            self.check(false)?;
            self.inner.holder_keys(tir_id).await
        }

        async fn guarantee(&self, reference: &GuaranteeRef) -> Result<Option<Guarantee>> {
            self.check(false)?;
            self.inner.guarantee(reference).await
        }

        async fn office(&self, code: &OfficeCode) -> Result<Option<Office>> {
            self.check(false)?;
            self.inner.office(code).await
        }

        async fn holder(&self, tir_id: &TirId) -> Result<Option<HolderRecord>> {
            self.check(false)?;
            self.inner.holder(tir_id).await
        }

        async fn parties(&self, after: Option<&str>, limit: usize) -> Result<Vec<crate::PartyListing>> {
            self.check(false)?;
            self.inner.parties(after, limit).await
        }

        async fn offices(&self, after: Option<&OfficeCode>, limit: usize) -> Result<Vec<Office>> {
            self.check(false)?;
            self.inner.offices(after, limit).await
        }

        async fn holders(&self, after: Option<&TirId>, limit: usize) -> Result<Vec<HolderRecord>> {
            self.check(false)?;
            self.inner.holders(after, limit).await
        }

        async fn notifications(
            &self,
            recipient: Option<&str>,
            after: i64,
            limit: usize,
        ) -> Result<Vec<NotificationRow>> {
            self.check(false)?;
            self.inner.notifications(recipient, after, limit).await
        }

        async fn timeline(&self, reference: &GuaranteeRef) -> Result<Vec<Event>> {
            self.check(false)?;
            self.inner.timeline(reference).await
        }

        async fn fallback_periods(&self) -> Result<Vec<tir_model::fallback::FallbackPeriod>> {
            self.check(false)?;
            self.inner.fallback_periods().await
        }

        async fn fallback_period(&self, id: &str) -> Result<Option<tir_model::fallback::FallbackPeriod>> {
            self.check(false)?;
            self.inner.fallback_period(id).await
        }

        async fn fallback_candidates(&self, id: &str) -> Result<Vec<(Guarantee, bool)>> {
            self.check(false)?;
            self.inner.fallback_candidates(id).await
        }

        async fn verify_journal(&self) -> Result<Verdict> {
            self.check(false)?;
            self.inner.verify_journal().await
        }

        async fn journal(&self, from_seq: i64, limit: usize) -> Result<Vec<JournalEntry>> {
            self.check(false)?;
            self.inner.journal(from_seq, limit).await
        }

        async fn journal_head_seq(&self) -> Result<i64> {
            self.check(false)?;
            self.inner.journal_head_seq().await
        }

        async fn server_keys(&self) -> Result<Vec<PublicKey>> {
            self.check(false)?;
            self.inner.server_keys().await
        }

        async fn signed_head(&self) -> Result<Option<SignedHead>> {
            self.check(false)?;
            self.inner.signed_head().await
        }

        fn write_queue_depth(&self) -> usize {
            self.inner.write_queue_depth()
        }

        fn writes_queued(&self) -> u64 {
            self.inner.writes_queued()
        }

        fn backend(&self) -> &'static str {
            self.inner.backend()
        }
    }
}
