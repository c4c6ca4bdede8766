//! The server's signing keys and the signed journal heads (docs/architecture.md,
//! "Signed journal head").
//!
//! A key is an Ed25519 key pair kept in the database (`server_keys`), so every
//! server sharing a database signs with the same one; the current key is the
//! one not retired. Its id is the first 16 hex digits of SHA-256 of the public
//! key. A signed head is the journal's length and last hash at a checkpoint,
//! signed over `head_message`'s canonical bytes, and kept in `journal_heads`.
//! The private key is read only by the writer, which signs; it is never shown:
//! `ServerKey`'s Debug leaves it out and no answer carries it.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use tir_model::Timestamp;

use crate::journal::hex;
use crate::{Result, corrupt};

/// How often a server signs the journal's head when the journal moved. Servers
/// sharing a database sign no closer together than half of this (the writer
/// checks under the writers' lock), so at most about two heads per interval.
pub const HEAD_SIGN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The algorithm every key is for, as `GET /v1/keys` names it.
pub const ALGORITHM: &str = "Ed25519";

/// The first line of the signed bytes: names what they are and their version.
pub const HEAD_DOMAIN: &str = "tirhub-journal-head/v1";

/// A key pair of the server, with the private part: only the writer holds one.
#[derive(Clone)]
pub struct ServerKey {
    pub key_id: String,
    pub(crate) signing: SigningKey,
    pub created_at_ms: i64,
    pub retired_at_ms: Option<i64>,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKey")
            .field("key_id", &self.key_id)
            .field("public_key", &self.public_key_hex())
            .field("private_key", &"<redacted>")
            .field("created_at_ms", &self.created_at_ms)
            .field("retired_at_ms", &self.retired_at_ms)
            .finish()
    }
}

impl ServerKey {
    /// A new key pair from the operating system's random source.
    pub fn generate(created_at_ms: i64) -> Result<ServerKey> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| corrupt(format!("no random source for a server key: {e}")))?;
        Ok(ServerKey::from_seed(seed, created_at_ms, None))
    }

    fn from_seed(seed: [u8; 32], created_at_ms: i64, retired_at_ms: Option<i64>) -> ServerKey {
        let signing = SigningKey::from_bytes(&seed);
        let key_id = key_id(signing.verifying_key().as_bytes());
        ServerKey { key_id, signing, created_at_ms, retired_at_ms }
    }

    /// A key as stored: the private part as 64 hex digits (its 32-byte seed).
    /// The public key stored beside it must be the one the seed makes.
    pub(crate) fn from_row(
        key_id: &str,
        public_key_hex: &str,
        private_key_hex: &str,
        created_at_ms: i64,
        retired_at_ms: Option<i64>,
    ) -> Result<ServerKey> {
        let seed =
            unhex::<32>(private_key_hex).ok_or_else(|| corrupt(format!("server key {key_id}: bad private key")))?;
        let key = ServerKey::from_seed(seed, created_at_ms, retired_at_ms);
        if key.key_id != key_id || key.public_key_hex() != public_key_hex {
            return Err(corrupt(format!("server key {key_id}: the stored public key is not the private key's")));
        }
        Ok(key)
    }

    /// The private part as stored (hex of the seed): written to `server_keys` only.
    pub(crate) fn private_key_hex(&self) -> String {
        hex(self.signing.as_bytes())
    }

    /// The public key, 64 hex digits (its 32 bytes, RFC 8032 encoding).
    pub fn public_key_hex(&self) -> String {
        hex(self.signing.verifying_key().as_bytes())
    }

    /// What `GET /v1/keys` shows of this key.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            key_id: self.key_id.clone(),
            public_key: self.public_key_hex(),
            created_at_ms: self.created_at_ms,
            retired_at_ms: self.retired_at_ms,
        }
    }

    /// Signs the head (`entries`, `head`) at `signed_at_ms`.
    pub fn sign_head(&self, entries: i64, head: &str, signed_at_ms: i64) -> SignedHead {
        let signed_at = Timestamp::from_unix_ms(signed_at_ms).to_string();
        let message = head_message(entries, head, &signed_at, &self.key_id);
        let signature = hex(&self.signing.sign(message.as_bytes()).to_bytes());
        SignedHead { entries, head: head.to_owned(), signed_at, signed_at_ms, key_id: self.key_id.clone(), signature }
    }
}

/// A key's public part, as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: String,
    /// 64 hex digits.
    pub public_key: String,
    pub created_at_ms: i64,
    pub retired_at_ms: Option<i64>,
}

impl PublicKey {
    /// The key as `GET /v1/keys` shows it, times in RFC 3339.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "key_id": self.key_id,
            "algorithm": ALGORITHM,
            "public_key": self.public_key,
            "created_at": Timestamp::from_unix_ms(self.created_at_ms).to_string(),
            "retired_at": self.retired_at_ms.map(|ms| Timestamp::from_unix_ms(ms).to_string()),
        })
    }
}

/// A journal head signed by a server key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    /// The journal's length: the last entry's seq (0 for an empty journal).
    pub entries: i64,
    /// That entry's hash (64 zeros for an empty journal).
    pub head: String,
    /// RFC 3339, as signed.
    pub signed_at: String,
    pub signed_at_ms: i64,
    pub key_id: String,
    /// 128 hex digits: the Ed25519 signature of `head_message`.
    pub signature: String,
}

impl SignedHead {
    /// The head as `GET /v1/journal/head` answers it (and as a party keeps it).
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "entries": self.entries,
            "head": self.head,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
            "signature": self.signature,
        })
    }

    /// A kept head, as `view` wrote it; `Err` names what is missing or malformed.
    pub fn from_view(value: &serde_json::Value) -> std::result::Result<KeptHead, String> {
        let text = |field: &str| {
            value[field].as_str().map(str::to_owned).ok_or_else(|| format!("the head has no text field {field:?}"))
        };
        let entries = value["entries"].as_i64().filter(|n| *n >= 0).ok_or("the head has no \"entries\" count")?;
        Ok(KeptHead {
            entries,
            head: text("head")?,
            signed_at: text("signed_at")?,
            key_id: text("key_id")?,
            signature: text("signature")?,
        })
    }
}

/// A head as a party kept it: what `verify_head` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptHead {
    pub entries: i64,
    pub head: String,
    pub signed_at: String,
    pub key_id: String,
    pub signature: String,
}

/// The bytes a head's signature covers: five lines joined by `\n`, no final newline.
pub fn head_message(entries: i64, head: &str, signed_at: &str, key_id: &str) -> String {
    format!("{HEAD_DOMAIN}\n{entries}\n{head}\n{signed_at}\n{key_id}")
}

/// The first 16 hex digits of SHA-256 of the public key's 32 bytes.
pub fn key_id(public_key: &[u8; 32]) -> String {
    hex(&Sha256::digest(public_key))[..16].to_owned()
}

/// Checks a kept head's signature against the published keys: `Err` says why it fails.
pub fn verify_head(head: &KeptHead, keys: &[PublicKey]) -> std::result::Result<(), String> {
    let Some(key) = keys.iter().find(|k| k.key_id == head.key_id) else {
        return Err(format!("key {} is not one of this database's server keys", head.key_id));
    };
    let public = unhex::<32>(&key.public_key)
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .ok_or_else(|| format!("key {}: the stored public key is malformed", key.key_id))?;
    let signature = unhex::<64>(&head.signature)
        .map(|bytes| Signature::from_bytes(&bytes))
        .ok_or("the signature is not 128 hex digits")?;
    let message = head_message(head.entries, &head.head, &head.signed_at, &head.key_id);
    public.verify(message.as_bytes(), &signature).map_err(|_| {
        format!("the signature does not verify with key {}: the head was not signed as it reads", key.key_id)
    })
}

/// `N` bytes from exactly `2 N` hex digits.
pub(crate) fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
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
    use super::*;

    fn kept(head: &SignedHead) -> KeptHead {
        SignedHead::from_view(&head.view()).unwrap()
    }

    #[test]
    fn debug_shows_the_public_key_and_never_the_private_one() {
        let key = ServerKey::generate(1_000).unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert!(shown.contains(&key.public_key_hex()), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains(&key.private_key_hex()), "{shown}");
        assert!(!shown.contains(&key.private_key_hex()[..16]), "{shown}");
    }

    #[test]
    fn the_key_id_is_the_first_16_hex_digits_of_the_public_keys_sha256() {
        let key = ServerKey::generate(1_000).unwrap();
        let public = unhex::<32>(&key.public_key_hex()).unwrap();
        assert_eq!(key.key_id, hex(&Sha256::digest(public))[..16]);
        assert_eq!(key.key_id.len(), 16);
    }

    #[test]
    fn a_stored_key_reads_back_and_a_mismatched_public_key_is_refused() {
        let key = ServerKey::generate(1_000).unwrap();
        let back =
            ServerKey::from_row(&key.key_id, &key.public_key_hex(), &key.private_key_hex(), 1_000, None).unwrap();
        assert_eq!(back.public(), key.public());
        let other = ServerKey::generate(1_000).unwrap();
        assert!(ServerKey::from_row(&key.key_id, &other.public_key_hex(), &key.private_key_hex(), 1, None).is_err());
    }

    #[test]
    fn a_signed_head_verifies_and_any_change_to_it_does_not() {
        let key = ServerKey::generate(1_000).unwrap();
        let head = key.sign_head(42, &"ab".repeat(32), 1_764_000_000_123);
        assert_eq!(head.signed_at, "2025-11-24T16:00:00.123Z");
        let keys = [key.public()];
        assert_eq!(verify_head(&kept(&head), &keys), Ok(()));
        let changed = [
            KeptHead { entries: 41, ..kept(&head) },
            KeptHead { head: "cd".repeat(32), ..kept(&head) },
            KeptHead { signed_at: "2025-11-24T16:00:00.124Z".into(), ..kept(&head) },
        ];
        for head in changed {
            assert!(verify_head(&head, &keys).unwrap_err().contains("does not verify"), "{head:?}");
        }
        let mut forged = kept(&head);
        forged.signature.replace_range(0..2, if forged.signature.starts_with("00") { "11" } else { "00" });
        assert!(verify_head(&forged, &keys).is_err());
        let other = ServerKey::generate(1_000).unwrap();
        assert!(verify_head(&kept(&head), &[other.public()]).unwrap_err().contains("not one of"));
    }

    #[test]
    fn the_signed_bytes_are_the_five_documented_lines() {
        assert_eq!(
            head_message(3, "h", "2026-01-01T00:00:00.000Z", "0123456789abcdef"),
            "tirhub-journal-head/v1\n3\nh\n2026-01-01T00:00:00.000Z\n0123456789abcdef"
        );
    }
}
