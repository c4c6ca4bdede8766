//! Risk routes (issue 12, docs/risk.md "Rule profiles"): the rule profiles of
//! one customs administration, confidential to it. Only customs parties call
//! them (403/380 for holders, guarantee chains and the admin), and a profile of
//! another administration answers exactly as one that does not exist: 404/183,
//! and absent from the list.
//!
//! A draft is read field by field (the 1xx codes in field order, 107 for any
//! other field), then its expression is compiled: a refused one is 400/106 at
//! `/expression`, the detail naming line and column, and the error carries
//! `position` (`line`, `column` from 1, `offset` from 0, in characters).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tir_model::limits::TEXT_CHARS_MAX;
use tir_model::wire::{Obj, parse_at};
use tir_model::{Country, Date, ErrorCode, EtirError, OfficeCode};
use tir_risk::rules::{CompileError, Lane, OfficeScope, ProfileDraft, ProfileError};
use tir_store::{ProfileWrite, profile_view};
use utoipa::ToSchema;

use crate::App;
use crate::auth::Customs;
use crate::error::{ApiError, json_body, json_response};
use crate::openapi::ErrorBody;
use crate::queries::path_rejection;

/// `Idempotency-Key`, if sent: the characters and length of a message id, so
/// that a client may reuse its own message id scheme. A retried write with
/// the same key answers as the first did (docs/risk.md, "Rule profiles").
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(bad_idempotency_key(ErrorCode::WrongFormat, "send one Idempotency-Key"));
    }
    let raw = value.to_str().map_err(|_| bad_idempotency_key(ErrorCode::WrongFormat, "not ASCII"))?;
    tir_model::message::MessageId::parse(raw)
        .map(|id| Some(id.as_str().to_owned()))
        .map_err(|e| bad_idempotency_key(tir_model::wire::parse_error_code(e), "1 to 64 of A-Z a-z 0-9 - _ . :"))
}

fn bad_idempotency_key(code: ErrorCode, detail: &str) -> ApiError {
    ApiError::Etir(EtirError::new(code, "").with_detail(format!("Idempotency-Key: {detail}")))
}

/// Longest profile id taken from a path (those made here are 16 hex digits).
pub(crate) const PROFILE_ID_CHARS_MAX: usize = 64;
/// Offices one profile may be scoped to.
pub(crate) const SCOPE_OFFICES_MAX: usize = 256;

#[utoipa::path(post, path = "/v1/risk/profiles", tag = "risk",
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[A-Za-z0-9_.:-]{1,64}$", min_length = 1, max_length = 64,
        description = "Optional: a retry with the same key and draft answers as the first write did (a creation's answer is kept 24 h, an edit's as long as the journal)")),
    request_body = ProfileDraftBody,
    responses(
        (status = 201, description = "Version 1 of a new profile of the caller's administration; its id is drawn by the server. Again with the same Idempotency-Key and draft: the same answer, no second profile", body = ProfileView),
        (status = 409, description = "Code 299: this Idempotency-Key was used for another profile write", body = ErrorBody),
        (status = 400, description = "Codes 100, 101, 102, 103, 104, 105, 106 (an expression that does not compile: at /expression, with `position`), 107, 180 (selection_percent outside 0-100, valid_until before valid_from, an office of another country or none)", body = ErrorBody),
        (status = 403, description = "Not customs: code 380", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_profile(
    State(app): State<App>,
    customs: Customs,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    let value = json_body(&headers, body)?;
    let draft = match read_draft(&value, customs.country) {
        Ok(draft) => draft,
        Err(refused) => return Ok(*refused),
    };
    let write = ProfileWrite { author: customs.id, administration: customs.country, id: None, draft, idempotency_key };
    let reply = app.store.put_profile(write).await?;
    Ok(json_response(reply.status, reply.body))
}

#[utoipa::path(put, path = "/v1/risk/profiles/{id}", tag = "risk",
    params(("id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64,
        description = "The profile's id, as its creation answered"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[A-Za-z0-9_.:-]{1,64}$", min_length = 1, max_length = 64,
        description = "Optional: a retry with the same key and draft answers as the first write did (a creation's answer is kept 24 h, an edit's as long as the journal)")),
    request_body = ProfileDraftBody,
    responses(
        (status = 200, description = "The profile's next version; the earlier ones are kept. Again with the same Idempotency-Key and draft: the same answer, no further version", body = ProfileView),
        (status = 409, description = "Code 299: this Idempotency-Key was used for another profile write", body = ErrorBody),
        (status = 400, description = "As for a new profile; and 105, 106 for the id", body = ErrorBody),
        (status = 403, description = "Not customs: code 380", body = ErrorBody),
        (status = 404, description = "Code 183: the caller's administration has no profile with this id (another's is not revealed)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn edit_profile(
    State(app): State<App>,
    customs: Customs,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = profile_id(id)?;
    let idempotency_key = idempotency_key(&headers)?;
    let value = json_body(&headers, body)?;
    let draft = match read_draft(&value, customs.country) {
        Ok(draft) => draft,
        Err(refused) => return Ok(*refused),
    };
    let write =
        ProfileWrite { author: customs.id, administration: customs.country, id: Some(id), draft, idempotency_key };
    let reply = app.store.put_profile(write).await?;
    Ok(json_response(reply.status, reply.body))
}

#[utoipa::path(get, path = "/v1/risk/profiles", tag = "risk",
    responses(
        (status = 200, description = "The latest version of each profile of the caller's administration, by id", body = ProfileList),
        (status = 403, description = "Not customs: code 380", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_profiles(State(app): State<App>, customs: Customs) -> Result<Response, ApiError> {
    let items: Vec<Value> = app.store.profiles(customs.country).await?.iter().map(profile_view).collect();
    Ok(json_response(200, json!({ "items": items }).to_string()))
}

#[utoipa::path(get, path = "/v1/risk/profiles/{id}", tag = "risk",
    params(("id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64,
        description = "The profile's id, as its creation answered")),
    responses(
        (status = 200, description = "The latest version and every version, oldest first", body = ProfileWithVersions),
        (status = 400, description = "Codes 105, 106 for the id", body = ErrorBody),
        (status = 403, description = "Not customs: code 380", body = ErrorBody),
        (status = 404, description = "Code 183: the caller's administration has no profile with this id (another's is not revealed)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_profile(
    State(app): State<App>,
    customs: Customs,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = profile_id(id)?;
    let Some(history) = app.store.profile_history(customs.country, &id).await? else {
        return Err(ApiError::code(ErrorCode::NoSuchRoute, "/id"));
    };
    let versions: Vec<Value> = history.versions().iter().map(profile_view).collect();
    let body = json!({ "profile": profile_view(history.current()), "versions": versions });
    Ok(json_response(200, body.to_string()))
}

fn profile_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = id.map_err(|r| path_rejection("/id", r))?;
    if id.is_empty() || id.chars().count() > PROFILE_ID_CHARS_MAX {
        return Err(ApiError::code(ErrorCode::WrongLength, "/id"));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(ApiError::code(ErrorCode::WrongFormat, "/id"));
    }
    Ok(id)
}

/// Reads a draft field by field, then checks it as a whole and compiles its
/// expression; a refusal is the whole answer.
fn read_draft(value: &Value, administration: Country) -> Result<ProfileDraft, Box<Response>> {
    let draft = read_fields(value, administration).map_err(|e| Box::new(e.into_response()))?;
    match draft.check() {
        Ok(_) => Ok(draft),
        Err(ProfileError::Expression(e)) => Err(Box::new(expression_refused(&e))),
        Err(ProfileError::Field { field, message }) => {
            let error = EtirError::new(ErrorCode::DeclarationRuleBroken, format!("/{field}")).with_detail(message);
            Err(Box::new(ApiError::Etir(error).into_response()))
        }
    }
}

/// 400/106 at `/expression`, the detail naming where, and `position` added to the error.
pub(crate) fn expression_refused(e: &CompileError) -> Response {
    let detail = format!("line {}, column {}: {}", e.line, e.column, e.message);
    let error = EtirError::new(ErrorCode::WrongFormat, "/expression").with_detail(detail);
    let mut body = error.to_json();
    body["error"]["position"] = json!({ "line": e.line, "column": e.column, "offset": e.offset });
    json_response(error.http_status(), body.to_string())
}

fn read_fields(value: &Value, administration: Country) -> Result<ProfileDraft, ApiError> {
    let obj = Obj::new(value, "")?;
    let name = obj.text("name", TEXT_CHARS_MAX)?;
    let expression = obj.str("expression")?.to_owned();
    let lane = match obj.str("lane")? {
        "green" => Lane::Green,
        "yellow" => Lane::Yellow,
        "red" => Lane::Red,
        _ => return Err(ApiError::code(ErrorCode::InvalidDomain, "/lane")),
    };
    let selection_percent = match obj.required("selection_percent")?.as_f64() {
        Some(p) if (0.0..=100.0).contains(&p) => p,
        Some(_) => {
            return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, "/selection_percent")
                .with_detail("from 0 to 100")
                .into());
        }
        None => return Err(ApiError::code(ErrorCode::WrongFormat, "/selection_percent")),
    };
    let weight = match obj.get("weight") {
        None => 0,
        Some(v) => match v.as_i64() {
            Some(w) => w,
            None if v.is_number() => return Err(ApiError::code(ErrorCode::NotAnInteger, "/weight")),
            None => return Err(ApiError::code(ErrorCode::WrongFormat, "/weight")),
        },
    };
    let reason = obj.text("reason", TEXT_CHARS_MAX)?;
    let valid_from = date(obj.str("valid_from")?, "/valid_from")?;
    let valid_until = obj.str_opt("valid_until")?.map(|raw| date(raw, "/valid_until")).transpose()?;
    let office_scope = match obj.get("office_scope") {
        None => OfficeScope::All,
        Some(Value::String(s)) if s == "all" => OfficeScope::All,
        Some(Value::String(_)) => return Err(ApiError::code(ErrorCode::InvalidDomain, "/office_scope")),
        Some(scope @ Value::Object(_)) => OfficeScope::Offices(offices(scope, administration)?),
        Some(_) => return Err(ApiError::code(ErrorCode::WrongFormat, "/office_scope")),
    };
    obj.finish()?;
    if valid_until.is_some_and(|until| until < valid_from) {
        return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, "/valid_until")
            .with_detail("is before valid_from")
            .into());
    }
    Ok(ProfileDraft {
        name,
        expression,
        lane,
        selection_percent,
        weight,
        reason,
        valid_from,
        valid_until,
        office_scope,
    })
}

fn date(raw: &str, pointer: &str) -> Result<Date, ApiError> {
    Date::parse(raw).map_err(|_| {
        EtirError::new(ErrorCode::MalformedDate, pointer)
            .with_detail(format!("{raw:?} is not a date (YYYY-MM-DD)"))
            .into()
    })
}

/// `code` if it is an office of `administration`'s country, else 400/180 at `pointer`.
pub(crate) fn own_office(code: OfficeCode, administration: Country, pointer: &str) -> Result<OfficeCode, ApiError> {
    if code.country() != administration {
        return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, pointer)
            .with_detail(format!("an office of {administration}'s customs only"))
            .into());
    }
    Ok(code)
}

/// `{"offices": [...]}`: one or more offices of the administration.
fn offices(scope: &Value, administration: Country) -> Result<Vec<OfficeCode>, ApiError> {
    let obj = Obj::new(scope, "/office_scope")?;
    let mut offices = Vec::new();
    for (pointer, item) in obj.array("offices", SCOPE_OFFICES_MAX)? {
        let raw = item.as_str().ok_or_else(|| ApiError::code(ErrorCode::WrongFormat, &pointer))?;
        let code = own_office(parse_at(raw, &pointer, OfficeCode::parse)?, administration, &pointer)?;
        if !offices.contains(&code) {
            offices.push(code);
        }
    }
    obj.finish()?;
    if offices.is_empty() {
        return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, "/office_scope/offices")
            .with_detail("an empty list selects nothing: use \"all\"")
            .into());
    }
    Ok(offices)
}

/// `green` (release), `yellow` (documentary check), `red` (physical inspection).
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // describes JSON read by `read_fields` and made by tir-risk
enum LaneBody {
    Green,
    Yellow,
    Red,
}

/// `"all"`: every office of the administration; or a list of its offices.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // describes JSON read by `offices` and made by tir-risk
enum OfficeScopeBody {
    All,
    /// One or more offices of the administration (at most 256).
    Offices(Vec<OfficeCode>),
}

/// The body of `POST /v1/risk/profiles` and `PUT /v1/risk/profiles/{id}` (a
/// `tir_risk::rules::ProfileDraft`), read field by field; this type describes it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body `read_fields` reads
struct ProfileDraftBody {
    #[schema(schema_with = tir_model::schema::text)]
    name: String,
    /// CEL over the transport context (docs/risk.md), evaluating to a bool.
    #[schema(min_length = 1, max_length = 4000)]
    expression: String,
    lane: LaneBody,
    /// The share of matching transports the profile selects, drawn at random per match.
    #[schema(minimum = 0, maximum = 100)]
    selection_percent: f64,
    /// Among fired profiles of the same lane the highest wins; absent or null: 0.
    #[schema(required = false)]
    weight: Option<i64>,
    /// Shown to the officer when the profile selects a transport.
    #[schema(schema_with = tir_model::schema::text)]
    reason: String,
    valid_from: Date,
    /// Inclusive, not before valid_from; absent or null: no end.
    #[schema(required = false)]
    valid_until: Option<Date>,
    /// Absent or null: "all".
    #[schema(required = false)]
    office_scope: Option<OfficeScopeBody>,
}

/// One version of a profile (`tir_risk::rules::Profile`), never changed once made.
#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by tir-risk
pub struct ProfileView {
    id: String,
    /// 1, 2, ...: each edit makes the next.
    version: u32,
    /// The country of the customs that own it.
    administration: Country,
    name: String,
    expression: String,
    lane: LaneBody,
    selection_percent: f64,
    weight: i64,
    reason: String,
    valid_from: Date,
    valid_until: Option<Date>,
    office_scope: OfficeScopeBody,
    /// The customs party that saved this version.
    author: String,
    /// When it was saved (RFC 3339, UTC).
    created_at: String,
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by `list_profiles`
pub struct ProfileList {
    items: Vec<ProfileView>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by `get_profile`
pub struct ProfileWithVersions {
    /// The latest version.
    profile: ProfileView,
    /// Every version, oldest first.
    versions: Vec<ProfileView>,
}
