//! The guarantee chain's page: the guarantees it registered, and the forms to
//! register one (E1) and to cancel one (E3), sent as the API's messages.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};
use tir_model::GuaranteeRef;
use tir_model::guarantee::{Guarantee, OperationState};
use tir_model::party::Party;

use crate::Console;
use crate::customs::{Notice, fresh_message_id, notice_markup, refusal_text};
use crate::pages::{self, PAGE_ROWS, Page, Paged, when};
use crate::session::{Posted, Signed, posted};

/// `?before=` as a reference: the next page of a list of guarantees, which
/// goes newest reference first; anything else is the first page.
pub fn before(query: &HashMap<String, String>) -> Option<GuaranteeRef> {
    query.get("before").and_then(|b| GuaranteeRef::parse(b.trim()).ok())
}

/// A page of guarantees read from `before` (as `PAGE_ROWS + 1`).
pub fn paged(read: Vec<Guarantee>, before: Option<GuaranteeRef>) -> Paged<Guarantee> {
    Paged::new(read, before.map(|b| b.as_str().to_owned()))
}

/// The links between pages of guarantees on `path`.
pub fn nav(listed: &Paged<Guarantee>, path: &str) -> Markup {
    listed.nav(path, "before", |g| g.reference.as_str().to_owned(), ("Newest", "Older"))
}

/// What an empty page says: `first` on the first page, that nothing is older on another.
pub fn empty<'a>(listed: &Paged<Guarantee>, first: &'a str) -> &'a str {
    if listed.from.is_some() { "No older guarantee." } else { first }
}

/// A list of guarantees, each linking to `{link}/{reference}`.
pub fn guarantee_list(guarantees: &[Guarantee], link: &str, empty: &str) -> Markup {
    html! {
        @if guarantees.is_empty() {
            p { (empty) }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "Guarantee" } th scope="col" { "State" } th scope="col" { "Holder" }
                    th scope="col" { "Itinerary" } th scope="col" { "Operations" } th scope="col" { "Registered" }
                } }
                tbody { @for g in guarantees {
                    @let reference = g.reference.as_str();
                    tr {
                        td { a href=(format!("{link}/{reference}")) { (reference) } }
                        td { (g.state.as_str()) }
                        td.mono { (g.holder.to_string()) }
                        td { (g.itinerary().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" → ")) }
                        td { (progress(g)) }
                        td { (when(Some(g.registered_at))) }
                    }
                } }
            } }
        }
    }
}

/// `2 of 3 discharged`, or where it stands before the declaration is recorded.
fn progress(g: &Guarantee) -> String {
    if g.operations.is_empty() {
        return if g.advance.is_some() && !g.advance_withdrawn { "advance data sent" } else { "–" }.to_owned();
    }
    let done = g.operations.iter().filter(|op| op.state == OperationState::Discharged).count();
    let moving =
        g.operations.iter().find(|op| matches!(op.state, OperationState::Started | OperationState::Terminated));
    match moving {
        Some(op) => {
            format!("{done} of {} discharged; {} {}", g.operations.len(), op.territory.as_str(), op.state.as_str())
        }
        None => format!("{done} of {} discharged", g.operations.len()),
    }
}

fn chain_only(signed: &Signed) -> Result<String, Response> {
    match &signed.party {
        Party::GuaranteeChain { id } => Ok(id.clone()),
        _ => Err(pages::forbidden(signed)),
    }
}

/// `GET /console/chain[?done=][&before=]`: the chain's guarantees, a page at
/// a time, and its forms.
pub async fn page(
    State(console): State<Console>,
    signed: Signed,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let done = query.get("done").cloned();
    let notice = match done.as_deref() {
        Some("E1") => Some(Notice::Done("E1 accepted: the guarantee is registered.".to_owned())),
        Some("E3") => Some(Notice::Done("E3 accepted: the guarantee is cancelled.".to_owned())),
        _ => None,
    };
    render(&console, &signed, &HashMap::new(), notice, before(&query)).await.unwrap_or_else(|page| page)
}

async fn render(
    console: &Console,
    signed: &Signed,
    values: &HashMap<String, String>,
    notice: Option<Notice>,
    before: Option<GuaranteeRef>,
) -> Result<Response, Response> {
    let chain = chain_only(signed)?;
    let read = console.app.store.guarantees_of_chain(&chain, before.as_ref(), PAGE_ROWS + 1).await;
    let listed = paged(read.map_err(pages::store_failed)?, before);
    let status = match &notice {
        Some(Notice::Refused { status, .. }) => *status,
        _ => 200,
    };
    let value = |name: &str| values.get(name).cloned().unwrap_or_default();
    let body = html! {
        (notice_markup(notice.as_ref()))
        section aria-labelledby="guarantees" {
            h2 #guarantees { "Guarantees registered" }
            (guarantee_list(&listed.rows, "/console/my/transports", empty(&listed, "This chain has registered no guarantee.")))
            (nav(&listed, "/console/chain"))
        }
        div.actions {
            form #action-register method="post" action="/console/chain" {
                h3 { "Register a guarantee (E1)" }
                input type="hidden" name="csrf" value=(signed.csrf);
                input type="hidden" name="message_id" value=(fresh_message_id());
                input type="hidden" name="action" value="register";
                label for="register-reference" { "Guarantee reference" }
                input id="register-reference" name="guarantee_reference" value=(value("guarantee_reference")) required;
                label for="register-holder" { "Holder (TIR id)" }
                input id="register-holder" name="holder" value=(value("holder")) required placeholder="LTU/012/345";
                label for="register-valid-until" { "Valid until (optional)" }
                input id="register-valid-until" name="valid_until" type="date" value=(value("valid_until"));
                button type="submit" { "Register (E1)" }
            }
            form #action-cancel method="post" action="/console/chain" {
                h3 { "Cancel a guarantee (E3)" }
                input type="hidden" name="csrf" value=(signed.csrf);
                input type="hidden" name="message_id" value=(fresh_message_id());
                input type="hidden" name="action" value="cancel";
                label for="cancel-reference" { "Guarantee reference" }
                input id="cancel-reference" name="guarantee_reference" required;
                label for="cancel-reason" { "Reason" }
                input id="cancel-reason" name="reason" required;
                button.danger type="submit" { "Cancel (E3)" }
            }
        }
    };
    Ok(Page::new("My guarantees").status(status).signed(signed).body(body))
}

/// `POST /console/chain`: E1 or E3, as `POST /v1/messages` takes them.
pub async fn act(State(console): State<Console>, signed: Signed, form: Posted) -> Response {
    let result = async {
        let form = posted(form)?;
        signed.check_csrf(&form)?;
        chain_only(&signed)?;
        let field = |name: &str| form.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
        let (kind, fields) = match field("action").as_str() {
            "register" => {
                let mut fields = json!({"holder": field("holder")});
                if !field("valid_until").is_empty() {
                    fields["valid_until"] = json!(field("valid_until"));
                }
                ("E1", fields)
            }
            "cancel" => ("E3", json!({"reason": field("reason")})),
            _ => {
                return Err(Page::new("Bad request")
                    .status(400)
                    .signed(&signed)
                    .body(html! { p { "No such action." } }));
            }
        };
        let mut message = json!({"message_id": field("message_id"), "type": kind, "guarantee_reference": field("guarantee_reference")});
        if let (Some(message), Value::Object(fields)) = (message.as_object_mut(), fields) {
            message.extend(fields);
        }
        let (status, answer) =
            tir_server::submit_message(&console.app, signed.party.clone(), Bytes::from(message.to_string())).await;
        if status == 200 {
            return Ok(pages::see_other(&format!("/console/chain?done={kind}")));
        }
        let notice = Notice::Refused { status, text: refusal_text(kind, &answer) };
        let kept = if kind == "E1" { form.clone() } else { HashMap::new() };
        render(&console, &signed, &kept, Some(notice), None).await
    };
    result.await.unwrap_or_else(|page| page)
}
