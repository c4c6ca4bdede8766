//! Admin routes: the journal check, parties, the holder registry.

use reqwest::Method;
use serde_json::json;

use tir_testkit::server::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_verify_after_the_transport_counts_admin_writes_and_accepted_messages() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.full().await;
    // Neither rejections nor replays are journaled.
    app.post(&c.tr, &message("I13", &trip.reference, json!({"office": "TR000100"}))).await.assert_error(212, "/office");
    let first = &trip.sent[0];
    assert_eq!(app.post(&first.token, &first.body).await.text, first.reply.text);

    let (status, verdict) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["ok"], true, "{verdict}");
    let accepted = trip.sent.len();
    assert_eq!(accepted, 13);
    assert_eq!(verdict["entries"].as_u64(), Some((app.admin_writes() + accepted) as u64), "{verdict}");
    let head = verdict["head"].as_str().expect("head");
    assert_eq!(head.len(), 64, "{head}");
    assert!(head.bytes().all(|b| b.is_ascii_hexdigit()), "{head}");

    // One more write moves the head.
    app.put_holder("TUR/012/400", "authorized").await;
    let (_, later) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!(later["ok"], true);
    assert_eq!(later["entries"].as_u64(), Some((app.admin_writes() + accepted) as u64));
    assert_ne!(later["head"], verdict["head"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_partys_token_is_401_at_once_and_revoking_again_answers_the_same() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let body = json!({"kind": "guarantee_chain", "name": "Leaky chain"}).to_string().into_bytes();
    let created = app.call(Method::POST, "/v1/admin/parties", Some(&app.admin), Some(body)).await.json();
    let (id, token) = (created["id"].as_str().unwrap(), created["token"].as_str().unwrap());
    // Used before, so the server has it cached.
    assert_eq!(app.get(token, "/v1/notifications").await.0, 200);
    let (_, before) = app.get(&app.admin, "/v1/admin/journal/verify").await;

    let path = format!("/v1/admin/parties/{id}");
    let revoked = app.call(Method::DELETE, &path, Some(&app.admin), None).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let view = revoked.json();
    assert_eq!(
        (view["id"].as_str(), view["kind"].as_str(), view["name"].as_str()),
        (Some(id), Some("guarantee_chain"), Some("Leaky chain"))
    );
    assert!(view["revoked_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{view}");
    app.get_reply(token, "/v1/notifications").await.assert_error(390, "");
    let late = message("E1", &reference(), json!({"holder": HOLDER}));
    app.post(token, &late).await.assert_error(390, "");
    assert_eq!(app.get(&c.chain_a, "/v1/notifications").await.0, 200, "other parties keep their tokens");

    let again = app.call(Method::DELETE, &path, Some(&app.admin), None).await;
    assert_eq!((again.status, again.text.as_str()), (200, revoked.text.as_str()));
    let (_, after) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!(after["entries"].as_u64(), before["entries"].as_u64().map(|n| n + 1), "journaled once");
    assert_eq!(after["ok"], true);

    let admin = Some(app.admin.as_str());
    app.call(Method::DELETE, "/v1/admin/parties/gc_0000000000000000", admin, None).await.assert_error(381, "/id");
    app.call(Method::DELETE, "/v1/admin/parties/gc%20x", admin, None).await.assert_error(106, "/id");
    let long = format!("/v1/admin/parties/{}", "a".repeat(65));
    app.call(Method::DELETE, &long, admin, None).await.assert_error(105, "/id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_listed_under_another_country_than_its_tir_id_is_400_with_106() {
    let app = spawn_app().await;
    let body = json!({"name": "Carrier", "country": "LT", "status": "authorized"}).to_string().into_bytes();
    let path = "/v1/admin/holders/TUR%2F012%2F500";
    app.call(Method::PUT, path, Some(&app.admin), Some(body)).await.assert_error(106, "/country");
    let (status, _) = app.get(&app.admin, "/v1/holders/TUR%2F012%2F500").await;
    assert_eq!(status, 404, "nothing was listed");
}

/// Issue 14's finding: an office's UN/LOCODE was not checked against its country.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_whose_unlocode_is_of_another_country_is_refused_with_180() {
    let app = spawn_app().await;
    let office = |unlocode: &str| {
        json!({"code": "LT000009", "country": "LT", "name": "Medininkai", "roles": ["entry"], "unlocode": unlocode})
            .to_string()
            .into_bytes()
    };
    let path = "/v1/admin/offices";
    app.call(Method::POST, path, Some(&app.admin), Some(office("PLKUB"))).await.assert_error(180, "/unlocode");
    let (status, _) = app.get(&app.admin, "/v1/offices/LT000009").await;
    assert_eq!(status, 404, "nothing was listed");
    let listed = app.call(Method::POST, path, Some(&app.admin), Some(office("LTMDK"))).await;
    assert_eq!(listed.status, 201, "{}", listed.text);
}

/// Issue 14's finding: an unknown message type of 250,000 characters was echoed whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_message_type_is_echoed_at_most_32_characters() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let body = json!({"message_id": "m-1", "type": "X".repeat(250_000), "guarantee_reference": "XH25000001"});
    let reply = app.post(&c.chain_a, &body).await;
    reply.assert_error(102, "/type");
    assert!(reply.text.len() < 400, "{} bytes answered", reply.text.len());
}
