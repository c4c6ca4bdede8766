//! Read routes: E5/I5 guarantee, I3 holder, I19 office, E7/I15 notifications.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tir_model::exchange::may_read;
use tir_model::guarantee::Guarantee;
use tir_model::limits::{NOTIFICATION_PAGE_BYTES_MAX, NOTIFICATION_PAGE_DEFAULT, NOTIFICATION_PAGE_MAX};
use tir_model::party::Party;
use tir_model::view::{declaration_view, guarantee_view, holder_view, office_view};
use tir_model::wire::parse_at;
use tir_model::{ErrorCode, EtirError, GuaranteeRef, OfficeCode, Timestamp, TirId};
use utoipa::ToSchema;

use crate::App;
use crate::auth::AnyParty;
use crate::error::{ApiError, json_response};
use crate::openapi::ErrorBody;

/// A path segment that axum could not decode.
pub(crate) fn path_rejection(pointer: &str, rejection: PathRejection) -> ApiError {
    ApiError::Etir(EtirError::new(ErrorCode::WrongFormat, pointer).with_detail(rejection.body_text()))
}

/// The thing the route names does not exist: HTTP 404 with its own code.
fn not_found(code: ErrorCode, pointer: &str) -> ApiError {
    ApiError::Etir(EtirError::not_found_on_route(code, pointer))
}

/// Fields in key order, as the JSON has always had them.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// sqlite or postgres.
    backend: &'static str,
    /// ok.
    status: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The server is up", body = Health)))]
pub async fn health(State(app): State<App>) -> Json<Health> {
    Json(Health { backend: app.store.backend(), status: "ok" })
}

#[utoipa::path(get, path = "/v1/guarantees/{reference}", tag = "queries",
    params(("reference" = GuaranteeRef, Path, description = "Guarantee reference, e.g. XH25000001")),
    responses(
        (status = 200, description = "E5/I5: the guarantee and its transport", body = tir_model::view::GuaranteeView<'static>),
        (status = 400, description = "Codes 105, 106: a malformed reference", body = ErrorBody),
        (status = 403, description = "Code 380: not a party to this transport", body = ErrorBody),
        (status = 404, description = "Code 301: no such guarantee", body = ErrorBody),
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
    guarantee_readable_by(app, party, &raw, "/reference").await
}

/// The guarantee `raw` names (read at `pointer`), if it exists (else 404/301) and
/// `party` may read it (else 403/380).
pub(crate) async fn guarantee_readable_by(
    app: &App,
    party: &Party,
    raw: &str,
    pointer: &str,
) -> Result<Guarantee, ApiError> {
    let reference = parse_at(raw, pointer, GuaranteeRef::parse)?;
    let guarantee =
        app.store.guarantee(&reference).await?.ok_or_else(|| not_found(ErrorCode::GuaranteeNotFound, pointer))?;
    if !may_read(party, &guarantee) {
        return Err(ApiError::code(ErrorCode::PartyNotAuthorized, pointer));
    }
    Ok(guarantee)
}

/// Read as text, so that a malformed value gets its contract code.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeclarationQuery {
    /// The version to read: 0 for the advance data, 1 for the declaration as
    /// recorded, then one more for each accepted amendment (default: the current one).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 4294967295_u32)]
    version: Option<String>,
}

#[utoipa::path(get, path = "/v1/guarantees/{reference}/declaration", tag = "queries",
    params(("reference" = GuaranteeRef, Path, description = "Guarantee reference, e.g. XH25000001"), DeclarationQuery),
    responses(
        (status = 200, description = "The current declaration (or version n of it) with its version; advance data is version 0", body = tir_model::view::DeclarationView<'static>),
        (status = 400, description = "Codes 104, 105, 106: a malformed reference or version", body = ErrorBody),
        (status = 403, description = "Code 380: not a party to this transport", body = ErrorBody),
        (status = 404, description = "Code 301: no such guarantee; 307: no declaration, or no such version", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn declaration(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    reference: Result<Path<String>, PathRejection>,
    query: Result<Query<DeclarationQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|r| ApiError::Etir(EtirError::new(ErrorCode::WrongFormat, "").with_detail(r.body_text())))?;
    let guarantee = readable_guarantee(&app, &party, reference).await?;
    let version = match query.version.as_deref() {
        None => None,
        Some(raw) if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) => {
            Some(raw.parse::<u32>().map_err(|_| ApiError::code(ErrorCode::WrongLength, "/version"))?)
        }
        Some(_) => return Err(ApiError::code(ErrorCode::NotAnInteger, "/version")),
    };
    let pointer = if version.is_some() { "/version" } else { "/reference" };
    let view =
        declaration_view(&guarantee, version).ok_or_else(|| not_found(ErrorCode::DeclarationNotFound, pointer))?;
    Ok(json_response(200, view))
}

#[utoipa::path(get, path = "/v1/guarantees/{reference}/timeline", tag = "queries",
    params(("reference" = GuaranteeRef, Path, description = "Guarantee reference, e.g. XH25000001")),
    responses(
        (status = 200, description = "What each accepted message did to the transport, oldest first", body = Timeline),
        (status = 400, description = "Codes 105, 106: a malformed reference", body = ErrorBody),
        (status = 403, description = "Code 380: not a party to this transport", body = ErrorBody),
        (status = 404, description = "Code 301: no such guarantee", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn timeline(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    reference: Result<Path<String>, PathRejection>,
) -> Result<Json<Timeline>, ApiError> {
    let guarantee = readable_guarantee(&app, &party, reference).await?;
    let events = app.store.timeline(&guarantee.reference).await?;
    let events = events
        .iter()
        .map(|e| TimelineEvent {
            at: e.at.to_rfc3339(),
            office: e.office.as_ref().map(|o| o.as_str().to_owned()),
            party: e.party.clone(),
            summary: e.summary.clone(),
            message_type: e.message_type.clone(),
            occurred_at: e.occurred_at.map(Timestamp::to_rfc3339),
            fallback_period: e.fallback_period.clone(),
        })
        .collect();
    Ok(Json(Timeline { events, reference: guarantee.reference.as_str().to_owned() }))
}

/// What each accepted message did to the transport, oldest first. Fields in
/// key order, as the JSON has always had them.
#[derive(Serialize, ToSchema)]
pub struct Timeline {
    events: Vec<TimelineEvent>,
    reference: String,
}

#[derive(Serialize, ToSchema)]
pub struct TimelineEvent {
    at: String,
    /// Only for a message recorded in fallback: the fallback period's id, and
    /// when it happened at the office (`at` is when tirhub received it).
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback_period: Option<String>,
    office: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    occurred_at: Option<String>,
    /// Party id of the sender.
    party: String,
    summary: String,
    /// The request message type (E1, I9, ...).
    #[serde(rename = "type")]
    message_type: String,
}

#[utoipa::path(get, path = "/v1/holders/{tir_id}", tag = "queries",
    params(("tir_id" = TirId, Path, description = "TIR id, percent-encoded: LTU%2F012%2F345")),
    responses(
        (status = 200, description = "I3: the holder as listed in the ITDB", body = tir_model::view::HolderView<'static>),
        (status = 400, description = "Codes 105, 106: a malformed TIR id", body = ErrorBody),
        (status = 404, description = "Code 322: not listed", body = ErrorBody),
        (status = 422, description = "Code 305: the TIR id's country is unknown", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn holder(
    State(app): State<App>,
    _: AnyParty,
    tir_id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(raw) = tir_id.map_err(|r| path_rejection("/tir_id", r))?;
    let tir_id = parse_at(&raw, "/tir_id", TirId::parse)?;
    let holder = app.store.holder(&tir_id).await?.ok_or_else(|| not_found(ErrorCode::HolderNotFound, "/tir_id"))?;
    Ok(Json(holder_view(&holder)))
}

#[utoipa::path(get, path = "/v1/offices/{code}", tag = "queries",
    params(("code" = OfficeCode, Path, description = "Office code, e.g. LTMDK001")),
    responses(
        (status = 200, description = "I19: the customs office", body = tir_model::view::OfficeView<'static>),
        (status = 400, description = "Codes 105, 106: a malformed office code", body = ErrorBody),
        (status = 404, description = "Code 304: no such office", body = ErrorBody),
        (status = 422, description = "Code 305: the office code's country is unknown", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn office(
    State(app): State<App>,
    _: AnyParty,
    code: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(raw) = code.map_err(|r| path_rejection("/code", r))?;
    let code = parse_at(&raw, "/code", OfficeCode::parse)?;
    let office = app.store.office(&code).await?.ok_or_else(|| not_found(ErrorCode::OfficeNotFound, "/code"))?;
    Ok(Json(office_view(&office)))
}

/// Read as text, so that a malformed value gets its contract code.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Cursor of the last item already read, as the previous page's `next` gave it;
    /// absent or empty: the start.
    #[param(value_type = Option<String>, pattern = r"^(0|[1-9][0-9]{0,17})?$")]
    after: Option<String>,
    /// Items per page (default 100); `NOTIFICATION_PAGE_MAX` is 1000.
    #[param(value_type = Option<u16>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

#[utoipa::path(get, path = "/v1/notifications", tag = "queries",
    params(FeedQuery),
    responses(
        (status = 200, description = "E7/I15: the caller's own feed, in order", body = NotificationPage),
        (status = 400, description = "Code 105: a limit that is not a whole number from 1 to 1000; 106: a malformed after", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn notifications(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Json<NotificationPage>, ApiError> {
    let (after, limit) = feed_query(query)?;
    let feed = party.feed().map(|r| r.key());
    let rows = page_rows(app.store.as_ref(), feed.as_deref(), after, limit).await?;
    let next = rows.last().map(|r| r.cursor).unwrap_or(after);
    let items = rows.into_iter().map(NotificationItem::from_row).collect();
    Ok(Json(NotificationPage { items, next: next.to_string() }))
}

/// A feed query's `after` (0 when absent or empty) and `limit` (default 100), checked.
pub(crate) fn feed_query(query: Result<Query<FeedQuery>, QueryRejection>) -> Result<(i64, usize), ApiError> {
    let Query(query) =
        query.map_err(|r| ApiError::Etir(EtirError::new(ErrorCode::WrongFormat, "").with_detail(r.body_text())))?;
    // The cursor is opaque text: empty is the start, as a client's first `next`.
    let after = match query.after.as_deref() {
        None | Some("") => 0,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::code(ErrorCode::WrongFormat, "/after"))?,
    };
    let limit = match query.limit.as_deref() {
        None => NOTIFICATION_PAGE_DEFAULT,
        // Anything but a whole number from 1 to 1000 (`ten`, `-1`, `0`, `1001`, `2.5`, ``) is 105.
        Some(raw) => {
            raw.parse::<usize>().ok().filter(|n| (1..=NOTIFICATION_PAGE_MAX).contains(n)).ok_or_else(|| {
                ApiError::Etir(
                    EtirError::new(ErrorCode::WrongLength, "/limit")
                        .with_detail(format!("a whole number from 1 to {NOTIFICATION_PAGE_MAX}")),
                )
            })?
        }
    };
    Ok((after, limit))
}

/// Rows read first for a feed page; each further read takes four times more.
const FEED_READ_FIRST: usize = 16;

/// A feed page's rows: up to `limit`, within `NOTIFICATION_PAGE_BYTES_MAX`, read in
/// growing chunks that stop once the budget is reached, so a page of large items never
/// loads `limit` of them (1,000 items of 250 KB made each read hold 250 MB to answer
/// 1 MB; docs/performance.md, "Issue 14"). Small items take four reads for 1,000.
async fn page_rows(
    store: &dyn tir_store::Store,
    feed: Option<&str>,
    after: i64,
    limit: usize,
) -> Result<Vec<tir_store::NotificationRow>, tir_store::StoreError> {
    let mut rows: Vec<tir_store::NotificationRow> = Vec::new();
    let mut chunk = FEED_READ_FIRST.min(limit);
    loop {
        let from = rows.last().map_or(after, |r| r.cursor);
        let read = store.notifications(feed, from, chunk).await?;
        let more = read.len() == chunk;
        rows.extend(read);
        let fit = items_within(&rows, NOTIFICATION_PAGE_BYTES_MAX);
        if fit < rows.len() {
            rows.truncate(fit);
            return Ok(rows);
        }
        if !more || rows.len() >= limit {
            return Ok(rows);
        }
        chunk = (chunk * 4).min(limit - rows.len());
    }
}

/// How many of `rows` fit a page of `budget` bytes: the page stops before it
/// would pass it, but always holds its first item (a larger one is still read).
fn items_within(rows: &[tir_store::NotificationRow], budget: usize) -> usize {
    // The item's JSON besides its payload: keys, cursor, type, reference, time.
    const ITEM_OVERHEAD_BYTES: usize = 160;
    let mut used = 0;
    for (i, row) in rows.iter().enumerate() {
        used += row.payload.len() + row.guarantee_reference.len() + ITEM_OVERHEAD_BYTES;
        if used > budget && i > 0 {
            return i;
        }
    }
    rows.len()
}

/// A page of the caller's feed. Fields in key order, as the JSON has always had them.
#[derive(Serialize, ToSchema)]
pub struct NotificationPage {
    items: Vec<NotificationItem>,
    /// Pass as `after` to read on.
    next: String,
}

impl NotificationItem {
    /// As the feed shows it, and as a push delivery's body (`push`) carries it.
    pub(crate) fn from_row(r: tir_store::NotificationRow) -> NotificationItem {
        NotificationItem {
            created_at: Timestamp::from_unix_ms(r.created_at_ms).to_rfc3339(),
            cursor: r.cursor.to_string(),
            guarantee_reference: r.guarantee_reference,
            payload: serde_json::from_str::<Value>(&r.payload).unwrap_or(Value::Null),
            kind: r.kind,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NotificationItem {
    created_at: String,
    cursor: String,
    guarantee_reference: String,
    /// The event, as the message that caused it left it.
    #[schema(value_type = Object)]
    payload: Value,
    /// E7 (to chains), I15 (to customs of later countries), E9/E11/E13 (advance data to customs of departure).
    #[serde(rename = "type")]
    kind: String,
}

#[cfg(test)]
mod tests {
    use super::items_within;
    use tir_store::NotificationRow;

    fn rows(payload_bytes: &[usize]) -> Vec<NotificationRow> {
        let row = |(i, n): (usize, &usize)| NotificationRow {
            cursor: i as i64 + 1,
            recipient: "customs:LT".into(),
            kind: "I15".into(),
            guarantee_reference: "XH25000001".into(),
            payload: "x".repeat(*n),
            created_at_ms: 0,
        };
        payload_bytes.iter().enumerate().map(row).collect()
    }

    #[test]
    fn a_page_holds_what_fits_and_always_its_first_item() {
        // Each row weighs its payload, its reference (10) and 160 bytes of item JSON.
        assert_eq!(items_within(&rows(&[830, 830, 830]), 2000), 2);
        assert_eq!(items_within(&rows(&[830, 830]), 2000), 2);
        assert_eq!(items_within(&rows(&[5000, 10]), 2000), 1, "the first item even when it alone is larger");
        assert_eq!(items_within(&rows(&[]), 2000), 0);
    }
}
