//! `GET /console/hs?q=`: the shipped HS 2022 nomenclature searched by code
//! prefix or by words, with each subheading's section and chapter. A plain
//! GET form: it works without JavaScript; with it, htmx fills the rows in as
//! the holder types (`GET /console/hs/results`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use tir_model::refdata;

use crate::Console;
use crate::pages::{Page, html_response};
use crate::session::Signed;

/// Results shown at most.
const HS_RESULTS_MAX: usize = 50;
/// Longer queries are cut: nothing in the nomenclature needs more.
const HS_QUERY_CHARS_MAX: usize = 100;

/// The 21 sections of the Harmonized System: last chapter, numeral, title.
const SECTIONS: [(u8, &str, &str); 21] = [
    (5, "I", "Live animals; animal products"),
    (14, "II", "Vegetable products"),
    (15, "III", "Animal, vegetable or microbial fats and oils"),
    (24, "IV", "Prepared foodstuffs; beverages, spirits and vinegar; tobacco"),
    (27, "V", "Mineral products"),
    (38, "VI", "Products of the chemical or allied industries"),
    (40, "VII", "Plastics and rubber, and articles thereof"),
    (43, "VIII", "Raw hides and skins, leather, furskins; saddlery; travel goods"),
    (46, "IX", "Wood, cork, straw and plaiting materials, and articles thereof"),
    (49, "X", "Pulp of wood; paper and paperboard, and articles thereof"),
    (63, "XI", "Textiles and textile articles"),
    (67, "XII", "Footwear, headgear, umbrellas; artificial flowers"),
    (70, "XIII", "Articles of stone, plaster, cement, asbestos, mica; ceramics; glass"),
    (71, "XIV", "Pearls, precious stones, precious metals; imitation jewellery; coin"),
    (83, "XV", "Base metals and articles of base metal"),
    (85, "XVI", "Machinery and mechanical appliances; electrical equipment"),
    (89, "XVII", "Vehicles, aircraft, vessels and associated transport equipment"),
    (92, "XVIII", "Optical, measuring, medical instruments; clocks; musical instruments"),
    (93, "XIX", "Arms and ammunition"),
    (96, "XX", "Miscellaneous manufactured articles"),
    (97, "XXI", "Works of art, collectors' pieces and antiques"),
];

/// The section (numeral, title) of a subheading's chapter (its first two digits).
pub fn section_of(code: &str) -> Option<(&'static str, &'static str)> {
    let chapter: u8 = code.get(..2)?.parse().ok()?;
    SECTIONS.iter().find(|(last, ..)| chapter <= *last).map(|(_, numeral, title)| (*numeral, *title))
}

#[derive(Deserialize)]
pub struct HsQuery {
    q: Option<String>,
}

fn query_text(query: Result<Query<HsQuery>, QueryRejection>) -> String {
    query.ok().and_then(|Query(q)| q.q).unwrap_or_default().trim().chars().take(HS_QUERY_CHARS_MAX).collect()
}

/// The search field: a plain GET form to `/console/hs`, which htmx (when
/// the browser runs it) also sends to `/console/hs/results` as the holder
/// types, putting the rows in `#hs-results` without leaving the page.
pub fn search_form(input_id: &str, q: &str) -> Markup {
    html! {
        form method="get" action="/console/hs" role="search" {
            label for=(input_id) { "HS code (its first digits) or words of the description" }
            input id=(input_id) name="q" type="search" value=(q) autocomplete="off"
                hx-get="/console/hs/results" hx-trigger="keyup changed delay:300ms, search"
                hx-target="#hs-results" aria-controls="hs-results";
            button type="submit" { "Search" }
        }
    }
}

/// The rows found for `q`, with section and chapter: the page's list and the
/// type-ahead's answer.
pub fn results(q: &str) -> Markup {
    let found = refdata::hs_search(q, HS_RESULTS_MAX);
    html! {
        @if !q.is_empty() {
            p { (found.len()) @if found.len() == HS_RESULTS_MAX { " or more" } " subheadings found." }
        }
        @if !found.is_empty() {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "Code" } th scope="col" { "Description" } th scope="col" { "Section" } th scope="col" { "Chapter" } th scope="col" { "Use" }
                } }
                tbody { @for (code, description) in &found { tr {
                    td.mono { (code) }
                    td { (description) }
                    td { @if let Some((numeral, title)) = section_of(code) { (numeral) ": " (title) } }
                    td { (code.get(..2).unwrap_or_default()) }
                    td { a href=(format!("/console/my/advance-data?hs_code={code}")) aria-label=(format!("Use {code} in advance data")) { "use" } }
                } } }
            } }
        }
    }
}

pub async fn search(
    State(_): State<Console>,
    signed: Signed,
    query: Result<Query<HsQuery>, QueryRejection>,
) -> Response {
    let q = query_text(query);
    let body = html! {
        (search_form("q", &q))
        div #hs-results aria-live="polite" { (results(&q)) }
    };
    Page::new("HS 2022 search").signed(&signed).body(body)
}

/// `GET /console/hs/results?q=`: the rows alone (no page around them), for
/// the type-ahead.
pub async fn partial(State(_): State<Console>, _: Signed, query: Result<Query<HsQuery>, QueryRejection>) -> Response {
    html_response(200, results(&query_text(query)).into_string())
}

#[cfg(test)]
mod tests {
    use super::section_of;

    #[test]
    fn chapters_fall_in_their_sections() {
        assert_eq!(section_of("010121").map(|s| s.0), Some("I"));
        assert_eq!(section_of("150100").map(|s| s.0), Some("III"));
        assert_eq!(section_of("870323").map(|s| s.0), Some("XVII"));
        assert_eq!(section_of("970110").map(|s| s.0), Some("XXI"));
        assert_eq!(section_of("x"), None);
    }
}
