//! PostgreSQL backend. Several tirhub servers may share one database: every
//! write transaction first takes one advisory transaction lock, so journal
//! order, idempotency and state transitions hold across processes. Each
//! server batches its own messages into one transaction (group commit).

use async_trait::async_trait;
use deadpool_postgres::{Connect, Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::future::BoxFuture;
use tokio_postgres::NoTls;

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
    Store, StoreError, StoredModel, TokenParty,
};

mod deferred;
mod reads;
mod schema;
mod tx;

/// Advisory lock key ("TIR" + purpose) every write transaction takes first.
const LOCK_WRITERS: i64 = 0x5449_5200_0001;
const POOL_CONNECTIONS_MAX: usize = 16;

pub struct PgStore {
    pool: Pool,
    writes: Writes,
}

fn pool_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Pool(e.to_string())
}

impl PgStore {
    /// Connects to `url` and migrates its schema, with the system clock and
    /// random admin message ids.
    pub async fn open(url: &str) -> Result<PgStore> {
        PgStore::open_with(url, Env::system()).await
    }

    /// As `open`, with the writer's clock and id source given.
    pub async fn open_with(url: &str, env: Env) -> Result<PgStore> {
        PgStore::open_with_options(url, env, StoreOptions::default()).await
    }

    /// As `open_with`, with options (such as how long refusals are kept) given.
    pub async fn open_with_options(url: &str, env: Env, options: StoreOptions) -> Result<PgStore> {
        let config: tokio_postgres::Config = url.parse().map_err(|_| StoreError::BadUrl(url.to_owned()))?;
        let connect = OnStoreRuntime { runtime: tokio::runtime::Handle::current() };
        let manager = Manager::from_connect(config, connect, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(POOL_CONNECTIONS_MAX).build().map_err(pool_error)?;
        let mut client = pool.get().await.map_err(pool_error)?;
        schema::migrate(&mut client).await?;
        drop(client);
        let (writes, jobs) = Writes::channel();
        tokio::spawn(tx::writer_loop(pool.clone(), jobs, env, Pruning::new(&options)));
        Ok(PgStore { pool, writes })
    }
}

/// Makes every pooled connection on the runtime that opened the store. A
/// connection's socket and task belong to the runtime they were made on, and
/// the risk assessor runs on a background runtime of its own: a connection it
/// happened to open would otherwise serve the routes at its low priority.
struct OnStoreRuntime {
    runtime: tokio::runtime::Handle,
}

type Connected = (tokio_postgres::Client, tokio::task::JoinHandle<()>);

async fn connect_here(config: tokio_postgres::Config) -> std::result::Result<Connected, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    let task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok((client, task))
}

impl Connect for OnStoreRuntime {
    fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> BoxFuture<'_, std::result::Result<Connected, tokio_postgres::Error>> {
        let config = config.clone();
        Box::pin(async move {
            match self.runtime.spawn(connect_here(config.clone())).await {
                Ok(connected) => connected,
                // The store's runtime is shutting down: this caller's runtime is all there is.
                Err(_) => connect_here(config).await,
            }
        })
    }
}

#[async_trait]
impl Store for PgStore {
    async fn write(&self, command: Command) -> Result<Reply> {
        self.writes.write(command).await
    }

    async fn token_party(&self, token_hash: &str) -> Result<Option<TokenParty>> {
        reads::token_party(&self.pool, token_hash).await
    }

    async fn guarantee(&self, reference: &GuaranteeRef) -> Result<Option<Guarantee>> {
        reads::doc_by_key(&self.pool, "SELECT doc FROM guarantees WHERE reference = $1", reference.as_str()).await
    }

    async fn office(&self, code: &OfficeCode) -> Result<Option<Office>> {
        reads::doc_by_key(&self.pool, "SELECT doc FROM offices WHERE code = $1", code.as_str()).await
    }

    async fn holder(&self, tir_id: &TirId) -> Result<Option<HolderRecord>> {
        reads::doc_by_key(&self.pool, "SELECT doc FROM holders WHERE tir_id = $1", tir_id.as_str()).await
    }

    async fn parties(&self, after: Option<&str>, limit: usize) -> Result<Vec<crate::PartyListing>> {
        reads::parties(&self.pool, after, limit).await
    }

    async fn offices(&self, after: Option<&OfficeCode>, limit: usize) -> Result<Vec<Office>> {
        let after = after.map_or("", OfficeCode::as_str);
        reads::docs_after(&self.pool, "SELECT doc FROM offices WHERE code > $2 ORDER BY code LIMIT $1", after, limit)
            .await
    }

    async fn holders(&self, after: Option<&TirId>, limit: usize) -> Result<Vec<HolderRecord>> {
        let after = after.map_or("", TirId::as_str);
        reads::docs_after(
            &self.pool,
            "SELECT doc FROM holders WHERE tir_id > $2 ORDER BY tir_id LIMIT $1",
            after,
            limit,
        )
        .await
    }

    async fn profiles(&self, administration: Country) -> Result<Vec<Profile>> {
        reads::profiles(&self.pool, administration.as_str()).await
    }

    async fn profile_history(&self, administration: Country, id: &str) -> Result<Option<ProfileHistory>> {
        let client = self.pool.get().await.map_err(pool_error)?;
        crate::history_from(id, reads::profile_versions(&client, administration.as_str(), id).await?)
    }

    async fn risk_cursor(&self) -> Result<i64> {
        reads::risk_cursor(&self.pool).await
    }

    async fn assessments(&self, administration: Country, reference: &str) -> Result<Vec<AssessmentRecord>> {
        reads::assessments(&self.pool, administration.as_str(), reference).await
    }

    async fn recent_assessments(
        &self,
        administration: Country,
        office: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AssessmentRecord>> {
        reads::recent_assessments(&self.pool, administration.as_str(), office, limit).await
    }

    async fn all_assessments(&self, administration: Country) -> Result<Vec<AssessmentRecord>> {
        reads::all_assessments(&self.pool, administration.as_str()).await
    }

    async fn holder_history(&self, administration: Country, holder: &str) -> Result<HolderHistory> {
        reads::holder_history(&self.pool, administration.as_str(), holder).await
    }

    async fn results(&self, administration: Country) -> Result<Vec<InspectionResult>> {
        reads::results(&self.pool, administration.as_str()).await
    }

    async fn risk_tallies(&self, administration: Country) -> Result<Vec<(i32, String, tir_risk::stats::Tally)>> {
        reads::risk_tallies(&self.pool, administration.as_str()).await
    }

    async fn latest_model(&self, administration: Country) -> Result<Option<StoredModel>> {
        reads::latest_model(&self.pool, administration.as_str()).await
    }

    async fn models(&self, administration: Country) -> Result<Vec<StoredModel>> {
        reads::models(&self.pool, administration.as_str()).await
    }

    async fn policies(&self, administration: Country) -> Result<Vec<PolicyRecord>> {
        reads::policies(&self.pool, administration.as_str()).await
    }

    async fn risk_feed(&self, after: i64, limit: usize) -> Result<Vec<NotificationRow>> {
        reads::risk_feed(&self.pool, after, limit).await
    }

    async fn notifications(&self, recipient: Option<&str>, after: i64, limit: usize) -> Result<Vec<NotificationRow>> {
        reads::notifications(&self.pool, recipient, after, limit).await
    }

    async fn timeline(&self, reference: &GuaranteeRef) -> Result<Vec<Event>> {
        reads::timeline(&self.pool, reference.as_str()).await
    }

    async fn fallback_periods(&self) -> Result<Vec<tir_model::fallback::FallbackPeriod>> {
        reads::docs(&self.pool, crate::fallback::PERIODS_ALL, &[]).await
    }

    async fn fallback_candidates(&self, id: &str) -> Result<Vec<(Guarantee, bool)>> {
        reads::fallback_candidates(&self.pool, id).await
    }

    async fn verify_journal(&self) -> Result<Verdict> {
        reads::verify_journal(&self.pool).await
    }

    async fn journal(&self, from_seq: i64, limit: usize) -> Result<Vec<JournalEntry>> {
        reads::journal(&self.pool, from_seq, limit).await
    }

    async fn journal_head_seq(&self) -> Result<i64> {
        reads::journal_head_seq(&self.pool).await
    }

    async fn journal_of(&self, reference: &GuaranteeRef, limit: usize) -> Result<Vec<JournalEntry>> {
        reads::journal_of(&self.pool, reference.as_str(), limit).await
    }

    async fn arrivals(&self, country: Country, limit: usize) -> Result<Vec<crate::console::Arrival>> {
        reads::arrivals(&self.pool, country.as_str(), limit).await
    }

    async fn crossing_figures(
        &self,
        country: Option<Country>,
        since_ms: i64,
        sample: usize,
    ) -> Result<crate::console::CrossingFigures> {
        reads::crossing_figures(&self.pool, country.map(|c| c.as_str()), since_ms, sample).await
    }

    async fn guarantees_of_holder(
        &self,
        holder: &TirId,
        before: Option<&GuaranteeRef>,
        limit: usize,
    ) -> Result<Vec<Guarantee>> {
        reads::guarantees_by(&self.pool, false, holder.as_str(), before.map(GuaranteeRef::as_str), limit).await
    }

    async fn guarantees_of_chain(
        &self,
        chain: &str,
        before: Option<&GuaranteeRef>,
        limit: usize,
    ) -> Result<Vec<Guarantee>> {
        reads::guarantees_by(&self.pool, true, chain, before.map(GuaranteeRef::as_str), limit).await
    }

    async fn server_keys(&self) -> Result<Vec<crate::PublicKey>> {
        reads::server_keys(&self.pool).await
    }

    async fn signed_head(&self) -> Result<Option<crate::SignedHead>> {
        reads::signed_head(&self.pool).await
    }

    async fn holder_keys(&self, tir_id: &str) -> Result<Vec<crate::HolderKey>> {
        reads::holder_keys(&self.pool, tir_id).await
    }

    async fn console_session(&self, id_hash: &str) -> Result<Option<crate::ConsoleSession>> {
        reads::console_session(&self.pool, id_hash).await
    }

    async fn push_endpoint(&self, party: &str) -> Result<Option<crate::PushEndpoint>> {
        Ok(reads::push_endpoints(&self.pool, Some(party)).await?.pop())
    }

    async fn push_endpoints_active(&self) -> Result<Vec<crate::PushEndpoint>> {
        reads::push_endpoints(&self.pool, None).await
    }

    async fn push_attempts(&self, party: &str, after: i64, through: i64) -> Result<Vec<crate::PushAttempt>> {
        reads::push_attempts(&self.pool, party, after, through).await
    }

    fn write_queue_depth(&self) -> usize {
        self.writes.depth()
    }

    fn writes_queued(&self) -> u64 {
        self.writes.queued()
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
