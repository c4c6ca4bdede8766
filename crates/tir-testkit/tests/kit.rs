//! The kit against the real server: what the suites that use it rely on.

use serde_json::{Value, json};
use tir_testkit::seeded::{self, seed_corridor};
use tir_testkit::server::*;

/// Seeds the corridor, drives one full transport and checks the journal holds
/// exactly the admin writes and the messages; then the same after a restart.
async fn a_full_trip_is_journaled_and_replays_identically_after_a_restart(mut app: TestApp) {
    let c = Corridor::seed(&app).await;
    assert_eq!(app.admin_writes(), SEEDED_OFFICES + SEEDED_HOLDERS + SEEDED_PARTIES);
    assert_eq!(app.admin_writes(), 12 + 3 + 16);
    let mut trip = Trip::new(&app, &c);
    trip.full().await;
    let sent = trip.sent.clone();
    let (status, guarantee) = app.get(&app.admin, &trip.path()).await;
    assert_eq!((status, guarantee["state"].as_str()), (200, Some("released")), "{guarantee}");
    let (_, verdict) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["entries"].as_u64(), Some((app.admin_writes() + sent.len()) as u64), "{verdict}");

    let base = app.base.clone();
    app.restart().await;
    assert_ne!(app.base, base, "a restart listens on a new port");
    for s in &sent {
        assert_eq!(app.post(&s.token, &s.body).await.text, s.reply.text, "{}", s.body);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_trip_on_sqlite_is_journaled_and_replays_identically_after_a_restart() {
    a_full_trip_is_journaled_and_replays_identically_after_a_restart(spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_trip_on_postgres_is_journaled_and_replays_identically_after_a_restart() {
    let Some(app) = spawn_app_pg().await else { return };
    a_full_trip_is_journaled_and_replays_identically_after_a_restart(app).await;
}

#[tokio::test]
async fn assert_error_reads_the_contract_error_of_a_refused_message() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut body = message("E1", &reference(), json!({"holder": HOLDER, "valid_until": "2099-12-31"}));
    body["message_id"] = json!("m".repeat(65));
    let reply = app.post(&c.chain_a, &body).await;
    reply.assert_error(105, "/message_id");
    let wrong_pointer = std::panic::catch_unwind(|| reply.assert_error(105, "/type"));
    assert!(wrong_pointer.is_err(), "a wrong pointer fails the assertion");
}

#[tokio::test]
async fn the_seeded_corridor_carries_a_guarantee_from_its_first_stop() {
    let app = spawn_app().await;
    let corridor = seed_corridor(&app.base, &app.admin, 7).await;
    assert_eq!(corridor.customs.len(), seeded::CROSSINGS.len());
    assert_eq!(corridor.holder_tir_id, "LTU/007/4242");
    let reference = reference();
    let register = message("E1", &reference, json!({"holder": corridor.holder_tir_id, "valid_until": "2099-12-31"}));
    assert_eq!(app.post(&corridor.chain, &register).await.status, 200);
    let declaration = seeded::declaration(&corridor, &[0, 1, 2, 3]);
    let (status, answer) =
        app.send(&corridor.holder, &message("E9", &reference, json!({"declaration": declaration}))).await;
    assert_eq!((status, answer["type"].as_str()), (200, Some("E10")), "{answer}");
    let first = &corridor.customs[0];
    let accept = message("I1", &reference, json!({"office": first.office}));
    let (status, answer) = app.send(&first.token, &accept).await;
    assert_eq!((status, answer["type"].as_str()), (200, Some("I2")), "{answer}");
}

/// The demo's Medininkai corridor end to end, one TIR operation at a time:
/// KZ, RU, BY, then the Union (LT, PL, DE) entered at Medininkai and left at
/// the destination in Germany.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_seeded_corridor_is_four_operations_and_releases_the_guarantee() {
    let app = spawn_app().await;
    let corridor = seed_corridor(&app.base, &app.admin, 8).await;
    let stops: Vec<usize> = (0..seeded::CROSSINGS.len()).collect();
    let reference = reference();
    let ok = |reply: Reply, kind: &str| {
        assert_eq!((reply.status, reply.json()["type"].as_str()), (200, Some(kind)), "{}", reply.text);
        reply.json()
    };
    let register = message("E1", &reference, json!({"holder": corridor.holder_tir_id}));
    ok(app.post(&corridor.chain, &register).await, "E2");
    let declaration = seeded::declaration(&corridor, &stops);
    ok(app.post(&corridor.holder, &message("E9", &reference, json!({"declaration": declaration}))).await, "E10");
    let first = &corridor.customs[0];
    ok(app.post(&first.token, &message("I1", &reference, json!({"office": first.office}))).await, "I2");
    ok(app.post(&first.token, &message("I7", &reference, json!({"office": first.office}))).await, "I8");
    let operations = seeded::operations(&stops);
    for op in &operations {
        let (entry, exit) = (&corridor.customs[op[0]], &corridor.customs[op[op.len() - 1]]);
        let start = message("I9", &reference, json!({"office": entry.office, "seals": ["S-0001", "S-0002"]}));
        ok(app.post(&entry.token, &start).await, "I10");
        let end = message("I11", &reference, json!({"office": exit.office, "reservations": []}));
        ok(app.post(&exit.token, &end).await, "I12");
    }
    let mut last = json!(null);
    for op in &operations {
        let exit = &corridor.customs[op[op.len() - 1]];
        last = ok(app.post(&exit.token, &message("I13", &reference, json!({"office": exit.office}))).await, "I14");
    }
    assert_eq!(last["guarantee"]["state"], "released", "{last}");
    let summary: Vec<(u64, String, Value)> = last["guarantee"]["transport"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| {
            (op["sequence"].as_u64().unwrap(), op["territory"].as_str().unwrap().to_owned(), op["countries"].clone())
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "KZ".to_owned(), json!(["KZ"])),
            (2, "RU".to_owned(), json!(["RU"])),
            (3, "BY".to_owned(), json!(["BY"])),
            (4, "EU".to_owned(), json!(["LT", "PL", "DE"])),
        ]
    );
    assert_eq!(last["guarantee"]["transport"]["operations"][3]["office"], "DEJES001");
    assert_eq!(last["guarantee"]["transport"]["operations"][3]["terminated_by"], "DEJES001");
}
