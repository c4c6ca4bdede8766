//! Admin routes: parties, the office list, the holder registry (ITDB), journal check.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use tir_model::limits::TEXT_CHARS_MAX;
use tir_model::party::{HolderRecord, HolderStatus, Office, OfficeRole, PartyKind};
use tir_model::view::{holder_view, office_view};
use tir_model::wire::{Obj, parse_at};
use tir_model::{Country, ErrorCode, EtirError, OfficeCode, TirId};
use tir_store::{NewParty, token};
use utoipa::ToSchema;

use crate::App;
use crate::auth::Admin;
use crate::error::{ApiError, json_body, json_response};
use crate::openapi::ErrorBody;
use crate::queries::path_rejection;

/// Roles an office may hold; more would be a mistake.
const OFFICE_ROLES_MAX: usize = 4;

#[utoipa::path(post, path = "/v1/admin/parties", tag = "admin",
    request_body = NewPartyBody,
    responses(
        (status = 201, description = "The party and its token, shown once", body = PartyCreated),
        (status = 400, description = "Codes 100, 101, 102, 105, 106, 107", body = ErrorBody),
        (status = 422, description = "Code 305: an unknown country", body = ErrorBody),
        (status = 403, description = "Not the admin: code 380", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_party(
    State(app): State<App>,
    _: Admin,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_body(&headers, body)?;
    let obj = Obj::new(&value, "")?;
    let kind_raw = obj.str("kind")?;
    let kind = PartyKind::parse(kind_raw)
        .filter(|k| *k != PartyKind::Admin)
        .ok_or_else(|| ApiError::code(ErrorCode::InvalidDomain, "/kind"))?;
    let name = obj.text("name", TEXT_CHARS_MAX)?;
    let (country, tir_id) = match kind {
        PartyKind::Customs => (Some(obj.parse("country", Country::parse)?), None),
        PartyKind::Holder => (None, Some(obj.parse("tir_id", TirId::parse)?)),
        _ => (None, None),
    };
    obj.finish()?;
    let prefix = match kind {
        PartyKind::Customs => "cus",
        PartyKind::GuaranteeChain => "gc",
        _ => "hol",
    };
    let id = format!("{prefix}_{}", token::random_hex(8));
    let secret = token::generate();
    let party = NewParty {
        id: id.clone(),
        kind,
        name: name.clone(),
        country,
        tir_id: tir_id.clone(),
        token_hash: token::hash(&secret),
    };
    app.store.create_party(party).await?;
    let created = PartyCreated {
        country: country.map(|c| c.as_str()),
        id,
        kind: kind.as_str(),
        name,
        tir_id: tir_id.as_ref().map(|t| t.as_str().to_owned()),
        token: secret,
    };
    Ok(json_response(201, serde_json::to_string(&created).expect("views serialize")))
}

/// The body of `POST /v1/admin/parties`, read field by field so that each
/// failure gets its code; this type describes it.
#[derive(ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(dead_code)] // describes the body `create_party` reads
enum NewPartyBody {
    Customs {
        #[schema(schema_with = tir_model::schema::text)]
        name: String,
        country: Country,
    },
    GuaranteeChain {
        #[schema(schema_with = tir_model::schema::text)]
        name: String,
    },
    Holder {
        #[schema(schema_with = tir_model::schema::text)]
        name: String,
        tir_id: TirId,
    },
}

/// Fields in key order, as the JSON has always had them.
#[derive(Serialize, ToSchema)]
struct PartyCreated {
    /// Customs: the country it acts for.
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'static str>,
    id: String,
    /// customs, guarantee_chain or holder.
    kind: &'static str,
    name: String,
    /// Holder: its TIR id.
    #[serde(skip_serializing_if = "Option::is_none")]
    tir_id: Option<String>,
    /// Shown once; only its hash is stored.
    token: String,
}

/// The answer to a revocation (made by the store, which journals it).
#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by tir-store
struct PartyRevoked {
    id: String,
    kind: String,
    name: String,
    /// When it was first revoked (RFC 3339, UTC).
    revoked_at: String,
}

/// Longest party id taken from a path (those made here are a prefix and 16 hex digits).
pub(crate) const PARTY_ID_CHARS_MAX: usize = 64;

#[utoipa::path(delete, path = "/v1/admin/parties/{id}", tag = "admin",
    params(("id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64,
        description = "The party's id, as its creation answered, e.g. cus_8f3a61c2d4b7e905")),
    responses(
        (status = 200, description = "The party, revoked (again: the same answer): its token no longer authenticates, at once on this server and within 5 s on others sharing the database", body = PartyRevoked),
        (status = 400, description = "Codes 105, 106", body = ErrorBody),
        (status = 403, description = "Not the admin: code 380", body = ErrorBody),
        (status = 404, description = "Code 381: no such party", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn revoke_party(
    State(app): State<App>,
    _: Admin,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|r| path_rejection("/id", r))?;
    check_party_id(&id)?;
    let reply = app.store.revoke_party(&id).await?;
    if reply.status == 200 {
        app.parties.forget(&id);
    }
    Ok(json_response(reply.status, reply.body))
}

/// Checks a party id taken from a path: 105 past `PARTY_ID_CHARS_MAX` or empty, 106 for another character.
fn check_party_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.chars().count() > PARTY_ID_CHARS_MAX {
        return Err(ApiError::code(ErrorCode::WrongLength, "/id"));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(ApiError::code(ErrorCode::WrongFormat, "/id"));
    }
    Ok(())
}

#[utoipa::path(put, path = "/v1/admin/parties/{id}/certificate", tag = "admin",
    params(("id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64,
        description = "The party's id, as its creation answered, e.g. cus_8f3a61c2d4b7e905")),
    request_body = CertificateBinding,
    responses(
        (status = 200, description = "The party's binding, as now stored (again: the same answer). A bound party's token then authenticates only over a TLS connection that presented that client certificate (`serve --client-ca`), at once on this server and within 5 s on others sharing the database; otherwise 401/390", body = PartyCertificate),
        (status = 400, description = "Codes 100, 101, 105, 106, 107", body = ErrorBody),
        (status = 403, description = "Not the admin: code 380", body = ErrorBody),
        (status = 404, description = "Code 381: no such party", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn bind_certificate(
    State(app): State<App>,
    _: Admin,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|r| path_rejection("/id", r))?;
    check_party_id(&id)?;
    let value = json_body(&headers, body)?;
    let obj = Obj::new(&value, "")?;
    // Required, and null to unbind: present as null is not missing.
    if value.get("certificate_sha256").is_none() {
        return Err(ApiError::code(ErrorCode::RequiredFieldMissing, "/certificate_sha256"));
    }
    let fingerprint = obj
        .str_opt("certificate_sha256")?
        .map(|raw| {
            crate::tls::normalize_certificate_sha256(raw).ok_or_else(|| {
                EtirError::new(ErrorCode::WrongFormat, "/certificate_sha256")
                    .with_detail("the SHA-256 of the certificate's DER: 64 hex digits (colons allowed)")
            })
        })
        .transpose()?;
    obj.finish()?;
    let reply = app.store.bind_certificate(&id, fingerprint.as_deref()).await?;
    if reply.status == 200 {
        app.parties.forget(&id);
    }
    Ok(json_response(reply.status, reply.body))
}

/// The body of `PUT /v1/admin/parties/{id}/certificate`; this type describes it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body `bind_certificate` reads
struct CertificateBinding {
    /// The SHA-256 of the client certificate's DER, 64 hex digits (either case, or with the colons
    /// `openssl x509 -fingerprint -sha256` prints); null unbinds the party.
    #[schema(schema_with = certificate_sha256_input, required = true)]
    certificate_sha256: Option<String>,
}

/// The answer to a binding (made by the store, which journals it as `PARTY_CERTIFICATE`).
#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by tir-store
struct PartyCertificate {
    id: String,
    kind: String,
    name: String,
    /// As stored: 64 lowercase hex digits; null: unbound.
    #[schema(required = true)]
    certificate_sha256: Option<String>,
}

fn certificate_sha256_input() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::String,
            utoipa::openapi::schema::Type::Null,
        ]))
        .pattern(Some("^([0-9A-Fa-f]{64}|[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31})$"))
        .build()
}

#[utoipa::path(post, path = "/v1/admin/offices", tag = "admin",
    request_body = NewOfficeBody,
    responses(
        (status = 201, description = "The office, created or replaced", body = tir_model::view::OfficeView<'static>),
        (status = 400, description = "Codes 100, 101, 102, 105, 106, 107, 180", body = ErrorBody),
        (status = 422, description = "Code 305: an unknown country, of the office or of its UN/LOCODE", body = ErrorBody),
        (status = 403, description = "Not the admin: code 380", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_office(
    State(app): State<App>,
    _: Admin,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_body(&headers, body)?;
    let obj = Obj::new(&value, "")?;
    let code = obj.parse("code", OfficeCode::parse)?;
    let country = obj.parse("country", Country::parse)?;
    let name = obj.text("name", TEXT_CHARS_MAX)?;
    let mut roles = Vec::new();
    for (pointer, role) in obj.array("roles", OFFICE_ROLES_MAX)? {
        let role = role
            .as_str()
            .and_then(OfficeRole::parse)
            .ok_or_else(|| ApiError::code(ErrorCode::InvalidDomain, &pointer))?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    if roles.is_empty() {
        return Err(ApiError::code(ErrorCode::RequiredFieldMissing, "/roles"));
    }
    let unlocode = obj.parse_opt("unlocode", parse_unlocode)?;
    obj.finish()?;
    if code.country() != country {
        return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, "/code")
            .with_detail("an office code starts with its country")
            .into());
    }
    // A UN/LOCODE starts with the alpha-2 code of its country (issue 14's finding).
    if let Some(locode) = &unlocode
        && !locode.starts_with(country.as_str())
    {
        return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, "/unlocode")
            .with_detail(format!("a UN/LOCODE of {country} starts with {country}"))
            .into());
    }
    let office = Office { code, country, name, roles, unlocode };
    let body = office_view(&office).to_string();
    app.store.put_office(office).await?;
    Ok(json_response(201, body))
}

/// The body of `POST /v1/admin/offices`, read field by field; this type describes it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body `create_office` reads
struct NewOfficeBody {
    /// Starts with `country`.
    code: OfficeCode,
    country: Country,
    #[schema(schema_with = tir_model::schema::text)]
    name: String,
    #[schema(schema_with = office_roles)]
    roles: Vec<String>,
    #[schema(schema_with = unlocode)]
    unlocode: Option<String>,
}

/// What `parse_unlocode` accepts (or null: no UN/LOCODE).
fn unlocode() -> utoipa::openapi::Object {
    let countries: Vec<&str> = tir_model::refdata::countries().iter().map(|c| c.alpha2).collect();
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::String,
            utoipa::openapi::schema::Type::Null,
        ]))
        .description(Some("UN/LOCODE: the country's alpha-2 and 3 of A-Z, 2-9"))
        .pattern(Some(format!("^({})[A-Z2-9]{{3}}$", countries.join("|"))))
        .build()
}

/// One to `OFFICE_ROLES_MAX` roles; a repeated one counts once.
fn office_roles() -> utoipa::openapi::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::RefOr::T(tir_model::schema::office_role()))
        .min_items(Some(1))
        .max_items(Some(OFFICE_ROLES_MAX))
        .build()
}

/// A UN/LOCODE: the country's alpha-2 and 3 letters or digits (`LTMDK`).
fn parse_unlocode(raw: &str) -> Result<String, tir_model::ParseError> {
    if raw.len() != 5 {
        return Err(tir_model::ParseError::Length);
    }
    let (country, place) = raw.split_at(2);
    Country::parse(country)?;
    if !place.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'9').contains(&b)) {
        return Err(tir_model::ParseError::Pattern);
    }
    Ok(raw.to_owned())
}

#[utoipa::path(put, path = "/v1/admin/holders/{tir_id}", tag = "admin",
    params(("tir_id" = TirId, Path, description = "TIR id, percent-encoded: LTU%2F012%2F345")),
    request_body = HolderBody,
    responses(
        (status = 200, description = "The holder as now listed in the ITDB", body = tir_model::view::HolderView<'static>),
        (status = 400, description = "Codes 100, 101, 102, 105, 106, 107", body = ErrorBody),
        (status = 422, description = "Code 305: an unknown country", body = ErrorBody),
        (status = 403, description = "Not the admin: code 380", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn put_holder(
    State(app): State<App>,
    _: Admin,
    tir_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = tir_id.map_err(|r| path_rejection("/tir_id", r))?;
    let tir_id = parse_at(&raw, "/tir_id", TirId::parse)?;
    let value = json_body(&headers, body)?;
    let obj = Obj::new(&value, "")?;
    let name = obj.text("name", TEXT_CHARS_MAX)?;
    let country = obj.parse("country", Country::parse)?;
    // The TIR ID's alpha-3 prefix is the country of the association that issued it.
    if country != tir_id.country() {
        let detail = format!("TIR ID {tir_id} is of {}, not {country}", tir_id.country());
        return Err(EtirError::new(ErrorCode::WrongFormat, "/country").with_detail(detail).into());
    }
    let status_raw = obj.str("status")?;
    let status = HolderStatus::parse(status_raw).ok_or_else(|| ApiError::code(ErrorCode::InvalidDomain, "/status"))?;
    obj.finish()?;
    let holder = HolderRecord { tir_id, name, country, status };
    let body = holder_view(&holder).to_string();
    app.store.put_holder(holder).await?;
    Ok(json_response(200, body))
}

/// The body of `PUT /v1/admin/holders/{tir_id}`, read field by field; this type describes it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body `put_holder` reads
struct HolderBody {
    #[schema(schema_with = tir_model::schema::text)]
    name: String,
    /// The country of the TIR id's alpha-3 prefix (code 106 otherwise).
    country: Country,
    #[schema(schema_with = holder_status)]
    status: String,
}

fn holder_status() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some([HolderStatus::Authorized, HolderStatus::Withdrawn].map(HolderStatus::as_str)))
        .build()
}

#[utoipa::path(get, path = "/v1/admin/journal/verify", tag = "admin",
    responses(
        (status = 200, description = "The recomputed hash chain", body = JournalVerdict<'static>),
        (status = 403, description = "Not the admin: code 380", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn verify_journal(State(app): State<App>, _: Admin) -> Result<Response, ApiError> {
    let verdict = app.store.verify_journal().await?;
    Ok(json_response(200, verdict_json(&verdict).to_string()))
}

/// Fields in key order, as the JSON has always had them.
#[derive(Serialize, ToSchema)]
pub struct JournalVerdict<'a> {
    entries: i64,
    first_broken: Option<BrokenEntry<'a>>,
    /// Hex SHA-256 of the last entry.
    head: &'a str,
    /// Holders' signed messages whose signature was verified (each under the
    /// holder's current key at that point of the chain); a bad one breaks the chain.
    holder_signatures: i64,
    ok: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BrokenEntry<'a> {
    reason: &'a str,
    seq: i64,
}

pub fn verdict_json(verdict: &tir_store::Verdict) -> Value {
    let view = JournalVerdict {
        entries: verdict.entries,
        first_broken: verdict.first_broken.as_ref().map(|(seq, reason)| BrokenEntry { reason, seq: *seq }),
        head: &verdict.head,
        holder_signatures: verdict.holder_signatures,
        ok: verdict.ok,
    };
    serde_json::to_value(view).expect("views serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlocodes_are_checked() {
        assert!(parse_unlocode("LTMDK").is_ok());
        assert_eq!(parse_unlocode("LTMD"), Err(tir_model::ParseError::Length));
        assert_eq!(parse_unlocode("LTmdk"), Err(tir_model::ParseError::Pattern));
        assert_eq!(parse_unlocode("QQMDK"), Err(tir_model::ParseError::UnknownCountry));
    }
}
