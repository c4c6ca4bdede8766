//! Read routes: E5/I5 guarantee, I3 holder, I19 office, E7/I15 notifications.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tir_model::exchange::may_read;
use tir_model::guarantee::Guarantee;
use tir_model::limits::{NOTIFICATION_PAGE_DEFAULT, NOTIFICATION_PAGE_MAX};
use tir_model::party::Party;
use tir_model::view::{declaration_view, guarantee_view, holder_view, office_view};
use tir_model::wire::parse_at;
use tir_model::{ErrorCode, EtirError, GuaranteeRef, OfficeCode, Timestamp, TirId};

use crate::App;
use crate::auth::AnyParty;
use crate::error::{ApiError, json_response};

/// A path segment that axum could not decode.
pub(crate) fn path_rejection(pointer: &str, rejection: PathRejection) -> ApiError {
    ApiError::Etir(EtirError::new(ErrorCode::WrongFormat, pointer).with_detail(rejection.body_text()))
}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The server is up", body = crate::openapi::Health)))]
pub async fn health(State(app): State<App>) -> Json<Value> {
    Json(json!({"status": "ok", "backend": app.store.backend()}))
}

#[utoipa::path(get, path = "/v1/guarantees/{reference}", tag = "queries",
    params(("reference" = String, Path, description = "Guarantee reference, e.g. XH12345678")),
    responses(
        (status = 200, description = "E5/I5: the guarantee and its transport", body = crate::openapi::GuaranteeView),
        (status = 403, description = "Code 360", body = crate::openapi::ErrorBody),
        (status = 404, description = "Code 404", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn guarantee(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    reference: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let guarantee = readable_guarantee(&app, &party, reference).await?;
    Ok(json_response(200, guarantee_view(&guarantee)))
}

/// The guarantee named in the path, if the caller may read it.
async fn readable_guarantee(
    app: &App,
    party: &Party,
    reference: Result<Path<String>, PathRejection>,
) -> Result<Guarantee, ApiError> {
    let Path(raw) = reference.map_err(|r| path_rejection("/reference", r))?;
    let reference = parse_at(&raw, "/reference", GuaranteeRef::parse)?;
    let guarantee =
        app.store.guarantee(&reference).await?.ok_or_else(|| ApiError::code(ErrorCode::NotFound, "/reference"))?;
    if !may_read(party, &guarantee) {
        return Err(ApiError::code(ErrorCode::PartyNotAuthorized, "/reference"));
    }
    Ok(guarantee)
}

#[utoipa::path(get, path = "/v1/guarantees/{reference}/declaration", tag = "queries",
    params(("reference" = String, Path, description = "Guarantee reference, e.g. XH12345678")),
    responses(
        (status = 200, description = "The recorded declaration, else the advance data (null when neither)", body = crate::openapi::DeclarationBody),
        (status = 403, description = "Code 360", body = crate::openapi::ErrorBody),
        (status = 404, description = "Code 404", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn declaration(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    reference: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let guarantee = readable_guarantee(&app, &party, reference).await?;
    Ok(json_response(200, declaration_view(&guarantee)))
}

#[utoipa::path(get, path = "/v1/guarantees/{reference}/timeline", tag = "queries",
    params(("reference" = String, Path, description = "Guarantee reference, e.g. XH12345678")),
    responses(
        (status = 200, description = "What each accepted message did to the transport, oldest first", body = crate::openapi::Timeline),
        (status = 403, description = "Code 360", body = crate::openapi::ErrorBody),
        (status = 404, description = "Code 404", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn timeline(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    reference: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let guarantee = readable_guarantee(&app, &party, reference).await?;
    let events = app.store.timeline(&guarantee.reference).await?;
    let events: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({"at": e.at.to_rfc3339(), "type": e.message_type, "party": e.party,
                   "office": e.office.as_ref().map(|o| o.as_str()), "summary": e.summary})
        })
        .collect();
    Ok(Json(json!({"reference": guarantee.reference.as_str(), "events": events})))
}

#[utoipa::path(get, path = "/v1/holders/{tir_id}", tag = "queries",
    params(("tir_id" = String, Path, description = "TIR id, percent-encoded: LTU%2F012%2F345")),
    responses(
        (status = 200, description = "I3: the holder as listed in the ITDB", body = crate::openapi::Holder),
        (status = 404, description = "Code 404", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn holder(
    State(app): State<App>,
    _: AnyParty,
    tir_id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(raw) = tir_id.map_err(|r| path_rejection("/tir_id", r))?;
    let tir_id = parse_at(&raw, "/tir_id", TirId::parse)?;
    let holder = app.store.holder(&tir_id).await?.ok_or_else(|| ApiError::code(ErrorCode::NotFound, "/tir_id"))?;
    Ok(Json(holder_view(&holder)))
}

#[utoipa::path(get, path = "/v1/offices/{code}", tag = "queries",
    params(("code" = String, Path, description = "Office code, e.g. LT000001")),
    responses(
        (status = 200, description = "I19: the customs office", body = crate::openapi::OfficeBody),
        (status = 404, description = "Code 404", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn office(
    State(app): State<App>,
    _: AnyParty,
    code: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(raw) = code.map_err(|r| path_rejection("/code", r))?;
    let code = parse_at(&raw, "/code", OfficeCode::parse)?;
    let office = app.store.office(&code).await?.ok_or_else(|| ApiError::code(ErrorCode::NotFound, "/code"))?;
    Ok(Json(office_view(&office)))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct FeedQuery {
    /// Cursor of the last item already read (default: the start).
    after: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<String>,
}

#[utoipa::path(get, path = "/v1/notifications", tag = "queries",
    params(FeedQuery),
    responses(
        (status = 200, description = "E7/I15: the caller's own feed, in order", body = crate::openapi::NotificationPage),
        (status = 400, description = "Codes 105, 106", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn notifications(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) =
        query.map_err(|r| ApiError::Etir(EtirError::new(ErrorCode::WrongFormat, "").with_detail(r.body_text())))?;
    let after = match query.after.as_deref() {
        None | Some("") => 0,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::code(ErrorCode::WrongFormat, "/after"))?,
    };
    let limit = match query.limit.as_deref() {
        None | Some("") => NOTIFICATION_PAGE_DEFAULT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=NOTIFICATION_PAGE_MAX).contains(&n) => n,
            Ok(_) => return Err(ApiError::code(ErrorCode::WrongLength, "/limit")),
            Err(_) => return Err(ApiError::code(ErrorCode::WrongFormat, "/limit")),
        },
    };
    let feed = party.feed().map(|r| r.key());
    let rows = app.store.notifications(feed.as_deref(), after, limit).await?;
    let next = rows.last().map(|r| r.cursor).unwrap_or(after);
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "cursor": r.cursor.to_string(),
                "type": r.kind,
                "guarantee_reference": r.guarantee_reference,
                "payload": serde_json::from_str::<Value>(&r.payload).unwrap_or(Value::Null),
                "created_at": Timestamp::from_unix_ms(r.created_at_ms).to_rfc3339(),
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "next": next.to_string()})))
}
