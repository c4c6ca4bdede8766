//! Customs pages: the arrivals of the officer's country and the transport page
//! with its actions (I1, I7, I9, I11, I13, I17), each sent as the API's message.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use tir_model::exchange::may_read;
use tir_model::guarantee::Guarantee;
use tir_model::party::{OfficeRole, Party};
use tir_model::{Country, GuaranteeRef, Timestamp, refdata};
use tir_store::console::Stage;
use tir_store::{AssessmentRecord, JournalEntry};

use crate::Console;
use crate::pages::{self, Page, when};
use crate::session::{Posted, Signed, posted};

/// Transports the arrivals page loads and shows at most, newest announcements first.
const ARRIVALS_MAX: usize = 200;

/// What the last action did, shown above the transport.
pub enum Notice {
    Done(String),
    Refused { status: u16, text: String },
}

/// A fresh message id for one rendered form: a second click of the same
/// form sends the same id, which the store answers from its idempotency record.
pub fn fresh_message_id() -> String {
    format!("console-{}", tir_store::token::random_hex(16))
}

/// The guarantee `raw` names, if `signed` may read it: else the 404 or 403 page.
pub async fn readable(console: &Console, signed: &Signed, raw: &str) -> Result<Guarantee, Response> {
    let missing = || pages::not_found_page(Some(signed), "There is no guarantee with this reference.");
    let reference = GuaranteeRef::parse(raw).map_err(|_| missing())?;
    let guarantee = console.app.store.guarantee(&reference).await.map_err(pages::store_failed)?.ok_or_else(missing)?;
    if !may_read(&signed.party, &guarantee) {
        return Err(pages::forbidden(signed));
    }
    Ok(guarantee)
}

fn customs_country(signed: &Signed) -> Result<Country, Response> {
    match &signed.party {
        Party::Customs { country, .. } => Ok(*country),
        _ => Err(pages::forbidden(signed)),
    }
}

pub fn lane(record: &AssessmentRecord) -> Markup {
    lane_of(record.assessment.lane)
}

fn lane_of(lane: tir_risk::rules::Lane) -> Markup {
    let lane = lane.as_str();
    html! { span class=(format!("lane lane-{lane}")) { (lane) } }
}

fn score(record: &AssessmentRecord) -> String {
    score_of(record.assessment.score)
}

fn score_of(score: Option<f64>) -> String {
    score.map(|s| format!("{s:.2}")).unwrap_or_else(|| "–".to_owned())
}

/// `GET /console/arrivals`: transports announced to this country's customs
/// (its feed: advance data, declarations recorded, previous operations
/// terminated) with an operation here still to start or end, soonest first.
pub async fn arrivals(State(console): State<Console>, signed: Signed) -> Response {
    let page = async {
        let country = customs_country(&signed)?;
        let list = arrivals_list(&console, country).await?;
        let body = html! {
            p.hint { "Transports announced to the customs of " (country.name()) " with an operation here still to start or to end, soonest first: those whose operation here is next, then by the time they were announced." }
            (list)
        };
        Ok(Page::new(format!("Arrivals · {}", country.name())).signed(&signed).body(body))
    };
    page.await.unwrap_or_else(|page: Response| page)
}

/// `GET /console/arrivals/live[?seen=TAG]`: the list alone, which htmx asks
/// for every 10 s in place of the one on the page; 204 while `TAG` is current.
pub async fn arrivals_live(
    State(console): State<Console>,
    signed: Signed,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let part = async {
        let country = customs_country(&signed)?;
        let tag = pages::live_tag(&console, country.as_str()).await?;
        if let Some(unchanged) = pages::unchanged(&query.map(|Query(q)| q).unwrap_or_default(), &tag) {
            return Ok(unchanged);
        }
        Ok(pages::html_response(200, arrivals_markup(&console, country, &tag).await?.into_string()))
    };
    part.await.unwrap_or_else(|page: Response| page)
}

/// The list as the page shows it, in the element htmx refreshes.
async fn arrivals_list(console: &Console, country: Country) -> Result<Markup, Response> {
    let tag = pages::live_tag(console, country.as_str()).await?;
    arrivals_markup(console, country, &tag).await
}

async fn arrivals_markup(console: &Console, country: Country, tag: &str) -> Result<Markup, Response> {
    // The store's arrivals of the country (an index: docs/console.md, "At scale"), then soonest first.
    let mut arrivals = console.app.store.arrivals(country, ARRIVALS_MAX).await.map_err(pages::store_failed)?;
    arrivals.sort_by_key(|a| (a.ahead, a.announced_ms));
    Ok(html! {
        div #arrivals hx-get=(format!("/console/arrivals/live?seen={tag}")) hx-trigger=(pages::LIVE_EVERY) hx-swap="outerHTML" {
            @if arrivals.is_empty() {
                p { "No transport is announced." }
            } @else {
                div.table-wrap { table {
                    thead { tr {
                        th scope="col" { "Guarantee" } th scope="col" { "Itinerary" } th scope="col" { "Here" }
                        th scope="col" { "Lane" } th scope="col" { "Score" } th scope="col" { "Reasons" } th scope="col" { "Announced" }
                    } }
                    tbody {
                        @for a in &arrivals {
                            @let reference = a.reference.as_str();
                            tr {
                                td { a href=(format!("/console/transports/{reference}")) { (reference) } }
                                td { (countries_text(&a.itinerary)) }
                                td { (stage(&a.stage, a.ahead)) }
                                @match &a.assessment {
                                    Some(verdict) => {
                                        td { (lane_of(verdict.lane)) }
                                        td { (score_of(verdict.score)) }
                                        td { (verdict.reasons.join("; ")) }
                                    }
                                    None => { td { "–" } td { "–" } td.hint { "not assessed" } }
                                }
                                td { (when(Some(Timestamp::from_unix_ms(a.announced_ms)))) }
                            }
                        }
                    }
                } }
            }
        }
    })
}

fn stage(stage: &Stage, ahead: u32) -> String {
    match stage {
        Stage::Departure(state) => format!("departure: advance data, guarantee {}", state.as_str()),
        Stage::Operation { sequence, started: true } => format!("operation {sequence} started"),
        Stage::Operation { sequence, .. } if ahead == 0 => format!("operation {sequence} next"),
        Stage::Operation { sequence, .. } => format!("operation {sequence}: {ahead} before it"),
        Stage::Done => String::new(),
    }
}

fn itinerary_text(guarantee: &Guarantee) -> String {
    countries_text(guarantee.itinerary())
}

fn countries_text(countries: &[Country]) -> String {
    countries.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" → ")
}

#[derive(Deserialize)]
pub struct Shown {
    done: Option<String>,
}

/// `GET /console/transports/{reference}`: customs of a country of the
/// itinerary (or the admin); holders and other customs get 403.
pub async fn transport(
    State(console): State<Console>,
    signed: Signed,
    reference: Result<Path<String>, PathRejection>,
    query: Result<Query<Shown>, QueryRejection>,
) -> Response {
    let result = async {
        if !matches!(signed.party, Party::Customs { .. } | Party::Admin) {
            return Err(pages::forbidden(&signed));
        }
        let Ok(Path(raw)) = reference else {
            return Err(pages::not_found_page(Some(&signed), "There is no such page."));
        };
        let guarantee = readable(&console, &signed, &raw).await?;
        let done = query
            .ok()
            .and_then(|Query(q)| q.done)
            .filter(|d| d.len() <= 3 && d.bytes().all(|b| b.is_ascii_alphanumeric()));
        let notice = done.map(|kind| match kind.as_str() {
            INSPECTED => Notice::Done("Inspection result recorded.".to_owned()),
            _ => Notice::Done(format!("{kind} accepted.")),
        });
        transport_page(&console, &signed, &guarantee, notice).await
    };
    result.await.unwrap_or_else(|page| page)
}

/// `POST /console/transports/{reference}`: one action, as its eTIR message.
pub async fn act(
    State(console): State<Console>,
    signed: Signed,
    reference: Result<Path<String>, PathRejection>,
    form: Posted,
) -> Response {
    let result = async {
        let form = posted(form)?;
        signed.check_csrf(&form)?;
        customs_country(&signed)?;
        let Ok(Path(raw)) = reference else {
            return Err(pages::not_found_page(Some(&signed), "There is no such page."));
        };
        let guarantee = readable(&console, &signed, &raw).await?;
        let reference = guarantee.reference.as_str().to_owned();
        let field = |name: &str| form.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
        if field("action") == "inspect" {
            return inspect(&console, &signed, &reference, &form).await;
        }
        let (kind, fields) = match field("action").as_str() {
            "accept" => ("I1", json!({"office": field("office")})),
            "record" => ("I7", json!({"office": field("office")})),
            "start" => ("I9", json!({"office": field("office"), "seals": list(&field("seals"))})),
            "terminate" => (
                "I11",
                json!({"office": field("office"), "seals": list(&field("seals")), "reservations": lines(&field("reservations"))}),
            ),
            "discharge" => ("I13", json!({"office": field("office")})),
            "refuse" => ("I17", json!({"office": field("office"), "reason": field("reason")})),
            _ => {
                return Err(Page::new("Bad request")
                    .status(400)
                    .signed(&signed)
                    .body(html! { p { "No such action." } }));
            }
        };
        let mut message = json!({"message_id": field("message_id"), "type": kind, "guarantee_reference": reference});
        if let (Some(message), Value::Object(fields)) = (message.as_object_mut(), fields) {
            message.extend(fields);
        }
        let (status, answer) =
            tir_server::submit_message(&console.app, signed.party.clone(), Bytes::from(message.to_string())).await;
        if status == 200 {
            return Ok(pages::see_other(&format!("/console/transports/{reference}?done={kind}")));
        }
        // The page again, as it is now, with the refusal and fresh message ids.
        let guarantee = readable(&console, &signed, &reference).await?;
        let notice = Notice::Refused { status, text: refusal_text(kind, &answer) };
        transport_page(&console, &signed, &guarantee, Some(notice)).await
    };
    result.await.unwrap_or_else(|page| page)
}

/// The `done` of an inspection result (not an eTIR message).
const INSPECTED: &str = "IR";

/// An inspection result, as `POST /v1/risk/results` takes it, through the
/// API's own path (`tir_server::submit_result`): recorded for the officer's
/// administration, replacing an earlier one at the same office.
async fn inspect(
    console: &Console,
    signed: &Signed,
    reference: &str,
    form: &HashMap<String, String>,
) -> Result<Response, Response> {
    let field = |name: &str| form.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    let mut body = json!({"guarantee_reference": reference, "office": field("office"), "outcome": field("outcome")});
    // Optional fields left empty are left out (the API refuses blank text: 101).
    let findings = lines(&field("findings"));
    if !findings.is_empty() {
        body["findings"] = json!(findings);
    }
    if !field("notes").is_empty() {
        body["notes"] = json!(field("notes"));
    }
    let revenue = field("revenue");
    if !revenue.is_empty() {
        // A number as typed, else the text: the API names the field.
        body["revenue"] = revenue.parse::<f64>().ok().filter(|r| r.is_finite()).map_or(json!(revenue), |r| json!(r));
    }
    let (status, answer) =
        tir_server::submit_result(&console.app, signed.party.clone(), Bytes::from(body.to_string())).await;
    if matches!(status, 200 | 201) {
        return Ok(pages::see_other(&format!("/console/transports/{reference}?done={INSPECTED}")));
    }
    let guarantee = readable(console, signed, reference).await?;
    let notice = Notice::Refused { status, text: refusal_text("Inspection result", &answer) };
    transport_page(console, signed, &guarantee, Some(notice)).await
}

/// Seals typed as a list: commas, semicolons or white space between them.
pub fn list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The API's refusal, in words: "I9 refused: 213 ... at /office".
pub fn refusal_text(kind: &str, answer: &str) -> String {
    let value: Value = serde_json::from_str(answer).unwrap_or_default();
    let error = &value["error"];
    let mut text = format!(
        "{kind} refused: code {} ({})",
        error["code"].as_u64().unwrap_or(0),
        error["title"].as_str().unwrap_or("no title")
    );
    if let Some(pointer) = error["pointer"].as_str().filter(|p| !p.is_empty()) {
        text.push_str(&format!(" at {pointer}"));
    }
    if let Some(detail) = error["detail"].as_str() {
        text.push_str(&format!(": {detail}"));
    }
    text
}

pub fn notice_markup(notice: Option<&Notice>) -> Markup {
    html! {
        @match notice {
            Some(Notice::Done(text)) => { p.done role="status" { (text) } }
            Some(Notice::Refused { status, text }) => { p.error role="alert" { "HTTP " (status) ". " (text) } }
            None => {}
        }
    }
}

async fn transport_page(
    console: &Console,
    signed: &Signed,
    guarantee: &Guarantee,
    notice: Option<Notice>,
) -> Result<Response, Response> {
    let store = &console.app.store;
    let reference = guarantee.reference.as_str();
    let country = match &signed.party {
        Party::Customs { country, .. } => Some(*country),
        _ => None,
    };
    // Risk assessments are confidential to their administration.
    let assessments = match country {
        Some(country) => store.assessments(country, reference).await.map_err(pages::store_failed)?,
        None => Vec::new(),
    };
    let events = store.timeline(&guarantee.reference).await.map_err(pages::store_failed)?;
    let entries = store.journal_of(&guarantee.reference, JOURNAL_SHOWN).await.map_err(pages::store_failed)?;
    let entries: Vec<JournalEntry> = entries.into_iter().filter(|e| journal_visible(e, country)).collect();
    let status = match &notice {
        Some(Notice::Refused { status, .. }) => *status,
        _ => 200,
    };
    let body = html! {
        (notice_markup(notice.as_ref()))
        (summary(guarantee))
        (itinerary(guarantee))
        (crossings(guarantee, &events))
        (goods(guarantee))
        (crate::amendments::section(&crate::amendments::amendments(&entries)))
        @if country.is_some() {
            section aria-labelledby="risk" {
                h2 #risk { "Risk" }
                @if assessments.is_empty() {
                    p { "Not assessed by your administration." }
                } @else {
                    div.table-wrap { table {
                        thead { tr { th { "Assessed" } th { "Operation" } th { "Office" } th { "Lane" } th { "Score" } th { "Reasons" } } }
                        tbody { @for record in &assessments { tr {
                            td { (when(Some(record.assessment.assessed_at))) }
                            td { (record.assessment.operation) }
                            td { (record.assessment.office) }
                            td { (lane(record)) }
                            td { (score(record)) }
                            td { (record.assessment.reasons.join("; ")) }
                        } } }
                    } }
                }
            }
        }
        @if let Some(country) = country {
            (actions(signed, guarantee, country))
        }
        (timeline(&events))
        (journal(&entries))
    };
    Ok(Page::new(format!("Transport {reference}")).status(status).signed(signed).body(body))
}

/// Journal entries of one transport the page shows at most.
pub(crate) const JOURNAL_SHOWN: usize = 500;

/// The exchange's entries for everyone who may see the transport; the risk
/// entries (assessments, inspection results) only to their administration
/// (`administration` of the recorded body) and the admin (`country: None`).
fn journal_visible(entry: &JournalEntry, country: Option<Country>) -> bool {
    if !entry.message_type.starts_with("RISK_") {
        return true;
    }
    let Some(country) = country else { return true };
    serde_json::from_str::<Value>(&entry.body).is_ok_and(|body| body["administration"] == country.as_str())
}

/// The journal entries with their hashes: each entry's hash covers the
/// previous one's, so `GET /v1/admin/journal/verify` proves none was changed.
pub fn journal(entries: &[JournalEntry]) -> Markup {
    html! {
        section aria-labelledby="journal" {
            h2 #journal { "Journal" }
            p.hint { "Every accepted message about this transport as the journal holds it: SHA-256 of the message body, and the entry's hash, chained to the entry before it." }
            @if entries.is_empty() { p { "No entry." } }
            @else {
                div.table-wrap { table.journal {
                    thead { tr { th scope="col" { "Entry" } th scope="col" { "Time" } th scope="col" { "Message" } th scope="col" { "Hashes" } } }
                    tbody { @for e in entries { tr {
                        td { (e.seq) }
                        td { (when(Some(Timestamp::from_unix_ms(e.at_ms)))) }
                        td { (e.message_type) br; span.hint { (e.sender) } br; span.mono { (e.message_id) } }
                        td {
                            span.hint { "body " } code.hash { (e.body_hash) } br;
                            span.hint { "entry " } code.hash { (e.hash) }
                        }
                    } } }
                } }
            }
        }
    }
}

/// Each border the transport has crossed from one TIR territory into the
/// next: termination at the exit, start at the entry, and the time between.
pub fn crossings(guarantee: &Guarantee, events: &[tir_model::guarantee::Event]) -> Markup {
    let crossings = crate::stats::crossings(guarantee, events);
    let office = |o: &Option<tir_model::OfficeCode>| o.as_ref().map_or("–".to_owned(), |o| o.as_str().to_owned());
    html! {
        @if guarantee.operations.len() > 1 {
            section aria-labelledby="crossings" {
                h2 #crossings { "Border crossings" }
                @if crossings.is_empty() {
                    p { "No border crossed yet." }
                } @else {
                    div.table-wrap { table {
                        thead { tr {
                            th scope="col" { "Border" } th scope="col" { "Terminated at the exit" }
                            th scope="col" { "Started at the entry" } th scope="col" { "Crossing time" }
                        } }
                        tbody { @for c in &crossings { tr {
                            td { (c.exit.as_str()) " → " (c.entry.as_str()) }
                            td { span.mono { (office(&c.exit_office)) } br; (when(Some(c.terminated_at))) }
                            td { span.mono { (office(&c.entry_office)) } br; (when(Some(c.started_at))) }
                            td { (crate::stats::duration_text(c.seconds())) }
                        } } }
                    } }
                }
            }
        }
    }
}

pub fn summary(guarantee: &Guarantee) -> Markup {
    html! {
        section aria-labelledby="summary" {
            h2 #summary { "Guarantee" }
            div.table-wrap { table { tbody {
                tr { th scope="row" { "Reference" } td { (guarantee.reference.as_str()) } }
                tr { th scope="row" { "State" } td { (guarantee.state.as_str()) } }
                tr { th scope="row" { "Holder" } td { (guarantee.holder.to_string()) } }
                tr { th scope="row" { "Registered" } td { (when(Some(guarantee.registered_at))) } }
                tr { th scope="row" { "Accepted by" } td { (guarantee.accepted_by.as_ref().map(|o| o.as_str()).unwrap_or("–")) } }
                tr { th scope="row" { "Declaration" } td { (guarantee.declaration_state().as_str()) ", version " (guarantee.declaration_version) } }
                tr { th scope="row" { "Vehicle" } td {
                    @match guarantee.vehicle() { Some(v) => { (v.registration) " (" (v.country.as_str()) ")" } None => { "–" } }
                } }
                tr { th scope="row" { "Seals" } td { @if guarantee.seals().is_empty() { "none" } @else { (guarantee.seals().join(", ")) } } }
            } } }
        }
    }
}

pub fn itinerary(guarantee: &Guarantee) -> Markup {
    let declared = guarantee.current_declaration().map(|d| d.offices.as_slice()).unwrap_or(&[]);
    html! {
        section aria-labelledby="itinerary" {
            h2 #itinerary { "Itinerary" }
            p { (itinerary_text(guarantee)) }
            @if !declared.is_empty() {
                p { "Declared offices: "
                    @for (i, office) in declared.iter().enumerate() {
                        @if i > 0 { ", " }
                        span.mono { (office.code.as_str()) } " (" (office.role.as_str()) ")"
                    }
                }
            }
            @if guarantee.operations.is_empty() {
                p.hint { "The operations are made when customs of departure record the declaration." }
            } @else {
                div.table-wrap { table {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Territory" } th scope="col" { "Countries" } th scope="col" { "State" }
                        th scope="col" { "Office" } th scope="col" { "Started" } th scope="col" { "Terminated" } th scope="col" { "Discharged" }
                        th scope="col" { "Seals" } th scope="col" { "Reservations" }
                    } }
                    tbody { @for op in &guarantee.operations { tr {
                        td { (op.sequence) }
                        td { (op.territory.as_str()) }
                        td { (op.countries.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")) }
                        td { (op.state.as_str()) @if let Some(reason) = &op.refusal_reason { ": " (reason) } }
                        td.mono { (op.office.as_ref().map(|o| o.as_str()).unwrap_or("–")) }
                        td { (when(op.started_at)) }
                        td { (when(op.terminated_at)) }
                        td { (when(op.discharged_at)) }
                        td { (op.seals.join(", ")) }
                        td { (op.reservations.join("; ")) @if !op.findings.is_empty() { " " (op.findings.len()) " finding(s)" } }
                    } } }
                } }
            }
        }
    }
}

pub fn goods(guarantee: &Guarantee) -> Markup {
    let Some(declaration) = guarantee.current_declaration() else {
        return html! { section { h2 { "Goods" } p { "No declaration yet." } } };
    };
    html! {
        section aria-labelledby="goods" {
            h2 #goods { "Goods" }
            @for (i, consignment) in declaration.consignments.iter().enumerate() {
                p { "Consignment " (i + 1) ": " (consignment.consignor.name) " (" (consignment.consignor.country.as_str()) ") → "
                    (consignment.consignee.name) " (" (consignment.consignee.country.as_str()) ")" }
                div.table-wrap { table {
                    thead { tr {
                        th scope="col" { "HS 2022" } th scope="col" { "Nomenclature" } th scope="col" { "Declared as" }
                        th scope="col" { "Packages" } th scope="col" { "Gross kg" } th scope="col" { "Value" }
                    } }
                    tbody { @for item in &consignment.goods { tr {
                        td.mono { (item.hs_code.as_str()) }
                        td { (refdata::hs_subheading(item.hs_code.as_str()).unwrap_or("not in HS 2022")) }
                        td { (item.description) }
                        td { (item.packages.map(|p| p.to_string()).unwrap_or_default()) }
                        td { (item.gross_mass_kg) }
                        td { @if let Some(value) = &item.value { (value.amount) " " (value.currency.as_str()) } }
                    } } }
                } }
            }
        }
    }
}

pub fn timeline(events: &[tir_model::guarantee::Event]) -> Markup {
    html! {
        section aria-labelledby="timeline" {
            h2 #timeline { "Timeline" }
            @if events.is_empty() { p { "Nothing yet." } }
            ol.timeline { @for e in events { li {
                (when(Some(e.at))) " · " strong { (e.message_type) } " · " (e.summary)
                @if let Some(office) = &e.office { " · " span.mono { (office.as_str()) } }
                " · " span.hint { (e.party) }
                @if let Some(occurred) = e.occurred_at {
                    " · " span.hint title="recorded after a fallback period: when it happened at the office" {
                        "fallback: happened " (when(Some(occurred)))
                    }
                }
            } } }
        }
    }
}

/// The office an action most likely names: one declared in this country with
/// the role the action needs, else any declared here.
fn default_office(guarantee: &Guarantee, country: Country, roles: &[OfficeRole]) -> String {
    let declared = guarantee.current_declaration().map(|d| d.offices.as_slice()).unwrap_or(&[]);
    let here = declared.iter().filter(|o| o.code.country() == country);
    let by_role = roles.iter().find_map(|role| here.clone().find(|o| o.role == *role));
    by_role.or_else(|| here.clone().next()).map(|o| o.code.as_str().to_owned()).unwrap_or_default()
}

fn actions(signed: &Signed, guarantee: &Guarantee, country: Country) -> Markup {
    use OfficeRole::{Departure, Destination, Entry, Exit};
    let reference = guarantee.reference.as_str();
    let first_here = guarantee.operations.first().is_none_or(|op| op.includes(country));
    let start_roles: &[OfficeRole] = if first_here { &[Departure] } else { &[Entry] };
    let seals = guarantee.seals().join(", ");
    let form = |action: &str, title: &str, roles: &[OfficeRole], extra: Markup, danger: bool| {
        let id = |field: &str| format!("{action}-{field}");
        html! {
            form #(format!("action-{action}")) method="post" action=(format!("/console/transports/{reference}")) {
                h3 { (title) }
                input type="hidden" name="csrf" value=(signed.csrf);
                input type="hidden" name="message_id" value=(fresh_message_id());
                input type="hidden" name="action" value=(action);
                label for=(id("office")) { "Office" }
                input id=(id("office")) name="office" value=(default_office(guarantee, country, roles)) required;
                (extra)
                button type="submit" class=[danger.then_some("danger")] { (title) }
            }
        }
    };
    html! {
        section aria-labelledby="actions" {
            h2 #actions { "Actions" }
            p.hint { "Each sends the eTIR message the API takes; the exchange decides whether it is allowed now." }
            div.actions {
                (form("accept", "Accept guarantee (I1)", &[Departure], html! {}, false))
                (form("record", "Record declaration (I7)", &[Departure], html! {
                    p.hint { "Records the advance data, or accepts the amendment waiting for your country." }
                }, false))
                (form("start", "Start operation (I9)", start_roles, html! {
                    label for="start-seals" { "Seals found or affixed" }
                    input id="start-seals" name="seals" value=(seals);
                }, false))
                (form("terminate", "Terminate operation (I11)", &[Exit, Destination], html! {
                    label for="terminate-seals" { "Seals found" }
                    input id="terminate-seals" name="seals" value=(seals);
                    label for="terminate-reservations" { "Reservations, one a line" }
                    textarea id="terminate-reservations" name="reservations" rows="2" {}
                }, false))
                (form("discharge", "Discharge operation (I13)", &[Exit, Destination], html! {}, false))
                (form("refuse", "Refuse to start (I17)", &[Entry], html! {
                    label for="refuse-reason" { "Reason" }
                    input id="refuse-reason" name="reason" required;
                }, true))
                (form("inspect", "Record an inspection result", start_roles, html! {
                    label for="inspect-outcome" { "Outcome" }
                    select id="inspect-outcome" name="outcome" {
                        option value="compliant" { "compliant" }
                        option value="irregularity" { "irregularity found" }
                    }
                    label for="inspect-revenue" { "Revenue recovered, EUR (optional)" }
                    input id="inspect-revenue" name="revenue" inputmode="decimal";
                    label for="inspect-findings" { "Findings, one a line (optional)" }
                    textarea id="inspect-findings" name="findings" rows="2" {}
                    label for="inspect-notes" { "Notes (optional)" }
                    input id="inspect-notes" name="notes";
                }, false))
            }
        }
    }
}
