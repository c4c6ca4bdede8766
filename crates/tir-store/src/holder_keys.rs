//! Holders' signing keys and the signatures their declarations carry
//! (docs/etir-binding.md, "Signed holder messages").
//!
//! A holder may register an Ed25519 public key; from then on its E9, E11 and
//! E13 carry a detached signature over the exact request body bytes. The
//! journal entry of such a message keeps those bytes, the signature and the
//! public key (`HolderSignature`), so anyone can verify the declaration later
//! with any Ed25519 implementation, without trusting the server. Keys are
//! journaled too (`HOLDER_KEY`, `HOLDER_KEY_REVOKED`), so the chain says which
//! key was the holder's when each message was accepted.

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use tir_model::Timestamp;

use crate::journal::hex;
use crate::keys::ALGORITHM;

/// The journal entry type of a key registration (sender: the holder party).
pub const HOLDER_KEY: &str = "HOLDER_KEY";
/// The journal entry type of a key revoked by the admin.
pub const HOLDER_KEY_REVOKED: &str = "HOLDER_KEY_REVOKED";

/// One registered key of a holder (`holder_keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderKey {
    pub tir_id: String,
    /// First 16 hex digits of SHA-256 of the public key's 32 bytes.
    pub key_id: String,
    /// 64 lowercase hex digits.
    pub public_key: String,
    /// The party id that registered it.
    pub registered_by: String,
    pub registered_at_ms: i64,
    /// Revoked (replaced by the holder, or revoked by the admin); never current again.
    pub revoked_at_ms: Option<i64>,
}

impl HolderKey {
    /// The key as the API shows it, times in RFC 3339.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "tir_id": self.tir_id,
            "key_id": self.key_id,
            "algorithm": ALGORITHM,
            "public_key": self.public_key,
            "registered_by": self.registered_by,
            "registered_at": Timestamp::from_unix_ms(self.registered_at_ms).to_string(),
            "revoked_at": self.revoked_at_ms.map(|ms| Timestamp::from_unix_ms(ms).to_string()),
        })
    }
}

/// A key registration, as the holder asked for it (checked by the server first).
#[derive(Debug, Clone)]
pub struct HolderKeyWrite {
    pub tir_id: String,
    /// The holder party asking.
    pub by: String,
    /// 64 lowercase hex digits, a valid Ed25519 public key.
    pub public_key: String,
    /// The current key the request was signed with (`None` when the holder had none):
    /// the writer replaces only that key, so a concurrent change is refused.
    pub signed_by: Option<String>,
}

/// The signature a journal entry keeps beside a holder's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderSignature {
    pub tir_id: String,
    pub key_id: String,
    /// 64 hex digits.
    pub public_key: String,
    /// 128 hex digits: Ed25519 (RFC 8032) of `signed_body`'s UTF-8 bytes.
    pub signature: String,
    /// The request body exactly as sent; the entry's `body` is its canonical form.
    pub signed_body: String,
}

impl HolderSignature {
    /// Checks the key id is the public key's and the signature is over `signed_body`.
    pub fn verify(&self) -> Result<(), String> {
        let public = unhex::<32>(&self.public_key).ok_or("the public key is not 64 hex digits")?;
        if key_id(&public) != self.key_id {
            return Err(format!("key id {} is not that of the public key", self.key_id));
        }
        let signature = unhex::<64>(&self.signature).ok_or("the signature is not 128 hex digits")?;
        verify(&public, &signature, self.signed_body.as_bytes())
    }

    /// As the journal column stores it: JSON, keys sorted.
    pub fn to_column(&self) -> String {
        serde_json::to_string(self).expect("signatures serialize")
    }

    pub fn from_column(text: &str) -> Result<HolderSignature, String> {
        serde_json::from_str(text).map_err(|e| format!("holder signature: {e}"))
    }
}

/// The first 16 hex digits of SHA-256 of the public key's 32 bytes (as for server keys).
pub fn key_id(public_key: &[u8; 32]) -> String {
    crate::keys::key_id(public_key)
}

/// A public key from 64 hex digits (either case), if it is a valid Ed25519 point;
/// `Err` says what is wrong: `Length` or `Pattern`.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], tir_model::ParseError> {
    if text.len() != 64 {
        return Err(tir_model::ParseError::Length);
    }
    let bytes = unhex::<32>(text).ok_or(tir_model::ParseError::Pattern)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| tir_model::ParseError::Pattern)?;
    // A small-order key verifies signatures it never made: never one a holder holds.
    if key.is_weak() {
        return Err(tir_model::ParseError::Pattern);
    }
    Ok(bytes)
}

/// Strict Ed25519 verification (RFC 8032, no malleable signatures, no weak keys).
pub fn verify(public_key: &[u8; 32], signature: &[u8; 64], message: &[u8]) -> Result<(), String> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| "the public key is not an Ed25519 point".to_owned())?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| "the signature does not verify over the body bytes with this key".to_owned())
}

/// Lowercase hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    hex(bytes)
}

/// `N` bytes from exactly `2 N` hex digits, either case.
pub fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks(2).enumerate() {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        out[i] = (high * 16 + low) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    fn signed(seed: u8, body: &str) -> HolderSignature {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let public = key.verifying_key().to_bytes();
        HolderSignature {
            tir_id: "TUR/001/000001".into(),
            key_id: key_id(&public),
            public_key: hex(&public),
            signature: hex(&key.sign(body.as_bytes()).to_bytes()),
            signed_body: body.into(),
        }
    }

    #[test]
    fn a_signature_over_the_exact_bytes_verifies_and_any_change_does_not() {
        let body = "{\"type\": \"E9\",  \"message_id\":\"m1\"}";
        let s = signed(7, body);
        assert_eq!(s.verify(), Ok(()));
        // Another spelling of the same JSON is other bytes: not what was signed.
        let respaced = HolderSignature { signed_body: "{\"type\":\"E9\",\"message_id\":\"m1\"}".into(), ..s.clone() };
        assert!(respaced.verify().unwrap_err().contains("does not verify"));
        let other_key = signed(8, body);
        let swapped = HolderSignature { public_key: other_key.public_key.clone(), ..s.clone() };
        assert!(swapped.verify().unwrap_err().contains("key id"));
        let swapped = HolderSignature { public_key: other_key.public_key, key_id: other_key.key_id, ..s.clone() };
        assert!(swapped.verify().unwrap_err().contains("does not verify"));
        let mut forged = s.clone();
        forged.signature.replace_range(0..2, if forged.signature.starts_with("00") { "11" } else { "00" });
        assert!(forged.verify().is_err());
    }

    #[test]
    fn the_column_form_reads_back() {
        let s = signed(3, "{}");
        assert_eq!(HolderSignature::from_column(&s.to_column()), Ok(s));
        assert!(HolderSignature::from_column("{").is_err());
    }

    #[test]
    fn public_keys_are_64_hex_digits_of_a_usable_point() {
        let good = hex(&SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes());
        assert!(parse_public_key(&good).is_ok());
        assert!(parse_public_key(&good.to_uppercase()).is_ok());
        assert_eq!(parse_public_key(&good[..62]), Err(tir_model::ParseError::Length));
        assert_eq!(parse_public_key(&format!("{}zz", &good[..62])), Err(tir_model::ParseError::Pattern));
        // The identity point (small order): refused.
        let identity = format!("01{}", "00".repeat(31));
        assert_eq!(parse_public_key(&identity), Err(tir_model::ParseError::Pattern));
    }
}
