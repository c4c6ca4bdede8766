//! The OpenAPI document, generated from the handlers' annotations. The
//! schema types below exist only to describe the wire format: handlers parse
//! bodies field by field so that every failure has its contract code.
#![allow(dead_code)]

use axum::response::Response;
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::json_response;

#[derive(OpenApi)]
#[openapi(
    info(title = "tirhub eTIR exchange", description = "The eTIR international system over HTTP+JSON (binding v1)."),
    paths(
        crate::queries::health,
        serve,
        crate::messages::submit,
        crate::queries::guarantee,
        crate::queries::declaration,
        crate::queries::timeline,
        crate::queries::holder,
        crate::queries::office,
        crate::queries::notifications,
        crate::admin::create_party,
        crate::admin::revoke_party,
        crate::admin::create_office,
        crate::admin::put_holder,
        crate::admin::verify_journal,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "messages", description = "State-changing eTIR messages, idempotent by message_id"),
        (name = "queries", description = "E5/I5, I3, I19 and the E7/I15 notification feed"),
        (name = "admin", description = "Parties, offices, the holder registry, the journal"),
        (name = "operations", description = "Health and this document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        }
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This OpenAPI document")))]
pub async fn serve() -> Response {
    json_response(200, document().to_json().unwrap_or_else(|_| "{}".to_owned()))
}

/// `{"error": {...}}`
#[derive(ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// Contract error code, e.g. 211.
    code: u16,
    /// syntax, workflow, business, idempotency, authorization, not_found, internal.
    class: String,
    title: String,
    /// JSON pointer to the failing field.
    pointer: String,
    detail: Option<String>,
}

/// The message envelope; which fields beside the envelope apply depends on `type`.
#[derive(ToSchema)]
pub struct MessageRequest {
    /// Idempotency key, unique per sender (a UUID).
    message_id: String,
    /// E1, E3, E9, E11, E13, I1, I7, I9, I11, I13, I17.
    #[schema(rename = "type")]
    kind: String,
    guarantee_reference: String,
    /// E1: the holder's TIR id.
    holder: Option<String>,
    /// E1: last day the guarantee is valid (YYYY-MM-DD).
    valid_until: Option<String>,
    /// E3, E13, I17.
    reason: Option<String>,
    /// E9, E11 (required); I7 (optional: omitted = the advance data).
    declaration: Option<Declaration>,
    /// I1, I7, I9, I11, I13, I17: the acting customs office.
    office: Option<String>,
    /// I9: seals found, checked against the declaration.
    seals: Option<Vec<String>>,
    /// I11.
    reservations: Option<Vec<String>>,
}

#[derive(ToSchema)]
pub struct Declaration {
    /// Distinct ISO 3166-1 alpha-2 countries in order, the first being the country of departure.
    itinerary: Vec<String>,
    offices: Vec<DeclaredOffice>,
    vehicle: Option<Vehicle>,
    seals: Option<Vec<String>>,
    consignments: Vec<Consignment>,
}

#[derive(ToSchema)]
pub struct DeclaredOffice {
    code: String,
    /// departure, destination, entry, exit.
    role: String,
}

#[derive(ToSchema)]
pub struct Vehicle {
    registration: String,
    country: String,
}

#[derive(ToSchema)]
pub struct Trader {
    name: String,
    country: String,
}

#[derive(ToSchema)]
pub struct Consignment {
    consignor: Trader,
    consignee: Trader,
    goods: Vec<Goods>,
}

#[derive(ToSchema)]
pub struct Goods {
    /// A 6-digit HS 2022 subheading.
    hs_code: String,
    description: String,
    packages: Option<i64>,
    gross_mass_kg: f64,
    value: Option<Money>,
}

#[derive(ToSchema)]
pub struct Money {
    amount: f64,
    /// ISO 4217.
    currency: String,
}

#[derive(ToSchema)]
pub struct MessageResponse {
    message_id: String,
    /// The response type: E2, E4, E10, E12, E14, I2, I8, I10, I12, I14, I18.
    #[schema(rename = "type")]
    kind: String,
    guarantee: GuaranteeView,
    transport: TransportView,
}

#[derive(ToSchema)]
pub struct GuaranteeView {
    reference: String,
    holder: String,
    /// Party id of the guarantee chain.
    chain: String,
    /// registered, accepted, released, cancelled.
    state: String,
    valid_until: Option<String>,
    registered_at: String,
    accepted_by: Option<String>,
    cancellation_reason: Option<String>,
    transport: TransportView,
}

#[derive(ToSchema)]
pub struct TransportView {
    itinerary: Vec<String>,
    /// none, advance, recorded.
    declaration_state: String,
    operations: Vec<OperationView>,
}

#[derive(ToSchema)]
pub struct DeclarationBody {
    reference: String,
    /// none, advance, recorded.
    declaration_state: String,
    declaration: Option<Declaration>,
}

#[derive(ToSchema)]
pub struct OperationView {
    country: String,
    /// pending, started, terminated, discharged, refused.
    state: String,
    office: Option<String>,
    started_at: Option<String>,
    terminated_at: Option<String>,
    discharged_at: Option<String>,
    reservations: Vec<String>,
    refusal_reason: Option<String>,
}

#[derive(ToSchema)]
pub struct NotificationPage {
    items: Vec<NotificationItem>,
    /// Pass as `after` to read on.
    next: String,
}

#[derive(ToSchema)]
pub struct NotificationItem {
    cursor: String,
    /// E7 (to chains), I15 (to customs of later countries), E9/E11/E13 (advance data to customs of departure).
    #[schema(rename = "type")]
    kind: String,
    guarantee_reference: String,
    #[schema(value_type = Object)]
    payload: Value,
    created_at: String,
}

#[derive(ToSchema)]
pub struct NewPartyBody {
    /// customs, guarantee_chain or holder.
    kind: String,
    name: String,
    /// customs: ISO alpha-2.
    country: Option<String>,
    /// holder: TIR id.
    tir_id: Option<String>,
}

#[derive(ToSchema)]
pub struct PartyCreated {
    id: String,
    kind: String,
    name: String,
    /// Shown once; only its hash is stored.
    token: String,
    country: Option<String>,
    tir_id: Option<String>,
}

#[derive(ToSchema)]
pub struct PartyRevoked {
    id: String,
    kind: String,
    name: String,
    /// When it was first revoked (RFC 3339, UTC).
    revoked_at: String,
}

#[derive(ToSchema)]
pub struct OfficeBody {
    /// The country's alpha-2 and 6 letters or digits.
    code: String,
    country: String,
    name: String,
    /// departure, destination, entry, exit.
    roles: Vec<String>,
    unlocode: Option<String>,
}

#[derive(ToSchema)]
pub struct HolderBody {
    name: String,
    country: String,
    /// authorized or withdrawn.
    status: String,
}

#[derive(ToSchema)]
pub struct Holder {
    tir_id: String,
    name: String,
    country: String,
    status: String,
}

#[derive(ToSchema)]
pub struct JournalVerdict {
    ok: bool,
    entries: i64,
    /// Hex SHA-256 of the last entry.
    head: String,
    first_broken: Option<BrokenEntry>,
}

#[derive(ToSchema)]
pub struct BrokenEntry {
    seq: i64,
    reason: String,
}

#[derive(ToSchema)]
pub struct Health {
    status: String,
    backend: String,
}

#[derive(ToSchema)]
pub struct Timeline {
    reference: String,
    events: Vec<TimelineEvent>,
}

#[derive(ToSchema)]
pub struct TimelineEvent {
    at: String,
    /// The request message type (E1, I9, ...).
    #[schema(rename = "type")]
    kind: String,
    /// Party id of the sender.
    party: String,
    office: Option<String>,
    summary: String,
}
