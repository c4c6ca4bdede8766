//! `POST /v1/messages`: every state-changing eTIR message.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use tir_model::message::Request;
use tir_model::wire;
use tir_store::Submission;

use crate::App;
use crate::auth::AnyParty;
use crate::error::{ApiError, json_body, json_response};
use crate::openapi::ErrorBody;

#[utoipa::path(
    post,
    path = "/v1/messages",
    tag = "messages",
    request_body(content = Request, description = "E1, E3, E9, E11, E13, I1, I7, I9, I11, I13 or I17"),
    responses(
        (status = 200, description = "The response message (E2, I10, ...); replayed identically for a repeated message_id", body = tir_model::view::ResponseView<'static>),
        (status = 400, description = "Codes 100 (not one JSON object, a key given twice), 101 to 106, 107 (a field the message type does not have), 180, 181", body = ErrorBody),
        (status = 403, description = "Code 380: party not authorized", body = ErrorBody),
        (status = 409, description = "Codes 2xx (workflow), 299 (message_id reused with another body)", body = ErrorBody),
        (status = 422, description = "Codes 3xx (functional): 301, 304, 305, 307, 320, 321, 322, 331", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn submit(
    State(app): State<App>,
    AnyParty(sender): AnyParty,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_body(&headers, body)?;
    let request = Request::parse(&value)?;
    let submission = Submission::new(sender, request, wire::canonical(&value));
    let reply = app.store.submit(submission).await?;
    Ok(json_response(reply.status, reply.body))
}
