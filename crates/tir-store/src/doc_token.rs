//! The accompanying document's token (issue 15): what its QR code holds, signed
//! with the server's current Ed25519 key (`keys`), so that a paper document can
//! be checked with no network against the keys of `GET /v1/keys`.
//!
//! `TIR1.<payload>.<signature>`: `payload` is base64url (RFC 4648 §5, no
//! padding) of the compact JSON `{"ref":…,"v":…,"sha256":…,"iat":…,"kid":…}`
//! (keys in that order, no spaces); `signature` is base64url of the 64-byte
//! Ed25519 signature of the ASCII bytes `TIR1.<payload>` (everything before the
//! second dot). Only the characters `A-Z a-z 0-9 - _ .` occur.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::holder_keys::unhex;
use crate::keys::{PublicKey, ServerKey};

/// The token's first part: names the format and its version.
pub const PREFIX: &str = "TIR1";

/// What a token states: this declaration version, with this SHA-256, existed at `iat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The guarantee reference.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The declaration version (1 as recorded, one more per accepted amendment).
    pub v: u32,
    /// SHA-256 of the declaration's canonical JSON as stored, 64 lowercase hex digits.
    pub sha256: String,
    /// When it was signed, RFC 3339 UTC with milliseconds.
    pub iat: String,
    /// The signing key's id (see `GET /v1/keys`).
    pub kid: String,
}

/// Why a token does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token at all (wrong shape, encoding or payload).
    Unreadable(String),
    /// A well-formed token whose signature does not verify (or under no known key).
    Invalid(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Unreadable(why) => write!(f, "unreadable: {why}"),
            TokenError::Invalid(why) => write!(f, "invalid: {why}"),
        }
    }
}

/// Signs `claims` (its `kid` must be `key`'s id) into a token.
pub fn sign(key: &ServerKey, claims: &Claims) -> String {
    debug_assert_eq!(claims.kid, key.key_id);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signed = format!("{PREFIX}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(key.signing.sign(signed.as_bytes()).to_bytes());
    format!("{signed}.{signature}")
}

/// The claims a token makes, read without checking its signature.
pub fn read(token: &str) -> Result<(Claims, &str, [u8; 64]), TokenError> {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(prefix), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Unreadable("a token has three parts separated by dots".into()));
    };
    if prefix != PREFIX {
        return Err(TokenError::Unreadable(format!("a token starts with {PREFIX}.")));
    }
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| TokenError::Unreadable(format!("the payload is not base64url: {e}")))?;
    let claims: Claims = serde_json::from_slice(&json)
        .map_err(|e| TokenError::Unreadable(format!("the payload is not the token's JSON: {e}")))?;
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| TokenError::Unreadable("the signature is not 64 bytes of base64url".into()))?;
    let signed = &token[..PREFIX.len() + 1 + payload.len()];
    Ok((claims, signed, signature))
}

/// Checks a token against the published keys: its claims when the key it names
/// is one of `keys` and the signature verifies.
pub fn verify(token: &str, keys: &[PublicKey]) -> Result<Claims, TokenError> {
    let (claims, signed, signature) = read(token)?;
    let Some(key) = keys.iter().find(|k| k.key_id == claims.kid) else {
        return Err(TokenError::Invalid(format!("key {} is not one of the published keys", claims.kid)));
    };
    let public = unhex::<32>(&key.public_key)
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .ok_or_else(|| TokenError::Invalid(format!("key {}: the published public key is malformed", key.key_id)))?;
    public
        .verify(signed.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| TokenError::Invalid(format!("the signature does not verify with key {}", key.key_id)))?;
    Ok(claims)
}

/// The keys of a `GET /v1/keys` body (`{"keys": [{key_id, public_key, ...}]}`).
pub fn keys_from_view(body: &serde_json::Value) -> Result<Vec<PublicKey>, String> {
    let list = body["keys"].as_array().ok_or("no \"keys\" list: not the body of GET /v1/keys")?;
    list.iter()
        .map(|k| {
            let text = |f: &str| k[f].as_str().map(str::to_owned).ok_or_else(|| format!("a key has no {f:?}"));
            Ok(PublicKey {
                key_id: text("key_id")?,
                public_key: text("public_key")?,
                created_at_ms: 0,
                retired_at_ms: None,
            })
        })
        .collect()
}

/// The token in `bytes` (a PDF carries it as plain text, in its Keywords too):
/// the first run of token characters after `TIR1.` that reads as a whole
/// token (the lines printed under the QR code are pieces of it), else the
/// first run, so the caller can say why it does not read.
pub fn find_in(bytes: &[u8]) -> Option<String> {
    let mut first = None;
    let mut from = 0;
    while let Some(at) = bytes[from..].windows(PREFIX.len() + 1).position(|w| w == b"TIR1.") {
        let start = from + at;
        let run =
            bytes[start..].iter().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')).count();
        let candidate = String::from_utf8_lossy(&bytes[start..start + run]).into_owned();
        if read(&candidate).is_ok() {
            return Some(candidate);
        }
        first.get_or_insert(candidate);
        from = start + run;
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(key: &ServerKey) -> Claims {
        Claims {
            reference: "XH25000001".into(),
            v: 2,
            sha256: "ab".repeat(32),
            iat: "2026-11-30T05:00:00.000Z".into(),
            kid: key.key_id.clone(),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_gives_back_its_claims() {
        let key = ServerKey::generate(0).unwrap();
        let token = sign(&key, &claims(&key));
        assert!(token.starts_with("TIR1.") && token.split('.').count() == 3);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        assert_eq!(verify(&token, &[key.public()]).unwrap(), claims(&key));
        assert_eq!(find_in(format!("(Token: {token}) Tj").as_bytes()).as_deref(), Some(token.as_str()));
        let pieces = format!("({}) Tj ({}) Tj /Keywords ({token})", &token[..60], &token[60..]);
        assert_eq!(find_in(pieces.as_bytes()).as_deref(), Some(token.as_str()));
        assert_eq!(find_in(b"TIR1.abc TIR1.def").as_deref(), Some("TIR1.abc"));
        assert_eq!(find_in(b"%PDF-1.7"), None);
    }

    #[test]
    fn one_changed_byte_or_an_unknown_key_fails() {
        let key = ServerKey::generate(0).unwrap();
        let other = ServerKey::generate(0).unwrap();
        let token = sign(&key, &claims(&key));
        for i in 5..token.len() {
            let mut bytes = token.clone().into_bytes();
            if bytes[i] == b'.' {
                continue;
            }
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(verify(&tampered, &[key.public()]).is_err(), "byte {i} changed still verifies");
        }
        assert!(matches!(verify(&token, &[other.public()]), Err(TokenError::Invalid(_))));
        // Another key published under this key's id: the signature does not verify.
        let forged = PublicKey { key_id: key.key_id.clone(), ..other.public() };
        assert!(matches!(verify(&token, &[forged]), Err(TokenError::Invalid(_))));
        assert!(matches!(verify("hello", &[key.public()]), Err(TokenError::Unreadable(_))));
        assert!(matches!(verify("TIR1.@@.xx", &[key.public()]), Err(TokenError::Unreadable(_))));
    }
}
