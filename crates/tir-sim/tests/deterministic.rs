//! Deterministic simulation, in miniature: the simulator's traffic model
//! drives the store's engine directly (no HTTP, no threads racing), with the
//! writer's clock and admin ids seeded. The same seed must give the same
//! journal head twice in memory, and the same head on SQLite and PostgreSQL:
//! any hidden source of time, randomness or ordering in the write path shows
//! up as a different head.

use std::collections::BTreeMap;
use std::sync::Arc;

use tir_model::message::Request;
use tir_model::party::PartyKind;
use tir_model::wire;
use tir_sim::model::script::{Parties, messages};
use tir_sim::model::traffic::{RunTag, Traffic};
use tir_sim::model::world::World;
use tir_store::{Env, MemoryStore, NewParty, Store, Submission, token};
use tir_testkit::{FreshDatabase, TempSqlite};

const SEED: u64 = 20_261_129;
/// 2026-11-29T00:00:00Z: the seeded clock's first reading.
const START_MS: i64 = 1_795_910_400_000;
/// About 3,500 messages: every message type, several hundred guarantees.
const TRANSPORTS: u64 = 250;
const IRREGULAR_SHARE: f64 = 0.1;

/// What a run did, beside the journal head.
#[derive(Debug, PartialEq, Eq)]
struct Played {
    admin_writes: usize,
    messages: usize,
    answers_by_status: BTreeMap<u16, usize>,
}

/// Puts the world's offices, holder registry and parties into `store`, then
/// plays `TRANSPORTS` transports of the seeded traffic, one message at a
/// time, in each transport's order.
async fn play(store: &dyn Store, seed: u64) -> Played {
    let world = Arc::new(World::standard());
    let parties = Parties::symbolic(&world);
    let mut admin_writes = 0;
    for office in &world.offices {
        store.put_office(office.clone()).await.expect("office stored");
        admin_writes += 1;
    }
    for holder in &world.holders {
        store.put_holder(holder.record.clone()).await.expect("holder stored");
        admin_writes += 1;
    }
    let mut new_parties: Vec<NewParty> = Vec::new();
    let mut countries: Vec<_> = parties.customs.iter().collect();
    countries.sort();
    for (country, id) in countries {
        new_parties.push(new_party(id, PartyKind::Customs, Some(*country), None));
    }
    for id in &parties.chains {
        new_parties.push(new_party(id, PartyKind::GuaranteeChain, None, None));
    }
    let mut holders: Vec<_> = parties.holders.iter().collect();
    holders.sort();
    for (tir_id, id) in holders {
        new_parties.push(new_party(id, PartyKind::Holder, None, Some(tir_id.clone())));
    }
    for party in new_parties {
        store.create_party(party).await.expect("party created");
        admin_writes += 1;
    }

    let traffic = Traffic::new(world.clone(), seed, IRREGULAR_SHARE).with_tag(RunTag::new(4242).expect("a tag"));
    let mut played = Played { admin_writes, messages: 0, answers_by_status: BTreeMap::new() };
    for index in 0..TRANSPORTS {
        for (token, message) in messages(&traffic.transport(index), &parties) {
            let sender = Parties::symbolic_party(&token).unwrap_or_else(|| panic!("no party behind {token}"));
            let request = Request::parse(&message).unwrap_or_else(|e| panic!("{message}: {e:?}"));
            let submission = Submission::new(sender, request, wire::canonical(&message));
            let reply = store.submit(submission).await.expect("the store answers");
            played.messages += 1;
            *played.answers_by_status.entry(reply.status).or_default() += 1;
        }
    }
    played
}

fn new_party(
    id: &str,
    kind: PartyKind,
    country: Option<tir_model::Country>,
    tir_id: Option<tir_model::TirId>,
) -> NewParty {
    NewParty { id: id.to_owned(), kind, name: format!("Party {id}"), country, tir_id, token_hash: token::hash(id) }
}

/// The journal's last (seq, hash), as the store's own verification recomputes it.
async fn head(store: &dyn Store) -> (i64, String) {
    let verdict = store.verify_journal().await.expect("journal verifiable");
    assert!(verdict.ok, "{verdict:?}");
    (verdict.entries, verdict.head)
}

async fn memory_run(seed: u64) -> ((i64, String), Played) {
    let store = MemoryStore::open_with(Env::seeded(seed, START_MS));
    let played = play(&store, seed).await;
    let head_read = head(&store).await;
    assert_eq!(store.journal_head(), head_read, "the head read back is the head kept");
    (head_read, played)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_journal_head_in_memory_twice_and_another_seed_does_not() {
    let (first_head, first) = memory_run(SEED).await;
    let (second_head, second) = memory_run(SEED).await;
    assert_eq!(first_head, second_head);
    assert_eq!(first, second);
    assert!(first.messages > 3_000, "a few thousand messages: {first:?}");
    assert_eq!(first.answers_by_status.keys().collect::<Vec<_>>(), [&200], "every message accepted: {first:?}");
    let journaled = first.admin_writes + first.messages;
    assert_eq!(first_head.0, journaled as i64, "one journal entry per accepted message and admin write");

    let (other_head, _) = memory_run(SEED + 1).await;
    assert_ne!(other_head, first_head, "the seed reaches the journal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_gives_the_same_journal_head_as_memory_for_the_same_seed() {
    let (memory_head, memory) = memory_run(SEED).await;
    let db = TempSqlite::new("tirhub-deterministic").expect("a temporary directory");
    let store = tir_store::open_with(db.url(), Env::seeded(SEED, START_MS)).await.expect("sqlite opens");
    let played = play(store.as_ref(), SEED).await;
    assert_eq!(played, memory);
    assert_eq!(head(store.as_ref()).await, memory_head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gives_the_same_journal_head_as_memory_for_the_same_seed() {
    let Some(db) = FreshDatabase::from_env("tirhub_det").await else { return };
    let (memory_head, memory) = memory_run(SEED).await;
    let store = tir_store::open_with(db.url(), Env::seeded(SEED, START_MS)).await.expect("postgres opens");
    let played = play(store.as_ref(), SEED).await;
    assert_eq!(played, memory);
    assert_eq!(head(store.as_ref()).await, memory_head);
    drop(store);
}
