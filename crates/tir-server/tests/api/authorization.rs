//! Who may read and act on a guarantee, and who may not.

use reqwest::Method;
use serde_json::json;

use tir_testkit::server::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customs_off_the_itinerary_can_neither_read_nor_act_even_through_its_own_office() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    app.get_reply(&c.am, &trip.path()).await.assert_error(380, "/reference");
    let fields = json!({"office": "AM000100", "reservations": [], "reason": "no", "seals": [SEAL]});
    for kind in ["I1", "I7", "I9", "I11", "I13", "I17"] {
        let body = message_of(kind, &trip.reference, &fields);
        app.post(&c.am, &body).await.assert_error(380, "/guarantee_reference");
    }
    // With advance data only, the itinerary already decides.
    let mut early = Trip::new(&app, &c);
    early.register().await;
    early.advance().await;
    app.get_reply(&c.am, &early.path()).await.assert_error(380, "/reference");
    app.post(&c.am, &message("I1", &early.reference, json!({"office": "AM000100"})))
        .await
        .assert_error(380, "/guarantee_reference");
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
    trip.up_to_accepted().await;
    // AM is on neither the advance data nor the acceptance: an I7 naming itself must not let it in.
    let mut own = declaration();
    own["itinerary"] = json!(["AM", "GE", "AZ"]);
    own["offices"][0]["code"] = json!("AM000100");
    let hijack = message("I7", &trip.reference, json!({"office": "AM000100", "declaration": own}));
    let reply = app.post(&c.am, &hijack).await;
    let body = reply.json();
    assert_eq!((reply.status, body["error"]["code"].as_u64()), (403, Some(380)), "{}", reply.text);
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
    trip.up_to_accepted().await;
    let mut own = declaration();
    own["seals"] = json!(["TR-999999"]);
    let record = message("I7", &trip.reference, json!({"office": "TR000100", "declaration": own}));
    let (status, body) = app.send(&c.tr, &record).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["guarantee"]["transport"]["declaration_state"], "recorded");
    let (status, recorded) = app.get(&c.tr, &format!("/v1/guarantees/{}/declaration", trip.reference)).await;
    assert_eq!(status, 200, "{recorded}");
    assert_eq!(recorded["declaration"]["seals"], json!(["TR-999999"]));
    // The seals customs report at the first start are the transport's, whatever was declared.
    let start = message("I9", &trip.reference, json!({"office": "TR000100", "seals": [SEAL]}));
    let (status, started) = app.send(&c.tr, &start).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["guarantee"]["transport"]["seals"], json!([SEAL]));
    assert_eq!(started["guarantee"]["transport"]["operations"][0]["findings"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customs_acting_through_another_countrys_office_is_403_with_380() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    trip.advance().await;
    let r = trip.reference.clone();
    let fields = |office: &str| json!({"office": office, "reservations": [], "reason": "no"});
    app.post(&c.ge, &message_of("I1", &r, &fields("TR000100"))).await.assert_error(380, "/office");
    app.post(&c.am, &message_of("I1", &r, &fields("TR000100"))).await.assert_error(380, "/office");
    trip.accept().await;
    trip.record().await;
    for kind in ["I1", "I7", "I9", "I11", "I13", "I17"] {
        app.post(&c.tr, &message_of(kind, &r, &fields("GE000100"))).await.assert_error(380, "/office");
        app.post(&c.ge, &message_of(kind, &r, &fields("TR000100"))).await.assert_error(380, "/office");
        app.post(&c.az, &message_of(kind, &r, &fields("GE000100"))).await.assert_error(380, "/office");
    }
    // Only a departure office of the declaration accepts the guarantee.
    let mut other = Trip::new(&app, &c);
    other.register().await;
    other.advance().await;
    app.post(&c.ge, &message_of("I1", &other.reference, &fields("GE000100"))).await.assert_error(380, "/office");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offices_in_the_wrong_role_cannot_start_or_terminate_and_get_403_with_380() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    app.office("TR000300", &["exit"]).await;
    app.office("GE000300", &["exit"]).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    let r = trip.reference.clone();
    // An exit-only office neither starts the first operation nor refuses to.
    app.post(&c.tr, &message("I9", &r, json!({"office": "TR000300"}))).await.assert_error(380, "/office");
    app.post(&c.tr, &message("I17", &r, json!({"office": "TR000300", "reason": "no"})))
        .await
        .assert_error(380, "/office");
    trip.start("TR").await;
    // ...but the transport may leave the country through it.
    let (status, body) = app.send(&c.tr, &message("I11", &r, json!({"office": "TR000300", "reservations": []}))).await;
    assert_eq!(status, 200, "{body}");
    app.post(&c.ge, &message("I9", &r, json!({"office": "GE000300"}))).await.assert_error(380, "/office");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holder_can_neither_read_nor_act_on_another_holders_guarantee() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    assert_eq!(app.get_reply(&c.holder, &trip.path()).await.status, 200);
    app.get_reply(&c.other_holder, &trip.path()).await.assert_error(380, "/reference");
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
    app.get_reply(&c.chain_b, &trip.path()).await.assert_error(380, "/reference");
    let cancel = message("E3", &trip.reference, json!({"reason": "not mine"}));
    app.post(&c.chain_b, &cancel).await.assert_error(331, "/guarantee_reference");
    let (_, view) = app.get(&c.chain_a, &trip.path()).await;
    assert_eq!(view["state"], "registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_admins_get_403_with_380_on_every_admin_route() {
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
            app.call(method, path, Some(token), body).await.assert_error(380, "");
        }
    }
    assert_eq!(app.admin_writes(), writes_before);
    let (_, office) = app.get(&c.tr, "/v1/offices/TR000999").await;
    assert_eq!(office["error"]["code"], 304, "the office was not created");
    let (_, holder) = app.get(&c.tr, "/v1/holders/TUR%2F012%2F999").await;
    assert_eq!(holder["status"], "withdrawn", "the ITDB entry did not change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn party_sending_another_kinds_message_type_is_403_with_380() {
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
            app.post(token, &message_of(kind, &r, &all)).await.assert_error(380, "/type");
        }
    }
    let (_, view) = app.get(&c.chain_a, &trip.path()).await;
    assert_eq!(view["state"], "registered");
}
