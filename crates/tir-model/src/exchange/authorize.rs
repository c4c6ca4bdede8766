//! Who may send a message on a guarantee, and from which office.

use super::Registry;
use crate::declaration::Declaration;
use crate::error::{ErrorCode, EtirError, fail};
use crate::guarantee::Guarantee;
use crate::ids::{OfficeCode, TirId};
use crate::message::{Message, Request};
use crate::party::{HolderStatus, Office, OfficeRole, Party};

/// The sender's rights on this guarantee; for customs, the acting office.
pub(super) fn authorize<'r>(
    registry: &'r impl Registry,
    sender: &Party,
    request: &Request,
    guarantee: &Guarantee,
) -> Result<Option<&'r Office>, EtirError> {
    match sender {
        Party::Admin => fail(ErrorCode::PartyNotAuthorized, "/type"),
        Party::GuaranteeChain { id } if &guarantee.chain != id => {
            fail(ErrorCode::ChainMismatch, "/guarantee_reference")
        }
        Party::GuaranteeChain { .. } => Ok(None),
        Party::Holder { tir_id, .. } => {
            if &guarantee.holder != tir_id {
                return fail(ErrorCode::HolderMismatch, "/guarantee_reference");
            }
            check_holder_record(registry, tir_id, "/guarantee_reference")?;
            Ok(None)
        }
        Party::Customs { country, .. } => {
            let code = acting_office(&request.message).expect("every customs message names its office");
            let Some(office) = registry.office(code) else {
                return fail(ErrorCode::OfficeNotFound, "/office");
            };
            if office.country != *country {
                return fail(ErrorCode::PartyNotAuthorized, "/office");
            }
            // Without advance data, an I7 carrying its own declaration is judged by that
            // declaration; an I1 by nothing yet (a declaration lodged nationally).
            let declaration = match (&request.message, guarantee.current_declaration()) {
                (Message::RecordDeclaration { declaration: Some(given), .. }, None) => Some(given),
                (_, current) => current,
            };
            let Some(declaration) = declaration else {
                // I1 and I7 come first from the customs of a declaration lodged nationally;
                // I7 itself answers 201 or 307.
                return match &request.message {
                    Message::AcceptGuarantee { .. } | Message::RecordDeclaration { .. } => Ok(Some(office)),
                    _ => fail(ErrorCode::DeclarationNotRecorded, "/guarantee_reference"),
                };
            };
            if !declaration.itinerary.contains(country) {
                return fail(ErrorCode::PartyNotAuthorized, "/guarantee_reference");
            }
            Ok(Some(office))
        }
    }
}

fn acting_office(message: &Message) -> Option<&OfficeCode> {
    match message {
        Message::AcceptGuarantee { office }
        | Message::RecordDeclaration { office, .. }
        | Message::StartOperation { office, .. }
        | Message::TerminateOperation { office, .. }
        | Message::DischargeOperation { office }
        | Message::RefuseStart { office, .. }
        | Message::RecordIncident { office, .. } => Some(office),
        Message::RegisterGuarantee { .. }
        | Message::CancelGuarantee { .. }
        | Message::AdvanceData { .. }
        | Message::AdvanceAmendment { .. }
        | Message::AdvanceCancellation { .. } => None,
    }
}

/// 322 unless the holder is in the ITDB, 321 if withdrawn from the TIR procedure.
pub(super) fn check_holder_record(registry: &impl Registry, tir_id: &TirId, pointer: &str) -> Result<(), EtirError> {
    match registry.holder(tir_id) {
        None => fail(ErrorCode::HolderNotFound, pointer),
        Some(record) if record.status == HolderStatus::Withdrawn => fail(ErrorCode::HolderNotAuthorized, pointer),
        Some(_) => Ok(()),
    }
}

fn not_authorized(office: &Office, why: &str) -> EtirError {
    EtirError::new(ErrorCode::PartyNotAuthorized, "/office").with_detail(format!("office {}: {why}", office.code))
}

/// The acting office must be a departure office of `declaration` in the
/// territory of its first operation.
pub(super) fn check_first_departure_office(office: &Office, declaration: &Declaration) -> Result<(), EtirError> {
    if !office.has_role(OfficeRole::Departure) || !declaration.declares(&office.code, OfficeRole::Departure) {
        return Err(not_authorized(office, "not a departure office of the declaration"));
    }
    let first = declaration.operations().into_iter().next().expect("a declaration plans two operations at least");
    if !first.countries().contains(&office.country) {
        return Err(not_authorized(office, "a departure office of a later operation, not of the first"));
    }
    Ok(())
}

/// 380 unless `office` is registered in one of the `allowed` roles or
/// declared in `declared_role`.
pub(super) fn check_office_role(
    office: &Office,
    allowed: &[OfficeRole],
    declaration: &Declaration,
    declared_role: OfficeRole,
) -> Result<(), EtirError> {
    if allowed.iter().any(|role| office.has_role(*role)) || declaration.declares(&office.code, declared_role) {
        return Ok(());
    }
    let roles = allowed.iter().map(|role| format!("an office of {}", role.as_str())).collect::<Vec<_>>();
    let why = match roles.is_empty() {
        true => format!("only a declared office of {} may do this", declared_role.as_str()),
        false => format!("neither {} nor a declared office of {}", roles.join(" or "), declared_role.as_str()),
    };
    Err(not_authorized(office, &why))
}
