//! The admin's pages (docs/console.md, "Admin"): parties, offices, the holder
//! registry and the journal's verification. The admin only; every write runs
//! the API's own handler through `tir_server::direct` (the same checks, codes
//! and journal entries as `/v1/admin/...`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};
use tir_model::party::{HolderStatus, OfficeRole, Party, PartyKind};
use tir_model::{OfficeCode, Timestamp, TirId};

use crate::Console;
use crate::customs::{Notice, notice_markup, refusal_text};
use crate::once;
use crate::pages::{self, PAGE_ROWS, Page, Paged, encode, when};
use crate::session::{Posted, Signed, posted};

fn admin_only(signed: &Signed) -> Result<(), Response> {
    match signed.party {
        Party::Admin => Ok(()),
        _ => Err(pages::forbidden(signed)),
    }
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(query: Params) -> HashMap<String, String> {
    query.map(|Query(q)| q).unwrap_or_default()
}

fn status_of(notice: &Option<Notice>) -> u16 {
    match notice {
        Some(Notice::Refused { status, .. }) => *status,
        _ => 200,
    }
}

fn field(form: &HashMap<String, String>, name: &str) -> String {
    form.get(name).map(|v| v.trim().to_owned()).unwrap_or_default()
}

fn bad_action(signed: &Signed) -> Response {
    Page::new("Bad request").status(400).signed(signed).body(html! { p { "No such action." } })
}

// ---- parties ----

/// `GET /console/admin/parties[?done=revoked][?after=party id]`.
pub async fn parties(State(console): State<Console>, signed: Signed, query: Params) -> Response {
    let query = params(query);
    let notice = match query.get("done").map(String::as_str) {
        Some("revoked") => Some(Notice::Done("The party is revoked: its token no longer signs in.".to_owned())),
        _ => None,
    };
    let after = query.get("after").cloned();
    parties_page(&console, &signed, &HashMap::new(), notice, after).await.unwrap_or_else(|page| page)
}

async fn parties_page(
    console: &Console,
    signed: &Signed,
    values: &HashMap<String, String>,
    notice: Option<Notice>,
    after: Option<String>,
) -> Result<Response, Response> {
    admin_only(signed)?;
    let read = console.app.store.parties(after.as_deref(), PAGE_ROWS + 1).await.map_err(pages::store_failed)?;
    let listed = Paged::new(read, after);
    let nav = listed.nav("/console/admin/parties", "after", |p| p.party.id().to_owned(), ("Newest", "Older"));
    let parties = listed.rows;
    let value = |name: &str| values.get(name).cloned().unwrap_or_default();
    let kind = value("kind");
    let body = html! {
        (notice_markup(notice.as_ref()))
        section aria-labelledby="create" {
            h2 #create { "Create a party" }
            form #party-create method="post" action="/console/admin/parties" {
                input type="hidden" name="csrf" value=(signed.csrf);
                input type="hidden" name=(once::FIELD) value=(once::fresh_key());
                input type="hidden" name="action" value="create";
                label for="party-kind" { "Kind" }
                select id="party-kind" name="kind" {
                    @for (k, label) in [("customs", "customs"), ("holder", "holder"), ("guarantee_chain", "guarantee chain")] {
                        option value=(k) selected[kind == k] { (label) }
                    }
                }
                label for="party-name" { "Name" }
                input id="party-name" name="name" value=(value("name")) required;
                label for="party-country" { "Country (customs: ISO alpha-2)" }
                input id="party-country" name="country" value=(value("country")) placeholder="LT";
                label for="party-tir-id" { "TIR id (holders)" }
                input id="party-tir-id" name="tir_id" value=(value("tir_id")) placeholder="LTU/012/345";
                button type="submit" { "Create" }
                p.hint { "The new party's token is shown once, on the next page; only its hash is stored." }
            }
        }
        section aria-labelledby="list" {
            h2 #list { "Parties" }
            @if parties.is_empty() {
                p { "No party yet." }
            } @else {
                div.table-wrap { table #parties {
                    thead { tr {
                        th scope="col" { "Id" } th scope="col" { "Kind" } th scope="col" { "Name" }
                        th scope="col" { "Country or TIR id" } th scope="col" { "Created" } th scope="col" { "Certificate" }
                        th scope="col" { "Revoked" }
                    } }
                    tbody { @for p in &parties {
                        @let id = party_id(&p.party);
                        tr {
                            td.mono { (id) }
                            td { (p.party.kind().as_str()) }
                            td { (p.name) }
                            td.mono { (match &p.party { Party::Customs { country, .. } => country.as_str().to_owned(), Party::Holder { tir_id, .. } => tir_id.to_string(), _ => "–".to_owned() }) }
                            td { (when(Some(Timestamp::from_unix_ms(p.created_at_ms)))) }
                            td { (if p.certificate_sha256.is_some() { "bound" } else { "–" }) }
                            td {
                                @match p.revoked_at_ms {
                                    Some(at) => { (when(Some(Timestamp::from_unix_ms(at)))) }
                                    None => {
                                        form.inline method="post" action="/console/admin/parties" {
                                            input type="hidden" name="csrf" value=(signed.csrf);
                                            input type="hidden" name="action" value="revoke";
                                            input type="hidden" name="id" value=(id);
                                            button.danger type="submit" aria-label=(format!("Revoke {id}")) { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    } }
                } }
                (nav)
            }
        }
    };
    Ok(Page::new("Parties").status(status_of(&notice)).signed(signed).body(body))
}

fn party_id(party: &Party) -> &str {
    match party {
        Party::Customs { id, .. } | Party::GuaranteeChain { id } | Party::Holder { id, .. } => id,
        Party::Admin => "admin",
    }
}

/// `POST /console/admin/parties`: `action` = `create` (the token shown once) or `revoke` (`id`).
pub async fn parties_act(State(console): State<Console>, signed: Signed, form: Posted) -> Response {
    let result = async {
        let form = posted(form)?;
        signed.check_csrf(&form)?;
        admin_only(&signed)?;
        match field(&form, "action").as_str() {
            "create" => {
                let create = create_party(console.clone(), signed.clone(), form.clone());
                Ok(console.sent.once(&signed, &form, create).await)
            }
            "revoke" => {
                let id = field(&form, "id");
                let (status, answer) = tir_server::direct::revoke_party(&console.app, &signed.party, id).await;
                if status != 200 {
                    let notice = Notice::Refused { status, text: refusal_text("Revocation", &answer) };
                    return parties_page(&console, &signed, &HashMap::new(), Some(notice), None).await;
                }
                Ok(pages::see_other("/console/admin/parties?done=revoked"))
            }
            _ => Err(bad_action(&signed)),
        }
    };
    result.await.unwrap_or_else(|page| page)
}

/// `POST /v1/admin/parties` from the form, once per form key: a second post
/// of the form gets the first answer (the same party and token), not a second party.
async fn create_party(console: Console, signed: Signed, form: HashMap<String, String>) -> Response {
    let kind = field(&form, "kind");
    let mut body = json!({"kind": kind, "name": field(&form, "name")});
    match PartyKind::parse(&kind) {
        Some(PartyKind::Customs) => body["country"] = json!(field(&form, "country")),
        Some(PartyKind::Holder) => body["tir_id"] = json!(field(&form, "tir_id")),
        _ => {}
    }
    let (status, answer) =
        tir_server::direct::create_party(&console.app, &signed.party, Bytes::from(body.to_string())).await;
    if status != 201 {
        let notice = Notice::Refused { status, text: refusal_text("Party", &answer) };
        return parties_page(&console, &signed, &form, Some(notice), None).await.unwrap_or_else(|page| page);
    }
    created_page(&signed, &answer)
}

/// The answer to a creation: the only page that ever shows the token (never
/// cached, as every console page).
fn created_page(signed: &Signed, answer: &str) -> Response {
    let created: Value = serde_json::from_str(answer).unwrap_or_default();
    let text = |name: &str| created[name].as_str().unwrap_or("").to_owned();
    let body = html! {
        p.done role="status" { "The " (text("kind").replace('_', " ")) " " strong { (text("name")) } " is created with the id " code { (text("id")) } "." }
        section aria-labelledby="token" {
            h2 #token { "Its token (shown once)" }
            p { "Give it to the party over a safe channel. It is not shown again: only its SHA-256 is stored, and a lost token means a new party." }
            p { code.hash #new-token { (text("token")) } }
        }
        p { a href="/console/admin/parties" { "Back to the parties" } }
    };
    Page::new("Party created").status(201).signed(signed).body(body)
}

// ---- offices ----

/// `GET /console/admin/offices[?edit=CODE][&done=saved][?after=CODE]`.
pub async fn offices(State(console): State<Console>, signed: Signed, query: Params) -> Response {
    let result = async {
        admin_only(&signed)?;
        let query = params(query);
        let mut values = HashMap::new();
        if let Some(code) = query.get("edit").and_then(|c| OfficeCode::parse(c).ok())
            && let Some(office) = console.app.store.office(&code).await.map_err(pages::store_failed)?
        {
            values.insert("code".to_owned(), office.code.as_str().to_owned());
            values.insert("country".to_owned(), office.country.as_str().to_owned());
            values.insert("name".to_owned(), office.name.clone());
            values.insert("unlocode".to_owned(), office.unlocode.clone().unwrap_or_default());
            for role in &office.roles {
                values.insert(format!("role_{}", role.as_str()), "on".to_owned());
            }
        }
        let notice = query.get("done").map(|code| Notice::Done(format!("Office {code} saved.")));
        let after = query.get("after").and_then(|c| OfficeCode::parse(c).ok());
        offices_page(&console, &signed, &values, notice, after).await
    };
    result.await.unwrap_or_else(|page| page)
}

async fn offices_page(
    console: &Console,
    signed: &Signed,
    values: &HashMap<String, String>,
    notice: Option<Notice>,
    after: Option<OfficeCode>,
) -> Result<Response, Response> {
    admin_only(signed)?;
    let read = console.app.store.offices(after.as_ref(), PAGE_ROWS + 1).await.map_err(pages::store_failed)?;
    let listed = Paged::new(read, after.map(|a| a.as_str().to_owned()));
    let nav = listed.nav("/console/admin/offices", "after", |o| o.code.as_str().to_owned(), ("First", "Next"));
    let offices = listed.rows;
    let value = |name: &str| values.get(name).cloned().unwrap_or_default();
    let body = html! {
        (notice_markup(notice.as_ref()))
        section aria-labelledby="office-form" {
            h2 #office-form { "Add or edit an office" }
            form #office method="post" action="/console/admin/offices" {
                input type="hidden" name="csrf" value=(signed.csrf);
                input type="hidden" name=(once::FIELD) value=(once::fresh_key());
                label for="office-code" { "Office code" }
                input id="office-code" name="code" value=(value("code")) required placeholder="LT000001";
                label for="office-country" { "Country (ISO alpha-2)" }
                input id="office-country" name="country" value=(value("country")) required placeholder="LT";
                label for="office-name" { "Name" }
                input id="office-name" name="name" value=(value("name")) required;
                fieldset {
                    legend { "Roles" }
                    @for role in OfficeRole::ALL {
                        @let name = format!("role_{}", role.as_str());
                        div.check {
                            input type="checkbox" id=(format!("office-{name}")) name=(name) checked[values.contains_key(&name)];
                            label for=(format!("office-{name}")) { (role.as_str()) }
                        }
                    }
                }
                label for="office-unlocode" { "UN/LOCODE (optional)" }
                input id="office-unlocode" name="unlocode" value=(value("unlocode")) placeholder="LTMDK";
                button type="submit" { "Save the office" }
                p.hint { "An office with the same code is replaced." }
            }
        }
        section aria-labelledby="office-list" {
            h2 #office-list { "Offices" }
            @if offices.is_empty() {
                p { "No office yet." }
            } @else {
                div.table-wrap { table #offices {
                    thead { tr {
                        th scope="col" { "Code" } th scope="col" { "Country" } th scope="col" { "Name" }
                        th scope="col" { "Roles" } th scope="col" { "UN/LOCODE" } th scope="col" { "Edit" }
                    } }
                    tbody { @for o in &offices { tr {
                        td.mono { (o.code.as_str()) } td { (o.country.as_str()) } td { (o.name) }
                        td { (o.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) }
                        td.mono { (o.unlocode.as_deref().unwrap_or("–")) }
                        td { a href=(format!("/console/admin/offices?edit={}", o.code.as_str())) { "Edit" } }
                    } } }
                } }
                (nav)
            }
        }
    };
    Ok(Page::new("Offices").status(status_of(&notice)).signed(signed).body(body))
}

/// `POST /console/admin/offices`: `POST /v1/admin/offices`.
pub async fn offices_act(State(console): State<Console>, signed: Signed, form: Posted) -> Response {
    saved_once(console, signed, form, save_office).await
}

/// An admin form that saves one thing: its CSRF token, the admin's session,
/// then `save` once per form key.
async fn saved_once<S, F>(console: Console, signed: Signed, form: Posted, save: S) -> Response
where
    S: FnOnce(Console, Signed, HashMap<String, String>) -> F,
    F: Future<Output = Response> + Send + 'static,
{
    let result = async {
        let form = posted(form)?;
        signed.check_csrf(&form)?;
        admin_only(&signed)?;
        let save = save(console.clone(), signed.clone(), form.clone());
        Ok(console.sent.once(&signed, &form, save).await)
    };
    result.await.unwrap_or_else(|page| page)
}

/// `POST /v1/admin/offices` from the form, once per form key.
async fn save_office(console: Console, signed: Signed, form: HashMap<String, String>) -> Response {
    let roles: Vec<&str> = OfficeRole::ALL
        .iter()
        .filter(|r| form.contains_key(&format!("role_{}", r.as_str())))
        .map(|r| r.as_str())
        .collect();
    let code = field(&form, "code");
    let mut body =
        json!({"code": code, "country": field(&form, "country"), "name": field(&form, "name"), "roles": roles});
    if !field(&form, "unlocode").is_empty() {
        body["unlocode"] = json!(field(&form, "unlocode"));
    }
    let (status, answer) =
        tir_server::direct::create_office(&console.app, &signed.party, Bytes::from(body.to_string())).await;
    if status == 201 {
        return pages::see_other(&format!("/console/admin/offices?done={}", encode(&code)));
    }
    let notice = Notice::Refused { status, text: refusal_text("Office", &answer) };
    offices_page(&console, &signed, &form, Some(notice), None).await.unwrap_or_else(|page| page)
}

// ---- holders ----

/// `GET /console/admin/holders[?edit=TIR id][&done=TIR id][?after=TIR id]`.
pub async fn holders(State(console): State<Console>, signed: Signed, query: Params) -> Response {
    let result = async {
        admin_only(&signed)?;
        let query = params(query);
        let mut values = HashMap::new();
        if let Some(tir_id) = query.get("edit").and_then(|t| TirId::parse(t).ok())
            && let Some(holder) = console.app.store.holder(&tir_id).await.map_err(pages::store_failed)?
        {
            values.insert("tir_id".to_owned(), holder.tir_id.to_string());
            values.insert("name".to_owned(), holder.name.clone());
            values.insert("country".to_owned(), holder.country.as_str().to_owned());
            values.insert("status".to_owned(), holder.status.as_str().to_owned());
        }
        let notice = query.get("done").map(|tir_id| Notice::Done(format!("Holder {tir_id} saved.")));
        let after = query.get("after").and_then(|t| TirId::parse(t).ok());
        holders_page(&console, &signed, &values, notice, after).await
    };
    result.await.unwrap_or_else(|page| page)
}

async fn holders_page(
    console: &Console,
    signed: &Signed,
    values: &HashMap<String, String>,
    notice: Option<Notice>,
    after: Option<TirId>,
) -> Result<Response, Response> {
    admin_only(signed)?;
    let read = console.app.store.holders(after.as_ref(), PAGE_ROWS + 1).await.map_err(pages::store_failed)?;
    let listed = Paged::new(read, after.map(|a| a.as_str().to_owned()));
    let nav = listed.nav("/console/admin/holders", "after", |h| h.tir_id.as_str().to_owned(), ("First", "Next"));
    let holders = listed.rows;
    let value = |name: &str| values.get(name).cloned().unwrap_or_default();
    let status = value("status");
    let body = html! {
        (notice_markup(notice.as_ref()))
        section aria-labelledby="holder-form" {
            h2 #holder-form { "Add a holder or change its status" }
            form #holder method="post" action="/console/admin/holders" {
                input type="hidden" name="csrf" value=(signed.csrf);
                input type="hidden" name=(once::FIELD) value=(once::fresh_key());
                label for="holder-tir-id" { "TIR id" }
                input id="holder-tir-id" name="tir_id" value=(value("tir_id")) required placeholder="LTU/012/345";
                label for="holder-name" { "Name" }
                input id="holder-name" name="name" value=(value("name")) required;
                label for="holder-country" { "Country (ISO alpha-2, the TIR id's)" }
                input id="holder-country" name="country" value=(value("country")) required placeholder="LT";
                label for="holder-status" { "Status" }
                select id="holder-status" name="status" {
                    @for s in [HolderStatus::Authorized, HolderStatus::Withdrawn] {
                        option value=(s.as_str()) selected[status == s.as_str()] { (s.as_str()) }
                    }
                }
                button type="submit" { "Save the holder" }
            }
        }
        section aria-labelledby="holder-list" {
            h2 #holder-list { "Holder registry (ITDB)" }
            @if holders.is_empty() {
                p { "No holder yet." }
            } @else {
                div.table-wrap { table #holders {
                    thead { tr {
                        th scope="col" { "TIR id" } th scope="col" { "Name" } th scope="col" { "Country" }
                        th scope="col" { "Status" } th scope="col" { "Edit" }
                    } }
                    tbody { @for h in &holders { tr {
                        td.mono { (h.tir_id.to_string()) } td { (h.name) } td { (h.country.as_str()) }
                        td { (h.status.as_str()) }
                        td { a href=(format!("/console/admin/holders?edit={}", encode(h.tir_id.as_str()))) { "Edit" } }
                    } } }
                } }
                (nav)
            }
        }
    };
    Ok(Page::new("Holders").status(status_of(&notice)).signed(signed).body(body))
}

/// `POST /console/admin/holders`: `PUT /v1/admin/holders/{tir_id}`.
pub async fn holders_act(State(console): State<Console>, signed: Signed, form: Posted) -> Response {
    saved_once(console, signed, form, save_holder).await
}

/// `PUT /v1/admin/holders/{tir_id}` from the form, once per form key.
async fn save_holder(console: Console, signed: Signed, form: HashMap<String, String>) -> Response {
    let tir_id = field(&form, "tir_id");
    let body =
        json!({"name": field(&form, "name"), "country": field(&form, "country"), "status": field(&form, "status")});
    let (status, answer) =
        tir_server::direct::put_holder(&console.app, &signed.party, tir_id.clone(), Bytes::from(body.to_string()))
            .await;
    if status == 200 {
        return pages::see_other(&format!("/console/admin/holders?done={}", encode(&tir_id)));
    }
    let notice = Notice::Refused { status, text: refusal_text("Holder", &answer) };
    holders_page(&console, &signed, &form, Some(notice), None).await.unwrap_or_else(|page| page)
}

// ---- journal ----

/// `GET /console/admin/journal`: the signed head and the button to verify.
pub async fn journal(State(console): State<Console>, signed: Signed) -> Response {
    journal_page(&console, &signed, None).await.unwrap_or_else(|page| page)
}

/// `POST /console/admin/journal`: runs `GET /v1/admin/journal/verify` and shows its verdict.
pub async fn journal_verify(State(console): State<Console>, signed: Signed, form: Posted) -> Response {
    let result = async {
        let form = posted(form)?;
        signed.check_csrf(&form)?;
        admin_only(&signed)?;
        let (status, answer) = tir_server::direct::verify_journal(&console.app, &signed.party).await;
        if status != 200 {
            let notice = Notice::Refused { status, text: refusal_text("Verification", &answer) };
            return journal_page(&console, &signed, Some(Err(notice))).await;
        }
        let verdict: Value = serde_json::from_str(&answer).unwrap_or_default();
        journal_page(&console, &signed, Some(Ok(verdict))).await
    };
    result.await.unwrap_or_else(|page| page)
}

fn verdict_markup(verdict: &Value) -> Markup {
    let ok = verdict["ok"].as_bool() == Some(true);
    html! {
        div #verdict class=(if ok { "done" } else { "error" }) role="status" {
            @if ok {
                p { strong { "The journal is intact." } " Every entry's hash was recomputed and chains to the one before it." }
            } @else {
                p { strong { "The journal is broken." } }
                @if let Some(broken) = verdict["first_broken"].as_object() {
                    p { "First broken entry: " (broken.get("seq").and_then(Value::as_i64).unwrap_or(0)) ": " (broken.get("reason").and_then(Value::as_str).unwrap_or("")) }
                }
            }
            dl {
                dt { "Entries" } dd #verdict-entries { (verdict["entries"].as_i64().unwrap_or(0)) }
                dt { "Holders' signatures verified" } dd { (verdict["holder_signatures"].as_i64().unwrap_or(0)) }
                dt { "Head (SHA-256 of the last entry)" } dd { code.hash { (verdict["head"].as_str().unwrap_or("")) } }
            }
        }
    }
}

async fn journal_page(
    console: &Console,
    signed: &Signed,
    verdict: Option<Result<Value, Notice>>,
) -> Result<Response, Response> {
    admin_only(signed)?;
    let head = console.app.store.signed_head().await.map_err(pages::store_failed)?;
    let status = match &verdict {
        Some(Err(Notice::Refused { status, .. })) => *status,
        _ => 200,
    };
    let body = html! {
        @match &verdict {
            Some(Ok(verdict)) => { (verdict_markup(verdict)) }
            Some(Err(notice)) => { (notice_markup(Some(notice))) }
            None => {}
        }
        form #verify method="post" action="/console/admin/journal" {
            input type="hidden" name="csrf" value=(signed.csrf);
            button type="submit" { "Verify the journal" }
            p.hint { "Recomputes the whole hash chain (as GET /v1/admin/journal/verify): a long journal takes a while." }
        }
        section aria-labelledby="signed-head" {
            h2 #signed-head { "Signed head" }
            @match &head {
                None => { p { "No head has been signed yet." } }
                Some(head) => {
                    dl {
                        dt { "Entries" } dd { (head.entries) }
                        dt { "Head" } dd { code.hash { (head.head) } }
                        dt { "Signed at" } dd { (head.signed_at) }
                        dt { "Key" } dd { code.hash { (head.key_id) } }
                        dt { "Signature (Ed25519)" } dd { code.hash { (head.signature) } }
                    }
                    p.hint { "As GET /v1/journal/head answers it; the keys are at GET /v1/keys." }
                }
            }
        }
    };
    Ok(Page::new("Journal").status(status).signed(signed).body(body))
}
