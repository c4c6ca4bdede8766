//! The journal's hash chain and the durable write path on SQLite.
//!
//! Run with `cargo bench -p tir-store --bench journal`. The `store` group
//! fsyncs on every commit, so its figures depend on the disk and on whatever
//! else the machine is doing.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use tir_model::message::Request;
use tir_model::party::{HolderRecord, HolderStatus, Party, PartyKind};
use tir_model::{TirId, wire};
use tir_store::journal::{GENESIS, JournalEntry, Verifier};
use tir_store::{NewParty, Store, Submission};

const HOLDER: &str = "LTU/012/345";
const CHAIN_ID: &str = "chain-iru";
const VERIFY_ENTRIES: usize = 10_000;
const CONCURRENT_TASKS: usize = 64;

/// A canonical message body of exactly `len` bytes: an E1 (about 150 bytes is
/// the size of most messages) or, for larger sizes, an E9 with goods lines.
/// The free text is padded so the hashed length is exact.
fn body_of_len(len: usize) -> String {
    let make = |pad: &str| {
        let v = if len < 400 {
            json!({"message_id": format!("m-{pad}"), "type": "E1", "guarantee_reference": "XH202600001",
                   "holder": HOLDER, "valid_until": "2027-06-30"})
        } else {
            let goods: Vec<Value> = (0..6)
                .map(|i| json!({"hs_code": "870323", "description": if i == 0 { pad } else { "Passenger cars" },
                                "packages": 4, "gross_mass_kg": 6200.5, "value": {"amount": 88000.0, "currency": "EUR"}}))
                .collect();
            json!({"message_id": "m-1", "type": "E9", "guarantee_reference": "XH202600001", "declaration": {
                "itinerary": ["LT", "PL", "CZ"],
                "offices": [{"code": "LTMDK001", "role": "departure"}, {"code": "PLKUB001", "role": "entry"},
                            {"code": "CZBOH001", "role": "destination"}],
                "vehicle": {"registration": "ABC123", "country": "LT"}, "seals": ["LT-884211"],
                "consignments": [{"consignor": {"name": "Baltic Haulage UAB", "country": "LT"},
                                  "consignee": {"name": "Bohemia Import s.r.o.", "country": "CZ"}, "goods": goods}]}})
        };
        wire::canonical(&v)
    };
    let base = make("x").len();
    assert!(base <= len, "a body of {len} bytes is smaller than the message itself ({base})");
    let body = make(&"x".repeat(1 + len - base));
    assert_eq!(body.len(), len);
    body
}

fn chain_of(n: usize, body: &str) -> Vec<JournalEntry> {
    let mut prev = (0, GENESIS.to_owned());
    (0..n)
        .map(|i| {
            let entry = JournalEntry::next(
                &prev,
                1_790_000_000_000 + i as i64,
                "customs-lt",
                "I9",
                &format!("m-{i}"),
                "XH202600001",
                body.to_owned(),
            );
            prev = (entry.seq, entry.hash.clone());
            entry
        })
        .collect()
}

fn journal_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal");
    let prev = (41, "7f".repeat(32));
    for len in [150, 1500] {
        let body = body_of_len(len);
        group.throughput(Throughput::Bytes(len as u64));
        // The body is moved into the entry: clone it outside the timed part.
        group.bench_with_input(BenchmarkId::new("next", format!("{len}B")), &body, |b, body| {
            b.iter_batched(
                || body.clone(),
                |body| {
                    JournalEntry::next(
                        black_box(&prev),
                        1_790_000_000_000,
                        "customs-lt",
                        "I9",
                        "m-1",
                        "XH202600001",
                        body,
                    )
                },
                BatchSize::SmallInput,
            )
        });
    }

    let entries = chain_of(VERIFY_ENTRIES, &body_of_len(150));
    group.throughput(Throughput::Elements(VERIFY_ENTRIES as u64));
    group.bench_function(BenchmarkId::new("verify", format!("{VERIFY_ENTRIES}x150B")), |b| {
        b.iter(|| {
            let mut verifier = Verifier::default();
            for entry in black_box(&entries) {
                verifier.push(entry);
            }
            let verdict = verifier.finish();
            assert!(verdict.ok);
            verdict
        })
    });
    group.finish();
}

// ---------------------------------------------------------------- store

/// A SQLite file that is removed, with its WAL, when dropped.
struct TempDb(PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = self.0.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

async fn seeded_store(path: &std::path::Path) -> Arc<dyn Store> {
    let store = tir_store::open(&format!("sqlite://{}", path.display())).await.expect("open the sqlite store");
    let tir_id = TirId::parse(HOLDER).unwrap();
    store
        .put_holder(HolderRecord {
            tir_id: tir_id.clone(),
            name: "Baltic Haulage UAB".into(),
            country: tir_id.country(),
            status: HolderStatus::Authorized,
        })
        .await
        .unwrap();
    let token = tir_store::token::generate();
    let chain = NewParty {
        id: CHAIN_ID.into(),
        kind: PartyKind::GuaranteeChain,
        name: "IRU".into(),
        country: None,
        tir_id: None,
        token_hash: tir_store::token::hash(&token),
    };
    store.create_party(chain).await.unwrap();
    store
}

/// An E1 registering guarantee number `n`, parsed and canonicalized as the
/// HTTP layer hands it to the store.
fn e1(n: u64) -> Submission {
    let value = json!({"message_id": format!("e1-{n}"), "type": "E1", "guarantee_reference": format!("XH1{n:08}"),
                       "holder": HOLDER, "valid_until": "2027-06-30"});
    let request = Request::parse(&value).expect("the E1 is valid");
    Submission::new(Party::GuaranteeChain { id: CHAIN_ID.into() }, request, wire::canonical(&value))
}

/// Submits each of `submissions` from its own task; returns the wall time until all are answered.
async fn submit_all(store: &Arc<dyn Store>, submissions: Vec<Submission>) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = submissions
        .into_iter()
        .map(|s| {
            let store = store.clone();
            tokio::spawn(async move { store.submit(s).await })
        })
        .collect();
    for handle in handles {
        let reply = handle.await.expect("the task ends").expect("the store answers");
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    start.elapsed()
}

fn store_benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let db = TempDb(std::env::temp_dir().join(format!("tirhub-bench-{}.db", tir_store::token::random_hex(8))));
    let store = runtime.block_on(seeded_store(&db.0));
    // Every iteration registers new guarantees: a replayed message_id would be answered from the idempotency table.
    let next = AtomicU64::new(1);
    let batch = |count: usize| (0..count).map(|_| e1(next.fetch_add(1, Ordering::Relaxed))).collect::<Vec<_>>();

    let mut group = c.benchmark_group("store");
    // Every commit fsyncs: a few samples are enough and keep the run short.
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));

    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("submit_sqlite", "1_task"), |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let submissions = batch(iters as usize);
            let store = store.clone();
            async move {
                let start = Instant::now();
                for s in submissions {
                    let reply = store.submit(s).await.expect("the store answers");
                    assert_eq!(reply.status, 200, "{}", reply.body);
                }
                start.elapsed()
            }
        })
    });

    // One iteration is 64 messages in flight at once; the writer commits them in few batches.
    group.throughput(Throughput::Elements(CONCURRENT_TASKS as u64));
    group.bench_function(BenchmarkId::new("submit_sqlite", format!("{CONCURRENT_TASKS}_tasks")), |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let rounds: Vec<Vec<Submission>> = (0..iters).map(|_| batch(CONCURRENT_TASKS)).collect();
            let store = store.clone();
            async move {
                let mut total = Duration::ZERO;
                for round in rounds {
                    total += submit_all(&store, round).await;
                }
                total
            }
        })
    });
    group.finish();
    drop(store);
}

criterion_group!(benches, journal_benches, store_benches);
criterion_main!(benches);
