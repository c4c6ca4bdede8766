//! The page frame, the error pages and the style sheet: every answer of the
//! console is a whole HTML page that reads without JavaScript.

use std::collections::HashMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use tir_model::party::Party;

use crate::session::Signed;

/// Embedded in the binary: nothing is fetched at run time.
pub const STYLE: &str = include_str!("style.css");
/// htmx, from its npm package `htmx.org` (0BSD; assets/README.md).
pub const HTMX: &str = include_str!("../assets/htmx.min.js");
/// In the script's URL, so that a new version is fetched despite the long cache.
pub const HTMX_VERSION: &str = "4.0.1";

pub struct Page<'a> {
    title: String,
    status: u16,
    signed: Option<&'a Signed>,
}

impl<'a> Page<'a> {
    pub fn new(title: impl Into<String>) -> Page<'a> {
        Page { title: title.into(), status: 200, signed: None }
    }

    pub fn status(mut self, status: u16) -> Page<'a> {
        self.status = status;
        self
    }

    /// Shows the signed-in party and the sign-out form in the header.
    pub fn signed(mut self, signed: &'a Signed) -> Page<'a> {
        self.signed = Some(signed);
        self
    }

    pub fn body(self, main: Markup) -> Response {
        let page = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · tirhub console" }
                    link rel="stylesheet" href="/console/style.css";
                    // Optional: every page works without it (forms and links are plain HTML).
                    script src=(format!("/console/assets/htmx.min.js?v={HTMX_VERSION}")) defer {}
                }
                body {
                    header {
                        a.brand href="/console" { "tirhub" }
                        @if let Some(signed) = self.signed {
                            nav aria-label="Main" {
                                @match &signed.party {
                                    Party::Customs { .. } => {
                                        a href="/console/arrivals" { "Arrivals" }
                                        a href="/console/dashboard" { "Dashboard" }
                                        a href="/console/risk/profiles" { "Risk profiles" }
                                        a href="/console/risk/stats" { "Risk stats" }
                                    }
                                    Party::Admin => {
                                        a href="/console/dashboard" { "Dashboard" }
                                        a href="/console/admin/parties" { "Parties" }
                                        a href="/console/admin/offices" { "Offices" }
                                        a href="/console/admin/holders" { "Holders" }
                                        a href="/console/admin/journal" { "Journal" }
                                    }
                                    Party::GuaranteeChain { .. } => { a href="/console/chain" { "My guarantees" } }
                                    Party::Holder { .. } => {
                                        a href="/console/my" { "My transports" }
                                        a href="/console/my/advance-data" { "Advance data" }
                                        a href="/console/hs" { "HS 2022" }
                                    }
                                }
                            }
                            form.sign-out method="post" action="/console/sign-out" {
                                input type="hidden" name="csrf" value=(signed.csrf);
                                span.who { (party_label(&signed.party)) }
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                    main {
                        h1 { (self.title) }
                        (main)
                    }
                }
            }
        };
        html_response(self.status, page.into_string())
    }
}

pub fn party_label(party: &Party) -> String {
    match party {
        Party::Admin => "admin".to_owned(),
        Party::Customs { id, country } => format!("customs of {} ({id})", country.as_str()),
        Party::GuaranteeChain { id } => format!("guarantee chain {id}"),
        Party::Holder { tir_id, .. } => format!("holder {tir_id}"),
    }
}

/// A page with the headers every console page has: never cached (it shows a
/// party's data), never framed, and only this origin's style and forms.
pub fn html_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn to_sign_in() -> Response {
    see_other("/console/sign-in")
}

pub fn forbidden(signed: &Signed) -> Response {
    Page::new("Not allowed").status(403).signed(signed).body(html! {
        p { "Your party may not see this page: it is not a party to this transport, or the page is for another kind of party." }
    })
}

pub fn csrf_refused() -> Response {
    Page::new("Form refused").status(403).body(html! {
        p { "The form did not carry this session's security token. Open the page again and resend the form." }
    })
}

pub fn not_found_page(signed: Option<&Signed>, what: &str) -> Response {
    let page = Page::new("Not found").status(404);
    let page = match signed {
        Some(signed) => page.signed(signed),
        None => page,
    };
    page.body(html! { p { (what) } })
}

pub async fn not_found() -> Response {
    not_found_page(None, "There is no such page.")
}

pub fn unavailable() -> Response {
    Page::new("Unavailable").status(503).body(html! { p { "The store is unavailable; try again shortly." } })
}

pub fn store_failed(e: tir_store::StoreError) -> Response {
    tracing::error!(error = %e, "console: storage failure");
    unavailable()
}

pub async fn style() -> Response {
    let mut response = STYLE.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    response
}

/// `GET /console/assets/htmx.min.js`: the same bytes for a version, so cached for a year.
pub async fn htmx() -> Response {
    let mut response = HTMX.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `1970-01-01 00:00:00Z` style, shorter than RFC 3339 for tables.
/// Escapes text for SVG built as text (maud escapes its own markup).
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A share as a percentage with one decimal, "–" when there is none.
pub fn percent(rate: Option<f64>) -> String {
    rate.map_or("–".to_owned(), |r| format!("{:.1} %", 100.0 * r))
}

pub fn when(at: Option<tir_model::Timestamp>) -> String {
    match at {
        Some(at) => {
            let text = at.to_rfc3339();
            match (text.get(..10), text.get(11..19)) {
                (Some(day), Some(time)) => format!("{day} {time}"),
                _ => text,
            }
        }
        None => "–".to_owned(),
    }
}

/// Rows a page of a long list shows.
pub const PAGE_ROWS: usize = 200;

/// One page of a list read as `PAGE_ROWS + 1` rows from the page's start,
/// so that the extra row says whether another page follows.
pub struct Paged<T> {
    pub rows: Vec<T>,
    /// The key the page started after (`None`: the first page).
    pub from: Option<String>,
    pub more: bool,
}

impl<T> Paged<T> {
    pub fn new(mut read: Vec<T>, from: Option<String>) -> Paged<T> {
        let more = read.len() > PAGE_ROWS;
        read.truncate(PAGE_ROWS);
        Paged { rows: read, from, more }
    }

    /// Links to the first page and to the next, on `path`: the next starts
    /// after the last row's `key`, as `?{param}=`.
    pub fn nav(&self, path: &str, param: &str, key: impl Fn(&T) -> String, labels: (&str, &str)) -> Markup {
        let next = self.rows.last().filter(|_| self.more).map(key);
        html! {
            @if self.from.is_some() || next.is_some() {
                nav.pager aria-label="Pages" {
                    @if self.from.is_some() { a href=(path) { (labels.0) } }
                    @if let Some(next) = next {
                        @if self.from.is_some() { " · " }
                        a href=(format!("{path}?{param}={}", encode(&next))) rel="next" { (labels.1) " →" }
                    }
                }
            }
        }
    }
}

/// Percent-encodes a query value (TIR ids hold `/`).
pub fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polled parts (the dashboard's map and figures, the arrivals list) ask for
/// themselves again this often, through htmx; without JavaScript a page is
/// read as it was served (reload it).
pub const LIVE_EVERY: &str = "every 10s";

/// The tag of a polled part: the journal's last seq (every write that can
/// change what a polled part shows is journaled) and `scope` (whose view, and
/// anything else it was drawn from). Read before the part's own reads, so a
/// write landing in between shows at the next poll rather than never.
pub async fn live_tag(console: &crate::Console, scope: &str) -> Result<String, Response> {
    let head = console.app.store.journal_head_seq().await.map_err(store_failed)?;
    Ok(format!("{head}-{scope}"))
}

/// The answer to a poll `?seen=` the current `tag`: 204, which htmx does not
/// swap; `None` when the part must be drawn.
pub fn unchanged(query: &HashMap<String, String>, tag: &str) -> Option<Response> {
    (query.get("seen").map(String::as_str) == Some(tag)).then(|| StatusCode::NO_CONTENT.into_response())
}
