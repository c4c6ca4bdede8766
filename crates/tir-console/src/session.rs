//! Sessions and CSRF (docs/console.md, "Sessions").
//!
//! A session is a row of the store (`tir_store::sessions`) keyed by the
//! SHA-256 of a random 32-byte id; the cookie carries only the id, and the row
//! only the SHA-256 of the party's token. Every request authenticates that
//! token again through `Parties` (cached a few seconds): a revoked party is
//! signed out on its next page. Being in the store, a session opened through
//! one server is good on every server sharing the database (stateless servers
//! behind a load balancer), and a restart signs nobody out.
//!
//! CSRF: each session has its own random synchronizer token, put in a hidden
//! field of every form and compared on every POST. The sign-in form, posted
//! before any session exists, uses a double-submit token: a random value in a
//! short-lived cookie and in the form's hidden field, which must match.

use std::collections::HashMap;

use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use tir_model::party::Party;
use tir_server::{ApiError, PeerCertificate};
use tir_store::{ConsoleSession, SessionWrite, Store, StoreError, token};

use crate::Console;
use crate::pages::{self, Page};

pub(crate) const SESSION_COOKIE: &str = "tirhub_session";
const SIGN_IN_COOKIE: &str = "tirhub_sign_in";
/// A session unused this long is gone.
const SESSION_IDLE_MAX_MS: i64 = 8 * 3600 * 1000;
/// A request marks its session seen only when the mark is older than this: a busy session
/// costs the writer one write a minute, not one per page.
const SEEN_EVERY_MS: i64 = 60_000;

/// The sessions' rules over the store's rows: how long one may stay idle.
pub struct Sessions {
    idle_max_ms: i64,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions { idle_max_ms: SESSION_IDLE_MAX_MS }
    }
}

/// The system clock in ms since the epoch: the console's idle sessions and dashboard window.
pub(crate) use tir_store::now_ms;

/// A write of the sessions the store did not take as asked.
fn refused(what: &str, status: u16) -> StoreError {
    StoreError::Corrupt(format!("console session {what}: the store answered {status}"))
}

impl Sessions {
    /// A new session for the party whose token has `token_hash`: its id (for the cookie) and
    /// its CSRF token. Sessions idle too long are deleted on the way (a bounded number).
    async fn open(&self, store: &dyn Store, token_hash: String) -> Result<(String, String), StoreError> {
        let id = token::random_hex(32);
        let csrf = token::random_hex(32);
        let expire_before_ms = now_ms() - self.idle_max_ms;
        let write = SessionWrite::Open { id_hash: token::hash(&id), token_hash, csrf: csrf.clone(), expire_before_ms };
        match store.console_session_write(write).await?.status {
            200 => Ok((id, csrf)),
            status => Err(refused("open", status)),
        }
    }

    /// The session, if it is open and not idle too long; marked seen when its mark is old.
    async fn touch(&self, store: &dyn Store, id: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let id_hash = token::hash(id);
        let Some(session) = store.console_session(&id_hash).await? else {
            return Ok(None);
        };
        let idle = now_ms() - session.seen_ms;
        if idle >= self.idle_max_ms {
            store.console_session_write(SessionWrite::Close { id_hash }).await?;
            return Ok(None);
        }
        if idle >= SEEN_EVERY_MS {
            // 404: closed meanwhile (signed out elsewhere); this request still had it.
            store.console_session_write(SessionWrite::Seen { id_hash }).await?;
        }
        Ok(Some(session))
    }

    async fn close(&self, store: &dyn Store, id: &str) -> Result<(), StoreError> {
        store.console_session_write(SessionWrite::Close { id_hash: token::hash(id) }).await?;
        Ok(())
    }
}

fn storage_failed(e: &StoreError) -> Response {
    tracing::error!(error = %e, "console: storage failure");
    pages::unavailable()
}

/// The party of the request's session, authenticated again with its token.
#[derive(Clone)]
pub struct Signed {
    pub party: Party,
    pub csrf: String,
    id: String,
}

impl FromRequestParts<Console> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(pages::to_sign_in());
        };
        let store = &*console.app.store;
        let session = match console.sessions.touch(store, &id).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(pages::to_sign_in()),
            Err(e) => return Err(storage_failed(&e)),
        };
        // A party bound to a client certificate needs it on this connection too.
        let peer = parts.extensions.get::<PeerCertificate>();
        match console.app.parties.authenticate_hash(&session.token_hash, peer).await {
            Ok(party) => Ok(Signed { party, csrf: session.csrf, id }),
            Err(ApiError::Store(e)) => Err(storage_failed(&e)),
            // Revoked since sign-in.
            Err(_) => match console.sessions.close(store, &id).await {
                Ok(()) => Err(pages::to_sign_in()),
                Err(e) => Err(storage_failed(&e)),
            },
        }
    }
}

impl Signed {
    /// 403 unless `form` carries this session's CSRF token.
    pub fn check_csrf(&self, form: &HashMap<String, String>) -> Result<(), Response> {
        match form.get("csrf") {
            Some(given) if same(given, &self.csrf) => Ok(()),
            _ => Err(pages::csrf_refused()),
        }
    }
}

/// A form body, or the 400 page.
pub type Posted = Result<Form<HashMap<String, String>>, FormRejection>;

pub fn posted(form: Posted) -> Result<HashMap<String, String>, Response> {
    form.map(|Form(map)| map).map_err(|rejection| {
        Page::new("Bad request")
            .status(400)
            .body(html! { p { "The form could not be read: " (rejection.body_text()) } })
    })
}

/// Compared in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(party_token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {party_token}")) {
        headers.insert(header::AUTHORIZATION, value);
    }
    headers
}

/// The value of the cookie `name`, if the request has exactly one.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        for pair in value.to_str().ok()?.split(';') {
            let (key, value) = pair.trim().split_once('=')?;
            if key == name {
                if found.is_some() {
                    return None;
                }
                found = Some(value.to_owned());
            }
        }
    }
    found.filter(|v| !v.is_empty())
}

fn set_cookie(console: &Console, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut cookie = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/console");
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    if console.secure_cookies {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

fn sign_in_form(csrf: &str, error: Option<&str>) -> maud::Markup {
    html! {
        @if let Some(error) = error { p.error role="alert" { (error) } }
        form method="post" action="/console/sign-in" {
            input type="hidden" name="csrf" value=(csrf);
            label for="token" { "Your party's token" }
            input id="token" name="token" type="password" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
        p.hint { "The token the operator gave your party when it was created (tirhub_…). It stays on the server: the browser keeps only a session cookie." }
    }
}

/// `GET /console/sign-in`: the form, with a fresh double-submit token.
pub async fn sign_in_page(State(console): State<Console>) -> Response {
    let csrf = token::random_hex(32);
    let mut response = Page::new("Sign in").body(sign_in_form(&csrf, None));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&console, SIGN_IN_COOKIE, &csrf, Some(3600)));
    response
}

/// `POST /console/sign-in`: a party's token in, a session cookie out.
pub async fn sign_in(
    State(console): State<Console>,
    peer: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    form: Posted,
) -> Response {
    let form = match posted(form) {
        Ok(form) => form,
        Err(page) => return page,
    };
    let expected = cookie(&headers, SIGN_IN_COOKIE);
    match (form.get("csrf"), expected) {
        (Some(given), Some(expected)) if same(given, &expected) => {}
        _ => return pages::csrf_refused(),
    }
    let party_token = form.get("token").map(|t| t.trim()).unwrap_or_default();
    let again = |message: &str| {
        let csrf = token::random_hex(32);
        let mut page = Page::new("Sign in").status(401).body(sign_in_form(&csrf, Some(message)));
        page.headers_mut().append(header::SET_COOKIE, set_cookie(&console, SIGN_IN_COOKIE, &csrf, Some(3600)));
        page
    };
    if party_token.is_empty() {
        return again("Enter your party's token.");
    }
    let peer = peer.map(|Extension(peer)| peer);
    let party = match console.app.parties.authenticate(&bearer(party_token), peer.as_ref()).await {
        Ok(party) => party,
        Err(ApiError::Store(e)) => {
            tracing::error!(error = %e, "console: storage failure");
            return pages::unavailable();
        }
        Err(_) => return again("This token is unknown or revoked."),
    };
    let id = match console.sessions.open(&*console.app.store, token::hash(party_token)).await {
        Ok((id, _)) => id,
        Err(e) => return storage_failed(&e),
    };
    let landing = match party {
        Party::Customs { .. } => "/console/arrivals",
        Party::Holder { .. } => "/console/my",
        Party::GuaranteeChain { .. } => "/console/chain",
        Party::Admin => "/console/admin/parties",
    };
    let mut response = pages::see_other(landing);
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&console, SESSION_COOKIE, &id, None));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&console, SIGN_IN_COOKIE, "", Some(0)));
    response
}

/// `POST /console/sign-out` (CSRF-checked): the session is closed and its cookie cleared.
pub async fn sign_out(State(console): State<Console>, signed: Signed, form: Posted) -> Response {
    let form = match posted(form) {
        Ok(form) => form,
        Err(page) => return page,
    };
    if let Err(refused) = signed.check_csrf(&form) {
        return refused;
    }
    if let Err(e) = console.sessions.close(&*console.app.store, &signed.id).await {
        return storage_failed(&e);
    }
    let mut response = pages::see_other("/console/sign-in");
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&console, SESSION_COOKIE, "", Some(0)));
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_read_only_when_given_once() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; tirhub_session=abc; b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        headers.append(header::COOKIE, HeaderValue::from_static("tirhub_session=def"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), None, "two values: neither is trusted");
    }

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    #[tokio::test]
    async fn a_session_idle_too_long_is_gone_and_a_closed_one_too() {
        let store = tir_store::MemoryStore::open_with(tir_store::Env::system());
        let mut sessions = Sessions::default();
        let (id, csrf) = sessions.open(&store, token::hash("tirhub_x")).await.unwrap();
        let found = sessions.touch(&store, &id).await.unwrap().expect("open");
        assert_eq!((found.token_hash, found.csrf), (token::hash("tirhub_x"), csrf));
        // Only the hashes are stored: neither the id nor the token.
        assert!(store.console_session(&id).await.unwrap().is_none());
        assert!(store.console_session(&token::hash(&id)).await.unwrap().is_some());
        sessions.idle_max_ms = 0;
        assert_eq!(sessions.touch(&store, &id).await.unwrap(), None);
        assert_eq!(store.console_session(&token::hash(&id)).await.unwrap(), None, "deleted once found idle");
        sessions.idle_max_ms = SESSION_IDLE_MAX_MS;
        let (id, _) = sessions.open(&store, token::hash("tirhub_x")).await.unwrap();
        sessions.close(&store, &id).await.unwrap();
        assert_eq!(sessions.touch(&store, &id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn opening_a_session_deletes_those_idle_too_long() {
        let store = tir_store::MemoryStore::open_with(tir_store::Env::system());
        let mut sessions = Sessions::default();
        let (old, _) = sessions.open(&store, token::hash("tirhub_x")).await.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        sessions.idle_max_ms = 1;
        let (new, _) = sessions.open(&store, token::hash("tirhub_y")).await.unwrap();
        assert_eq!(store.console_session(&token::hash(&old)).await.unwrap(), None);
        assert!(store.console_session(&token::hash(&new)).await.unwrap().is_some());
    }
}
