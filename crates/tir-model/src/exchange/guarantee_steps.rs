//! The guarantee's own life: registration (E1), cancellation (E3),
//! acceptance (I1) and release after the last operation.

use super::authorize::{check_first_departure_office, check_holder_record};
use super::notify::{ChainEvent, CustomsEvent};
use super::{Outcome, Registry, Step};
use crate::error::{ErrorCode, EtirError, fail};
use crate::guarantee::{Guarantee, GuaranteeState};
use crate::ids::{Date, Timestamp, TirId};
use crate::message::Request;
use crate::party::{Office, OfficeRole, Party};

/// E1: a new guarantee, registered by the chain that sends it.
pub(super) fn register_guarantee(
    registry: &impl Registry,
    sender: &Party,
    request: &Request,
    holder: &TirId,
    valid_until: Option<Date>,
    now: Timestamp,
) -> Result<Outcome, EtirError> {
    check_holder_record(registry, holder, "/holder")?;
    let guarantee = Guarantee::registered(
        request.guarantee_reference.clone(),
        holder.clone(),
        sender.id().to_owned(),
        valid_until,
        now,
    );
    let mut step = Step::new(guarantee, sender, request, now);
    step.add_event(None, format!("guarantee registered for holder {holder}"));
    Ok(step.finish())
}

impl Step<'_> {
    pub(super) fn cancel_guarantee(&mut self, reason: &str) -> Result<(), EtirError> {
        match self.guarantee.state {
            GuaranteeState::Released => return fail(ErrorCode::GuaranteeNotCancellable, "/guarantee_reference"),
            GuaranteeState::Cancelled => return fail(ErrorCode::GuaranteeAlreadyCancelled, "/guarantee_reference"),
            GuaranteeState::Registered | GuaranteeState::Accepted => {}
        }
        self.guarantee.state = GuaranteeState::Cancelled;
        self.guarantee.cancellation_reason = Some(reason.to_owned());
        self.add_event(None, format!("guarantee cancelled: {reason}"));
        if let Some(declaration) = &self.guarantee.declaration {
            let itinerary = declaration.itinerary.clone();
            self.notify_customs(itinerary, CustomsEvent::GuaranteeCancelled { reason: reason.to_owned() });
        }
        Ok(())
    }

    /// I1 at a departure office of the first operation's territory: one the
    /// advance data declares, or, without advance data (a declaration lodged
    /// nationally), any office of departure.
    pub(super) fn accept_guarantee(&mut self, office: &Office) -> Result<(), EtirError> {
        match self.guarantee.current_declaration() {
            Some(declaration) => check_first_departure_office(office, declaration)?,
            None if office.has_role(OfficeRole::Departure) => {}
            None => {
                return Err(EtirError::new(ErrorCode::PartyNotAuthorized, "/office")
                    .with_detail(format!("office {} is not an office of departure", office.code)));
            }
        }
        match self.guarantee.state {
            GuaranteeState::Registered => {}
            GuaranteeState::Accepted | GuaranteeState::Cancelled | GuaranteeState::Released => {
                return fail(ErrorCode::GuaranteeStateForbids, "/guarantee_reference");
            }
        }
        if let Some(valid_until) = self.guarantee.valid_until
            && valid_until.days_since_epoch() < self.now.unix_ms().div_euclid(86_400_000)
        {
            return Err(EtirError::new(ErrorCode::GuaranteeStateForbids, "/guarantee_reference")
                .with_detail(format!("guarantee expired on {valid_until}")));
        }
        self.guarantee.state = GuaranteeState::Accepted;
        self.guarantee.accepted_by = Some(office.code.clone());
        self.add_event(Some(&office.code), "guarantee accepted".to_owned());
        self.notify_chain(ChainEvent::GuaranteeAccepted);
        Ok(())
    }

    /// Release after the last discharge; a cancelled guarantee stays cancelled.
    pub(super) fn release_if_finished(&mut self) {
        if self.guarantee.state == GuaranteeState::Accepted && self.guarantee.transport_finished() {
            self.guarantee.state = GuaranteeState::Released;
            self.add_event(None, "guarantee released".to_owned());
            self.notify_chain(ChainEvent::GuaranteeReleased);
        }
    }
}
