//! The OpenAPI document: built with the router from one list of routes
//! (`crate::router`), its schemas derived on the types that make the answers.
//! This module adds what every route shares: the bearer scheme, the answers of
//! the authentication, rate-limit and body layers, and the identifier schemas of tir-model.

use std::sync::OnceLock;

use axum::response::Response;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, OpenApi, Ref, ResponseBuilder, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::error::json_response;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "tirhub eTIR exchange", description = "The eTIR international system over HTTP+JSON (binding v2, in part: docs/architecture.md says which)."),
    tags(
        (name = "messages", description = "State-changing eTIR messages, idempotent by message_id"),
        (name = "queries", description = "E5/I5, I3, I19 and the E7/I15 notification feed"),
        (name = "admin", description = "Parties, offices, the holder registry, the journal"),
        (name = "risk", description = "Risk management (issue 12): rule profiles of one customs administration, confidential to it"),
        (name = "holders", description = "Holders' signing keys: a holder with one signs its E9, E11 and E13 (Tirhub-Holder-Signature)"),
        (name = "journal", description = "The signed journal head and the server's public keys: no token needed, so any party can keep heads and detect a rewritten history"),
        (name = "push", description = "Push notifications (E7/E8, I15/I16): the caller's feed POSTed to its endpoint, each item signed (Tirhub-Signature) and confirmed by a 2xx answer"),
        (name = "fallback", description = "The fallback procedure (TIR Convention, Annex 11, Art. 10): periods when customs work on paper and record afterwards, and their reconciliation"),
        (name = "operations", description = "Health and this document"),
    )
)]
pub(crate) struct ApiDoc;

/// `{"error": {...}}`: every refusal (made by `tir_model::EtirError::to_json`).
#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made elsewhere
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made elsewhere
pub struct ErrorDetail {
    /// Contract error code (Code List 99, tirhub's own in x80–x90), e.g. 211.
    code: u16,
    /// validation (1xx), workflow (2xx), functional (3xx), internal (4xx).
    class: String,
    title: String,
    /// JSON pointer to the failing field ("" for the request as a whole).
    pointer: String,
    #[schema(required = false)]
    detail: String,
    /// Only for an expression that does not compile (risk profiles, code 106 at /expression): where.
    #[schema(required = false)]
    position: ErrorPosition,
}

/// Where in an expression compiling failed, in characters.
#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by `risk::expression_refused`
pub struct ErrorPosition {
    /// From 1.
    line: usize,
    /// From 1.
    column: usize,
    /// From 0.
    offset: usize,
}

/// Adds to the routes' document what they share: the bearer scheme, the schemas
/// they refer to, and the answers no handler writes itself.
pub(crate) fn finish(mut openapi: OpenApi) -> OpenApi {
    {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.schemas.extend(tir_model::schema::components());
        components.schemas.insert(ErrorBody::name().into_owned(), ErrorBody::schema());
        components.schemas.insert(ErrorDetail::name().into_owned(), ErrorDetail::schema());
        components.schemas.insert(ErrorPosition::name().into_owned(), ErrorPosition::schema());
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete].into_iter().flatten() {
                add_shared_answers(operation);
            }
        }
    }
    openapi
}

fn error(description: &str) -> utoipa::openapi::Response {
    let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    ResponseBuilder::new().description(description).content("application/json", body).build()
}

/// 429/386, with the seconds to wait in `Retry-After`.
fn too_many_requests() -> utoipa::openapi::Response {
    let mut answer = error(
        "Code 386: this party's rate limit (a token bucket per party, its rate and burst set per kind of party); \
         retry after the seconds in Retry-After",
    );
    let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).build();
    let header =
        HeaderBuilder::new().schema(Some(seconds)).description(Some("Whole seconds to wait, at least 1")).build();
    answer.headers.insert("Retry-After".into(), header.into());
    answer
}

fn add_shared_answers(operation: &mut Operation) {
    let answers = &mut operation.responses.responses;
    if operation.security.is_some() {
        answers.entry("401".into()).or_insert_with(|| {
            error(
                "Code 390: no bearer token, an unknown one, or more than one Authorization header; \
                 or the token of a party bound to a client certificate without that certificate on the connection",
            )
            .into()
        });
        answers.entry("429".into()).or_insert_with(|| too_many_requests().into());
    }
    if operation.request_body.is_some() {
        let too_large = format!("Code 105: a body over {} bytes", tir_model::limits::BODY_BYTES_MAX);
        answers.entry("413".into()).or_insert_with(|| error(&too_large).into());
        let not_json =
            "Code 100: a Content-Type other than application/json (parameters allowed, a charset only UTF-8), or none";
        answers.entry("415".into()).or_insert_with(|| error(not_json).into());
    }
    answers.entry("500".into()).or_insert_with(|| error("Code 400: internal fault").into());
    answers.entry("503".into()).or_insert_with(|| error("Code 400: storage unavailable").into());
}

/// The document as served, made once when the first router is built (a
/// static, not a request extension: nothing is added to every request).
pub(crate) static DOCUMENT: OnceLock<String> = OnceLock::new();

#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This OpenAPI document", content_type = "application/json")))]
pub(crate) async fn serve() -> Response {
    let document = DOCUMENT.get_or_init(|| crate::document().to_json().expect("the OpenAPI document serializes"));
    json_response(200, document.clone())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use tir_model::limits::NOTIFICATION_PAGE_MAX;

    use crate::admin::PARTY_ID_CHARS_MAX;
    use crate::risk::PROFILE_ID_CHARS_MAX;

    fn parameter<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
        let parameters = doc["paths"][path][method]["parameters"].as_array().expect("parameters");
        &parameters.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no {name} in {path}"))["schema"]
    }

    /// Attributes take literals only: these bounds are written twice, so they are compared here.
    #[test]
    fn bounds_written_in_attributes_are_the_ones_the_handlers_apply() {
        let doc = serde_json::to_value(crate::document()).unwrap();
        let limit = parameter(&doc, "/v1/notifications", "get", "limit");
        assert_eq!(
            (limit["minimum"].as_u64(), limit["maximum"].as_u64()),
            (Some(1), Some(NOTIFICATION_PAGE_MAX as u64))
        );
        // The cursor: empty (the start) or a whole number the handler reads as an i64.
        let after = parameter(&doc, "/v1/notifications", "get", "after");
        assert_eq!(after["pattern"], "^(0|[1-9][0-9]{0,17})?$");
        let id = parameter(&doc, "/v1/admin/parties/{id}", "delete", "id");
        assert_eq!(id["maxLength"].as_u64(), Some(PARTY_ID_CHARS_MAX as u64));
        assert_eq!(id["pattern"], format!("^[A-Za-z0-9_-]{{1,{PARTY_ID_CHARS_MAX}}}$"));
        for (path, method) in [("/v1/messages", "post"), ("/v1/holders/{tir_id}/signing-key", "put")] {
            let signature = parameter(&doc, path, method, "Tirhub-Holder-Signature");
            assert!(signature["pattern"].as_str().is_some_and(|p| p.contains("ed25519")), "{path}: {signature}");
        }
        for method in ["get", "put"] {
            let id = parameter(&doc, "/v1/risk/profiles/{id}", method, "id");
            assert_eq!(id["maxLength"].as_u64(), Some(PROFILE_ID_CHARS_MAX as u64));
            assert_eq!(id["pattern"], format!("^[A-Za-z0-9_-]{{1,{PROFILE_ID_CHARS_MAX}}}$"));
        }
    }
}
