//! The journal: every accepted message, in order, each entry hashing the previous one.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::holder_keys::{HOLDER_KEY, HOLDER_KEY_REVOKED, HolderSignature};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The `body_hash` of an entry: SHA-256 of the body, hex.
pub fn body_hash(body: &str) -> String {
    hex(&Sha256::digest(body.as_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub seq: i64,
    pub at_ms: i64,
    pub sender: String,
    pub message_type: String,
    pub message_id: String,
    pub reference: String,
    pub body: String,
    pub body_hash: String,
    pub prev_hash: String,
    pub hash: String,
    /// A holder's signed message: the bytes it signed, the signature and key.
    /// Hashed into `hash` when present; entries without one hash as they always did.
    pub holder_signature: Option<HolderSignature>,
}

impl JournalEntry {
    /// Builds the entry following `prev` (`(0, GENESIS)` for the first).
    pub fn next(
        prev: &(i64, String),
        at_ms: i64,
        sender: &str,
        message_type: &str,
        message_id: &str,
        reference: &str,
        body: String,
    ) -> JournalEntry {
        let body_hash = body_hash(&body);
        JournalEntry::next_hashed(prev, at_ms, sender, message_type, message_id, reference, body, body_hash)
    }

    /// As `next`, with the body's SHA-256 (hex) already computed.
    #[allow(clippy::too_many_arguments)]
    pub fn next_hashed(
        prev: &(i64, String),
        at_ms: i64,
        sender: &str,
        message_type: &str,
        message_id: &str,
        reference: &str,
        body: String,
        body_hash: String,
    ) -> JournalEntry {
        JournalEntry::next_signed(prev, at_ms, sender, message_type, message_id, reference, body, body_hash, None)
    }

    /// As `next_hashed`, with a holder's signature kept beside the body.
    #[allow(clippy::too_many_arguments)]
    pub fn next_signed(
        prev: &(i64, String),
        at_ms: i64,
        sender: &str,
        message_type: &str,
        message_id: &str,
        reference: &str,
        body: String,
        body_hash: String,
        holder_signature: Option<HolderSignature>,
    ) -> JournalEntry {
        let mut entry = JournalEntry {
            seq: prev.0 + 1,
            at_ms,
            sender: sender.to_owned(),
            message_type: message_type.to_owned(),
            message_id: message_id.to_owned(),
            reference: reference.to_owned(),
            body_hash,
            body,
            prev_hash: prev.1.clone(),
            hash: String::new(),
            holder_signature,
        };
        entry.hash = entry.compute_hash();
        debug_assert!(entry.check(prev).is_none());
        entry
    }

    /// SHA-256 over every field, each length-prefixed so no two entries collide by concatenation.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"tirhub-journal-v1");
        for field in [
            self.seq.to_string().as_bytes(),
            self.at_ms.to_string().as_bytes(),
            self.sender.as_bytes(),
            self.message_type.as_bytes(),
            self.message_id.as_bytes(),
            self.reference.as_bytes(),
            self.body_hash.as_bytes(),
            self.prev_hash.as_bytes(),
        ] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field);
        }
        if let Some(s) = &self.holder_signature {
            // A marker no length prefix can be (8 bytes), then the signature's fields.
            h.update(b"holder-signature-v1");
            for field in [&s.tir_id, &s.key_id, &s.public_key, &s.signature, &s.signed_body] {
                h.update((field.len() as u64).to_be_bytes());
                h.update(field.as_bytes());
            }
        }
        hex(&h.finalize())
    }

    /// What is wrong with this entry following `prev`, if anything.
    pub fn check(&self, prev: &(i64, String)) -> Option<String> {
        if self.seq != prev.0 + 1 {
            return Some(format!("sequence {} follows {}: a gap or a duplicate", self.seq, prev.0));
        }
        if self.prev_hash != prev.1 {
            return Some("prev_hash does not match the previous entry's hash".to_owned());
        }
        if self.body_hash != body_hash(&self.body) {
            return Some("body does not match body_hash".to_owned());
        }
        if self.hash != self.compute_hash() {
            return Some("hash does not match the entry's fields".to_owned());
        }
        if let Some(s) = &self.holder_signature {
            if let Err(e) = s.verify() {
                return Some(format!("holder signature: {e}"));
            }
            // The signed bytes must be the body journaled: its canonical form.
            let canonical = serde_json::from_str(&s.signed_body).ok().map(|v| tir_model::wire::canonical(&v));
            if canonical.as_deref() != Some(self.body.as_str()) {
                return Some("holder signature: the signed bytes are not the journaled body".to_owned());
            }
        }
        None
    }
}

/// The result of recomputing the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub entries: i64,
    pub head: String,
    /// The first broken entry and what is wrong with it.
    pub first_broken: Option<(i64, String)>,
    /// Holders' signatures verified (each under a key registered for the holder earlier in the chain).
    pub holder_signatures: i64,
}

/// Folds entries, in order, into a verdict; stops at the first broken one.
#[derive(Debug)]
pub struct Verifier {
    prev: (i64, String),
    broken: Option<(i64, String)>,
    /// From the HOLDER_KEY entries so far: each holder's current key (`None`: revoked).
    holder_keys: HashMap<String, Option<String>>,
    holder_signatures: i64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self { prev: (0, GENESIS.to_owned()), broken: None, holder_keys: HashMap::new(), holder_signatures: 0 }
    }
}

impl Verifier {
    /// Returns false once a broken entry was found (the caller may stop reading).
    pub fn push(&mut self, entry: &JournalEntry) -> bool {
        if self.broken.is_some() {
            return false;
        }
        if let Some(reason) = entry.check(&self.prev).or_else(|| self.follow_holder_keys(entry)) {
            self.broken = Some((entry.seq, reason));
            return false;
        }
        self.prev = (entry.seq, entry.hash.clone());
        true
    }

    /// Keeps the holders' keys as the chain registers and revokes them, and checks a
    /// signed entry's key was its holder's current one when the entry was written.
    fn follow_holder_keys(&mut self, entry: &JournalEntry) -> Option<String> {
        if let Some(s) = &entry.holder_signature {
            let current = self.holder_keys.get(&s.tir_id).and_then(Option::as_ref);
            if current != Some(&s.key_id) {
                return Some(format!(
                    "holder signature: key {} is not the current key of {} at this entry",
                    s.key_id, s.tir_id
                ));
            }
            self.holder_signatures += 1;
        }
        if entry.message_type == HOLDER_KEY || entry.message_type == HOLDER_KEY_REVOKED {
            let Ok(body) = serde_json::from_str::<serde_json::Value>(&entry.body) else {
                return Some(format!("{}: the body is not JSON", entry.message_type));
            };
            let (Some(tir_id), Some(key_id)) = (body["tir_id"].as_str(), body["key_id"].as_str()) else {
                return Some(format!("{}: no tir_id or key_id", entry.message_type));
            };
            let current = self.holder_keys.entry(tir_id.to_owned()).or_default();
            if entry.message_type == HOLDER_KEY {
                *current = Some(key_id.to_owned());
            } else if current.as_deref() == Some(key_id) {
                *current = None;
            }
        }
        None
    }

    pub fn last_seq(&self) -> i64 {
        self.prev.0
    }

    pub fn finish(self) -> Verdict {
        Verdict {
            ok: self.broken.is_none(),
            entries: self.prev.0,
            head: self.prev.1,
            first_broken: self.broken,
            holder_signatures: self.holder_signatures,
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<JournalEntry> {
        let mut prev = (0, GENESIS.to_owned());
        let mut out = Vec::new();
        for i in 0..n {
            let e = JournalEntry::next(
                &prev,
                1000 + i as i64,
                "p1",
                "I9",
                &format!("m{i}"),
                "XH25001234",
                format!("{{\"n\":{i}}}"),
            );
            prev = (e.seq, e.hash.clone());
            out.push(e);
        }
        out
    }

    fn verify(entries: &[JournalEntry]) -> Verdict {
        let mut v = Verifier::default();
        for e in entries {
            if !v.push(e) {
                break;
            }
        }
        v.finish()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let entries = chain(5);
        let verdict = verify(&entries);
        assert!(verdict.ok);
        assert_eq!(verdict.entries, 5);
        assert_eq!(verdict.head, entries[4].hash);
    }

    #[test]
    fn a_changed_body_is_named() {
        let mut entries = chain(5);
        entries[2].body = "{\"n\":99}".into();
        let verdict = verify(&entries);
        assert!(!verdict.ok);
        assert_eq!(verdict.first_broken.unwrap().0, 3);
    }

    #[test]
    fn a_changed_sender_with_rehashed_body_is_named() {
        let mut entries = chain(4);
        entries[1].sender = "intruder".into();
        assert_eq!(verify(&entries).first_broken.unwrap().0, 2);
    }

    #[test]
    fn a_gap_is_named() {
        let mut entries = chain(4);
        entries.remove(1);
        assert_eq!(verify(&entries).first_broken.unwrap().0, 3);
    }

    /// A chain: key registration for TUR/1/1 (seq 1), then an E9 signed with it (seq 2).
    fn signed_chain(key_seed: u8, signer_seed: u8) -> Vec<JournalEntry> {
        use ed25519_dalek::{Signer, SigningKey};
        let key = SigningKey::from_bytes(&[key_seed; 32]);
        let public = key.verifying_key().to_bytes();
        let key_id = crate::holder_keys::key_id(&public);
        let registration = serde_json::json!({"tir_id": "TUR/1/1", "key_id": key_id, "public_key": hex(&public)});
        let first = JournalEntry::next(
            &(0, GENESIS.to_owned()),
            1,
            "hol_1",
            HOLDER_KEY,
            "a1",
            "TUR/1/1",
            registration.to_string(),
        );
        let sent = "{ \"type\": \"E9\", \"message_id\": \"m1\" }";
        let signer = SigningKey::from_bytes(&[signer_seed; 32]);
        let signature = HolderSignature {
            tir_id: "TUR/1/1".into(),
            key_id: crate::holder_keys::key_id(&signer.verifying_key().to_bytes()),
            public_key: hex(&signer.verifying_key().to_bytes()),
            signature: hex(&signer.sign(sent.as_bytes()).to_bytes()),
            signed_body: sent.into(),
        };
        let body = tir_model::wire::canonical(&serde_json::from_str(sent).unwrap());
        let hash = body_hash(&body);
        let second = JournalEntry::next_signed(
            &(1, first.hash.clone()),
            2,
            "hol_1",
            "E9",
            "m1",
            "XH1",
            body,
            hash,
            Some(signature),
        );
        vec![first, second]
    }

    #[test]
    fn a_signed_entry_verifies_and_is_counted() {
        let entries = signed_chain(1, 1);
        let verdict = verify(&entries);
        assert!(verdict.ok, "{verdict:?}");
        assert_eq!(verdict.holder_signatures, 1);
        // Without its signature the entry's hash no longer matches: it cannot be dropped silently.
        let mut stripped = entries.clone();
        stripped[1].holder_signature = None;
        assert!(verify(&stripped).first_broken.unwrap().1.contains("hash"));
    }

    #[test]
    fn a_signed_entry_under_a_key_the_chain_never_registered_is_named() {
        let verdict = verify(&signed_chain(1, 2));
        let (seq, reason) = verdict.first_broken.unwrap();
        assert_eq!(seq, 2);
        assert!(reason.contains("not the current key"), "{reason}");
    }

    #[test]
    fn signed_bytes_changed_or_not_the_body_are_named_even_rehashed() {
        let mut changed = signed_chain(1, 1);
        let s = changed[1].holder_signature.as_mut().unwrap();
        s.signed_body = s.signed_body.replace("m1", "m2");
        changed[1].hash = changed[1].compute_hash();
        assert!(verify(&changed).first_broken.unwrap().1.contains("does not verify"));
        // A body that is not the signed bytes' canonical form, rehashed throughout.
        let mut other_body = signed_chain(1, 1);
        other_body[1].body = "{\"message_id\":\"m2\",\"type\":\"E9\"}".into();
        other_body[1].body_hash = body_hash(&other_body[1].body);
        other_body[1].hash = other_body[1].compute_hash();
        assert!(verify(&other_body).first_broken.unwrap().1.contains("not the journaled body"));
    }

    #[test]
    fn a_key_revoked_in_the_chain_signs_nothing_after() {
        let mut entries = signed_chain(1, 1);
        let key_id = entries[1].holder_signature.as_ref().unwrap().key_id.clone();
        let revoked = serde_json::json!({"tir_id": "TUR/1/1", "key_id": key_id}).to_string();
        let revocation =
            JournalEntry::next(&(1, entries[0].hash.clone()), 2, "admin", HOLDER_KEY_REVOKED, "a2", "TUR/1/1", revoked);
        let signed = entries.pop().unwrap();
        let moved = JournalEntry::next_signed(
            &(2, revocation.hash.clone()),
            3,
            "hol_1",
            "E9",
            "m1",
            "XH1",
            signed.body,
            signed.body_hash,
            signed.holder_signature,
        );
        entries.extend([revocation, moved]);
        assert!(verify(&entries).first_broken.unwrap().1.contains("not the current key"));
    }

    #[test]
    fn a_recomputed_entry_breaks_the_next_link() {
        let mut entries = chain(4);
        entries[1].body = "{}".into();
        entries[1].body_hash = hex(&Sha256::digest(b"{}"));
        entries[1].hash = entries[1].compute_hash();
        assert_eq!(verify(&entries).first_broken.unwrap().0, 3);
    }
}
