//! The holder portal: a transport's status and timeline, and the advance-data
//! form (E9) with the HS 2022 search beside it.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use tir_model::party::Party;

use crate::Console;
use crate::chain;
use crate::customs::{self, Notice, fresh_message_id, list, notice_markup, refusal_text};
use crate::pages::{self, Page};
use crate::session::{Posted, Signed, posted};

fn holder_only(signed: &Signed) -> Result<(), Response> {
    match signed.party {
        Party::Holder { .. } => Ok(()),
        _ => Err(pages::forbidden(signed)),
    }
}

/// `GET /console/my[?reference=][?before=]`: the holder's guarantees and
/// transports, newest reference first, a page at a time; or open one by its
/// reference.
pub async fn portal(
    State(console): State<Console>,
    signed: Signed,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let Party::Holder { tir_id, .. } = &signed.party else {
        return pages::forbidden(&signed);
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let reference = query.get("reference").map(|r| r.trim().to_uppercase());
    if let Some(reference) = reference.filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return pages::see_other(&format!("/console/my/transports/{reference}"));
    }
    let before = chain::before(&query);
    let listed = match console.app.store.guarantees_of_holder(tir_id, before.as_ref(), pages::PAGE_ROWS + 1).await {
        Ok(read) => chain::paged(read, before),
        Err(e) => return pages::store_failed(e),
    };
    let body = html! {
        section aria-labelledby="mine" {
            h2 #mine { "My guarantees and transports" }
            (chain::guarantee_list(&listed.rows, "/console/my/transports", chain::empty(&listed, "No guarantee is registered for you yet.")))
            (chain::nav(&listed, "/console/my"))
        }
        section {
            h2 { "Open a transport" }
            form method="get" action="/console/my" {
                label for="reference" { "Guarantee reference" }
                input id="reference" name="reference" required placeholder="XH25000001";
                button type="submit" { "Open" }
            }
        }
        section {
            h2 { "Send advance data" }
            p { a href="/console/my/advance-data" { "Advance data (E9)" } " for a guarantee your chain registered; "
                a href="/console/hs" { "search HS 2022" } " for the goods' codes." }
        }
    };
    Page::new("My transports").signed(&signed).body(body)
}

/// `GET /console/my/transports/{reference}`: the status and timeline, for the
/// holder (or the guarantee chain) of the transport; 403 for anyone else.
pub async fn transport(
    State(console): State<Console>,
    signed: Signed,
    reference: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let result = async {
        if !matches!(signed.party, Party::Holder { .. } | Party::GuaranteeChain { .. }) {
            return Err(pages::forbidden(&signed));
        }
        let Ok(Path(raw)) = reference else {
            return Err(pages::not_found_page(Some(&signed), "There is no such page."));
        };
        let guarantee = customs::readable(&console, &signed, &raw).await?;
        let notice = match query.ok().and_then(|Query(q)| q.get("done").cloned()).as_deref() {
            Some("E13") => Some(Notice::Done("E13 accepted: the advance data is withdrawn.".to_owned())),
            Some("E11") => Some(Notice::Done("E11 accepted: the amendment is sent.".to_owned())),
            _ => None,
        };
        holder_transport_page(&console, &signed, &guarantee, notice).await
    };
    result.await.unwrap_or_else(|page| page)
}

async fn holder_transport_page(
    console: &Console,
    signed: &Signed,
    guarantee: &tir_model::guarantee::Guarantee,
    notice: Option<Notice>,
) -> Result<Response, Response> {
    let events = console.app.store.timeline(&guarantee.reference).await.map_err(pages::store_failed)?;
    // The amendments are replayed from the transport's journal entries (`amendments`).
    let entries = console
        .app
        .store
        .journal_of(&guarantee.reference, customs::JOURNAL_SHOWN)
        .await
        .map_err(pages::store_failed)?;
    let reference = guarantee.reference.as_str();
    let status = match &notice {
        Some(Notice::Refused { status, .. }) => *status,
        _ => 200,
    };
    let body = html! {
        (notice_markup(notice.as_ref()))
        (customs::summary(guarantee))
        (customs::itinerary(guarantee))
        (customs::crossings(guarantee, &events))
        (customs::goods(guarantee))
        (crate::amendments::section(&crate::amendments::amendments(&entries)))
        (customs::timeline(&events))
        @if matches!(signed.party, Party::Holder { .. }) {
            section aria-labelledby="holder-actions" {
                h2 #holder-actions { "Advance data" }
                div.actions {
                    p { a href=(format!("/console/my/advance-data?guarantee_reference={reference}&type=E11")) { "Amend the advance data (E11)" } }
                    form #action-withdraw method="post" action=(format!("/console/my/transports/{reference}")) {
                        h3 { "Withdraw the advance data (E13)" }
                        input type="hidden" name="csrf" value=(signed.csrf);
                        input type="hidden" name="message_id" value=(fresh_message_id());
                        label for="withdraw-reason" { "Reason" }
                        input id="withdraw-reason" name="reason" required;
                        button.danger type="submit" { "Withdraw (E13)" }
                    }
                }
            }
        }
    };
    Ok(Page::new(format!("Transport {reference}")).status(status).signed(signed).body(body))
}

/// `POST /console/my/transports/{reference}`: the holder withdraws its advance data (E13).
pub async fn withdraw(
    State(console): State<Console>,
    signed: Signed,
    reference: Result<Path<String>, PathRejection>,
    form: Posted,
) -> Response {
    let result = async {
        let form = posted(form)?;
        signed.check_csrf(&form)?;
        holder_only(&signed)?;
        let Ok(Path(raw)) = reference else {
            return Err(pages::not_found_page(Some(&signed), "There is no such page."));
        };
        let guarantee = customs::readable(&console, &signed, &raw).await?;
        let reference = guarantee.reference.as_str().to_owned();
        let field = |name: &str| form.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
        let message = json!({"message_id": field("message_id"), "type": "E13", "guarantee_reference": reference,
                             "reason": field("reason")});
        let (status, answer) =
            tir_server::submit_message(&console.app, signed.party.clone(), Bytes::from(message.to_string())).await;
        if status == 200 {
            return Ok(pages::see_other(&format!("/console/my/transports/{reference}?done=E13")));
        }
        let guarantee = customs::readable(&console, &signed, &reference).await?;
        let notice = Notice::Refused { status, text: refusal_text("E13", &answer) };
        holder_transport_page(&console, &signed, &guarantee, Some(notice)).await
    };
    result.await.unwrap_or_else(|page| page)
}

/// The form's fields: (name, label, required).
const FIELDS: [(&str, &str, bool); 18] = [
    ("guarantee_reference", "Guarantee reference", true),
    ("itinerary", "Itinerary: countries in the order travelled (e.g. KZ RU BY LT PL)", true),
    ("departure", "Office of departure", true),
    ("entry", "Offices of entry, if declared (space between them)", false),
    ("destination", "Office of destination", true),
    ("vehicle_registration", "Vehicle registration", true),
    ("vehicle_country", "Vehicle country", true),
    ("seals", "Seals (comma between them)", false),
    ("consignor_name", "Consignor", true),
    ("consignor_country", "Consignor's country", true),
    ("consignee_name", "Consignee", true),
    ("consignee_country", "Consignee's country", true),
    ("hs_code", "HS 2022 subheading (6 digits)", true),
    ("description", "Description of the goods", true),
    ("packages", "Packages", false),
    ("gross_mass_kg", "Gross mass (kg)", true),
    ("value_amount", "Value", false),
    ("currency", "Currency (ISO 4217)", false),
];

fn advance_page(signed: &Signed, values: &HashMap<String, String>, notice: Option<Notice>) -> Response {
    let status = match &notice {
        Some(Notice::Refused { status, .. }) => *status,
        _ => 200,
    };
    let hs = values.get("hs_code").and_then(|c| tir_model::refdata::hs_subheading(c.trim()));
    let field = |name: &str, label: &str, required: bool| -> Markup {
        let value = values.get(name).map(String::as_str).unwrap_or_default();
        html! {
            label for=(name) { (label) @if !required { " (optional)" } }
            input id=(name) name=(name) value=(value) required[required];
        }
    };
    let amend = values.get("type").is_some_and(|t| t == "E11");
    let body = html! {
        (notice_markup(notice.as_ref()))
        p.hint { "Sent as E9 to the customs of departure, or as E11 to replace advance data already sent (after the declaration is recorded, name the country whose started operation the amendment is for). Find the goods' code with the " a href="/console/hs" { "HS 2022 search" } "." }
        details.hs-finder open[!values.contains_key("hs_code")] {
            summary { "Find the HS 2022 code" }
            (crate::hs::search_form("hs-q", ""))
            div #hs-results aria-live="polite" {}
        }
        form method="post" action="/console/my/advance-data" {
            input type="hidden" name="csrf" value=(signed.csrf);
            input type="hidden" name="message_id" value=(fresh_message_id());
            label for="type" { "Message" }
            select id="type" name="type" {
                option value="E9" selected[!amend] { "Advance data (E9)" }
                option value="E11" selected[amend] { "Amendment (E11)" }
            }
            label for="country" { "Country of the amendment (E11 after recording only; optional)" }
            input id="country" name="country" value=(values.get("country").map(String::as_str).unwrap_or_default());
            @for (name, label, required) in FIELDS {
                (field(name, label, required))
                @if name == "hs_code" {
                    @if let Some(description) = hs { p.hint #hs-description { "HS 2022: " (description) } }
                }
            }
            button type="submit" { "Send advance data" }
        }
    };
    Page::new("Advance data").status(status).signed(signed).body(body)
}

/// `GET /console/my/advance-data[?hs_code=...]`.
pub async fn advance_form(
    State(_): State<Console>,
    signed: Signed,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    if let Err(page) = holder_only(&signed) {
        return page;
    }
    let mut values = HashMap::new();
    if let Ok(Query(q)) = query {
        for name in ["hs_code", "guarantee_reference", "type"] {
            if let Some(value) = q.get(name) {
                values.insert(name.to_owned(), value.clone());
            }
        }
    }
    advance_page(&signed, &values, None)
}

/// A number as typed, or the text as it is: the API then names the field.
fn number(text: &str) -> Value {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => json!(n),
        _ => json!(text),
    }
}

fn declaration(form: &HashMap<String, String>) -> Value {
    let field = |name: &str| form.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    let mut offices = vec![json!({"code": field("departure"), "role": "departure"})];
    offices.extend(list(&field("entry")).into_iter().map(|code| json!({"code": code, "role": "entry"})));
    offices.push(json!({"code": field("destination"), "role": "destination"}));
    let mut goods = Map::new();
    goods.insert("hs_code".into(), json!(field("hs_code")));
    goods.insert("description".into(), json!(field("description")));
    if !field("packages").is_empty() {
        let packages = field("packages");
        goods.insert("packages".into(), packages.parse::<i64>().map(|n| json!(n)).unwrap_or(json!(packages)));
    }
    goods.insert("gross_mass_kg".into(), number(&field("gross_mass_kg")));
    if !field("value_amount").is_empty() {
        goods.insert("value".into(), json!({"amount": number(&field("value_amount")), "currency": field("currency")}));
    }
    json!({
        "itinerary": list(&field("itinerary").to_uppercase()),
        "offices": offices,
        "vehicle": {"registration": field("vehicle_registration"), "country": field("vehicle_country")},
        "seals": list(&field("seals")),
        "consignments": [{
            "consignor": {"name": field("consignor_name"), "country": field("consignor_country")},
            "consignee": {"name": field("consignee_name"), "country": field("consignee_country")},
            "goods": [goods]
        }]
    })
}

/// `POST /console/my/advance-data`: E9, as `POST /v1/messages` takes it.
pub async fn advance_submit(State(console): State<Console>, signed: Signed, form: Posted) -> Response {
    let result = async {
        let form = posted(form)?;
        signed.check_csrf(&form)?;
        holder_only(&signed)?;
        let reference = form.get("guarantee_reference").map(|r| r.trim().to_owned()).unwrap_or_default();
        let kind = if form.get("type").is_some_and(|t| t == "E11") { "E11" } else { "E9" };
        let mut message = json!({
            "message_id": form.get("message_id").cloned().unwrap_or_default(),
            "type": kind,
            "guarantee_reference": reference,
            "declaration": declaration(&form),
        });
        // Only an E11 after recording names a country (the API answers 107 otherwise).
        if let Some(country) = form.get("country").map(|c| c.trim().to_uppercase()).filter(|c| !c.is_empty()) {
            message["country"] = json!(country);
        }
        let (status, answer) =
            tir_server::submit_message(&console.app, signed.party.clone(), Bytes::from(message.to_string())).await;
        if status == 200 {
            // Accepted, so the reference is a well-formed one.
            let done = if kind == "E11" { "?done=E11" } else { "" };
            return Ok(pages::see_other(&format!("/console/my/transports/{reference}{done}")));
        }
        let notice = Notice::Refused { status, text: refusal_text(kind, &answer) };
        Ok(advance_page(&signed, &form, Some(notice)))
    };
    result.await.unwrap_or_else(|page: Response| page)
}
