//! The fallback procedure (etir-binding.md, "Fallback procedure"): periods
//! declared and ended, messages recorded late against them, and the
//! reconciliation that says when the record is whole again.

use reqwest::Method;
use serde_json::{Value, json};
use tir_model::Timestamp;

use tir_testkit::fixtures::{SEAL, message, message_id};
use tir_testkit::server::*;

/// `minutes` from now (negative: ago), RFC 3339.
fn minutes_from_now(minutes: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    Timestamp::from_unix_ms(now + minutes * 60_000).to_rfc3339()
}

async fn post_json(app: &TestApp, token: &str, path: &str, body: &Value) -> Reply {
    app.call(Method::POST, path, Some(token), Some(body.to_string().into_bytes())).await
}

async fn declare(app: &TestApp, token: &str, body: &Value) -> Reply {
    post_json(app, token, "/v1/fallback", body).await
}

/// `body` recorded in fallback, as having happened at `occurred_at`, under a message id of its own.
fn late(mut body: Value, occurred_at: &str) -> Value {
    body["message_id"] = json!(message_id());
    body["fallback"] = json!(true);
    body["occurred_at"] = json!(occurred_at);
    body
}

fn kinds(transport: &Value) -> Vec<String> {
    transport["missing"].as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap().to_owned()).collect()
}

/// The transport `reference` in a reconciliation, if listed.
fn listed<'a>(reconciliation: &'a Value, reference: &str) -> Option<&'a Value> {
    reconciliation["transports"].as_array().unwrap().iter().find(|t| t["reference"] == reference)
}

/// TR and GE customs work on paper for two hours; GE records the start of the
/// second operation before TR records the termination of the first, both late;
/// then everything is terminated, discharged, and the guarantee released.
async fn operations_recorded_late_are_reconciled(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::new(app, &c);
    trip.up_to_recorded().await;
    let from = minutes_from_now(-120);
    let tr_period = declare(app, &c.tr, &json!({"scope": "TR", "reason": "national system down", "from": from})).await;
    assert_eq!(tr_period.status, 201, "{}", tr_period.text);
    let tr_period = tr_period.json();
    assert_eq!((tr_period["scope"].as_str(), tr_period["open"].as_bool()), (Some("TR"), Some(true)));
    assert_eq!(tr_period["until"], Value::Null);
    // The same declaration again is the same period; another reason for it is 299.
    let again = declare(app, &c.tr, &json!({"scope": "TR", "reason": "national system down", "from": from})).await;
    assert_eq!((again.status, again.json()), (200, tr_period.clone()));
    declare(app, &c.tr, &json!({"scope": "TR", "reason": "power cut", "from": from}))
        .await
        .assert_error(299, "/reason");
    let ge_period = declare(app, &c.ge, &json!({"scope": "GE", "reason": "link down", "from": from})).await;
    assert_eq!(ge_period.status, 201, "{}", ge_period.text);
    let ge_period = ge_period.json();
    let (tr_id, ge_id) = (tr_period["id"].as_str().unwrap(), ge_period["id"].as_str().unwrap());

    // The customs of each country are told; the others are not.
    let told =
        |feed: &[Value], id: &str| feed.iter().any(|i| i["type"] == "FALLBACK" && i["payload"]["period"]["id"] == id);
    assert!(told(&app.feed(&c.tr).await, tr_id) && !told(&app.feed(&c.tr).await, ge_id));
    assert!(told(&app.feed(&c.ge).await, ge_id));
    assert!(!told(&app.feed(&c.az).await, tr_id) && !told(&app.feed(&c.az).await, ge_id));

    // Refused: before any period of TR, in the future, and by the order of what happened.
    let tr_start = message("I9", &trip.reference, json!({"office": "TR000100", "seals": [SEAL]}));
    app.post(&c.tr, &late(tr_start.clone(), &minutes_from_now(-180))).await.assert_error(286, "/occurred_at");
    app.post(&c.tr, &late(tr_start.clone(), &minutes_from_now(60))).await.assert_error(102, "/occurred_at");
    let (t_start, ge_start, tr_end, ge_end) =
        (minutes_from_now(-100), minutes_from_now(-60), minutes_from_now(-80), minutes_from_now(-55));
    trip.send_ok(&c.tr, late(tr_start, &t_start), "I10").await;
    // Online, GE could not start before TR's termination is recorded (281); recorded late, it may.
    let ge_online = message("I9", &trip.reference, json!({"office": "GE000100"}));
    app.post(&c.ge, &ge_online).await.assert_error(281, "/office");
    let started = trip
        .send_ok(&c.ge, late(message("I9", &trip.reference, json!({"office": "GE000100"})), &ge_start), "I10")
        .await;
    let ops = &started["guarantee"]["transport"]["operations"];
    assert_eq!((ops[0]["state"].as_str(), ops[1]["state"].as_str()), (Some("started"), Some("started")));
    assert_eq!(ops[1]["started_at"], ge_start.as_str(), "the operation keeps the time at the office");
    assert_eq!(ops[1]["recorded_late"][0]["period"], ge_id);
    assert_eq!(ops[1]["recorded_late"][0]["occurred_at"], ge_start.as_str());
    assert!(ops[1]["recorded_late"][0]["received_at"].is_string());

    // Mid-way, the reconciliation names what is missing, for the customs of the period's country.
    let (status, mid) = app.get(&c.ge, &format!("/v1/fallback/{ge_id}/reconciliation")).await;
    assert_eq!(status, 200, "{mid}");
    assert_eq!(mid["reconciled"], false);
    let transport = listed(&mid, &trip.reference).expect("the transport is listed");
    assert_eq!(transport["recorded_in_fallback"], true);
    assert_eq!(kinds(transport), ["termination", "termination", "release"]);

    // TR's termination, recorded after GE's start, must have happened before it.
    let tr_terminate = message("I11", &trip.reference, json!({"office": "TR000100", "reservations": []}));
    app.post(&c.tr, &late(tr_terminate.clone(), &minutes_from_now(-50))).await.assert_error(281, "/occurred_at");
    trip.send_ok(&c.tr, late(tr_terminate, &tr_end), "I12").await;
    // The periods end when the exchange is back.
    let until = minutes_from_now(-50);
    for (token, id) in [(&c.tr, tr_id), (&c.ge, ge_id)] {
        let ended = post_json(app, token, &format!("/v1/fallback/{id}/end"), &json!({"until": until})).await;
        assert_eq!(ended.status, 200, "{}", ended.text);
        assert_eq!(
            (ended.json()["open"].as_bool(), ended.json()["until"].as_str()),
            (Some(false), Some(until.as_str()))
        );
    }
    // Ending again at the same time changes nothing.
    let again = post_json(app, &c.ge, &format!("/v1/fallback/{ge_id}/end"), &json!({"until": until})).await;
    assert_eq!(again.status, 200);
    // A late message after the period's end is outside it.
    let ge_terminate = message("I11", &trip.reference, json!({"office": "GE000100", "reservations": []}));
    app.post(&c.ge, &late(ge_terminate.clone(), &minutes_from_now(-40))).await.assert_error(286, "/occurred_at");
    trip.send_ok(&c.ge, late(ge_terminate, &ge_end), "I12").await;
    // Back online: discharges and the last operation.
    trip.discharge("TR").await;
    trip.discharge("GE").await;
    trip.start("AZ").await;
    trip.terminate("AZ").await;
    let last = trip.discharge("AZ").await;
    assert_eq!(last["guarantee"]["state"], "released");

    for (token, id) in [(&c.tr, tr_id), (&c.ge, ge_id), (&c.chain_a, ge_id), (&app.admin, tr_id)] {
        let (status, done) = app.get(token, &format!("/v1/fallback/{id}/reconciliation")).await;
        assert_eq!(status, 200, "{done}");
        let transport = listed(&done, &trip.reference).expect("the transport is listed");
        assert_eq!(kinds(transport), Vec::<String>::new(), "{done}");
        assert_eq!(done["reconciled"], true, "{done}");
    }
    // Another chain reads the reconciliation without this guarantee; a holder not at all.
    let (_, other) = app.get(&c.chain_b, &format!("/v1/fallback/{ge_id}/reconciliation")).await;
    assert!(listed(&other, &trip.reference).is_none());
    app.get_reply(&c.holder, &format!("/v1/fallback/{ge_id}/reconciliation"))
        .await
        .assert_error_status(403, 380, "/id");
    // AZ's customs are not concerned by GE's period.
    app.get_reply(&c.az, &format!("/v1/fallback/{ge_id}")).await.assert_error_status(403, 380, "/id");
    let (_, az_list) = app.get(&c.az, "/v1/fallback").await;
    assert_eq!(az_list["periods"], json!([]));
    let (_, holder_list) = app.get(&c.holder, "/v1/fallback").await;
    assert_eq!(holder_list["periods"].as_array().unwrap().len(), 2);

    // The timeline keeps both times and marks what was recorded in fallback.
    let (status, timeline) = app.get(&c.chain_a, &format!("{}/timeline", trip.path())).await;
    assert_eq!(status, 200, "{timeline}");
    let late_events: Vec<&Value> =
        timeline["events"].as_array().unwrap().iter().filter(|e| e.get("fallback_period").is_some()).collect();
    assert_eq!(late_events.len(), 4, "{timeline}");
    let ge_started = late_events.iter().find(|e| e["type"] == "I9" && e["fallback_period"] == ge_id).unwrap();
    assert_eq!(ge_started["occurred_at"], ge_start.as_str());
    assert_ne!(ge_started["at"], ge_started["occurred_at"]);
    let online = timeline["events"].as_array().unwrap().iter().find(|e| e["type"] == "I13").unwrap();
    assert!(online.get("occurred_at").is_none(), "{online}");

    let (status, verdict) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!((status, &verdict["ok"]), (200, &json!(true)), "{verdict}");
}

/// Who declares what, and a period of the whole system told to every party.
async fn declaring_and_ending_is_authorized(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let from = minutes_from_now(-30);
    let body = |scope: &str| json!({"scope": scope, "reason": "exchange unavailable", "from": from});
    declare(app, &c.tr, &body("GE")).await.assert_error_status(403, 380, "/scope");
    declare(app, &c.tr, &body("system")).await.assert_error_status(403, 380, "/scope");
    declare(app, &c.holder, &body("TR")).await.assert_error_status(403, 380, "/scope");
    declare(app, &c.chain_a, &body("TR")).await.assert_error_status(403, 380, "/scope");
    declare(app, &c.tr, &json!({"scope": "TR", "reason": "x", "from": minutes_from_now(30)}))
        .await
        .assert_error(102, "/from");
    declare(app, &c.tr, &json!({"scope": "TR", "reason": "x", "from": "yesterday"})).await.assert_error(103, "/from");
    declare(app, &c.tr, &json!({"scope": "TR", "reason": "x"})).await.assert_error(101, "/from");
    declare(app, &c.tr, &json!({"scope": "TR", "reason": "x", "from": from, "until": from}))
        .await
        .assert_error(107, "/until");

    let system = declare(app, &app.admin, &body("system")).await;
    assert_eq!(system.status, 201, "{}", system.text);
    let id = system.json()["id"].as_str().unwrap().to_owned();
    for token in [&c.tr, &c.az, &c.chain_a, &c.holder] {
        let feed = app.feed(token).await;
        assert!(
            feed.iter().any(|i| i["type"] == "FALLBACK" && i["payload"]["event"] == "fallback_declared"),
            "{feed:?}"
        );
        let (status, period) = app.get(token, &format!("/v1/fallback/{id}")).await;
        assert_eq!((status, &period["scope"]), (200, &json!("system")), "{period}");
    }
    let end = format!("/v1/fallback/{id}/end");
    let until = json!({"until": minutes_from_now(-1)});
    post_json(app, &c.tr, &end, &until).await.assert_error_status(403, 380, "/id");
    post_json(app, &app.admin, &end, &json!({"until": minutes_from_now(-60)})).await.assert_error(102, "/until");
    let ended = post_json(app, &app.admin, &end, &until).await;
    assert_eq!(ended.status, 200, "{}", ended.text);
    post_json(app, &app.admin, &end, &json!({"until": minutes_from_now(-2)})).await.assert_error(299, "/until");
    let feed = app.feed(&c.chain_a).await;
    assert!(feed.iter().any(|i| i["type"] == "FALLBACK" && i["payload"]["event"] == "fallback_ended"));
    app.get_reply(&c.tr, "/v1/fallback/nosuchperiod").await.assert_not_found(183, "/id");
    app.get_reply(&c.tr, "/v1/fallback/no%20such").await.assert_error(106, "/id");

    // A period's declaration and end are journaled.
    let (status, verdict) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!((status, &verdict["ok"]), (200, &json!(true)), "{verdict}");
}

on_both_stores!(operations_recorded_late_are_reconciled, declaring_and_ending_is_authorized);
