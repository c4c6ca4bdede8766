//! One error type for the HTTP layer: every failure leaves as a coded contract error.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tir_model::{ErrorCode, EtirError};

#[derive(Debug)]
pub enum ApiError {
    Etir(EtirError),
    /// Logged with its detail; the client sees only code 400 (HTTP 503, or 500 for corrupt data).
    Store(tir_store::StoreError),
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

/// Maps a failed body read (over `BODY_BYTES_MAX`, or a broken stream) to a coded error.
pub fn body_rejection(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::Etir(
            EtirError::new(ErrorCode::WrongLength, "")
                .with_status(413)
                .with_detail(format!("at most {} bytes", tir_model::limits::BODY_BYTES_MAX)),
        );
    }
    ApiError::Etir(EtirError::new(ErrorCode::WrongFormat, "").with_detail(rejection.body_text()))
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
}
