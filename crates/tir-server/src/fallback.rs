//! The fallback procedure (etir-binding.md, "Fallback procedure"): periods
//! declared and ended by customs (their country) or the admin (any, or the
//! whole system), read by the parties concerned, and the reconciliation of
//! what customs recorded late. The rules are tir-model's (`fallback`).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;
use tir_model::exchange::may_read;
use tir_model::fallback::{self, FallbackPeriod, FallbackScope};
use tir_model::limits::TEXT_CHARS_MAX;
use tir_model::wire::Obj;
use tir_model::{ErrorCode, EtirError, Timestamp};
use tir_store::{FallbackDeclaration, FallbackEnd};
use utoipa::ToSchema;

use crate::App;
use crate::auth::AnyParty;
use crate::error::{ApiError, json_body, json_response};
use crate::openapi::ErrorBody;
use crate::queries::path_rejection;

/// Longest period id taken from a path (the writer draws 16 hex digits).
const PERIOD_ID_CHARS_MAX: usize = 64;

/// An RFC 3339 time at `key`: a text that is no such time is 103, another JSON type 106.
fn time_at(obj: &Obj<'_>, key: &str) -> Result<Timestamp, EtirError> {
    obj.parse(key, Timestamp::parse_rfc3339).map_err(|e| match e.code {
        ErrorCode::WrongFormat | ErrorCode::WrongLength if obj.get(key).is_some_and(Value::is_string) => {
            EtirError { code: ErrorCode::MalformedDate, ..e }
        }
        _ => e,
    })
}

/// The period a path names: 105/106 for a malformed id, 404/183 for none.
async fn named_period(app: &App, id: Result<Path<String>, PathRejection>) -> Result<FallbackPeriod, ApiError> {
    let Path(id) = id.map_err(|r| path_rejection("/id", r))?;
    if id.is_empty() || id.chars().count() > PERIOD_ID_CHARS_MAX {
        return Err(ApiError::code(ErrorCode::WrongLength, "/id"));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(ApiError::code(ErrorCode::WrongFormat, "/id"));
    }
    app.store.fallback_period(&id).await?.ok_or_else(|| {
        ApiError::Etir(
            EtirError::not_found_on_route(ErrorCode::NoSuchRoute, "/id").with_detail("no such fallback period"),
        )
    })
}

fn not_concerned() -> ApiError {
    ApiError::Etir(
        EtirError::new(ErrorCode::PartyNotAuthorized, "/id").with_detail("this fallback period does not concern you"),
    )
}

/// The body of `POST /v1/fallback`; this type describes it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body `declare` reads
struct FallbackDeclarationBody {
    /// `system`, or the ISO 3166-1 alpha-2 country whose customs work on paper.
    #[schema(pattern = r"^(system|[A-Z]{2})$")]
    scope: String,
    #[schema(schema_with = tir_model::schema::text)]
    reason: String,
    /// When the exchange became unavailable (RFC 3339; not in the future).
    #[schema(format = DateTime)]
    from: String,
}

/// The body of `POST /v1/fallback/{id}/end`; this type describes it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body `end` reads
struct FallbackEndBody {
    /// When the exchange was available again (RFC 3339; from the period's start to now).
    #[schema(format = DateTime)]
    until: String,
}

/// A fallback period (made by `tir_model::fallback::FallbackPeriod::view`).
#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by tir-model
pub struct FallbackPeriodView {
    id: String,
    /// `system` or a country.
    scope: String,
    reason: String,
    from: String,
    /// Null while the period is open.
    until: Option<String>,
    open: bool,
    /// Party id of who declared it (`admin` for the admin).
    declared_by: String,
    declared_at: String,
    ended_by: Option<String>,
    ended_at: Option<String>,
}

/// `GET /v1/fallback`'s answer.
#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by `list`
struct FallbackPeriods {
    periods: Vec<FallbackPeriodView>,
}

/// One transport in a reconciliation.
#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by tir-model
struct ReconciledTransport {
    reference: String,
    /// The guarantee's state.
    state: String,
    /// Whether a message was recorded in fallback under this period for it.
    recorded_in_fallback: bool,
    /// `missing` is empty.
    reconciled: bool,
    /// What the record still misses, each `{"kind": "termination" | "discharge" | "release", ...}`
    /// with the operation's `operation` (sequence) and its `countries` or terminating `country`.
    #[schema(value_type = Vec<Object>)]
    missing: Vec<Value>,
}

/// `GET /v1/fallback/{id}/reconciliation`'s answer.
#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by tir-model
struct Reconciliation {
    period: FallbackPeriodView,
    /// The period has ended and no transport below misses anything.
    reconciled: bool,
    transports: Vec<ReconciledTransport>,
}

#[utoipa::path(post, path = "/v1/fallback", tag = "fallback",
    request_body = FallbackDeclarationBody,
    responses(
        (status = 201, description = "The period declared, journaled (`FALLBACK`) and told to the customs of its country, or to every party for the system (`FALLBACK` feed items)", body = FallbackPeriodView),
        (status = 200, description = "The same scope, start and reason again: the period already declared, nothing changed", body = FallbackPeriodView),
        (status = 400, description = "Codes 100, 101, 102 (`from` in the future), 103, 105, 106, 107", body = ErrorBody),
        (status = 403, description = "Code 380: customs for another country than theirs or for the system; a guarantee chain or a holder", body = ErrorBody),
        (status = 409, description = "Code 299: a period of this scope and start declared with another reason", body = ErrorBody),
        (status = 422, description = "Code 305: an unknown country", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn declare(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_body(&headers, body)?;
    let obj = Obj::new(&value, "")?;
    let scope = obj.parse("scope", FallbackScope::parse)?;
    let reason = obj.text("reason", TEXT_CHARS_MAX)?;
    let from = time_at(&obj, "from")?;
    obj.finish()?;
    fallback::may_declare(&party, scope)?;
    let declaration = FallbackDeclaration { by: party.id().to_owned(), scope, reason, from };
    let reply = app.store.declare_fallback(declaration).await?;
    Ok(json_response(reply.status, reply.body))
}

#[utoipa::path(post, path = "/v1/fallback/{id}/end", tag = "fallback",
    params(("id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$", description = "The period's id")),
    request_body = FallbackEndBody,
    responses(
        (status = 200, description = "The period ended (journaled `FALLBACK_END`, told as its declaration); the same end again answers the same", body = FallbackPeriodView),
        (status = 400, description = "Codes 100, 101, 102 (`until` before the start or in the future), 103, 105, 106, 107", body = ErrorBody),
        (status = 403, description = "Code 380: only who may declare it (customs of its country, the admin) ends it", body = ErrorBody),
        (status = 404, description = "Code 183: no such period", body = ErrorBody),
        (status = 409, description = "Code 299: the period already ended at another time", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn end(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let period = named_period(&app, id).await?;
    let value = json_body(&headers, body)?;
    let obj = Obj::new(&value, "")?;
    let until = time_at(&obj, "until")?;
    obj.finish()?;
    fallback::may_declare(&party, period.scope).map_err(|e| EtirError { pointer: "/id".into(), ..e })?;
    let reply = app.store.end_fallback(FallbackEnd { by: party.id().to_owned(), id: period.id, until }).await?;
    Ok(json_response(reply.status, reply.body))
}

#[utoipa::path(get, path = "/v1/fallback", tag = "fallback",
    responses(
        (status = 200, description = "The periods that concern the caller, by start: for customs, their country's and the system's; for the admin, guarantee chains and holders, all", body = FallbackPeriods),
    ),
    security(("bearer" = [])))]
pub async fn list(State(app): State<App>, AnyParty(party): AnyParty) -> Result<Response, ApiError> {
    let periods: Vec<Value> = app
        .store
        .fallback_periods()
        .await?
        .iter()
        .filter(|p| fallback::concerns(&party, p))
        .map(FallbackPeriod::view)
        .collect();
    Ok(json_response(200, serde_json::json!({ "periods": periods }).to_string()))
}

#[utoipa::path(get, path = "/v1/fallback/{id}", tag = "fallback",
    params(("id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$", description = "The period's id")),
    responses(
        (status = 200, description = "The period", body = FallbackPeriodView),
        (status = 400, description = "Codes 105, 106: a malformed id", body = ErrorBody),
        (status = 403, description = "Code 380: customs of another country than the period's", body = ErrorBody),
        (status = 404, description = "Code 183: no such period", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let period = named_period(&app, id).await?;
    if !fallback::concerns(&party, &period) {
        return Err(not_concerned());
    }
    Ok(json_response(200, period.view().to_string()))
}

#[utoipa::path(get, path = "/v1/fallback/{id}/reconciliation", tag = "fallback",
    params(("id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$", description = "The period's id")),
    responses(
        (status = 200, description = "Every transport the period touched (a message recorded in fallback under it, or an operation in its scope open during it) that the caller reads, with what its record still misses", body = Reconciliation),
        (status = 400, description = "Codes 105, 106: a malformed id", body = ErrorBody),
        (status = 403, description = "Code 380: a holder, or customs of another country than the period's", body = ErrorBody),
        (status = 404, description = "Code 183: no such period", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn reconciliation(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let period = named_period(&app, id).await?;
    if !fallback::may_reconcile(&party, &period) {
        return Err(not_concerned());
    }
    let transports: Vec<_> = app
        .store
        .fallback_candidates(&period.id)
        .await?
        .into_iter()
        // Customs see the transports on their itinerary, a chain its guarantees, the admin all.
        .filter(|(g, recorded)| (*recorded || period.had_open_operation(g)) && may_read(&party, g))
        .collect();
    Ok(json_response(200, fallback::reconciliation_view(&period, &transports).to_string()))
}
