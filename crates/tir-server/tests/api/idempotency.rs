//! Replays by message_id: identical answers, one effect.

use serde_json::{Value, json};

use crate::transport::events;
use tir_testkit::server::*;

/// The same JSON with keys in reverse order and generous whitespace.
fn reordered(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.reverse();
            let fields: Vec<String> = keys
                .iter()
                .map(|k| format!("\n  {} :\t{}", Value::String((*k).clone()), reordered(&map[*k])))
                .collect();
            format!("{{ {} \n}}", fields.join(" ,"))
        }
        Value::Array(items) => format!("[ {} ]", items.iter().map(reordered).collect::<Vec<_>>().join(" , ")),
        scalar => scalar.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_of_the_transport_replays_byte_identically_also_after_a_restart() {
    let mut app = spawn_app().await;
    replay_scenario(&mut app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_on_postgresql_are_byte_identical_also_after_a_restart() {
    let Some(mut app) = spawn_app_pg().await else {
        eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
        return;
    };
    replay_scenario(&mut app).await;
    app.stop().await;
}

async fn replay_scenario(app: &mut TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::new(app, &c);
    trip.full().await;
    let sent = trip.sent.clone();
    let reference = trip.reference.clone();
    drop(trip);
    // A rejected message is stored and replayed too.
    let rejected = message("I13", &reference, json!({"office": "TR000100"}));
    let rejected_reply = app.post(&c.tr, &rejected).await;
    rejected_reply.assert_error(212, "/office");
    let (_, before) = app.get(&c.chain_a, &format!("/v1/guarantees/{reference}")).await;

    for round in ["same server", "restarted server"] {
        if round == "restarted server" {
            app.restart().await;
        }
        for s in &sent {
            let again = app.post(&s.token, &s.body).await;
            assert_eq!((again.status, &again.text), (s.reply.status, &s.reply.text), "{round}: {}", s.body["type"]);
            let spaced = app.post_raw(&s.token, reordered(&s.body)).await;
            assert_eq!((spaced.status, &spaced.text), (s.reply.status, &s.reply.text), "{round}: {}", s.body["type"]);
        }
        let again = app.post(&c.tr, &rejected).await;
        assert_eq!((again.status, &again.text), (rejected_reply.status, &rejected_reply.text), "{round}");
        let (_, after) = app.get(&c.chain_a, &format!("/v1/guarantees/{reference}")).await;
        assert_eq!(after, before, "{round}: replays change nothing");
    }
    let chain = app.feed(&c.chain_a).await;
    assert_eq!(chain.len(), 12, "replays notify nobody again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_message_id_with_another_body_is_409_with_299_and_the_original_answer_stays() {
    let mut app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    trip.start("TR").await;
    let start = trip.sent.last().unwrap().clone();
    let mut changed = start.body.clone();
    changed["seals"] = json!(["TR-000000"]);
    app.post(&c.tr, &changed).await.assert_error(299, "/message_id");
    let mut other_type = start.body.clone();
    other_type["type"] = json!("I17");
    other_type["reason"] = json!("changed my mind");
    other_type.as_object_mut().unwrap().remove("seals");
    app.post(&c.tr, &other_type).await.assert_error(299, "/message_id");
    let mut dropped = start.body.clone();
    dropped.as_object_mut().unwrap().remove("seals");
    app.post(&c.tr, &dropped).await.assert_error(299, "/message_id");

    app.restart().await;
    app.post(&c.tr, &changed).await.assert_error(299, "/message_id");
    let again = app.post(&c.tr, &start.body).await;
    assert_eq!((again.status, again.text), (start.reply.status, start.reply.text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_keys_reordered_and_other_whitespace_is_the_same_message() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    trip.advance().await;
    let advance = trip.sent.last().unwrap().clone();
    let text = reordered(&advance.body);
    assert_ne!(text, advance.body.to_string());
    let again = app.post_raw(&c.holder, text).await;
    assert_eq!((again.status, again.text), (advance.reply.status, advance.reply.text.clone()));
    // Not a second E9: that would be 201 (advance data already sent).
    let (_, view) = app.get(&c.holder, &trip.path()).await;
    assert_eq!(view["transport"]["declaration_state"], "advance");
    assert_eq!(app.feed(&c.tr).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_copies_of_a_message_have_one_effect_and_one_answer() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let register = message("E1", &reference(), json!({"holder": HOLDER}));
    let copies = (0..16).map(|_| app.post(&c.chain_a, &register));
    let replies = futures_join_all(copies).await;
    assert_eq!(replies[0].status, 200, "{}", replies[0].text);
    assert!(replies.iter().all(|r| (r.status, &r.text) == (200, &replies[0].text)));
    assert_eq!(app.feed(&app.admin).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_in_one_country_let_exactly_one_through() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    let starts: Vec<Value> = (0..12).map(|_| message("I9", &trip.reference, json!({"office": "TR000100"}))).collect();
    let replies = futures_join_all(starts.iter().map(|s| app.post(&c.tr, s))).await;
    let accepted = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(accepted, 1, "{replies:?}");
    for reply in replies.iter().filter(|r| r.status != 200) {
        reply.assert_error(210, "/office");
    }
    let events = events(&app.feed(&c.chain_a).await);
    assert_eq!(events.iter().filter(|e| e.1 == "operation_started").count(), 1);
}

/// Runs futures concurrently on the runtime and collects their outputs in order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: Future,
{
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future finished")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ids_belong_to_their_sender() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let a = message("E1", &reference(), json!({"holder": HOLDER}));
    let mut b = message("E1", &reference(), json!({"holder": OTHER_HOLDER}));
    b["message_id"] = a["message_id"].clone();
    assert_eq!(app.post(&c.chain_a, &a).await.status, 200);
    let reply = app.post(&c.chain_b, &b).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["guarantee"]["holder"], OTHER_HOLDER);
}
