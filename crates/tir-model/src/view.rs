//! The JSON views of the contract (E5/I5, I3, I19, the response messages, the
//! E7/I15/E9 notification payloads): every JSON text tirhub sends is made here.
//! Serialized straight from borrowed structs: these are built for every
//! message inside the store's write transaction, so they avoid `Value` trees.

use serde::Serialize;
use serde_json::Value;

use crate::declaration::Declaration;
use crate::guarantee::{Finding, Guarantee, Operation};
use crate::message::Request;
use crate::party::{HolderRecord, Office};

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationView<'a> {
    country: &'a str,
    state: &'a str,
    office: Option<&'a str>,
    started_at: Option<String>,
    terminated_at: Option<String>,
    reservations: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    discharged_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal_reason: Option<&'a str>,
    findings: Vec<FindingView<'a>>,
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
            country: op.country.as_str(),
            state: op.state.as_str(),
            office: op.office.as_ref().map(|o| o.as_str()),
            started_at: op.started_at.map(|t| t.to_rfc3339()),
            terminated_at: op.terminated_at.map(|t| t.to_rfc3339()),
            reservations: &op.reservations,
            discharged_at: op.discharged_at.map(|t| t.to_rfc3339()),
            refusal_reason: op.refusal_reason.as_deref(),
            findings: op.findings.iter().map(FindingView::new).collect(),
        }
    }
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransportView<'a> {
    itinerary: Vec<&'a str>,
    declaration_state: &'a str,
    /// The seals customs recorded, else the declared ones.
    seals: &'a [String],
    operations: Vec<OperationView<'a>>,
}

impl<'a> TransportView<'a> {
    pub fn new(g: &'a Guarantee) -> Self {
        TransportView {
            itinerary: g.itinerary().iter().map(|c| c.as_str()).collect(),
            declaration_state: g.declaration_state().as_str(),
            seals: g.seals(),
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

/// The recorded declaration, else the advance data (`null` when neither).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeclarationView<'a> {
    reference: &'a str,
    /// none, advance, recorded.
    declaration_state: &'a str,
    declaration: Option<&'a Declaration>,
}

/// `GET /v1/guarantees/{reference}/declaration`: the recorded declaration, else the advance data.
pub fn declaration_view(g: &Guarantee) -> String {
    to_text(&DeclarationView {
        reference: g.reference.as_str(),
        declaration_state: g.declaration_state().as_str(),
        declaration: g.current_declaration(),
    })
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
/// event carries one, then the event's own fields (in name order, as the feeds
/// have always served them).
#[derive(Serialize)]
struct NotificationView<'a> {
    event: &'a str,
    message_type: &'a str,
    guarantee_state: &'a str,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    declaration: Option<&'a Declaration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    holder: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    office: Option<&'a str>,
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
        declaration: event.declaration(g),
        country: None,
        holder: None,
        office: None,
        reason: None,
        recorded: None,
        reported: None,
        reservations: None,
    };
    match event {
        Event::Chain(Chain::GuaranteeAccepted { office } | Chain::DeclarationRecorded { office })
        | Event::Customs(Customs::DeclarationRecorded { office }) => view.office = Some(office.as_str()),
        Event::Chain(Chain::OperationStarted { country, office } | Chain::OperationDischarged { country, office }) => {
            view.country = Some(country.as_str());
            view.office = Some(office.as_str());
        }
        Event::Chain(Chain::OperationTerminated { country, office, reservations })
        | Event::Customs(Customs::PreviousOperationTerminated { country, office, reservations }) => {
            view.country = Some(country.as_str());
            view.office = Some(office.as_str());
            view.reservations = Some(reservations);
        }
        Event::Chain(Chain::OperationRefused { country, office, reason }) => {
            view.country = Some(country.as_str());
            view.office = Some(office.as_str());
            view.reason = Some(reason);
        }
        Event::Chain(Chain::SealFinding { country, office, recorded, reported }) => {
            view.country = Some(country.as_str());
            view.office = Some(office.as_str());
            view.recorded = Some(recorded);
            view.reported = Some(reported);
        }
        Event::Chain(Chain::GuaranteeReleased) => {}
        Event::Customs(Customs::GuaranteeCancelled { reason }) | Event::AdvanceCancellation { reason } => {
            view.reason = Some(reason);
        }
        Event::AdvanceData { holder } | Event::AdvanceAmendment { holder } => view.holder = Some(holder.as_str()),
    }
    to_text(&view)
}
