//! Storage faults injected through `FaultyStore` (tir-store `faults`): a write
//! that fails inside its transaction answers 503 with code 400 and leaves
//! nothing behind (no journal entry, no state, no feed item, no stored answer);
//! once the fault clears, the same message is accepted, once.

use reqwest::Method;
use serde_json::{Value, json};
use tir_testkit::server::*;

macro_rules! on_both_faulty_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use tir_testkit::server::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let app = spawn_app_faulty().await;
                super::$scenario(&app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgresql() {
                let Some(mut app) = spawn_app_pg_faulty().await else {
                    eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
                    return;
                };
                super::$scenario(&app).await;
                app.stop().await;
            }
        }
    )*};
}

on_both_faulty_stores!(
    every_message_type_failing_its_write_leaves_nothing_and_is_accepted_once_after,
    admin_writes_failing_leave_nothing_and_succeed_after,
    an_unavailable_store_answers_503_on_every_route_and_serves_again_after,
);

/// What a failed write must not have changed, read over HTTP.
#[derive(Debug, PartialEq)]
struct Seen {
    journal: Value,
    guarantee: (u16, String),
    timeline: (u16, String),
    feeds: Vec<Vec<Value>>,
}

async fn seen(app: &TestApp, c: &Corridor, reference: &str) -> Seen {
    let (status, journal) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!(status, 200, "{journal}");
    assert_eq!(journal["ok"], true, "the journal verifies: {journal}");
    let guarantee = app.get_reply(&c.chain_a, &format!("/v1/guarantees/{reference}")).await;
    let timeline = app.get_reply(&c.chain_a, &format!("/v1/guarantees/{reference}/timeline")).await;
    let mut feeds = Vec::new();
    for token in [&c.chain_a, &c.holder, &c.tr, &c.ge, &c.az] {
        feeds.push(app.feed(token).await);
    }
    Seen { journal, guarantee: (guarantee.status, guarantee.text), timeline: (timeline.status, timeline.text), feeds }
}

/// Sends `body` while every write fails (503/400, nothing changed), then again
/// once the fault clears (accepted with `response_type`), then a third time
/// (the second answer replayed byte for byte, nothing applied twice).
async fn fails_then_accepted(app: &TestApp, c: &Corridor, token: &str, body: Value, response_type: &str) {
    let reference = body["guarantee_reference"].as_str().expect("a reference").to_owned();
    let kind = body["type"].clone();
    let before = seen(app, c, &reference).await;
    app.faults().set(Fault::Write);
    let failed = app.post(token, &body).await;
    app.faults().clear();
    failed.assert_error_status(503, 400, "");
    assert!(failed.json()["error"].get("detail").is_none(), "{kind}: details stay in the log: {}", failed.text);
    assert_eq!(seen(app, c, &reference).await, before, "{kind}: the failed write left something behind");

    // Not a replay of the failure: the same message id is applied now.
    let accepted = app.post(token, &body).await;
    assert_eq!(accepted.status, 200, "{kind} after the fault: {}", accepted.text);
    assert_eq!(accepted.json()["type"], response_type, "{}", accepted.text);
    let after = seen(app, c, &reference).await;
    let entries = |s: &Seen| s.journal["entries"].as_i64().expect("entries");
    assert_eq!(entries(&after), entries(&before) + 1, "{kind}: journaled once");
    let again = app.post(token, &body).await;
    assert_eq!((again.status, &again.text), (accepted.status, &accepted.text), "{kind}: replayed");
    assert_eq!(seen(app, c, &reference).await, after, "{kind}: the replay changed something");
}

async fn every_message_type_failing_its_write_leaves_nothing_and_is_accepted_once_after(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let journal_start = seen(app, &c, "XH1").await.journal["entries"].as_i64().unwrap();

    // A transport through every message a customs, a chain and a holder send.
    let r = reference();
    let fx = |kind: &str, fields: Value| message(kind, &r, fields);
    fails_then_accepted(app, &c, &c.chain_a, fx("E1", json!({"holder": HOLDER, "valid_until": "2099-12-31"})), "E2")
        .await;
    fails_then_accepted(app, &c, &c.holder, fx("E9", json!({"declaration": declaration()})), "E10").await;
    fails_then_accepted(app, &c, &c.holder, fx("E11", json!({"declaration": declaration()})), "E12").await;
    fails_then_accepted(app, &c, &c.tr, fx("I1", json!({"office": "TR000100"})), "I2").await;
    fails_then_accepted(app, &c, &c.tr, fx("I7", json!({"office": "TR000100"})), "I8").await;
    let start = fx("I9", json!({"office": "TR000100", "seals": [SEAL]}));
    fails_then_accepted(app, &c, &c.tr, start, "I10").await;
    let amend = fx("E11", json!({"declaration": declaration(), "country": "TR"}));
    fails_then_accepted(app, &c, &c.holder, amend, "E12").await;
    fails_then_accepted(app, &c, &c.tr, fx("I7", json!({"office": "TR000100"})), "I8").await;
    let incident = fx("X1", json!({"office": "TR000100", "kind": "other", "description": "a torn tilt"}));
    fails_then_accepted(app, &c, &c.tr, incident, "X2").await;
    let terminate = fx("I11", json!({"office": "TR000100", "seals": [SEAL], "reservations": []}));
    fails_then_accepted(app, &c, &c.tr, terminate, "I12").await;
    let refuse = fx("I17", json!({"office": "GE000100", "reason": "unsafe load"}));
    fails_then_accepted(app, &c, &c.ge, refuse, "I18").await;
    fails_then_accepted(app, &c, &c.tr, fx("I13", json!({"office": "TR000100"})), "I14").await;
    let (_, released) = app.get(&c.chain_a, &format!("/v1/guarantees/{r}")).await;
    assert_eq!(released["state"], "released", "{released}");

    // The holder's withdrawal and the chain's cancellation, on a second guarantee.
    let r2 = reference();
    let fx2 = |kind: &str, fields: Value| message(kind, &r2, fields);
    fails_then_accepted(app, &c, &c.chain_a, fx2("E1", json!({"holder": HOLDER})), "E2").await;
    fails_then_accepted(app, &c, &c.holder, fx2("E9", json!({"declaration": declaration()})), "E10").await;
    fails_then_accepted(app, &c, &c.holder, fx2("E13", json!({"reason": "plans changed"})), "E14").await;
    fails_then_accepted(app, &c, &c.chain_a, fx2("E3", json!({"reason": "withdrawn"})), "E4").await;

    // A refusal is stored like an acceptance: a failed write does not store it either.
    let late = fx2("I1", json!({"office": "TR000100"}));
    let before = seen(app, &c, &r2).await;
    app.faults().set(Fault::Write);
    app.post(&c.tr, &late).await.assert_error_status(503, 400, "");
    app.faults().clear();
    assert_eq!(seen(app, &c, &r2).await, before);
    let refused = app.post(&c.tr, &late).await;
    assert_eq!(refused.status / 100, 4, "I1 on a cancelled guarantee is refused: {}", refused.text);
    let again = app.post(&c.tr, &late).await;
    assert_eq!((again.status, &again.text), (refused.status, &refused.text));

    // Only the accepted messages are in the journal, each once, and it verifies.
    let end = seen(app, &c, &r2).await.journal;
    assert_eq!(end["entries"].as_i64().unwrap(), journal_start + 16, "{end}");
}

async fn admin_writes_failing_leave_nothing_and_succeed_after(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let before = seen(app, &c, "XH1").await;
    let office = json!({"code": "TR000900", "country": "TR", "name": "Office TR000900", "roles": ["departure"]});
    let holder = json!({"name": "Carrier", "country": "TR", "status": "authorized"});
    let party = json!({"kind": "customs", "name": "Customs UA", "country": "UA"});
    let writes = [
        (Method::POST, "/v1/admin/offices".to_owned(), Some(office)),
        (Method::PUT, format!("/v1/admin/holders/{}", encode("TUR/012/777")), Some(holder)),
        (Method::POST, "/v1/admin/parties".to_owned(), Some(party)),
    ];
    app.faults().set(Fault::Write);
    for (method, path, body) in &writes {
        let body = body.as_ref().map(|b| b.to_string().into_bytes());
        app.call(method.clone(), path, Some(&app.admin), body).await.assert_error_status(503, 400, "");
    }
    app.faults().clear();
    assert_eq!(seen(app, &c, "XH1").await, before, "the failed admin writes left something behind");
    app.get_reply(&c.tr, "/v1/offices/TR000900").await.assert_not_found(304, "/code");
    for (method, path, body) in writes {
        let body = body.map(|b| b.to_string().into_bytes());
        let reply = app.call(method, &path, Some(&app.admin), body).await;
        assert!(matches!(reply.status, 200 | 201), "{path} after the fault: {} {}", reply.status, reply.text);
    }
    assert_eq!(app.get_reply(&c.tr, "/v1/offices/TR000900").await.status, 200);
    let after = seen(app, &c, "XH1").await.journal;
    assert_eq!(after["entries"].as_i64(), before.journal["entries"].as_i64().map(|n| n + 3), "{after}");
}

async fn an_unavailable_store_answers_503_on_every_route_and_serves_again_after(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::new(app, &c);
    trip.up_to_recorded().await;
    let r = trip.reference.clone();
    let start = message("I9", &r, json!({"office": "TR000100", "seals": [SEAL]}));
    app.faults().set(Fault::Unavailable);
    app.post(&c.tr, &start).await.assert_error_status(503, 400, "");
    for (token, path) in [
        (&c.chain_a, format!("/v1/guarantees/{r}")),
        (&c.chain_a, format!("/v1/guarantees/{r}/timeline")),
        (&c.tr, "/v1/notifications".to_owned()),
        (&c.tr, "/v1/offices/TR000100".to_owned()),
        (&app.admin, "/v1/admin/journal/verify".to_owned()),
    ] {
        app.get_reply(token, &path).await.assert_error_status(503, 400, "");
    }
    // A liveness probe that does not touch the store still answers.
    assert_eq!(app.call(Method::GET, "/health", None, None).await.status, 200);
    app.faults().clear();
    let accepted = app.post(&c.tr, &start).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    let (_, journal) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!(journal["ok"], true, "{journal}");
}
