//! The JSON views of the contract (E5/I5, I3, I19, the response messages).

use serde_json::{Value, json};

use crate::guarantee::{Guarantee, Operation};
use crate::message::Request;
use crate::party::{HolderRecord, Office};

pub fn operation_view(op: &Operation) -> Value {
    let mut view = json!({
        "country": op.country.as_str(),
        "state": op.state.as_str(),
        "office": op.office.as_ref().map(|o| o.as_str()),
        "started_at": op.started_at.map(|t| t.to_rfc3339()),
        "terminated_at": op.terminated_at.map(|t| t.to_rfc3339()),
        "reservations": op.reservations,
    });
    if let Some(at) = op.discharged_at {
        view["discharged_at"] = json!(at.to_rfc3339());
    }
    if let Some(reason) = &op.refusal_reason {
        view["refusal_reason"] = json!(reason);
    }
    view
}

pub fn transport_view(g: &Guarantee) -> Value {
    json!({
        "itinerary": g.itinerary().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "declaration_state": g.declaration_state().as_str(),
        "operations": g.operations.iter().map(operation_view).collect::<Vec<_>>(),
        "declaration": g.current_declaration().map(|d| d.to_json()),
    })
}

pub fn guarantee_view(g: &Guarantee) -> Value {
    json!({
        "reference": g.reference.as_str(),
        "holder": g.holder.as_str(),
        "chain": g.chain,
        "state": g.state.as_str(),
        "valid_until": g.valid_until.map(|d| d.to_string()),
        "registered_at": g.registered_at.to_rfc3339(),
        "accepted_by": g.accepted_by.as_ref().map(|o| o.as_str()),
        "cancellation_reason": g.cancellation_reason,
        "transport": transport_view(g),
    })
}

/// The success response to a request message (E2, I10, ...).
pub fn response_view(request: &Request, g: &Guarantee) -> Value {
    json!({
        "message_id": request.message_id.as_str(),
        "type": request.kind.response(),
        "guarantee": guarantee_view(g),
        "transport": transport_view(g),
    })
}

pub fn holder_view(h: &HolderRecord) -> Value {
    json!({"tir_id": h.tir_id.as_str(), "name": h.name, "country": h.country.as_str(), "status": h.status.as_str()})
}

pub fn office_view(o: &Office) -> Value {
    json!({
        "code": o.code.as_str(),
        "country": o.country.as_str(),
        "name": o.name,
        "roles": o.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "unlocode": o.unlocode,
    })
}
