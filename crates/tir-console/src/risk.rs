//! The risk officer's pages (docs/console.md, "Risk officer"): the
//! administration's rule profiles, their forms, versions and preview, and the
//! selection's hit rates and revenue. Customs only, as `/v1/risk/profiles`:
//! every write and the preview run the API's own handler through
//! `tir_server::direct`, so its checks, codes and journal entries hold.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use serde_json::{Value, json};
use tir_model::Country;
use tir_model::party::Party;
use tir_risk::rules::{OfficeScope, Profile};
use tir_risk::stats::Group;

use crate::Console;
use crate::customs::refusal_text;
use crate::once;
use crate::pages::{self, Page, esc, percent, when};
use crate::session::{Posted, Signed, posted};

/// The preview's default and largest window, as the API's.
const PREVIEW_LAST_DEFAULT: &str = "1000";

fn officer(signed: &Signed) -> Result<Country, Response> {
    match &signed.party {
        Party::Customs { country, .. } => Ok(*country),
        _ => Err(pages::forbidden(signed)),
    }
}

fn scope_text(scope: &OfficeScope) -> String {
    match scope {
        OfficeScope::All => "all".to_owned(),
        OfficeScope::Offices(offices) => offices.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(" "),
    }
}

fn validity(p: &Profile) -> String {
    let until = p.draft.valid_until.as_ref().map_or("no end", |d| d.as_str());
    format!("{} to {until}", p.draft.valid_from.as_str())
}

fn lane_badge(lane: &str) -> Markup {
    html! { span class=(format!("lane lane-{lane}")) { (lane) } }
}

/// `GET /console/risk/profiles`: the latest version of each profile.
pub async fn list(State(console): State<Console>, signed: Signed) -> Response {
    let result = async {
        let country = officer(&signed)?;
        let profiles = console.app.store.profiles(country).await.map_err(pages::store_failed)?;
        let body = html! {
            p { a href="/console/risk/profiles/new" { "New profile" } " · " a href="/console/risk/stats" { "Hit rates and revenue" } }
            @if profiles.is_empty() {
                p { "Your administration has no rule profile yet." }
            } @else {
                div.table-wrap { table #profiles {
                    caption.hint { "The latest version of each profile of the customs of " (country.name()) }
                    thead { tr {
                        th scope="col" { "Profile" } th scope="col" { "Version" } th scope="col" { "Lane" }
                        th scope="col" { "Selection %" } th scope="col" { "Weight" } th scope="col" { "Reason" }
                        th scope="col" { "Valid" } th scope="col" { "Offices" } th scope="col" { "Author" }
                    } }
                    tbody { @for p in &profiles { tr {
                        td { a href=(format!("/console/risk/profiles/{}", p.id)) { (p.draft.name) } br; span.mono { (p.id) } }
                        td { (p.version) }
                        td { (lane_badge(p.draft.lane.as_str())) }
                        td { (p.draft.selection_percent) }
                        td { (p.draft.weight) }
                        td { (p.draft.reason) }
                        td { (validity(p)) }
                        td.mono { (scope_text(&p.draft.office_scope)) }
                        td.mono { (p.author) }
                    } } }
                } }
            }
        };
        Ok(Page::new("Risk profiles").signed(&signed).body(body))
    };
    result.await.unwrap_or_else(|page: Response| page)
}

/// The form's values from a stored version.
fn values_of(p: &Profile) -> HashMap<String, String> {
    let d = &p.draft;
    [
        ("name", d.name.clone()),
        ("expression", d.expression.clone()),
        ("lane", d.lane.as_str().to_owned()),
        ("selection_percent", d.selection_percent.to_string()),
        ("weight", d.weight.to_string()),
        ("reason", d.reason.clone()),
        ("valid_from", d.valid_from.as_str().to_owned()),
        ("valid_until", d.valid_until.as_ref().map(|d| d.as_str().to_owned()).unwrap_or_default()),
        ("office_scope", scope_text(&d.office_scope)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// What the form's answer shows above or inside it.
enum Outcome {
    None,
    Refused { status: u16, text: String, position: Option<(usize, usize)> },
    Preview { matched: u64, evaluated: u64, errors: u64, samples: Vec<String> },
}

/// The expression's line `line` (from 1) and a caret under `column` (from 1, in characters).
pub fn caret_lines(expression: &str, line: usize, column: usize) -> (String, String) {
    let text = expression.split('\n').nth(line.saturating_sub(1)).unwrap_or("").trim_end_matches('\r');
    let shown: String = text.chars().map(|c| if c == '\t' { ' ' } else { c }).collect();
    (shown, format!("{}^", " ".repeat(column.saturating_sub(1))))
}

fn profile_form(signed: &Signed, action: &str, values: &HashMap<String, String>, outcome: &Outcome) -> Markup {
    let value = |name: &str| values.get(name).cloned().unwrap_or_default();
    let lane = value("lane");
    let position = match outcome {
        Outcome::Refused { position, .. } => *position,
        _ => None,
    };
    html! {
        form #profile-form method="post" action=(action) {
            input type="hidden" name="csrf" value=(signed.csrf);
            // A fresh key on every rendering, the refused and previewed ones too: a double click saves once.
            input type="hidden" name=(once::FIELD) value=(once::fresh_key());
            label for="profile-name" { "Name" }
            input id="profile-name" name="name" value=(value("name")) required;
            label for="profile-expression" { "Expression (CEL over the transport context)" }
            @if let Some((line, column)) = position {
                textarea id="profile-expression" name="expression" rows="5" required
                    aria-invalid="true" aria-describedby="expression-error" { (value("expression")) }
                @let (text, caret) = caret_lines(&value("expression"), line, column);
                div #expression-error .cel-error role="alert" {
                    p { "Line " (line) ", column " (column) ":" }
                    pre.mono { (text) "\n" span.caret { (caret) } }
                }
            } @else {
                textarea id="profile-expression" name="expression" rows="5" required { (value("expression")) }
            }
            p.hint { "For example " code { "\"2402\" in hs4 && value_per_kg < 10.0" } "; the fields are those of docs/risk.md." }
            label for="profile-lane" { "Lane" }
            select id="profile-lane" name="lane" {
                @for l in ["green", "yellow", "red"] {
                    option value=(l) selected[lane == l] { (l) }
                }
            }
            label for="profile-selection" { "Selection % (0 to 100)" }
            input id="profile-selection" name="selection_percent" inputmode="decimal" value=(value("selection_percent")) required;
            label for="profile-weight" { "Weight (integer; the highest of one lane wins)" }
            input id="profile-weight" name="weight" inputmode="numeric" value=(value("weight"));
            label for="profile-reason" { "Reason shown to the officer" }
            input id="profile-reason" name="reason" value=(value("reason")) required;
            label for="profile-valid-from" { "Valid from" }
            input id="profile-valid-from" name="valid_from" type="date" value=(value("valid_from")) required;
            label for="profile-valid-until" { "Valid until (optional)" }
            input id="profile-valid-until" name="valid_until" type="date" value=(value("valid_until"));
            label for="profile-scope" { "Offices (\"all\", or office codes separated by spaces)" }
            input id="profile-scope" name="office_scope" value=(if values.contains_key("office_scope") { value("office_scope") } else { "all".to_owned() });
            label for="profile-last" { "Preview over the last N assessed transports" }
            input id="profile-last" name="last" inputmode="numeric" value=(values.get("last").cloned().unwrap_or_else(|| PREVIEW_LAST_DEFAULT.to_owned()));
            div.buttons {
                button type="submit" name="action" value="save" { "Save" }
                " "
                button type="submit" name="action" value="preview" { "Preview" }
            }
        }
    }
}

fn outcome_markup(outcome: &Outcome) -> Markup {
    html! {
        @match outcome {
            Outcome::None => {}
            Outcome::Refused { status, text, .. } => { p.error role="alert" { "HTTP " (status) ". " (text) } }
            Outcome::Preview { matched, evaluated, errors, samples } => {
                div #preview .done role="status" {
                    p { "It would have matched " strong { (matched) } " of the last " (evaluated) " assessed transports (before the selection %)." }
                    @if *errors > 0 {
                        p { (errors) " evaluation errors, e.g.:" }
                        ul { @for s in samples { li.mono { (s) } } }
                    }
                }
            }
        }
    }
}

/// `GET /console/risk/profiles/new`.
pub async fn new_form(State(_): State<Console>, signed: Signed) -> Response {
    if let Err(page) = officer(&signed) {
        return page;
    }
    let values = HashMap::from([("selection_percent".to_owned(), "100".to_owned())]);
    render_new(&signed, &values, &Outcome::None)
}

fn render_new(signed: &Signed, values: &HashMap<String, String>, outcome: &Outcome) -> Response {
    let status = match outcome {
        Outcome::Refused { status, .. } => *status,
        _ => 200,
    };
    let body = html! {
        p { a href="/console/risk/profiles" { "All profiles" } }
        (outcome_markup(outcome))
        (profile_form(signed, "/console/risk/profiles/new", values, outcome))
    };
    Page::new("New risk profile").status(status).signed(signed).body(body)
}

/// The form as the API's draft: numbers that do not read as numbers are sent
/// as they are, so the API answers with its code for them.
fn draft_json(form: &HashMap<String, String>) -> Value {
    let field = |name: &str| form.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    let number = |raw: String| match raw.parse::<f64>() {
        Ok(n) if n.is_finite() => json!(n),
        _ => json!(raw),
    };
    let mut draft = json!({
        "name": field("name"),
        "expression": form.get("expression").cloned().unwrap_or_default().replace("\r\n", "\n"),
        "lane": field("lane"),
        "selection_percent": number(field("selection_percent")),
        "reason": field("reason"),
        "valid_from": field("valid_from"),
    });
    let weight = field("weight");
    if !weight.is_empty() {
        draft["weight"] = match weight.parse::<i64>() {
            Ok(w) => json!(w),
            Err(_) => number(weight),
        };
    }
    if !field("valid_until").is_empty() {
        draft["valid_until"] = json!(field("valid_until"));
    }
    let scope = field("office_scope");
    if !scope.is_empty() && scope != "all" {
        let offices: Vec<&str> =
            scope.split(|c: char| c.is_whitespace() || c == ',').filter(|s| !s.is_empty()).collect();
        draft["office_scope"] = json!({ "offices": offices });
    }
    draft
}

/// The refusal's text and, for an expression that did not compile, its position.
fn refused(status: u16, answer: &str) -> Outcome {
    let value: Value = serde_json::from_str(answer).unwrap_or_default();
    let position = &value["error"]["position"];
    let position = match (position["line"].as_u64(), position["column"].as_u64()) {
        (Some(line), Some(column)) => Some((line as usize, column as usize)),
        _ => None,
    };
    Outcome::Refused { status, text: refusal_text("Profile", answer), position }
}

/// Runs the API's preview over the form's expression.
async fn preview(console: &Console, signed: &Signed, form: &HashMap<String, String>) -> Outcome {
    let last = form.get("last").map(|l| l.trim()).unwrap_or(PREVIEW_LAST_DEFAULT);
    let last = match last.parse::<i64>() {
        Ok(n) => json!(n),
        Err(_) => json!(last),
    };
    let expression = form.get("expression").cloned().unwrap_or_default().replace("\r\n", "\n");
    let body = json!({ "expression": expression, "last": last }).to_string();
    let (status, answer) =
        tir_server::direct::preview_profile(&console.app, signed.party.clone(), Bytes::from(body)).await;
    if status != 200 {
        return refused(status, &answer);
    }
    let value: Value = serde_json::from_str(&answer).unwrap_or_default();
    Outcome::Preview {
        matched: value["matched"].as_u64().unwrap_or(0),
        evaluated: value["evaluated"].as_u64().unwrap_or(0),
        errors: value["errors"].as_u64().unwrap_or(0),
        samples: value["error_samples"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
    }
}

/// `POST /console/risk/profiles/new`: save (version 1) or preview.
pub async fn create(State(console): State<Console>, signed: Signed, form: Posted) -> Response {
    let result = async {
        let form = posted(form)?;
        signed.check_csrf(&form)?;
        officer(&signed)?;
        if form.get("action").map(String::as_str) == Some("preview") {
            let outcome = preview(&console, &signed, &form).await;
            return Ok(render_new(&signed, &form, &outcome));
        }
        let save = save_new(console.clone(), signed.clone(), form.clone());
        Ok(console.sent.once(&signed, &form, save).await)
    };
    result.await.unwrap_or_else(|page: Response| page)
}

/// Saves the form as a new profile (`POST /v1/risk/profiles`), once per form
/// key: in this server's memory, and in the store as the write's
/// `Idempotency-Key`, so that a second server given the same post writes nothing.
async fn save_new(console: Console, signed: Signed, form: HashMap<String, String>) -> Response {
    let body = Bytes::from(draft_json(&form).to_string());
    let key = form.get(once::FIELD).map(|k| k.trim());
    let (status, answer) = tir_server::direct::put_profile(&console.app, signed.party.clone(), None, key, body).await;
    if status == 201 {
        let id = serde_json::from_str::<Value>(&answer).unwrap_or_default()["id"].as_str().unwrap_or("").to_owned();
        return pages::see_other(&format!("/console/risk/profiles/{id}?saved=1"));
    }
    render_new(&signed, &form, &refused(status, &answer))
}

/// `GET /console/risk/profiles/{id}`: the latest version, its edit form and every version.
pub async fn profile(
    State(console): State<Console>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
    query: Result<axum::extract::Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let saved = query.ok().is_some_and(|q| q.0.contains_key("saved"));
    let id = id.map(|Path(id)| id).unwrap_or_default();
    render_profile(&console, &signed, &id, None, Outcome::None, saved).await.unwrap_or_else(|page| page)
}

async fn render_profile(
    console: &Console,
    signed: &Signed,
    id: &str,
    values: Option<&HashMap<String, String>>,
    outcome: Outcome,
    saved: bool,
) -> Result<Response, Response> {
    let country = officer(signed)?;
    let missing = || pages::not_found_page(Some(signed), "Your administration has no profile with this id.");
    let valid_id =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_id {
        return Err(missing());
    }
    let history =
        console.app.store.profile_history(country, id).await.map_err(pages::store_failed)?.ok_or_else(missing)?;
    let current = history.current();
    let stored = values_of(current);
    let values = values.unwrap_or(&stored);
    let status = match &outcome {
        Outcome::Refused { status, .. } => *status,
        _ => 200,
    };
    let body = html! {
        p { a href="/console/risk/profiles" { "All profiles" } }
        @if saved { p.done role="status" { "Saved: version " (current.version) "." } }
        (outcome_markup(&outcome))
        section aria-labelledby="edit" {
            h2 #edit { "Edit (saves version " (current.version + 1) ")" }
            (profile_form(signed, &format!("/console/risk/profiles/{id}"), values, &outcome))
        }
        section aria-labelledby="versions" {
            h2 #versions { "Versions" }
            div.table-wrap { table #history {
                thead { tr {
                    th scope="col" { "Version" } th scope="col" { "Saved" } th scope="col" { "Author" }
                    th scope="col" { "Name" } th scope="col" { "Expression" } th scope="col" { "Lane" }
                    th scope="col" { "Selection %" } th scope="col" { "Weight" } th scope="col" { "Reason" }
                    th scope="col" { "Valid" } th scope="col" { "Offices" }
                } }
                tbody { @for p in history.versions().iter().rev() { tr {
                    td { "v" (p.version) } td { (when(Some(p.created_at))) } td.mono { (p.author) }
                    td { (p.draft.name) } td { code.expr { (p.draft.expression) } }
                    td { (lane_badge(p.draft.lane.as_str())) } td { (p.draft.selection_percent) } td { (p.draft.weight) }
                    td { (p.draft.reason) } td { (validity(p)) } td.mono { (scope_text(&p.draft.office_scope)) }
                } } }
            } }
        }
    };
    Ok(Page::new(format!("Profile {} (v{})", current.draft.name, current.version))
        .status(status)
        .signed(signed)
        .body(body))
}

/// `POST /console/risk/profiles/{id}`: save the next version, or preview.
pub async fn edit(
    State(console): State<Console>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
    form: Posted,
) -> Response {
    let result = async {
        let form = posted(form)?;
        signed.check_csrf(&form)?;
        officer(&signed)?;
        let id = id.map(|Path(id)| id).unwrap_or_default();
        if form.get("action").map(String::as_str) == Some("preview") {
            let outcome = preview(&console, &signed, &form).await;
            return render_profile(&console, &signed, &id, Some(&form), outcome, false).await;
        }
        let save = save_version(console.clone(), signed.clone(), id, form.clone());
        Ok(console.sent.once(&signed, &form, save).await)
    };
    result.await.unwrap_or_else(|page| page)
}

/// Saves the form as the profile's next version (`PUT /v1/risk/profiles/{id}`),
/// once per form key, as `save_new`.
async fn save_version(console: Console, signed: Signed, id: String, form: HashMap<String, String>) -> Response {
    let body = Bytes::from(draft_json(&form).to_string());
    let key = form.get(once::FIELD).map(|k| k.trim());
    let (status, answer) =
        tir_server::direct::put_profile(&console.app, signed.party.clone(), Some(id.clone()), key, body).await;
    if status == 200 {
        return pages::see_other(&format!("/console/risk/profiles/{id}?saved=1"));
    }
    if status == 404 {
        return pages::not_found_page(Some(&signed), "Your administration has no profile with this id.");
    }
    render_profile(&console, &signed, &id, Some(&form), refused(status, &answer), false)
        .await
        .unwrap_or_else(|page| page)
}

fn money(amount: Option<f64>) -> String {
    amount.map_or("–".to_owned(), |a| format!("{a:.2}"))
}

/// `GET /console/risk/stats`: `GET /v1/risk/stats`'s figures, drawn and tabled.
pub async fn stats(State(console): State<Console>, signed: Signed) -> Response {
    let result = async {
        let country = officer(&signed)?;
        let store = &console.app.store;
        let figures = store.risk_stats(country).await.map_err(pages::store_failed)?;
        let weeks: Vec<String> = figures.by_week.iter().map(|g| g.key.clone()).collect();
        // One series per selector: (week, hit rate %, revenue per inspection).
        type Point = (String, Option<f64>, Option<f64>);
        let mut series: Vec<(String, Vec<Point>)> = Vec::new();
        for wg in &figures.by_week_and_selector {
            let g = &wg.group;
            let point = (wg.week.clone(), g.hit_rate.map(|r| 100.0 * r), g.revenue_per_inspection);
            match series.iter_mut().find(|(k, _)| *k == g.key) {
                Some((_, points)) => points.push(point),
                None => series.push((g.key.clone(), vec![point])),
            }
        }
        let hit_series: Vec<Series> = series
            .iter()
            .map(|(k, points)| (k.clone(), points.iter().map(|(w, hit, _)| (w.clone(), *hit)).collect()))
            .collect();
        let revenue_series: Vec<Series> = series
            .iter()
            .map(|(k, points)| (k.clone(), points.iter().map(|(w, _, revenue)| (w.clone(), *revenue)).collect()))
            .collect();
        let body = html! {
            p.hint { "Assessments of the customs of " (country.name()) " and the inspection results recorded, by what selected the transport: each profile version (" code { "rule:<id>@<version>" } "), the model (" code { "model@<version>" } "), the random share and none. As " code { "GET /v1/risk/stats" } " counts them." }
            @if figures.by_selector.is_empty() {
                p { "No assessment yet." }
            } @else {
                section aria-labelledby="by-selector" {
                    h2 #by-selector { "By selector" }
                    figure.chart {
                        (crate::dashboard::bars_svg("Hit rate by selector, percent", &figures.by_selector.iter().map(|g| (g.key.clone(), 100.0 * g.hit_rate.unwrap_or(0.0), percent(g.hit_rate))).collect::<Vec<_>>()))
                        figcaption { "Hit rate (%): inspections with an irregularity, of those inspected" }
                    }
                    figure.chart {
                        (crate::dashboard::bars_svg("Revenue per inspection by selector, EUR", &figures.by_selector.iter().map(|g| (g.key.clone(), g.revenue_per_inspection.unwrap_or(0.0), money(g.revenue_per_inspection))).collect::<Vec<_>>()))
                        figcaption { "Revenue per inspection (EUR)" }
                    }
                    (group_table("Selected by", &figures.by_selector.iter().map(|g| (g.key.clone(), g)).collect::<Vec<_>>()))
                }
                section aria-labelledby="by-week" {
                    h2 #by-week { "By week" }
                    figure.chart {
                        (lines_svg("Hit rate by week, percent", &weeks, &hit_series))
                        figcaption { "Hit rate (%) by ISO week, one line per selector" }
                    }
                    figure.chart {
                        (lines_svg("Revenue per inspection by week, EUR", &weeks, &revenue_series))
                        figcaption { "Revenue per inspection (EUR) by ISO week, one line per selector" }
                    }
                    div.table-wrap { table #by-week-table {
                        caption.hint { "By week and selector" }
                        thead { tr {
                            th scope="col" { "Week" } th scope="col" { "Selected by" } th scope="col" { "Assessed" }
                            th scope="col" { "Inspected" } th scope="col" { "Irregular" } th scope="col" { "Hit rate" }
                            th scope="col" { "Revenue (EUR)" } th scope="col" { "Per inspection" }
                        } }
                        tbody { @for wg in &figures.by_week_and_selector { @let g = &wg.group; tr {
                            td { (wg.week) } td.mono { (g.key) } td { (g.volume) } td { (g.inspected) } td { (g.hits) }
                            td { (percent(g.hit_rate)) } td { (format!("{:.2}", g.revenue)) } td { (money(g.revenue_per_inspection)) }
                        } } }
                    } }
                }
            }
        };
        Ok(Page::new("Risk: hit rates and revenue").signed(&signed).body(body))
    };
    result.await.unwrap_or_else(|page: Response| page)
}

fn group_table(first: &str, groups: &[(String, &Group)]) -> Markup {
    html! {
        div.table-wrap { table #selector-table {
            thead { tr {
                th scope="col" { (first) } th scope="col" { "Assessed" } th scope="col" { "Inspected" }
                th scope="col" { "Irregular" } th scope="col" { "Hit rate" } th scope="col" { "Revenue (EUR)" }
                th scope="col" { "Per inspection" }
            } }
            tbody { @for (key, g) in groups { tr {
                td.mono { (key) } td { (g.volume) } td { (g.inspected) } td { (g.hits) }
                td { (percent(g.hit_rate)) } td { (format!("{:.2}", g.revenue)) } td { (money(g.revenue_per_inspection)) }
            } } }
        } }
    }
}

const WIDTH: f64 = 360.0;
const LEFT: f64 = 34.0;
const TOP: f64 = 12.0;
const PLOT_H: f64 = 110.0;
/// A selector and its value per week (`None`: nothing inspected that week).
pub type Series = (String, Vec<(String, Option<f64>)>);

/// Line colours, taken in turn (the table has every figure, so colour is not the only key).
const COLOURS: [&str; 6] = ["#1f5f99", "#a12a2a", "#2f7d32", "#6b4f00", "#6a3d9a", "#00838f"];

/// One line per series over the weeks (a week without inspections leaves a gap),
/// with a legend under the plot.
pub fn lines_svg(title: &str, weeks: &[String], series: &[Series]) -> Markup {
    let most = series.iter().flat_map(|(_, points)| points.iter().filter_map(|(_, v)| *v)).fold(0.0, f64::max).max(1.0);
    let plot_w = WIDTH - LEFT - 10.0;
    let base = TOP + PLOT_H;
    let height = base + 30.0 + 14.0 * series.len() as f64;
    let step = if weeks.len() > 1 { plot_w / (weeks.len() - 1) as f64 } else { 0.0 };
    let x = |week: &str| {
        let i = weeks.iter().position(|w| w == week).unwrap_or(0);
        if weeks.len() > 1 { LEFT + step * i as f64 } else { LEFT + plot_w / 2.0 }
    };
    let y = |v: f64| TOP + PLOT_H * (1.0 - v / most);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    svg += &format!(r#"<text x="2" y="{}" class="axis">{most:.0}</text>"#, TOP + 4.0);
    svg += &format!(r#"<text x="2" y="{base}" class="axis">0</text>"#);
    svg += &format!(r#"<line class="axis-line" x1="{LEFT}" y1="{base}" x2="{}" y2="{base}"/>"#, LEFT + plot_w);
    if let (Some(first), Some(last)) = (weeks.first(), weeks.last()) {
        svg += &format!(r#"<text x="{LEFT}" y="{}" class="axis">{}</text>"#, base + 12.0, esc(first));
        if weeks.len() > 1 {
            svg += &format!(
                r#"<text x="{}" y="{}" class="axis" text-anchor="end">{}</text>"#,
                LEFT + plot_w,
                base + 12.0,
                esc(last)
            );
        }
    }
    for (i, (key, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        // A gap (no inspection that week) breaks the line.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (week, value) in points {
            match value {
                Some(v) => runs.last_mut().expect("a run").push((x(week), y(*v))),
                None => runs.push(Vec::new()),
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            let coords: Vec<String> = run.iter().map(|(px, py)| format!("{px:.1},{py:.1}")).collect();
            svg += &format!(
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
                coords.join(" ")
            );
            for (px, py) in run {
                svg += &format!(r#"<circle cx="{px:.1}" cy="{py:.1}" r="2.5" fill="{colour}"/>"#);
            }
        }
        let ly = base + 28.0 + 14.0 * i as f64;
        svg += &format!(
            r#"<rect x="{LEFT}" y="{:.1}" width="10" height="3" fill="{colour}"/><text x="{}" y="{ly:.1}" class="axis">{}</text>"#,
            ly - 4.0,
            LEFT + 14.0,
            esc(key)
        );
    }
    svg += "</svg>";
    html! { (PreEscaped(svg)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caret_stands_under_the_reported_column_of_the_reported_line() {
        let (line, caret) = caret_lines("a == 1 &&\n  b ==", 2, 3);
        assert_eq!(line, "  b ==");
        assert_eq!(caret, "  ^");
        assert_eq!(caret_lines("x", 5, 1), (String::new(), "^".to_owned()), "a line past the end is empty");
    }

    #[test]
    fn a_form_becomes_the_apis_draft() {
        let form: HashMap<String, String> = [
            ("name", "Cigarettes"),
            ("expression", "\"2402\" in hs4\r\n"),
            ("lane", "red"),
            ("selection_percent", "50"),
            ("weight", "x"),
            ("reason", "r"),
            ("valid_from", "2026-01-01"),
            ("valid_until", ""),
            ("office_scope", "LT000001, LT000002"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let draft = draft_json(&form);
        assert_eq!(draft["selection_percent"], json!(50.0));
        assert_eq!(draft["weight"], json!("x"), "sent as typed: the API answers its code");
        assert_eq!(draft["expression"], json!("\"2402\" in hs4\n"));
        assert!(draft.get("valid_until").is_none());
        assert_eq!(draft["office_scope"], json!({"offices": ["LT000001", "LT000002"]}));
    }

    #[test]
    fn weekly_lines_break_where_nothing_was_inspected() {
        let weeks = vec!["2026-W01".to_owned(), "2026-W02".to_owned(), "2026-W03".to_owned()];
        let series = vec![(
            "rule:a@1".to_owned(),
            vec![
                ("2026-W01".to_owned(), Some(50.0)),
                ("2026-W02".to_owned(), None),
                ("2026-W03".to_owned(), Some(100.0)),
            ],
        )];
        let svg = lines_svg("Hit <rate>", &weeks, &series).into_string();
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains("Hit &lt;rate&gt;") && svg.contains("rule:a@1"), "{svg}");
    }
}
