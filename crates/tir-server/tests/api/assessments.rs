//! The risk engine wired into the exchange (issue 12): assessments made from
//! the notification feed for every operation, readable by their
//! administration only; inspection outcomes; stats; previews; policies. Each
//! scenario runs with the assessor on, on SQLite and on PostgreSQL.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use tir_testkit::server::*;

use crate::risk::{create, draft};

on_both_stores_with_risk!(
    every_operation_of_a_transport_is_assessed_by_each_administration,
    an_amendment_is_assessed_again,
    a_profile_that_fires_names_its_version_and_reason,
    only_the_administrations_customs_read_or_write_risk,
    inspection_results_are_checked_stored_and_counted,
    a_preview_replays_stored_transports,
    policies_are_checked_and_kept_per_office,
);

const RESULTS: &str = "/v1/risk/results";

fn assessments_path(reference: &str) -> String {
    format!("/v1/risk/assessments/{reference}")
}

/// The administration's assessments once there are at least `n` (the
/// assessor runs behind the feed); fails after 20 s.
async fn assessed(app: &TestApp, token: &str, reference: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = app.get(token, &assessments_path(reference)).await;
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= n {
            return items;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} of {n} assessments after 20 s: {body}", items.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> Reply {
    app.call(Method::POST, path, Some(token), Some(body.to_string().into_bytes())).await
}

async fn every_operation_of_a_transport_is_assessed_by_each_administration(app: &TestApp) {
    let c = Corridor::seed(app).await;
    // BY, then the Union (LT, PL): two operations, three administrations.
    let mut trip = Trip::through(app, &c, &["BY", "LT", "PL"]);
    trip.register().await;
    trip.advance().await;
    let by = assessed(app, c.customs("BY"), &trip.reference, 1).await;
    assert_eq!(by.len(), 1, "{by:?}");
    let a = &by[0];
    assert_eq!((a["operation"].as_u64(), a["office"].as_str()), (Some(1), Some("BY000100")), "{a}");
    assert_eq!((a["trigger"].as_str(), a["declaration_version"].as_u64()), (Some("advance_data"), Some(0)));
    assert!(matches!(a["lane"].as_str(), Some("green" | "yellow" | "red")), "{a}");
    assert!(matches!(a["selected_by"].as_str(), Some("none" | "random")), "no profile, no model: {a}");
    assert_eq!(a["model_version"], Value::Null);
    assert!(a["reasons"].is_array() && a["assessed_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{a}");

    // Recording tells the later countries: each assesses the Union's operation at its office.
    trip.accept().await;
    trip.record().await;
    for (country, office) in [("LT", "LT000100"), ("PL", "PL000100")] {
        let items = assessed(app, c.customs(country), &trip.reference, 1).await;
        assert_eq!(items.len(), 1, "{country}: {items:?}");
        assert_eq!((items[0]["operation"].as_u64(), items[0]["office"].as_str()), (Some(2), Some(office)));
        assert_eq!(items[0]["trigger"], "declaration_recorded");
        assert_eq!(items[0]["declaration_version"], 1);
    }
    // Each administration reads its own only: BY still has exactly its one.
    assert_eq!(assessed(app, c.customs("BY"), &trip.reference, 1).await.len(), 1);
}

async fn an_amendment_is_assessed_again(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::through(app, &c, &["BY", "LT", "PL"]);
    trip.register().await;
    trip.advance().await;
    assessed(app, c.customs("BY"), &trip.reference, 1).await;
    let mut amended = trip.declaration.clone();
    amended["consignments"][0]["goods"][0]["packages"] = json!(5);
    let e11 = message("E11", &trip.reference, json!({"declaration": amended}));
    let holder = c.holder.clone();
    trip.send_ok(&holder, e11, "E12").await;
    let items = assessed(app, c.customs("BY"), &trip.reference, 2).await;
    assert_eq!(items[1]["trigger"], "advance_data_amended", "{items:?}");
}

async fn a_profile_that_fires_names_its_version_and_reason(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let lt = c.customs("LT").to_owned();
    let mut everything = draft();
    everything["expression"] = json!("\"87\" in hs2 && country == \"LT\"");
    everything["selection_percent"] = json!(100);
    everything["reason"] = json!("Vehicles into the Union");
    let id = create(app, &lt, &everything).await.json()["id"].as_str().unwrap().to_owned();

    let mut trip = Trip::through(app, &c, &["BY", "LT", "PL"]);
    trip.up_to_recorded().await;
    let items = assessed(app, &lt, &trip.reference, 1).await;
    let a = &items[0];
    assert_eq!(a["selected_by"], format!("rule:{id}@1"), "{a}");
    assert_eq!((a["lane"].as_str(), a["reasons"][0].as_str()), (Some("red"), Some("Vehicles into the Union")));
    assert_eq!(a["matched_profiles"], json!([format!("rule:{id}@1")]));
    // Poland's customs do not see Lithuania's profile or that it fired.
    let pl = assessed(app, c.customs("PL"), &trip.reference, 1).await;
    assert!(!pl[0].to_string().contains(&id), "{pl:?}");
    assert_eq!(pl[0]["profile_versions"], json!([]));
}

async fn only_the_administrations_customs_read_or_write_risk(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::through(app, &c, &["BY", "LT", "PL"]);
    trip.up_to_recorded().await;
    assessed(app, c.customs("LT"), &trip.reference, 1).await;
    let result = json!({"guarantee_reference": trip.reference, "office": "LT000100", "outcome": "compliant"});
    let preview = json!({"expression": "true"});
    let routes: [(Method, String, Option<&Value>); 7] = [
        (Method::GET, assessments_path(&trip.reference), None),
        (Method::POST, RESULTS.to_owned(), Some(&result)),
        (Method::GET, "/v1/risk/stats".to_owned(), None),
        (Method::POST, "/v1/risk/profiles/preview".to_owned(), Some(&preview)),
        (Method::GET, "/v1/risk/policies".to_owned(), None),
        (Method::PUT, "/v1/risk/policies/*".to_owned(), Some(&json!({}))),
        (Method::GET, "/v1/risk/models".to_owned(), None),
    ];
    for token in [c.holder.as_str(), c.chain_a.as_str(), app.admin.as_str()] {
        for (method, path, body) in &routes {
            let reply = app.call(method.clone(), path, Some(token), body.map(|b| b.to_string().into_bytes())).await;
            reply.assert_error(380, "");
            assert!(!reply.text.contains("lane") && !reply.text.contains("score"), "{}", reply.text);
        }
    }
    // Customs of a country off the itinerary learn nothing of the transport's risk.
    app.get_reply(&c.am, &assessments_path(&trip.reference)).await.assert_error(380, "/reference");
    let mut am_result = result.clone();
    am_result["office"] = json!("AM000100");
    post(app, &c.am, RESULTS, &am_result).await.assert_error(380, "/guarantee_reference");
    app.get_reply(&c.am, &assessments_path("XH99999999")).await.assert_not_found(301, "/reference");
}

async fn inspection_results_are_checked_stored_and_counted(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let lt = c.customs("LT").to_owned();
    let mut trip = Trip::through(app, &c, &["BY", "LT", "PL"]);
    trip.up_to_recorded().await;
    assessed(app, &lt, &trip.reference, 1).await;
    let result = json!({"guarantee_reference": trip.reference, "office": "LT000100", "outcome": "irregularity",
                        "revenue": 1250.5, "findings": ["undeclared cigarettes"], "notes": "x-ray"});
    let first = post(app, &lt, RESULTS, &result).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let stored = first.json();
    assert_eq!((stored["outcome"].as_str(), stored["revenue"].as_f64()), (Some("irregularity"), Some(1250.5)));
    assert_eq!(stored["findings"], json!(["undeclared cigarettes"]));
    let mut corrected = result.clone();
    corrected["revenue"] = json!(1300);
    let second = post(app, &lt, RESULTS, &corrected).await;
    assert_eq!(second.status, 200, "a correction replaces: {}", second.text);

    let cases: [(&str, Value, u16, &str); 7] = [
        ("outcome", json!("guilty"), 102, "/outcome"),
        ("outcome", Value::Null, 101, "/outcome"),
        ("office", json!("PL000100"), 180, "/office"),
        ("revenue", json!(-1), 180, "/revenue"),
        ("revenue", json!("1"), 106, "/revenue"),
        ("colour", json!("red"), 107, "/colour"),
        ("guarantee_reference", json!("XH99999999"), 301, "/guarantee_reference"),
    ];
    for (field, value, code, pointer) in cases {
        let mut body = result.clone();
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value;
        }
        let reply = post(app, &lt, RESULTS, &body).await;
        if code == 301 {
            reply.assert_not_found(code, pointer);
        } else {
            reply.assert_error(code, pointer);
        }
    }

    let (status, stats) = app.get(&lt, "/v1/risk/stats").await;
    assert_eq!(status, 200, "{stats}");
    let text = stats.to_string();
    assert!(text.contains("1300"), "the corrected revenue counts, once: {stats}");
    assert!(!text.contains("1250.5"), "{stats}");
    // Another administration's stats know nothing of it.
    let (_, pl_stats) = app.get(c.customs("PL"), "/v1/risk/stats").await;
    assert!(!pl_stats.to_string().contains("1300"), "{pl_stats}");

    let (_, verdict) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!(verdict["ok"], true, "{verdict}");
}

async fn a_preview_replays_stored_transports(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let lt = c.customs("LT").to_owned();
    for _ in 0..3 {
        let mut trip = Trip::through(app, &c, &["BY", "LT", "PL"]);
        trip.up_to_recorded().await;
        assessed(app, &lt, &trip.reference, 1).await;
    }
    let all = preview(app, &lt, "total_value > 1000.0", None).await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!((all.json()["evaluated"].as_u64(), all.json()["matched"].as_u64()), (Some(3), Some(3)));
    let none = preview(app, &lt, "\"2402\" in hs4", Some(2)).await.json();
    assert_eq!((none["evaluated"].as_u64(), none["matched"].as_u64()), (Some(2), Some(0)));
    let bad = preview(app, &lt, "total_value >", None).await;
    bad.assert_error(106, "/expression");
    assert!(bad.json()["error"]["position"]["column"].as_u64().is_some(), "{}", bad.text);
    preview(app, &lt, "true", Some(0)).await.assert_error(180, "/last");
    preview(app, &lt, "true", Some(10_001)).await.assert_error(180, "/last");
}

async fn policies_are_checked_and_kept_per_office(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let lt = c.customs("LT").to_owned();
    put_policy(app, &lt, "*", json!({"red_share": 0.02, "exploration_share": 0.05})).await.assert_error(180, "");
    put_policy(app, &lt, "*", json!({"red_share": 1.5})).await.assert_error(180, "/red_share");
    put_policy(app, &lt, "*", json!({"exploration_lane": "green"})).await.assert_error(180, "/exploration_lane");
    put_policy(app, &lt, "*", json!({"speed": 1})).await.assert_error(107, "/speed");
    put_policy(app, &lt, "PL000100", json!({})).await.assert_error(180, "/office");
    let ok =
        put_policy(app, &lt, "LT000100", json!({"red_share": 0.2, "yellow_share": 0.1, "exploration_share": 0.05}))
            .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["config"]["red_share"], 0.2);
    let (status, list) = app.get(&lt, "/v1/risk/policies").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["items"][0]["office"], "LT000100");
    assert_eq!(list["default"]["red_share"], 0.05);
    let (_, pl) = app.get(c.customs("PL"), "/v1/risk/policies").await;
    assert_eq!(pl["items"], json!([]));
}

async fn preview(app: &TestApp, token: &str, expression: &str, last: Option<u64>) -> Reply {
    let mut body = json!({ "expression": expression });
    if let Some(last) = last {
        body["last"] = json!(last);
    }
    post(app, token, "/v1/risk/profiles/preview", &body).await
}

async fn put_policy(app: &TestApp, token: &str, office: &str, body: Value) -> Reply {
    let path = format!("/v1/risk/policies/{office}");
    app.call(Method::PUT, &path, Some(token), Some(body.to_string().into_bytes())).await
}
