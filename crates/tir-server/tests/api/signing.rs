//! Signed holder messages (issue 14): a holder registers an Ed25519 key, then
//! its E9, E11 and E13 carry Tirhub-Holder-Signature over the body's exact
//! bytes. Signatures are made here with ed25519-dalek directly, as a holder's
//! own software would, not through tirhub's code.

use ed25519_dalek::{Signer, SigningKey};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use tir_testkit::server::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn public_hex(key: &SigningKey) -> String {
    hex(key.verifying_key().as_bytes())
}

fn key_id(key: &SigningKey) -> String {
    hex(&Sha256::digest(key.verifying_key().as_bytes()))[..16].to_owned()
}

/// The header value signing `body` with `key` under `key`'s id.
fn signature(key: &SigningKey, body: &[u8]) -> String {
    format!("keyid={}, ed25519={}", key_id(key), hex(&key.sign(body).to_bytes()))
}

fn key_path(tir_id: &str) -> String {
    format!("/v1/holders/{}/signing-key", encode(tir_id))
}

async fn put_key(app: &TestApp, token: &str, tir_id: &str, body: &str, signed_by: Option<&SigningKey>) -> Reply {
    let bearer = format!("Bearer {token}");
    let signed = signed_by.map(|k| signature(k, body.as_bytes()));
    let mut headers = vec![("authorization", bearer.as_str()), ("content-type", "application/json")];
    if let Some(value) = &signed {
        headers.push(("tirhub-holder-signature", value));
    }
    app.call_with_headers(Method::PUT, &key_path(tir_id), &headers, Some(body.as_bytes().to_vec())).await
}

fn key_body(key: &SigningKey) -> String {
    json!({"public_key": public_hex(key)}).to_string()
}

/// POST /v1/messages with these exact bytes and, if given, this signature header.
async fn post_signed(app: &TestApp, token: &str, body: &[u8], header: Option<&str>) -> Reply {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("authorization", bearer.as_str()), ("content-type", "application/json")];
    if let Some(value) = header {
        headers.push(("tirhub-holder-signature", value));
    }
    app.call_with_headers(Method::POST, "/v1/messages", &headers, Some(body.to_vec())).await
}

async fn verdict(app: &TestApp) -> Value {
    let (status, verdict) = app.get(&app.admin, "/v1/admin/journal/verify").await;
    assert_eq!(status, 200, "{verdict}");
    verdict
}

async fn only_the_holder_registers_its_key_and_customs_read_it(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let k = key(7);
    for (who, token) in [("another holder", &c.other_holder), ("a chain", &c.chain_a), ("customs", &c.tr)] {
        put_key(app, token, HOLDER, &key_body(&k), None).await.assert_error(380, "/tir_id");
        assert_eq!(verdict(app).await["ok"], true, "{who}");
    }
    // The admin has its own route (revocation), not this one.
    put_key(app, &app.admin, HOLDER, &key_body(&k), None).await.assert_error(380, "/tir_id");
    put_key(app, &c.holder, HOLDER, r#"{"public_key": "zz"}"#, None).await.assert_error(105, "/public_key");
    let not_hex = json!({"public_key": "z".repeat(64)}).to_string();
    put_key(app, &c.holder, HOLDER, &not_hex, None).await.assert_error(106, "/public_key");
    // The identity point: a key whose "signatures" anyone can make.
    let weak = json!({"public_key": format!("01{}", "00".repeat(31))}).to_string();
    put_key(app, &c.holder, HOLDER, &weak, None).await.assert_error(106, "/public_key");
    put_key(app, &c.holder, HOLDER, r#"{"public_key": 7}"#, None).await.assert_error(106, "/public_key");
    put_key(app, &c.holder, HOLDER, "{}", None).await.assert_error(101, "/public_key");
    let extra = json!({"public_key": public_hex(&k), "note": "x"}).to_string();
    put_key(app, &c.holder, HOLDER, &extra, None).await.assert_error(107, "/note");
    // A signature on the first registration: there is no key to have made it.
    put_key(app, &c.holder, HOLDER, &key_body(&k), Some(&k)).await.assert_error_status(403, 382, "");

    let (status, none) = app.get(&c.tr, &key_path(HOLDER)).await;
    assert_eq!((status, &none["current"], &none["keys"]), (200, &Value::Null, &json!([])), "{none}");

    // Upper-case hex is read, stored lower-case.
    let upper = json!({"public_key": public_hex(&k).to_uppercase()}).to_string();
    let created = put_key(app, &c.holder, HOLDER, &upper, None).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let view = created.json();
    assert_eq!(view["key_id"], key_id(&k));
    assert_eq!(view["public_key"], public_hex(&k));
    assert_eq!((view["tir_id"].as_str(), view["algorithm"].as_str()), (Some(HOLDER), Some("Ed25519")));
    assert_eq!(view["revoked_at"], Value::Null);
    // The same key again: nothing changes.
    let again = put_key(app, &c.holder, HOLDER, &key_body(&k), None).await;
    assert_eq!((again.status, again.json()), (200, view.clone()), "{}", again.text);

    for token in [&c.holder, &c.tr, &c.ge, &app.admin] {
        let (status, read) = app.get(token, &key_path(HOLDER)).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["current"], view, "{read}");
        assert_eq!(read["keys"], json!([view]), "{read}");
    }
    for token in [&c.other_holder, &c.chain_a] {
        app.get_reply(token, &key_path(HOLDER)).await.assert_error(380, "/tir_id");
    }
    // Another holder's key is its own business: registering one leaves HOLDER's alone.
    let other = put_key(app, &c.other_holder, OTHER_HOLDER, &key_body(&key(8)), None).await;
    assert_eq!(other.status, 201, "{}", other.text);
    assert_eq!(app.get(&c.tr, &key_path(HOLDER)).await.1["current"], view);
    assert_eq!(verdict(app).await["ok"], true);
}

/// E9, E11 and E13 of a holder with a key: refused unsigned, badly signed, or
/// signed over other bytes, with nothing changed; accepted signed; replayed.
async fn a_holder_with_a_key_signs_e9_e11_and_e13(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let k = key(11);
    assert_eq!(put_key(app, &c.holder, HOLDER, &key_body(&k), None).await.status, 201);
    let mut trip = Trip::new(app, &c);
    trip.register().await;
    let r = trip.reference.clone();
    let before = verdict(app).await;

    // Pretty-printed: the signature covers these bytes, whatever their spacing.
    let e9 = serde_json::to_string_pretty(&message("E9", &r, json!({"declaration": declaration()}))).unwrap();
    let e9 = e9.as_bytes();
    post_signed(app, &c.holder, e9, None).await.assert_error_status(403, 382, "");
    let other_key = key(12);
    let forged = format!("keyid={}, ed25519={}", key_id(&k), hex(&other_key.sign(e9).to_bytes()));
    post_signed(app, &c.holder, e9, Some(&forged)).await.assert_error_status(403, 382, "");
    post_signed(app, &c.holder, e9, Some(&signature(&other_key, e9))).await.assert_error_status(403, 382, "");
    // A signature of another body (here: the same message, compact) is not this body's.
    let compact = serde_json::to_vec(&serde_json::from_slice::<Value>(e9).unwrap()).unwrap();
    post_signed(app, &c.holder, e9, Some(&signature(&k, &compact))).await.assert_error_status(403, 382, "");
    for malformed in ["", "keyid=abc", "ed25519=00", &format!("keyid={}", key_id(&k))] {
        post_signed(app, &c.holder, e9, Some(malformed)).await.assert_error_status(403, 382, "");
    }
    // Nothing was journaled, and the refusals were not kept as the message's answer
    // (the same message_id, signed, is accepted below).
    assert_eq!(verdict(app).await["entries"], before["entries"]);

    let header = signature(&k, e9);
    let accepted = post_signed(app, &c.holder, e9, Some(&header)).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.json()["type"], "E10");
    // Replayed: the same answer, byte for byte; nothing journaled twice.
    let entries = verdict(app).await["entries"].clone();
    let replay = post_signed(app, &c.holder, e9, Some(&header)).await;
    assert_eq!((replay.status, &replay.text), (200, &accepted.text));
    assert_eq!(verdict(app).await["entries"], entries);

    let e11 = message("E11", &r, json!({"declaration": declaration()})).to_string();
    post_signed(app, &c.holder, e11.as_bytes(), None).await.assert_error_status(403, 382, "");
    let signed = post_signed(app, &c.holder, e11.as_bytes(), Some(&signature(&k, e11.as_bytes()))).await;
    assert_eq!((signed.status, signed.json()["type"].as_str()), (200, Some("E12")), "{}", signed.text);

    let e13 = message("E13", &r, json!({"reason": "the load changed"})).to_string();
    post_signed(app, &c.holder, e13.as_bytes(), None).await.assert_error_status(403, 382, "");
    let signed = post_signed(app, &c.holder, e13.as_bytes(), Some(&signature(&k, e13.as_bytes()))).await;
    assert_eq!((signed.status, signed.json()["type"].as_str()), (200, Some("E14")), "{}", signed.text);

    let after = verdict(app).await;
    assert_eq!((after["ok"].as_bool(), after["holder_signatures"].as_i64()), (Some(true), Some(3)), "{after}");

    // Messages no holder signs refuse a signature rather than ignore it.
    let i1 = message("I1", &r, json!({"office": "TR000100"})).to_string();
    post_signed(app, &c.tr, i1.as_bytes(), Some(&signature(&k, i1.as_bytes()))).await.assert_error_status(403, 382, "");
}

/// A holder without a key sends as before; a signature from it is refused.
async fn a_holder_without_a_key_is_unchanged(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::new(app, &c);
    trip.register().await;
    let e9 = message("E9", &trip.reference, json!({"declaration": declaration()})).to_string();
    let k = key(21);
    post_signed(app, &c.holder, e9.as_bytes(), Some(&signature(&k, e9.as_bytes())))
        .await
        .assert_error_status(403, 382, "");
    trip.advance().await;
    assert_eq!(verdict(app).await["holder_signatures"], 0);
}

/// Replacing a key takes a request signed with the current one; the admin
/// revokes a lost key; a revoked key signs nothing and is not registered again.
async fn a_key_is_replaced_only_with_the_current_keys_signature(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let (first, second, third) = (key(31), key(32), key(33));
    assert_eq!(put_key(app, &c.holder, HOLDER, &key_body(&first), None).await.status, 201);
    // A stolen token alone cannot replace the key...
    put_key(app, &c.holder, HOLDER, &key_body(&second), None).await.assert_error_status(403, 382, "");
    // ...nor can a request signed by the new key itself.
    put_key(app, &c.holder, HOLDER, &key_body(&second), Some(&second)).await.assert_error_status(403, 382, "");
    let replaced = put_key(app, &c.holder, HOLDER, &key_body(&second), Some(&first)).await;
    assert_eq!(replaced.status, 201, "{}", replaced.text);
    assert_eq!(replaced.json()["key_id"], key_id(&second));
    let (_, keys) = app.get(&c.tr, &key_path(HOLDER)).await;
    assert_eq!(keys["current"]["key_id"], key_id(&second));
    let all = keys["keys"].as_array().unwrap();
    assert_eq!(all.len(), 2, "{keys}");
    assert_eq!(all[0]["key_id"], key_id(&first));
    assert!(all[0]["revoked_at"].is_string(), "{keys}");

    let mut trip = Trip::new(app, &c);
    trip.register().await;
    let e9 = message("E9", &trip.reference, json!({"declaration": declaration()})).to_string();
    post_signed(app, &c.holder, e9.as_bytes(), Some(&signature(&first, e9.as_bytes())))
        .await
        .assert_error_status(403, 382, "");
    // The old key cannot come back.
    put_key(app, &c.holder, HOLDER, &key_body(&first), Some(&second)).await.assert_error(106, "/public_key");

    // The admin revokes (a lost key): the holder sends unsigned until it registers another.
    let revoke = format!("/v1/admin/holders/{}/signing-key", encode(HOLDER));
    app.call(Method::DELETE, &revoke, Some(&c.holder), None).await.assert_error(380, "");
    let revoked = app.call(Method::DELETE, &revoke, Some(&app.admin), None).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.json()["revoked"]["key_id"], key_id(&second));
    let again = app.call(Method::DELETE, &revoke, Some(&app.admin), None).await;
    assert_eq!((again.status, &again.json()["revoked"]), (200, &Value::Null), "{}", again.text);
    post_signed(app, &c.holder, e9.as_bytes(), Some(&signature(&second, e9.as_bytes())))
        .await
        .assert_error_status(403, 382, "");
    let unsigned = post_signed(app, &c.holder, e9.as_bytes(), None).await;
    assert_eq!(unsigned.status, 200, "{}", unsigned.text);
    assert_eq!(put_key(app, &c.holder, HOLDER, &key_body(&third), None).await.status, 201);
    let (_, keys) = app.get(&app.admin, &key_path(HOLDER)).await;
    assert_eq!(
        (keys["current"]["key_id"].as_str(), keys["keys"].as_array().map(Vec::len)),
        (Some(&*key_id(&third)), Some(3))
    );
    let verdict = verdict(app).await;
    assert_eq!((verdict["ok"].as_bool(), verdict["holder_signatures"].as_i64()), (Some(true), Some(0)), "{verdict}");
}

on_both_stores!(
    only_the_holder_registers_its_key_and_customs_read_it,
    a_holder_with_a_key_signs_e9_e11_and_e13,
    a_holder_without_a_key_is_unchanged,
    a_key_is_replaced_only_with_the_current_keys_signature,
);

/// The journal keeps the bytes as sent, the signature and the key: verified
/// here from the stored entry alone, with ed25519-dalek, as anyone could.
async fn the_journal_keeps_what_proves_the_declaration(mut app: TestApp) {
    let c = Corridor::seed(&app).await;
    let k = key(41);
    assert_eq!(put_key(&app, &c.holder, HOLDER, &key_body(&k), None).await.status, 201);
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    let e9 =
        serde_json::to_string_pretty(&message("E9", &trip.reference, json!({"declaration": declaration()}))).unwrap();
    let message_id = serde_json::from_str::<Value>(&e9).unwrap()["message_id"].as_str().unwrap().to_owned();
    let header = signature(&k, e9.as_bytes());
    assert_eq!(post_signed(&app, &c.holder, e9.as_bytes(), Some(&header)).await.status, 200);
    app.stop().await;

    let store = tir_store::open(app.db_url()).await.unwrap();
    let journal = store.journal(1, 10_000).await.unwrap();
    let registration = journal.iter().find(|e| e.message_type == "HOLDER_KEY").expect("the key is journaled");
    let registered: Value = serde_json::from_str(&registration.body).unwrap();
    assert_eq!((registered["tir_id"].as_str(), &registered["key_id"]), (Some(HOLDER), &json!(key_id(&k))));
    let entry = journal.iter().find(|e| e.message_id == message_id).expect("the E9 is journaled");
    let signed = entry.holder_signature.as_ref().expect("with its signature");
    assert_eq!(signed.signed_body, e9, "the bytes as sent, not the canonical body");
    assert_ne!(entry.body, e9);
    assert_eq!((signed.key_id.as_str(), signed.public_key.as_str()), (&*key_id(&k), &*public_hex(&k)));
    let public = ed25519_dalek::VerifyingKey::from_bytes(&unhex::<32>(&signed.public_key)).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&unhex::<64>(&signed.signature));
    public.verify_strict(signed.signed_body.as_bytes(), &sig).expect("verifies without tirhub");
    // Entries without a signature store none.
    assert!(journal.iter().filter(|e| e.message_type != "E9").all(|e| e.holder_signature.is_none()));
    let verdict = store.verify_journal().await.unwrap();
    assert!(verdict.ok, "{verdict:?}");
    assert_eq!(verdict.holder_signatures, 1);
}

fn unhex<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_keeps_what_proves_the_declaration_on_sqlite() {
    the_journal_keeps_what_proves_the_declaration(spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_keeps_what_proves_the_declaration_on_postgresql() {
    let Some(app) = spawn_app_pg().await else {
        eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
        return;
    };
    the_journal_keeps_what_proves_the_declaration(app).await;
}
