//! Sessions and CSRF (docs/console.md, "Sessions").
//!
//! A session is a row of an in-memory table keyed by the SHA-256 of a random
//! 32-byte id; the cookie carries only the id, never the party's token. The
//! token stays server-side so that every request authenticates it again
//! through `Parties` (cached a few seconds): a revoked party is signed out on
//! its next page. The table is not in the store, so a restart signs everyone out.
//!
//! CSRF: each session has its own random synchronizer token, put in a hidden
//! field of every form and compared on every POST. The sign-in form, posted
//! before any session exists, uses a double-submit token: a random value in a
//! short-lived cookie and in the form's hidden field, which must match.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use tir_model::party::Party;
use tir_server::{ApiError, PeerCertificate};
use tir_store::token;

use crate::Console;
use crate::pages::{self, Page};

pub(crate) const SESSION_COOKIE: &str = "tirhub_session";
const SIGN_IN_COOKIE: &str = "tirhub_sign_in";
/// A session unused this long is gone.
const SESSION_IDLE_MAX: Duration = Duration::from_secs(8 * 3600);
/// Sessions held at once; past it the idle ones are dropped, then the sign-in waits.
const SESSIONS_MAX: usize = 100_000;

struct Session {
    /// The party's bearer token, authenticated again on every request.
    token: String,
    csrf: String,
    last_seen: Instant,
}

pub struct Sessions {
    /// SHA-256 of the session id → the session.
    table: RwLock<HashMap<String, Session>>,
    idle_max: Duration,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions { table: RwLock::default(), idle_max: SESSION_IDLE_MAX }
    }
}

impl Sessions {
    /// A new session for `token`: its id (for the cookie) and its CSRF token.
    fn open(&self, party_token: &str) -> Option<(String, String)> {
        let id = token::random_hex(32);
        let csrf = token::random_hex(32);
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if table.len() >= SESSIONS_MAX {
            table.retain(|_, s| s.last_seen.elapsed() < self.idle_max);
            if table.len() >= SESSIONS_MAX {
                return None;
            }
        }
        let session = Session { token: party_token.to_owned(), csrf: csrf.clone(), last_seen: Instant::now() };
        table.insert(token::hash(&id), session);
        Some((id, csrf))
    }

    /// The session's token and CSRF token, if it is open and not idle too long.
    fn touch(&self, id: &str) -> Option<(String, String)> {
        let key = token::hash(id);
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        let session = table.get_mut(&key)?;
        if session.last_seen.elapsed() >= self.idle_max {
            table.remove(&key);
            return None;
        }
        session.last_seen = Instant::now();
        Some((session.token.clone(), session.csrf.clone()))
    }

    fn close(&self, id: &str) {
        self.table.write().unwrap_or_else(|e| e.into_inner()).remove(&token::hash(id));
    }

    /// Sessions open now (tests).
    pub fn len(&self) -> usize {
        self.table.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
        let Some((party_token, csrf)) = console.sessions.touch(&id) else {
            return Err(pages::to_sign_in());
        };
        // A party bound to a client certificate needs it on this connection too.
        let peer = parts.extensions.get::<PeerCertificate>();
        match console.app.parties.authenticate(&bearer(&party_token), peer).await {
            Ok(party) => Ok(Signed { party, csrf, id }),
            Err(ApiError::Store(e)) => {
                tracing::error!(error = %e, "console: storage failure");
                Err(pages::unavailable())
            }
            // Revoked since sign-in.
            Err(_) => {
                console.sessions.close(&id);
                Err(pages::to_sign_in())
            }
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
    let Some((id, _)) = console.sessions.open(party_token) else {
        return pages::unavailable();
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
    console.sessions.close(&signed.id);
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

    #[test]
    fn a_session_idle_too_long_is_gone() {
        let mut sessions = Sessions::default();
        let (id, csrf) = sessions.open("tirhub_x").unwrap();
        assert_eq!(sessions.touch(&id), Some(("tirhub_x".to_owned(), csrf)));
        sessions.idle_max = Duration::ZERO;
        assert_eq!(sessions.touch(&id), None);
        assert!(sessions.is_empty());
    }
}
