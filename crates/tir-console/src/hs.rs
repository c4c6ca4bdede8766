//! `GET /console/hs?q=`: the shipped HS 2022 nomenclature searched by code
//! prefix or by words, with each subheading's section and chapter. A plain
//! GET form: it works without JavaScript.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use tir_model::refdata;

use crate::Console;
use crate::pages::Page;
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

pub async fn search(
    State(_): State<Console>,
    signed: Signed,
    query: Result<Query<HsQuery>, QueryRejection>,
) -> Response {
    let q: String =
        query.ok().and_then(|Query(q)| q.q).unwrap_or_default().trim().chars().take(HS_QUERY_CHARS_MAX).collect();
    let results = refdata::hs_search(&q, HS_RESULTS_MAX);
    let body = html! {
        form method="get" action="/console/hs" role="search" {
            label for="q" { "HS code (its first digits) or words of the description" }
            input id="q" name="q" type="search" value=(q) autocomplete="off";
            button type="submit" { "Search" }
        }
        @if !q.is_empty() {
            p { (results.len()) @if results.len() == HS_RESULTS_MAX { " or more" } " subheadings found." }
        }
        @if !results.is_empty() {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "Code" } th scope="col" { "Description" } th scope="col" { "Section" } th scope="col" { "Chapter" } th scope="col" { "Use" }
                } }
                tbody { @for (code, description) in &results { tr {
                    td.mono { (code) }
                    td { (description) }
                    td { @if let Some((numeral, title)) = section_of(code) { (numeral) ": " (title) } }
                    td { (code.get(..2).unwrap_or_default()) }
                    td { a href=(format!("/console/my/advance-data?hs_code={code}")) aria-label=(format!("Use {code} in advance data")) { "use" } }
                } } }
            } }
        }
    };
    Page::new("HS 2022 search").signed(&signed).body(body)
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
