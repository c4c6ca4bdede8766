//! Binding v2 end to end over HTTP: TIR operations per TIR territory (the
//! European Union is one), amendments en route, seal findings, incidents,
//! national lodging and the codes v2 added. Each scenario runs on SQLite and
//! on PostgreSQL (when TIRHUB_TEST_DATABASE_URL is set).

use serde_json::{Value, json};

use tir_testkit::server::*;

use crate::transport::events;

on_both_stores!(
    two_operations_through_the_union,
    reentering_the_union_is_four_operations,
    a_single_territory_itinerary_is_refused_with_181,
    an_amendment_accepted_en_route_is_version_2,
    other_seals_at_a_later_start_are_a_finding,
    a_transhipment_changes_vehicle_and_seals,
    codes_added_by_v2,
    customs_of_a_later_operation_neither_accept_nor_record,
);

/// Issue 14's finding: customs of a later country accepted the guarantee and
/// recorded the declaration when it named an office of theirs as a departure
/// office (goods loaded en route). Binding v2: only customs of the first
/// operation's territory do (380).
async fn customs_of_a_later_operation_neither_accept_nor_record(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::through(app, &c, &["BY", "LT", "PL"]);
    trip.declaration["offices"].as_array_mut().unwrap().push(json!({"code": "LT000100", "role": "departure"}));
    trip.register().await;
    trip.advance().await;
    let reference = trip.reference.clone();
    let lt = |kind: &str| message(kind, &reference, json!({"office": "LT000100"}));
    app.post(c.customs("LT"), &lt("I1")).await.assert_error(380, "/office");
    trip.accept().await;
    app.post(c.customs("LT"), &lt("I7")).await.assert_error(380, "/office");
    trip.record().await;
    // Loading en route: that office starts the Union's operation once Belarus's has ended.
    trip.start("BY").await;
    trip.terminate("BY").await;
    let answer = app.post(c.customs("LT"), &lt("I9")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["guarantee"]["transport"]["operations"][1]["state"], "started");
}

fn owned(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect()
}

/// Each operation as (sequence, territory, countries, state).
fn operations(view: &Value) -> Vec<(u64, String, Value, String)> {
    view["transport"]["operations"]
        .as_array()
        .unwrap_or_else(|| panic!("no operations: {view}"))
        .iter()
        .map(|op| {
            (
                op["sequence"].as_u64().expect("a sequence"),
                op["territory"].as_str().expect("a territory").to_owned(),
                op["countries"].clone(),
                op["state"].as_str().expect("a state").to_owned(),
            )
        })
        .collect()
}

fn op(sequence: u64, territory: &str, countries: &[&str], state: &str) -> (u64, String, Value, String) {
    (sequence, territory.to_owned(), json!(countries), state.to_owned())
}

/// The feed items of `token` after the first `skip`.
async fn new_items(app: &TestApp, token: &str, skip: usize) -> Vec<Value> {
    app.feed(token).await[skip..].to_vec()
}

/// BY → LT → PL: operation 1 in Belarus, operation 2 in the Union (LT, PL),
/// started at the Lithuanian office of entry and terminated at the Polish
/// office of destination.
async fn two_operations_through_the_union(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::through(app, &c, &["BY", "LT", "PL"]);
    trip.up_to_recorded().await;
    let (status, view) = app.get(&c.chain_a, &trip.path()).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(operations(&view), [op(1, "BY", &["BY"], "pending"), op(2, "EU", &["LT", "PL"], "pending")]);
    for field in ["operation_id", "office", "started_at", "terminated_at", "discharged_at", "terminated_by"] {
        assert!(view["transport"]["operations"][1][field].is_null(), "{field}: {view}");
    }

    // Operation 2 cannot start before operation 1 terminates (281), in LT or in PL.
    let lt_start = message("I9", &trip.reference, json!({"office": "LT000100", "operation_id": "26LT00000000001234"}));
    app.post(c.customs("LT"), &lt_start).await.assert_error(281, "/office");
    trip.start("BY").await;
    trip.terminate("BY").await;

    // BY's I11 tells the customs of every country of the next operation.
    for country in ["LT", "PL"] {
        let feed = app.feed(c.customs(country)).await;
        assert_eq!(
            events(&feed),
            owned(&[("I15", "declaration_recorded", ""), ("I15", "previous_operation_terminated", "BY")]),
            "{country}"
        );
        let payload = &feed[1]["payload"];
        assert_eq!((&payload["operation"], &payload["office"]), (&json!(1), &json!("BY000100")), "{payload}");
        assert_eq!(payload["reservations"], json!([]));
        assert_eq!(payload["declaration_version"], 1);
        assert_eq!(feed[0]["payload"]["declaration"]["itinerary"], json!(["BY", "LT", "PL"]));
    }

    // LT customs start the Union's operation at their office of entry, with their own id and a control.
    let mut lt_start = message(
        "I9",
        &trip.reference,
        json!({"office": "LT000100", "seals": [SEAL], "operation_id": "26LT00000000001234",
               "controls": [{"type": "seal_check", "result": "satisfactory", "remarks": "intact"}]}),
    );
    lt_start["message_id"] = json!(message_id());
    let started = trip.send_ok(c.customs("LT"), lt_start, "I10").await;
    let eu = &started["guarantee"]["transport"]["operations"][1];
    assert_eq!(
        (&eu["state"], &eu["office"], &eu["operation_id"]),
        (&json!("started"), &json!("LT000100"), &json!("26LT00000000001234"))
    );
    assert_eq!(eu["controls"].as_array().map(Vec::len), Some(1), "{eu}");
    assert_eq!((&eu["controls"][0]["type"], &eu["controls"][0]["office"]), (&json!("seal_check"), &json!("LT000100")));
    assert_eq!(eu["findings"], json!([]), "the same seals are no finding");
    // PL customs act on the same operation: it is started already (210); the Union's one
    // operation is not started again in each member state.
    let pl_start = message("I9", &trip.reference, json!({"office": "PL000100"}));
    app.post(c.customs("PL"), &pl_start).await.assert_error(210, "/office");
    // The last operation terminates only at a declared office of destination: not LT's (380).
    let lt_end = message("I11", &trip.reference, json!({"office": "LT000100", "reservations": []}));
    app.post(c.customs("LT"), &lt_end).await.assert_error(380, "/office");
    trip.terminate("PL").await;
    // Discharge is for the customs where it terminated: PL, not LT (380).
    let lt_discharge = message("I13", &trip.reference, json!({"office": "LT000100"}));
    app.post(c.customs("LT"), &lt_discharge).await.assert_error(380, "/office");
    trip.discharge("BY").await;
    let last = trip.discharge("PL").await;
    assert_eq!(last["guarantee"]["state"], "released", "{last}");
    assert_eq!(
        operations(&last["guarantee"]),
        [op(1, "BY", &["BY"], "discharged"), op(2, "EU", &["LT", "PL"], "discharged")]
    );
    let eu = &last["guarantee"]["transport"]["operations"][1];
    assert_eq!((&eu["office"], &eu["terminated_by"]), (&json!("PL000100"), &json!("PL000100")));
    assert!(eu["started_at"].is_string() && eu["terminated_at"].is_string() && eu["discharged_at"].is_string());

    // The chain hears of every change, each naming its operation.
    let chain = app.feed(&c.chain_a).await;
    assert_eq!(
        events(&chain),
        owned(&[
            ("E7", "guarantee_accepted", ""),
            ("E7", "declaration_recorded", ""),
            ("E7", "operation_started", "BY"),
            ("E7", "operation_terminated", "BY"),
            ("E7", "operation_started", "LT"),
            ("E7", "operation_terminated", "PL"),
            ("E7", "operation_discharged", "BY"),
            ("E7", "operation_discharged", "PL"),
            ("E7", "guarantee_released", ""),
        ])
    );
    let sequences: Vec<&Value> = chain[2..8].iter().map(|item| &item["payload"]["operation"]).collect();
    assert_eq!(sequences, [&json!(1), &json!(1), &json!(2), &json!(2), &json!(1), &json!(2)]);
    for item in &chain {
        let p = &item["payload"];
        for field in ["event", "message_type", "at", "guarantee_state", "declaration_version"] {
            assert!(!p[field].is_null(), "{field} in {p}");
        }
    }
    // Advance data went to the customs of departure only.
    assert_eq!(events(&app.feed(c.customs("BY")).await), owned(&[("E9", "advance_data", "")]));
}

/// TR → BG → RS → HU → DE leaves the Union and enters it again: four
/// operations, TR, EU [BG], RS, EU [HU, DE].
async fn reentering_the_union_is_four_operations(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::through(app, &c, &["TR", "BG", "RS", "HU", "DE"]);
    trip.full().await;
    let (_, view) = app.get(c.customs("HU"), &trip.path()).await;
    assert_eq!(view["state"], "released", "{view}");
    assert_eq!(
        operations(&view),
        [
            op(1, "TR", &["TR"], "discharged"),
            op(2, "EU", &["BG"], "discharged"),
            op(3, "RS", &["RS"], "discharged"),
            op(4, "EU", &["HU", "DE"], "discharged"),
        ]
    );
    let started_and_ended: Vec<(&Value, &Value)> = view["transport"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|op| {
            assert!(
                op["started_at"].is_string() && op["terminated_at"].is_string() && op["discharged_at"].is_string(),
                "{op}"
            )
        })
        .map(|op| (&op["terminated_by"], &op["office"]))
        .collect();
    assert_eq!(
        started_and_ended,
        [
            (&json!("TR000100"), &json!("TR000100")),
            (&json!("BG000100"), &json!("BG000100")),
            (&json!("RS000100"), &json!("RS000100")),
            (&json!("DE000100"), &json!("DE000100")),
        ]
    );
    // Each termination is told to the countries of the next operation only.
    let previous = |feed: &[Value]| -> Vec<String> {
        feed.iter()
            .filter(|i| i["payload"]["event"] == "previous_operation_terminated")
            .map(|i| format!("{}@{}", i["payload"]["country"].as_str().unwrap(), i["payload"]["operation"]))
            .collect()
    };
    assert_eq!(previous(&app.feed(c.customs("BG")).await), ["TR@1"]);
    assert_eq!(previous(&app.feed(c.customs("RS")).await), ["BG@2"]);
    assert_eq!(previous(&app.feed(c.customs("HU")).await), ["RS@3"]);
    assert_eq!(previous(&app.feed(c.customs("DE")).await), ["RS@3"]);
    assert!(previous(&app.feed(&c.tr).await).is_empty());
    let chain = app.feed(&c.chain_a).await;
    let released = chain.last().unwrap();
    assert_eq!(released["payload"]["event"], "guarantee_released");
    let discharged: Vec<(&Value, &Value)> = chain
        .iter()
        .filter(|i| i["payload"]["event"] == "operation_discharged")
        .map(|i| (&i["payload"]["operation"], &i["payload"]["country"]))
        .collect();
    assert_eq!(
        discharged,
        [(&json!(1), &json!("TR")), (&json!(2), &json!("BG")), (&json!(3), &json!("RS")), (&json!(4), &json!("DE"))]
    );
}

/// A transport that never leaves the Union is no TIR transport: 181, in E9 and E11.
async fn a_single_territory_itinerary_is_refused_with_181(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::new(app, &c);
    trip.register().await;
    let mut inside = declaration();
    inside["itinerary"] = json!(["LT", "PL"]);
    inside["offices"] = json!([{"code": "LT000100", "role": "departure"}, {"code": "PL000100", "role": "destination"}]);
    let e9 = message("E9", &trip.reference, json!({"declaration": inside}));
    app.post(&c.holder, &e9).await.assert_error(181, "/declaration/itinerary");
    let mut three = inside.clone();
    three["itinerary"] = json!(["LT", "PL", "DE"]);
    three["offices"][1]["code"] = json!("DE000100");
    let e9 = message("E9", &trip.reference, json!({"declaration": three}));
    app.post(&c.holder, &e9).await.assert_error(181, "/declaration/itinerary");
    // Nothing was stored: the guarantee has no advance data.
    app.get_reply(&c.chain_a, &format!("{}/declaration", trip.path())).await.assert_not_found(307, "/reference");
    trip.advance().await;
    let e11 = message("E11", &trip.reference, json!({"declaration": inside}));
    app.post(&c.holder, &e11).await.assert_error(181, "/declaration/itinerary");
    // A single-territory itinerary lodged nationally is refused the same way.
    let mut national = Trip::new(app, &c);
    national.register().await;
    let accept = message("I1", &national.reference, json!({"office": "LT000100"}));
    assert_eq!(app.post(c.customs("LT"), &accept).await.status, 200);
    let record = message("I7", &national.reference, json!({"office": "LT000100", "declaration": inside}));
    app.post(c.customs("LT"), &record).await.assert_error(181, "/declaration/itinerary");
}

/// After recording, the holder asks for an amendment in the country whose
/// operation is started; its customs accept it with I7: version 2.
async fn an_amendment_accepted_en_route_is_version_2(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::through(app, &c, &["BY", "LT", "PL"]);
    trip.up_to_recorded().await;
    let mut amended = trip.declaration.clone();
    amended["consignments"][0]["goods"][0]["packages"] = json!(5);
    amended["consignments"][0]["goods"][0]["gross_mass_kg"] = json!(7750.0);
    let r = trip.reference.clone();
    let e11 = |country: &str| message("E11", &r, json!({"declaration": amended.clone(), "country": country}));

    // 213: no amendment in a country whose operation is pending; 180 off the itinerary.
    app.post(&c.holder, &e11("BY")).await.assert_error(213, "/country");
    trip.start("BY").await;
    app.post(&c.holder, &e11("LT")).await.assert_error(213, "/country");
    app.post(&c.holder, &e11("GE")).await.assert_error(180, "/country");

    let by_feed = app.feed(c.customs("BY")).await.len();
    let lt_feed = app.feed(c.customs("LT")).await.len();
    let requested = trip.send_ok(&c.holder, e11("BY"), "E12").await;
    let transport = &requested["guarantee"]["transport"];
    assert_eq!(transport["declaration_state"], "amendment_requested", "{transport}");
    assert_eq!(transport["declaration_version"], 1);
    assert_eq!(transport["amendment"]["country"], "BY");
    let asked = new_items(app, c.customs("BY"), by_feed).await;
    assert_eq!(events(&asked), owned(&[("I15", "amendment_requested", "BY")]));
    assert_eq!(asked[0]["payload"]["declaration"]["consignments"][0]["goods"][0]["packages"], 5);
    assert_eq!(asked[0]["payload"]["operation"], 1);
    assert!(new_items(app, c.customs("LT"), lt_feed).await.is_empty(), "only the customs of BY are asked");

    // 283: LT customs have no amendment waiting for them.
    let lt_accept = message("I7", &trip.reference, json!({"office": "LT000100"}));
    app.post(c.customs("LT"), &lt_accept).await.assert_error(283, "/guarantee_reference");

    let pl_feed = app.feed(c.customs("PL")).await.len();
    let by_accept = message("I7", &trip.reference, json!({"office": "BY000100"}));
    let accepted = trip.send_ok(c.customs("BY"), by_accept, "I8").await;
    let transport = &accepted["guarantee"]["transport"];
    assert_eq!((&transport["declaration_version"], &transport["declaration_state"]), (&json!(2), &json!("recorded")));
    assert!(transport["amendment"].is_null(), "{transport}");
    assert_eq!(operations(&accepted["guarantee"])[0].3, "started", "the started operation keeps its record");

    for (version, packages) in [(1, 4), (2, 5)] {
        let (status, d) = app.get(&c.chain_a, &format!("{}/declaration?version={version}", trip.path())).await;
        assert_eq!(status, 200, "{d}");
        assert_eq!((&d["version"], &d["current_version"]), (&json!(version), &json!(2)), "{d}");
        assert_eq!(d["declaration"]["consignments"][0]["goods"][0]["packages"], packages);
    }
    // The advance data the declaration was recorded from stays readable as version 0.
    let (status, advance) = app.get(&c.chain_a, &format!("{}/declaration?version=0", trip.path())).await;
    assert_eq!((status, &advance["version"]), (200, &json!(0)), "{advance}");
    assert_eq!(advance["declaration"]["consignments"][0]["goods"][0]["packages"], 4);
    let (_, current) = app.get(&c.holder, &format!("{}/declaration", trip.path())).await;
    assert_eq!(current["version"], 2, "{current}");
    app.get_reply(&c.chain_a, &format!("{}/declaration?version=3", trip.path()))
        .await
        .assert_not_found(307, "/version");

    // The customs of the other countries of the itinerary get the new version and what changed.
    for (country, skip) in [("LT", lt_feed), ("PL", pl_feed)] {
        let items = new_items(app, c.customs(country), skip).await;
        assert_eq!(events(&items), owned(&[("I15", "amendment_accepted", "BY")]), "{country}");
        let p = &items[0]["payload"];
        assert_eq!(p["declaration_version"], 2);
        assert_eq!(p["declaration"]["consignments"][0]["goods"][0]["packages"], 5);
        let changes: Vec<&str> =
            p["changes"].as_array().expect("changes").iter().map(|c| c.as_str().unwrap()).collect();
        assert!(changes.contains(&"/declaration/consignments/0/goods/0/packages"), "{changes:?}");
        assert!(changes.contains(&"/declaration/consignments/0/goods/0/gross_mass_kg"), "{changes:?}");
        assert_eq!(changes.len(), 2, "{changes:?}");
    }
    let chain = app.feed(&c.chain_a).await;
    assert!(events(&chain).contains(&("E7".into(), "amendment_accepted".into(), "BY".into())), "{:?}", events(&chain));
    let (_, timeline) = app.get(&c.chain_a, &format!("{}/timeline", trip.path())).await;
    let summaries: Vec<&str> =
        timeline["events"].as_array().unwrap().iter().map(|e| e["summary"].as_str().unwrap()).collect();
    assert!(summaries.iter().any(|s| s.contains("amendment requested in BY")), "{summaries:?}");
    assert!(
        summaries.iter().any(|s| s.contains("amendment accepted in BY") && s.contains("version 2")),
        "{summaries:?}"
    );

    // Nothing waits any more (283); a new request lapses when BY's operation terminates.
    let again = message("I7", &trip.reference, json!({"office": "BY000100"}));
    app.post(c.customs("BY"), &again).await.assert_error(283, "/guarantee_reference");
    trip.send_ok(&c.holder, e11("BY"), "E12").await;
    let ended = trip.terminate("BY").await;
    assert_eq!(ended["guarantee"]["transport"]["declaration_state"], "recorded", "the amendment lapsed");
    let late = message("I7", &trip.reference, json!({"office": "BY000100"}));
    app.post(c.customs("BY"), &late).await.assert_error(283, "/guarantee_reference");
    // 211: no amendment in a country whose operation terminated.
    app.post(&c.holder, &e11("BY")).await.assert_error(211, "/country");
    trip.start("LT").await;
    trip.terminate("PL").await;
    trip.discharge("BY").await;
    let last = trip.discharge("PL").await;
    assert_eq!(last["guarantee"]["state"], "released");
    assert_eq!(last["guarantee"]["transport"]["declaration_version"], 2);
}

/// Another set of seals at the start of a later operation: accepted, a finding
/// on that operation, an E7 to the chain, and the reported set is the record.
async fn other_seals_at_a_later_start_are_a_finding(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::through(app, &c, &["BY", "LT", "PL"]);
    trip.up_to_recorded().await;
    trip.start("BY").await;
    trip.terminate("BY").await;
    let chain_before = app.feed(&c.chain_a).await.len();
    let reported = json!(["LT-0001", "LT-0002"]);
    let start = message("I9", &trip.reference, json!({"office": "LT000100", "seals": reported}));
    let started = trip.send_ok(c.customs("LT"), start, "I10").await;
    let view = &started["guarantee"];
    let eu = &view["transport"]["operations"][1];
    assert_eq!(eu["state"], "started");
    let findings = eu["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{eu}");
    assert_eq!(
        (&findings[0]["kind"], &findings[0]["office"], &findings[0]["recorded"], &findings[0]["reported"]),
        (&json!("seals_differ"), &json!("LT000100"), &json!([SEAL]), &reported)
    );
    assert_eq!(view["transport"]["seals"], reported);
    assert_eq!(eu["seals"], reported);
    assert_eq!(view["transport"]["operations"][0]["findings"], json!([]));
    let new = new_items(app, &c.chain_a, chain_before).await;
    assert_eq!(events(&new), owned(&[("E7", "operation_started", "LT"), ("E7", "seal_finding", "LT")]));
    let p = &new[1]["payload"];
    assert_eq!(
        (&p["operation"], &p["office"], &p["recorded"], &p["reported"]),
        (&json!(2), &json!("LT000100"), &json!([SEAL]), &reported)
    );
    // Terminating with the new set is no further finding.
    let end = message(
        "I11",
        &trip.reference,
        json!({"office": "PL000100", "seals": ["LT-0002", "LT-0001"], "reservations": []}),
    );
    let ended = trip.send_ok(c.customs("PL"), end, "I12").await;
    assert_eq!(ended["guarantee"]["transport"]["operations"][1]["findings"].as_array().map(Vec::len), Some(1));
}

/// X1 transhipment: a new vehicle and new seals for the transport, an incident
/// on the started operation, told to the later customs and the chain.
async fn a_transhipment_changes_vehicle_and_seals(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::through(app, &c, &["BY", "LT", "PL"]);
    trip.up_to_recorded().await;
    let r = trip.reference.clone();
    let x1 = |country: &str, kind: &str| {
        let mut fields = json!({"office": office_of(country), "kind": kind, "description": "axle broken near Vilnius"});
        if kind == "transhipment" {
            fields["new_vehicle"] = json!({"registration": "LTA123", "country": "LT"});
            fields["new_seals"] = json!(["LT-7777"]);
        }
        message("X1", &r, fields)
    };
    // 213: no operation of LT is started yet.
    app.post(c.customs("LT"), &x1("LT", "transhipment")).await.assert_error(213, "/office");
    trip.start("BY").await;
    trip.terminate("BY").await;
    // 213 as well once BY's operation is over.
    app.post(c.customs("BY"), &x1("BY", "accident")).await.assert_error(213, "/office");
    trip.start("LT").await;
    let pl_before = app.feed(c.customs("PL")).await.len();
    let lt_before = app.feed(c.customs("LT")).await.len();
    let chain_before = app.feed(&c.chain_a).await.len();
    let recorded = trip.send_ok(c.customs("LT"), x1("LT", "transhipment"), "X2").await;
    let transport = &recorded["guarantee"]["transport"];
    assert_eq!(transport["vehicle"], json!({"registration": "LTA123", "country": "LT"}), "{transport}");
    assert_eq!(transport["seals"], json!(["LT-7777"]));
    assert_eq!(transport["declaration_version"], 1, "a transhipment keeps the declaration's version");
    let incidents = transport["operations"][1]["incidents"].as_array().expect("incidents");
    assert_eq!(incidents.len(), 1, "{transport}");
    assert_eq!(
        (&incidents[0]["kind"], &incidents[0]["office"], &incidents[0]["new_seals"]),
        (&json!("transhipment"), &json!("LT000100"), &json!(["LT-7777"]))
    );
    assert_eq!(incidents[0]["new_vehicle"]["registration"], "LTA123");
    assert_eq!(transport["operations"][0]["incidents"], json!([]));
    let told = new_items(app, c.customs("PL"), pl_before).await;
    assert_eq!(events(&told), owned(&[("I15", "incident", "LT")]));
    assert_eq!((&told[0]["payload"]["kind"], &told[0]["payload"]["operation"]), (&json!("transhipment"), &json!(2)));
    assert!(new_items(app, c.customs("LT"), lt_before).await.is_empty(), "not to the sender");
    let chain = new_items(app, &c.chain_a, chain_before).await;
    assert_eq!(events(&chain), owned(&[("E7", "incident", "LT")]));
    assert_eq!(chain[0]["payload"]["description"], "axle broken near Vilnius");
    // The declaration itself is unchanged.
    let (_, d) = app.get(&c.chain_a, &format!("{}/declaration", trip.path())).await;
    assert_eq!((&d["version"], &d["declaration"]["vehicle"]["registration"]), (&json!(1), &json!("34ABC123")));
    // PL customs may record an incident on the same (Union) operation.
    let pl_x1 = message("X1", &trip.reference, json!({"office": "PL000100", "kind": "other", "description": "late"}));
    let after = trip.send_ok(c.customs("PL"), pl_x1, "X2").await;
    assert_eq!(after["guarantee"]["transport"]["operations"][1]["incidents"].as_array().map(Vec::len), Some(2));
}

/// 214, 306, 216, 201 on I17, national lodging (and 180 when it does not name
/// I1's office), 308, and customs off the itinerary (403/380).
async fn codes_added_by_v2(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::new(app, &c);
    trip.up_to_recorded().await;
    let r = trip.reference.clone();

    // 216: the first operation is not refused with I17.
    let refuse_first = message("I17", &r, json!({"office": "TR000100", "reason": "no"}));
    app.post(&c.tr, &refuse_first).await.assert_error(216, "/office");
    // 306: a control of an unknown type.
    let xray =
        message("I9", &r, json!({"office": "TR000100", "controls": [{"type": "xray", "result": "satisfactory"}]}));
    app.post(&c.tr, &xray).await.assert_error(306, "/controls/0/type");
    let with_id = message("I9", &r, json!({"office": "TR000100", "seals": [SEAL], "operation_id": "26TR-0001"}));
    trip.send_ok(&c.tr, with_id, "I10").await;
    trip.terminate("TR").await;
    // 214: the operation id is the guarantee's already.
    let same_id = message("I9", &r, json!({"office": "GE000100", "operation_id": "26TR-0001"}));
    app.post(&c.ge, &same_id).await.assert_error(214, "/operation_id");
    let other_id = message("I9", &r, json!({"office": "GE000100", "operation_id": "26GE-0001"}));
    let started = trip.send_ok(&c.ge, other_id, "I10").await;
    assert_eq!(started["guarantee"]["transport"]["operations"][1]["operation_id"], "26GE-0001");

    // Customs of a country off the itinerary read nothing and act on nothing (403/380).
    app.get_reply(&c.am, &trip.path()).await.assert_error(380, "/reference");
    let am = message("I11", &r, json!({"office": "AM000100", "reservations": []}));
    app.post(&c.am, &am).await.assert_error(380, "/guarantee_reference");
    // Customs act through offices of their own country only.
    let borrowed = message("I11", &r, json!({"office": "GE000100", "reservations": []}));
    app.post(&c.az, &borrowed).await.assert_error(380, "/office");

    // 201 on I17: a cancelled guarantee starts nothing, not even a refusal.
    let mut cancelled = Trip::new(app, &c);
    cancelled.up_to_recorded().await;
    cancelled.start("TR").await;
    cancelled.terminate("TR").await;
    let cancel = message("E3", &cancelled.reference, json!({"reason": "cover withdrawn"}));
    cancelled.send_ok(&c.chain_a, cancel, "E4").await;
    let refuse = message("I17", &cancelled.reference, json!({"office": "GE000100", "reason": "no cover"}));
    app.post(&c.ge, &refuse).await.assert_error(201, "/guarantee_reference");
    // E3 after recording is told to the customs of every country of the itinerary.
    for token in [&c.tr, &c.ge, &c.az] {
        let feed = app.feed(token).await;
        let told: Vec<&Value> = feed
            .iter()
            .filter(|i| i["guarantee_reference"] == cancelled.reference.as_str())
            .filter(|i| i["payload"]["event"] == "guarantee_cancelled")
            .collect();
        assert_eq!(told.len(), 1, "{feed:?}");
        assert_eq!((&told[0]["type"], &told[0]["payload"]["reason"]), (&json!("I15"), &json!("cover withdrawn")));
    }

    // National lodging: I1 without advance data, then I7 with the declaration.
    let mut national = Trip::new(app, &c);
    national.register().await;
    national.accept().await;
    let record = message("I7", &national.reference, json!({"office": "TR000100", "declaration": declaration()}));
    let recorded = national.send_ok(&c.tr, record, "I8").await;
    let transport = &recorded["guarantee"]["transport"];
    assert_eq!((&transport["declaration_state"], &transport["declaration_version"]), (&json!("recorded"), &json!(1)));
    assert_eq!(operations(&recorded["guarantee"]).len(), 3);
    let ge_feed = app.feed(&c.ge).await;
    assert!(
        ge_feed.iter().any(|i| i["guarantee_reference"] == national.reference.as_str()
            && i["payload"]["event"] == "declaration_recorded"),
        "the later customs hear of the declaration lodged nationally"
    );
    // A declaration lodged nationally must name the office that accepted the guarantee (180).
    app.office("TR000200", &["departure", "exit"]).await;
    let mut elsewhere = Trip::new(app, &c);
    elsewhere.register().await;
    let accept = message("I1", &elsewhere.reference, json!({"office": "TR000200"}));
    elsewhere.send_ok(&c.tr, accept, "I2").await;
    let record = message("I7", &elsewhere.reference, json!({"office": "TR000100", "declaration": declaration()}));
    app.post(&c.tr, &record).await.assert_error(180, "/declaration/offices");

    // 308: a country of the itinerary has no customs party to forward to.
    let mut unserved = Trip::new(app, &c);
    unserved.register().await;
    let mut d = declaration();
    d["itinerary"] = json!(["TR", "UZ"]);
    d["offices"] =
        json!([{"code": "TR000100", "role": "departure"}, {"code": OFFICE_WITHOUT_CUSTOMS, "role": "destination"}]);
    let e9 = message("E9", &unserved.reference, json!({"declaration": d}));
    app.post(&c.holder, &e9).await.assert_error(308, "/declaration/itinerary/1");
}

/// The contract's order of rules: the 2xx answer before the 3xx other than
/// 301 and 380/331/320. I7 with no declaration on a guarantee not yet
/// accepted breaks 201 (needs an accepted guarantee) and 307 (no
/// declaration): 201 answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarantee_not_accepted_answers_201_before_a_missing_declaration_307() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    let record = message("I7", &trip.reference, json!({"office": "TR000100"}));
    app.post(&c.tr, &record).await.assert_error(201, "/guarantee_reference");
}
