//! Every error code of the contract's table (and the few tirhub adds), each
//! provoked over HTTP and checked for its HTTP status, code, class, title and
//! pointer. A code of `tir_model::ErrorCode::ALL` without a case fails the test.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use tir_model::ErrorCode;
use tir_testkit::server::*;

struct Coverage {
    seen: BTreeMap<u16, String>,
}

impl Coverage {
    /// Checks `reply` is the contract error `code` at `pointer`, with its status and title.
    #[track_caller]
    fn check(&mut self, what: &str, reply: Reply, code: u16, pointer: &str) {
        let status = ErrorCode::from_number(code).expect("a contract code").http_status();
        self.check_status(what, reply, status, code, pointer);
    }

    #[track_caller]
    fn check_status(&mut self, what: &str, reply: Reply, status: u16, code: u16, pointer: &str) {
        reply.assert_error_status(status, code, pointer);
        let title = ErrorCode::from_number(code).expect("a contract code").title();
        assert_eq!(reply.json()["error"]["title"], title, "{what}: {}", reply.text);
        self.seen.insert(code, what.to_owned());
    }
}

/// Holders may send one request, and get no other for 100 s.
fn one_holder_request() -> tir_server::RateLimits {
    tir_server::RateLimits { holder: tir_server::RateLimit::new(0.01, 1), ..tir_server::RateLimits::unlimited() }
}

async fn every_code(app: &TestApp, limited: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut cov = Coverage { seen: BTreeMap::new() };
    let r = reference();

    // 1xx: validation (400).
    cov.check("a body that is not JSON", app.post_raw(&c.chain_a, "not json").await, 100, "");
    cov.check("E3 without reason", app.post(&c.chain_a, &message("E3", &r, json!({}))).await, 101, "/reason");
    cov.check("an unknown message type", app.post(&c.chain_a, &message("X99", &r, json!({}))).await, 102, "/type");
    let e1 = message("E1", &r, json!({"holder": HOLDER, "valid_until": "2027-02-30"}));
    cov.check("a date that does not exist", app.post(&c.chain_a, &e1).await, 103, "/valid_until");
    let mut d = declaration();
    d["consignments"][0]["goods"][0]["packages"] = json!(4.5);
    let e9 = message("E9", &r, json!({"declaration": d}));
    cov.check(
        "packages not an integer",
        app.post(&c.holder, &e9).await,
        104,
        "/declaration/consignments/0/goods/0/packages",
    );
    let e3 = message("E3", &r, json!({"reason": "x".repeat(513)}));
    cov.check("a reason over 512 characters", app.post(&c.chain_a, &e3).await, 105, "/reason");
    let mut big = message("E3", &r, json!({"reason": "x"}));
    big["padding"] = json!("p".repeat(256 * 1024));
    cov.check_status("a body over 256 KiB", app.post(&c.chain_a, &big).await, 413, 105, "");
    let e3 = message("E3", "XH1", json!({"reason": "x"}));
    cov.check("a malformed guarantee reference", app.post(&c.chain_a, &e3).await, 106, "/guarantee_reference");
    let mut d = declaration();
    d["itinerary"] = json!(["TR", "TR", "AZ"]);
    let e9 = message("E9", &r, json!({"declaration": d}));
    cov.check("a country following itself", app.post(&c.holder, &e9).await, 180, "/declaration/itinerary/1");
    let mut d = declaration();
    d["itinerary"] = json!(["LT", "PL"]);
    d["offices"] = json!([{"code": "LT000100", "role": "departure"}, {"code": "PL000100", "role": "destination"}]);
    let e9 = message("E9", &r, json!({"declaration": d}));
    cov.check("an itinerary inside the Union", app.post(&c.holder, &e9).await, 181, "/declaration/itinerary");
    cov.check("an unknown route", app.call(Method::GET, "/v1/nothing", Some(&c.tr), None).await, 183, "");
    cov.check("GET on /v1/messages", app.call(Method::GET, "/v1/messages", Some(&c.tr), None).await, 184, "");

    // A transport TR → GE → AZ that GE refuses, to reach the workflow codes.
    let mut trip = Trip::new(app, &c);
    trip.register().await;
    cov.check(
        "E1 again",
        app.post(&c.chain_a, &message("E1", &trip.reference, json!({"holder": HOLDER}))).await,
        204,
        "/guarantee_reference",
    );
    trip.advance().await;
    let e11 = message("E11", &trip.reference, json!({"declaration": declaration(), "country": "TR"}));
    cov.check("E11 naming a country before recording", app.post(&c.holder, &e11).await, 107, "/country");
    trip.accept().await;
    let t = trip.reference.clone();
    let tr = |kind: &str, extra: Value| {
        let mut fields = json!({"office": "TR000100", "reservations": []});
        if let (Some(f), Value::Object(extra)) = (fields.as_object_mut(), extra) {
            f.extend(extra);
        }
        message_of(kind, &t, &fields)
    };
    cov.check("I1 again", app.post(&c.tr, &tr("I1", json!({}))).await, 201, "/guarantee_reference");
    cov.check("I9 before recording", app.post(&c.tr, &tr("I9", json!({}))).await, 220, "/guarantee_reference");
    trip.record().await;
    cov.check("I11 before the start", app.post(&c.tr, &tr("I11", json!({}))).await, 213, "/office");
    cov.check("I17 on the first operation", app.post(&c.tr, &tr("I17", json!({"reason": "no"}))).await, 216, "/office");
    let xray = tr("I9", json!({"controls": [{"type": "xray", "result": "satisfactory"}]}));
    cov.check("a control of an unknown type", app.post(&c.tr, &xray).await, 306, "/controls/0/type");
    let ge_start = message("I9", &t, json!({"office": "GE000100"}));
    cov.check("GE before TR terminated", app.post(&c.ge, &ge_start).await, 281, "/office");
    cov.check(
        "E13 after recording",
        app.post(&c.holder, &message("E13", &t, json!({"reason": "x"}))).await,
        282,
        "/guarantee_reference",
    );
    cov.check("I7 with no amendment waiting", app.post(&c.tr, &tr("I7", json!({}))).await, 283, "/guarantee_reference");
    trip.send_ok(&c.tr, tr("I9", json!({"seals": [SEAL], "operation_id": "OP-1"})), "I10").await;
    cov.check("I9 again", app.post(&c.tr, &tr("I9", json!({}))).await, 210, "/office");
    let late = message(
        "I11",
        &t,
        json!({"office": "TR000100", "reservations": [], "fallback": true, "occurred_at": "2026-01-01T00:00:00Z"}),
    );
    cov.check("I11 recorded in fallback outside any period", app.post(&c.tr, &late).await, 286, "/occurred_at");
    cov.check("I13 before termination", app.post(&c.tr, &tr("I13", json!({}))).await, 285, "/office");
    // 284: amendments requested past the limit, in TR whose operation is started.
    for _ in 0..tir_model::limits::AMENDMENTS_MAX {
        let e11 = message("E11", &t, json!({"declaration": declaration(), "country": "TR"}));
        trip.send_ok(&c.holder, e11, "E12").await;
    }
    let e11 = message("E11", &t, json!({"declaration": declaration(), "country": "TR"}));
    cov.check("one amendment too many", app.post(&c.holder, &e11).await, 284, "/guarantee_reference");
    trip.terminate("TR").await;
    cov.check("I11 again", app.post(&c.tr, &tr("I11", json!({}))).await, 211, "/office");
    let same_id = message("I9", &t, json!({"office": "GE000100", "operation_id": "OP-1"}));
    cov.check("an operation id used already", app.post(&c.ge, &same_id).await, 214, "/operation_id");
    let refuse = message("I17", &t, json!({"office": "GE000100", "reason": "unsafe load"}));
    trip.send_ok(&c.ge, refuse, "I18").await;
    let az_start = message("I9", &t, json!({"office": "AZ000200"}));
    cov.check("a start after a refusal", app.post(&c.az, &az_start).await, 280, "/office");
    trip.discharge("TR").await;
    cov.check("I13 again", app.post(&c.tr, &tr("I13", json!({}))).await, 212, "/office");
    cov.check(
        "E3 on a released guarantee",
        app.post(&c.chain_a, &message("E3", &t, json!({"reason": "x"}))).await,
        203,
        "/guarantee_reference",
    );

    // Cancellation.
    let mut cancelled = Trip::new(app, &c);
    cancelled.register().await;
    let cancel = message("E3", &cancelled.reference, json!({"reason": "x"}));
    cancelled.send_ok(&c.chain_a, cancel, "E4").await;
    let cancel = message("E3", &cancelled.reference, json!({"reason": "x"}));
    cov.check("E3 again", app.post(&c.chain_a, &cancel).await, 205, "/guarantee_reference");

    // 299: the same message_id with another body.
    let first = message("E1", &reference(), json!({"holder": HOLDER}));
    assert_eq!(app.post(&c.chain_a, &first).await.status, 200);
    let mut other = first.clone();
    other["holder"] = json!(OTHER_HOLDER);
    cov.check("a message_id reused", app.post(&c.chain_a, &other).await, 299, "/message_id");

    // 3xx: functional (422), 380 (403), 381 (404), 390 (401).
    let unknown = message("E3", &reference(), json!({"reason": "x"}));
    cov.check("an unknown guarantee", app.post(&c.chain_a, &unknown).await, 301, "/guarantee_reference");
    let mut bare = Trip::new(app, &c);
    bare.register().await;
    let at = |office: &str| message("I1", &bare.reference, json!({"office": office}));
    cov.check("an unknown office", app.post(&c.tr, &at("TR009999")).await, 304, "/office");
    cov.check("an office of no country", app.post(&c.tr, &at("QQ000100")).await, 305, "/office");
    bare.accept().await;
    let record = message("I7", &bare.reference, json!({"office": "TR000100"}));
    cov.check("I7 with no declaration at all", app.post(&c.tr, &record).await, 307, "/declaration");
    let mut d = declaration();
    d["itinerary"] = json!(["TR", "UZ"]);
    d["offices"] =
        json!([{"code": "TR000100", "role": "departure"}, {"code": OFFICE_WITHOUT_CUSTOMS, "role": "destination"}]);
    let mut unserved = Trip::new(app, &c);
    unserved.register().await;
    let e9 = message("E9", &unserved.reference, json!({"declaration": d}));
    cov.check("no customs in UZ", app.post(&c.holder, &e9).await, 308, "/declaration/itinerary/1");
    let e9 = message("E9", &unserved.reference, json!({"declaration": declaration()}));
    cov.check("another holder's guarantee", app.post(&c.other_holder, &e9).await, 320, "/guarantee_reference");
    let e1 = message("E1", &reference(), json!({"holder": WITHDRAWN_HOLDER}));
    cov.check("a withdrawn holder", app.post(&c.chain_a, &e1).await, 321, "/holder");
    let e1 = message("E1", &reference(), json!({"holder": "TUR/012/777"}));
    cov.check("a holder not in the ITDB", app.post(&c.chain_a, &e1).await, 322, "/holder");
    let e3 = message("E3", &unserved.reference, json!({"reason": "x"}));
    cov.check("another chain's guarantee", app.post(&c.chain_b, &e3).await, 331, "/guarantee_reference");
    let am = message("I11", &trip.reference, json!({"office": "AM000100", "reservations": []}));
    cov.check("customs off the itinerary", app.post(&c.am, &am).await, 380, "/guarantee_reference");
    let gone = app.call(Method::DELETE, "/v1/admin/parties/cu_0000000000000000", Some(&app.admin), None).await;
    cov.check("deleting a party that does not exist", gone, 381, "/id");
    let no_token = app.call(Method::GET, "/v1/notifications", None, None).await;
    cov.check("no token", no_token, 390, "");
    // 386: on a second server of the same backend whose holders may send one request.
    let d = Corridor::seed(limited).await;
    let first = limited.get_reply(&d.holder, "/v1/offices/AZ000200").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let second = limited.get_reply(&d.holder, "/v1/offices/AZ000200").await;
    cov.check("a holder past its burst", second, 386, "");

    // 382: a holder with a signing key sends its E9 unsigned.
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let public: String = key.verifying_key().as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let path = format!("/v1/holders/{}/signing-key", encode(OTHER_HOLDER));
    let registered = app
        .call(Method::PUT, &path, Some(&c.other_holder), Some(json!({"public_key": public}).to_string().into()))
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let e9 = message("E9", &reference(), json!({"declaration": declaration()}));
    cov.check("a holder with a key, unsigned", app.post(&c.other_holder, &e9).await, 382, "");

    // 400 last: the store taken away from under the server.
    let store_lost = app.lose_store().await;
    if store_lost {
        let e3 = message("E3", &reference(), json!({"reason": "x"}));
        cov.check("the store is gone", app.post(&c.chain_a, &e3).await, 400, "");
    }

    for code in ErrorCode::ALL.map(ErrorCode::number) {
        if code == 400 && !store_lost {
            eprintln!("400 not checked: this server's store cannot be taken away (not a FaultyStore)");
            continue;
        }
        assert!(
            cov.seen.contains_key(&code),
            "no case provokes {code} ({})",
            ErrorCode::from_number(code).unwrap().title()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_on_sqlite_has_its_status_class_title_and_pointer() {
    // Over a FaultyStore: a SQLite file cannot be taken from a running server, a fault can (code 400).
    every_code(&spawn_app_faulty().await, &spawn_app_limited(one_holder_request()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_on_postgresql_has_its_status_class_title_and_pointer() {
    let (Some(mut app), Some(mut limited)) = (spawn_app_pg().await, spawn_app_pg_limited(one_holder_request()).await)
    else {
        eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
        return;
    };
    every_code(&app, &limited).await;
    app.stop().await;
    limited.stop().await;
}

#[test]
fn the_kit_gives_each_code_the_status_and_class_of_the_model() {
    for code in ErrorCode::ALL {
        assert_eq!(status_of(code.number()), code.http_status(), "{}", code.number());
        assert_eq!(class_of(code.number()), code.class(), "{}", code.number());
    }
}
