//! Risk routes beyond the profiles (docs/risk.md): a transport's assessments,
//! inspection outcomes, the statistics per profile version, model and random
//! share, a profile's preview, the offices' policies and the stored models.
//! Customs only (403/380 for every other party), and only their own
//! administration's records.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use tir_model::limits::{AMOUNT_MAX, TEXT_CHARS_MAX};
use tir_model::wire::{Obj, parse_at};
use tir_model::{Country, ErrorCode, EtirError, GuaranteeRef, OfficeCode, Timestamp};
use tir_risk::policy::PolicyConfig;
use tir_risk::records::{AssessmentRecord, InspectionResult, Outcome, PolicyRecord};
use tir_risk::rules::{Lane, preview};
use utoipa::ToSchema;

use crate::App;
use crate::auth::Customs;
use crate::error::{ApiError, json_body, json_response};
use crate::openapi::ErrorBody;
use crate::queries::{guarantee_readable_by, path_rejection};
use crate::risk::own_office;

/// Findings one inspection result may list.
pub(crate) const FINDINGS_MAX: usize = 50;
/// The most stored transports a preview replays.
pub(crate) const PREVIEW_LAST_MAX: usize = 10_000;
const PREVIEW_LAST_DEFAULT: usize = 1_000;

/// An assessment as its administration's customs read it (the context it was
/// made on stays in the store, for previews and training).
pub(crate) fn assessment_view(r: &AssessmentRecord) -> Value {
    let a = &r.assessment;
    json!({
        "guarantee_reference": r.guarantee,
        "operation": a.operation,
        "office": a.office,
        "trigger": r.trigger.as_str(),
        "declaration_version": r.declaration_version,
        "lane": a.lane.as_str(),
        "score": a.score,
        "reasons": a.reasons,
        "selected_by": a.selected_by.to_string(),
        "model_version": a.model_version,
        "profile_versions": a.profile_versions,
        "matched_profiles": a.matched_profiles,
        "rule_errors": a.rule_errors,
        "assessed_at": a.assessed_at.to_rfc3339(),
    })
}

/// The guarantee `raw` names, if it exists and the customs' country is on its
/// itinerary (or accepted it): the check every party's guarantee reads make.
async fn guarantee_of(
    app: &App,
    customs: &Customs,
    raw: &str,
    pointer: &str,
) -> Result<tir_model::guarantee::Guarantee, ApiError> {
    let party = tir_model::party::Party::Customs { id: customs.id.clone(), country: customs.country };
    guarantee_readable_by(app, &party, raw, pointer).await
}

#[utoipa::path(get, path = "/v1/risk/assessments/{reference}", tag = "risk",
    params(("reference" = GuaranteeRef, Path, description = "Guarantee reference, e.g. XH25000001")),
    responses(
        (status = 200, description = "The caller's administration's assessments of this transport, oldest first (empty until its customs are told of it)", body = AssessmentList),
        (status = 400, description = "Codes 105, 106: a malformed reference", body = ErrorBody),
        (status = 403, description = "Code 380: not customs, or customs of a country off this transport's itinerary", body = ErrorBody),
        (status = 404, description = "Code 301: no such guarantee", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn assessments(
    State(app): State<App>,
    customs: Customs,
    reference: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = reference.map_err(|r| path_rejection("/reference", r))?;
    let guarantee = guarantee_of(&app, &customs, &raw, "/reference").await?;
    let records = app.store.assessments(customs.country, guarantee.reference.as_str()).await?;
    let items: Vec<Value> = records.iter().map(assessment_view).collect();
    Ok(json_response(200, json!({ "items": items }).to_string()))
}

#[utoipa::path(post, path = "/v1/risk/results", tag = "risk",
    request_body = ResultBody,
    responses(
        (status = 201, description = "The inspection outcome, recorded and journaled", body = ResultView),
        (status = 200, description = "It replaces the outcome recorded earlier for this transport at this office", body = ResultView),
        (status = 400, description = "Codes 100, 101, 102, 105, 106, 107; 180: an office of another country, or a revenue below 0", body = ErrorBody),
        (status = 403, description = "Code 380: not customs, or customs of a country off this transport's itinerary", body = ErrorBody),
        (status = 404, description = "Code 301: no such guarantee", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn record_result(
    State(app): State<App>,
    customs: Customs,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_body(&headers, body)?;
    let obj = Obj::new(&value, "")?;
    let raw_reference = obj.str("guarantee_reference")?.to_owned();
    let office = obj.parse("office", OfficeCode::parse)?;
    let outcome = match obj.str("outcome")? {
        "compliant" => Outcome::Compliant,
        "irregularity" => Outcome::Irregularity,
        _ => return Err(ApiError::code(ErrorCode::InvalidDomain, "/outcome")),
    };
    let revenue = match obj.get("revenue") {
        None | Some(Value::Null) => 0.0,
        Some(v) => match v.as_f64() {
            Some(r) if r.is_finite() && (0.0..=AMOUNT_MAX).contains(&r) => r,
            Some(_) => {
                return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, "/revenue")
                    .with_detail(format!("EUR from 0 to {AMOUNT_MAX}"))
                    .into());
            }
            None => return Err(ApiError::code(ErrorCode::WrongFormat, "/revenue")),
        },
    };
    let findings = obj.texts_opt("findings", FINDINGS_MAX, TEXT_CHARS_MAX)?.unwrap_or_default();
    let notes = obj.text_opt("notes", TEXT_CHARS_MAX)?.unwrap_or_default();
    obj.finish()?;
    let office = own_office(office, customs.country, "/office")?;
    let guarantee = guarantee_of(&app, &customs, &raw_reference, "/guarantee_reference").await?;
    let result = InspectionResult {
        administration: customs.country,
        guarantee: guarantee.reference.as_str().to_owned(),
        office: office.as_str().to_owned(),
        outcome,
        revenue,
        findings,
        notes,
        recorded_by: customs.id,
        // The writer stamps its own time.
        recorded_at: Timestamp::from_unix_ms(0),
    };
    let reply = app.store.put_result(result).await?;
    Ok(json_response(reply.status, reply.body))
}

#[utoipa::path(get, path = "/v1/risk/stats", tag = "risk",
    responses(
        (status = 200, description = "By ISO week and by what selected (each profile version, each model version, random, none): assessments, inspections, irregularities found, hit rate, revenue and revenue per inspection", body = Object),
        (status = 403, description = "Not customs: code 380", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn stats(State(app): State<App>, customs: Customs) -> Result<Response, ApiError> {
    // The sums the writer keeps per day and selector, not every assessment (`Store::risk_tallies`).
    let stats = app.store.risk_stats(customs.country).await?;
    let body = serde_json::to_string(&stats).expect("stats serialize");
    Ok(json_response(200, body))
}

#[utoipa::path(post, path = "/v1/risk/profiles/preview", tag = "risk",
    request_body = PreviewBody,
    responses(
        (status = 200, description = "How many of the administration's last N assessed transports (operations) the expression matches, before any selection percentage", body = PreviewView),
        (status = 400, description = "Codes 100, 101, 106 (an expression that does not compile: at /expression, with `position`), 107, 180 (last outside 1-10000)", body = ErrorBody),
        (status = 403, description = "Not customs: code 380", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn preview_profile(
    State(app): State<App>,
    customs: Customs,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_body(&headers, body)?;
    let obj = Obj::new(&value, "")?;
    let expression = obj.str("expression")?.to_owned();
    let last = match obj.get("last") {
        None | Some(Value::Null) => PREVIEW_LAST_DEFAULT,
        Some(_) => obj.positive_i64("last", PREVIEW_LAST_MAX as i64)? as usize,
    };
    obj.finish()?;
    let records = app.store.recent_assessments(customs.country, None, last).await?;
    let contexts: Vec<_> = records.into_iter().map(|r| r.context).collect();
    let outcome = tokio::task::spawn_blocking(move || preview(&expression, &contexts)).await.map_err(join_failed)?;
    match outcome {
        Ok(p) => Ok(json_response(
            200,
            json!({"evaluated": p.evaluated, "matched": p.matched, "errors": p.errors, "error_samples": p.error_samples})
                .to_string(),
        )),
        Err(e) => Ok(crate::risk::expression_refused(&e)),
    }
}

/// A computation that panicked: logged, 500 to the caller.
fn join_failed(e: tokio::task::JoinError) -> ApiError {
    tracing::error!(error = %e, "risk computation failed");
    ApiError::Etir(EtirError::new(ErrorCode::Internal, "").with_status(500))
}

/// The policy's JSON as answered and read.
fn policy_view(p: &PolicyRecord) -> Value {
    json!({
        "office": p.office.clone().unwrap_or_else(|| "*".to_owned()),
        "config": p.config,
        "author": p.author,
        "updated_at": p.updated_at.to_rfc3339(),
    })
}

#[utoipa::path(get, path = "/v1/risk/policies", tag = "risk",
    responses(
        (status = 200, description = "The selection policy of each office that has one, and the administration's default (office \"*\"); offices without either use the built-in default, shown as `default`", body = Object),
        (status = 403, description = "Not customs: code 380", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_policies(State(app): State<App>, customs: Customs) -> Result<Response, ApiError> {
    let items: Vec<Value> = app.store.policies(customs.country).await?.iter().map(policy_view).collect();
    Ok(json_response(200, json!({ "items": items, "default": PolicyConfig::default() }).to_string()))
}

#[utoipa::path(put, path = "/v1/risk/policies/{office}", tag = "risk",
    params(("office" = String, Path, description = "An office of the caller's administration, or * for every office without its own policy")),
    request_body = PolicyBody,
    responses(
        (status = 200, description = "The office's policy, in force for assessments from now on", body = Object),
        (status = 400, description = "Codes 102, 105, 106, 107; 180: shares that cannot all hold (see docs/risk.md), or an office of another country", body = ErrorBody),
        (status = 403, description = "Not customs: code 380", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn put_policy(
    State(app): State<App>,
    customs: Customs,
    office: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = office.map_err(|r| path_rejection("/office", r))?;
    let office = if raw == "*" {
        None
    } else {
        let code = own_office(parse_at(&raw, "/office", OfficeCode::parse)?, customs.country, "/office")?;
        Some(code.as_str().to_owned())
    };
    let value = json_body(&headers, body)?;
    let config = read_policy(&value)?;
    let record = PolicyRecord {
        administration: customs.country,
        office,
        config,
        author: customs.id,
        updated_at: Timestamp::from_unix_ms(0),
    };
    let reply = app.store.put_policy(record).await?;
    Ok(json_response(reply.status, reply.body))
}

/// Reads a policy field by field; absent fields keep their defaults.
fn read_policy(value: &Value) -> Result<PolicyConfig, ApiError> {
    let obj = Obj::new(value, "")?;
    let mut config = PolicyConfig::default();
    let share = |key: &str, into: &mut f64| -> Result<(), ApiError> {
        match obj.get(key) {
            None => Ok(()),
            Some(v) => match v.as_f64() {
                Some(s) if (0.0..=1.0).contains(&s) => {
                    *into = s;
                    Ok(())
                }
                Some(_) => Err(EtirError::new(ErrorCode::DeclarationRuleBroken, format!("/{key}"))
                    .with_detail("a share from 0 to 1")
                    .into()),
                None => Err(ApiError::code(ErrorCode::WrongFormat, &format!("/{key}"))),
            },
        }
    };
    share("red_share", &mut config.red_share)?;
    share("yellow_share", &mut config.yellow_share)?;
    share("exploration_share", &mut config.exploration_share)?;
    share("cold_red_threshold", &mut config.cold_red_threshold)?;
    share("cold_yellow_threshold", &mut config.cold_yellow_threshold)?;
    if let Some(lane) = obj.str_opt("exploration_lane")? {
        config.exploration_lane = match lane {
            "yellow" => Lane::Yellow,
            "red" => Lane::Red,
            "green" => {
                return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, "/exploration_lane")
                    .with_detail("a random selection is inspected: yellow or red")
                    .into());
            }
            _ => return Err(ApiError::code(ErrorCode::InvalidDomain, "/exploration_lane")),
        };
    }
    if obj.get("window").is_some() {
        config.window = obj.positive_i64("window", 100_000)? as usize;
    }
    if obj.get("warmup").is_some() {
        config.warmup = obj.positive_i64("warmup", 100_000)? as usize;
    }
    obj.finish()?;
    config
        .check()
        .map_err(|why| ApiError::Etir(EtirError::new(ErrorCode::DeclarationRuleBroken, "").with_detail(why)))?;
    Ok(config)
}

#[utoipa::path(get, path = "/v1/risk/models", tag = "risk",
    responses(
        (status = 200, description = "The administration's trained models, newest first (the newest scores): version, when and by whom trained, rows and irregularities trained on", body = Object),
        (status = 403, description = "Not customs: code 380", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_models(State(app): State<App>, customs: Customs) -> Result<Response, ApiError> {
    let items: Vec<Value> = app
        .store
        .models(customs.country)
        .await?
        .iter()
        .map(|m| {
            json!({"version": m.version, "trained_at": m.trained_at.to_rfc3339(), "trained_by": m.trained_by,
                   "rows_trained": m.rows_trained, "irregular_trained": m.irregular_trained})
        })
        .collect();
    Ok(json_response(200, json!({ "items": items }).to_string()))
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by `assessment_view`
pub struct AssessmentView {
    guarantee_reference: String,
    /// The operation's sequence (1, 2, ...).
    operation: u16,
    /// The office of the administration where the truck is expected.
    office: String,
    /// advance_data, advance_data_amended, declaration_recorded or amendment_accepted.
    trigger: String,
    declaration_version: u32,
    /// green, yellow or red.
    lane: String,
    /// The model's probability of an irregularity, when a model scored it.
    score: Option<f64>,
    /// For the officer, the deciding one first.
    reasons: Vec<String>,
    /// rule:<id>@<version>, model@<version>, random or none.
    selected_by: String,
    model_version: Option<String>,
    profile_versions: Vec<String>,
    matched_profiles: Vec<String>,
    rule_errors: Vec<String>,
    /// RFC 3339, UTC.
    assessed_at: String,
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by `assessments`
pub struct AssessmentList {
    items: Vec<AssessmentView>,
}

/// The body of `POST /v1/risk/results`, read field by field; this type describes it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ResultBody {
    guarantee_reference: GuaranteeRef,
    /// The office of the caller's administration that inspected.
    office: OfficeCode,
    /// compliant or irregularity.
    outcome: String,
    /// Recovered, in EUR (absent: 0).
    #[schema(required = false, minimum = 0)]
    revenue: Option<f64>,
    #[schema(required = false)]
    findings: Option<Vec<String>>,
    #[schema(required = false)]
    notes: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes JSON made by the store
pub struct ResultView {
    administration: Country,
    guarantee: String,
    office: String,
    outcome: String,
    revenue: f64,
    findings: Vec<String>,
    notes: String,
    recorded_by: String,
    /// RFC 3339, UTC.
    recorded_at: String,
}

/// The body of `POST /v1/risk/profiles/preview`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PreviewBody {
    expression: String,
    /// How many of the latest assessed transports to replay (default 1000, at most 10000).
    #[schema(required = false, minimum = 1, maximum = 10000)]
    last: Option<u32>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PreviewView {
    evaluated: u64,
    matched: u64,
    errors: u64,
    error_samples: Vec<String>,
}

/// The body of `PUT /v1/risk/policies/{office}`: every field optional, defaults as in docs/risk.md.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PolicyBody {
    #[schema(required = false, minimum = 0, maximum = 1)]
    red_share: Option<f64>,
    #[schema(required = false, minimum = 0, maximum = 1)]
    yellow_share: Option<f64>,
    #[schema(required = false, minimum = 0, maximum = 1)]
    exploration_share: Option<f64>,
    /// yellow or red.
    #[schema(required = false)]
    exploration_lane: Option<String>,
    #[schema(required = false, minimum = 1, maximum = 100000)]
    window: Option<u32>,
    #[schema(required = false, minimum = 1, maximum = 100000)]
    warmup: Option<u32>,
    #[schema(required = false, minimum = 0, maximum = 1)]
    cold_red_threshold: Option<f64>,
    #[schema(required = false, minimum = 0, maximum = 1)]
    cold_yellow_threshold: Option<f64>,
}

/// `POST /v1/risk/results` for a front end in this process (the console):
/// the same rate limit, checks, codes and store write as over HTTP, for a
/// party the caller has authenticated. Answers the status and the body.
pub async fn submit_result(app: &App, sender: tir_model::party::Party, body: Bytes) -> (u16, String) {
    let answer = async {
        app.limiter.admit(&sender)?;
        let tir_model::party::Party::Customs { id, country } = sender else {
            return Err(ApiError::code(ErrorCode::PartyNotAuthorized, ""));
        };
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
        record_result(State(app.clone()), Customs { id, country }, headers, Ok(body)).await
    };
    let response = answer.await.unwrap_or_else(axum::response::IntoResponse::into_response);
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), tir_model::limits::BODY_BYTES_MAX).await.unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}
