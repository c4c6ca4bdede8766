//! The served OpenAPI document.

use reqwest::Method;
use serde_json::Value;

use crate::support::*;

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
