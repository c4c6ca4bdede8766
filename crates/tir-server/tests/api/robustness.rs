//! Bodies of every wrong shape get a coded 4xx, never a 5xx.

use serde_json::{Value, json};

use tir_testkit::server::*;

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
async fn malformed_or_non_object_bodies_are_400_with_100() {
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
        reply.assert_error(100, "");
    }
    for kind in ["X99", "E2", "I15", "e1", "", " E1", "I5"] {
        let reply = app.post(&c.chain_a, &message(kind, &reference(), json!({"holder": HOLDER}))).await;
        reply.assert_error(102, "/type");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_400_with_100_and_the_server_stays_up() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let depth = 100_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    app.post_raw(&c.chain_a, arrays.clone()).await.assert_error(100, "");
    let objects = format!("{}1{}", "{\"a\":".repeat(depth / 5), "}".repeat(depth / 5));
    app.post_raw(&c.chain_a, objects).await.assert_error(100, "");
    let inside = format!(
        r#"{{"message_id":"m-deep","type":"E9","guarantee_reference":"XH25123456","declaration":{{"itinerary":{arrays}}}}}"#
    );
    app.post_raw(&c.holder, inside).await.assert_error(100, "");
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
        prop::sample::select(vec!["E1", "I9", "TR000100", "TUR/012/345", "XH123456789", "2099-12-31", ""])
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
                prop_assert_eq!(
                    json["error"]["class"].as_str(),
                    Some(class_of(code.unwrap() as u16)),
                    "{}",
                    reply.text
                );
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
