//! Binding v2's rules for input (docs/etir-binding.md, "Messages"): one JSON
//! object with no key twice (100), no field the message type does not have
//! (107), `Content-Type: application/json` (415/100), one `Authorization`
//! header (390), the rules for text fields, the feed's `limit`, and the order
//! in which a body breaking several of them is answered.

use reqwest::Method;
use serde_json::{Value, json};

use tir_testkit::server::*;

const JSON: (&str, &str) = ("content-type", "application/json");

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// POST /v1/messages with exactly these headers.
async fn post_with(app: &TestApp, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
    app.call_with_headers(Method::POST, "/v1/messages", headers, Some(body.into())).await
}

fn register(r: &str) -> Value {
    message("E1", r, json!({"holder": HOLDER}))
}

/// An answer given before the body was read closes the connection and says
/// so (`Connection: close`), so a client does not send its next request on a
/// connection the server is closing; an answer after reading it keeps it open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_before_the_body_was_read_says_the_connection_closes() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/messages", app.base);
    for _ in 0..20 {
        let refused = client
            .post(&url)
            .header("authorization", "Bearer not-a-token")
            .body(vec![b' '; 300 * 1024])
            .send()
            .await
            .expect("an answer, not a broken connection");
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.headers().get("connection").map(|v| v.to_str().unwrap()), Some("close"));
        let read = client
            .post(&url)
            .header("authorization", "Bearer not-a-token")
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("the next request on the same client");
        assert_eq!(read.status(), 401);
    }
    let health = client.get(format!("{}/health", app.base)).send().await.expect("an answer");
    assert!(health.headers().get("connection").is_none(), "a GET with no body keeps the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_given_twice_at_any_depth_is_400_with_100_at_that_key() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let r = reference();
    let twice = format!(
        r#"{{"message_id": "{}", "type": "E1", "guarantee_reference": "{r}", "holder": "{HOLDER}", "holder": "{HOLDER}"}}"#,
        message_id()
    );
    app.post_raw(&c.chain_a, twice).await.assert_error(100, "/holder");
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    let mut d = declaration();
    d["vehicle"] = json!({"registration": "34ABC123", "country": "TR"});
    let advance = message("E9", &trip.reference, json!({"declaration": d})).to_string();
    let vehicle = r#""vehicle":{"country":"TR","registration":"34ABC123"}"#;
    let nested = advance.replacen(vehicle, r#""vehicle":{"country":"TR","registration":"34ABC123","country":"GE"}"#, 1);
    assert_ne!(nested, advance, "the vehicle's country is written as the test expects");
    app.post_raw(&c.holder, nested).await.assert_error(100, "/declaration/vehicle/country");
    let goods = advance.replacen(r#""packages":4"#, r#""packages":4,"packages":5"#, 1);
    assert_ne!(goods, advance);
    app.post_raw(&c.holder, goods).await.assert_error(100, "/declaration/consignments/0/goods/0/packages");
    // Admin bodies too.
    let party = br#"{"kind": "guarantee_chain", "name": "A", "name": "B"}"#.to_vec();
    app.call(Method::POST, "/v1/admin/parties", Some(&app.admin), Some(party)).await.assert_error(100, "/name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_the_message_type_does_not_have_is_400_with_107_at_that_field() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let r = reference();
    let cases = [
        (message("E1", &r, json!({"holder": HOLDER, "colour": "red"})), "/colour"),
        // A field of another message type.
        (message("E1", &r, json!({"holder": HOLDER, "office": "TR000100"})), "/office"),
        (message("E1", &r, json!({"holder": HOLDER, "reason": null})), "/reason"),
    ];
    for (body, pointer) in cases {
        app.post(&c.chain_a, &body).await.assert_error(107, pointer);
    }
    // Nothing the contract does not name reaches the journal.
    app.get_reply(&c.chain_a, &format!("/v1/guarantees/{r}")).await.assert_not_found(301, "/reference");

    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut d = declaration();
        edit(&mut d);
        message("E9", &trip.reference, json!({"declaration": d}))
    };
    let nested = [
        (with(&|d| d["notes"] = json!("x")), "/declaration/notes"),
        (with(&|d| d["vehicle"]["colour"] = json!("red")), "/declaration/vehicle/colour"),
        (with(&|d| d["offices"][1]["name"] = json!("x")), "/declaration/offices/1/name"),
        (with(&|d| d["consignments"][0]["weight"] = json!(1)), "/declaration/consignments/0/weight"),
        (
            with(&|d| d["consignments"][0]["consignee"]["city"] = json!("Baku")),
            "/declaration/consignments/0/consignee/city",
        ),
        (with(&|d| d["consignments"][0]["goods"][0]["un"] = json!(1)), "/declaration/consignments/0/goods/0/un"),
        (
            with(&|d| d["consignments"][0]["goods"][0]["value"]["rate"] = json!(1)),
            "/declaration/consignments/0/goods/0/value/rate",
        ),
        (with(&|d| d["a/b"] = json!(1)), "/declaration/a~1b"),
    ];
    for (body, pointer) in nested {
        app.post(&c.holder, &body).await.assert_error(107, pointer);
    }

    let admin = Some(app.admin.as_str());
    let bytes = |v: Value| Some(v.to_string().into_bytes());
    let chain_with_country = json!({"kind": "guarantee_chain", "name": "C", "country": "LT"});
    app.call(Method::POST, "/v1/admin/parties", admin, bytes(chain_with_country)).await.assert_error(107, "/country");
    let office = json!({"code": "LT000001", "country": "LT", "name": "M", "roles": ["entry"], "city": "Vilnius"});
    app.call(Method::POST, "/v1/admin/offices", admin, bytes(office)).await.assert_error(107, "/city");
    let holder = json!({"name": "Carrier", "country": "TR", "status": "authorized", "since": "2020"});
    let path = format!("/v1/admin/holders/{}", encode("TUR/012/777"));
    app.call(Method::PUT, &path, admin, bytes(holder)).await.assert_error(107, "/since");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_whose_content_type_is_not_json_is_415_with_100() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let (auth, token) = bearer(&c.chain_a);
    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/jsonx")]
        .into_iter()
        .chain([Some("application/json; charset=latin1")])
    {
        let mut headers = vec![(auth, token.as_str())];
        headers.extend(content_type.map(|t| ("content-type", t)));
        let reply = post_with(&app, &headers, register(&reference()).to_string()).await;
        reply.assert_error_status(415, 100, "");
    }
    let two = [(auth, token.as_str()), JSON, JSON];
    post_with(&app, &two, register(&reference()).to_string()).await.assert_error_status(415, 100, "");
    for content_type in ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=\"UTF-8\""] {
        let headers = [(auth, token.as_str()), ("content-type", content_type)];
        let reply = post_with(&app, &headers, register(&reference()).to_string()).await;
        assert_eq!(reply.status, 200, "{content_type}: {}", reply.text);
    }
    // Admin bodies, POST and PUT.
    let (auth, admin) = bearer(&app.admin);
    let text = [(auth, admin.as_str()), ("content-type", "text/plain")];
    let party = json!({"kind": "guarantee_chain", "name": "C"}).to_string().into_bytes();
    let reply = app.call_with_headers(Method::POST, "/v1/admin/parties", &text, Some(party.clone())).await;
    reply.assert_error_status(415, 100, "");
    let office = json!({"code": "LT000001", "country": "LT", "name": "M", "roles": ["entry"]});
    let reply =
        app.call_with_headers(Method::POST, "/v1/admin/offices", &text, Some(office.to_string().into_bytes())).await;
    reply.assert_error_status(415, 100, "");
    let holder = json!({"name": "Carrier", "country": "TR", "status": "authorized"}).to_string().into_bytes();
    let path = format!("/v1/admin/holders/{}", encode("TUR/012/777"));
    app.call_with_headers(Method::PUT, &path, &[(auth, admin.as_str())], Some(holder))
        .await
        .assert_error_status(415, 100, "");
    let json = [(auth, admin.as_str()), JSON];
    assert_eq!(app.call_with_headers(Method::POST, "/v1/admin/parties", &json, Some(party)).await.status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_one_authorization_header_is_401_with_390() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let (auth, token) = bearer(&c.chain_a);
    let (_, other) = bearer(&c.chain_b);
    for headers in [
        vec![(auth, token.as_str()), (auth, token.as_str()), JSON],
        vec![(auth, token.as_str()), (auth, other.as_str()), JSON],
    ] {
        post_with(&app, &headers, register(&reference()).to_string()).await.assert_error(390, "");
        let reply = app.call_with_headers(Method::GET, "/v1/notifications", &headers, None).await;
        reply.assert_error(390, "");
    }
    let one = [(auth, token.as_str()), JSON];
    assert_eq!(post_with(&app, &one, register(&reference()).to_string()).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_fields_refuse_control_and_bidirectional_characters_and_blank_text_is_missing() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    let r = trip.reference.clone();
    let cancel = |reason: &str| message("E3", &r, json!({"reason": reason}));
    for reason in ["bell\u{7}", "nul\u{0}", "esc\u{1b}[31m", "next line\u{85}", "\u{202E}dnuof", "a\u{2066}b\u{2069}"] {
        app.post(&c.chain_a, &cancel(reason)).await.assert_error(106, "/reason");
    }
    for reason in ["", "   ", "\u{200B}", "\u{FEFF}\u{2060} \u{00A0}", "\n\t\r\n", "\u{200C}\u{200D}\u{3000}"] {
        app.post(&c.chain_a, &cancel(reason)).await.assert_error(101, "/reason");
    }
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut d = declaration();
        edit(&mut d);
        message("E9", &r, json!({"declaration": d}))
    };
    let cases = [
        (with(&|d| d["vehicle"]["registration"] = json!("34ABC\t123")), 106, "/declaration/vehicle/registration"),
        (with(&|d| d["vehicle"]["registration"] = json!("34ABC\n123")), 106, "/declaration/vehicle/registration"),
        (with(&|d| d["vehicle"]["registration"] = json!("\u{200B}")), 101, "/declaration/vehicle/registration"),
        (with(&|d| d["seals"] = json!(["TR-1\n"])), 106, "/declaration/seals/0"),
        (with(&|d| d["seals"] = json!(["TR-1", " \u{FEFF}"])), 101, "/declaration/seals/1"),
        (
            with(&|d| d["consignments"][0]["goods"][0]["description"] = json!("cars \u{202B}x")),
            106,
            "/declaration/consignments/0/goods/0/description",
        ),
        (
            with(&|d| d["consignments"][0]["consignor"]["name"] = json!("\u{2060}\u{2060}")),
            101,
            "/declaration/consignments/0/consignor/name",
        ),
    ];
    for (body, code, pointer) in cases {
        app.post(&c.holder, &body).await.assert_error(code, pointer);
    }
    // Free text may break lines and hold tabs.
    let multi = with(&|d| d["consignments"][0]["goods"][0]["description"] = json!("Passenger cars:\n\t4 units\r\n"));
    let reply = app.post(&c.holder, &multi).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = app.post(&c.chain_a, &cancel("holder asked\r\n\tsee letter 12")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_limit_that_is_not_a_whole_number_from_1_to_1000_is_400_with_105() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    for limit in ["ten", "0", "1001", "-1", "2.5", "1e2", "%20", "99999999999999999999999"] {
        app.get_reply(&c.tr, &format!("/v1/notifications?limit={limit}")).await.assert_error(105, "/limit");
    }
    for limit in ["1", "1000"] {
        assert_eq!(app.get_reply(&c.tr, &format!("/v1/notifications?limit={limit}")).await.status, 200);
    }
    app.get_reply(&c.tr, "/v1/notifications?after=x1").await.assert_error(106, "/after");
    app.get_reply(&c.tr, "/v1/notifications?after=x1&limit=ten").await.assert_error(106, "/after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_breaking_several_rules_gets_the_first_in_the_contracts_order() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let (auth, token) = bearer(&c.chain_a);
    let me = [(auth, token.as_str())];
    let too_large = vec![b' '; 300 * 1024];
    let malformed = b"{\"message_id\":".to_vec();
    let unknown_twice = format!(
        r#"{{"message_id": "{}", "type": "E1", "guarantee_reference": "{}", "holder": "{HOLDER}", "x": 1, "holder": "{HOLDER}"}}"#,
        message_id(),
        reference()
    );

    // 390 before 413 and 415.
    let nobody = [("authorization", "Bearer not-a-token"), ("content-type", "text/plain")];
    post_with(&app, &nobody, too_large.clone()).await.assert_error(390, "");
    post_with(&app, &nobody, malformed.clone()).await.assert_error(390, "");
    post_with(&app, &[("content-type", "text/plain")], malformed.clone()).await.assert_error(390, "");
    // 413 before 415.
    post_with(&app, &me, too_large.clone()).await.assert_error_status(413, 105, "");
    // 415 before 100.
    post_with(&app, &me, malformed.clone()).await.assert_error_status(415, 100, "");
    post_with(&app, &me, unknown_twice.clone()).await.assert_error_status(415, 100, "");
    // 100 before 107 (and before any other 1xx).
    let json = [(auth, token.as_str()), JSON];
    post_with(&app, &json, unknown_twice).await.assert_error(100, "/holder");
    // The other 1xx in the order of the fields: a known field's error, then an unknown field.
    let r = reference();
    let bad_holder = message("E1", &r, json!({"holder": "TUR-012-345", "x": 1}));
    app.post(&c.chain_a, &bad_holder).await.assert_error(106, "/holder");
    let missing = message("E1", &r, json!({"x": 1}));
    app.post(&c.chain_a, &missing).await.assert_error(101, "/holder");
    let nested_first = message("E9", &r, json!({"declaration": {"itinerary": ["TR", "GE", "AZ"], "y": 1}, "x": 1}));
    app.post(&c.holder, &nested_first).await.assert_error(101, "/declaration/offices");
    // 107 before 301 (no such guarantee) and before 380 (a holder sending I1).
    app.post(&c.tr, &message("I1", &reference(), json!({"office": "TR000100", "x": 1}))).await.assert_error(107, "/x");
    app.post(&c.holder, &message("I1", &r, json!({"office": "TR000100", "x": 1}))).await.assert_error(107, "/x");
    // 107 before the rules of the declaration (180) at the same level.
    let mut off_route = declaration();
    off_route["offices"][1]["code"] = json!("AM000100");
    off_route["remarks"] = json!("x");
    app.post(&c.holder, &message("E9", &r, json!({"declaration": off_route})))
        .await
        .assert_error(107, "/declaration/remarks");
    // 1xx before 301.
    app.post(&c.tr, &message("I1", &reference(), json!({"office": "TR0001"}))).await.assert_error(105, "/office");
    app.post(&c.tr, &message("I1", &reference(), json!({"office": "TR000100"})))
        .await
        .assert_error(301, "/guarantee_reference");
}
