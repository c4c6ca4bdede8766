//! The API's admin and risk-profile writes for another front end of the same
//! server (the console): the route's own handler runs for a party already
//! authenticated, after the same rate limit and party check its extractor
//! makes, so the checks, codes, journal entries and answers are the API's.
//! Like `submit_message`, each answers `(HTTP status, JSON body)`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tir_model::party::Party;

use crate::App;
use crate::auth::{Admin, Customs};
use crate::error::ApiError;

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

/// The `Customs` extractor's checks, for a party already authenticated.
fn customs(app: &App, party: Party) -> Result<Customs, ApiError> {
    Customs::admit(app, party)
}

/// The `Admin` extractor's checks, for a party already authenticated.
fn admin(app: &App, party: &Party) -> Result<Admin, ApiError> {
    Admin::admit(app, party)
}

async fn answer(response: Result<Response, ApiError>) -> (u16, String) {
    let response = response.unwrap_or_else(IntoResponse::into_response);
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), tir_model::limits::BODY_BYTES_MAX).await.unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// `POST /v1/risk/profiles` (`id` None) or `PUT /v1/risk/profiles/{id}`.
pub async fn put_profile(
    app: &App,
    party: Party,
    id: Option<String>,
    idempotency_key: Option<&str>,
    body: Bytes,
) -> (u16, String) {
    let response = async {
        let customs = customs(app, party)?;
        let state = State(app.clone());
        let mut headers = json_headers();
        if let Some(key) = idempotency_key.and_then(|k| HeaderValue::from_str(k).ok()) {
            headers.insert("idempotency-key", key);
        }
        match id {
            None => crate::risk::create_profile(state, customs, headers, Ok(body)).await,
            Some(id) => crate::risk::edit_profile(state, customs, Ok(Path(id)), headers, Ok(body)).await,
        }
    };
    answer(response.await).await
}

/// `POST /v1/risk/profiles/preview`.
pub async fn preview_profile(app: &App, party: Party, body: Bytes) -> (u16, String) {
    let response = async {
        let customs = customs(app, party)?;
        crate::assessments::preview_profile(State(app.clone()), customs, json_headers(), Ok(body)).await
    };
    answer(response.await).await
}

/// `POST /v1/admin/parties`: the answer holds the new party's token, shown once.
pub async fn create_party(app: &App, party: &Party, body: Bytes) -> (u16, String) {
    let response = async {
        let admin = admin(app, party)?;
        crate::admin::create_party(State(app.clone()), admin, json_headers(), Ok(body)).await
    };
    answer(response.await).await
}

/// `DELETE /v1/admin/parties/{id}`.
pub async fn revoke_party(app: &App, party: &Party, id: String) -> (u16, String) {
    let response = async {
        let admin = admin(app, party)?;
        crate::admin::revoke_party(State(app.clone()), admin, Ok(Path(id))).await
    };
    answer(response.await).await
}

/// `POST /v1/admin/offices`.
pub async fn create_office(app: &App, party: &Party, body: Bytes) -> (u16, String) {
    let response = async {
        let admin = admin(app, party)?;
        crate::admin::create_office(State(app.clone()), admin, json_headers(), Ok(body)).await
    };
    answer(response.await).await
}

/// `PUT /v1/admin/holders/{tir_id}`.
pub async fn put_holder(app: &App, party: &Party, tir_id: String, body: Bytes) -> (u16, String) {
    let response = async {
        let admin = admin(app, party)?;
        crate::admin::put_holder(State(app.clone()), admin, Ok(Path(tir_id)), json_headers(), Ok(body)).await
    };
    answer(response.await).await
}

/// `GET /v1/admin/journal/verify`: the verdict's JSON.
pub async fn verify_journal(app: &App, party: &Party) -> (u16, String) {
    let response = async {
        let admin = admin(app, party)?;
        crate::admin::verify_journal(State(app.clone()), admin).await
    };
    answer(response.await).await
}
