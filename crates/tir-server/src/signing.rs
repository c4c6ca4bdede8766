//! Signed holder messages (issue 14; TIR Convention Annex 11, Art. 7 and 8:
//! the holder's declaration is authenticated). A holder registers an Ed25519
//! public key; from then on its E9, E11 and E13 carry, in the header
//! `Tirhub-Holder-Signature: keyid=<16 hex>, ed25519=<128 hex>`, a detached
//! signature over the request body's exact bytes. The signature covers bytes,
//! not JSON: nothing needs canonicalizing, and any Ed25519 tool verifies it
//! from the journal (docs/etir-binding.md, "Signed holder messages").

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use tir_model::message::MessageType;
use tir_model::party::Party;
use tir_model::wire::{Obj, parse_at};
use tir_model::{ErrorCode, EtirError, TirId};
use tir_store::holder_keys::{self, HolderKey};
use tir_store::{HolderKeyWrite, HolderSignature};
use utoipa::ToSchema;

use crate::App;
use crate::auth::{Admin, AnyParty};
use crate::error::{ApiError, body_rejection, json_body, json_response};
use crate::openapi::ErrorBody;
use crate::queries::path_rejection;

/// The request header carrying a holder's signature.
pub const SIGNATURE_HEADER: &str = "tirhub-holder-signature";

/// The messages a holder with a key signs: its declaration and what changes it.
pub fn is_signed_kind(kind: MessageType) -> bool {
    matches!(kind, MessageType::E9 | MessageType::E11 | MessageType::E13)
}

fn refused(detail: impl Into<String>) -> ApiError {
    ApiError::Etir(EtirError::new(ErrorCode::HolderSignatureInvalid, "").with_detail(detail))
}

/// The signature header, parsed: `None` when absent; 403/382 when given twice or malformed.
/// Its value is `keyid=<16 hex>, ed25519=<128 hex>` (parameters in either order,
/// spaces around them ignored, hex in either case).
pub fn signature_header(headers: &HeaderMap) -> Result<Option<(String, [u8; 64])>, ApiError> {
    let mut values = headers.get_all(SIGNATURE_HEADER).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(refused("one Tirhub-Holder-Signature header at most"));
    }
    let value = value.to_str().map_err(|_| refused("the signature header is not ASCII"))?;
    parse_signature(value).map(Some).map_err(refused)
}

/// `keyid=<16 hex>, ed25519=<128 hex>`; `Err` says what is wrong.
pub fn parse_signature(value: &str) -> Result<(String, [u8; 64]), String> {
    let (mut key_id, mut signature) = (None, None);
    for part in value.split(',') {
        let (name, raw) = part.split_once('=').ok_or("the header is keyid=<16 hex>, ed25519=<128 hex>")?;
        let slot = match name.trim() {
            "keyid" => &mut key_id,
            "ed25519" => &mut signature,
            other => return Err(format!("unknown parameter {other:?}: keyid and ed25519 only")),
        };
        if slot.replace(raw.trim()).is_some() {
            return Err(format!("{} given twice", name.trim()));
        }
    }
    let key_id = key_id.ok_or("no keyid")?;
    if key_id.len() != 16 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("keyid is 16 hex digits".into());
    }
    let signature = signature.ok_or("no ed25519 signature")?;
    let signature = holder_keys::unhex::<64>(signature).ok_or("the ed25519 signature is 128 hex digits")?;
    Ok((key_id.to_ascii_lowercase(), signature))
}

/// The holder's current key, if it has one.
async fn current_key(app: &App, tir_id: &str) -> Result<Option<HolderKey>, ApiError> {
    Ok(app.store.holder_keys(tir_id).await?.into_iter().find(|k| k.revoked_at_ms.is_none()))
}

/// Checks `header` (already parsed) against `key` over `body`: 403/382 unless it
/// names that key and verifies. Returns the signature to journal.
fn verify_with(key: &HolderKey, header: (String, [u8; 64]), body: &[u8]) -> Result<HolderSignature, ApiError> {
    let (key_id, signature) = header;
    if key_id != key.key_id {
        return Err(refused(format!(
            "key {key_id} is not the current signing key of {} (it is {})",
            key.tir_id, key.key_id
        )));
    }
    let public = holder_keys::unhex::<32>(&key.public_key)
        .ok_or_else(|| tir_store::StoreError::Corrupt(format!("holder key {}: bad public key", key.key_id)))?;
    holder_keys::verify(&public, &signature, body).map_err(refused)?;
    let signed_body = String::from_utf8(body.to_vec()).map_err(|_| refused("the body is not UTF-8"))?;
    Ok(HolderSignature {
        tir_id: key.tir_id.clone(),
        key_id,
        public_key: key.public_key.clone(),
        signature: holder_keys::to_hex(&signature),
        signed_body,
    })
}

/// The signature a message must carry, checked before the store sees it:
/// a holder with a current key signs its E9, E11 and E13 (403/382 otherwise);
/// a signature on any other message, or from a holder with no key, is refused
/// too (a signature the server would ignore proves nothing). `body` is the
/// request's exact bytes.
pub(crate) async fn check_message(
    app: &App,
    sender: &Party,
    kind: MessageType,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<HolderSignature>, ApiError> {
    let header = signature_header(headers)?;
    let Party::Holder { tir_id, .. } = sender else {
        return match header {
            None => Ok(None),
            Some(_) => Err(refused("only a holder's E9, E11 and E13 carry a signature")),
        };
    };
    if !is_signed_kind(kind) {
        return match header {
            None => Ok(None),
            Some(_) => Err(refused("only a holder's E9, E11 and E13 carry a signature")),
        };
    }
    match (current_key(app, tir_id.as_str()).await?, header) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(refused(format!("{tir_id} has no signing key registered"))),
        (Some(key), None) => Err(refused(format!(
            "{tir_id} signs its {kind:?} with key {}: Tirhub-Holder-Signature is missing",
            key.key_id
        ))),
        (Some(key), Some(header)) => verify_with(&key, header, body).map(Some),
    }
}

/// The body of `PUT /v1/holders/{tir_id}/signing-key`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body `put_key` reads
struct SigningKeyBody {
    /// The Ed25519 public key (RFC 8032), 32 bytes as 64 hex digits.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    public_key: String,
}

/// A holder's signing key.
#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by tir-store (`HolderKey::view`)
pub struct HolderKeyView {
    tir_id: TirId,
    /// First 16 hex digits of SHA-256 of the public key's 32 bytes.
    #[schema(pattern = "^[0-9a-f]{16}$")]
    key_id: String,
    /// Always Ed25519.
    #[schema(example = "Ed25519")]
    algorithm: String,
    /// 64 lowercase hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    public_key: String,
    /// The party that registered it.
    registered_by: String,
    /// RFC 3339, UTC.
    registered_at: String,
    /// RFC 3339, UTC; null for the current key. A revoked key signs nothing new.
    revoked_at: Option<String>,
}

/// `GET /v1/holders/{tir_id}/signing-key`.
#[derive(Serialize, ToSchema)]
pub struct HolderKeysView {
    tir_id: String,
    /// The key its E9, E11 and E13 must be signed with; null: they are not signed.
    #[schema(value_type = Option<HolderKeyView>)]
    current: Option<serde_json::Value>,
    /// Every key it registered, oldest first (so old signatures still verify).
    #[schema(value_type = Vec<HolderKeyView>)]
    keys: Vec<serde_json::Value>,
}

/// The answer to the admin's revocation.
#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by tir-store
struct HolderKeyRevoked {
    tir_id: TirId,
    /// The key revoked; null when the holder had no current key (nothing changed).
    revoked: Option<HolderKeyView>,
}

fn tir_id_of(raw: Result<Path<String>, PathRejection>) -> Result<TirId, ApiError> {
    let Path(raw) = raw.map_err(|r| path_rejection("/tir_id", r))?;
    Ok(parse_at(&raw, "/tir_id", TirId::parse)?)
}

#[utoipa::path(put, path = "/v1/holders/{tir_id}/signing-key", tag = "holders",
    params(("tir_id" = TirId, Path, description = "TIR id, percent-encoded: LTU%2F012%2F345"),
        ("Tirhub-Holder-Signature" = Option<String>, Header, pattern = r"^ *(keyid|ed25519)=[0-9a-fA-F]+ *, *(keyid|ed25519)=[0-9a-fA-F]+ *$",
        description = "keyid=<16 hex>, ed25519=<128 hex>: the holder's Ed25519 signature over the request body's exact bytes, by its current signing key (docs/etir-binding.md, \"Signed holder messages\")")),
    request_body(content = SigningKeyBody, description = "The holder's new key. When it has a current key, the request carries Tirhub-Holder-Signature by that key over these body bytes"),
    responses(
        (status = 201, description = "The key, now current (a current key before it is revoked)", body = HolderKeyView),
        (status = 200, description = "The key was current already: nothing changed", body = HolderKeyView),
        (status = 400, description = "Codes 100, 101, 105, 106 (not 64 hex digits, not a usable Ed25519 key, or a key of this holder revoked before), 107", body = ErrorBody),
        (status = 403, description = "Code 380: not the holder of this TIR id. Code 382: the holder has a current key and the request is not signed with it", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn put_key(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    tir_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let tir_id = tir_id_of(tir_id)?;
    let by = match &party {
        Party::Holder { id, tir_id: own } if *own == tir_id => id.clone(),
        _ => return Err(ApiError::code(ErrorCode::PartyNotAuthorized, "/tir_id")),
    };
    let bytes = body.map_err(body_rejection)?;
    let value = json_body(&headers, Ok(bytes.clone()))?;
    let obj = Obj::new(&value, "")?;
    let public_key = obj.parse("public_key", holder_keys::parse_public_key)?;
    obj.finish()?;
    let header = signature_header(&headers)?;
    let signed_by = match (current_key(&app, tir_id.as_str()).await?, header) {
        (_, None) => None,
        (None, Some(_)) => return Err(refused(format!("{tir_id} has no signing key to sign this request with"))),
        (Some(key), Some(header)) => Some(verify_with(&key, header, &bytes)?.key_id),
    };
    let write = HolderKeyWrite {
        tir_id: tir_id.as_str().to_owned(),
        by,
        public_key: holder_keys::to_hex(&public_key),
        signed_by,
    };
    let reply = app.store.put_holder_key(write).await?;
    Ok(json_response(reply.status, reply.body))
}

#[utoipa::path(get, path = "/v1/holders/{tir_id}/signing-key", tag = "holders",
    params(("tir_id" = TirId, Path, description = "TIR id, percent-encoded: LTU%2F012%2F345")),
    responses(
        (status = 200, description = "The holder's current key (null: its messages are not signed) and every key it registered", body = HolderKeysView),
        (status = 400, description = "Codes 105, 106: a malformed TIR id", body = ErrorBody),
        (status = 403, description = "Code 380: neither the holder itself, customs nor the admin", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_key(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    tir_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let tir_id = tir_id_of(tir_id)?;
    let allowed = match &party {
        Party::Admin | Party::Customs { .. } => true,
        Party::Holder { tir_id: own, .. } => *own == tir_id,
        Party::GuaranteeChain { .. } => false,
    };
    if !allowed {
        return Err(ApiError::code(ErrorCode::PartyNotAuthorized, "/tir_id"));
    }
    let keys = app.store.holder_keys(tir_id.as_str()).await?;
    let view = HolderKeysView {
        tir_id: tir_id.as_str().to_owned(),
        current: keys.iter().find(|k| k.revoked_at_ms.is_none()).map(HolderKey::view),
        keys: keys.iter().map(HolderKey::view).collect(),
    };
    Ok(json_response(200, serde_json::to_string(&view).expect("views serialize")))
}

#[utoipa::path(delete, path = "/v1/admin/holders/{tir_id}/signing-key", tag = "admin",
    params(("tir_id" = TirId, Path, description = "TIR id, percent-encoded: LTU%2F012%2F345")),
    responses(
        (status = 200, description = "The holder's current key revoked (a lost or stolen key): its messages are unsigned until it registers a new one. Again: revoked null", body = HolderKeyRevoked),
        (status = 400, description = "Codes 105, 106: a malformed TIR id", body = ErrorBody),
        (status = 403, description = "Not the admin: code 380", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn revoke_key(
    State(app): State<App>,
    _: Admin,
    tir_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let tir_id = tir_id_of(tir_id)?;
    let reply = app.store.revoke_holder_key(tir_id.as_str()).await?;
    Ok(json_response(reply.status, reply.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_a_key_and_a_signature() {
        let sig = "ab".repeat(64);
        let (key_id, signature) = parse_signature(&format!("keyid=0123456789ABCDEF, ed25519={sig}")).unwrap();
        assert_eq!(key_id, "0123456789abcdef");
        assert_eq!(signature, [0xab; 64]);
        assert!(parse_signature(&format!(" ed25519={sig} ,keyid=0123456789abcdef ")).is_ok());
        for (bad, why) in [
            ("keyid=0123456789abcdef".to_owned(), "no ed25519"),
            (format!("ed25519={sig}"), "no keyid"),
            (format!("keyid=0123, ed25519={sig}"), "16 hex"),
            (format!("keyid=0123456789abcdef, ed25519={}", &sig[2..]), "128 hex"),
            (format!("keyid=0123456789abcdef, ed25519={sig}, keyid=0123456789abcdef"), "twice"),
            (format!("keyid=0123456789abcdef, rsa={sig}"), "unknown parameter"),
            ("garbage".to_owned(), "keyid=<16 hex>"),
        ] {
            let e = parse_signature(&bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_holder_signs_its_declaration_and_what_changes_it() {
        let signed: Vec<MessageType> = MessageType::ALL.into_iter().filter(|k| is_signed_kind(*k)).collect();
        assert_eq!(signed, [MessageType::E9, MessageType::E11, MessageType::E13]);
    }
}
