//! The signed journal head and the server's public keys (issue 14), both
//! public: any party may keep heads and detect a rewritten history
//! (docs/architecture.md, "Signed journal head"). And the task that signs.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use tir_model::Timestamp;
use tir_store::Store;
use utoipa::ToSchema;

use crate::App;
use crate::error::{ApiError, json_response};

/// `GET /v1/keys`: every key the server ever signed with, so old signatures still verify.
#[derive(Serialize, ToSchema)]
pub struct KeysView {
    keys: Vec<KeyView>,
}

/// One server key, public part only.
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    /// First 16 hex digits of SHA-256 of the public key's 32 bytes.
    #[schema(pattern = "^[0-9a-f]{16}$")]
    key_id: String,
    /// Always Ed25519.
    #[schema(example = "Ed25519")]
    algorithm: &'static str,
    /// The 32-byte Ed25519 public key (RFC 8032), as 64 lowercase hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    public_key: String,
    /// RFC 3339, UTC.
    created_at: String,
    /// RFC 3339, UTC; null for the current key. A retired key signs nothing new.
    retired_at: Option<String>,
}

/// `GET /v1/journal/head`: the latest signed checkpoint of the journal.
#[derive(Serialize, ToSchema)]
pub struct HeadView {
    /// The journal's length: the seq of its last entry (0 when it was empty).
    #[schema(minimum = 0)]
    entries: i64,
    /// That entry's hash, 64 hex digits (64 zeros when the journal was empty).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    head: String,
    /// When it was signed, RFC 3339 UTC with milliseconds, exactly as signed.
    signed_at: String,
    /// The key that signed it (see GET /v1/keys).
    #[schema(pattern = "^[0-9a-f]{16}$")]
    key_id: String,
    /// Ed25519 signature, 128 lowercase hex digits, of the UTF-8 bytes
    /// "tirhub-journal-head/v1\n{entries}\n{head}\n{signed_at}\n{key_id}" (no final newline).
    #[schema(pattern = "^[0-9a-f]{128}$")]
    signature: String,
}

fn time(ms: i64) -> String {
    Timestamp::from_unix_ms(ms).to_string()
}

#[utoipa::path(get, path = "/v1/keys", tag = "journal",
    responses((status = 200, description = "Every server key, oldest first: the current one has retired_at null", body = KeysView)))]
pub async fn keys(State(app): State<App>) -> Result<Response, ApiError> {
    let mut keys = app.store.server_keys().await?;
    if keys.is_empty() {
        // Before the signer's first run: the first signing creates the key.
        first_signing(&app.store).await?;
        keys = app.store.server_keys().await?;
    }
    let keys = keys
        .into_iter()
        .map(|k| KeyView {
            key_id: k.key_id,
            algorithm: tir_store::keys::ALGORITHM,
            public_key: k.public_key,
            created_at: time(k.created_at_ms),
            retired_at: k.retired_at_ms.map(time),
        })
        .collect();
    Ok(json_response(200, serde_json::to_string(&KeysView { keys }).expect("views serialize")))
}

#[utoipa::path(get, path = "/v1/journal/head", tag = "journal",
    responses((status = 200, description = "The latest signed journal head (signed every 10 s at most, when the journal moved)", body = HeadView)))]
pub async fn head(State(app): State<App>) -> Result<Response, ApiError> {
    let head = match app.store.signed_head().await? {
        Some(head) => head,
        None => {
            first_signing(&app.store).await?;
            app.store
                .signed_head()
                .await?
                .ok_or_else(|| tir_store::StoreError::Write("the journal head could not be signed".into()))?
        }
    };
    let view = HeadView {
        entries: head.entries,
        head: head.head,
        signed_at: head.signed_at,
        key_id: head.key_id,
        signature: head.signature,
    };
    Ok(json_response(200, serde_json::to_string(&view).expect("views serialize")))
}

/// A database with no signed head yet (the signer has not run): signs once.
/// Later requests read the stored head; no request signs after this.
async fn first_signing(store: &Arc<dyn Store>) -> Result<(), ApiError> {
    store.sign_head(tir_store::HEAD_SIGN_INTERVAL / 2).await?;
    Ok(())
}

/// Signs the journal's head at start and then every `interval`, through the
/// store's writer (see `Store::sign_head`); servers sharing a database sign no
/// closer together than half the interval. Runs until aborted.
pub(crate) async fn sign_heads(store: Arc<dyn Store>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match store.sign_head(interval / 2).await {
            Ok(reply) if reply.status == 409 => {
                tracing::error!(detail = %reply.body, "journal head NOT signed: the journal is shorter than a head signed before");
            }
            Ok(reply) if reply.status == 201 => tracing::debug!(head = %reply.body, "journal head signed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "signing the journal head failed; retried at the next checkpoint"),
        }
    }
}
