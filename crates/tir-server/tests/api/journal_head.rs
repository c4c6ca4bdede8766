//! The signed journal head and the server's keys (issue 14): public routes, a
//! signature any Ed25519 implementation verifies (here ed25519-dalek, over
//! the bytes as docs/architecture.md writes them, not through tirhub's code).

use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use reqwest::Method;
use serde_json::Value;

use tir_testkit::server::*;

fn unhex<const N: usize>(text: &str) -> [u8; N] {
    assert_eq!(text.len(), 2 * N, "{text}");
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
    out
}

/// `GET path` with no token at all.
async fn public(app: &TestApp, path: &str) -> Value {
    let reply = app.call(Method::GET, path, None, None).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    assert!(reply.content_type.starts_with("application/json"), "{}", reply.content_type);
    assert!(!reply.text.to_lowercase().contains("private"), "{}", reply.text);
    reply.json()
}

/// The head once a checkpoint has signed `entries` entries (the test server signs every `HEAD_INTERVAL`).
async fn head_of(app: &TestApp, entries: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let head = public(app, "/v1/journal/head").await;
        if head["entries"].as_u64() == Some(entries) {
            return head;
        }
        assert!(Instant::now() < deadline, "no head of {entries} entries signed in 20 s: {head}");
        tokio::time::sleep(HEAD_INTERVAL / 2).await;
    }
}

fn verifies(key: &VerifyingKey, head: &Value) -> bool {
    let signed = format!(
        "tirhub-journal-head/v1\n{}\n{}\n{}\n{}",
        head["entries"],
        head["head"].as_str().unwrap(),
        head["signed_at"].as_str().unwrap(),
        head["key_id"].as_str().unwrap()
    );
    let signature = Signature::from_bytes(&unhex::<64>(head["signature"].as_str().unwrap()));
    key.verify(signed.as_bytes(), &signature).is_ok()
}

async fn the_signed_head_is_public_verifies_with_the_published_key_and_matches_the_journal(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::new(app, &c);
    trip.full().await;
    let (status, verdict) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!((status, &verdict["ok"]), (200, &Value::Bool(true)), "{verdict}");
    let entries = verdict["entries"].as_u64().unwrap();
    assert!(entries > 13, "{verdict}");

    let head = head_of(app, entries).await;
    assert_eq!(head["head"], verdict["head"], "{head}");
    let fields: Vec<&String> = head.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["entries", "head", "key_id", "signature", "signed_at"], "{head}");

    let keys = public(app, "/v1/keys").await;
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = &keys[0];
    assert_eq!(
        (&key["key_id"], key["algorithm"].as_str(), &key["retired_at"]),
        (&head["key_id"], Some("Ed25519"), &Value::Null)
    );
    assert!(key["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{key}");
    let public_key = VerifyingKey::from_bytes(&unhex::<32>(key["public_key"].as_str().unwrap())).unwrap();
    assert!(verifies(&public_key, &head), "{head} does not verify with {key}");

    // Any other entries, head or time does not verify.
    for (field, value) in [
        ("entries", Value::from(entries - 1)),
        ("head", Value::from("0".repeat(64))),
        ("signed_at", Value::from("2000-01-01T00:00:00.000Z")),
    ] {
        let mut forged = head.clone();
        forged[field] = value;
        assert!(!verifies(&public_key, &forged), "a head with another {field} verifies");
    }

    // The journal moves: the next checkpoint signs the new head, with the same key.
    app.put_holder("TUR/012/401", "authorized").await;
    let later = head_of(app, entries + 1).await;
    let (_, verdict) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!((&later["head"], &later["key_id"]), (&verdict["head"], &head["key_id"]));
    assert!(verifies(&public_key, &later), "{later}");
}

on_both_stores!(the_signed_head_is_public_verifies_with_the_published_key_and_matches_the_journal);
