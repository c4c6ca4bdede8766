//! The eTIR binding (docs/etir-binding.md) exercised over real HTTP, one
//! fresh server and store per test.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;

// ---------------------------------------------------------------- transport

fn events(feed: &[Value]) -> Vec<(String, String, String)> {
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
    for (op, (country, office)) in operations.iter().zip(ROUTE) {
        assert_eq!(op["country"], country);
        assert_eq!(op["state"], "discharged", "{op}");
        assert_eq!(op["office"], office);
        assert!(op["started_at"].is_string() && op["terminated_at"].is_string(), "{op}");
        assert_eq!(op["reservations"], json!([]));
    }
    // The response message carries the same views as the query.
    assert_eq!(last["guarantee"], view);
    assert_eq!(last["transport"], view["transport"]);

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

// ------------------------------------------------------------------- errors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_errors_are_400_with_their_code_and_the_failing_field() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let r = reference();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"type": "E3", "guarantee_reference": r, "reason": "x"}), 101, "/message_id"),
        (message("E3", &r, json!({})), 101, "/reason"),
        (message("E3", &r, json!({"reason": "   "})), 101, "/reason"),
        (message("I9", &r, json!({})), 101, "/office"),
        (message("E3", "XH1", json!({"reason": "x"})), 105, "/guarantee_reference"),
        (message("E3", &"X".repeat(36), json!({"reason": "x"})), 105, "/guarantee_reference"),
        (message("E3", &r, json!({"reason": "x".repeat(513)})), 105, "/reason"),
        (message("I1", &r, json!({"office": "TR0001"})), 105, "/office"),
        (message("E3", "xh12345", json!({"reason": "x"})), 106, "/guarantee_reference"),
        (message("E1", &r, json!({"holder": "TUR-012-345"})), 106, "/holder"),
        (message("E1", &r, json!({"holder": HOLDER, "valid_until": "2027-02-30"})), 106, "/valid_until"),
        (message("X99", &r, json!({})), 110, "/type"),
        (message("I1", &r, json!({"office": "QQ000100"})), 110, "/office"),
        (message("E1", &r, json!({"holder": "QQQ/012/345"})), 110, "/holder"),
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
            110,
            "/declaration/consignments/0/goods/0/hs_code",
        ),
        (
            with(&|d| d["consignments"][0]["goods"][0]["value"]["currency"] = json!("QQQ")),
            110,
            "/declaration/consignments/0/goods/0/value/currency",
        ),
        (with(&|d| d["itinerary"][1] = json!("QQ")), 110, "/declaration/itinerary/1"),
        (with(&|d| d["itinerary"] = json!(["TR", "GE", "TR"])), 111, "/declaration/itinerary/2"),
        (with(&|d| d["itinerary"] = json!(["GE", "TR", "AZ"])), 111, "/declaration/itinerary/0"),
        (with(&|d| d["offices"][1]["code"] = json!("AM000100")), 111, "/declaration/offices/1/code"),
        (with(&|d| d["seals"] = json!(["S1", "S1"])), 111, "/declaration/seals"),
        (
            with(&|d| d["consignments"][0]["goods"][0]["gross_mass_kg"] = json!(0)),
            106,
            "/declaration/consignments/0/goods/0/gross_mass_kg",
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
            111,
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
    app.post(&c.holder, &unknown).await.assert_error(110, "/declaration/offices/2/code");
    let mut wrong_role = declaration();
    wrong_role["offices"][1]["role"] = json!("destination");
    let wrong_role = message("E9", &trip.reference, json!({"declaration": wrong_role}));
    app.post(&c.holder, &wrong_role).await.assert_error(111, "/declaration/offices/1/role");

    // The notification query.
    let feed = |q: &str| format!("/v1/notifications?{q}");
    app.get_reply(&c.tr, &feed("limit=0")).await.assert_error(105, "/limit");
    app.get_reply(&c.tr, &feed("limit=1001")).await.assert_error(105, "/limit");
    app.get_reply(&c.tr, &feed("limit=ten")).await.assert_error(106, "/limit");
    app.get_reply(&c.tr, &feed("after=-1")).await.assert_error(106, "/after");
    app.get_reply(&c.tr, &feed("after=abc")).await.assert_error(106, "/after");
    // Path segments.
    app.get_reply(&c.tr, "/v1/guarantees/xh1234").await.assert_error(106, "/reference");
    app.get_reply(&c.tr, "/v1/guarantees/XH1").await.assert_error(105, "/reference");
    app.get_reply(&c.tr, "/v1/guarantees/%FF%FE").await.assert_error(106, "/reference");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_state_errors_201_to_206_are_409() {
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

    // 205 and 206: cancelled guarantees.
    let mut cancelled = Trip::new(&app, &c);
    cancelled.up_to_recorded().await;
    let cancel = message("E3", &cancelled.reference, json!({"reason": "fraud suspected"}));
    let (status, body) = app.send(&c.chain_a, &cancel).await;
    assert_eq!((status, body["type"].as_str()), (200, Some("E4")), "{body}");
    assert_eq!(body["guarantee"]["state"], "cancelled");
    let cancel_again = message("E3", &cancelled.reference, json!({"reason": "fraud suspected"}));
    app.post(&c.chain_a, &cancel_again).await.assert_error(205, "/guarantee_reference");
    let start = message("I9", &cancelled.reference, json!({"office": "TR000100"}));
    app.post(&c.tr, &start).await.assert_error(206, "/guarantee_reference");
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
    app.post(&c.ge, &start).await.assert_error(206, "/guarantee_reference");
    let (_, view) = app.get(&c.ge, &trip.path()).await;
    assert_eq!(view["state"], "cancelled");
    assert_eq!(view["transport"]["operations"][0]["state"], "discharged");
    assert_eq!(view["transport"]["operations"][1]["state"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_before_previous_country_terminated_is_rejected_with_215() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    let r = trip.reference.clone();
    let ge_start = || message("I9", &r, json!({"office": "GE000100"}));
    app.post(&c.ge, &ge_start()).await.assert_error(215, "/office");
    trip.start("TR").await;
    app.post(&c.ge, &ge_start()).await.assert_error(215, "/office");
    trip.terminate("TR").await;
    trip.start("GE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_workflow_errors_210_to_216_are_409() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    let r = trip.reference.clone();
    let tr = |kind: &str| message(kind, &r, json!({"office": "TR000100", "reservations": []}));

    // 216: advance data can no longer change once recorded.
    let amend = message("E11", &r, json!({"declaration": declaration()}));
    app.post(&c.holder, &amend).await.assert_error(216, "/guarantee_reference");
    let withdraw = message("E13", &r, json!({"reason": "trip cancelled"}));
    app.post(&c.holder, &withdraw).await.assert_error(216, "/guarantee_reference");
    let record_again = message("I7", &r, json!({"office": "TR000100"}));
    app.post(&c.tr, &record_again).await.assert_error(216, "/guarantee_reference");

    // 213: terminating or discharging before the start.
    app.post(&c.tr, &tr("I11")).await.assert_error(213, "/office");
    app.post(&c.tr, &tr("I13")).await.assert_error(213, "/office");
    trip.start("TR").await;
    // 210: starting twice.
    app.post(&c.tr, &message("I9", &r, json!({"office": "TR000100"}))).await.assert_error(210, "/office");
    trip.terminate("TR").await;
    // 211: terminating twice, starting after termination.
    app.post(&c.tr, &tr("I11")).await.assert_error(211, "/office");
    app.post(&c.tr, &tr("I9")).await.assert_error(211, "/office");

    // 214: GE refuses the start (TR not yet discharged, so the guarantee stays accepted).
    let refuse = message("I17", &r, json!({"office": "GE000100", "reason": "unsafe load"}));
    let (status, body) = app.send(&c.ge, &refuse).await;
    assert_eq!((status, body["type"].as_str()), (200, Some("I18")), "{body}");
    assert_eq!(body["guarantee"]["state"], "accepted");
    let ge = |kind: &str| message(kind, &r, json!({"office": "GE000100", "reason": "again", "reservations": []}));
    for kind in ["I9", "I11", "I13", "I17"] {
        app.post(&c.ge, &ge(kind)).await.assert_error(214, "/office");
    }

    // 212: anything after discharge; the refusal ended the transport.
    let (_, body) = app.send(&c.tr, &tr("I13")).await;
    assert_eq!(body["guarantee"]["state"], "released", "{body}");
    app.post(&c.tr, &tr("I13")).await.assert_error(212, "/office");
    app.post(&c.tr, &tr("I11")).await.assert_error(212, "/office");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_errors_307_to_330_are_422() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;

    // 307: no declaration at all, amending or withdrawing absent advance data.
    let mut bare = Trip::new(&app, &c);
    bare.register().await;
    let accept = message("I1", &bare.reference, json!({"office": "TR000100"}));
    app.post(&c.tr, &accept).await.assert_error(307, "/guarantee_reference");
    let amend = message("E11", &bare.reference, json!({"declaration": declaration()}));
    app.post(&c.holder, &amend).await.assert_error(307, "/guarantee_reference");
    let withdraw = message("E13", &bare.reference, json!({"reason": "nothing to withdraw"}));
    app.post(&c.holder, &withdraw).await.assert_error(307, "/guarantee_reference");

    // 309: seals that differ from the declaration.
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    for seals in [json!(["TR-000000"]), json!([]), json!([SEAL, "TR-884212"])] {
        let start = message("I9", &trip.reference, json!({"office": "TR000100", "seals": seals}));
        app.post(&c.tr, &start).await.assert_error(309, "/seals");
    }

    // 320: another holder.
    let advance = message("E9", &bare.reference, json!({"declaration": declaration()}));
    app.post(&c.other_holder, &advance).await.assert_error(320, "/guarantee_reference");

    // 321 and 322: the ITDB decides who may hold a guarantee.
    let withdrawn = message("E1", &reference(), json!({"holder": WITHDRAWN_HOLDER}));
    app.post(&c.chain_a, &withdrawn).await.assert_error(321, "/holder");
    let unlisted = message("E1", &reference(), json!({"holder": "TUR/012/777"}));
    app.post(&c.chain_a, &unlisted).await.assert_error(322, "/holder");

    // 330: another chain.
    let cancel = message("E3", &bare.reference, json!({"reason": "not mine"}));
    app.post(&c.chain_b, &cancel).await.assert_error(330, "/guarantee_reference");
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
async fn reused_message_id_with_another_body_is_409_with_340() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let first = message("E1", &reference(), json!({"holder": HOLDER}));
    assert_eq!(app.post(&c.chain_a, &first).await.status, 200);
    let mut other = first.clone();
    other["holder"] = json!(OTHER_HOLDER);
    app.post(&c.chain_a, &other).await.assert_error(340, "/message_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_guarantee_is_404_with_404() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let r = reference();
    app.post(&c.tr, &message("I1", &r, json!({"office": "TR000100"}))).await.assert_error(404, "/guarantee_reference");
    app.post(&c.chain_a, &message("E3", &r, json!({"reason": "x"}))).await.assert_error(404, "/guarantee_reference");
    app.post(&c.holder, &message("E9", &r, json!({"declaration": declaration()})))
        .await
        .assert_error(404, "/guarantee_reference");
    app.get_reply(&c.chain_a, &format!("/v1/guarantees/{r}")).await.assert_error(404, "/reference");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unknown_token_is_401() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let body = message("E1", &reference(), json!({"holder": HOLDER})).to_string().into_bytes();
    let routes = [
        (Method::POST, "/v1/messages", Some(body)),
        (Method::GET, "/v1/guarantees/XH12345678", None),
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
            reply.assert_error(401, "");
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
async fn body_over_256_kib_is_413() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut big = message("E3", &reference(), json!({"reason": "x"}));
    big["padding"] = json!("p".repeat(256 * 1024));
    let reply = app.post(&c.chain_a, &big).await;
    reply.assert_error(413, "");
    let reply = app.call(Method::POST, "/v1/admin/parties", Some(&app.admin), Some(vec![b' '; 300 * 1024])).await;
    reply.assert_error(413, "");

    // At the limit the body is read and judged on its content; one byte more is too much.
    let limit = 256 * 1024;
    let padded = |len: usize| {
        let mut body = message("E1", &reference(), json!({"holder": HOLDER})).to_string().into_bytes();
        body.resize(len, b' ');
        body
    };
    let at_limit = app.post_raw(&c.chain_a, padded(limit)).await;
    assert_eq!(at_limit.status, 200, "{}", at_limit.text);
    app.post_raw(&c.chain_a, padded(limit + 1)).await.assert_error(413, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_and_unknown_route_is_404() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    for (method, path) in [
        (Method::GET, "/v1/messages"),
        (Method::PUT, "/v1/messages"),
        (Method::DELETE, "/v1/guarantees/XH12345678"),
        (Method::POST, "/v1/notifications"),
        (Method::GET, "/v1/admin/parties"),
        (Method::POST, "/v1/admin/holders/TUR%2F012%2F345"),
    ] {
        app.call(method, path, Some(&c.tr), None).await.assert_error(405, "");
    }
    for path in ["/v1/nothing", "/v2/messages", "/v1/guarantees", "/"] {
        app.call(Method::GET, path, Some(&c.tr), None).await.assert_error(404, "");
    }
}

// ------------------------------------------------------------ authorization

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customs_off_the_itinerary_can_neither_read_nor_act_even_through_its_own_office() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    app.get_reply(&c.am, &trip.path()).await.assert_error(360, "/reference");
    let fields = json!({"office": "AM000100", "reservations": [], "reason": "no", "seals": [SEAL]});
    for kind in ["I1", "I7", "I9", "I11", "I13", "I17"] {
        let body = message(kind, &trip.reference, fields.clone());
        app.post(&c.am, &body).await.assert_error(360, "/guarantee_reference");
    }
    // With advance data only, the itinerary already decides.
    let mut early = Trip::new(&app, &c);
    early.register().await;
    early.advance().await;
    app.get_reply(&c.am, &early.path()).await.assert_error(360, "/reference");
    app.post(&c.am, &message("I1", &early.reference, json!({"office": "AM000100"})))
        .await
        .assert_error(360, "/guarantee_reference");
    // Customs on the itinerary do read it.
    for (country, _) in ROUTE {
        assert_eq!(app.get_reply(c.customs(country), &trip.path()).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customs_off_the_itinerary_cannot_record_its_own_declaration_on_a_guarantee_accepted_elsewhere() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    trip.advance().await;
    trip.accept().await;
    // AM is on neither the advance data nor the acceptance: an I7 naming itself must not let it in.
    let mut own = declaration();
    own["itinerary"] = json!(["AM", "GE", "AZ"]);
    own["offices"][0]["code"] = json!("AM000100");
    let hijack = message("I7", &trip.reference, json!({"office": "AM000100", "declaration": own}));
    let reply = app.post(&c.am, &hijack).await;
    let body = reply.json();
    assert_eq!((reply.status, body["error"]["code"].as_u64()), (403, Some(360)), "{}", reply.text);
    assert!(matches!(body["error"]["pointer"].as_str(), Some("/guarantee_reference" | "/office")), "{body}");
    // The customs that accepted the guarantee still owns the transport.
    let (status, view) = app.get(&c.tr, &trip.path()).await;
    assert_eq!((status, &view["transport"]["itinerary"]), (200, &json!(["TR", "GE", "AZ"])), "{view}");
    trip.record().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departure_customs_may_record_a_declaration_other_than_the_advance_data() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    trip.advance().await;
    trip.accept().await;
    let mut own = declaration();
    own["seals"] = json!(["TR-999999"]);
    let record = message("I7", &trip.reference, json!({"office": "TR000100", "declaration": own}));
    let (status, body) = app.send(&c.tr, &record).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["transport"]["declaration_state"], "recorded");
    let (status, recorded) = app.get(&c.tr, &format!("/v1/guarantees/{}/declaration", trip.reference)).await;
    assert_eq!(status, 200, "{recorded}");
    assert_eq!(recorded["declaration"]["seals"], json!(["TR-999999"]));
    let start = message("I9", &trip.reference, json!({"office": "TR000100", "seals": [SEAL]}));
    app.post(&c.tr, &start).await.assert_error(309, "/seals");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customs_acting_through_another_countrys_office_is_403_with_360() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    trip.advance().await;
    let r = trip.reference.clone();
    let fields = |office: &str| json!({"office": office, "reservations": [], "reason": "no"});
    app.post(&c.ge, &message("I1", &r, fields("TR000100"))).await.assert_error(360, "/office");
    app.post(&c.am, &message("I1", &r, fields("TR000100"))).await.assert_error(360, "/office");
    trip.accept().await;
    trip.record().await;
    for kind in ["I1", "I7", "I9", "I11", "I13", "I17"] {
        app.post(&c.tr, &message(kind, &r, fields("GE000100"))).await.assert_error(360, "/office");
        app.post(&c.ge, &message(kind, &r, fields("TR000100"))).await.assert_error(360, "/office");
        app.post(&c.az, &message(kind, &r, fields("GE000100"))).await.assert_error(360, "/office");
    }
    // Only a departure office of the declaration accepts the guarantee.
    let mut other = Trip::new(&app, &c);
    other.register().await;
    other.advance().await;
    app.post(&c.ge, &message("I1", &other.reference, fields("GE000100"))).await.assert_error(360, "/office");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offices_in_the_wrong_role_cannot_start_or_terminate_and_get_403_with_360() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    app.office("TR000300", &["exit"]).await;
    app.office("GE000300", &["exit"]).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    let r = trip.reference.clone();
    // An exit-only office neither starts the first operation nor refuses to.
    app.post(&c.tr, &message("I9", &r, json!({"office": "TR000300"}))).await.assert_error(360, "/office");
    app.post(&c.tr, &message("I17", &r, json!({"office": "TR000300", "reason": "no"})))
        .await
        .assert_error(360, "/office");
    trip.start("TR").await;
    // ...but the transport may leave the country through it.
    let (status, body) = app.send(&c.tr, &message("I11", &r, json!({"office": "TR000300", "reservations": []}))).await;
    assert_eq!(status, 200, "{body}");
    app.post(&c.ge, &message("I9", &r, json!({"office": "GE000300"}))).await.assert_error(360, "/office");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holder_can_neither_read_nor_act_on_another_holders_guarantee() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    assert_eq!(app.get_reply(&c.holder, &trip.path()).await.status, 200);
    app.get_reply(&c.other_holder, &trip.path()).await.assert_error(360, "/reference");
    for (kind, fields) in [
        ("E9", json!({"declaration": declaration()})),
        ("E11", json!({"declaration": declaration()})),
        ("E13", json!({"reason": "mine now"})),
    ] {
        let body = message(kind, &trip.reference, fields);
        app.post(&c.other_holder, &body).await.assert_error(320, "/guarantee_reference");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_can_neither_read_nor_cancel_another_chains_guarantee() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    app.get_reply(&c.chain_b, &trip.path()).await.assert_error(360, "/reference");
    let cancel = message("E3", &trip.reference, json!({"reason": "not mine"}));
    app.post(&c.chain_b, &cancel).await.assert_error(330, "/guarantee_reference");
    let (_, view) = app.get(&c.chain_a, &trip.path()).await;
    assert_eq!(view["state"], "registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_admins_get_403_with_360_on_every_admin_route() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let writes_before = app.admin_writes();
    for token in [&c.tr, &c.chain_a, &c.holder] {
        let party = json!({"kind": "guarantee_chain", "name": "sneaky"}).to_string().into_bytes();
        let office =
            json!({"code": "TR000999", "country": "TR", "name": "x", "roles": ["exit"]}).to_string().into_bytes();
        let holder = json!({"name": "x", "country": "TR", "status": "authorized"}).to_string().into_bytes();
        let routes = [
            (Method::POST, "/v1/admin/parties", Some(party)),
            (Method::POST, "/v1/admin/offices", Some(office)),
            (Method::PUT, "/v1/admin/holders/TUR%2F012%2F999", Some(holder)),
            (Method::GET, "/v1/admin/journal/verify", None),
            (Method::DELETE, "/v1/admin/parties/gc_0123456789abcdef", None),
        ];
        for (method, path, body) in routes {
            app.call(method, path, Some(token), body).await.assert_error(360, "");
        }
    }
    assert_eq!(app.admin_writes(), writes_before);
    let (_, office) = app.get(&c.tr, "/v1/offices/TR000999").await;
    assert_eq!(office["error"]["code"], 404, "the office was not created");
    let (_, holder) = app.get(&c.tr, "/v1/holders/TUR%2F012%2F999").await;
    assert_eq!(holder["status"], "withdrawn", "the ITDB entry did not change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn party_sending_another_kinds_message_type_is_403_with_360() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    trip.advance().await;
    let r = trip.reference.clone();
    let all = json!({"office": "TR000100", "reason": "x", "reservations": [], "holder": HOLDER, "declaration": declaration()});
    let cases: [(&str, &[&str]); 4] = [
        (&c.holder, &["I1", "I7", "I9", "I11", "I13", "I17", "E1", "E3"]),
        (&c.chain_a, &["I1", "I7", "I9", "E9", "E11", "E13"]),
        (&c.tr, &["E1", "E3", "E9", "E11", "E13"]),
        (&app.admin, &["E1", "I1", "E9"]),
    ];
    for (token, kinds) in cases {
        for kind in kinds {
            app.post(token, &message(kind, &r, all.clone())).await.assert_error(360, "/type");
        }
    }
    let (_, view) = app.get(&c.chain_a, &trip.path()).await;
    assert_eq!(view["state"], "registered");
}

// -------------------------------------------------------------- idempotency

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
async fn same_message_id_with_another_body_is_409_with_340_and_the_original_answer_stays() {
    let mut app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    trip.start("TR").await;
    let start = trip.sent.last().unwrap().clone();
    let mut changed = start.body.clone();
    changed["seals"] = json!(["TR-000000"]);
    app.post(&c.tr, &changed).await.assert_error(340, "/message_id");
    let mut other_type = start.body.clone();
    other_type["type"] = json!("I17");
    other_type["reason"] = json!("changed my mind");
    app.post(&c.tr, &other_type).await.assert_error(340, "/message_id");
    let mut dropped = start.body.clone();
    dropped.as_object_mut().unwrap().remove("seals");
    app.post(&c.tr, &dropped).await.assert_error(340, "/message_id");

    app.restart().await;
    app.post(&c.tr, &changed).await.assert_error(340, "/message_id");
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

// --------------------------------------------------------------- robustness

/// Every valid message type with every optional field present.
fn templates(r: &str) -> Vec<Value> {
    vec![
        message("E1", r, json!({"holder": HOLDER, "valid_until": "2099-12-31"})),
        message("E3", r, json!({"reason": "fraud"})),
        message("E9", r, json!({"declaration": declaration()})),
        message("E11", r, json!({"declaration": declaration()})),
        message("E13", r, json!({"reason": "trip cancelled"})),
        message("I1", r, json!({"office": "TR000100"})),
        message("I7", r, json!({"office": "TR000100", "declaration": declaration()})),
        message("I9", r, json!({"office": "TR000100", "seals": [SEAL]})),
        message("I11", r, json!({"office": "GE000100", "reservations": ["seal scratched"]})),
        message("I13", r, json!({"office": "GE000100"})),
        message("I17", r, json!({"office": "GE000100", "reason": "unsafe load"})),
    ]
}

/// Every JSON pointer below the root.
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(map) => map.iter().map(|(k, v)| (format!("{at}/{k}"), v)).collect(),
        Value::Array(items) => items.iter().enumerate().map(|(i, v)| (format!("{at}/{i}"), v)).collect(),
        _ => Vec::new(),
    };
    for (pointer, child) in children {
        out.push(pointer.clone());
        pointers(child, &pointer, out);
    }
}

fn wrong_types(v: &Value) -> Vec<Value> {
    match v {
        Value::String(_) => vec![json!(7), json!(true), json!({}), json!(["x"])],
        Value::Number(_) => vec![json!("7"), json!(true), json!({}), json!([1])],
        Value::Array(_) => vec![json!("x"), json!(7), json!({})],
        Value::Object(_) => vec![json!("x"), json!(7), json!([])],
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_type_for_any_field_of_any_message_is_400_with_106_at_that_field() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut checked = 0;
    for template in templates(&reference()) {
        let mut all = Vec::new();
        pointers(&template, "", &mut all);
        for pointer in all {
            let original = template.pointer(&pointer).unwrap().clone();
            for wrong in wrong_types(&original) {
                let mut body = template.clone();
                *body.pointer_mut(&pointer).unwrap() = wrong.clone();
                body["message_id"] = json!(message_id());
                if pointer == "/message_id" {
                    body["message_id"] = wrong.clone();
                }
                let reply = app.post(&c.chain_a, &body).await;
                let context = format!("{} {pointer} = {wrong}", template["type"]);
                assert_eq!(reply.status, 400, "{context}: {}", reply.text);
                let error = &reply.json()["error"];
                assert_eq!(
                    (error["code"].as_u64(), error["pointer"].as_str()),
                    (Some(106), Some(&*pointer)),
                    "{context}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "walked {checked} fields");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_non_object_bodies_are_400_with_106() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let bodies: [&[u8]; 12] = [
        b"",
        b"{",
        b"{\"message_id\":",
        b"{\"message_id\": \"m\",}",
        b"not json",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b"\"E1\"",
        b"42",
        b"null",
        b"true",
        b"{} {}",
    ];
    for body in bodies {
        let reply = app.post_raw(&c.chain_a, body.to_vec()).await;
        reply.assert_error(106, "");
    }
    for kind in ["X99", "E2", "I15", "e1", "", " E1", "I5"] {
        let reply = app.post(&c.chain_a, &message(kind, &reference(), json!({"holder": HOLDER}))).await;
        reply.assert_error(110, "/type");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_400_with_106_and_the_server_stays_up() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let depth = 100_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    app.post_raw(&c.chain_a, arrays.clone()).await.assert_error(106, "");
    let objects = format!("{}1{}", "{\"a\":".repeat(depth / 5), "}".repeat(depth / 5));
    app.post_raw(&c.chain_a, objects).await.assert_error(106, "");
    let inside = format!(
        r#"{{"message_id":"m-deep","type":"E9","guarantee_reference":"XH123456","declaration":{{"itinerary":{arrays}}}}}"#
    );
    app.post_raw(&c.holder, inside).await.assert_error(106, "");
    // Just within serde_json's nesting limit: parsed, then rejected as a value.
    let shallow = format!("{}{}", "[".repeat(120), "]".repeat(120));
    let mut body = message("E9", &reference(), json!({"declaration": declaration()}));
    body["declaration"]["itinerary"] = serde_json::from_str(&shallow).unwrap();
    app.post(&c.holder, &body).await.assert_error(106, "/declaration/itinerary/0");
    let (status, health) = app.get(&c.tr, "/health").await;
    assert_eq!((status, &health["status"]), (200, &json!("ok")));
}

#[test]
fn random_bodies_get_a_coded_4xx_never_a_5xx() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    #[derive(Debug, Clone)]
    enum Mutation {
        Drop(usize),
        Retype(usize, usize),
        SwapType(usize),
    }

    #[derive(Debug, Clone)]
    enum Input {
        Bytes(usize, Vec<u8>),
        Json(usize, Value),
        Mutated(usize, Mutation),
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (app, c, recorded, advance) = runtime.block_on(async {
        let app = spawn_app().await;
        let c = Corridor::seed(&app).await;
        let mut recorded = Trip::new(&app, &c);
        recorded.up_to_recorded().await;
        let recorded = recorded.reference.clone();
        let mut advance = Trip::new(&app, &c);
        advance.register().await;
        let advance = advance.reference.clone();
        (app, c, recorded, advance)
    });
    let tokens = [&c.chain_a, &c.holder, &c.tr, &c.ge, &c.am, &app.admin];
    // Each template with the party that may send it and a guarantee it may act on.
    let sender_of = |kind: &str| match kind {
        "E1" | "E3" => &c.chain_a,
        "E9" | "E11" | "E13" => &c.holder,
        "I1" | "I7" | "I9" => &c.tr,
        _ => &c.ge,
    };
    let replacements = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1e300),
        json!(""),
        json!("x"),
        json!([]),
        json!({}),
        json!([1, "a"]),
        json!({"a": 1}),
        json!("TR000100"),
        json!("TUR/012/345"),
        json!("y".repeat(600)),
    ];
    let kinds = ["E1", "E3", "E9", "E11", "E13", "I1", "I7", "I9", "I11", "I13", "I17", "E2", "I15", "", "e9"];
    let keys = prop::sample::select(vec![
        "message_id",
        "type",
        "guarantee_reference",
        "holder",
        "office",
        "declaration",
        "seals",
        "reservations",
        "reason",
        "valid_until",
        "itinerary",
        "offices",
        "goods",
        "x",
    ]);
    let strings = prop_oneof![
        prop::sample::select(vec!["E1", "I9", "TR000100", "TUR/012/345", "XH12345678", "2099-12-31", ""])
            .prop_map(String::from),
        "\\PC{0,16}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        strings.prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    });
    let mutation = prop_oneof![
        any::<usize>().prop_map(Mutation::Drop),
        (any::<usize>(), any::<usize>()).prop_map(|(f, r)| Mutation::Retype(f, r)),
        any::<usize>().prop_map(Mutation::SwapType),
    ];
    // Mutations reach deepest into the model, so they get most cases.
    let input = prop_oneof![
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 0..600)).prop_map(|(t, b)| Input::Bytes(t, b)),
        1 => (any::<usize>(), value).prop_map(|(t, v)| Input::Json(t, v)),
        3 => (0..11usize, mutation).prop_map(|(t, m)| Input::Mutated(t, m)),
    ];

    let config = Config { cases: 64, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    runner
        .run(&input, |input| {
            let (token, body, may_succeed) = match &input {
                Input::Bytes(t, bytes) => (tokens[t % tokens.len()], bytes.clone(), false),
                Input::Json(t, v) => (tokens[t % tokens.len()], v.to_string().into_bytes(), false),
                Input::Mutated(t, m) => {
                    let reference = match *t {
                        0 => reference(),
                        2..=4 => advance.clone(),
                        _ => recorded.clone(),
                    };
                    let mut body = templates(&reference)[*t].clone();
                    let token = sender_of(body["type"].as_str().unwrap());
                    let mut all = Vec::new();
                    pointers(&body, "", &mut all);
                    match m {
                        Mutation::Drop(f) => {
                            let pointer = &all[f % all.len()];
                            let (parent, last) = pointer.rsplit_once('/').unwrap();
                            match body.pointer_mut(parent) {
                                Some(Value::Object(map)) => drop(map.remove(last)),
                                Some(Value::Array(items)) => drop(items.remove(last.parse::<usize>().unwrap())),
                                _ => unreachable!("pointers name children of containers"),
                            }
                        }
                        Mutation::Retype(f, r) => {
                            *body.pointer_mut(&all[f % all.len()]).unwrap() =
                                replacements[r % replacements.len()].clone();
                        }
                        Mutation::SwapType(k) => body["type"] = json!(kinds[k % kinds.len()]),
                    }
                    (token, body.to_string().into_bytes(), true)
                }
            };
            let reply = runtime.block_on(app.post_raw(token, body.clone()));
            let shown = String::from_utf8_lossy(&body);
            prop_assert!(reply.status < 500, "{} for {shown}: {}", reply.status, reply.text);
            let json: Value = serde_json::from_str(&reply.text)
                .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {}", reply.text)))?;
            if reply.status == 200 {
                prop_assert!(may_succeed, "accepted {shown}: {}", reply.text);
                prop_assert!(json["type"].is_string() && json["guarantee"].is_object(), "{}", reply.text);
            } else {
                prop_assert!((400..500).contains(&reply.status), "{} for {shown}", reply.status);
                let code = json["error"]["code"].as_u64();
                prop_assert!(code.is_some(), "no error.code: {}", reply.text);
                prop_assert_eq!(u64::from(reply.status), u64::from(status_of(code.unwrap() as u16)), "{}", reply.text);
                prop_assert!(json["error"]["pointer"].is_string(), "{}", reply.text);
            }
            Ok(())
        })
        .unwrap();
    // The server still serves after all of it.
    let reply = runtime.block_on(app.get_reply(&c.tr, "/health"));
    assert_eq!(reply.status, 200);
    drop(app);
}

// ------------------------------------------------------------------ openapi

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_every_route_the_router_serves() {
    let app = spawn_app().await;
    let reply = app.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let doc = reply.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    let routes = [
        "/health",
        "/v1/openapi.json",
        "/v1/messages",
        "/v1/guarantees/{reference}",
        "/v1/guarantees/{reference}/declaration",
        "/v1/guarantees/{reference}/timeline",
        "/v1/holders/{tir_id}",
        "/v1/offices/{code}",
        "/v1/notifications",
        "/v1/admin/parties",
        "/v1/admin/parties/{id}",
        "/v1/admin/offices",
        "/v1/admin/holders/{tir_id}",
        "/v1/admin/journal/verify",
    ];
    for route in routes {
        assert!(paths.contains_key(route), "{route} is missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    // The contract's field names are all described.
    let schema = |path: &str, method: &str, status: Option<&str>| {
        let operation = &doc["paths"][path][method];
        let content = match status {
            None => &operation["requestBody"]["content"]["application/json"]["schema"],
            Some(status) => &operation["responses"][status]["content"]["application/json"]["schema"],
        };
        resolve(&doc, content).clone()
    };
    let message = schema("/v1/messages", "post", None);
    let envelope = [
        "message_id",
        "type",
        "guarantee_reference",
        "holder",
        "valid_until",
        "reason",
        "declaration",
        "office",
        "seals",
        "reservations",
    ];
    assert_properties(&message, &envelope);
    let declaration = resolve(&doc, &message["properties"]["declaration"]);
    assert_properties(declaration, &["itinerary", "offices", "vehicle", "seals", "consignments"]);
    let consignment = resolve(&doc, &declaration["properties"]["consignments"]);
    assert_properties(consignment, &["consignor", "consignee", "goods"]);
    let goods = resolve(&doc, &consignment["properties"]["goods"]);
    assert_properties(goods, &["hs_code", "description", "packages", "gross_mass_kg", "value"]);
    assert_properties(resolve(&doc, &goods["properties"]["value"]), &["amount", "currency"]);
    assert_properties(&schema("/v1/messages", "post", Some("200")), &["message_id", "type", "guarantee", "transport"]);
    let guarantee = schema("/v1/guarantees/{reference}", "get", Some("200"));
    assert_properties(&guarantee, &["reference", "holder", "chain", "state", "transport"]);
    let transport = resolve(&doc, &guarantee["properties"]["transport"]);
    assert_properties(transport, &["itinerary", "declaration_state", "operations"]);
    let operation = resolve(&doc, &transport["properties"]["operations"]);
    assert_properties(operation, &["country", "state", "office", "started_at", "terminated_at", "reservations"]);
    let page = schema("/v1/notifications", "get", Some("200"));
    assert_properties(&page, &["items", "next"]);
    let item = resolve(&doc, &page["properties"]["items"]);
    assert_properties(item, &["cursor", "type", "guarantee_reference", "payload", "created_at"]);
    assert_properties(&schema("/v1/holders/{tir_id}", "get", Some("200")), &["tir_id", "name", "country", "status"]);
    let error = schema("/v1/guarantees/{reference}", "get", Some("404"));
    assert_properties(resolve(&doc, &error["properties"]["error"]), &["code", "class", "title", "pointer"]);
    assert_properties(&schema("/v1/admin/journal/verify", "get", Some("200")), &["ok", "entries", "head"]);
    assert_properties(&schema("/v1/admin/parties", "post", Some("201")), &["id", "kind", "token"]);
    assert_properties(&schema("/v1/admin/parties/{id}", "delete", Some("200")), &["id", "kind", "name", "revoked_at"]);
    assert_properties(&schema("/v1/admin/offices", "post", None), &["code", "country", "name", "roles", "unlocode"]);
    assert_properties(&schema("/v1/admin/holders/{tir_id}", "put", None), &["name", "country", "status"]);

    // And every documented path is served (no "no such route" fallback).
    for (path, operations) in paths {
        let concrete = path
            .replace("{reference}", "XH12345678")
            .replace("{tir_id}", "TUR%2F012%2F345")
            .replace("{code}", "TR000100");
        let methods = operations.as_object().unwrap().keys();
        for method in methods.filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str())) {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = app.call(method.clone(), &concrete, Some(&app.admin), Some(b"{}".to_vec())).await;
            let body: Value = serde_json::from_str(&reply.text).unwrap_or(Value::Null);
            assert!(
                !matches!(reply.status, 404 | 405) || body["error"]["pointer"] != "",
                "{method} {concrete} is documented but not served: {} {}",
                reply.status,
                reply.text
            );
        }
    }
}

/// Follows `$ref`, array items and nullable wrappers down to an object schema.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return resolve(doc, &doc["components"]["schemas"][name]);
    }
    if schema["items"].is_object() {
        return resolve(doc, &schema["items"]);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(variant) = schema[key].as_array().and_then(|v| v.iter().find(|s| s["type"] != "null")) {
            return resolve(doc, variant);
        }
    }
    schema
}

#[track_caller]
fn assert_properties(schema: &Value, names: &[&str]) {
    let properties = schema["properties"].as_object().unwrap_or_else(|| panic!("no properties in {schema}"));
    for name in names {
        assert!(
            properties.contains_key(*name),
            "{name} is not described in {:?}",
            properties.keys().collect::<Vec<_>>()
        );
    }
}

// ------------------------------------------------------------------ journal

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

// ------------------------------------------------------------------ queries

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holder_and_office_queries_return_their_views() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    for token in [&c.tr, &c.am, &c.chain_a, &c.holder, &app.admin] {
        let (status, holder) = app.get(token, "/v1/holders/TUR%2F012%2F345").await;
        assert_eq!(status, 200, "{holder}");
        assert_eq!(
            holder,
            json!({"tir_id": HOLDER, "name": "Carrier TUR/012/345", "country": "TR", "status": "authorized"})
        );
        let (status, office) = app.get(token, "/v1/offices/AZ000200").await;
        assert_eq!(status, 200, "{office}");
        assert_eq!(office["code"], "AZ000200");
        assert_eq!(office["country"], "AZ");
        assert_eq!(office["name"], "Office AZ000200");
        assert_eq!(office["roles"], json!(["entry", "destination"]));
    }
    let (_, withdrawn) = app.get(&c.tr, "/v1/holders/TUR%2F012%2F999").await;
    assert_eq!(withdrawn["status"], "withdrawn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_holder_or_office_is_404_and_a_malformed_id_is_400_with_106() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    app.get_reply(&c.tr, "/v1/holders/TUR%2F012%2F777").await.assert_error(404, "/tir_id");
    app.get_reply(&c.tr, "/v1/offices/TR009999").await.assert_error(404, "/code");
    app.get_reply(&c.tr, "/v1/holders/TUR-012-345").await.assert_error(106, "/tir_id");
    app.get_reply(&c.tr, "/v1/holders/tur%2F012%2F345").await.assert_error(106, "/tir_id");
    app.get_reply(&c.tr, "/v1/offices/tr000100").await.assert_error(106, "/code");
    app.get_reply(&c.tr, "/v1/offices/TR00-100").await.assert_error(106, "/code");
    app.get_reply(&c.tr, "/v1/offices/TR0001").await.assert_error(105, "/code");
    app.get_reply(&c.tr, "/v1/holders/QQQ%2F012%2F345").await.assert_error(110, "/tir_id");
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
    app.get_reply(token, "/v1/notifications").await.assert_error(401, "");
    let late = message("E1", &reference(), json!({"holder": HOLDER}));
    app.post(token, &late).await.assert_error(401, "");
    assert_eq!(app.get(&c.chain_a, "/v1/notifications").await.0, 200, "other parties keep their tokens");

    let again = app.call(Method::DELETE, &path, Some(&app.admin), None).await;
    assert_eq!((again.status, again.text.as_str()), (200, revoked.text.as_str()));
    let (_, after) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!(after["entries"].as_u64(), before["entries"].as_u64().map(|n| n + 1), "journaled once");
    assert_eq!(after["ok"], true);

    let admin = Some(app.admin.as_str());
    app.call(Method::DELETE, "/v1/admin/parties/gc_0000000000000000", admin, None).await.assert_error(404, "/id");
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
