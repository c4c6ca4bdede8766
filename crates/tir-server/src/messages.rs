//! `POST /v1/messages`: every state-changing eTIR message.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use tir_model::ErrorCode;
use tir_model::limits::BODY_BYTES_MAX;
use tir_model::message::{MessageType, Request};
use tir_model::wire;
use tir_store::Submission;

use crate::App;
use crate::auth::AnyParty;
use crate::error::{ApiError, body_rejection, json_body, json_response};
use crate::openapi::ErrorBody;

#[utoipa::path(
    post,
    path = "/v1/messages",
    tag = "messages",
    params(("Tirhub-Holder-Signature" = Option<String>, Header, pattern = r"^ *(keyid|ed25519)=[0-9a-fA-F]+ *, *(keyid|ed25519)=[0-9a-fA-F]+ *$",
        description = "keyid=<16 hex>, ed25519=<128 hex>: the holder's Ed25519 signature over the request body's exact bytes, by its current signing key (docs/etir-binding.md, \"Signed holder messages\")")),
    request_body(content = Request, description = "E1, E3, E9, E11, E13, I1, I7, I9, I11, I13 or I17"),
    responses(
        (status = 200, description = "The response message (E2, I10, ...); replayed identically for a repeated message_id", body = tir_model::view::ResponseView<'static>),
        (status = 400, description = "Codes 100 (not one JSON object, a key given twice), 101 to 106, 107 (a field the message type does not have), 180, 181", body = ErrorBody),
        (status = 403, description = "Code 380: party not authorized. Code 382: a holder with a signing key sent E9, E11 or E13 without a valid Tirhub-Holder-Signature (or any signature where none is due)", body = ErrorBody),
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
    let answer = counted(&app, sender, &headers, body).await;
    answer.map(|(status, body)| json_response(status, body))
}

/// A message from another front end of this server (the console): the sender is
/// already authenticated; it spends one token of the sender's rate limit, as the
/// API's extractor would, and then goes through exactly `POST /v1/messages`'s path
/// (parsing, the model's authorization, the journal, idempotency per message_id,
/// the metrics). Answers the status and JSON body the API would have answered.
pub async fn submit_message(app: &App, sender: tir_model::party::Party, body: Bytes) -> (u16, String) {
    let mut headers = HeaderMap::new();
    headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    let answer = match app.limiter.admit(&sender) {
        Ok(()) => counted(app, sender, &headers, Ok(body)).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(answer) => answer,
        Err(e) => {
            let response = axum::response::IntoResponse::into_response(e);
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), BODY_BYTES_MAX).await.unwrap_or_default();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    }
}

/// `handle`, counted in the metrics by message type, status and code.
async fn counted(
    app: &App,
    sender: tir_model::party::Party,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(u16, String), ApiError> {
    let mut kind = None;
    let answer = handle(app, sender, headers, body, &mut kind).await;
    let (status, code) = match &answer {
        Ok((status, body)) => (*status, if *status == 200 { 0 } else { error_code(body) }),
        Err(ApiError::Etir(e)) => (e.http_status(), e.code.number()),
        Err(ApiError::Store(_)) => (503, ErrorCode::Internal.number()),
        Err(ApiError::TooManyRequests { .. }) => (429, ErrorCode::TooManyRequests.number()),
    };
    app.metrics.message(kind, status, code);
    answer
}

/// The answer's status and body; `kind` is set once the body names a known message type.
async fn handle(
    app: &App,
    sender: tir_model::party::Party,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    kind: &mut Option<MessageType>,
) -> Result<(u16, String), ApiError> {
    let bytes = body.map_err(body_rejection)?;
    let value = json_body(headers, Ok(bytes.clone()))?;
    *kind = value.get("type").and_then(serde_json::Value::as_str).and_then(MessageType::parse);
    let request = Request::parse(&value)?;
    // Before the store: a refused signature changes nothing and is not stored as the answer.
    let signature = crate::signing::check_message(app, &sender, request.kind, headers, &bytes).await?;
    let mut submission = Submission::new(sender, request, wire::canonical(&value));
    if let Some(signature) = signature {
        submission = submission.signed(signature);
    }
    let reply = app.store.submit(submission).await?;
    Ok((reply.status, reply.body))
}

/// The contract code of a refusal's body (`{"error": {"code": n, ...}}`); 0 if it has none.
fn error_code(body: &str) -> u16 {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    value["error"]["code"].as_u64().and_then(|code| u16::try_from(code).ok()).unwrap_or(0)
}
