//! The whole transport through three countries and each party's feed.

use serde_json::{Value, json};

use tir_testkit::server::*;

pub(crate) fn events(feed: &[Value]) -> Vec<(String, String, String)> {
    feed.iter()
        .map(|item| {
            let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
            (text(&item["type"]), text(&item["payload"]["event"]), text(&item["payload"]["country"]))
        })
        .collect()
}

fn cursors(feed: &[Value]) -> Vec<i64> {
    feed.iter().map(|item| item["cursor"].as_str().expect("cursor is a string").parse().expect("numeric")).collect()
}

fn owned(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect()
}

async fn full_transport_scenario(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::new(app, &c);
    trip.full().await;

    let types: Vec<String> = trip.sent.iter().map(|s| s.reply.json()["type"].as_str().unwrap().to_owned()).collect();
    let expected = ["E2", "E10", "I2", "I8", "I10", "I12", "I10", "I12", "I10", "I12", "I14", "I14", "I14"];
    assert_eq!(types, expected);
    let last = trip.sent.last().unwrap().reply.json();
    assert_eq!(last["guarantee"]["state"], "released");

    let (status, view) = app.get(&c.chain_a, &trip.path()).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["reference"], trip.reference.as_str());
    assert_eq!(view["holder"], HOLDER);
    assert_eq!(view["state"], "released");
    assert_eq!(view["transport"]["itinerary"], json!(["TR", "GE", "AZ"]));
    assert_eq!(view["transport"]["declaration_state"], "recorded");
    // The timeline holds one event per accepted message, plus the release.
    let (status, timeline) = app.get(&c.chain_a, &format!("{}/timeline", trip.path())).await;
    assert_eq!(status, 200, "{timeline}");
    let steps = timeline["events"].as_array().expect("events");
    assert_eq!(steps.len(), trip.sent.len() + 1);
    assert_eq!(steps[0]["type"], "E1");
    assert!(steps.last().unwrap()["summary"].as_str().unwrap().contains("released"));
    let (status, _) = app.get(&c.am, &format!("{}/timeline", trip.path())).await;
    assert_eq!(status, 403);
    let operations = view["transport"]["operations"].as_array().expect("operations");
    assert_eq!(operations.len(), 3);
    // TR, GE and AZ are each a TIR territory of their own: one operation each.
    for (i, (op, (country, office))) in operations.iter().zip(ROUTE).enumerate() {
        assert_eq!(op["sequence"], i + 1, "{op}");
        assert_eq!(op["territory"], country);
        assert_eq!(op["countries"], json!([country]));
        assert_eq!(op["state"], "discharged", "{op}");
        assert_eq!(op["office"], office);
        assert_eq!(op["terminated_by"], office);
        assert!(
            op["started_at"].is_string() && op["terminated_at"].is_string() && op["discharged_at"].is_string(),
            "{op}"
        );
        assert_eq!(op["reservations"], json!([]));
        assert_eq!(op["seals"], json!([SEAL]));
        assert_eq!((&op["findings"], &op["incidents"], &op["controls"]), (&json!([]), &json!([]), &json!([])));
    }
    // The response message carries the query's view, once.
    assert_eq!(last["guarantee"], view);
    let fields: Vec<&String> = last.as_object().expect("an object").keys().collect();
    assert_eq!(fields, ["guarantee", "message_id", "type"], "{last}");

    let chain = app.feed(&c.chain_a).await;
    assert_eq!(
        events(&chain),
        owned(&[
            ("E7", "guarantee_accepted", ""),
            ("E7", "declaration_recorded", ""),
            ("E7", "operation_started", "TR"),
            ("E7", "operation_terminated", "TR"),
            ("E7", "operation_started", "GE"),
            ("E7", "operation_terminated", "GE"),
            ("E7", "operation_started", "AZ"),
            ("E7", "operation_terminated", "AZ"),
            ("E7", "operation_discharged", "TR"),
            ("E7", "operation_discharged", "GE"),
            ("E7", "operation_discharged", "AZ"),
            ("E7", "guarantee_released", ""),
        ])
    );
    let tr = app.feed(&c.tr).await;
    assert_eq!(events(&tr), owned(&[("E9", "advance_data", "")]));
    assert_eq!(tr[0]["payload"]["holder"], HOLDER);
    assert_eq!(tr[0]["payload"]["declaration"]["seals"], json!([SEAL]));
    assert_eq!(tr[0]["payload"]["declaration"]["consignments"][0]["goods"][0]["hs_code"], "870323");
    let ge = app.feed(&c.ge).await;
    assert_eq!(
        events(&ge),
        owned(&[("I15", "declaration_recorded", ""), ("I15", "previous_operation_terminated", "TR")])
    );
    let az = app.feed(&c.az).await;
    assert_eq!(
        events(&az),
        owned(&[("I15", "declaration_recorded", ""), ("I15", "previous_operation_terminated", "GE")])
    );
    for item in ge.iter().chain(&az).filter(|i| i["payload"]["event"] == "declaration_recorded") {
        assert_eq!(item["payload"]["office"], "TR000100");
        assert_eq!(item["payload"]["declaration"]["itinerary"], json!(["TR", "GE", "AZ"]));
    }

    let feeds = [&chain, &tr, &ge, &az];
    for feed in feeds {
        for item in feed.iter() {
            assert_eq!(item["guarantee_reference"], trip.reference.as_str(), "{item}");
            assert!(item["created_at"].is_string(), "{item}");
        }
        let cs = cursors(feed);
        assert!(cs.windows(2).all(|w| w[0] < w[1]), "cursors increase: {cs:?}");
    }

    // Walking one item at a time sees each item exactly once, in order.
    for (token, feed) in [(&c.chain_a, &chain), (&c.tr, &tr), (&c.ge, &ge), (&c.az, &az)] {
        let paged = app.feed_paged(token, 1).await;
        assert_eq!(&paged, feed);
    }

    // Nobody else has anything; the admin reads exactly the union of the feeds.
    for token in [&c.chain_b, &c.am, &c.holder, &c.other_holder] {
        assert!(app.feed(token).await.is_empty());
    }
    let mut union: Vec<i64> = feeds.iter().flat_map(|f| cursors(f)).collect();
    union.sort();
    let total = union.len();
    union.dedup();
    assert_eq!(union.len(), total, "no item is in two feeds");
    assert_eq!(cursors(&app.feed_paged(&app.admin, 5).await), union);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_transport_releases_the_guarantee_and_fills_each_feed_in_order() {
    let app = spawn_app().await;
    full_transport_scenario(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_transport_on_postgresql_behaves_as_on_sqlite() {
    let Some(mut app) = spawn_app_pg().await else {
        eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
        return;
    };
    full_transport_scenario(&app).await;
    app.stop().await;
}

/// I11 reporting other seals than the recorded ones: accepted, a finding on the
/// operation, an E7 to the chain, and the reported set is the record from then on.
async fn seal_finding_scenario(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::new(app, &c);
    trip.up_to_recorded().await;
    trip.start("TR").await;
    let chain_items_before = app.feed(&c.chain_a).await.len();
    let reported = json!(["TR-100001", "TR-100002"]);
    let terminate =
        message("I11", &trip.reference, json!({"office": "TR000100", "seals": reported, "reservations": []}));
    let (status, answer) = app.send(&c.tr, &terminate).await;
    assert_eq!((status, answer["type"].as_str()), (200, Some("I12")), "{answer}");

    let (_, view) = app.get(&c.chain_a, &trip.path()).await;
    let operation = &view["transport"]["operations"][0];
    assert_eq!(operation["state"], "terminated");
    let findings = operation["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{operation}");
    assert_eq!(
        (&findings[0]["kind"], &findings[0]["office"], &findings[0]["recorded"], &findings[0]["reported"]),
        (&json!("seals_differ"), &json!("TR000100"), &json!([SEAL]), &reported)
    );
    assert!(findings[0]["at"].is_string());
    assert_eq!(view["transport"]["seals"], reported);
    assert_eq!(answer["guarantee"]["transport"], view["transport"], "the answer shows the same");

    let chain_feed = app.feed(&c.chain_a).await;
    let new: Vec<&Value> = chain_feed[chain_items_before..].iter().collect();
    let events: Vec<&str> = new.iter().map(|item| item["payload"]["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["operation_terminated", "seal_finding"]);
    let finding = &new[1];
    assert_eq!(finding["type"], "E7");
    assert_eq!(
        (&finding["payload"]["office"], &finding["payload"]["recorded"], &finding["payload"]["reported"]),
        (&json!("TR000100"), &json!([SEAL]), &reported)
    );

    // The next start reporting the new set is no finding.
    trip.discharge("TR").await;
    let start = message("I9", &trip.reference, json!({"office": "GE000100", "seals": ["TR-100002", "TR-100001"]}));
    assert_eq!(app.send(&c.ge, &start).await.0, 200);
    let (_, view) = app.get(&c.ge, &trip.path()).await;
    assert_eq!(view["transport"]["operations"][1]["findings"], json!([]));
    assert_eq!(app.feed(&c.chain_a).await.len(), chain_feed.len() + 2, "operation_discharged, operation_started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_seals_at_termination_are_a_finding_not_a_refusal() {
    let app = spawn_app().await;
    seal_finding_scenario(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_seals_at_termination_are_a_finding_on_postgresql_too() {
    let Some(mut app) = spawn_app_pg().await else {
        eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
        return;
    };
    seal_finding_scenario(&app).await;
    app.stop().await;
}
