//! The served OpenAPI document.

use reqwest::Method;
use serde_json::{Value, json};

use tir_testkit::server::*;

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
        "/v1/holders/{tir_id}/signing-key",
        "/v1/admin/holders/{tir_id}/signing-key",
        "/v1/risk/profiles",
        "/v1/risk/profiles/{id}",
        "/v1/fallback",
        "/v1/fallback/{id}",
        "/v1/fallback/{id}/end",
        "/v1/fallback/{id}/reconciliation",
    ];
    for route in routes {
        assert!(paths.contains_key(route), "{route} is missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    // Every answer of a whole transport, and of each admin and query route,
    // is what the document says that route answers with that status.
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.full().await;
    let mut answers: Vec<(&str, &str, Reply)> = Vec::new();
    for sent in &trip.sent {
        answers.push(("/v1/messages", "post", sent.reply.clone()));
    }
    let guarantee = trip.path();
    for (path, route) in [
        (guarantee.clone(), "/v1/guarantees/{reference}"),
        (format!("{guarantee}/declaration"), "/v1/guarantees/{reference}/declaration"),
        (format!("{guarantee}/timeline"), "/v1/guarantees/{reference}/timeline"),
        (format!("/v1/guarantees/{}", reference()), "/v1/guarantees/{reference}"),
        ("/v1/holders/TUR%2F012%2F345".to_owned(), "/v1/holders/{tir_id}"),
        ("/v1/holders/TUR-012-345".to_owned(), "/v1/holders/{tir_id}"),
        ("/v1/offices/AZ000200".to_owned(), "/v1/offices/{code}"),
        ("/v1/notifications?limit=1000".to_owned(), "/v1/notifications"),
        ("/v1/notifications?limit=0".to_owned(), "/v1/notifications"),
        ("/health".to_owned(), "/health"),
    ] {
        answers.push((route, "get", app.get_reply(&c.ge, &path).await));
    }
    answers.push(("/v1/guarantees/{reference}", "get", app.get_reply(&c.am, &guarantee).await));
    answers.push(("/v1/notifications", "get", app.get_reply("not-a-token", "/v1/notifications").await));
    let late = message("I13", &trip.reference, json!({"office": "TR000100"}));
    answers.push(("/v1/messages", "post", app.post(&c.tr, &late).await));
    let unknown = message("I1", &reference(), json!({"office": "TR000100"}));
    answers.push(("/v1/messages", "post", app.post(&c.tr, &unknown).await));
    answers.push(("/v1/holders/{tir_id}", "get", app.get_reply(&c.ge, "/v1/holders/QQQ%2F012%2F345").await));
    answers.push(("/v1/offices/{code}", "get", app.get_reply(&c.ge, "/v1/offices/QQ000100").await));
    answers.push(("/v1/messages", "post", app.post(&c.tr, &message("I1", "XH1", json!({}))).await));
    answers.push(("/v1/messages", "post", app.post_raw(&c.tr, vec![b' '; 300 * 1024]).await));
    let plain = [("authorization", format!("Bearer {}", c.tr)), ("content-type", "text/plain".to_owned())];
    let plain: Vec<(&str, &str)> = plain.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let unknown_body = Some(b"{}".to_vec());
    answers.push((
        "/v1/messages",
        "post",
        app.call_with_headers(Method::POST, "/v1/messages", &plain, unknown_body).await,
    ));
    let admin = Some(app.admin.as_str());
    let party = |body: Value| Some(body.to_string().into_bytes());
    for body in [
        json!({"kind": "customs", "name": "Customs LT", "country": "LT"}),
        json!({"kind": "holder", "name": "Holder", "tir_id": "TUR/012/777"}),
        json!({"kind": "customs", "name": "Customs LT"}),
    ] {
        answers.push((
            "/v1/admin/parties",
            "post",
            app.call(Method::POST, "/v1/admin/parties", admin, party(body)).await,
        ));
    }
    let created = app.call(
        Method::POST,
        "/v1/admin/parties",
        admin,
        party(json!({"kind": "guarantee_chain", "name": "Chain C"})),
    );
    let created = created.await.json();
    let revoke = format!("/v1/admin/parties/{}", created["id"].as_str().unwrap());
    answers.push(("/v1/admin/parties/{id}", "delete", app.call(Method::DELETE, &revoke, admin, None).await));
    answers.push((
        "/v1/admin/parties/{id}",
        "delete",
        app.call(Method::DELETE, "/v1/admin/parties/gc_0", admin, None).await,
    ));
    let office =
        json!({"code": "LTMDK001", "country": "LT", "name": "Medininkai", "roles": ["departure"], "unlocode": "LTMDK"});
    answers.push((
        "/v1/admin/offices",
        "post",
        app.call(Method::POST, "/v1/admin/offices", admin, party(office)).await,
    ));
    let holder = json!({"name": "Carrier", "country": "TR", "status": "authorized"});
    let put_holder = app.call(Method::PUT, "/v1/admin/holders/TUR%2F012%2F777", admin, party(holder)).await;
    answers.push(("/v1/admin/holders/{tir_id}", "put", put_holder));
    answers.push(("/v1/admin/journal/verify", "get", app.get_reply(&app.admin, "/v1/admin/journal/verify").await));
    answers.push(("/v1/admin/journal/verify", "get", app.get_reply(&c.tr, "/v1/admin/journal/verify").await));
    let draft = crate::risk::draft();
    let created = crate::risk::create(&app, &c.ge, &draft).await;
    let profile = format!("/v1/risk/profiles/{}", created.json()["id"].as_str().unwrap());
    answers.push(("/v1/risk/profiles", "post", created));
    let mut bad = draft.clone();
    bad["expression"] = json!("total_value >");
    answers.push(("/v1/risk/profiles", "post", crate::risk::create(&app, &c.ge, &bad).await));
    let mut scoped = draft.clone();
    scoped["office_scope"] = json!({"offices": ["GE000100"]});
    scoped["valid_until"] = json!("2027-01-01");
    let edited = app.call(Method::PUT, &profile, Some(&c.ge), party(scoped.clone())).await;
    answers.push(("/v1/risk/profiles/{id}", "put", edited));
    // Signing keys (issue 14): registered, the same again, refused; read; revoked.
    let key_path = format!("/v1/holders/{}/signing-key", encode(HOLDER));
    let signing = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let public: String = signing.verifying_key().as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let key = json!({"public_key": public});
    for token in [&c.holder, &c.holder, &c.other_holder] {
        let put = app.call(Method::PUT, &key_path, Some(token), Some(key.to_string().into())).await;
        answers.push(("/v1/holders/{tir_id}/signing-key", "put", put));
    }
    let bad_key = json!({"public_key": "xyz"}).to_string();
    let put = app.call(Method::PUT, &key_path, Some(&c.holder), Some(bad_key.into())).await;
    answers.push(("/v1/holders/{tir_id}/signing-key", "put", put));
    answers.push(("/v1/holders/{tir_id}/signing-key", "get", app.get_reply(&c.tr, &key_path).await));
    answers.push(("/v1/holders/{tir_id}/signing-key", "get", app.get_reply(&c.chain_a, &key_path).await));
    let revoke_key = format!("/v1/admin/holders/{}/signing-key", encode(HOLDER));
    for _ in 0..2 {
        let revoked = app.call(Method::DELETE, &revoke_key, admin, None).await;
        answers.push(("/v1/admin/holders/{tir_id}/signing-key", "delete", revoked));
    }
    answers.push(("/v1/holders/{tir_id}/signing-key", "get", app.get_reply(&app.admin, &key_path).await));
    let unknown = app.call(Method::PUT, "/v1/risk/profiles/0000", Some(&c.ge), party(scoped)).await;
    answers.push(("/v1/risk/profiles/{id}", "put", unknown));
    answers.push(("/v1/risk/profiles/{id}", "get", app.get_reply(&c.ge, &profile).await));
    answers.push(("/v1/risk/profiles/{id}", "get", app.get_reply(&c.tr, &profile).await));
    answers.push(("/v1/risk/profiles", "get", app.get_reply(&c.ge, "/v1/risk/profiles").await));
    answers.push(("/v1/risk/profiles", "get", app.get_reply(&c.holder, "/v1/risk/profiles").await));
    // The fallback procedure (issue 15): declared, repeated, refused, read, ended, reconciled.
    let declaration = json!({"scope": "GE", "reason": "link down", "from": "2026-01-01T00:00:00Z"});
    let declared = app.call(Method::POST, "/v1/fallback", Some(&c.ge), party(declaration.clone())).await;
    let period = format!("/v1/fallback/{}", declared.json()["id"].as_str().unwrap());
    answers.push(("/v1/fallback", "post", declared));
    answers.push((
        "/v1/fallback",
        "post",
        app.call(Method::POST, "/v1/fallback", Some(&c.ge), party(declaration)).await,
    ));
    let foreign = json!({"scope": "TR", "reason": "x", "from": "2026-01-01T00:00:00Z"});
    answers.push(("/v1/fallback", "post", app.call(Method::POST, "/v1/fallback", Some(&c.ge), party(foreign)).await));
    answers.push(("/v1/fallback", "get", app.get_reply(&c.ge, "/v1/fallback").await));
    answers.push(("/v1/fallback/{id}", "get", app.get_reply(&c.ge, &period).await));
    answers.push(("/v1/fallback/{id}", "get", app.get_reply(&c.tr, &period).await));
    let until = json!({"until": "2026-01-01T01:00:00Z"});
    let end = format!("{period}/end");
    answers.push(("/v1/fallback/{id}/end", "post", app.call(Method::POST, &end, Some(&c.ge), party(until)).await));
    let reconciliation = format!("{period}/reconciliation");
    answers.push(("/v1/fallback/{id}/reconciliation", "get", app.get_reply(&c.ge, &reconciliation).await));
    answers.push(("/v1/fallback/{id}/reconciliation", "get", app.get_reply(&c.holder, &reconciliation).await));
    let statuses: std::collections::BTreeSet<u16> = answers.iter().map(|(_, _, reply)| reply.status).collect();
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        [200, 201, 400, 401, 403, 404, 409, 413, 415, 422],
        "answers of each kind"
    );
    for (route, method, reply) in &answers {
        let response = &doc["paths"][route][method]["responses"][reply.status.to_string()];
        assert!(response.is_object(), "{method} {route} answered {} but the document does not list it", reply.status);
        let schema = &response["content"]["application/json"]["schema"];
        if let Err(e) = conforms(&doc, schema, &reply.json(), "") {
            panic!("{method} {route} {}: {e}\n{}", reply.status, reply.text);
        }
    }

    // And every documented path is served (no "no such route" fallback).
    for (path, operations) in paths {
        let concrete = path
            .replace("{reference}", "XH123456789")
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

/// Whether `value` is valid by `schema`: types, required and documented
/// properties (an answer has no field the document does not name), items, enums.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return conforms(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(all) = schema["allOf"].as_array() {
        return all.iter().try_for_each(|s| conforms(doc, s, value, at));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(variants) = schema[key].as_array() {
            let errors: Vec<String> = variants.iter().filter_map(|s| conforms(doc, s, value, at).err()).collect();
            return if errors.len() < variants.len() { Ok(()) } else { Err(errors.join("; ")) };
        }
    }
    let type_name = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let number_as_integer = type_name == "integer" && types.contains(&"number");
    if !types.is_empty() && !types.contains(&type_name) && !number_as_integer {
        return Err(format!("{at}: {type_name}, documented as {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not among the documented values"));
    }
    match value {
        Value::Object(fields) if schema["properties"].is_object() => {
            let properties = schema["properties"].as_object().unwrap();
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap();
                if !fields.contains_key(name) {
                    return Err(format!("{at}/{name}: required, missing"));
                }
            }
            for (name, field) in fields {
                let Some(property) = properties.get(name) else {
                    return Err(format!("{at}/{name}: not in the document"));
                };
                conforms(doc, property, field, &format!("{at}/{name}"))?;
            }
            Ok(())
        }
        Value::Array(items) if schema["items"].is_object() => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| conforms(doc, &schema["items"], item, &format!("{at}/{i}"))),
        _ => Ok(()),
    }
}
