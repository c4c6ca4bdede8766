//! One error type for the HTTP layer: every failure leaves as a coded contract error.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tir_model::{ErrorCode, EtirError};

#[derive(Debug)]
pub enum ApiError {
    Etir(EtirError),
    /// Logged with its detail; the client sees only code 400 (HTTP 503, or 500 for corrupt data).
    Store(tir_store::StoreError),
    /// HTTP 429, code 386, with `Retry-After` in whole seconds (at least 1): the party's rate limit.
    TooManyRequests {
        retry_after: u64,
        detail: String,
    },
}

impl From<EtirError> for ApiError {
    fn from(e: EtirError) -> Self {
        ApiError::Etir(e)
    }
}

impl From<tir_store::StoreError> for ApiError {
    fn from(e: tir_store::StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl ApiError {
    pub fn code(code: ErrorCode, pointer: &str) -> ApiError {
        ApiError::Etir(EtirError::new(code, pointer))
    }
}

pub fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = match self {
            ApiError::Etir(e) => e,
            ApiError::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                // Corrupt data is a fault that retrying will not cure; the rest is the store unavailable.
                let status = if matches!(e, tir_store::StoreError::Corrupt(_)) { 500 } else { 503 };
                EtirError::new(ErrorCode::Internal, "").with_status(status)
            }
            ApiError::TooManyRequests { retry_after, detail } => {
                let error = EtirError::new(ErrorCode::TooManyRequests, "").with_detail(detail);
                let mut response = json_response(error.http_status(), error.to_json().to_string());
                response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after.max(1)));
                return response;
            }
        };
        json_response(error.http_status(), error.to_json().to_string())
    }
}

pub async fn not_found() -> ApiError {
    ApiError::code(ErrorCode::NoSuchRoute, "")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::code(ErrorCode::MethodNotAllowed, "")
}

/// A request's JSON body, checked in the contract's order (binding v2,
/// "Messages"): authentication has run (390) before this is called; then the
/// body's size (413/105), its Content-Type (415/100), and the body itself (100).
pub fn json_body(
    headers: &HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<serde_json::Value, ApiError> {
    let body = body.map_err(body_rejection)?;
    check_content_type(headers)?;
    Ok(tir_model::wire::parse_body(&body)?)
}

/// One `Content-Type: application/json`, with parameters (a charset, if
/// any, UTF-8); anything else, or none, is HTTP 415 with code 100.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let refused = |detail: &str| {
        ApiError::Etir(EtirError::new(ErrorCode::InvalidMessage, "").with_status(415).with_detail(detail))
    };
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(refused("one Content-Type: application/json is required"));
    };
    let value = value.to_str().map_err(|_| refused("Content-Type must be application/json"))?;
    let mut parts = value.split(';');
    let media_type = parts.next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(refused("Content-Type must be application/json"));
    }
    for parameter in parts {
        let (name, raw) = parameter.split_once('=').unwrap_or((parameter, ""));
        let charset = raw.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("charset") && !charset.eq_ignore_ascii_case("utf-8") {
            return Err(refused("the body is UTF-8"));
        }
    }
    Ok(())
}

/// Maps a failed body read (over `BODY_BYTES_MAX`, or a broken stream) to a coded error.
pub fn body_rejection(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::Etir(
            EtirError::new(ErrorCode::WrongLength, "")
                .with_status(413)
                .with_detail(format!("at most {} bytes", tir_model::limits::BODY_BYTES_MAX)),
        );
    }
    if let Some(timed_out) = timed_out(&rejection) {
        // The contract names no code for a body too slow: 408 with 100 (the message did not arrive).
        return ApiError::Etir(
            EtirError::new(ErrorCode::InvalidMessage, "").with_status(408).with_detail(timed_out.to_string()),
        );
    }
    ApiError::Etir(EtirError::new(ErrorCode::WrongFormat, "").with_detail(rejection.body_text()))
}

/// The body deadline (`conn::body_deadline`) behind a failed body read, if it was that.
fn timed_out(rejection: &axum::extract::rejection::BytesRejection) -> Option<&crate::conn::BodyTimedOut> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(rejection);
    while let Some(error) = source {
        if let Some(timed_out) = error.downcast_ref::<crate::conn::BodyTimedOut>() {
            return Some(timed_out);
        }
        source = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(error: ApiError) -> (u16, serde_json::Value) {
        let response = error.into_response();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_storage_failure_is_400_internal_503_and_corrupt_data_500() {
        let (status, body) = answer(ApiError::Store(tir_store::StoreError::Closed)).await;
        assert_eq!((status, &body["error"]["code"], &body["error"]["class"]), (503, &400.into(), &"internal".into()));
        assert!(body["error"].get("detail").is_none(), "details stay in the log: {body}");
        let (status, body) = answer(ApiError::Store(tir_store::StoreError::Corrupt("row 7".into()))).await;
        assert_eq!((status, &body["error"]["code"]), (500, &400.into()));
    }

    #[tokio::test]
    async fn too_many_requests_is_429_code_386_functional_with_retry_after() {
        let response = ApiError::TooManyRequests { retry_after: 0, detail: "the limit".into() }.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1", "at least 1 s");
        let (status, body) = answer(ApiError::TooManyRequests { retry_after: 7, detail: "the limit".into() }).await;
        assert_eq!(status, 429);
        let e = &body["error"];
        assert_eq!(
            (&e["code"], &e["class"], &e["pointer"], &e["detail"]),
            (&386.into(), &"functional".into(), &"".into(), &"the limit".into())
        );
    }
}
