//! Every contract error code, with its status, class and the failing field.

use reqwest::Method;
use serde_json::{Value, json};

use tir_testkit::server::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_are_400_with_their_code_and_the_failing_field() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let r = reference();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"type": "E3", "guarantee_reference": r, "reason": "x"}), 101, "/message_id"),
        (message("E3", &r, json!({})), 101, "/reason"),
        (message("E3", &r, json!({"reason": "   "})), 101, "/reason"),
        (message("I9", &r, json!({})), 101, "/office"),
        (message("E3", "XH1", json!({"reason": "x"})), 106, "/guarantee_reference"),
        (message("E3", &"X".repeat(36), json!({"reason": "x"})), 105, "/guarantee_reference"),
        (message("E3", "XH2500000001", json!({"reason": "x"})), 105, "/guarantee_reference"),
        (message("E3", "XH24000001", json!({"reason": "x"})), 106, "/guarantee_reference"),
        (message("E3", &r, json!({"reason": "x".repeat(513)})), 105, "/reason"),
        (message("I1", &r, json!({"office": "TR0001"})), 105, "/office"),
        (message("E3", "xh12345", json!({"reason": "x"})), 106, "/guarantee_reference"),
        (message("E1", &r, json!({"holder": "TUR-012-345"})), 106, "/holder"),
        (message("E1", &r, json!({"holder": HOLDER, "valid_until": "2027-02-30"})), 103, "/valid_until"),
        (message("E1", &r, json!({"holder": HOLDER, "valid_until": "31.01.2027"})), 103, "/valid_until"),
        (message("E1", &r, json!({"holder": HOLDER, "valid_until": 20270131})), 106, "/valid_until"),
        (message("X99", &r, json!({})), 102, "/type"),
        // A well-formed identifier of no country: 305, a functional error (422).
        (message("I1", &r, json!({"office": "QQ000100"})), 305, "/office"),
        (message("E1", &r, json!({"holder": "QQQ/012/345"})), 305, "/holder"),
    ];
    for (body, code, pointer) in cases {
        app.post(&c.chain_a, &body).await.assert_error(code, pointer);
    }
    let mut id = message("E3", &r, json!({"reason": "x"}));
    id["message_id"] = json!("has space");
    app.post(&c.chain_a, &id).await.assert_error(106, "/message_id");
    id["message_id"] = json!("m".repeat(65));
    app.post(&c.chain_a, &id).await.assert_error(105, "/message_id");

    // Declarations: rules checked while parsing, then against the office list.
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = declaration();
        f(&mut d);
        message("E9", &r, json!({"declaration": d}))
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            with(&|d| d["consignments"][0]["goods"][0]["hs_code"] = json!("999999")),
            102,
            "/declaration/consignments/0/goods/0/hs_code",
        ),
        (
            with(&|d| d["consignments"][0]["goods"][0]["value"]["currency"] = json!("QQQ")),
            102,
            "/declaration/consignments/0/goods/0/value/currency",
        ),
        (with(&|d| d["itinerary"][1] = json!("QQ")), 305, "/declaration/itinerary/1"),
        // v2: a country follows itself, or comes again inside one territory's operation (180);
        // again after a country of another territory it is fine, so TR, GE, TR breaks only
        // the office rule (AZ's office off the itinerary).
        (with(&|d| d["itinerary"] = json!(["TR", "TR", "AZ"])), 180, "/declaration/itinerary/1"),
        (with(&|d| d["itinerary"] = json!(["TR", "BG", "HU", "BG", "AZ"])), 180, "/declaration/itinerary/3"),
        (with(&|d| d["itinerary"] = json!(["TR", "GE", "TR"])), 180, "/declaration/offices/2/code"),
        // Never leaving the first territory: not a TIR transport (181), whatever else is wrong.
        (with(&|d| d["itinerary"] = json!(["LT", "PL", "LT"])), 181, "/declaration/itinerary"),
        (with(&|d| d["itinerary"] = json!(["GE", "TR", "AZ"])), 180, "/declaration/itinerary/0"),
        (with(&|d| d["offices"][1]["code"] = json!("AM000100")), 180, "/declaration/offices/1/code"),
        (with(&|d| d["seals"] = json!(["S1", "S1"])), 180, "/declaration/seals"),
        (
            with(&|d| d["consignments"][0]["goods"][0]["gross_mass_kg"] = json!(0)),
            180,
            "/declaration/consignments/0/goods/0/gross_mass_kg",
        ),
        (
            with(&|d| d["consignments"][0]["goods"][0]["packages"] = json!(4.5)),
            104,
            "/declaration/consignments/0/goods/0/packages",
        ),
        (with(&|d| d["consignments"] = json!([])), 101, "/declaration/consignments"),
        (
            with(&|d| {
                d["offices"] = json!([
                    {"code": "TR000100", "role": "departure"}, {"code": "TR000101", "role": "departure"},
                    {"code": "GE000100", "role": "destination"}, {"code": "AZ000200", "role": "destination"},
                    {"code": "AZ000201", "role": "destination"}
                ])
            }),
            180,
            "/declaration/offices",
        ),
    ];
    for (body, code, pointer) in cases {
        app.post(&c.holder, &body).await.assert_error(code, pointer);
    }

    // Checked against the office list: an unknown office, an office in a role it lacks.
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    let mut unknown = declaration();
    unknown["offices"][2]["code"] = json!("AZ009999");
    let unknown = message("E9", &trip.reference, json!({"declaration": unknown}));
    app.post(&c.holder, &unknown).await.assert_error(304, "/declaration/offices/2/code");
    let mut wrong_role = declaration();
    wrong_role["offices"][1]["role"] = json!("destination");
    let wrong_role = message("E9", &trip.reference, json!({"declaration": wrong_role}));
    app.post(&c.holder, &wrong_role).await.assert_error(180, "/declaration/offices/1/role");

    // The notification query.
    let feed = |q: &str| format!("/v1/notifications?{q}");
    app.get_reply(&c.tr, &feed("limit=0")).await.assert_error(105, "/limit");
    app.get_reply(&c.tr, &feed("limit=1001")).await.assert_error(105, "/limit");
    app.get_reply(&c.tr, &feed("limit=ten")).await.assert_error(105, "/limit");
    app.get_reply(&c.tr, &feed("after=-1")).await.assert_error(106, "/after");
    app.get_reply(&c.tr, &feed("after=abc")).await.assert_error(106, "/after");
    // An empty limit is not 1 to 1000 (schemathesis found it taken as absent); an empty cursor is the start.
    app.get_reply(&c.tr, &feed("after=&limit=")).await.assert_error(105, "/limit");
    app.get_reply(&c.tr, &feed("limit=")).await.assert_error(105, "/limit");
    assert_eq!(app.get_reply(&c.tr, &feed("after=&limit=5")).await.status, 200);
    // Path segments.
    app.get_reply(&c.tr, "/v1/guarantees/xh1234").await.assert_error(106, "/reference");
    app.get_reply(&c.tr, "/v1/guarantees/XH2500000001").await.assert_error(105, "/reference");
    app.get_reply(&c.tr, "/v1/guarantees/%FF%FE").await.assert_error(106, "/reference");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_state_errors_201_to_205_are_409() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;

    // 201: accepting twice; recording before acceptance.
    let mut accepted = Trip::new(&app, &c);
    accepted.register().await;
    accepted.advance().await;
    let early_record = message("I7", &accepted.reference, json!({"office": "TR000100"}));
    app.post(&c.tr, &early_record).await.assert_error(201, "/guarantee_reference");
    accepted.accept().await;
    let again = message("I1", &accepted.reference, json!({"office": "TR000100"}));
    app.post(&c.tr, &again).await.assert_error(201, "/guarantee_reference");

    // 201: a guarantee past its valid_until cannot be accepted.
    let mut expired = Trip::new(&app, &c);
    let register = message("E1", &expired.reference, json!({"holder": HOLDER, "valid_until": "2000-01-31"}));
    assert_eq!(app.post(&c.chain_a, &register).await.status, 200);
    expired.advance().await;
    let accept = message("I1", &expired.reference, json!({"office": "TR000100"}));
    app.post(&c.tr, &accept).await.assert_error(201, "/guarantee_reference");

    // 203: cancelling a released guarantee.
    let mut released = Trip::new(&app, &c);
    released.full().await;
    let cancel = message("E3", &released.reference, json!({"reason": "too late"}));
    app.post(&c.chain_a, &cancel).await.assert_error(203, "/guarantee_reference");

    // 204: registering a reference twice.
    let twice = message("E1", &accepted.reference, json!({"holder": HOLDER}));
    app.post(&c.chain_a, &twice).await.assert_error(204, "/guarantee_reference");

    // 205 and 201: cancelled guarantees, cancelled again or asked to start an operation.
    let mut cancelled = Trip::new(&app, &c);
    cancelled.up_to_recorded().await;
    let cancel = message("E3", &cancelled.reference, json!({"reason": "fraud suspected"}));
    let (status, body) = app.send(&c.chain_a, &cancel).await;
    assert_eq!((status, body["type"].as_str()), (200, Some("E4")), "{body}");
    assert_eq!(body["guarantee"]["state"], "cancelled");
    let cancel_again = message("E3", &cancelled.reference, json!({"reason": "fraud suspected"}));
    app.post(&c.chain_a, &cancel_again).await.assert_error(205, "/guarantee_reference");
    let start = message("I9", &cancelled.reference, json!({"office": "TR000100"}));
    app.post(&c.tr, &start).await.assert_error(201, "/guarantee_reference");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_guarantee_lets_started_operations_finish_but_starts_none() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    trip.start("TR").await;
    let cancel = message("E3", &trip.reference, json!({"reason": "chain withdraws cover"}));
    assert_eq!(app.post(&c.chain_a, &cancel).await.status, 200);
    trip.terminate("TR").await;
    let discharged = trip.discharge("TR").await;
    assert_eq!(discharged["guarantee"]["state"], "cancelled");
    let start = message("I9", &trip.reference, json!({"office": "GE000100"}));
    app.post(&c.ge, &start).await.assert_error(201, "/guarantee_reference");
    let (_, view) = app.get(&c.ge, &trip.path()).await;
    assert_eq!(view["state"], "cancelled");
    assert_eq!(view["transport"]["operations"][0]["state"], "discharged");
    assert_eq!(view["transport"]["operations"][1]["state"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_before_previous_country_terminated_is_rejected_with_281() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    let r = trip.reference.clone();
    let ge_start = || message("I9", &r, json!({"office": "GE000100"}));
    app.post(&c.ge, &ge_start()).await.assert_error(281, "/office");
    trip.start("TR").await;
    app.post(&c.ge, &ge_start()).await.assert_error(281, "/office");
    trip.terminate("TR").await;
    trip.start("GE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_workflow_errors_210_to_285_are_409() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    let r = trip.reference.clone();
    let tr = |kind: &str| message_of(kind, &r, &json!({"office": "TR000100", "reservations": []}));

    // After recording, E11 is an amendment en route, which names its country (101 without).
    let amend = message("E11", &r, json!({"declaration": declaration()}));
    app.post(&c.holder, &amend).await.assert_error(101, "/country");
    // 213: an amendment in a country whose operation has not started.
    let amend = message("E11", &r, json!({"declaration": declaration(), "country": "TR"}));
    app.post(&c.holder, &amend).await.assert_error(213, "/country");
    // 282: advance data can no longer be withdrawn or sent again once recorded.
    let withdraw = message("E13", &r, json!({"reason": "trip cancelled"}));
    app.post(&c.holder, &withdraw).await.assert_error(282, "/guarantee_reference");
    let advance_again = message("E9", &r, json!({"declaration": declaration()}));
    app.post(&c.holder, &advance_again).await.assert_error(282, "/guarantee_reference");
    // 283: after recording, I7 would accept an amendment, and none waits.
    let record_again = message("I7", &r, json!({"office": "TR000100"}));
    app.post(&c.tr, &record_again).await.assert_error(283, "/guarantee_reference");

    // 213: terminating or discharging before the start.
    app.post(&c.tr, &tr("I11")).await.assert_error(213, "/office");
    app.post(&c.tr, &tr("I13")).await.assert_error(213, "/office");
    trip.start("TR").await;
    // 210: starting twice.
    app.post(&c.tr, &message("I9", &r, json!({"office": "TR000100"}))).await.assert_error(210, "/office");
    // 285: discharging an operation not yet terminated.
    app.post(&c.tr, &tr("I13")).await.assert_error(285, "/office");
    trip.terminate("TR").await;
    // 211: terminating twice, starting after termination.
    app.post(&c.tr, &tr("I11")).await.assert_error(211, "/office");
    app.post(&c.tr, &tr("I9")).await.assert_error(211, "/office");

    // 280: GE refuses the start (TR not yet discharged, so the guarantee stays accepted); then
    // every message on GE's operation, and any start after it, is refused with 280.
    let refuse = message("I17", &r, json!({"office": "GE000100", "reason": "unsafe load"}));
    let (status, body) = app.send(&c.ge, &refuse).await;
    assert_eq!((status, body["type"].as_str()), (200, Some("I18")), "{body}");
    assert_eq!(body["guarantee"]["state"], "accepted");
    let ge = |kind: &str| message_of(kind, &r, &json!({"office": "GE000100", "reason": "again", "reservations": []}));
    for kind in ["I9", "I11", "I13", "I17"] {
        app.post(&c.ge, &ge(kind)).await.assert_error(280, "/office");
    }
    let az_start = message("I9", &r, json!({"office": "AZ000200"}));
    app.post(&c.az, &az_start).await.assert_error(280, "/office");

    // 212: anything after discharge; the refusal ended the transport.
    let (_, body) = app.send(&c.tr, &tr("I13")).await;
    assert_eq!(body["guarantee"]["state"], "released", "{body}");
    app.post(&c.tr, &tr("I13")).await.assert_error(212, "/office");
    app.post(&c.tr, &tr("I11")).await.assert_error(212, "/office");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaration_not_yet_recorded_is_220() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_accepted().await;
    let r = trip.reference.clone();
    for (kind, fields) in [
        ("I9", json!({"office": "TR000100"})),
        ("I11", json!({"office": "TR000100", "reservations": []})),
        ("I13", json!({"office": "TR000100"})),
        ("I17", json!({"office": "TR000100", "reason": "x"})),
    ] {
        app.post(&c.tr, &message(kind, &r, fields)).await.assert_error(220, "/guarantee_reference");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functional_errors_301_to_331_are_422() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;

    // 304: an office that is not registered.
    let mut advanced = Trip::new(&app, &c);
    advanced.register().await;
    advanced.advance().await;
    let accept = message("I1", &advanced.reference, json!({"office": "TR009999"}));
    app.post(&c.tr, &accept).await.assert_error(304, "/office");

    // 307: no declaration at all, amending or withdrawing absent advance data. Without
    // advance data I1 is accepted (a declaration lodged nationally), but I7 must then carry
    // the declaration.
    let mut bare = Trip::new(&app, &c);
    bare.register().await;
    let accept = message("I1", &bare.reference, json!({"office": "TR000100"}));
    let (status, body) = app.send(&c.tr, &accept).await;
    assert_eq!((status, body["type"].as_str()), (200, Some("I2")), "{body}");
    let record = message("I7", &bare.reference, json!({"office": "TR000100"}));
    app.post(&c.tr, &record).await.assert_error(307, "/declaration");
    let amend = message("E11", &bare.reference, json!({"declaration": declaration()}));
    app.post(&c.holder, &amend).await.assert_error(307, "/guarantee_reference");
    let withdraw = message("E13", &bare.reference, json!({"reason": "nothing to withdraw"}));
    app.post(&c.holder, &withdraw).await.assert_error(307, "/guarantee_reference");

    // 320: another holder.
    let advance = message("E9", &bare.reference, json!({"declaration": declaration()}));
    app.post(&c.other_holder, &advance).await.assert_error(320, "/guarantee_reference");

    // 321 and 322: the ITDB decides who may hold a guarantee.
    let withdrawn = message("E1", &reference(), json!({"holder": WITHDRAWN_HOLDER}));
    app.post(&c.chain_a, &withdrawn).await.assert_error(321, "/holder");
    let unlisted = message("E1", &reference(), json!({"holder": "TUR/012/777"}));
    app.post(&c.chain_a, &unlisted).await.assert_error(322, "/holder");

    // 331: another chain.
    let cancel = message("E3", &bare.reference, json!({"reason": "not mine"}));
    app.post(&c.chain_b, &cancel).await.assert_error(331, "/guarantee_reference");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holder_withdrawn_after_registration_gets_321_on_its_messages() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    app.put_holder(HOLDER, "withdrawn").await;
    let advance = message("E9", &trip.reference, json!({"declaration": declaration()}));
    app.post(&c.holder, &advance).await.assert_error(321, "/guarantee_reference");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_message_id_with_another_body_is_409_with_299() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let first = message("E1", &reference(), json!({"holder": HOLDER}));
    assert_eq!(app.post(&c.chain_a, &first).await.status, 200);
    let mut other = first.clone();
    other["holder"] = json!(OTHER_HOLDER);
    app.post(&c.chain_a, &other).await.assert_error(299, "/message_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_guarantee_is_301_422_in_a_message_and_404_on_a_route() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let r = reference();
    app.post(&c.tr, &message("I1", &r, json!({"office": "TR000100"}))).await.assert_error(301, "/guarantee_reference");
    app.post(&c.chain_a, &message("E3", &r, json!({"reason": "x"}))).await.assert_error(301, "/guarantee_reference");
    app.post(&c.holder, &message("E9", &r, json!({"declaration": declaration()})))
        .await
        .assert_error(301, "/guarantee_reference");
    for path in [
        format!("/v1/guarantees/{r}"),
        format!("/v1/guarantees/{r}/declaration"),
        format!("/v1/guarantees/{r}/timeline"),
    ] {
        app.get_reply(&c.chain_a, &path).await.assert_not_found(301, "/reference");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unknown_token_is_401_with_390() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let body = message("E1", &reference(), json!({"holder": HOLDER})).to_string().into_bytes();
    let routes = [
        (Method::POST, "/v1/messages", Some(body)),
        (Method::GET, "/v1/guarantees/XH123456789", None),
        (Method::GET, "/v1/holders/TUR%2F012%2F345", None),
        (Method::GET, "/v1/offices/TR000100", None),
        (Method::GET, "/v1/notifications", None),
        (Method::GET, "/v1/admin/journal/verify", None),
        (Method::POST, "/v1/admin/parties", Some(br#"{"kind":"guarantee_chain","name":"x"}"#.to_vec())),
    ];
    let altered = format!("{}x", c.tr);
    for (method, path, body) in routes {
        for token in [None, Some("not-a-token"), Some(""), Some(altered.as_str())] {
            let reply = app.call(method.clone(), path, token, body.clone()).await;
            reply.assert_error(390, "");
        }
    }
    // A scheme other than Bearer is no token either.
    let reply = app
        .client
        .get(format!("{}/v1/notifications", app.base))
        .header("authorization", format!("Basic {}", c.tr))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_256_kib_is_413_with_105() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut big = message("E3", &reference(), json!({"reason": "x"}));
    big["padding"] = json!("p".repeat(256 * 1024));
    let reply = app.post(&c.chain_a, &big).await;
    reply.assert_error_status(413, 105, "");
    let reply = app.call(Method::POST, "/v1/admin/parties", Some(&app.admin), Some(vec![b' '; 300 * 1024])).await;
    reply.assert_error_status(413, 105, "");

    // At the limit the body is read and judged on its content; one byte more is too much.
    let limit = 256 * 1024;
    let padded = |len: usize| {
        let mut body = message("E1", &reference(), json!({"holder": HOLDER})).to_string().into_bytes();
        body.resize(len, b' ');
        body
    };
    let at_limit = app.post_raw(&c.chain_a, padded(limit)).await;
    assert_eq!(at_limit.status, 200, "{}", at_limit.text);
    app.post_raw(&c.chain_a, padded(limit + 1)).await.assert_error_status(413, 105, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_with_184_and_unknown_route_is_404_with_183() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    for (method, path) in [
        (Method::GET, "/v1/messages"),
        (Method::PUT, "/v1/messages"),
        (Method::DELETE, "/v1/guarantees/XH123456789"),
        (Method::POST, "/v1/notifications"),
        (Method::GET, "/v1/admin/parties"),
        (Method::POST, "/v1/admin/holders/TUR%2F012%2F345"),
    ] {
        app.call(method, path, Some(&c.tr), None).await.assert_error(184, "");
    }
    for path in ["/v1/nothing", "/v2/messages", "/v1/guarantees", "/"] {
        app.call(Method::GET, path, Some(&c.tr), None).await.assert_error(183, "");
    }
}
