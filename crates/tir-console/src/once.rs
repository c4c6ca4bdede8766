//! A form posted twice does one thing: the forms that are not eTIR messages
//! (risk profiles, parties, offices, holders) carry a fresh `form_key` per
//! rendered form, as the eTIR forms carry a `message_id`, and the first post of
//! a key runs while a second waits for it and gets the same answer.
//!
//! As the API's idempotency: keyed by the sender (here the party and its
//! session: the answer is a page of that session, with its CSRF token) and the key, the answer kept
//! with a hash of what was posted, and the same key with other fields refused
//! (the API's 109, "duplicate message", as a 409 page). Unlike it, the answers
//! are held in the server's memory, for `KEPT` and at most `HELD` of them: the two
//! posts of a double click that a load balancer sends to two servers run twice,
//! except a risk profile's, whose key is also the store write's `Idempotency-Key`.
//!
//! The first post runs in its own task: a browser that is double-clicked drops
//! the first request, and the write must neither be cut short nor run again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use tokio::sync::watch;

use crate::pages::Page;
use crate::session::Signed;

/// The hidden field of the guarded forms.
pub const FIELD: &str = "form_key";

/// How long an answer is replayed: a double click or a reload after a slow answer.
const KEPT: Duration = Duration::from_secs(10 * 60);
/// Answers held at most; past it the oldest go first.
const HELD: usize = 10_000;
/// The size of the answer kept (a console page is far smaller).
const ANSWER_BYTES_MAX: usize = 4 << 20;

/// A fresh key for one rendered form.
pub fn fresh_key() -> String {
    format!("form-{}", tir_store::token::random_hex(16))
}

/// An answer as it was sent, to send again.
#[derive(Clone)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    async fn of(response: Response) -> Answer {
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, ANSWER_BYTES_MAX).await.unwrap_or_default();
        Answer { status: parts.status, headers: parts.headers, body }
    }

    fn response(&self) -> Response {
        (self.status, self.headers.clone(), self.body.clone()).into_response()
    }
}

struct Slot {
    /// SHA-256 of the fields posted (but the CSRF token).
    posted: String,
    at: Instant,
    /// `None` while the first post runs.
    answer: watch::Receiver<Option<Answer>>,
}

/// The answers to the guarded forms, by (party id, the session's CSRF token, form key).
#[derive(Default)]
pub struct Sent {
    slots: Mutex<HashMap<(String, String, String), Slot>>,
}

/// The fields posted, but the CSRF token (a second tab has the same session's),
/// in a stable order, hashed.
fn posted_hash(form: &HashMap<String, String>) -> String {
    let mut fields: Vec<(&String, &String)> = form.iter().filter(|(k, _)| k.as_str() != "csrf").collect();
    fields.sort();
    let mut text = String::new();
    for (k, v) in fields {
        // Lengths first: no two different forms read as the same text.
        text.push_str(&format!("{}:{k}{}:{v};", k.len(), v.len()));
    }
    tir_store::journal::body_hash(&text)
}

impl Sent {
    /// Runs `run` for the first post of the form's key and answers every post
    /// of that key with its answer. A form without a key (posted by something
    /// other than the console's own pages) runs every time.
    pub async fn once<F>(&self, signed: &Signed, form: &HashMap<String, String>, run: F) -> Response
    where
        F: Future<Output = Response> + Send + 'static,
    {
        let key = form.get(FIELD).map(|k| k.trim()).unwrap_or_default();
        if key.is_empty() || key.len() > 64 {
            return run.await;
        }
        let slot_key = (signed.party.id().to_owned(), signed.csrf.clone(), key.to_owned());
        let posted = posted_hash(form);
        let (sender, mut receiver) = watch::channel(None);
        {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            slots.retain(|_, slot| now.duration_since(slot.at) < KEPT);
            match slots.get(&slot_key) {
                Some(slot) if slot.posted != posted => return changed(signed),
                Some(slot) => receiver = slot.answer.clone(),
                None => {
                    if slots.len() >= HELD
                        && let Some(oldest) = slots.iter().min_by_key(|(_, s)| s.at).map(|(k, _)| k.clone())
                    {
                        slots.remove(&oldest);
                    }
                    slots.insert(slot_key.clone(), Slot { posted, at: now, answer: receiver.clone() });
                    tokio::spawn(async move {
                        let answer = Answer::of(run.await).await;
                        let _ = sender.send(Some(answer));
                    });
                }
            }
        }
        match receiver.wait_for(Option::is_some).await {
            Ok(answer) => answer.as_ref().map(Answer::response).unwrap_or_else(|| lost(signed)),
            Err(_) => {
                // The first post's task ended without an answer (it panicked): let the key be tried again.
                self.slots.lock().unwrap_or_else(|e| e.into_inner()).remove(&slot_key);
                lost(signed)
            }
        }
    }
}

/// The same key with other fields: the form was changed after it was sent.
fn changed(signed: &Signed) -> Response {
    Page::new("Already sent").status(409).signed(signed).body(html! {
        p.error role="alert" { "HTTP 409. This form was already sent with other values: nothing more was done. Open the form again to send the new values." }
    })
}

fn lost(signed: &Signed) -> Response {
    Page::new("Not done").status(500).signed(signed).body(html! {
        p.error role="alert" { "The form could not be handled; nothing is known to be done. Open the form again." }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_posted_hash_ignores_the_csrf_token_and_the_order_but_not_the_values() {
        let a = form(&[("name", "x"), ("csrf", "1"), (FIELD, "k")]);
        let b = form(&[(FIELD, "k"), ("name", "x"), ("csrf", "2")]);
        let c = form(&[(FIELD, "k"), ("name", "y"), ("csrf", "1")]);
        assert_eq!(posted_hash(&a), posted_hash(&b));
        assert_ne!(posted_hash(&a), posted_hash(&c));
        // A field's text cannot stand for two fields.
        assert_ne!(posted_hash(&form(&[("a", "b;c:d")])), posted_hash(&form(&[("a", "b"), ("c", "d")])));
    }
}
