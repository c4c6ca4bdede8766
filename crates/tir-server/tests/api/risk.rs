//! Rule profiles over HTTP (issue 12): per customs administration, confidential
//! to it, versioned, journaled. Each scenario runs on SQLite and on PostgreSQL
//! (when TIRHUB_TEST_DATABASE_URL is set).

use reqwest::Method;
use serde_json::{Value, json};

use tir_testkit::server::*;

const PROFILES: &str = "/v1/risk/profiles";

on_both_stores!(
    a_profile_is_created_and_an_edit_keeps_its_history,
    another_administration_neither_sees_nor_edits_a_profile,
    only_customs_may_call_the_risk_routes,
    an_invalid_expression_is_refused_with_its_position,
    profile_writes_are_journaled_in_the_chain,
    a_retried_profile_write_with_an_idempotency_key_writes_once,
);

pub(crate) fn draft() -> Value {
    json!({
        "name": "Tobacco from the east",
        "expression": "\"2402\" in hs4 && total_value > 10000.0",
        "lane": "red",
        "selection_percent": 30,
        "weight": 5,
        "reason": "Cigarettes over EUR 10,000",
        "valid_from": "2026-01-01",
        "valid_until": null,
        "office_scope": "all"
    })
}

fn body(value: &Value) -> Option<Vec<u8>> {
    Some(value.to_string().into_bytes())
}

pub(crate) async fn create(app: &TestApp, token: &str, draft: &Value) -> Reply {
    app.call(Method::POST, PROFILES, Some(token), body(draft)).await
}

async fn edit(app: &TestApp, token: &str, id: &str, draft: &Value) -> Reply {
    app.call(Method::PUT, &format!("{PROFILES}/{id}"), Some(token), body(draft)).await
}

async fn a_profile_is_created_and_an_edit_keeps_its_history(app: &TestApp) {
    let lt = app.customs("LT").await;
    let created = create(app, &lt, &draft()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let v1 = created.json();
    let id = v1["id"].as_str().expect("an id").to_owned();
    assert_eq!((v1["version"].as_u64(), v1["administration"].as_str()), (Some(1), Some("LT")));
    assert_eq!((v1["lane"].as_str(), v1["office_scope"].as_str()), (Some("red"), Some("all")));
    assert!(v1["author"].as_str().is_some_and(|a| a.starts_with("cus_")), "{v1}");

    let mut changed = draft();
    changed["lane"] = json!("yellow");
    changed["office_scope"] = json!({"offices": ["LT000100"]});
    let edited = edit(app, &lt, &id, &changed).await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let v2 = edited.json();
    assert_eq!((v2["id"].as_str(), v2["version"].as_u64()), (Some(id.as_str()), Some(2)));
    assert_eq!(v2["office_scope"], json!({"offices": ["LT000100"]}));

    let (status, one) = app.get(&lt, &format!("{PROFILES}/{id}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["profile"], v2);
    assert_eq!(one["versions"], json!([v1, v2]), "version 1 is kept as it was");

    let second = create(app, &lt, &draft()).await.json();
    let (status, list) = app.get(&lt, PROFILES).await;
    assert_eq!(status, 200);
    let mut expected = vec![v2, second];
    expected.sort_by_key(|p| p["id"].as_str().unwrap().to_owned());
    assert_eq!(list["items"], json!(expected), "the latest version of each, by id");
}

async fn another_administration_neither_sees_nor_edits_a_profile(app: &TestApp) {
    let lt = app.customs("LT").await;
    let pl = app.customs("PL").await;
    let id = create(app, &lt, &draft()).await.json()["id"].as_str().unwrap().to_owned();
    let path = format!("{PROFILES}/{id}");

    // Exactly as a profile that does not exist.
    app.get_reply(&pl, &path).await.assert_not_found(183, "/id");
    app.get_reply(&pl, &format!("{PROFILES}/0000000000000000")).await.assert_not_found(183, "/id");
    edit(app, &pl, &id, &draft()).await.assert_not_found(183, "/id");
    edit(app, &pl, "0000000000000000", &draft()).await.assert_not_found(183, "/id");
    let (status, list) = app.get(&pl, PROFILES).await;
    assert_eq!((status, list), (200, json!({"items": []})));

    // Customs of the same country (another party) share their administration's profiles.
    let lt2 = app.customs("LT").await;
    let (status, one) = app.get(&lt2, &path).await;
    assert_eq!((status, one["versions"].as_array().map(Vec::len)), (200, Some(1)));
    // And PL's failed edit left LT's profile alone.
    assert_eq!(app.get(&lt, &path).await.1["profile"]["version"], 1);

    // Scoping to another country's office is refused.
    let mut foreign = draft();
    foreign["office_scope"] = json!({"offices": ["PL000100"]});
    create(app, &lt, &foreign).await.assert_error(180, "/office_scope/offices/0");
}

async fn only_customs_may_call_the_risk_routes(app: &TestApp) {
    let lt = app.customs("LT").await;
    let id = create(app, &lt, &draft()).await.json()["id"].as_str().unwrap().to_owned();
    let path = format!("{PROFILES}/{id}");
    let holder = app.holder_party(HOLDER).await;
    let chain = app.chain("Chain A").await;
    for token in [holder.as_str(), chain.as_str(), app.admin.as_str()] {
        app.get_reply(token, PROFILES).await.assert_error(380, "");
        app.get_reply(token, &path).await.assert_error(380, "");
        create(app, token, &draft()).await.assert_error(380, "");
        edit(app, token, &id, &draft()).await.assert_error(380, "");
    }
    app.get_reply("not-a-token", PROFILES).await.assert_error(390, "");
    assert_eq!(app.get(&lt, &path).await.1["versions"].as_array().map(Vec::len), Some(1));
}

async fn an_invalid_expression_is_refused_with_its_position(app: &TestApp) {
    let lt = app.customs("LT").await;
    let mut bad = draft();
    bad["expression"] = json!("total_value > 1000 &&\n  (hs4 ==");
    let refused = create(app, &lt, &bad).await;
    refused.assert_error(106, "/expression");
    let error = &refused.json()["error"];
    assert_eq!(error["position"], json!({"line": 2, "column": 10, "offset": 31}), "{error}");
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.starts_with("line 2, column 10: "), "{detail}");

    let mut unknown_variable = draft();
    unknown_variable["expression"] = json!("totl_value > 10");
    let refused = create(app, &lt, &unknown_variable).await;
    refused.assert_error(106, "/expression");
    assert_eq!(refused.json()["error"]["position"], json!({"line": 1, "column": 1, "offset": 0}));

    // An edit is checked the same way, and appends nothing when refused.
    let id = create(app, &lt, &draft()).await.json()["id"].as_str().unwrap().to_owned();
    edit(app, &lt, &id, &bad).await.assert_error(106, "/expression");
    assert_eq!(app.get(&lt, &format!("{PROFILES}/{id}")).await.1["versions"].as_array().map(Vec::len), Some(1));

    // The other fields, with the contract's codes.
    let cases: [(&str, Value, u16, &str); 13] = [
        ("name", Value::Null, 101, "/name"),
        ("expression", Value::Null, 101, "/expression"),
        ("expression", json!(7), 106, "/expression"),
        ("lane", json!("blue"), 102, "/lane"),
        ("selection_percent", json!(101), 180, "/selection_percent"),
        ("selection_percent", json!(-1), 180, "/selection_percent"),
        ("selection_percent", json!("30"), 106, "/selection_percent"),
        ("weight", json!(1.5), 104, "/weight"),
        ("valid_from", json!("2026-13-01"), 103, "/valid_from"),
        ("valid_until", json!("2025-12-31"), 180, "/valid_until"),
        ("office_scope", json!("some"), 102, "/office_scope"),
        ("office_scope", json!({"offices": []}), 180, "/office_scope/offices"),
        ("colour", json!("red"), 107, "/colour"),
    ];
    for (field, value, code, pointer) in cases {
        let mut d = draft();
        d[field] = value;
        create(app, &lt, &d).await.assert_error(code, pointer);
    }
    let plain = [("authorization", format!("Bearer {lt}")), ("content-type", "text/plain".to_owned())];
    let plain: Vec<(&str, &str)> = plain.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reply = app.call_with_headers(Method::POST, PROFILES, &plain, body(&draft())).await;
    reply.assert_error_status(415, 100, "");
    app.call(Method::POST, PROFILES, Some(&lt), Some(b"[1]".to_vec())).await.assert_error(100, "");
    let (_, list) = app.get(&lt, PROFILES).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "nothing refused was stored");
}

async fn profile_writes_are_journaled_in_the_chain(app: &TestApp) {
    let lt = app.customs("LT").await;
    let id = create(app, &lt, &draft()).await.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(edit(app, &lt, &id, &draft()).await.status, 200);
    create(app, &lt, &json!({})).await.assert_error(101, "/name");
    let (status, verdict) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!(status, 200);
    assert_eq!(verdict["ok"], true, "{verdict}");
    // The customs party, then two profile versions; the refusal is not journaled.
    assert_eq!(verdict["entries"].as_i64(), Some(app.admin_writes() as i64 + 2), "{verdict}");
}

/// `Idempotency-Key` on profile writes: a retry answers as the first write,
/// the key with another draft is 409/299, a malformed key 400 before anything.
async fn a_retried_profile_write_with_an_idempotency_key_writes_once(app: &TestApp) {
    let lt = app.customs("LT").await;
    let bearer = format!("Bearer {lt}");
    let keyed = |method: Method, path: String, key: &'static str, draft: Value| {
        let bearer = bearer.clone();
        async move {
            let headers =
                [("authorization", bearer.as_str()), ("content-type", "application/json"), ("idempotency-key", key)];
            app.call_with_headers(method, &path, &headers, body(&draft)).await
        }
    };
    let first = keyed(Method::POST, PROFILES.to_owned(), "retry-1", draft()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = keyed(Method::POST, PROFILES.to_owned(), "retry-1", draft()).await;
    assert_eq!((again.status, again.text.as_str()), (201, first.text.as_str()), "the same answer");
    let mut other = draft();
    other["weight"] = json!(9);
    keyed(Method::POST, PROFILES.to_owned(), "retry-1", other.clone()).await.assert_error(299, "");
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let path = format!("{PROFILES}/{id}");
    let edited = keyed(Method::PUT, path.clone(), "retry-2", other.clone()).await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(keyed(Method::PUT, path.clone(), "retry-2", other).await.text, edited.text);
    for bad in ["", "has space", "é"] {
        let reply = keyed(Method::POST, PROFILES.to_owned(), bad, draft()).await;
        assert_eq!(reply.status, 400, "{bad:?}: {}", reply.text);
    }
    let (_, one) = app.get(&lt, &path).await;
    assert_eq!(one["versions"].as_array().map(Vec::len), Some(2), "{one}");
    let (_, list) = app.get(&lt, PROFILES).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "one profile: {list}");
}
