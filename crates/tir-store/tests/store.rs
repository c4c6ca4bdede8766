//! One suite of store tests, run against SQLite and PostgreSQL (and, for the
//! clocked cases of the refusals' retention window, in memory too).
//!
//! Every case is an `async fn(Fixture)`; `on_both!` generates a
//! `<case>_on_sqlite` and a `<case>_on_postgres` test for it. PostgreSQL tests
//! need `TIRHUB_TEST_DATABASE_URL` and create their own database.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tir_model::guarantee::{GuaranteeState, OperationState};
use tir_model::message::Request;
use tir_model::party::{HolderRecord, HolderStatus, Office, OfficeRole, Party, PartyKind};
use tir_model::{Country, Date, GuaranteeRef, OfficeCode, TirId};
use tir_risk::rules::{Lane, OfficeScope};
use tir_store::journal::{GENESIS, JournalEntry};
use tir_store::memory::MemoryStore;
use tir_store::retention::PRUNE_INTERVAL;
use tir_store::{
    Env, ManualClock, NewParty, NotificationRow, PgStore, ProfileDraft, ProfileWrite, REFUSAL_RETENTION, RISK_PROFILE,
    Reply, SqliteStore, Store, StoreOptions, Submission,
};
use tir_testkit::fixtures::{HOLDER, SEAL, declaration};
use tir_testkit::{FreshDatabase, TempSqlite};

/// Offices, holder and parties written by `seed`, each journaled.
const SEED_WRITES: i64 = 9;
/// Messages of one transport (E1, E9, I1, I7, then I9/I11/I13 in three countries).
const TRANSPORT_MESSAGES: i64 = 13;
/// Notifications of one transport: 12 E7 to the chain, 1 E9 to TR, 2 I15 each to GE and AZ.
const TRANSPORT_NOTIFICATIONS: usize = 17;
const CHAIN_NOTIFICATIONS: usize = 12;

// ---------------------------------------------------------------------------
// Fixtures: one fresh database per test, removed afterwards.

enum Backend {
    Sqlite(PathBuf),
    Postgres,
}

struct Fixture {
    store: Arc<dyn Store>,
    url: String,
    backend: Backend,
}

impl Fixture {
    /// Drops the store and opens a new one on the same database, like a restart.
    async fn restart(self) -> Fixture {
        let Fixture { store, url, backend } = self;
        assert_eq!(Arc::strong_count(&store), 1, "the old store must really go away");
        drop(store);
        let store = tir_store::open(&url).await.expect("reopen the store");
        Fixture { store, url, backend }
    }

    /// Closes the store, runs `sql` on its database, and opens it again.
    async fn restart_after(self, sql: &str) -> Fixture {
        let Fixture { store, url, backend } = self;
        assert_eq!(Arc::strong_count(&store), 1, "the old store must really go away");
        drop(store);
        match &backend {
            Backend::Sqlite(path) => rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap(),
            Backend::Postgres => pg_connect(&url).await.batch_execute(sql).await.unwrap(),
        }
        let store = tir_store::open(&url).await.expect("reopen the store");
        Fixture { store, url, backend }
    }

    /// Overwrites one journal row behind the store's back.
    async fn overwrite_journal_row(&self, seq: i64, body: &str, body_hash: &str, hash: &str) {
        let changed = match &self.backend {
            Backend::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the sqlite file");
                conn.busy_timeout(Duration::from_secs(10)).unwrap();
                conn.execute(
                    "UPDATE journal SET body = ?1, body_hash = ?2, hash = ?3 WHERE seq = ?4",
                    rusqlite::params![body, body_hash, hash, seq],
                )
                .expect("update the journal row") as u64
            }
            Backend::Postgres => pg_connect(&self.url)
                .await
                .execute(
                    "UPDATE journal SET body = $1, body_hash = $2, hash = $3 WHERE seq = $4",
                    &[&body, &body_hash, &hash, &seq],
                )
                .await
                .expect("update the journal row"),
        };
        assert_eq!(changed, 1, "journal row {seq} exists");
    }

    /// Makes the store's writer wait, so that the commands queued meanwhile
    /// end up in one batch.
    async fn hold_writer(&self) -> HeldWriter {
        match &self.backend {
            Backend::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the sqlite file");
                // The store's BEGIN IMMEDIATE then waits on its busy timeout.
                conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                HeldWriter::Sqlite(conn)
            }
            Backend::Postgres => {
                let client = pg_connect(&self.url).await;
                // Blocks the writer at its first journal insert, after it took its batch.
                client.batch_execute("BEGIN; LOCK TABLE journal IN EXCLUSIVE MODE").await.unwrap();
                HeldWriter::Postgres(client)
            }
        }
    }
}

enum HeldWriter {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

impl HeldWriter {
    async fn release(self) {
        match self {
            HeldWriter::Sqlite(conn) => conn.execute_batch("COMMIT").unwrap(),
            HeldWriter::Postgres(client) => client.batch_execute("COMMIT").await.unwrap(),
        }
    }
}

async fn pg_connect(url: &str) -> tokio_postgres::Client {
    tir_testkit::pg::connect(url).await.expect("connect to PostgreSQL")
}

/// Re-raises a case's panic once its database is cleaned up.
fn finish(outcome: Result<(), tokio::task::JoinError>) {
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

async fn run_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = TempSqlite::new("tirhub-store-test").expect("a temporary directory");
    let url = db.url().to_owned();
    let store = tir_store::open(&url).await.expect("open the sqlite store");
    assert_eq!(store.backend(), "sqlite");
    let outcome = tokio::spawn(case(Fixture { store, url, backend: Backend::Sqlite(db.path().to_owned()) })).await;
    drop(db);
    finish(outcome);
}

async fn run_postgres<F, Fut>(case: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = FreshDatabase::from_env("tirhub_t").await else { return };
    let url = db.url().to_owned();
    let store = tir_store::open(&url).await.unwrap_or_else(|e| panic!("open the postgres store: {e}"));
    assert_eq!(store.backend(), "postgres");
    let outcome = tokio::spawn(case(Fixture { store, url, backend: Backend::Postgres })).await;
    // FORCE also ends the pool connections the store left open.
    drop(db);
    finish(outcome);
}

macro_rules! on_both {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            run_sqlite($case).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            run_postgres($case).await;
        }
    )*};
}

macro_rules! on_postgres_only {
    ($($case:ident => $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            run_postgres($case).await;
        }
    )*};
}

on_both! {
    parties_are_found_by_the_hash_of_their_token
        => parties_are_found_by_the_hash_of_their_token_on_sqlite,
           parties_are_found_by_the_hash_of_their_token_on_postgres;
    offices_and_holders_round_trip_and_a_second_put_replaces_them
        => offices_and_holders_round_trip_and_a_second_put_replaces_them_on_sqlite,
           offices_and_holders_round_trip_and_a_second_put_replaces_them_on_postgres;
    a_full_transport_releases_the_guarantee_and_feeds_every_party
        => a_full_transport_releases_the_guarantee_and_feeds_every_party_on_sqlite,
           a_full_transport_releases_the_guarantee_and_feeds_every_party_on_postgres;
    a_replayed_message_gets_the_identical_reply_even_after_a_restart
        => a_replayed_message_gets_the_identical_reply_even_after_a_restart_on_sqlite,
           a_replayed_message_gets_the_identical_reply_even_after_a_restart_on_postgres;
    a_stored_error_reply_is_replayed_after_the_state_changed
        => a_stored_error_reply_is_replayed_after_the_state_changed_on_sqlite,
           a_stored_error_reply_is_replayed_after_the_state_changed_on_postgres;
    the_journal_holds_every_accepted_write_in_one_contiguous_chain
        => the_journal_holds_every_accepted_write_in_one_contiguous_chain_on_sqlite,
           the_journal_holds_every_accepted_write_in_one_contiguous_chain_on_postgres;
    a_tampered_journal_row_is_named_by_verification
        => a_tampered_journal_row_is_named_by_verification_on_sqlite,
           a_tampered_journal_row_is_named_by_verification_on_postgres;
    twenty_concurrent_transports_all_complete_with_a_gapless_journal
        => twenty_concurrent_transports_all_complete_with_a_gapless_journal_on_sqlite,
           twenty_concurrent_transports_all_complete_with_a_gapless_journal_on_postgres;
    a_limit_larger_than_the_data_returns_everything
        => a_limit_larger_than_the_data_returns_everything_on_sqlite,
           a_limit_larger_than_the_data_returns_everything_on_postgres;
    a_failing_write_does_not_fail_the_writes_batched_with_it
        => a_failing_write_does_not_fail_the_writes_batched_with_it_on_sqlite,
           a_failing_write_does_not_fail_the_writes_batched_with_it_on_postgres;
    a_revoked_party_is_no_longer_found_by_its_token
        => a_revoked_party_is_no_longer_found_by_its_token_on_sqlite,
           a_revoked_party_is_no_longer_found_by_its_token_on_postgres;
}

on_both! {
    fallback_periods_are_declared_ended_and_reconciled
        => fallback_periods_are_declared_ended_and_reconciled_on_sqlite,
           fallback_periods_are_declared_ended_and_reconciled_on_postgres;
}

on_both! {
    a_party_bound_to_a_certificate_keeps_the_binding_across_a_restart
        => a_party_bound_to_a_certificate_keeps_the_binding_across_a_restart_on_sqlite,
           a_party_bound_to_a_certificate_keeps_the_binding_across_a_restart_on_postgres;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_bound_to_a_certificate_keeps_the_binding_in_memory() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::open_with(Env::seeded(SEED, SEEDED_START_MS)));
    certificate_binding_case(&*store).await;
}

/// Binds a customs party (journaled once), rebinds, unbinds, binds again, and
/// answers 404/381 for an unknown party; other parties stay unbound. Returns
/// the bound party's token hash and its certificate.
async fn certificate_binding_case(store: &dyn Store) -> (String, String) {
    let w = seed(store).await;
    let (token, party) = &w.tokens[2];
    let hash = tir_store::token::hash(token);
    let found = store.token_party(&hash).await.unwrap().expect("the party");
    assert_eq!((&found.party, found.certificate_sha256.as_deref()), (party, None), "unbound at creation");
    let entries = store.verify_journal().await.unwrap().entries;

    let (first, second) = ("a".repeat(64), "b".repeat(64));
    let bound = store.bind_certificate(party.id(), Some(&first)).await.unwrap();
    assert_eq!(bound.status, 200, "{}", bound.body);
    let view: Value = serde_json::from_str(&bound.body).unwrap();
    assert_eq!(view, json!({"id": party.id(), "kind": "customs", "name": "TR customs", "certificate_sha256": first}));
    assert_eq!(store.token_party(&hash).await.unwrap().unwrap().certificate_sha256.as_deref(), Some(first.as_str()));
    // The same binding again: the same answer, nothing journaled.
    let again = store.bind_certificate(party.id(), Some(&first)).await.unwrap();
    assert_eq!((again.status, again.body.as_str()), (200, bound.body.as_str()));
    assert_eq!(store.verify_journal().await.unwrap().entries, entries + 1);
    // Another certificate replaces it; null unbinds; then bound again.
    assert_eq!(store.bind_certificate(party.id(), Some(&second)).await.unwrap().status, 200);
    assert_eq!(store.token_party(&hash).await.unwrap().unwrap().certificate_sha256.as_deref(), Some(second.as_str()));
    let unbound = store.bind_certificate(party.id(), None).await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&unbound.body).unwrap()["certificate_sha256"], Value::Null);
    assert_eq!(store.token_party(&hash).await.unwrap().unwrap().certificate_sha256, None);
    assert_eq!(store.bind_certificate(party.id(), Some(&first)).await.unwrap().status, 200);

    let journal = store.journal(entries + 1, 10).await.unwrap();
    let kinds: Vec<(&str, &str)> = journal.iter().map(|e| (e.message_type.as_str(), e.reference.as_str())).collect();
    assert_eq!(kinds, vec![("PARTY_CERTIFICATE", party.id()); 4]);
    // The others are not bound.
    let other = tir_store::token::hash(&w.tokens[3].0);
    assert_eq!(store.token_party(&other).await.unwrap().unwrap().certificate_sha256, None);
    let unknown = store.bind_certificate("cus_0000000000000000", Some(&first)).await.unwrap();
    assert_eq!((unknown.status, error_code(&unknown)), (404, 381));
    assert!(store.verify_journal().await.unwrap().ok);
    (hash, first)
}

async fn a_party_bound_to_a_certificate_keeps_the_binding_across_a_restart(fx: Fixture) {
    let (hash, certificate) = certificate_binding_case(&*fx.store).await;
    let fx = fx.restart().await;
    let found = fx.store.token_party(&hash).await.unwrap().expect("the party");
    assert_eq!(found.certificate_sha256, Some(certificate));
    // A revoked party is not found, bound or not.
    assert_eq!(fx.store.revoke_party(found.party.id()).await.unwrap().status, 200);
    assert_eq!(fx.store.token_party(&hash).await.unwrap(), None);
}

on_both! {
    rule_profiles_keep_every_version_and_stay_with_their_administration
        => rule_profiles_keep_every_version_and_stay_with_their_administration_on_sqlite,
           rule_profiles_keep_every_version_and_stay_with_their_administration_on_postgres;
    a_profile_write_with_an_idempotency_key_runs_once
        => a_profile_write_with_an_idempotency_key_runs_once_on_sqlite,
           a_profile_write_with_an_idempotency_key_runs_once_on_postgres;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_profiles_keep_every_version_and_stay_with_their_administration_in_memory() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::open_with(Env::seeded(SEED, SEEDED_START_MS)));
    rule_profiles_case(&*store).await;
}

on_postgres_only! {
    two_stores_on_one_database_lose_no_update_and_share_replies
        => two_stores_on_one_database_lose_no_update_and_share_replies_on_postgres;
}

/// Runs `case` on a fresh, empty PostgreSQL database (by URL), then drops it.
async fn on_fresh_pg_database<F, Fut>(case: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = FreshDatabase::from_env("tirhub_t").await else { return };
    let outcome = tokio::spawn(case(db.url().to_owned())).await;
    drop(db);
    finish(outcome);
}

/// Opens a store on a database whose `parties` table predates revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_parties_table_from_before_revocation_gets_the_column() {
    on_fresh_pg_database(|url| async move {
        let old = pg_connect(&url).await;
        old.batch_execute(
            "CREATE TABLE parties (id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, country TEXT,
                 tir_id TEXT, token_hash TEXT NOT NULL UNIQUE, created_at_ms BIGINT NOT NULL);
             INSERT INTO parties VALUES ('gc_1', 'guarantee_chain', 'Chain', NULL, NULL, 'h1', 1);",
        )
        .await
        .unwrap();
        for _ in 0..2 {
            let store = tir_store::open(&url).await.expect("open over the old table");
            let found = store.party_by_token_hash("h1").await.unwrap();
            assert_eq!(found.map(|p| p.id().to_owned()), Some("gc_1".to_owned()));
        }
        let store = tir_store::open(&url).await.unwrap();
        assert_eq!(store.revoke_party("gc_1").await.unwrap().status, 200);
        assert_eq!(store.party_by_token_hash("h1").await.unwrap(), None);
    })
    .await;
}

// ---------------------------------------------------------------------------
// The world every case starts from.

#[derive(Clone)]
struct World {
    chain: Party,
    holder: Party,
    tr: Party,
    ge: Party,
    az: Party,
    /// Each party's token, as handed out once.
    tokens: Vec<(String, Party)>,
}

fn country(code: &str) -> Country {
    Country::parse(code).unwrap()
}

fn office(code: &str, name: &str, roles: &[OfficeRole]) -> Office {
    Office {
        code: OfficeCode::parse(code).unwrap(),
        country: country(&code[..2]),
        name: name.to_owned(),
        roles: roles.to_vec(),
        unlocode: None,
    }
}

fn holder_record(status: HolderStatus) -> HolderRecord {
    HolderRecord {
        tir_id: TirId::parse(HOLDER).unwrap(),
        name: "Anatolia Trucking".into(),
        country: country("TR"),
        status,
    }
}

fn customs(id: &str, code: &str) -> Party {
    Party::Customs { id: id.into(), country: country(code) }
}

/// Creates `party` with a fresh token and returns the token.
async fn create(store: &dyn Store, party: &Party, name: &str) -> String {
    let token = tir_store::token::generate();
    let (country, tir_id) = match party {
        Party::Customs { country, .. } => (Some(*country), None),
        Party::Holder { tir_id, .. } => (None, Some(tir_id.clone())),
        _ => (None, None),
    };
    let new = NewParty {
        id: party.id().to_owned(),
        kind: party.kind(),
        name: name.to_owned(),
        country,
        tir_id,
        token_hash: tir_store::token::hash(&token),
    };
    store.create_party(new).await.expect("create party");
    token
}

/// A rule profile draft by `customs`: a new profile (`id: None`) or its next version.
fn profile_write(customs: &Party, id: Option<&str>, selection_percent: f64) -> ProfileWrite {
    let Party::Customs { id: author, country } = customs else { panic!("customs write profiles") };
    let draft = ProfileDraft {
        name: "Tobacco".into(),
        expression: r#""2402" in hs4"#.into(),
        lane: Lane::Red,
        selection_percent,
        weight: 1,
        reason: "Cigarettes".into(),
        valid_from: Date::parse("2026-01-01").unwrap(),
        valid_until: None,
        office_scope: OfficeScope::All,
    };
    ProfileWrite {
        author: author.clone(),
        administration: *country,
        id: id.map(str::to_owned),
        draft,
        idempotency_key: None,
    }
}

/// Writes the offices, the holder and the parties: `SEED_WRITES` journal entries.
/// A party under the chain's id, which is taken: creating it must fail.
fn impostor(w: &World, token_hash: String) -> NewParty {
    let id = w.chain.id().to_owned();
    NewParty { id, kind: PartyKind::GuaranteeChain, name: "Impostor".into(), country: None, tir_id: None, token_hash }
}

async fn seed(store: &dyn Store) -> World {
    use OfficeRole::*;
    store.put_office(office("TR000100", "Kapikule", &[Departure, Exit])).await.unwrap();
    store.put_office(office("GE000100", "Sarpi", &[Entry, Exit])).await.unwrap();
    store.put_office(office("AZ000200", "Baku", &[Entry, Destination])).await.unwrap();
    store.put_holder(holder_record(HolderStatus::Authorized)).await.unwrap();
    let w = World {
        chain: Party::GuaranteeChain { id: "chain-iru".into() },
        holder: Party::Holder { id: "holder-anatolia".into(), tir_id: TirId::parse(HOLDER).unwrap() },
        tr: customs("customs-tr", "TR"),
        ge: customs("customs-ge", "GE"),
        az: customs("customs-az", "AZ"),
        tokens: Vec::new(),
    };
    let mut tokens = Vec::new();
    for (party, name) in [
        (&w.chain, "IRU"),
        (&w.holder, "Anatolia"),
        (&w.tr, "TR customs"),
        (&w.ge, "GE customs"),
        (&w.az, "AZ customs"),
    ] {
        tokens.push((create(store, party, name).await, party.clone()));
    }
    World { tokens, ..w }
}

fn message(message_id: &str, kind: &str, reference: &str, fields: Value) -> Value {
    let mut v = json!({"message_id": message_id, "type": kind, "guarantee_reference": reference});
    v.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    v
}

/// The body is the canonical text of the very value the request was parsed from.
fn submission(sender: &Party, value: &Value) -> Submission {
    let request = Request::parse(value).expect("the test message is valid");
    Submission::new(sender.clone(), request, serde_json::to_string(value).unwrap())
}

/// The 13 messages of one transport TR → GE → AZ, in order.
fn transport(w: &World, reference: &str) -> Vec<(Party, Value)> {
    let id = |step: usize| format!("{reference}-{step:02}");
    let mut out = vec![
        (w.chain.clone(), message(&id(0), "E1", reference, json!({"holder": HOLDER}))),
        (w.holder.clone(), message(&id(1), "E9", reference, json!({"declaration": declaration()}))),
        (w.tr.clone(), message(&id(2), "I1", reference, json!({"office": "TR000100"}))),
        (w.tr.clone(), message(&id(3), "I7", reference, json!({"office": "TR000100"}))),
    ];
    for (customs, code) in [(&w.tr, "TR000100"), (&w.ge, "GE000100"), (&w.az, "AZ000200")] {
        let step = out.len();
        out.push((customs.clone(), message(&id(step), "I9", reference, json!({"office": code, "seals": [SEAL]}))));
        out.push((
            customs.clone(),
            message(&id(step + 1), "I11", reference, json!({"office": code, "reservations": []})),
        ));
        out.push((customs.clone(), message(&id(step + 2), "I13", reference, json!({"office": code}))));
    }
    assert_eq!(out.len() as i64, TRANSPORT_MESSAGES);
    out
}

fn body(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("reply body is JSON ({e}): {}", reply.body))
}

fn error_code(reply: &Reply) -> u64 {
    body(reply)["error"]["code"].as_u64().unwrap_or_else(|| panic!("an error reply: {}", reply.body))
}

async fn submit(store: &dyn Store, sender: &Party, value: &Value) -> Reply {
    store.submit(submission(sender, value)).await.expect("the store answers")
}

async fn submit_ok(store: &dyn Store, sender: &Party, value: &Value) -> Reply {
    let reply = submit(store, sender, value).await;
    assert_eq!(reply.status, 200, "{} {}: {}", value["type"], value["guarantee_reference"], reply.body);
    reply
}

/// Drives one transport to its end, every message through `stores[step % len]`
/// shifted by `offset`, and returns the replies.
async fn drive(stores: &[Arc<dyn Store>], w: &World, reference: &str, offset: usize) -> Vec<Reply> {
    let mut replies = Vec::new();
    for (step, (sender, value)) in transport(w, reference).iter().enumerate() {
        let store = &stores[(step + offset) % stores.len()];
        replies.push(submit_ok(store.as_ref(), sender, value).await);
    }
    replies
}

fn reference(n: usize) -> String {
    format!("XH1{n:08}")
}

async fn guarantee_state(store: &dyn Store, reference: &str) -> GuaranteeState {
    store.guarantee(&GuaranteeRef::parse(reference).unwrap()).await.unwrap().expect("guarantee exists").state
}

fn events(rows: &[NotificationRow]) -> Vec<String> {
    rows.iter().map(|r| payload(r)["event"].as_str().unwrap().to_owned()).collect()
}

fn payload(row: &NotificationRow) -> Value {
    serde_json::from_str(&row.payload).expect("notification payload is JSON")
}

fn assert_increasing(rows: &[NotificationRow]) {
    for pair in rows.windows(2) {
        assert!(pair[0].cursor < pair[1].cursor, "cursors increase: {} then {}", pair[0].cursor, pair[1].cursor);
    }
}

/// Reads a feed page by page, `limit` items at a time.
async fn read_paged(store: &dyn Store, recipient: Option<&str>, limit: usize) -> Vec<NotificationRow> {
    let mut out: Vec<NotificationRow> = Vec::new();
    loop {
        let after = out.last().map(|r| r.cursor).unwrap_or(0);
        let page = store.notifications(recipient, after, limit).await.unwrap();
        assert!(page.len() <= limit);
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// Follows the full feed while it is being written, until `expected` items
/// arrived; an item committed behind the reader's cursor would never arrive.
fn follow(store: Arc<dyn Store>, expected: usize) -> tokio::task::JoinHandle<Vec<NotificationRow>> {
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut out: Vec<NotificationRow> = Vec::new();
        while out.len() < expected {
            assert!(tokio::time::Instant::now() < deadline, "follower stuck at {} of {expected} items", out.len());
            let after = out.last().map(|r| r.cursor).unwrap_or(0);
            let page = store.notifications(None, after, 7).await.unwrap();
            if page.is_empty() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            out.extend(page);
        }
        out
    })
}

/// Checks the whole journal: intact, `expected` entries, seq 1..=n, linked.
async fn assert_journal_complete(store: &dyn Store, expected: i64) -> Vec<JournalEntry> {
    let verdict = store.verify_journal().await.unwrap();
    assert!(verdict.ok, "journal verifies: {:?}", verdict.first_broken);
    assert_eq!(verdict.first_broken, None);
    assert_eq!(verdict.entries, expected);
    let entries = store.journal(1, 100_000).await.unwrap();
    assert_eq!(entries.len() as i64, expected);
    let mut prev = (0, GENESIS.to_owned());
    for e in &entries {
        assert_eq!(e.seq, prev.0 + 1, "no gap");
        assert_eq!(e.check(&prev), None, "entry {} links to its predecessor", e.seq);
        prev = (e.seq, e.hash.clone());
    }
    assert_eq!(verdict.head, prev.1, "head is the last entry's hash");
    entries
}

// ---------------------------------------------------------------------------
// Cases.

async fn parties_are_found_by_the_hash_of_their_token(fx: Fixture) {
    let store = fx.store.as_ref();
    let w = seed(store).await;
    assert_eq!(w.tokens.len(), 5);
    for (token, party) in &w.tokens {
        let found = store.party_by_token_hash(&tir_store::token::hash(token)).await.unwrap();
        assert_eq!(found.as_ref(), Some(party));
        // Only the hash is a key; the token itself finds nothing.
        assert_eq!(store.party_by_token_hash(token).await.unwrap(), None);
    }
    match store.party_by_token_hash(&tir_store::token::hash(&w.tokens[2].0)).await.unwrap() {
        Some(Party::Customs { id, country }) => {
            assert_eq!(id, "customs-tr");
            assert_eq!(country.as_str(), "TR");
        }
        other => panic!("customs party expected, got {other:?}"),
    }
    match store.party_by_token_hash(&tir_store::token::hash(&w.tokens[1].0)).await.unwrap() {
        Some(p @ Party::Holder { .. }) => {
            assert_eq!(p.kind(), PartyKind::Holder);
            assert!(matches!(p, Party::Holder { tir_id, .. } if tir_id.as_str() == HOLDER));
        }
        other => panic!("holder party expected, got {other:?}"),
    }
    let found = store.party_by_token_hash(&tir_store::token::hash(&w.tokens[0].0)).await.unwrap();
    assert_eq!(found.map(|p| p.kind()), Some(PartyKind::GuaranteeChain));
    let unknown = tir_store::token::hash(&tir_store::token::generate());
    assert_eq!(store.party_by_token_hash(&unknown).await.unwrap(), None);
}

async fn a_revoked_party_is_no_longer_found_by_its_token(fx: Fixture) {
    let store = fx.store.as_ref();
    let w = seed(store).await;
    let (token, party) = &w.tokens[2];
    let hash = tir_store::token::hash(token);
    let entries = store.verify_journal().await.unwrap().entries;

    let first = store.revoke_party(party.id()).await.unwrap();
    assert_eq!(first.status, 200, "{}", first.body);
    let view: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!((view["id"].as_str(), view["kind"].as_str()), (Some(party.id()), Some("customs")));
    assert!(view["revoked_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{view}");
    assert_eq!(store.party_by_token_hash(&hash).await.unwrap(), None);
    // The others keep working.
    let other = tir_store::token::hash(&w.tokens[3].0);
    assert_eq!(store.party_by_token_hash(&other).await.unwrap().as_ref(), Some(&w.tokens[3].1));

    // Again: the same answer, journaled once.
    let again = store.revoke_party(party.id()).await.unwrap();
    assert_eq!((again.status, again.body.as_str()), (200, first.body.as_str()));
    let journal = store.journal(entries + 1, 10).await.unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!((journal[0].message_type.as_str(), journal[0].reference.as_str()), ("PARTY_REVOKED", party.id()));

    let unknown = store.revoke_party("cus_0000000000000000").await.unwrap();
    assert_eq!((unknown.status, error_code(&unknown)), (404, 381));
    assert!(store.verify_journal().await.unwrap().ok);
}

async fn rule_profiles_keep_every_version_and_stay_with_their_administration(fx: Fixture) {
    let id = rule_profiles_case(&*fx.store).await;
    let fx = fx.restart().await;
    let history = fx.store.profile_history(country("LT"), &id).await.unwrap().expect("kept");
    assert_eq!(history.versions().iter().map(|p| p.version).collect::<Vec<_>>(), [1, 2], "after a restart");
}

/// Versions 1 and 2 of one LT profile, refusals, another administration; returns the id.
async fn rule_profiles_case(store: &dyn Store) -> String {
    let (lt, pl) = (customs("cus_lt", "LT"), customs("cus_pl", "PL"));
    create(store, &lt, "Customs LT").await;
    create(store, &pl, "Customs PL").await;
    let created = store.put_profile(profile_write(&lt, None, 30.0)).await.unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let v1 = body(&created);
    let id = v1["id"].as_str().unwrap().to_owned();
    assert_eq!((v1["version"].as_u64(), v1["administration"].as_str()), (Some(1), Some("LT")));
    assert_eq!(v1["author"], "cus_lt");
    let edited = store.put_profile(profile_write(&lt, Some(&id), 50.0)).await.unwrap();
    assert_eq!(edited.status, 200, "{}", edited.body);
    let v2 = body(&edited);
    assert_eq!((v2["id"].as_str(), v2["version"].as_u64()), (Some(id.as_str()), Some(2)));

    // An id the administration does not have, its own or another's: 404/183, nothing written.
    for (who, target) in [(&pl, id.as_str()), (&lt, "no_such_profile")] {
        let refused = store.put_profile(profile_write(who, Some(target), 10.0)).await.unwrap();
        assert_eq!((refused.status, error_code(&refused)), (404, 183), "{}", refused.body);
    }
    // A draft the store's own check refuses: 400/106, nothing written.
    let refused = store.put_profile(profile_write(&lt, Some(&id), 150.0)).await.unwrap();
    assert_eq!((refused.status, error_code(&refused)), (400, 106), "{}", refused.body);

    let latest = store.profiles(country("LT")).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!((latest[0].version, latest[0].draft.selection_percent), (2, 50.0));
    assert!(store.profiles(country("PL")).await.unwrap().is_empty());
    assert!(store.profile_history(country("PL"), &id).await.unwrap().is_none(), "confidential to LT");
    let history = store.profile_history(country("LT"), &id).await.unwrap().expect("LT's profile");
    assert_eq!(history.versions().len(), 2);
    assert_eq!(tir_store::profile_view(history.version(1).unwrap()), v1, "version 1 is kept as it was");
    assert_eq!(tir_store::profile_view(history.current()), v2);

    // Journaled from the customs party, under <administration>/<id>, with the version as its body.
    let journal = store.journal(1, 100).await.unwrap();
    let profiles: Vec<&JournalEntry> = journal.iter().filter(|e| e.message_type == RISK_PROFILE).collect();
    assert_eq!(profiles.len(), 2, "refusals are not journaled");
    for (entry, version) in profiles.iter().zip([&v1, &v2]) {
        assert_eq!((entry.sender.as_str(), entry.reference.as_str()), ("cus_lt", format!("LT/{id}").as_str()));
        assert_eq!(&serde_json::from_str::<Value>(&entry.body).unwrap(), version);
    }
    assert_eq!(profiles[0].message_id, id, "a new profile's id is the message id drawn for it");
    assert!(store.verify_journal().await.unwrap().ok);
    id
}

/// A retried profile write with its `Idempotency-Key` answers as the first
/// did and writes nothing, also after a restart; the key with another draft
/// is refused; keys are the sender's own.
async fn a_profile_write_with_an_idempotency_key_runs_once(fx: Fixture) {
    let (lt, pl) = (customs("cus_lt", "LT"), customs("cus_pl", "PL"));
    create(&*fx.store, &lt, "Customs LT").await;
    create(&*fx.store, &pl, "Customs PL").await;
    let keyed = |who: &Party, id: Option<&str>, percent: f64, key: &str| ProfileWrite {
        idempotency_key: Some(key.to_owned()),
        ..profile_write(who, id, percent)
    };
    let first = fx.store.put_profile(keyed(&lt, None, 30.0, "k-1")).await.unwrap();
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(fx.store.put_profile(keyed(&lt, None, 30.0, "k-1")).await.unwrap(), first);
    let id = body(&first)["id"].as_str().unwrap().to_owned();
    // The key with another draft, or for an edit: refused, nothing written.
    for other in [keyed(&lt, None, 40.0, "k-1"), keyed(&lt, Some(&id), 30.0, "k-1")] {
        let refused = fx.store.put_profile(other).await.unwrap();
        assert_eq!((refused.status, error_code(&refused)), (409, 299), "{}", refused.body);
    }
    let edited = fx.store.put_profile(keyed(&lt, Some(&id), 50.0, "k-2")).await.unwrap();
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(fx.store.put_profile(keyed(&lt, Some(&id), 50.0, "k-2")).await.unwrap(), edited);
    // Another customs party's "k-1" is its own.
    let theirs = fx.store.put_profile(keyed(&pl, None, 30.0, "k-1")).await.unwrap();
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    assert_ne!(body(&theirs)["id"], body(&first)["id"]);
    let fx = fx.restart().await;
    assert_eq!(fx.store.put_profile(keyed(&lt, None, 30.0, "k-1")).await.unwrap(), first, "kept over a restart");
    let history = fx.store.profile_history(country("LT"), &id).await.unwrap().expect("LT's profile");
    assert_eq!(history.versions().len(), 2);
    assert_eq!(fx.store.profiles(country("LT")).await.unwrap().len(), 1);
    let journal = fx.store.journal(1, 100).await.unwrap();
    assert_eq!(journal.iter().filter(|e| e.message_type == RISK_PROFILE).count(), 3, "one entry per write");
    assert!(fx.store.verify_journal().await.unwrap().ok);
}

async fn offices_and_holders_round_trip_and_a_second_put_replaces_them(fx: Fixture) {
    let store = fx.store.as_ref();
    let w = seed(store).await;
    let code = OfficeCode::parse("TR000100").unwrap();
    let stored = store.office(&code).await.unwrap();
    assert_eq!(stored, Some(office("TR000100", "Kapikule", &[OfficeRole::Departure, OfficeRole::Exit])));
    assert_eq!(store.office(&OfficeCode::parse("TR999999").unwrap()).await.unwrap(), None);

    let mut renamed = office("TR000100", "Kapikule Gate", &[OfficeRole::Departure, OfficeRole::Destination]);
    renamed.unlocode = Some("TRKPK".into());
    store.put_office(renamed.clone()).await.unwrap();
    assert_eq!(store.office(&code).await.unwrap(), Some(renamed));

    let tir_id = TirId::parse(HOLDER).unwrap();
    assert_eq!(store.holder(&tir_id).await.unwrap(), Some(holder_record(HolderStatus::Authorized)));
    assert_eq!(store.holder(&TirId::parse("TUR/012/999").unwrap()).await.unwrap(), None);
    store.put_holder(holder_record(HolderStatus::Withdrawn)).await.unwrap();
    assert_eq!(store.holder(&tir_id).await.unwrap().map(|h| h.status), Some(HolderStatus::Withdrawn));

    // Messages see the replaced record: a withdrawn holder gets no guarantee (321).
    let e1 = message("g-1", "E1", &reference(1), json!({"holder": HOLDER}));
    let reply = submit(store, &w.chain, &e1).await;
    assert_eq!((reply.status, error_code(&reply)), (422, 321), "{}", reply.body);
    assert_journal_complete(store, SEED_WRITES + 2).await;
}

async fn a_full_transport_releases_the_guarantee_and_feeds_every_party(fx: Fixture) {
    let store = fx.store.as_ref();
    let w = seed(store).await;
    let r = reference(1);
    let replies = drive(std::slice::from_ref(&fx.store), &w, &r, 0).await;
    let responses = ["E2", "E10", "I2", "I8", "I10", "I12", "I14", "I10", "I12", "I14", "I10", "I12", "I14"];
    for ((reply, (_, sent)), response) in replies.iter().zip(transport(&w, &r)).zip(responses) {
        let b = body(reply);
        assert_eq!(b["type"], response);
        assert_eq!(b["message_id"], sent["message_id"]);
    }
    assert_eq!(body(replies.last().unwrap())["guarantee"]["state"], "released");

    let g = store.guarantee(&GuaranteeRef::parse(&r).unwrap()).await.unwrap().unwrap();
    assert_eq!(g.state, GuaranteeState::Released);
    assert_eq!(g.chain, w.chain.id());
    assert_eq!(g.operations.len(), 3);
    assert!(g.operations.iter().all(|op| op.state == OperationState::Discharged));
    let recorded = g.declaration.expect("declaration recorded");
    assert_eq!(recorded.seals, [SEAL]);
    assert_eq!(recorded.consignments[0].goods[0].hs_code.as_str(), "870323");

    let chain_feed = format!("chain:{}", w.chain.id());
    let chain = store.notifications(Some(&chain_feed), 0, 1000).await.unwrap();
    assert_eq!(chain.len(), CHAIN_NOTIFICATIONS);
    assert!(chain.iter().all(|n| n.kind == "E7" && n.recipient == chain_feed && n.guarantee_reference == r));
    assert_increasing(&chain);
    let mut expected = vec!["guarantee_accepted", "declaration_recorded"];
    for _ in 0..3 {
        expected.extend(["operation_started", "operation_terminated", "operation_discharged"]);
    }
    expected.push("guarantee_released");
    assert_eq!(events(&chain), expected);

    let tr = store.notifications(Some("customs:TR"), 0, 1000).await.unwrap();
    assert_eq!(tr.len(), 1);
    assert_eq!(tr[0].kind, "E9");
    let forward = payload(&tr[0]);
    assert_eq!(forward["event"], "advance_data");
    assert_eq!(forward["holder"], HOLDER);
    assert_eq!(forward["declaration"]["seals"], json!([SEAL]));
    assert_eq!(forward["declaration"]["consignments"][0]["goods"][0]["hs_code"], "870323");

    for (feed, previous) in [("customs:GE", "TR"), ("customs:AZ", "GE")] {
        let rows = store.notifications(Some(feed), 0, 1000).await.unwrap();
        assert!(rows.iter().all(|n| n.kind == "I15" && n.recipient == feed), "{feed}: {rows:?}");
        assert_eq!(events(&rows), ["declaration_recorded", "previous_operation_terminated"], "{feed}");
        assert_eq!(payload(&rows[1])["country"], previous);
    }

    let all = store.notifications(None, 0, 1000).await.unwrap();
    assert_eq!(all.len(), TRANSPORT_NOTIFICATIONS);
    assert_increasing(&all);
    let mut feeds: Vec<NotificationRow> = Vec::new();
    for feed in [chain_feed.as_str(), "customs:TR", "customs:GE", "customs:AZ"] {
        feeds.extend(store.notifications(Some(feed), 0, 1000).await.unwrap());
    }
    feeds.sort_by_key(|n| n.cursor);
    assert_eq!(all, feeds, "the full feed is the union of the parties' feeds");

    for limit in [1, 2, 3, 5, 16, 17, 100] {
        assert_eq!(read_paged(store, None, limit).await, all, "paging by {limit}");
        assert_eq!(read_paged(store, Some(&chain_feed), limit).await, chain, "chain feed paged by {limit}");
    }
    let last = all.last().unwrap().cursor;
    assert!(store.notifications(None, last, 1000).await.unwrap().is_empty());
    assert_eq!(store.notifications(None, all[4].cursor, 3).await.unwrap(), all[5..8]);

    // The risk engine's read: every item, the payload only of customs' E9/E11/I15.
    let risk = store.risk_feed(0, 1000).await.unwrap();
    assert_eq!(risk.iter().map(|n| n.cursor).collect::<Vec<_>>(), all.iter().map(|n| n.cursor).collect::<Vec<_>>());
    for (read, stored) in risk.iter().zip(&all) {
        let kept = tir_store::risk_feed_item(&stored.recipient, &stored.kind);
        let expected = if kept { stored.payload.clone() } else { String::new() };
        assert_eq!(*read, NotificationRow { payload: expected, ..stored.clone() }, "{kept}");
    }
    assert!(risk.iter().any(|n| !n.payload.is_empty()) && risk.iter().any(|n| n.payload.is_empty()));
    assert_eq!(store.risk_feed(all[4].cursor, 3).await.unwrap(), risk[5..8]);
}

async fn a_replayed_message_gets_the_identical_reply_even_after_a_restart(fx: Fixture) {
    let w = seed(fx.store.as_ref()).await;
    let e1 = message("m-1", "E1", &reference(1), json!({"holder": HOLDER}));
    let first = submit_ok(fx.store.as_ref(), &w.chain, &e1).await;
    assert_eq!(submit(fx.store.as_ref(), &w.chain, &e1).await, first);

    // Concurrent replays are answered from the one stored reply.
    let replays: Vec<_> = (0..10)
        .map(|_| {
            let (store, sender, e1) = (fx.store.clone(), w.chain.clone(), e1.clone());
            tokio::spawn(async move { submit(store.as_ref(), &sender, &e1).await })
        })
        .collect();
    for replay in replays {
        assert_eq!(replay.await.unwrap(), first);
    }

    let fx = fx.restart().await;
    let store = fx.store.as_ref();
    let replay = submit(store, &w.chain, &e1).await;
    assert_eq!(replay.status, first.status);
    assert_eq!(replay.body.as_bytes(), first.body.as_bytes(), "byte-identical after restart");
    assert_eq!(guarantee_state(store, &reference(1)).await, GuaranteeState::Registered);

    // Same id, different body: 409/299, and nothing happens.
    let other = message("m-1", "E1", &reference(2), json!({"holder": HOLDER}));
    let conflict = submit(store, &w.chain, &other).await;
    assert_eq!((conflict.status, error_code(&conflict)), (409, 299), "{}", conflict.body);
    assert_eq!(store.guarantee(&GuaranteeRef::parse(&reference(2)).unwrap()).await.unwrap(), None);
    // The conflict did not replace the stored reply.
    assert_eq!(submit(store, &w.chain, &e1).await, first);

    // The same id from another sender is another message.
    let second_chain = Party::GuaranteeChain { id: "chain-other".into() };
    create(store, &second_chain, "Other chain").await;
    let theirs = message("m-1", "E1", &reference(3), json!({"holder": HOLDER}));
    let reply = submit_ok(store, &second_chain, &theirs).await;
    assert_ne!(reply, first);
    let g = store.guarantee(&GuaranteeRef::parse(&reference(3)).unwrap()).await.unwrap().unwrap();
    assert_eq!(g.chain, "chain-other");

    // Seed, one party, two accepted E1: replays and the conflict are not journaled.
    let entries = assert_journal_complete(store, SEED_WRITES + 3).await;
    let e1s: Vec<_> = entries.iter().filter(|e| e.message_type == "E1").collect();
    assert_eq!(e1s.len(), 2);
    assert_eq!((e1s[0].sender.as_str(), e1s[0].reference.as_str()), (w.chain.id(), reference(1).as_str()));
    assert_eq!((e1s[1].sender.as_str(), e1s[1].reference.as_str()), ("chain-other", reference(3).as_str()));
}

async fn a_stored_error_reply_is_replayed_after_the_state_changed(fx: Fixture) {
    let store = fx.store.as_ref();
    let w = seed(store).await;
    let r = reference(1);
    let msgs = transport(&w, &r);
    for (sender, value) in &msgs[..3] {
        submit_ok(store, sender, value).await;
    }
    // I9 before I7: no recorded declaration yet (220).
    let (tr, start) = &msgs[4];
    let early = submit(store, tr, start).await;
    assert_eq!((early.status, error_code(&early)), (409, 220), "{}", early.body);

    submit_ok(store, &msgs[3].0, &msgs[3].1).await;
    // Now the same I9 would succeed, but its id already has an answer.
    let replay = submit(store, tr, start).await;
    assert_eq!(replay, early);
    let fx = fx.restart().await;
    let store = fx.store.as_ref();
    assert_eq!(submit(store, tr, start).await, early);

    let g = store.guarantee(&GuaranteeRef::parse(&r).unwrap()).await.unwrap().unwrap();
    assert_eq!(g.operations[0].state, OperationState::Pending);
    let mut retry = start.clone();
    retry["message_id"] = json!(format!("{r}-retry"));
    submit_ok(store, tr, &retry).await;

    let entries = assert_journal_complete(store, SEED_WRITES + 5).await;
    let start_id = start["message_id"].as_str().unwrap();
    assert!(entries.iter().all(|e| e.message_id != start_id), "a rejected message is not journaled");
}

async fn the_journal_holds_every_accepted_write_in_one_contiguous_chain(fx: Fixture) {
    let store = fx.store.as_ref();
    let w = seed(store).await;
    let r = reference(1);
    drive(std::slice::from_ref(&fx.store), &w, &r, 0).await;
    // Rejected: discharging again (212); replayed: the last I13.
    let msgs = transport(&w, &r);
    let again = message("again", "I13", &r, json!({"office": "AZ000200"}));
    let rejected = submit(store, &w.az, &again).await;
    assert_eq!((rejected.status, error_code(&rejected)), (409, 212), "{}", rejected.body);
    let (az, last) = msgs.last().unwrap();
    submit_ok(store, az, last).await;

    let n = SEED_WRITES + TRANSPORT_MESSAGES;
    let entries = assert_journal_complete(store, n).await;
    assert_eq!(store.verify_journal().await.unwrap().head, entries.last().unwrap().hash);
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>());

    let admin: Vec<_> =
        entries[..SEED_WRITES as usize].iter().map(|e| (e.sender.as_str(), e.message_type.as_str())).collect();
    assert_eq!(
        admin,
        [
            ("admin", "OFFICE"),
            ("admin", "OFFICE"),
            ("admin", "OFFICE"),
            ("admin", "HOLDER"),
            ("admin", "PARTY"),
            ("admin", "PARTY"),
            ("admin", "PARTY"),
            ("admin", "PARTY"),
            ("admin", "PARTY")
        ]
    );
    assert_eq!(entries[0].reference, "TR000100");
    assert_eq!(entries[3].reference, HOLDER);
    for (entry, (sender, value)) in entries[SEED_WRITES as usize..].iter().zip(&msgs) {
        assert_eq!(entry.sender, sender.id());
        assert_eq!(entry.message_type, value["type"].as_str().unwrap());
        assert_eq!(entry.message_id, value["message_id"].as_str().unwrap());
        assert_eq!(entry.reference, r);
        assert_eq!(entry.body, serde_json::to_string(value).unwrap(), "the journal keeps the body as sent");
        assert_eq!(entry.body_hash, tir_store::token::hash(&entry.body));
    }
    assert!(entries.iter().all(|e| e.message_id != "again"));

    // Pages of the journal.
    let page = store.journal(5, 3).await.unwrap();
    assert_eq!(page, entries[4..7]);
    assert!(store.journal(n + 1, 10).await.unwrap().is_empty());
    assert_eq!(store.journal(n, 10).await.unwrap(), entries[n as usize - 1..]);
}

async fn a_tampered_journal_row_is_named_by_verification(fx: Fixture) {
    let store = fx.store.as_ref();
    let w = seed(store).await;
    for (sender, value) in &transport(&w, &reference(1))[..4] {
        submit_ok(store, sender, value).await;
    }
    let n = SEED_WRITES + 4;
    let entries = assert_journal_complete(store, n).await;
    let original = entries[2].clone();
    assert_eq!(original.seq, 3);

    // A changed body no longer matches its hash.
    let forged = original.body.replace("Baku", "Tbilisi");
    assert_ne!(forged, original.body);
    fx.overwrite_journal_row(3, &forged, &original.body_hash, &original.hash).await;
    let verdict = store.verify_journal().await.unwrap();
    assert!(!verdict.ok);
    assert_eq!(verdict.first_broken.as_ref().map(|b| b.0), Some(3), "{verdict:?}");

    // Verification recomputes: putting the row back heals it.
    fx.overwrite_journal_row(3, &original.body, &original.body_hash, &original.hash).await;
    assert_journal_complete(store, n).await;

    // Rehashing the forged row itself breaks the link of the next one.
    let mut rehashed = original.clone();
    rehashed.body = forged;
    rehashed.body_hash = tir_store::token::hash(&rehashed.body);
    rehashed.hash = rehashed.compute_hash();
    fx.overwrite_journal_row(3, &rehashed.body, &rehashed.body_hash, &rehashed.hash).await;
    let verdict = store.verify_journal().await.unwrap();
    assert!(!verdict.ok);
    assert_eq!(verdict.first_broken.as_ref().map(|b| b.0), Some(4), "{verdict:?}");
}

async fn twenty_concurrent_transports_all_complete_with_a_gapless_journal(fx: Fixture) {
    const TRANSPORTS: usize = 20;
    let w = Arc::new(seed(fx.store.as_ref()).await);
    let follower = follow(fx.store.clone(), TRANSPORTS * TRANSPORT_NOTIFICATIONS);
    let tasks: Vec<_> = (0..TRANSPORTS)
        .map(|i| {
            let (stores, w) = ([fx.store.clone()], w.clone());
            tokio::spawn(async move { drive(&stores, &w, &reference(i), 0).await })
        })
        .collect();
    for task in tasks {
        let replies = task.await.expect("transport task");
        assert!(replies.iter().all(|r| r.status == 200));
    }
    let store = fx.store.as_ref();
    for i in 0..TRANSPORTS {
        assert_eq!(guarantee_state(store, &reference(i)).await, GuaranteeState::Released);
    }
    let entries = assert_journal_complete(store, SEED_WRITES + TRANSPORTS as i64 * TRANSPORT_MESSAGES).await;
    // Each transport's messages are journaled in the order they were sent.
    for i in 0..TRANSPORTS {
        let r = reference(i);
        let ids: Vec<_> = entries.iter().filter(|e| e.reference == r).map(|e| e.message_id.clone()).collect();
        let sent: Vec<_> =
            transport(&w, &r).iter().map(|(_, v)| v["message_id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ids, sent);
    }

    let chain = read_paged(store, Some(&format!("chain:{}", w.chain.id())), 7).await;
    assert_eq!(chain.len(), TRANSPORTS * CHAIN_NOTIFICATIONS);
    assert_increasing(&chain);
    let all = read_paged(store, None, 50).await;
    assert_eq!(all.len(), TRANSPORTS * TRANSPORT_NOTIFICATIONS);
    assert_increasing(&all);
    assert_eq!(follower.await.expect("follower"), all, "the live reader saw every item once");
}

async fn a_limit_larger_than_the_data_returns_everything(fx: Fixture) {
    let store = fx.store.as_ref();
    let w = seed(store).await;
    drive(std::slice::from_ref(&fx.store), &w, &reference(1), 0).await;
    // `limit` is "at most": usize::MAX must mean everything, not an error.
    let all = store.notifications(None, 0, usize::MAX).await.expect("notifications with limit usize::MAX");
    assert_eq!(all.len(), TRANSPORT_NOTIFICATIONS);
    let feed = format!("chain:{}", w.chain.id());
    let chain = store.notifications(Some(&feed), 0, usize::MAX).await.expect("one feed with limit usize::MAX");
    assert_eq!(chain.len(), CHAIN_NOTIFICATIONS);
    let entries = store.journal(1, usize::MAX).await.expect("journal with limit usize::MAX");
    assert_eq!(entries.len() as i64, SEED_WRITES + TRANSPORT_MESSAGES);
    assert!(store.notifications(None, 0, 0).await.unwrap().is_empty());
}

async fn a_failing_write_does_not_fail_the_writes_batched_with_it(fx: Fixture) {
    let w = seed(fx.store.as_ref()).await;
    let e1 = |n: usize| message(&format!("e1-{n}"), "E1", &reference(n), json!({"holder": HOLDER}));
    let spawn_e1 = |n: usize| {
        let (store, chain, value) = (fx.store.clone(), w.chain.clone(), e1(n));
        tokio::spawn(async move { store.submit(submission(&chain, &value)).await })
    };
    let held = fx.hold_writer().await;
    // The writer takes this one and waits; the next three queue up behind it.
    let first = spawn_e1(1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = spawn_e1(2);
    let duplicate = {
        let store = fx.store.clone();
        let party = impostor(&w, tir_store::token::hash(&tir_store::token::generate()));
        tokio::spawn(async move { store.create_party(party).await })
    };
    let after = spawn_e1(3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.release().await;

    assert_eq!(first.await.unwrap().expect("the first E1 is answered").status, 200);
    assert!(duplicate.await.unwrap().is_err(), "a second party with a taken id is refused");
    let before = before.await.unwrap();
    let after = after.await.unwrap();
    assert!(
        matches!((&before, &after), (Ok(b), Ok(a)) if b.status == 200 && a.status == 200),
        "unrelated messages batched with the failing write must still be applied: {before:?} / {after:?}"
    );
    let store = fx.store.as_ref();
    for n in 1..=3 {
        assert_eq!(guarantee_state(store, &reference(n)).await, GuaranteeState::Registered);
    }
    assert_journal_complete(store, SEED_WRITES + 3).await;
}

async fn two_stores_on_one_database_lose_no_update_and_share_replies(fx: Fixture) {
    const TRANSPORTS: usize = 12;
    let a = fx.store.clone();
    let b = tir_store::open(&fx.url).await.expect("a second writer on the same database");
    let w = Arc::new(seed(a.as_ref()).await);

    // Reads through `b` while both write.
    let follower = follow(b.clone(), TRANSPORTS * TRANSPORT_NOTIFICATIONS);
    // Consecutive messages of one transport go to alternate stores.
    let tasks: Vec<_> = (0..TRANSPORTS)
        .map(|i| {
            let (stores, w) = ([a.clone(), b.clone()], w.clone());
            tokio::spawn(async move { drive(&stores, &w, &reference(i), i).await })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("transport task"));
    }
    let all = read_paged(a.as_ref(), None, 50).await;
    assert_eq!(all.len(), TRANSPORTS * TRANSPORT_NOTIFICATIONS);
    assert_increasing(&all);
    assert_eq!(follower.await.expect("follower"), all, "the live reader saw every item once");
    for i in 0..TRANSPORTS {
        assert_eq!(guarantee_state(a.as_ref(), &reference(i)).await, GuaranteeState::Released);
        assert_eq!(guarantee_state(b.as_ref(), &reference(i)).await, GuaranteeState::Released);
    }
    let n = SEED_WRITES + TRANSPORTS as i64 * TRANSPORT_MESSAGES;
    let entries = assert_journal_complete(a.as_ref(), n).await;
    assert_eq!(assert_journal_complete(b.as_ref(), n).await, entries);

    // Every message was answered by one store; the other replays the same bytes.
    for (i, transport_replies) in replies.iter().enumerate() {
        for (step, (sender, value)) in transport(&w, &reference(i)).iter().enumerate() {
            let other = if (step + i) % 2 == 0 { &b } else { &a };
            let replay = submit(other.as_ref(), sender, value).await;
            assert_eq!(replay, transport_replies[step], "{} replayed on the other store", value["message_id"]);
        }
    }

    // The same new message sent to both at once is applied once.
    let e1 = message("both-1", "E1", &reference(99), json!({"holder": HOLDER}));
    let (ra, rb) = tokio::join!(submit(a.as_ref(), &w.chain, &e1), submit(b.as_ref(), &w.chain, &e1));
    assert_eq!(ra.status, 200, "{}", ra.body);
    assert_eq!(ra, rb);
    assert_journal_complete(b.as_ref(), n + 1).await;

    let chain = read_paged(b.as_ref(), Some(&format!("chain:{}", w.chain.id())), 10).await;
    assert_eq!(chain.len(), TRANSPORTS * CHAIN_NOTIFICATIONS);
    assert_increasing(&chain);
    for i in 0..TRANSPORTS {
        let r = reference(i);
        let mine: Vec<_> = chain.iter().filter(|n| n.guarantee_reference == r).cloned().collect();
        assert_eq!(events(&mine).last().map(String::as_str), Some("guarantee_released"), "{r}");
        assert_eq!(mine.len(), CHAIN_NOTIFICATIONS, "{r}");
    }
}

// ---------------------------------------------------------------------------
// Versioned migrations: databases made before them are adopted.

/// The SQLite schema as versions before migrations created it, in its oldest
/// form still met: parties without the revocation column, answers in the
/// indexed `idempotency` table instead of the log.
const SQLITE_SCHEMA_BEFORE_MIGRATIONS: &str = "
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, sender TEXT NOT NULL, message_type TEXT NOT NULL,
    message_id TEXT NOT NULL, reference TEXT NOT NULL, body TEXT NOT NULL, body_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE guarantees (
    reference TEXT PRIMARY KEY, holder TEXT NOT NULL, chain TEXT NOT NULL, state TEXT NOT NULL,
    doc TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
CREATE TABLE outbox (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL, kind TEXT NOT NULL,
    reference TEXT NOT NULL, payload TEXT NOT NULL, created_at_ms INTEGER NOT NULL);
CREATE INDEX outbox_by_recipient ON outbox (recipient, cursor);
CREATE TABLE parties (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, country TEXT, tir_id TEXT,
    token_hash TEXT NOT NULL UNIQUE, created_at_ms INTEGER NOT NULL);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, reference TEXT NOT NULL, at_ms INTEGER NOT NULL, message_type TEXT NOT NULL,
    party TEXT NOT NULL, office TEXT, summary TEXT NOT NULL);
CREATE INDEX events_by_reference ON events (reference, id);
CREATE TABLE offices (code TEXT PRIMARY KEY, country TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE holders (tir_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE idempotency (sender TEXT NOT NULL, message_id TEXT NOT NULL, body_hash TEXT NOT NULL,
    status INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (sender, message_id));
";

/// The PostgreSQL schema as versions before migrations created it, with
/// parties from before revocation.
const POSTGRES_SCHEMA_BEFORE_MIGRATIONS: &str = r#"
CREATE TABLE journal (
    seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, sender TEXT NOT NULL, message_type TEXT NOT NULL,
    message_id TEXT NOT NULL, reference TEXT NOT NULL, body TEXT NOT NULL, body_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE idempotency (
    sender TEXT COLLATE "C" NOT NULL, message_id TEXT COLLATE "C" NOT NULL, body_hash TEXT NOT NULL,
    status INT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (sender, message_id));
CREATE TABLE guarantees (
    reference TEXT COLLATE "C" PRIMARY KEY, holder TEXT NOT NULL, chain TEXT NOT NULL, state TEXT NOT NULL,
    doc TEXT NOT NULL, updated_at_ms BIGINT NOT NULL) WITH (fillfactor = 70);
CREATE TABLE outbox (
    cursor BIGSERIAL PRIMARY KEY, recipient TEXT COLLATE "C" NOT NULL, kind TEXT NOT NULL,
    reference TEXT NOT NULL, payload TEXT NOT NULL, created_at_ms BIGINT NOT NULL);
CREATE INDEX outbox_by_recipient ON outbox (recipient, cursor);
CREATE TABLE parties (
    id TEXT COLLATE "C" PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, country TEXT, tir_id TEXT,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE, created_at_ms BIGINT NOT NULL);
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY, reference TEXT COLLATE "C" NOT NULL, at_ms BIGINT NOT NULL,
    message_type TEXT NOT NULL, party TEXT NOT NULL, office TEXT, summary TEXT NOT NULL);
CREATE INDEX events_by_reference ON events (reference, id);
CREATE TABLE offices (code TEXT COLLATE "C" PRIMARY KEY, country TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE holders (tir_id TEXT COLLATE "C" PRIMARY KEY, doc TEXT NOT NULL);
"#;

/// What an old database holds before it is adopted: two journaled admin
/// writes, a party, an office and one stored answer to an E1.
struct OldData {
    journal: Vec<JournalEntry>,
    office: Office,
    chain: Party,
    e1: Value,
    /// Refused before migrations: its window starts at the upgrade.
    e3: Value,
}

const OLD_TOKEN_HASH: &str = "old-token-hash";
const OLD_STORED_ANSWER: &str = r#"{"stored":"before migrations"}"#;
const OLD_STORED_REFUSAL: &str = r#"{"refused":"before migrations"}"#;

fn old_data() -> OldData {
    let office = office("TR000100", "Kapikule", &[OfficeRole::Departure]);
    let first = JournalEntry::next(&(0, GENESIS.to_owned()), 1_000, "admin", "OFFICE", "a1", "TR000100", "{}".into());
    let second = JournalEntry::next(&(1, first.hash.clone()), 2_000, "admin", "PARTY", "a2", "chain-iru", "{}".into());
    let chain = Party::GuaranteeChain { id: "chain-iru".into() };
    let e1 = message("old-e1", "E1", &reference(1), json!({"holder": HOLDER}));
    let e3 = cancel(2, "old-e3");
    OldData { journal: vec![first, second], office, chain, e1, e3 }
}

/// The old rows, as SQL for either backend.
fn old_rows_sql(old: &OldData) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut sql = String::new();
    for e in &old.journal {
        let text =
            [&e.sender, &e.message_type, &e.message_id, &e.reference, &e.body, &e.body_hash, &e.prev_hash, &e.hash]
                .map(|t| quote(t))
                .join(", ");
        sql += &format!("INSERT INTO journal VALUES ({}, {}, {text});\n", e.seq, e.at_ms);
    }
    let office_doc = quote(&serde_json::to_string(&old.office).unwrap());
    sql += &format!("INSERT INTO offices VALUES ('TR000100', 'TR', {office_doc});\n");
    sql += &format!(
        "INSERT INTO parties VALUES ('chain-iru', 'guarantee_chain', 'IRU', NULL, NULL, '{OLD_TOKEN_HASH}', 1);\n"
    );
    let e1 = submission(&old.chain, &old.e1);
    sql += &format!(
        "INSERT INTO idempotency VALUES ('chain-iru', 'old-e1', '{}', 200, {});\n",
        e1.body_hash,
        quote(OLD_STORED_ANSWER)
    );
    let e3 = submission(&old.chain, &old.e3);
    sql += &format!(
        "INSERT INTO idempotency VALUES ('chain-iru', 'old-e3', '{}', 404, {});\n",
        e3.body_hash,
        quote(OLD_STORED_REFUSAL)
    );
    sql
}

/// Checks that an adopted store kept the old data and works on it.
async fn assert_old_data_kept(store: &dyn Store, old: &OldData) {
    let verdict = store.verify_journal().await.unwrap();
    assert!(verdict.ok, "{:?}", verdict.first_broken);
    assert_eq!((verdict.entries, verdict.head.as_str()), (2, old.journal[1].hash.as_str()));
    let party = store.party_by_token_hash(OLD_TOKEN_HASH).await.unwrap();
    assert_eq!(party.map(|p| p.id().to_owned()), Some("chain-iru".to_owned()));
    assert_eq!(store.office(&old.office.code).await.unwrap(), Some(old.office.clone()));
    let replay = submit(store, &old.chain, &old.e1).await;
    assert_eq!((replay.status, replay.body.as_str()), (200, OLD_STORED_ANSWER), "the old stored answer is replayed");
    // Dated at the upgrade, so within its window: the system clock has not moved a day since.
    let replay = submit(store, &old.chain, &old.e3).await;
    assert_eq!((replay.status, replay.body.as_str()), (404, OLD_STORED_REFUSAL), "the old refusal is replayed");
}

/// Checks that the store writes on after adoption: a revocation (the column
/// added) and a new office, journaled after the old entries.
async fn assert_writes_continue(store: &dyn Store) {
    // A party from before the certificate column can be bound (migration party_certificates).
    let fingerprint = "c".repeat(64);
    assert_eq!(store.bind_certificate("chain-iru", Some(&fingerprint)).await.unwrap().status, 200);
    let found = store.token_party(OLD_TOKEN_HASH).await.unwrap().expect("the old party");
    assert_eq!(found.certificate_sha256, Some(fingerprint));
    assert_eq!(store.revoke_party("chain-iru").await.unwrap().status, 200);
    assert_eq!(store.party_by_token_hash(OLD_TOKEN_HASH).await.unwrap(), None);
    store.put_office(office("GE000100", "Sarpi", &[OfficeRole::Entry])).await.unwrap();
    // The old entries, the binding, the revocation and the office.
    assert_journal_complete(store, 5).await;
}

type MigrationRow = (i64, String, String, i64);

fn sqlite_migrations(path: &std::path::Path) -> Vec<MigrationRow> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt =
        conn.prepare("SELECT version, name, checksum, applied_at_ms FROM schema_migrations ORDER BY version").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect()
}

async fn postgres_migrations(url: &str) -> Vec<MigrationRow> {
    let client = pg_connect(url).await;
    let rows = client
        .query("SELECT version, name, checksum, applied_at_ms FROM schema_migrations ORDER BY version", &[])
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_database_from_before_migrations_is_adopted_and_keeps_its_data() {
    let file = TempSqlite::new("tirhub-store-test").expect("a temporary directory");
    let old = old_data();
    {
        let conn = rusqlite::Connection::open(file.path()).unwrap();
        conn.execute_batch(SQLITE_SCHEMA_BEFORE_MIGRATIONS).unwrap();
        conn.execute_batch(&old_rows_sql(&old)).unwrap();
    }
    let store = SqliteStore::open(file.path()).expect("adopt the old file");
    assert_old_data_kept(&store, &old).await;
    let applied = sqlite_migrations(file.path());
    assert_eq!(applied.iter().map(|m| m.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    drop(store);

    let store = SqliteStore::open(file.path()).expect("reopen");
    assert_eq!(sqlite_migrations(file.path()), applied, "opening again applies nothing");
    assert_old_data_kept(&store, &old).await;
    assert_writes_continue(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_from_before_migrations_is_adopted_and_keeps_its_data() {
    on_fresh_pg_database(|url| async move {
        let old = old_data();
        let conn = pg_connect(&url).await;
        conn.batch_execute(POSTGRES_SCHEMA_BEFORE_MIGRATIONS).await.unwrap();
        conn.batch_execute(&old_rows_sql(&old)).await.unwrap();
        let store = PgStore::open(&url).await.expect("adopt the old database");
        assert_old_data_kept(&store, &old).await;
        let applied = postgres_migrations(&url).await;
        assert_eq!(
            applied.iter().map(|m| m.0).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        );
        drop(store);

        let store = PgStore::open(&url).await.expect("reopen");
        assert_eq!(postgres_migrations(&url).await, applied, "opening again applies nothing");
        assert_old_data_kept(&store, &old).await;
        assert_writes_continue(&store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_opening_one_fresh_postgres_database_at_once_both_succeed() {
    on_fresh_pg_database(|url| async move {
        let (a, b) = tokio::join!(PgStore::open(&url), PgStore::open(&url));
        let (a, b) = (a.expect("the first store opens"), b.expect("the second store opens"));
        let applied = postgres_migrations(&url).await;
        assert_eq!(
            applied.iter().map(|m| m.0).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
            "each migration applied once"
        );
        let compression: Vec<String> = pg_connect(&url)
            .await
            .query(
                "SELECT attcompression::text FROM pg_attribute
                 WHERE (attrelid, attname) IN (('journal'::regclass, 'body'), ('idempotency'::regclass, 'body'),
                                               ('guarantees'::regclass, 'doc'), ('outbox'::regclass, 'payload'))",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(compression, ["l"; 4], "documents are LZ4-compressed");
        a.put_office(office("TR000100", "Kapikule", &[OfficeRole::Departure])).await.unwrap();
        b.put_office(office("GE000100", "Sarpi", &[OfficeRole::Entry])).await.unwrap();
        assert_journal_complete(&a, 2).await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Deterministic runs: a seeded clock and id source give the same journal.

const SEED: u64 = 0x5449_5200;
/// 2026-09-22, in ms since the epoch.
const SEEDED_START_MS: i64 = 1_790_000_000_000;

/// Admin writes, a full transport and a revocation, one command at a time;
/// returns the whole journal.
async fn scripted_run(store: &dyn Store) -> Vec<JournalEntry> {
    let w = seed(store).await;
    for (sender, value) in transport(&w, &reference(1)) {
        submit_ok(store, &sender, &value).await;
    }
    assert_eq!(store.revoke_party(w.az.id()).await.unwrap().status, 200);
    let created = store.put_profile(profile_write(&w.tr, None, 30.0)).await.unwrap();
    let id = body(&created)["id"].as_str().unwrap().to_owned();
    assert_eq!(store.put_profile(profile_write(&w.tr, Some(&id), 50.0)).await.unwrap().status, 200);
    // The risk engine's writes: 2 assessments, a result, a model and a policy.
    assert_eq!(scripted_risk_writes(store).await, 5);
    assert_journal_complete(store, SEED_WRITES + TRANSPORT_MESSAGES + 3 + 5).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seeded_commands_give_the_same_journal_in_memory_and_on_sqlite() {
    let first = scripted_run(&MemoryStore::open_with(Env::seeded(SEED, SEEDED_START_MS))).await;
    let memory = MemoryStore::open_with(Env::seeded(SEED, SEEDED_START_MS));
    let second = scripted_run(&memory).await;
    assert_eq!(first, second, "the in-memory engine is deterministic");
    assert_eq!(memory.journal_head(), (second.len() as i64, second.last().unwrap().hash.clone()));

    let file = TempSqlite::new("tirhub-store-test").expect("a temporary directory");
    let sqlite = SqliteStore::open_with(file.path(), Env::seeded(SEED, SEEDED_START_MS)).unwrap();
    assert_eq!(scripted_run(&sqlite).await, first, "SQLite writes the same journal");

    let other_seed = scripted_run(&MemoryStore::open_with(Env::seeded(SEED + 1, SEEDED_START_MS))).await;
    assert_ne!(other_seed.last().unwrap().hash, first.last().unwrap().hash, "the seed is in the journal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seeded_commands_give_the_same_journal_in_memory_and_on_postgres() {
    on_fresh_pg_database(|url| async move {
        let memory = scripted_run(&MemoryStore::open_with(Env::seeded(SEED, SEEDED_START_MS))).await;
        let pg = PgStore::open_with(&url, Env::seeded(SEED, SEEDED_START_MS)).await.unwrap();
        assert_eq!(scripted_run(&pg).await, memory, "PostgreSQL writes the same journal");
    })
    .await;
}

#[tokio::test]
async fn a_failed_write_in_memory_leaves_nothing_behind_and_a_second_revocation_journals_nothing() {
    let store = MemoryStore::open_with(Env::seeded(SEED, SEEDED_START_MS));
    let w = seed(&store).await;
    let head = store.journal_head();
    let taken = impostor(&w, tir_store::token::hash("another token"));
    assert!(store.create_party(taken).await.is_err(), "a taken party id is refused");
    assert_eq!(store.journal_head(), head);
    let first = store.revoke_party(w.az.id()).await.unwrap();
    let again = store.revoke_party(w.az.id()).await.unwrap();
    assert_eq!(first, again, "a repeated revocation answers the same");
    assert_eq!(store.journal_head().0, head.0 + 1, "and is journaled once");
    let (token, _) = w.tokens.iter().find(|(_, p)| p == &w.az).unwrap();
    assert_eq!(store.party_by_token_hash(&tir_store::token::hash(token)).await.unwrap(), None);
    assert_eq!(error_code(&store.revoke_party("nobody").await.unwrap()), 381);
}

// ---------------------------------------------------------------------------
// The retention window of stored refusals, on every backend, under a clock
// moved by hand: no case sleeps.

/// Where a clocked case's store lives.
enum Clocked {
    Sqlite {
        path: PathBuf,
        url: String,
    },
    Postgres {
        url: String,
    },
    /// Nothing to reopen: a restart keeps the store.
    Memory(Arc<MemoryStore>),
}

/// A store whose writer reads `clock`, opened with `options`.
struct ClockedFixture {
    store: Arc<dyn Store>,
    clock: ManualClock,
    options: StoreOptions,
    at: Clocked,
}

/// Where a clocked case's writer time starts: 2027-01-15.
const CLOCKED_START_MS: i64 = 1_800_000_000_000;

impl ClockedFixture {
    /// Drops the store and opens a new one on the same database, with the
    /// same clock and options, like a restart.
    async fn restart(self) -> ClockedFixture {
        let ClockedFixture { store, clock, options, at } = self;
        let url = match &at {
            Clocked::Sqlite { url, .. } | Clocked::Postgres { url } => url.clone(),
            Clocked::Memory(_) => return ClockedFixture { store, clock, options, at },
        };
        assert_eq!(Arc::strong_count(&store), 1, "the old store must really go away");
        drop(store);
        // Another seed: the admin ids drawn after the restart differ from those before.
        let env = Env::manual(SEED + 1, clock.clone());
        let store = tir_store::open_with_options(&url, env, options).await.expect("reopen the store");
        ClockedFixture { store, clock, options, at }
    }

    /// How many answers the store holds, read behind its back.
    async fn stored_answers(&self) -> i64 {
        match &self.at {
            Clocked::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).expect("open the sqlite file");
                let count = |table: &str| -> i64 {
                    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap()
                };
                let (log, keys) = (count("idempotency_log"), count("idempotency_keys"));
                assert_eq!(log, keys, "every stored answer has its key hash, and no more");
                log
            }
            Clocked::Postgres { url } => {
                pg_connect(url).await.query_one("SELECT count(*) FROM idempotency", &[]).await.unwrap().get(0)
            }
            Clocked::Memory(store) => store.stored_answers() as i64,
        }
    }
}

async fn run_clocked<F, Fut>(at: Clocked, options: StoreOptions, case: F)
where
    F: FnOnce(ClockedFixture) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let clock = ManualClock::new(CLOCKED_START_MS);
    let env = Env::manual(SEED, clock.clone());
    let store: Arc<dyn Store> = match &at {
        Clocked::Sqlite { url, .. } | Clocked::Postgres { url } => {
            tir_store::open_with_options(url, env, options).await.expect("open the store")
        }
        Clocked::Memory(_) => unreachable!("opened by run_clocked_memory"),
    };
    finish(tokio::spawn(case(ClockedFixture { store, clock, options, at })).await);
}

async fn run_clocked_sqlite<F, Fut>(options: StoreOptions, case: F)
where
    F: FnOnce(ClockedFixture) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = TempSqlite::new("tirhub-store-test").expect("a temporary directory");
    let at = Clocked::Sqlite { path: db.path().to_owned(), url: db.url().to_owned() };
    run_clocked(at, options, case).await;
    drop(db);
}

async fn run_clocked_postgres<F, Fut>(options: StoreOptions, case: F)
where
    F: FnOnce(ClockedFixture) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = FreshDatabase::from_env("tirhub_t").await else { return };
    run_clocked(Clocked::Postgres { url: db.url().to_owned() }, options, case).await;
    drop(db);
}

async fn run_clocked_memory<F, Fut>(options: StoreOptions, case: F)
where
    F: FnOnce(ClockedFixture) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let clock = ManualClock::new(CLOCKED_START_MS);
    let memory = Arc::new(MemoryStore::open_with_options(Env::manual(SEED, clock.clone()), options));
    let store: Arc<dyn Store> = memory.clone();
    finish(tokio::spawn(case(ClockedFixture { store, clock, options, at: Clocked::Memory(memory) })).await);
}

/// Like `on_both!`, for clocked cases, on all three backends.
macro_rules! on_every_backend_clocked {
    ($($case:ident($options:expr) => $sqlite:ident, $postgres:ident, $memory:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            run_clocked_sqlite($options, $case).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            run_clocked_postgres($options, $case).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $memory() {
            run_clocked_memory($options, $case).await;
        }
    )*};
}

on_every_backend_clocked! {
    a_refusal_is_replayed_within_its_window_and_applied_anew_after_it(StoreOptions::default())
        => a_refusal_is_replayed_within_its_window_and_applied_anew_after_it_on_sqlite,
           a_refusal_is_replayed_within_its_window_and_applied_anew_after_it_on_postgres,
           a_refusal_is_replayed_within_its_window_and_applied_anew_after_it_in_memory;
    acceptances_are_kept_forever_and_only_expired_refusals_are_pruned(StoreOptions::default())
        => acceptances_are_kept_forever_and_only_expired_refusals_are_pruned_on_sqlite,
           acceptances_are_kept_forever_and_only_expired_refusals_are_pruned_on_postgres,
           acceptances_are_kept_forever_and_only_expired_refusals_are_pruned_in_memory;
    a_pruning_pass_deletes_at_most_its_bound(StoreOptions::default().with_prune_rows_per_pass(3))
        => a_pruning_pass_deletes_at_most_its_bound_on_sqlite,
           a_pruning_pass_deletes_at_most_its_bound_on_postgres,
           a_pruning_pass_deletes_at_most_its_bound_in_memory;
    a_reopened_store_forgets_pruned_refusals_and_replays_the_rest(StoreOptions::default())
        => a_reopened_store_forgets_pruned_refusals_and_replays_the_rest_on_sqlite,
           a_reopened_store_forgets_pruned_refusals_and_replays_the_rest_on_postgres,
           a_reopened_store_forgets_pruned_refusals_and_replays_the_rest_in_memory;
    a_configured_retention_replaces_the_default(StoreOptions::default().with_refusal_retention(Duration::from_secs(60)))
        => a_configured_retention_replaces_the_default_on_sqlite,
           a_configured_retention_replaces_the_default_on_postgres,
           a_configured_retention_replaces_the_default_in_memory;
    a_push_endpoint_is_leased_recorded_paused_and_resumed(StoreOptions::default())
        => a_push_endpoint_is_leased_recorded_paused_and_resumed_on_sqlite,
           a_push_endpoint_is_leased_recorded_paused_and_resumed_on_postgres,
           a_push_endpoint_is_leased_recorded_paused_and_resumed_in_memory;
}

/// Push notifications' state (docs/etir-binding.md, "Push notifications"): one
/// server at a time holds an endpoint's lease until it expires, a failure sets
/// the next attempt, a confirmation moves the cursor, failing past the pause
/// threshold pauses it and a PUT resumes it; the secret is never journaled.
async fn a_push_endpoint_is_leased_recorded_paused_and_resumed(f: ClockedFixture) {
    use tir_store::{PushClaim, PushEndpoint, PushEndpointWrite, PushOutcome};
    const PARTY: &str = "chain-iru";
    const SECRET: &str = "s3cret-of-the-chain-iru";
    let store = f.store.as_ref();
    let write = |url: &str| PushEndpointWrite {
        party: PARTY.into(),
        feed: "chain:chain-iru".into(),
        url: url.into(),
        secret: SECRET.into(),
    };
    let endpoint = || async { store.push_endpoint(PARTY).await.unwrap().expect("an endpoint") };
    let claim = |owner: &str, e: &PushEndpoint| PushClaim {
        party: PARTY.into(),
        owner: owner.into(),
        generation: e.generation,
        confirmed_cursor: e.confirmed_cursor,
        lease_ms: 10_000,
    };
    let outcome = |owner: &str, http_status: Option<u16>, cursor: i64| PushOutcome {
        party: PARTY.into(),
        owner: owner.into(),
        generation: 1,
        cursor,
        kind: "E7".into(),
        reference: "XH25000001".into(),
        http_status,
        error: http_status.is_none().then(|| "connect: refused".to_owned()),
        retry_in_ms: 1_000,
        pause_after_ms: 60_000,
    };

    let put = store.put_push_endpoint(write("https://a.example/hook")).await.unwrap();
    assert_eq!(put.status, 201, "{}", put.body);
    assert!(!put.body.contains(SECRET));
    let e = endpoint().await;
    assert_eq!((e.generation, e.confirmed_cursor, e.status.as_str(), e.secret.as_str()), (1, 0, "active", SECRET));

    // One holder of the lease at a time, until it expires.
    assert_eq!(store.push_claim(claim("a", &e)).await.unwrap().status, 200);
    assert_eq!(store.push_claim(claim("b", &e)).await.unwrap().status, 409);
    f.clock.advance(Duration::from_millis(10_001));
    assert_eq!(store.push_claim(claim("b", &e)).await.unwrap().status, 200);
    // The server that lost it records its attempt, which changes no state.
    store.push_record(outcome("a", Some(500), 1)).await.unwrap();
    let e = endpoint().await;
    assert_eq!((e.failures, e.lease_owner.as_deref()), (0, Some("b")));

    // A failure: the lease goes back, the next attempt waits its delay.
    store.push_record(outcome("b", None, 1)).await.unwrap();
    let e = endpoint().await;
    assert_eq!((e.failures, e.lease_owner.as_deref(), e.next_attempt_ms), (1, None, f.clock.now() + 1_000));
    assert_eq!(store.push_claim(claim("b", &e)).await.unwrap().status, 409, "not due yet");
    f.clock.advance(Duration::from_millis(1_000));
    assert_eq!(store.push_claim(claim("b", &e)).await.unwrap().status, 200);
    store.push_record(outcome("b", Some(204), 1)).await.unwrap();
    let e = endpoint().await;
    assert_eq!((e.confirmed_cursor, e.failures, e.first_failure_ms), (1, 0, None));
    let stale = PushClaim { confirmed_cursor: 0, ..claim("b", &e) };
    assert_eq!(store.push_claim(stale).await.unwrap().status, 409, "claimed as read: item 1 is confirmed");

    let attempts = store.push_attempts(PARTY, 0, 10).await.unwrap();
    let seen: Vec<(Option<i64>, bool)> = attempts.iter().map(|a| (a.http_status, a.confirmed)).collect();
    assert_eq!(seen, [(Some(500), false), (None, false), (Some(204), true)]);
    assert_eq!(attempts[1].error.as_deref(), Some("connect: refused"));
    assert!(attempts[1].next_attempt_ms.is_some() && attempts[2].next_attempt_ms.is_none());
    assert!(store.push_attempts(PARTY, 1, 10).await.unwrap().is_empty());

    // Failing for `pause_after_ms` pauses the endpoint until a PUT.
    assert_eq!(store.push_claim(claim("b", &e)).await.unwrap().status, 200);
    store.push_record(outcome("b", Some(503), 2)).await.unwrap();
    f.clock.advance(Duration::from_secs(61));
    let e = endpoint().await;
    assert_eq!(store.push_claim(claim("b", &e)).await.unwrap().status, 200);
    store.push_record(outcome("b", Some(503), 2)).await.unwrap();
    let e = endpoint().await;
    assert_eq!(e.status, "paused");
    assert!(e.paused_reason.as_deref().is_some_and(|r| r.contains("HTTP 503")), "{e:?}");
    assert!(store.push_endpoints_active().await.unwrap().is_empty());
    assert_eq!(store.push_claim(claim("b", &e)).await.unwrap().status, 409);

    let resumed = store.put_push_endpoint(write("https://b.example/hook")).await.unwrap();
    assert_eq!(resumed.status, 200);
    let e = endpoint().await;
    assert_eq!((e.status.as_str(), e.generation, e.confirmed_cursor, e.failures), ("active", 2, 1, 0));
    assert_eq!(store.push_endpoints_active().await.unwrap().len(), 1);

    assert_eq!(store.remove_push_endpoint(PARTY).await.unwrap().status, 200);
    assert_eq!(endpoint().await.status, "removed");
    assert_eq!(store.remove_push_endpoint(PARTY).await.unwrap().status, 404);
    assert!(store.push_endpoints_active().await.unwrap().is_empty());

    let journal = store.journal(0, 1_000).await.unwrap();
    assert!(journal.iter().all(|e| !e.body.contains(SECRET)), "the secret is never journaled");
    let types: Vec<&str> = journal.iter().map(|e| e.message_type.as_str()).collect();
    assert_eq!(types, ["PUSH_ENDPOINT", "PUSH_CONFIRMED", "PUSH_PAUSED", "PUSH_ENDPOINT", "PUSH_ENDPOINT_REMOVED"]);
    assert!(store.verify_journal().await.unwrap().ok);
}

/// An E3 (cancel) of guarantee `n` by the chain: refused while the guarantee
/// is unknown, accepted once it is registered.
fn cancel(n: usize, message_id: &str) -> Value {
    message(message_id, "E3", &reference(n), json!({"reason": "fraud suspected"}))
}

fn register(n: usize) -> Value {
    message(&format!("register-{n}"), "E1", &reference(n), json!({"holder": HOLDER}))
}

async fn submit_refused(store: &dyn Store, sender: &Party, value: &Value) -> Reply {
    let reply = submit(store, sender, value).await;
    assert_ne!(reply.status, 200, "{} {} is refused: {}", value["type"], value["guarantee_reference"], reply.body);
    reply
}

async fn a_refusal_is_replayed_within_its_window_and_applied_anew_after_it(fx: ClockedFixture) {
    let store = fx.store.as_ref();
    let w = seed(store).await;
    let e3 = cancel(1, "cancel-1");
    let refused = submit_refused(store, &w.chain, &e3).await;
    submit_ok(store, &w.chain, &register(1)).await;
    // The same message would now be accepted, but its stored refusal answers.
    assert_eq!(submit(store, &w.chain, &e3).await, refused);
    // At the window's last millisecond (a pruning pass runs: its interval has passed).
    fx.clock.advance(REFUSAL_RETENTION);
    assert_eq!(submit(store, &w.chain, &e3).await, refused, "replayed for the whole window");
    // Same id, another body: still a duplicate within the window.
    let mut other = e3.clone();
    other["reason"] = json!("another reason");
    let conflict = submit(store, &w.chain, &other).await;
    assert_eq!((conflict.status, error_code(&conflict)), (409, 299), "{}", conflict.body);

    // Past the window and at the next pass: the same id and body are applied anew.
    fx.clock.advance(PRUNE_INTERVAL);
    let anew = submit_ok(store, &w.chain, &e3).await;
    assert_eq!(guarantee_state(store, &reference(1)).await, GuaranteeState::Cancelled);
    let entries = assert_journal_complete(store, SEED_WRITES + 2).await;
    assert_eq!(entries.last().unwrap().message_id, "cancel-1", "the E3 is journaled once, when accepted");
    // Its answer is now an acceptance: replayed, and kept past any window.
    fx.clock.advance(REFUSAL_RETENTION * 10);
    submit_ok(store, &w.chain, &register(2)).await;
    assert_eq!(submit(store, &w.chain, &e3).await, anew);
    assert_eq!(fx.stored_answers().await, 3, "the E1s and the accepted E3");
}

async fn acceptances_are_kept_forever_and_only_expired_refusals_are_pruned(fx: ClockedFixture) {
    let store = fx.store.as_ref();
    let w = seed(store).await;
    let accepted = submit_ok(store, &w.chain, &register(1)).await;
    let old_refusal = submit_refused(store, &w.chain, &cancel(2, "old")).await;
    fx.clock.advance(REFUSAL_RETENTION / 2);
    let new_refusal = submit_refused(store, &w.chain, &cancel(3, "new")).await;
    assert_eq!(fx.stored_answers().await, 3);
    submit_ok(store, &w.chain, &register(2)).await;
    submit_ok(store, &w.chain, &register(3)).await;

    // The old refusal is past its window, the new one is not.
    fx.clock.advance(REFUSAL_RETENTION / 2 + PRUNE_INTERVAL);
    assert_eq!(submit(store, &w.chain, &cancel(3, "new")).await, new_refusal, "still within its window");
    assert_eq!(fx.stored_answers().await, 4, "the E1s and the new refusal");
    assert_ne!(submit_ok(store, &w.chain, &cancel(2, "old")).await, old_refusal, "applied anew");

    // A month later, after many passes, every acceptance still replays byte for byte.
    for _ in 0..30 {
        fx.clock.advance(REFUSAL_RETENTION);
        submit_refused(store, &w.chain, &cancel(9, &format!("late-{}", fx.clock.now()))).await;
    }
    let replay = submit(store, &w.chain, &register(1)).await;
    assert_eq!(replay.body.as_bytes(), accepted.body.as_bytes());
    // The E1s, the accepted E3, and the last two refusals: each pass runs before
    // its batch and deletes what is older than the window, strictly.
    assert_eq!(fx.stored_answers().await, 6);
}

async fn a_pruning_pass_deletes_at_most_its_bound(fx: ClockedFixture) {
    assert_eq!(fx.options.prune_rows_per_pass, 3);
    let store = fx.store.as_ref();
    let w = seed(store).await;
    for i in 0..7 {
        submit_refused(store, &w.chain, &cancel(1, &format!("refused-{i}"))).await;
    }
    assert_eq!(fx.stored_answers().await, 7);
    fx.clock.advance(REFUSAL_RETENTION + PRUNE_INTERVAL);
    // Each message's batch follows one pass: 3, then 3 more at once (the last
    // pass was full), then the 1 left.
    let mut counts = Vec::new();
    for n in 1..=4 {
        submit_ok(store, &w.chain, &register(n)).await;
        counts.push(fx.stored_answers().await);
    }
    assert_eq!(counts, [7 - 3 + 1, 5 - 3 + 1, 3 - 1 + 1, 4]);
    // The pruned refusals' ids are free again: applied anew, now that the guarantee exists.
    submit_ok(store, &w.chain, &cancel(1, "refused-0")).await;
    assert_eq!(guarantee_state(store, &reference(1)).await, GuaranteeState::Cancelled);
}

async fn a_reopened_store_forgets_pruned_refusals_and_replays_the_rest(fx: ClockedFixture) {
    let w = seed(fx.store.as_ref()).await;
    let store = fx.store.as_ref();
    let accepted = submit_ok(store, &w.chain, &register(1)).await;
    submit_refused(store, &w.chain, &cancel(2, "expires")).await;
    fx.clock.advance(REFUSAL_RETENTION / 2);
    let kept = submit_refused(store, &w.chain, &cancel(3, "kept")).await;
    fx.clock.advance(REFUSAL_RETENTION / 2 + PRUNE_INTERVAL);
    // Their guarantees exist now: a refusal applied anew would be accepted.
    submit_ok(store, &w.chain, &register(2)).await;
    submit_ok(store, &w.chain, &register(3)).await;
    assert_eq!(fx.stored_answers().await, 4, "the E1s and the refusal within its window");

    let fx = fx.restart().await;
    let store = fx.store.as_ref();
    assert_eq!(fx.stored_answers().await, 4);
    assert_eq!(submit(store, &w.chain, &register(1)).await, accepted);
    assert_eq!(submit(store, &w.chain, &cancel(3, "kept")).await, kept, "replayed after the restart");
    submit_ok(store, &w.chain, &cancel(2, "expires")).await;
    assert_eq!(guarantee_state(store, &reference(2)).await, GuaranteeState::Cancelled);
    assert_eq!(guarantee_state(store, &reference(3)).await, GuaranteeState::Registered);
    assert_eq!(fx.stored_answers().await, 5);
}

async fn a_configured_retention_replaces_the_default(fx: ClockedFixture) {
    assert_eq!(fx.options.refusal_retention, Duration::from_secs(60));
    let store = fx.store.as_ref();
    let w = seed(store).await;
    let refused = submit_refused(store, &w.chain, &cancel(1, "short")).await;
    submit_ok(store, &w.chain, &register(1)).await;
    fx.clock.advance(Duration::from_secs(60));
    assert_eq!(submit(store, &w.chain, &cancel(1, "short")).await, refused);
    fx.clock.advance(PRUNE_INTERVAL);
    submit_ok(store, &w.chain, &cancel(1, "short")).await;
}

// ---------------------------------------------------------------------------
// The risk engine's records, on every backend (clocked: the writer's times are
// known, so `recorded_at`, `trained_at` and `updated_at` can be asserted).

on_every_backend_clocked! {
    assessments_are_stored_in_batches_and_read_back_as_written(StoreOptions::default())
        => assessments_are_stored_in_batches_and_read_back_as_written_on_sqlite,
           assessments_are_stored_in_batches_and_read_back_as_written_on_postgres,
           assessments_are_stored_in_batches_and_read_back_as_written_in_memory;
    a_stale_or_malformed_assessment_batch_writes_nothing(StoreOptions::default())
        => a_stale_or_malformed_assessment_batch_writes_nothing_on_sqlite,
           a_stale_or_malformed_assessment_batch_writes_nothing_on_postgres,
           a_stale_or_malformed_assessment_batch_writes_nothing_in_memory;
    inspection_results_replace_per_office_and_count_in_the_holder_history(StoreOptions::default())
        => inspection_results_replace_per_office_and_count_in_the_holder_history_on_sqlite,
           inspection_results_replace_per_office_and_count_in_the_holder_history_on_postgres,
           inspection_results_replace_per_office_and_count_in_the_holder_history_in_memory;
    a_model_is_stored_once_per_version_and_the_newest_is_the_latest(StoreOptions::default())
        => a_model_is_stored_once_per_version_and_the_newest_is_the_latest_on_sqlite,
           a_model_is_stored_once_per_version_and_the_newest_is_the_latest_on_postgres,
           a_model_is_stored_once_per_version_and_the_newest_is_the_latest_in_memory;
    policies_replace_per_office_and_the_default_is_kept_apart(StoreOptions::default())
        => policies_replace_per_office_and_the_default_is_kept_apart_on_sqlite,
           policies_replace_per_office_and_the_default_is_kept_apart_on_postgres,
           policies_replace_per_office_and_the_default_is_kept_apart_in_memory;
    the_hit_rate_sums_give_the_figures_of_every_assessment_and_result(StoreOptions::default())
        => the_hit_rate_sums_give_the_figures_of_every_assessment_and_result_on_sqlite,
           the_hit_rate_sums_give_the_figures_of_every_assessment_and_result_on_postgres,
           the_hit_rate_sums_give_the_figures_of_every_assessment_and_result_in_memory;
}

/// Like `on_postgres_only!`, for cases that open their own stores on a fresh database.
macro_rules! on_postgres_only_by_url {
    ($($case:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            on_fresh_pg_database(risk::$case).await;
        }
    )*};
}

on_postgres_only_by_url! {
    two_stores_racing_on_one_risk_cursor_store_the_batch_once;
}

use risk::*;

mod risk {
    use super::*;
    use tir_model::Timestamp;
    use tir_risk::assessment::{Assessment, SelectedBy};
    use tir_risk::context::TransportContext;
    use tir_risk::policy::PolicyConfig;
    use tir_store::{
        AssessmentBatch, AssessmentRecord, HolderHistory, InspectionResult, Outcome, PolicyRecord, RISK_ASSESSMENT,
        RISK_MODEL, RISK_POLICY, RISK_RESULT, StoredModel, Trigger,
    };

    const HOLDER_A: &str = "TUR/001/000001";
    const HOLDER_B: &str = "TUR/001/000002";

    /// Every field of a context; those of one assessment are set by `context`.
    const CONTEXT: &str = r#"{
        "guarantee": "", "holder": "", "holder_country": "TR",
        "holder_transports": 3, "holder_irregularities": 1, "holder_irregularity_rate": 0.5,
        "country": "", "office": "", "operation": 0, "territory": "EU",
        "operation_countries": ["LT", "PL"], "itinerary": ["TR", "GE", "LT", "PL"],
        "previous_countries": ["TR", "GE"], "next_countries": ["PL"],
        "previous_country": "GE", "next_country": "PL", "departure_country": "TR", "destination_country": "PL",
        "vehicle_country": "TR", "vehicle_registration": "34 ABC 123", "seals": 2,
        "weekday": 3, "hour": 14, "date": "2027-01-13",
        "declaration_version": 1, "amendments": 0, "amendments_requested": 0,
        "goods": [{
            "consignment": 0, "hs6": "240220", "hs4": "2402", "hs2": "24",
            "hs6_description": "Cigarettes containing tobacco", "hs4_description": "Cigars, cigarettes",
            "hs2_description": "Tobacco", "description": "Cigarettes", "packages": 40,
            "gross_mass_kg": 1250.5, "value": 30000.25, "currency": "EUR", "value_per_kg": 24.0,
            "consignor_country": "TR", "consignee_country": "PL"
        }],
        "goods_count": 1, "consignments": 1, "hs6": ["240220"], "hs4": ["2402"], "hs2": ["24"],
        "goods_description": "Cigarettes", "consignor_countries": ["TR"], "consignee_countries": ["PL"],
        "total_gross_mass_kg": 1250.5, "total_packages": 40, "total_value": 30000.25,
        "value_currency": "EUR", "value_per_kg": 24.0
    }"#;

    /// A context as `TransportContext::build` makes one (its test helper is
    /// private to tir-risk): every field, one goods item.
    pub(super) fn context(
        guarantee: &str,
        holder: &str,
        country: &str,
        office: &str,
        operation: i64,
    ) -> TransportContext {
        let mut value: Value = serde_json::from_str(CONTEXT).expect("JSON");
        for (field, v) in [
            ("guarantee", json!(guarantee)),
            ("holder", json!(holder)),
            ("country", json!(country)),
            ("office", json!(office)),
            ("operation", json!(operation)),
        ] {
            value[field] = v;
        }
        serde_json::from_value(value).expect("a complete transport context")
    }

    /// One assessment of `operation` of `guarantee` by `administration` at `office`.
    pub(super) struct Made<'a> {
        pub administration: &'a str,
        pub guarantee: &'a str,
        pub holder: &'a str,
        pub office: &'a str,
        pub operation: i64,
        pub source_cursor: i64,
        pub assessed_at_ms: i64,
    }

    pub(super) fn record(m: Made<'_>) -> AssessmentRecord {
        AssessmentRecord {
            administration: country(m.administration),
            guarantee: m.guarantee.to_owned(),
            holder: m.holder.to_owned(),
            trigger: Trigger::DeclarationRecorded,
            source_cursor: m.source_cursor,
            declaration_version: 1,
            assessment: Assessment {
                office: m.office.to_owned(),
                operation: m.operation,
                lane: Lane::Red,
                score: Some(0.75),
                reasons: vec!["rule tobacco: cigarettes".into(), "model: value_per_kg".into()],
                selected_by: SelectedBy::Rule { id: "tobacco".into(), version: 2 },
                model_version: Some("2027-01-10.1".into()),
                profile_versions: vec!["rule:tobacco@2".into()],
                matched_profiles: vec!["rule:tobacco@2".into()],
                rule_errors: Vec::new(),
                assessed_at: Timestamp::from_unix_ms(m.assessed_at_ms),
            },
            context: context(m.guarantee, m.holder, m.administration, m.office, m.operation),
        }
    }

    /// A record of `guarantee` by LT at LTVIL001, operation 1, at `source_cursor`.
    fn lt_record(guarantee: &str, holder: &str, source_cursor: i64) -> AssessmentRecord {
        record(Made {
            administration: "LT",
            guarantee,
            holder,
            office: "LTVIL001",
            operation: 1,
            source_cursor,
            assessed_at_ms: CLOCKED_START_MS,
        })
    }

    fn journal_of(entries: &[JournalEntry], message_type: &str) -> Vec<JournalEntry> {
        entries.iter().filter(|e| e.message_type == message_type).cloned().collect()
    }

    async fn whole_journal(store: &dyn Store) -> Vec<JournalEntry> {
        store.journal(1, 10_000).await.unwrap()
    }

    async fn put(store: &dyn Store, after: i64, through: i64, records: Vec<AssessmentRecord>) -> Reply {
        store.put_assessments(AssessmentBatch { after, through, records }).await.unwrap()
    }

    pub(super) async fn assessments_are_stored_in_batches_and_read_back_as_written(fx: ClockedFixture) {
        let store = fx.store.as_ref();
        assert_eq!(store.risk_cursor().await.unwrap(), 0, "nothing assessed yet");
        let t = CLOCKED_START_MS;
        let made = |guarantee, office, operation, source_cursor, assessed_at_ms, administration| {
            record(Made {
                administration,
                guarantee,
                holder: HOLDER_A,
                office,
                operation,
                source_cursor,
                assessed_at_ms,
            })
        };
        // Written out of order: the reads sort by assessed_at, source_cursor, operation.
        let a2 = made("XH25000001", "LTVIL001", 2, 2, t + 10, "LT");
        let a1 = made("XH25000001", "LTVIL001", 1, 2, t + 10, "LT");
        let pl = made("XH25000001", "PLKUB001", 2, 4, t + 20, "PL");
        let b = made("XH25000002", "LTMDK001", 1, 5, t, "LT");
        let batch = vec![a2.clone(), a1.clone(), pl.clone(), b.clone()];
        let stored = put(store, 0, 5, batch.clone()).await;
        assert_eq!((stored.status, body(&stored)), (200, json!({"stored": 4, "cursor": 5})));
        assert_eq!(store.risk_cursor().await.unwrap(), 5);

        let lt = country("LT");
        assert_eq!(store.assessments(lt, "XH25000001").await.unwrap(), [a1.clone(), a2.clone()], "context included");
        assert_eq!(store.all_assessments(lt).await.unwrap(), [b.clone(), a1.clone(), a2.clone()]);
        assert_eq!(store.recent_assessments(lt, None, 2).await.unwrap(), [a2.clone(), a1.clone()]);
        assert_eq!(store.recent_assessments(lt, Some("LTMDK001"), 10).await.unwrap(), std::slice::from_ref(&b));
        assert!(store.recent_assessments(lt, Some("PLKUB001"), 10).await.unwrap().is_empty(), "PL's office");
        assert_eq!(
            store.all_assessments(country("PL")).await.unwrap(),
            std::slice::from_ref(&pl),
            "PL sees only its own"
        );
        assert!(store.assessments(country("GE"), "XH25000001").await.unwrap().is_empty());

        // An empty batch still moves the cursor, and journals nothing.
        let before = whole_journal(store).await.len();
        let moved = put(store, 5, 7, Vec::new()).await;
        assert_eq!((moved.status, body(&moved)), (200, json!({"stored": 0, "cursor": 7})));
        assert_eq!(store.risk_cursor().await.unwrap(), 7);
        assert_eq!(whole_journal(store).await.len(), before);

        // One journal entry per record, from "risk", under its guarantee: the record as body,
        // its context replaced by the SHA-256 of the record as stored.
        let entries = journal_of(&whole_journal(store).await, RISK_ASSESSMENT);
        assert_eq!(entries.len(), 4);
        for (i, (entry, record)) in entries.iter().zip(&batch).enumerate() {
            assert_eq!((entry.sender.as_str(), entry.reference.as_str()), ("risk", record.guarantee.as_str()));
            assert_eq!(entry.message_id, format!("5-{i}"));
            let mut body: Value = serde_json::from_str(&entry.body).unwrap();
            let stored = serde_json::to_string(record).unwrap();
            let digest = tir_store::journal::body_hash(&stored);
            assert_eq!(body["record_sha256"].as_str(), Some(digest.as_str()));
            assert!(body.get("context").is_none(), "{body}");
            body["context"] = serde_json::to_value(&record.context).unwrap();
            body.as_object_mut().unwrap().remove("record_sha256");
            assert_eq!(&serde_json::from_value::<AssessmentRecord>(body).unwrap(), record);
        }
        assert!(store.verify_journal().await.unwrap().ok);

        let fx = fx.restart().await;
        assert_eq!(fx.store.risk_cursor().await.unwrap(), 7, "after a restart");
        assert_eq!(fx.store.all_assessments(lt).await.unwrap(), [b, a1, a2]);
    }

    pub(super) async fn a_stale_or_malformed_assessment_batch_writes_nothing(fx: ClockedFixture) {
        let store = fx.store.as_ref();
        let first = lt_record("XH25000001", HOLDER_A, 3);
        assert_eq!(put(store, 0, 3, vec![first.clone()]).await.status, 200);
        let journal = whole_journal(store).await;

        // Another server's batch from the same cursor: 409 with where the cursor is.
        let stale = put(store, 0, 6, vec![lt_record("XH25000002", HOLDER_A, 5)]).await;
        assert_eq!((stale.status, body(&stale)), (409, json!({"cursor": 3})));
        // A record outside (after, through], and a cursor moving back: 400/106.
        let outside = put(store, 3, 6, vec![lt_record("XH25000002", HOLDER_A, 7)]).await;
        assert_eq!((outside.status, error_code(&outside)), (400, 106), "{}", outside.body);
        assert_eq!(body(&outside)["error"]["pointer"], "/records/0/source_cursor");
        let backwards = put(store, 3, 2, Vec::new()).await;
        assert_eq!((backwards.status, error_code(&backwards)), (400, 106), "{}", backwards.body);

        assert_eq!(store.risk_cursor().await.unwrap(), 3);
        assert_eq!(store.all_assessments(country("LT")).await.unwrap(), [first]);
        assert_eq!(whole_journal(store).await, journal, "no journal entry either");
        assert!(store.verify_journal().await.unwrap().ok);
    }

    pub(super) fn result(administration: &str, guarantee: &str, office: &str, outcome: Outcome) -> InspectionResult {
        InspectionResult {
            administration: country(administration),
            guarantee: guarantee.to_owned(),
            office: office.to_owned(),
            outcome,
            revenue: if outcome.is_irregular() { 1520.5 } else { 0.0 },
            findings: if outcome.is_irregular() { vec!["undeclared cigarettes".into()] } else { Vec::new() },
            notes: "inspected at the border".into(),
            recorded_by: format!("cus_{}", administration.to_lowercase()),
            // The writer sets it: whatever the caller says is replaced.
            recorded_at: Timestamp::from_unix_ms(0),
        }
    }

    pub(super) async fn inspection_results_replace_per_office_and_count_in_the_holder_history(fx: ClockedFixture) {
        let store = fx.store.as_ref();
        let (lt, pl) = (country("LT"), country("PL"));
        let first = store.put_result(result("LT", "XH25000001", "LTVIL001", Outcome::Compliant)).await.unwrap();
        assert_eq!(first.status, 201, "{}", first.body);
        let t0 = Timestamp::from_unix_ms(fx.clock.now());
        assert_eq!(body(&first)["recorded_at"], t0.to_string(), "the writer's time, RFC 3339");

        fx.clock.advance(Duration::from_secs(60));
        let corrected = store.put_result(result("LT", "XH25000001", "LTVIL001", Outcome::Irregularity)).await.unwrap();
        assert_eq!(corrected.status, 200, "the same (administration, guarantee, office) is replaced");
        let t1 = Timestamp::from_unix_ms(fx.clock.now());
        let other_office = store.put_result(result("LT", "XH25000001", "LTMDK001", Outcome::Compliant)).await.unwrap();
        assert_eq!(other_office.status, 201, "another office's result is its own");
        assert_eq!(
            store.put_result(result("LT", "XH25000002", "LTVIL001", Outcome::Compliant)).await.unwrap().status,
            201
        );
        assert_eq!(
            store.put_result(result("LT", "XH25000003", "LTVIL001", Outcome::Irregularity)).await.unwrap().status,
            201
        );
        assert_eq!(
            store.put_result(result("PL", "XH25000002", "PLKUB001", Outcome::Irregularity)).await.unwrap().status,
            201
        );

        let results = store.results(lt).await.unwrap();
        let keys: Vec<(&str, &str, Outcome)> =
            results.iter().map(|r| (r.guarantee.as_str(), r.office.as_str(), r.outcome)).collect();
        assert_eq!(
            keys,
            [
                ("XH25000001", "LTMDK001", Outcome::Compliant),
                ("XH25000001", "LTVIL001", Outcome::Irregularity),
                ("XH25000002", "LTVIL001", Outcome::Compliant),
                ("XH25000003", "LTVIL001", Outcome::Irregularity),
            ],
            "oldest first, then by guarantee and office"
        );
        assert!(results.iter().all(|r| r.recorded_at == t1), "all recorded at the writer's time");
        let expected =
            InspectionResult { recorded_at: t1, ..result("LT", "XH25000001", "LTVIL001", Outcome::Irregularity) };
        assert_eq!(results[1], expected, "read back as written");
        assert_eq!(store.results(pl).await.unwrap().len(), 1);

        // Holder A: guarantees 1 (twice) and 2 assessed by LT; 1 irregular in LT, 2 only in PL.
        // Holder B: guarantee 3, irregular.
        let records = vec![
            lt_record("XH25000001", HOLDER_A, 1),
            lt_record("XH25000001", HOLDER_A, 2),
            lt_record("XH25000002", HOLDER_A, 2),
            lt_record("XH25000003", HOLDER_B, 3),
        ];
        assert_eq!(put(store, 0, 3, records).await.status, 200);
        let history = |transports, irregularities| HolderHistory { transports, irregularities };
        assert_eq!(store.holder_history(lt, HOLDER_A).await.unwrap(), history(2, 1));
        assert_eq!(store.holder_history(lt, HOLDER_B).await.unwrap(), history(1, 1));
        assert_eq!(store.holder_history(pl, HOLDER_A).await.unwrap(), history(0, 0), "PL assessed none of them");
        assert_eq!(store.holder_history(lt, "TUR/001/999999").await.unwrap(), history(0, 0));

        // Every write journaled, the replacement too, from the customs who recorded it.
        let entries = journal_of(&whole_journal(store).await, RISK_RESULT);
        assert_eq!(entries.len(), 6);
        assert_eq!((entries[1].sender.as_str(), entries[1].reference.as_str()), ("cus_lt", "XH25000001"));
        assert_eq!(serde_json::from_str::<Value>(&entries[1].body).unwrap(), body(&corrected));
        assert!(store.verify_journal().await.unwrap().ok);
    }

    /// Assessments of LT (and one of PL) by several selectors over two weeks, with results
    /// written before and after them, replaced, at their office or only at another.
    pub(super) fn varied_records(start_ms: i64) -> Vec<AssessmentRecord> {
        let made = |administration, guarantee, office, operation, source_cursor, days: i64| {
            record(Made {
                administration,
                guarantee,
                holder: HOLDER_A,
                office,
                operation,
                source_cursor,
                assessed_at_ms: start_ms + days * 86_400_000,
            })
        };
        let mut records = vec![
            made("LT", "XH25000001", "LTVIL001", 1, 1, 0),
            made("LT", "XH25000001", "LTMDK001", 2, 1, 1),
            made("LT", "XH25000002", "LTVIL001", 1, 2, 0),
            made("LT", "XH25000003", "LTVIL001", 1, 2, 8),
            made("LT", "XH25000004", "LTMDK001", 1, 3, 9),
            made("PL", "XH25000002", "PLKUB001", 2, 4, 1),
        ];
        records[1].assessment.selected_by = SelectedBy::Model { version: "2027-01-10.1".into() };
        records[2].assessment.selected_by = SelectedBy::Random;
        records[3].assessment.selected_by = SelectedBy::None;
        records
    }

    /// The figures from the store's sums, and from every assessment and result as before.
    async fn both_figures(store: &dyn Store, administration: &str) -> (tir_risk::stats::Stats, tir_risk::stats::Stats) {
        let a = country(administration);
        let (records, results) = (store.all_assessments(a).await.unwrap(), store.results(a).await.unwrap());
        (store.risk_stats(a).await.unwrap(), tir_risk::stats::stats(&records, &results))
    }

    pub(super) async fn the_hit_rate_sums_give_the_figures_of_every_assessment_and_result(fx: ClockedFixture) {
        let store = fx.store.as_ref();
        // A result before any assessment of its guarantee.
        assert_eq!(
            store.put_result(result("LT", "XH25000001", "LTVIL001", Outcome::Irregularity)).await.unwrap().status,
            201
        );
        let records = varied_records(fx.clock.now());
        assert_eq!(put(store, 0, 3, records[..5].to_vec()).await.status, 200);
        let (kept, computed) = both_figures(store, "LT").await;
        assert_eq!(kept, computed);
        assert_eq!(
            kept.by_week.iter().map(|g| (g.volume, g.inspected, g.hits)).collect::<Vec<_>>(),
            [(3, 2, 2), (2, 0, 0)]
        );
        // Results after the assessments: at another office only, then at the assessment's own.
        let steps = [
            result("LT", "XH25000002", "LTMDK001", Outcome::Compliant),
            result("LT", "XH25000003", "LTMDK001", Outcome::Irregularity),
            result("LT", "XH25000002", "LTVIL001", Outcome::Irregularity),
            // Replaced: the hit and its revenue are taken back.
            result("LT", "XH25000001", "LTVIL001", Outcome::Compliant),
            result("PL", "XH25000002", "PLKUB001", Outcome::Irregularity),
            result("LT", "XH25000004", "LTVIL001", Outcome::Irregularity),
        ];
        for (i, step) in steps.into_iter().enumerate() {
            fx.clock.advance(Duration::from_secs(60));
            assert!(store.put_result(step).await.unwrap().status < 300);
            assert_eq!(both_figures(store, "LT").await.0, both_figures(store, "LT").await.1, "after result {i}");
        }
        // A later assessment of a guarantee with results.
        assert_eq!(put(store, 3, 4, vec![records[5].clone()]).await.status, 200);
        for administration in ["LT", "PL", "DE"] {
            let (kept, computed) = both_figures(store, administration).await;
            assert_eq!(kept, computed, "{administration}");
        }
        let (kept, _) = both_figures(store, "LT").await;
        let by: Vec<(&str, usize, usize, usize, f64)> =
            kept.by_selector.iter().map(|g| (g.key.as_str(), g.volume, g.inspected, g.hits, g.revenue)).collect();
        assert_eq!(
            by,
            [
                ("model@2027-01-10.1", 1, 1, 0, 0.0),
                ("none", 1, 1, 1, 1520.5),
                ("random", 1, 1, 1, 1520.5),
                ("rule:tobacco@2", 2, 2, 1, 1520.5),
            ]
        );
        assert_eq!(both_figures(store, "PL").await.0.by_selector[0].hits, 1);
    }

    fn model(administration: &str, version: &str, model_json: &str) -> StoredModel {
        StoredModel {
            administration: country(administration),
            version: version.to_owned(),
            trained_at: Timestamp::from_unix_ms(0),
            trained_by: "cli".into(),
            rows_trained: 12_000,
            irregular_trained: 240,
            model_json: model_json.to_owned(),
        }
    }

    pub(super) async fn a_model_is_stored_once_per_version_and_the_newest_is_the_latest(fx: ClockedFixture) {
        let store = fx.store.as_ref();
        let lt = country("LT");
        assert_eq!(store.latest_model(lt).await.unwrap(), None);
        let v1_json = r#"{"trees":[1]}"#;
        let created = store.put_model(model("LT", "2027-01-15.1", v1_json)).await.unwrap();
        assert_eq!(created.status, 201, "{}", created.body);
        let t0 = Timestamp::from_unix_ms(fx.clock.now());
        let meta = body(&created);
        assert_eq!(meta["model_sha256"], tir_store::journal::body_hash(v1_json));
        assert_eq!(meta["trained_at"], t0.to_string());
        assert_eq!((meta["version"].as_str(), meta["rows_trained"].as_u64()), (Some("2027-01-15.1"), Some(12_000)));
        assert!(meta.get("model_json").is_none(), "metadata only");

        // The same version again, even with another model: the stored metadata, nothing written.
        fx.clock.advance(Duration::from_secs(60));
        let again = store.put_model(model("LT", "2027-01-15.1", r#"{"trees":[2]}"#)).await.unwrap();
        assert_eq!((again.status, body(&again)), (200, meta.clone()));
        let entries = journal_of(&whole_journal(store).await, RISK_MODEL);
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].sender.as_str(), entries[0].reference.as_str()), ("cli", "LT/2027-01-15.1"));
        assert_eq!(serde_json::from_str::<Value>(&entries[0].body).unwrap(), meta);

        let v2_json = r#"{"trees":[3]}"#;
        assert_eq!(store.put_model(model("LT", "2027-01-15.2", v2_json)).await.unwrap().status, 201);
        let t1 = Timestamp::from_unix_ms(fx.clock.now());
        assert_eq!(store.put_model(model("PL", "2027-01-15.1", "{}")).await.unwrap().status, 201, "PL's own");
        let latest = store.latest_model(lt).await.unwrap().expect("a model");
        assert_eq!(latest, StoredModel { trained_at: t1, ..model("LT", "2027-01-15.2", v2_json) });
        let listed = store.models(lt).await.unwrap();
        assert_eq!(
            listed,
            [
                StoredModel { trained_at: t1, ..model("LT", "2027-01-15.2", "") },
                StoredModel { trained_at: t0, ..model("LT", "2027-01-15.1", "") },
            ],
            "newest first, without the models"
        );
        assert_eq!(journal_of(&whole_journal(store).await, RISK_MODEL).len(), 3);
        assert!(store.verify_journal().await.unwrap().ok);
    }

    fn policy(office: Option<&str>, red_share: f64) -> PolicyRecord {
        PolicyRecord {
            administration: country("LT"),
            office: office.map(str::to_owned),
            config: PolicyConfig { red_share, ..PolicyConfig::default() },
            author: "cus_lt".into(),
            updated_at: Timestamp::from_unix_ms(0),
        }
    }

    pub(super) async fn policies_replace_per_office_and_the_default_is_kept_apart(fx: ClockedFixture) {
        let store = fx.store.as_ref();
        let office = policy(Some("LTVIL001"), 0.05);
        let put = store.put_policy(office.clone()).await.unwrap();
        assert_eq!(put.status, 200, "{}", put.body);
        let default = store.put_policy(policy(None, 0.08)).await.unwrap();
        assert_eq!(body(&default)["office"], Value::Null);
        fx.clock.advance(Duration::from_secs(60));
        let replaced = store.put_policy(policy(Some("LTVIL001"), 0.2)).await.unwrap();
        assert_eq!(replaced.status, 200);
        let t1 = Timestamp::from_unix_ms(fx.clock.now());
        assert_eq!(body(&replaced)["updated_at"], t1.to_string(), "the writer's time, RFC 3339");
        // A config its own check refuses: 400/106 at /config, nothing written.
        let refused = store.put_policy(policy(None, 1.5)).await.unwrap();
        assert_eq!((refused.status, error_code(&refused)), (400, 106), "{}", refused.body);

        let policies = store.policies(country("LT")).await.unwrap();
        assert_eq!(policies.len(), 2, "one per office key");
        assert_eq!((policies[0].office.as_deref(), policies[0].config.red_share), (None, 0.08), "the default first");
        assert_eq!(policies[1], PolicyRecord { updated_at: t1, ..policy(Some("LTVIL001"), 0.2) });
        assert!(store.policies(country("PL")).await.unwrap().is_empty());

        let entries = journal_of(&whole_journal(store).await, RISK_POLICY);
        let references: Vec<&str> = entries.iter().map(|e| e.reference.as_str()).collect();
        assert_eq!(references, ["LT/LTVIL001", "LT/*", "LT/LTVIL001"]);
        assert!(entries.iter().all(|e| e.sender == "cus_lt"));
        assert!(store.verify_journal().await.unwrap().ok);
    }

    /// One write of each kind (two assessments); returns how many journal entries they made.
    pub(super) async fn scripted_risk_writes(store: &dyn Store) -> i64 {
        let records = vec![lt_record("XH25000001", HOLDER_A, 4), lt_record("XH25000002", HOLDER_B, 9)];
        assert_eq!(put(store, 0, 9, records).await.status, 200);
        let outcome = result("LT", "XH25000001", "LTVIL001", Outcome::Irregularity);
        assert_eq!(store.put_result(outcome).await.unwrap().status, 201);
        assert_eq!(store.put_model(model("LT", "2027-01-15.1", r#"{"trees":[]}"#)).await.unwrap().status, 201);
        assert_eq!(store.put_policy(policy(None, 0.08)).await.unwrap().status, 200);
        5
    }

    /// Two servers on one database assess the same feed items at once: the
    /// advisory lock orders them, so the second sees the moved cursor.
    pub(super) async fn two_stores_racing_on_one_risk_cursor_store_the_batch_once(url: String) {
        let (a, b) = (PgStore::open(&url).await.unwrap(), PgStore::open(&url).await.unwrap());
        for round in 0..5_i64 {
            let (after, through) = (round * 10, round * 10 + 10);
            let batch = || AssessmentBatch {
                after,
                through,
                records: vec![lt_record("XH25000001", HOLDER_A, through), lt_record("XH25000002", HOLDER_A, through)],
            };
            let (ra, rb) = tokio::join!(a.put_assessments(batch()), b.put_assessments(batch()));
            let mut statuses = [ra.unwrap().status, rb.unwrap().status];
            statuses.sort();
            assert_eq!(statuses, [200, 409], "round {round}");
        }
        assert_eq!(b.risk_cursor().await.unwrap(), 50);
        assert_eq!(a.all_assessments(country("LT")).await.unwrap().len(), 10, "each batch stored once");
        assert_eq!(journal_of(&whole_journal(&a).await, RISK_ASSESSMENT).len(), 10);
        assert!(b.verify_journal().await.unwrap().ok);
    }
}

// ---------------------------------------------------------------------------
// The server key and signed journal heads (issue 14).

on_both! {
    stores_sharing_a_database_sign_with_one_key_and_only_when_the_journal_moved
        => stores_sharing_a_database_sign_with_one_key_and_only_when_the_journal_moved_on_sqlite,
           stores_sharing_a_database_sign_with_one_key_and_only_when_the_journal_moved_on_postgres;
}

async fn stores_sharing_a_database_sign_with_one_key_and_only_when_the_journal_moved(f: Fixture) {
    assert!(f.store.server_keys().await.unwrap().is_empty());
    assert_eq!(f.store.signed_head().await.unwrap(), None);
    // Two servers starting at once on one database: each signs first thing.
    let other = tir_store::open(&f.url).await.unwrap();
    let (a, b) = tokio::join!(f.store.sign_head(Duration::ZERO), other.sign_head(Duration::ZERO));
    let (a, b) = (a.unwrap(), b.unwrap());
    let keys = f.store.server_keys().await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].retired_at_ms, None);
    // The empty journal is signed once: the second signing found it signed.
    assert_eq!([a.status, b.status].iter().filter(|s| **s == 201).count(), 1, "{a:?} {b:?}");
    let head = f.store.signed_head().await.unwrap().unwrap();
    assert_eq!((head.entries, head.head.as_str(), head.key_id.as_str()), (0, GENESIS, keys[0].key_id.as_str()));

    // Not moved: nothing signed; moved, but within the spacing: nothing signed either.
    assert_eq!(f.store.sign_head(Duration::ZERO).await.unwrap().status, 200);
    seed(f.store.as_ref()).await;
    assert_eq!(other.sign_head(Duration::from_secs(3600)).await.unwrap().status, 200);
    assert_eq!(f.store.signed_head().await.unwrap().unwrap().entries, 0);
    let signed = other.sign_head(Duration::ZERO).await.unwrap();
    assert_eq!(signed.status, 201, "{signed:?}");
    let head = f.store.signed_head().await.unwrap().unwrap();
    let verdict = f.store.verify_journal().await.unwrap();
    assert_eq!((head.entries, &head.head), (verdict.entries, &verdict.head));
    assert_eq!(serde_json::from_str::<Value>(&signed.body).unwrap(), head.view());
    let kept = tir_store::SignedHead::from_view(&head.view()).unwrap();
    assert_eq!(tir_store::keys::verify_head(&kept, &keys), Ok(()));

    // Rotation: the old key is retired, both published, new heads signed with the new one.
    // Neither signing nor rotating is journaled.
    let rotated = f.store.rotate_key().await.unwrap();
    assert_eq!(f.store.verify_journal().await.unwrap(), verdict);
    assert!(f.store.journal(1, 1_000).await.unwrap().iter().all(|e| !e.body.contains(&head.signature)));
    assert_eq!(rotated.status, 201);
    let keys = f.store.server_keys().await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[0].retired_at_ms.is_some() && keys[1].retired_at_ms.is_none(), "{keys:?}");
    assert_eq!(tir_store::keys::verify_head(&kept, &keys), Ok(()));
    add_party(f.store.as_ref(), "gc_after_rotation").await;
    assert_eq!(other.sign_head(Duration::ZERO).await.unwrap().status, 201);
    let newer = f.store.signed_head().await.unwrap().unwrap();
    assert_eq!(newer.key_id, keys[1].key_id);
    assert!(!rotated.body.contains("private"), "{}", rotated.body);
    drop(other);
}

async fn add_party(store: &dyn Store, id: &str) {
    let party = NewParty {
        id: id.into(),
        kind: PartyKind::GuaranteeChain,
        name: id.into(),
        country: None,
        tir_id: None,
        token_hash: tir_store::token::hash(id),
    };
    store.create_party(party).await.unwrap();
}

on_both! {
    a_transports_journal_and_the_guarantees_of_a_holder_and_a_chain_are_read_by_key
        => a_transports_journal_and_the_guarantees_of_a_holder_and_a_chain_are_read_by_key_on_sqlite,
           a_transports_journal_and_the_guarantees_of_a_holder_and_a_chain_are_read_by_key_on_postgres;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transports_journal_and_the_guarantees_of_a_holder_and_a_chain_are_read_by_key_in_memory() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::open_with(Env::seeded(SEED, SEEDED_START_MS)));
    console_reads_case(&store).await;
}

async fn a_transports_journal_and_the_guarantees_of_a_holder_and_a_chain_are_read_by_key(fx: Fixture) {
    console_reads_case(&fx.store).await;
}

on_both! {
    the_admin_lists_parties_offices_and_holders
        => the_admin_lists_parties_offices_and_holders_on_sqlite,
           the_admin_lists_parties_offices_and_holders_on_postgres;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_lists_parties_offices_and_holders_in_memory() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::open_with(Env::seeded(SEED, SEEDED_START_MS)));
    admin_lists_case(store.as_ref()).await;
}

async fn the_admin_lists_parties_offices_and_holders(fx: Fixture) {
    admin_lists_case(fx.store.as_ref()).await;
}

/// The console's admin lists (docs/console.md): every party with its revocation
/// and binding, never a token hash; the offices and the holder registry by key.
async fn admin_lists_case(store: &dyn Store) {
    let w = seed(store).await;
    assert_eq!(store.revoke_party(w.tr.id()).await.unwrap().status, 200);
    let fingerprint = "ab".repeat(32);
    assert_eq!(store.bind_certificate(w.ge.id(), Some(&fingerprint)).await.unwrap().status, 200);

    let parties = store.parties(None, 100).await.unwrap();
    let mut listed: Vec<&Party> = parties.iter().map(|p| &p.party).collect();
    listed.sort_by_key(|p| p.id().to_owned());
    let mut expected: Vec<&Party> = w.tokens.iter().map(|(_, p)| p).collect();
    expected.sort_by_key(|p| p.id().to_owned());
    assert_eq!(listed, expected);
    assert!(
        parties.windows(2).all(|p| (p[0].created_at_ms, p[1].party.id()) >= (p[1].created_at_ms, p[0].party.id())),
        "newest first, then by id: {parties:?}"
    );
    for p in &parties {
        assert_eq!(p.revoked_at_ms.is_some(), p.party == w.tr, "{p:?}");
        assert_eq!(p.certificate_sha256.as_deref(), (p.party == w.ge).then_some(fingerprint.as_str()), "{p:?}");
        assert!(p.created_at_ms > 0);
    }
    let tr = parties.iter().find(|p| p.party == w.tr).unwrap();
    assert_eq!(tr.name, "TR customs");
    assert_eq!(store.parties(None, 2).await.unwrap(), parties[..2]);
    // Pages follow on from the last party shown, whatever the ties in time.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.parties(after.as_deref(), 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.party.id().to_owned());
        paged.extend(page);
    }
    assert_eq!(paged, parties);
    assert!(store.parties(Some("no-such-party"), 10).await.unwrap().is_empty());

    let codes = |offices: Vec<Office>| -> Vec<String> { offices.into_iter().map(|o| o.code.to_string()).collect() };
    assert_eq!(codes(store.offices(None, 100).await.unwrap()), ["AZ000200", "GE000100", "TR000100"]);
    assert_eq!(codes(store.offices(None, 1).await.unwrap()), ["AZ000200"]);
    let az = OfficeCode::parse("AZ000200").unwrap();
    assert_eq!(codes(store.offices(Some(&az), 1).await.unwrap()), ["GE000100"]);
    let ge = OfficeCode::parse("GE000100").unwrap();
    assert_eq!(codes(store.offices(Some(&ge), 5).await.unwrap()), ["TR000100"]);
    let second = HolderRecord {
        tir_id: TirId::parse("GEO/001/999").unwrap(),
        country: country("GE"),
        ..holder_record(HolderStatus::Withdrawn)
    };
    store.put_holder(second.clone()).await.unwrap();
    assert_eq!(store.holders(None, 100).await.unwrap(), [second.clone(), holder_record(HolderStatus::Authorized)]);
    assert_eq!(store.holders(None, 1).await.unwrap(), std::slice::from_ref(&second));
    assert_eq!(store.holders(Some(&second.tir_id), 5).await.unwrap(), [holder_record(HolderStatus::Authorized)]);
    let last = holder_record(HolderStatus::Authorized).tir_id;
    assert!(store.holders(Some(&last), 5).await.unwrap().is_empty());
}

/// The console's reads (docs/console.md): the journal entries of one
/// transport with their hashes, and the guarantees of a holder and of a chain.
async fn console_reads_case(store: &Arc<dyn Store>) {
    assert_eq!(store.journal_head_seq().await.unwrap(), 0, "an empty journal");
    let w = seed(store.as_ref()).await;
    let (first, second, third) = (reference(1), reference(2), reference(3));
    drive(std::slice::from_ref(store), &w, &first, 0).await;
    drive(std::slice::from_ref(store), &w, &second, 0).await;
    let other_chain = Party::GuaranteeChain { id: "chain-two".into() };
    create(store.as_ref(), &other_chain, "Second chain").await;
    submit_ok(store.as_ref(), &other_chain, &message("c2-1", "E1", &third, json!({"holder": HOLDER}))).await;

    let parsed = |r: &str| GuaranteeRef::parse(r).unwrap();
    let last = store.journal(1, 100_000).await.unwrap().last().map(|e| e.seq);
    assert_eq!(Some(store.journal_head_seq().await.unwrap()), last, "the head is the last entry");
    let entries = store.journal_of(&parsed(&first), 1000).await.unwrap();
    assert_eq!(entries.len() as i64, TRANSPORT_MESSAGES, "{entries:?}");
    assert!(entries.iter().all(|e| e.reference == first));
    assert!(entries.windows(2).all(|p| p[0].seq < p[1].seq), "oldest first");
    let types: Vec<&str> = entries.iter().map(|e| e.message_type.as_str()).collect();
    assert_eq!(types[..4], ["E1", "E9", "I1", "I7"]);
    // The very rows of the chain: same seq, same hashes.
    for e in &entries {
        let chained = store.journal(e.seq, 1).await.unwrap();
        assert_eq!(chained.first(), Some(e));
    }
    assert_eq!(store.journal_of(&parsed(&first), 3).await.unwrap(), entries[..3]);
    assert!(store.journal_of(&parsed(&reference(9)), 1000).await.unwrap().is_empty());

    let refs = |gs: Vec<tir_model::guarantee::Guarantee>| -> Vec<String> {
        gs.into_iter().map(|g| g.reference.as_str().to_owned()).collect()
    };
    let holder = TirId::parse(HOLDER).unwrap();
    assert_eq!(
        refs(store.guarantees_of_holder(&holder, None, 10).await.unwrap()),
        [third.clone(), second.clone(), first.clone()]
    );
    assert_eq!(refs(store.guarantees_of_holder(&holder, None, 2).await.unwrap()), [third.clone(), second.clone()]);
    // The next page starts after the last reference shown, and ends empty.
    let after = |r: &str| Some(parsed(r));
    assert_eq!(
        refs(store.guarantees_of_holder(&holder, after(&second).as_ref(), 2).await.unwrap()),
        std::slice::from_ref(&first)
    );
    assert!(store.guarantees_of_holder(&holder, after(&first).as_ref(), 2).await.unwrap().is_empty());
    let stranger = TirId::parse("GEO/001/999").unwrap();
    assert!(store.guarantees_of_holder(&stranger, None, 10).await.unwrap().is_empty());
    assert_eq!(refs(store.guarantees_of_chain(w.chain.id(), None, 10).await.unwrap()), [second.clone(), first.clone()]);
    assert_eq!(refs(store.guarantees_of_chain(w.chain.id(), after(&second).as_ref(), 10).await.unwrap()), [first]);
    // A page may start from a reference that is not the chain's.
    assert_eq!(refs(store.guarantees_of_chain(w.chain.id(), after(&third).as_ref(), 1).await.unwrap()), [second]);
    assert_eq!(refs(store.guarantees_of_chain("chain-two", None, 10).await.unwrap()), [third]);
    assert!(store.guarantees_of_chain("chain-none", None, 10).await.unwrap().is_empty());
}

/// A PostgreSQL connection is driven by the runtime it was opened on. The
/// assessor reads the store from a background runtime of its own; a pooled
/// connection it caused to be opened must still serve the store's runtime
/// when that background runtime is not running (here: not being driven at all).
#[test]
fn pooled_connections_live_on_the_runtime_that_opened_the_store_on_postgres() {
    let main = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let Some(db) = main.block_on(FreshDatabase::from_env("tirhub_t")) else { return };
    let store = main.block_on(tir_store::open(db.url())).expect("open the postgres store");
    let background = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let reads = |store: Arc<dyn Store>| async move {
        // Concurrent reads make the pool open several connections.
        let reads = (0..8).map(|_| {
            let store = store.clone();
            async move { store.risk_cursor().await.expect("a read") }
        });
        futures_util::future::join_all(reads).await
    };
    background.block_on(reads(store.clone()));
    // `background` is idle now: a connection whose task it holds would never answer.
    let answered = main.block_on(async { tokio::time::timeout(Duration::from_secs(20), reads(store.clone())).await });
    assert!(answered.is_ok(), "a read through a connection opened on the idle runtime hung");
    drop(background);
    drop(store);
    drop(db);
}

// ---------------------------------------------------------------------------
// The fallback procedure (etir-binding.md, "Fallback procedure").

fn minutes_ago(minutes: i64) -> tir_model::Timestamp {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    tir_model::Timestamp::from_unix_ms(now - minutes * 60_000)
}

async fn fallback_periods_are_declared_ended_and_reconciled(fx: Fixture) {
    use tir_model::fallback::FallbackScope;
    use tir_store::{FallbackDeclaration, FallbackEnd};
    let store = fx.store.as_ref();
    let w = seed(store).await;
    let (from, ge) = (minutes_ago(60), FallbackScope::Country(country("GE")));
    let declaration = FallbackDeclaration { by: w.ge.id().into(), scope: ge, reason: "link down".into(), from };
    let declared = store.declare_fallback(declaration.clone()).await.unwrap();
    assert_eq!(declared.status, 201, "{}", declared.body);
    let id = body(&declared)["id"].as_str().unwrap().to_owned();
    // A repeat is the stored period; another reason for it 299.
    let again = store.declare_fallback(declaration.clone()).await.unwrap();
    assert_eq!((again.status, body(&again)), (200, body(&declared)));
    let other = FallbackDeclaration { reason: "power cut".into(), ..declaration.clone() };
    assert_eq!(error_code(&store.declare_fallback(other).await.unwrap()), 299);
    // The system's from later: GE's period is the first to cover GE below.
    let system =
        FallbackDeclaration { by: "admin".into(), scope: FallbackScope::System, from: minutes_ago(50), ..declaration };
    assert_eq!(store.declare_fallback(system).await.unwrap().status, 201);
    let periods = store.fallback_periods().await.unwrap();
    assert_eq!(periods.len(), 2);
    assert_eq!(store.fallback_period(&id).await.unwrap().map(|p| p.scope), Some(ge));
    assert_eq!(store.fallback_period("none").await.unwrap(), None);
    // GE's customs are told of GE's period; every party of the system's.
    let ge_feed = store.notifications(Some("customs:GE"), 0, 100).await.unwrap();
    assert_eq!(ge_feed.iter().filter(|n| n.kind == "FALLBACK").count(), 2);
    let tr_feed = store.notifications(Some("customs:TR"), 0, 100).await.unwrap();
    assert_eq!(tr_feed.iter().filter(|n| n.kind == "FALLBACK").count(), 1);
    assert_eq!(store.notifications(Some("chain:chain-iru"), 0, 100).await.unwrap().len(), 1);

    // A transport whose operations start late: TR's under the system's period, GE's under GE's.
    let r = reference(1);
    let steps = transport(&w, &r);
    for (sender, value) in &steps[..4] {
        submit_ok(store, sender, value).await;
    }
    let late = |value: &Value, at: tir_model::Timestamp| {
        let mut value = value.clone();
        value["fallback"] = json!(true);
        value["occurred_at"] = json!(at.to_rfc3339());
        value
    };
    let (tr_start, ge_start) = (minutes_ago(40), minutes_ago(30));
    submit_ok(store, &w.tr, &late(&steps[4].1, tr_start)).await;
    // GE starts before TR's termination is recorded: exempt from 281.
    submit_ok(store, &w.ge, &late(&steps[7].1, ge_start)).await;
    let timeline = store.timeline(&GuaranteeRef::parse(&r).unwrap()).await.unwrap();
    let last = timeline.last().unwrap();
    assert_eq!((last.occurred_at, last.fallback_period.as_deref()), (Some(ge_start), Some(id.as_str())));
    assert!(ge_start < last.at);
    assert_eq!(timeline[timeline.len() - 2].occurred_at, Some(tr_start));
    assert_ne!(timeline[timeline.len() - 2].fallback_period.as_deref(), Some(id.as_str()));
    assert_eq!(timeline[0].occurred_at, None);
    let candidates = store.fallback_candidates(&id).await.unwrap();
    assert_eq!(candidates.len(), 1);
    assert_eq!((candidates[0].0.reference.as_str(), candidates[0].1), (r.as_str(), true));

    let end = |until| FallbackEnd { by: w.ge.id().into(), id: id.clone(), until };
    let until = minutes_ago(10);
    let ended = store.end_fallback(end(until)).await.unwrap();
    assert_eq!((ended.status, body(&ended)["open"].as_bool()), (200, Some(false)), "{}", ended.body);
    assert_eq!(store.end_fallback(end(until)).await.unwrap().status, 200);
    assert_eq!(error_code(&store.end_fallback(end(minutes_ago(5))).await.unwrap()), 299);
    let missing = FallbackEnd { id: "none".into(), ..end(until) };
    assert_eq!(error_code(&store.end_fallback(missing).await.unwrap()), 183);
    assert_eq!(store.fallback_period(&id).await.unwrap().and_then(|p| p.until), Some(until));
    // Seed, two declarations (a repeat writes nothing), four messages, two late ones, one end.
    assert_journal_complete(store, SEED_WRITES + 2 + 4 + 2 + 1).await;
}

on_both! {
    arrivals_and_crossings_are_kept_as_messages_are_applied
        => arrivals_and_crossings_are_kept_as_messages_are_applied_on_sqlite,
           arrivals_and_crossings_are_kept_as_messages_are_applied_on_postgres;
    the_console_rows_of_an_existing_database_are_filled_by_their_migration
        => the_console_rows_of_an_existing_database_are_filled_by_their_migration_on_sqlite,
           the_console_rows_of_an_existing_database_are_filled_by_their_migration_on_postgres;
    the_hit_rate_sums_of_an_existing_database_are_filled_by_their_migration
        => the_hit_rate_sums_of_an_existing_database_are_filled_by_their_migration_on_sqlite,
           the_hit_rate_sums_of_an_existing_database_are_filled_by_their_migration_on_postgres;
    the_crossing_day_counts_equal_the_crossing_rows
        => the_crossing_day_counts_equal_the_crossing_rows_on_sqlite,
           the_crossing_day_counts_equal_the_crossing_rows_on_postgres;
    console_sessions_are_opened_seen_and_closed_and_outlive_a_restart
        => console_sessions_are_opened_seen_and_closed_and_outlive_a_restart_on_sqlite,
           console_sessions_are_opened_seen_and_closed_and_outlive_a_restart_on_postgres;
}

/// Sessions (`tir_store::sessions`): opened at the writer's time, marked seen, closed; a
/// restart keeps them; opening one deletes those last seen before its expiry (the oldest
/// first, at most `EXPIRED_PER_OPEN`); none of it is journaled.
async fn console_sessions_are_opened_seen_and_closed_and_outlive_a_restart(fx: Fixture) {
    use tir_store::SessionWrite;
    let journal = fx.store.verify_journal().await.unwrap().entries;
    let open = |id: &str, expire_before_ms: i64| SessionWrite::Open {
        id_hash: id.to_owned(),
        token_hash: format!("token-of-{id}"),
        csrf: format!("csrf-of-{id}"),
        expire_before_ms,
    };
    let write =
        |store: Arc<dyn Store>, w: SessionWrite| async move { store.console_session_write(w).await.unwrap().status };
    assert_eq!(write(fx.store.clone(), open("a", 0)).await, 200);
    let a = fx.store.console_session("a").await.unwrap().expect("stored");
    assert_eq!((a.token_hash.as_str(), a.csrf.as_str()), ("token-of-a", "csrf-of-a"));
    assert_eq!(a.opened_ms, a.seen_ms);
    assert_eq!(fx.store.console_session("b").await.unwrap(), None);
    assert_eq!(write(fx.store.clone(), SessionWrite::Seen { id_hash: "a".into() }).await, 200);
    let seen = fx.store.console_session("a").await.unwrap().expect("stored");
    assert!(seen.seen_ms >= a.seen_ms && seen.opened_ms == a.opened_ms, "{seen:?}");
    assert_eq!(write(fx.store.clone(), SessionWrite::Seen { id_hash: "b".into() }).await, 404);
    assert_eq!(write(fx.store.clone(), open("b", 0)).await, 200);
    let fx = fx.restart_after("SELECT 1").await;
    assert_eq!(fx.store.console_session("a").await.unwrap(), Some(seen.clone()), "kept over a restart");
    assert_eq!(write(fx.store.clone(), SessionWrite::Close { id_hash: "a".into() }).await, 200);
    assert_eq!(write(fx.store.clone(), SessionWrite::Close { id_hash: "a".into() }).await, 404);
    assert_eq!(fx.store.console_session("a").await.unwrap(), None);
    // Opening "c" with every earlier session expired deletes "b".
    assert_eq!(write(fx.store.clone(), open("c", i64::MAX)).await, 200);
    assert_eq!(fx.store.console_session("b").await.unwrap(), None);
    assert!(fx.store.console_session("c").await.unwrap().is_some());
    assert_eq!(fx.store.verify_journal().await.unwrap().entries, journal, "sessions are not journaled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_and_crossings_are_kept_as_messages_are_applied_in_memory() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::open_with(Env::seeded(SEED, SEEDED_START_MS)));
    console_rows_case(&store).await;
}

async fn arrivals_and_crossings_are_kept_as_messages_are_applied(fx: Fixture) {
    console_rows_case(&fx.store).await;
}

type ArrivalKey = (String, i64, u32);

/// The arrivals as the console computed them before the store kept them: the
/// guarantees of the country's feed with the time of their first item, those
/// with an operation there still to come, newest announcement first.
async fn arrivals_from_the_feed(store: &dyn Store, code: &str) -> Vec<ArrivalKey> {
    let feed = format!("customs:{code}");
    let mut first: Vec<(String, i64)> = Vec::new();
    for row in store.notifications(Some(&feed), 0, 10_000).await.unwrap() {
        if !first.iter().any(|(r, _)| *r == row.guarantee_reference) {
            first.push((row.guarantee_reference, row.created_at_ms));
        }
    }
    let mut out = Vec::new();
    for (reference, at_ms) in first {
        let guarantee = store.guarantee(&GuaranteeRef::parse(&reference).unwrap()).await.unwrap().unwrap();
        if let Some(ahead) = tir_store::console::operations_ahead(&guarantee, country(code)) {
            out.push((reference, at_ms, ahead));
        }
    }
    out.sort_by(|a, b| (b.1, &b.0).cmp(&(a.1, &a.0)));
    out
}

async fn arrivals_kept(store: &dyn Store, code: &str) -> Vec<ArrivalKey> {
    let arrivals = store.arrivals(country(code), 100).await.unwrap();
    arrivals.into_iter().map(|a| (a.reference, a.announced_ms, a.ahead)).collect()
}

/// The arrivals as the page showed them from the whole documents: each row's fields
/// from its guarantee and the administration's latest assessment (`Arrival::of`).
async fn arrivals_from_the_documents(store: &dyn Store, code: &str) -> Vec<tir_store::console::Arrival> {
    let mut out = Vec::new();
    for a in store.arrivals(country(code), 100).await.unwrap() {
        let guarantee = store.guarantee(&GuaranteeRef::parse(&a.reference).unwrap()).await.unwrap().unwrap();
        let latest = store.assessments(country(code), &a.reference).await.unwrap().pop();
        out.push(tir_store::console::Arrival::of(&guarantee, country(code), a.announced_ms, a.ahead, latest.as_ref()));
    }
    out
}

const CONSOLE_COUNTRIES: [&str; 4] = ["TR", "GE", "AZ", "DE"];

/// The console's rows (docs/console.md, "At scale"): the arrivals of each
/// country as the feed and the guarantees give them at every step, with the
/// administration's latest assessment, and the border crossings with their
/// figures.
async fn console_rows_case(store: &Arc<dyn Store>) {
    let store = store.as_ref();
    let w = seed(store).await;
    let (first, second) = (reference(1), reference(2));
    let second_steps = transport(&w, &second);
    let mut ge_next = false;
    for (step, (sender, value)) in transport(&w, &first).iter().enumerate() {
        submit_ok(store, sender, value).await;
        // The second stops once recorded at TR: E1, E9, I1, I7.
        if let Some((sender, value)) = second_steps.get(step).filter(|_| step < 4) {
            submit_ok(store, sender, value).await;
        }
        for code in CONSOLE_COUNTRIES {
            assert_eq!(
                arrivals_kept(store, code).await,
                arrivals_from_the_feed(store, code).await,
                "{code} after step {step}"
            );
            assert_eq!(
                store.arrivals(country(code), 100).await.unwrap(),
                arrivals_from_the_documents(store, code).await,
                "{code} after step {step}: the fields read as the documents give them"
            );
        }
        if step == 1 {
            let tr = arrivals_kept(store, "TR").await;
            assert_eq!(
                tr.iter().map(|a| (a.0.as_str(), a.2)).collect::<Vec<_>>(),
                [(second.as_str(), 0), (first.as_str(), 0)]
            );
        }
        ge_next |= arrivals_kept(store, "GE").await.iter().any(|a| a.0 == first && a.2 == 0);
    }
    assert!(ge_next, "GE had the first transport next once TR terminated");
    assert_eq!(arrivals_kept(store, "TR").await.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(), [second.as_str()]);
    assert!(arrivals_kept(store, "AZ").await.iter().all(|a| a.0 != first), "discharged everywhere");
    assert_eq!(store.arrivals(country("TR"), 0).await.unwrap(), []);

    // The latest of TR's assessments of the second transport rides with it; GE's does not.
    let made = |administration, office, source_cursor, at: i64| {
        record(Made {
            administration,
            guarantee: &second,
            holder: HOLDER,
            office,
            operation: 1,
            source_cursor,
            assessed_at_ms: SEEDED_START_MS + at,
        })
    };
    let records = vec![made("TR", "TR000100", 1, 1), made("TR", "TR000100", 2, 2), made("GE", "GE000100", 3, 3)];
    let after = store.risk_cursor().await.unwrap();
    let stored =
        store.put_assessments(tir_store::AssessmentBatch { after, through: after + 3, records: records.clone() }).await;
    assert_eq!(stored.unwrap().status, 200);
    let tr = store.arrivals(country("TR"), 10).await.unwrap();
    assert_eq!(tr.len(), 1);
    assert_eq!(tr, arrivals_from_the_documents(store, "TR").await);
    assert_eq!(tr[0].itinerary, [country("TR"), country("GE"), country("AZ")]);
    let latest = tr[0].assessment.as_ref().expect("TR's assessment");
    assert_eq!(*latest, tir_store::console::Verdict::of(&records[1]));
    assert_eq!((latest.lane, latest.score), (Lane::Red, Some(0.75)));
    assert_eq!(latest.reasons, records[1].assessment.reasons);
    assert_eq!(
        tr[0].stage,
        tir_store::console::Stage::Operation { sequence: 1, started: false },
        "recorded at TR, not started"
    );

    // The first transport crossed TR → GE and GE → AZ.
    let g = store.guarantee(&GuaranteeRef::parse(&first).unwrap()).await.unwrap().unwrap();
    let wait = |into: usize| {
        let ms =
            g.operations[into].started_at.unwrap().unix_ms() - g.operations[into - 1].terminated_at.unwrap().unix_ms();
        ms.max(0) as f64 / 1000.0
    };
    let started = |into: usize| g.operations[into].started_at.unwrap().unix_ms();
    let day = |into: usize| tir_store::console::day_of(started(into));
    let all = store.crossing_figures(None, 0, 10).await.unwrap();
    let pairs: Vec<(&str, &str, u64, Vec<f64>)> =
        all.pairs.iter().map(|p| (p.exit.as_str(), p.entry.as_str(), p.count, p.seconds.clone())).collect();
    assert_eq!(pairs, [("GE", "AZ", 1, vec![wait(2)]), ("TR", "GE", 1, vec![wait(1)])]);
    assert_eq!(all.daily, [("AZ000200".to_owned(), day(2), 1), ("GE000100".to_owned(), day(1), 1)]);
    let tr = store.crossing_figures(Some(country("TR")), 0, 10).await.unwrap();
    assert_eq!(tr.pairs.iter().map(|p| (p.exit.as_str(), p.entry.as_str())).collect::<Vec<_>>(), [("TR", "GE")]);
    assert_eq!(tr.daily, [("GE000100".to_owned(), day(1), 1)]);
    // A country's latest crossings: out of it and into it, each once, newest first.
    let borders = |f: &tir_store::console::CrossingFigures| {
        f.recent.iter().map(|c| (c.exit.as_str().to_owned(), c.entry.as_str().to_owned())).collect::<Vec<_>>()
    };
    let pair = |exit: &str, entry: &str| (exit.to_owned(), entry.to_owned());
    assert_eq!(borders(&tr), [pair("TR", "GE")]);
    let ge = store.crossing_figures(Some(country("GE")), 0, 10).await.unwrap();
    assert_eq!(borders(&ge), [pair("GE", "AZ"), pair("TR", "GE")]);
    assert_eq!(borders(&all), borders(&ge));
    assert_eq!(store.crossing_figures(Some(country("DE")), 0, 10).await.unwrap(), Default::default());
    // The window is whole days (UTC) from the day of `since`: any moment of the first start's
    // day counts both; the day after the last start's, none. The sample is bounded, the count is not.
    let (_, first_day) = tir_store::console::window(started(1));
    let (_, last_day) = tir_store::console::window(started(2));
    let day_ms = tir_store::console::DAY_MS;
    assert_eq!(store.crossing_figures(None, first_day + day_ms - 1, 10).await.unwrap(), all);
    let later = store.crossing_figures(None, started(2), 10).await.unwrap();
    let expected: Vec<&str> = if first_day == last_day { vec!["GE", "AZ"] } else { vec!["AZ"] };
    let mut entries: Vec<&str> = later.pairs.iter().map(|p| p.entry.as_str()).collect();
    entries.sort_by_key(|e| expected.iter().position(|x| x == e));
    assert_eq!(entries, expected);
    assert_eq!(store.crossing_figures(None, last_day + day_ms, 10).await.unwrap(), Default::default());
    let unsampled = store.crossing_figures(None, 0, 0).await.unwrap();
    assert!(unsampled.pairs.iter().all(|p| p.count == 1 && p.seconds.is_empty()), "{unsampled:?}");
}

async fn snapshot(store: &dyn Store) -> (Vec<Vec<ArrivalKey>>, tir_store::console::CrossingFigures) {
    let mut arrivals = Vec::new();
    for code in CONSOLE_COUNTRIES {
        arrivals.push(arrivals_kept(store, code).await);
    }
    (arrivals, store.crossing_figures(None, 0, 100).await.unwrap())
}

/// A database written before the console's rows: dropping them and the
/// record of their migration, the migration on the next open makes them
/// again, the same as the writer kept them.
async fn the_console_rows_of_an_existing_database_are_filled_by_their_migration(fx: Fixture) {
    let w = seed(fx.store.as_ref()).await;
    drive(std::slice::from_ref(&fx.store), &w, &reference(1), 0).await;
    for (sender, value) in transport(&w, &reference(2)).iter().take(8) {
        submit_ok(fx.store.as_ref(), sender, value).await;
    }
    let kept = snapshot(fx.store.as_ref()).await;
    assert_eq!(kept.1.pairs.len(), 2, "{kept:?}");
    assert!(kept.0.iter().any(|a| !a.is_empty()), "{kept:?}");
    let fx = fx
        .restart_after(
            "DROP TABLE arrivals; DROP TABLE crossings; DROP TABLE crossing_days; \
             DELETE FROM schema_migrations WHERE name IN ('console_rows', 'crossing_days');",
        )
        .await;
    assert_eq!(snapshot(fx.store.as_ref()).await, kept);
    // The day counts go on from there: the rest of the second transport crosses twice more.
    for (sender, value) in transport(&w, &reference(2)).iter().skip(8) {
        submit_ok(fx.store.as_ref(), sender, value).await;
    }
    let (_, figures) = snapshot(fx.store.as_ref()).await;
    let counted: u64 = figures.pairs.iter().map(|p| p.count).sum();
    let per_day: u64 = figures.daily.iter().map(|d| d.2).sum();
    assert_eq!((counted, per_day), (4, 4), "{figures:?}");
    assert_eq!(figures.recent.len(), 4, "{figures:?}");
}

/// The day counts the trigger keeps give, per border and per crossing point and day, as many
/// crossings as there are crossing rows.
async fn the_crossing_day_counts_equal_the_crossing_rows(fx: Fixture) {
    let w = seed(fx.store.as_ref()).await;
    drive(std::slice::from_ref(&fx.store), &w, &reference(1), 0).await;
    drive(std::slice::from_ref(&fx.store), &w, &reference(2), 1).await;
    let (_, figures) = snapshot(fx.store.as_ref()).await;
    let mut by_pair: std::collections::BTreeMap<(String, String), u64> = Default::default();
    let mut by_point: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for c in &figures.recent {
        *by_pair.entry((c.exit.as_str().to_owned(), c.entry.as_str().to_owned())).or_default() += 1;
        *by_point.entry((c.point(), tir_store::console::day_of(c.started_at_ms))).or_default() += 1;
    }
    let pairs: std::collections::BTreeMap<(String, String), u64> =
        figures.pairs.iter().map(|p| ((p.exit.as_str().to_owned(), p.entry.as_str().to_owned()), p.count)).collect();
    let points: std::collections::BTreeMap<(String, String), u64> =
        figures.daily.iter().map(|(point, day, n)| ((point.clone(), day.clone()), *n)).collect();
    assert_eq!(figures.recent.len(), 4, "{figures:?}");
    assert_eq!(pairs, by_pair);
    assert_eq!(points, by_point);
}

/// A database written before the hit rates' sums: dropping them and the record
/// of their migration, the migration's SQL on the next open sums every
/// assessment with its result as the writer did, write by write.
async fn the_hit_rate_sums_of_an_existing_database_are_filled_by_their_migration(fx: Fixture) {
    let store = fx.store.as_ref();
    let put_result = |guarantee: &str, office: &str, outcome| {
        let r = result(if office.starts_with("PL") { "PL" } else { "LT" }, guarantee, office, outcome);
        async move { assert!(store.put_result(r).await.unwrap().status < 300) }
    };
    put_result("XH25000001", "LTVIL001", tir_store::Outcome::Irregularity).await;
    let records = varied_records(SEEDED_START_MS);
    let batch = tir_store::AssessmentBatch { after: 0, through: 4, records };
    assert_eq!(store.put_assessments(batch).await.unwrap().status, 200);
    put_result("XH25000002", "LTMDK001", tir_store::Outcome::Compliant).await;
    put_result("XH25000003", "LTMDK001", tir_store::Outcome::Irregularity).await;
    put_result("XH25000001", "LTVIL001", tir_store::Outcome::Compliant).await;
    put_result("XH25000002", "PLKUB001", tir_store::Outcome::Irregularity).await;
    let sums = |store: Arc<dyn Store>| async move {
        (store.risk_tallies(country("LT")).await.unwrap(), store.risk_tallies(country("PL")).await.unwrap())
    };
    let kept = sums(fx.store.clone()).await;
    assert_eq!((kept.0.len(), kept.1.len()), (5, 1), "{kept:?}");
    assert!(kept.0.iter().any(|(_, _, t)| t.hits == 1 && t.revenue == 1520.5), "{kept:?}");
    let fx =
        fx.restart_after("DROP TABLE risk_tallies; DELETE FROM schema_migrations WHERE name = 'risk_tallies';").await;
    assert_eq!(sums(fx.store.clone()).await, kept);
}
