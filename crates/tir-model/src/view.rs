//! The JSON views of the contract (E5/I5, I3, I19, the response messages, the
//! E7/I15/E9 notification payloads): every JSON text tirhub sends is made here.
//! Serialized straight from borrowed structs: these are built for every
//! message inside the store's write transaction, so they avoid `Value` trees.

use serde::Serialize;
use serde_json::Value;

use crate::declaration::{Declaration, Vehicle};
use crate::guarantee::{Finding, Guarantee, Operation};
use crate::message::Request;
use crate::party::{HolderRecord, Office};

/// One TIR operation: the transport's passage through one TIR territory.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationView<'a> {
    sequence: u16,
    /// `EU` for the European Union, else the country's code.
    territory: &'a str,
    countries: Vec<&'a str>,
    /// The customs' own reference, given when they started it.
    operation_id: Option<&'a str>,
    state: &'a str,
    /// The office that last acted on it.
    office: Option<&'a str>,
    started_at: Option<String>,
    terminated_at: Option<String>,
    discharged_at: Option<String>,
    /// The office where it terminated.
    terminated_by: Option<&'a str>,
    /// The seals as customs found them at the start.
    seals: &'a [String],
    reservations: &'a [String],
    controls: Vec<ControlView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal_reason: Option<&'a str>,
    findings: Vec<FindingView<'a>>,
    incidents: Vec<IncidentView<'a>>,
    /// Messages customs recorded late on this operation after a fallback
    /// period (the times above are then when it happened at the office).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(required = false))]
    recorded_late: Vec<LateRecordView<'a>>,
}

/// A message recorded in fallback: when it happened at the office, when tirhub received it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LateRecordView<'a> {
    #[serde(rename = "type")]
    message_type: &'a str,
    occurred_at: String,
    received_at: String,
    /// The fallback period's id.
    period: &'a str,
}

/// A control customs made (`type`: documentary, seal_check, physical, scanner, sampling).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ControlView<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    /// satisfactory or irregularity.
    result: &'a str,
    remarks: Option<&'a str>,
    office: &'a str,
    at: String,
}

/// An incident en route (`kind`: seals_broken, transhipment, accident, goods_missing, other).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentView<'a> {
    kind: &'a str,
    description: &'a str,
    office: &'a str,
    at: String,
    new_vehicle: Option<&'a Vehicle>,
    new_seals: Option<&'a [String]>,
}

/// A difference customs reported on the operation (`kind`: `seals_differ`).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FindingView<'a> {
    kind: &'a str,
    office: &'a str,
    at: String,
    /// The seals recorded before the report.
    recorded: &'a [String],
    /// The seals reported, now the recorded ones.
    reported: &'a [String],
}

impl<'a> FindingView<'a> {
    fn new(finding: &'a Finding) -> Self {
        match finding {
            Finding::SealsDiffer { office, at, recorded, reported } => {
                FindingView { kind: "seals_differ", office: office.as_str(), at: at.to_rfc3339(), recorded, reported }
            }
        }
    }
}

impl<'a> OperationView<'a> {
    pub fn new(op: &'a Operation) -> Self {
        OperationView {
            sequence: op.sequence,
            territory: op.territory.as_str(),
            countries: op.countries.iter().map(|c| c.as_str()).collect(),
            operation_id: op.operation_id.as_ref().map(|id| id.as_str()),
            state: op.state.as_str(),
            office: op.office.as_ref().map(|o| o.as_str()),
            started_at: op.started_at.map(|t| t.to_rfc3339()),
            terminated_at: op.terminated_at.map(|t| t.to_rfc3339()),
            discharged_at: op.discharged_at.map(|t| t.to_rfc3339()),
            terminated_by: op.terminated_by.as_ref().map(|o| o.as_str()),
            seals: &op.seals,
            reservations: &op.reservations,
            controls: op
                .controls
                .iter()
                .map(|c| ControlView {
                    kind: c.kind.as_str(),
                    result: c.result.as_str(),
                    remarks: c.remarks.as_deref(),
                    office: c.office.as_str(),
                    at: c.at.to_rfc3339(),
                })
                .collect(),
            refusal_reason: op.refusal_reason.as_deref(),
            findings: op.findings.iter().map(FindingView::new).collect(),
            incidents: op
                .incidents
                .iter()
                .map(|i| IncidentView {
                    kind: i.kind.as_str(),
                    description: &i.description,
                    office: i.office.as_str(),
                    at: i.at.to_rfc3339(),
                    new_vehicle: i.new_vehicle.as_ref(),
                    new_seals: i.new_seals.as_deref(),
                })
                .collect(),
            recorded_late: op
                .recorded_late
                .iter()
                .map(|r| LateRecordView {
                    message_type: &r.message_type,
                    occurred_at: r.occurred_at.to_rfc3339(),
                    received_at: r.received_at.to_rfc3339(),
                    period: &r.period,
                })
                .collect(),
        }
    }
}

/// The amendment waiting for the customs of `country`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AmendmentView<'a> {
    country: &'a str,
    requested_at: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransportView<'a> {
    itinerary: Vec<&'a str>,
    /// none, advance, withdrawn, recorded or amendment_requested.
    declaration_state: &'a str,
    /// 0 for advance data (or none), then 1, 2, ... for each recorded version.
    declaration_version: u32,
    /// The declared vehicle, or the new one after a transhipment.
    vehicle: Option<&'a Vehicle>,
    /// The seals customs recorded, else the declared ones.
    seals: &'a [String],
    amendment: Option<AmendmentView<'a>>,
    operations: Vec<OperationView<'a>>,
}

impl<'a> TransportView<'a> {
    pub fn new(g: &'a Guarantee) -> Self {
        TransportView {
            itinerary: g.itinerary().iter().map(|c| c.as_str()).collect(),
            declaration_state: g.declaration_state().as_str(),
            declaration_version: g.declaration_version,
            vehicle: g.vehicle(),
            seals: g.seals(),
            amendment: g
                .amendment
                .as_ref()
                .map(|a| AmendmentView { country: a.country.as_str(), requested_at: a.requested_at.to_rfc3339() }),
            operations: g.operations.iter().map(OperationView::new).collect(),
        }
    }
}

#[derive(Serialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(description = "E5/I5: the guarantee and its transport")
)]
pub struct GuaranteeView<'a> {
    reference: &'a str,
    holder: &'a str,
    chain: &'a str,
    state: &'a str,
    valid_until: Option<String>,
    registered_at: String,
    accepted_by: Option<&'a str>,
    cancellation_reason: Option<&'a str>,
    transport: TransportView<'a>,
}

impl<'a> GuaranteeView<'a> {
    pub fn new(g: &'a Guarantee) -> Self {
        GuaranteeView {
            reference: g.reference.as_str(),
            holder: g.holder.as_str(),
            chain: &g.chain,
            state: g.state.as_str(),
            valid_until: g.valid_until.map(|d| d.to_string()),
            registered_at: g.registered_at.to_rfc3339(),
            accepted_by: g.accepted_by.as_ref().map(|o| o.as_str()),
            cancellation_reason: g.cancellation_reason.as_deref(),
            transport: TransportView::new(g),
        }
    }
}

/// The success response to a request message (E2, I10, ...).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponseView<'a> {
    message_id: &'a str,
    /// The response type: E2, E4, E10, E12, E14, I2, I8, I10, I12, I14, I18.
    #[serde(rename = "type")]
    kind: &'a str,
    /// The view of `GET /v1/guarantees/{reference}` (E5/I5), which holds the transport.
    guarantee: GuaranteeView<'a>,
}

fn to_text<T: Serialize>(view: &T) -> String {
    serde_json::to_string(view).expect("views serialize")
}

/// E5/I5: `GET /v1/guarantees/{reference}`.
pub fn guarantee_view(g: &Guarantee) -> String {
    to_text(&GuaranteeView::new(g))
}

/// The success response to a request message (E2, I10, ...).
pub fn response_view(request: &Request, g: &Guarantee) -> String {
    to_text(&ResponseView {
        message_id: request.message_id.as_str(),
        kind: request.kind.response(),
        guarantee: GuaranteeView::new(g),
    })
}

/// `GET /v1/guarantees/{reference}/declaration[?version=n]`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeclarationView<'a> {
    reference: &'a str,
    /// none, advance, withdrawn, recorded or amendment_requested.
    declaration_state: &'a str,
    /// This declaration's version: 0 for advance data.
    version: u32,
    /// The guarantee's current version.
    current_version: u32,
    declaration: &'a Declaration,
}

/// Version `version` of the declaration (the current one when `None`), or
/// `None` when there is no such version.
pub fn declaration_view(g: &Guarantee, version: Option<u32>) -> Option<String> {
    let current = match (&g.declaration, &g.advance) {
        (None, None) => return None,
        _ => g.declaration_version,
    };
    let version = version.unwrap_or(current);
    let declaration = g.declaration_at(version)?;
    Some(to_text(&DeclarationView {
        reference: g.reference.as_str(),
        declaration_state: g.declaration_state().as_str(),
        version,
        current_version: current,
        declaration,
    }))
}

/// I3: a holder as listed in the ITDB. Fields in key order, as the JSON has always had them.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HolderView<'a> {
    country: &'a str,
    name: &'a str,
    /// authorized or withdrawn.
    status: &'a str,
    tir_id: &'a str,
}

pub fn holder_view(h: &HolderRecord) -> Value {
    let view =
        HolderView { country: h.country.as_str(), name: &h.name, status: h.status.as_str(), tir_id: h.tir_id.as_str() };
    serde_json::to_value(view).expect("views serialize")
}

/// I19: a customs office. Fields in key order, as the JSON has always had them.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfficeView<'a> {
    code: &'a str,
    country: &'a str,
    name: &'a str,
    /// departure, destination, entry, exit.
    roles: Vec<&'a str>,
    unlocode: Option<&'a str>,
}

pub fn office_view(o: &Office) -> Value {
    let view = OfficeView {
        code: o.code.as_str(),
        country: o.country.as_str(),
        name: &o.name,
        roles: o.roles.iter().map(|r| r.as_str()).collect(),
        unlocode: o.unlocode.as_deref(),
    };
    serde_json::to_value(view).expect("views serialize")
}

// Notifications (E7, I15, E9, E11, E13): the JSON binding of the state
// machine's typed events. A sibling renderer can serve another binding.

use crate::exchange::Notification;

/// A notification's payload: the common fields, the declaration when the
/// event carries one, then the event's own fields.
#[derive(Serialize)]
struct NotificationView<'a> {
    event: &'a str,
    message_type: &'a str,
    guarantee_state: &'a str,
    at: String,
    office: Option<&'a str>,
    operation: Option<u16>,
    declaration_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    declaration: Option<&'a Declaration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    holder: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reported: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reservations: Option<&'a [String]>,
}

/// The payload of `notification`, the same for all its recipients; `g` is the
/// guarantee of the outcome that holds it (it has the declaration to carry).
pub fn notification_view(notification: &Notification, g: &Guarantee) -> String {
    use crate::exchange::{ChainEvent as Chain, CustomsEvent as Customs, NotificationEvent as Event};
    let event = &notification.event;
    let mut view = NotificationView {
        event: event.name(),
        message_type: notification.message_type.as_str(),
        guarantee_state: notification.guarantee_state.as_str(),
        at: notification.at.to_rfc3339(),
        office: notification.office.as_ref().map(|o| o.as_str()),
        operation: notification.operation,
        declaration_version: notification.declaration_version,
        declaration: event.declaration(g),
        changes: None,
        country: None,
        holder: None,
        kind: None,
        description: None,
        reason: None,
        recorded: None,
        reported: None,
        reservations: None,
    };
    match event {
        Event::Chain(Chain::GuaranteeAccepted | Chain::DeclarationRecorded | Chain::GuaranteeReleased)
        | Event::Customs(Customs::DeclarationRecorded) => {}
        Event::Chain(Chain::AmendmentAccepted { country, changes })
        | Event::Customs(Customs::DeclarationAmended { country, changes }) => {
            view.country = Some(country.as_str());
            view.changes = Some(changes);
        }
        Event::Customs(Customs::AmendmentRequested { country })
        | Event::Chain(Chain::OperationStarted { country } | Chain::OperationDischarged { country }) => {
            view.country = Some(country.as_str());
        }
        Event::Chain(Chain::OperationTerminated { country, reservations })
        | Event::Customs(Customs::PreviousOperationTerminated { country, reservations }) => {
            view.country = Some(country.as_str());
            view.reservations = Some(reservations);
        }
        Event::Chain(Chain::OperationRefused { country, reason })
        | Event::Customs(Customs::OperationRefused { country, reason }) => {
            view.country = Some(country.as_str());
            view.reason = Some(reason);
        }
        Event::Chain(Chain::SealFinding { country, recorded, reported }) => {
            view.country = Some(country.as_str());
            view.recorded = Some(recorded);
            view.reported = Some(reported);
        }
        Event::Chain(Chain::Incident { country, kind, description })
        | Event::Customs(Customs::Incident { country, kind, description }) => {
            view.country = Some(country.as_str());
            view.kind = Some(kind.as_str());
            view.description = Some(description);
        }
        Event::Customs(Customs::GuaranteeCancelled { reason }) | Event::AdvanceCancellation { reason } => {
            view.reason = Some(reason);
        }
        Event::AdvanceData { holder } | Event::AdvanceAmendment { holder } => view.holder = Some(holder.as_str()),
    }
    to_text(&view)
}
