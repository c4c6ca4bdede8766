//! The eTIR state machine: one function decides what a message does to a
//! guarantee, given the registries. The store runs it inside its transaction.

mod authorize;
mod declaration_steps;
mod guarantee_steps;
mod notify;
mod operation_steps;

pub use notify::{ChainEvent, CustomsEvent, Notification, NotificationEvent};

use crate::error::{ErrorCode, EtirError, fail};
use crate::fallback::{FallbackPeriod, covering};
use crate::guarantee::{Event, Guarantee};
use crate::ids::{Country, OfficeCode, Timestamp, TirId};
use crate::message::{Message, Request, check_sender};
use crate::party::{HolderRecord, Office, Party};

/// What the state machine may look up: the office list, the ITDB and which
/// countries have a customs party to forward advance data to.
pub trait Registry {
    fn office(&self, code: &OfficeCode) -> Option<&Office>;
    fn holder(&self, tir_id: &TirId) -> Option<&HolderRecord>;
    fn has_customs(&self, country: Country) -> bool;
    /// The fallback periods that may cover a message recorded in fallback:
    /// those of its office's country and of the whole system.
    fn fallback_periods(&self) -> &[FallbackPeriod] {
        &[]
    }
}

/// A message recorded in fallback, once its period is found.
#[derive(Debug, Clone)]
struct Late {
    occurred_at: Timestamp,
    period: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub guarantee: Guarantee,
    /// In the order the feeds receive them; render each with
    /// `view::notification_view` and this outcome's guarantee.
    pub notifications: Vec<Notification>,
    /// What this message did, for the transport's timeline.
    pub events: Vec<Event>,
}

/// Holders whose registry entry `apply` consults for this request.
pub fn holders_needed(request: &Request, sender: &Party) -> Vec<TirId> {
    let mut holders: Vec<TirId> = request.referenced_holder().into_iter().cloned().collect();
    if let Party::Holder { tir_id, .. } = sender {
        holders.push(tir_id.clone());
    }
    holders
}

/// Decides the effect of `request` from `sender` on the guarantee `current`.
pub fn apply(
    registry: &impl Registry,
    sender: &Party,
    request: &Request,
    current: Option<&Guarantee>,
    now: Timestamp,
) -> Result<Outcome, EtirError> {
    if let Message::RegisterGuarantee { holder, valid_until } = &request.message {
        check_sender(request.kind, sender.kind())?;
        if current.is_some() {
            return fail(ErrorCode::GuaranteeAlreadyRegistered, "/guarantee_reference");
        }
        return guarantee_steps::register_guarantee(registry, sender, request, holder, *valid_until, now);
    }
    // A validation of the value: with the 1xx, before 301.
    if let Some(occurred_at) = request.occurred_at
        && occurred_at > now
    {
        return Err(EtirError::new(ErrorCode::InvalidDomain, "/occurred_at")
            .with_detail(format!("{occurred_at} is in the future (received at {now})")));
    }
    // The contract's order: 301 before 380.
    let Some(current) = current else {
        return fail(ErrorCode::GuaranteeNotFound, "/guarantee_reference");
    };
    check_sender(request.kind, sender.kind())?;
    let office = authorize::authorize(registry, sender, request, current)?;
    let mut step = Step::new(current.clone(), sender, request, now);
    step.office = office.map(|o| o.code.clone());
    if let (Some(occurred_at), Some(office)) = (request.occurred_at, office) {
        let period = covering(registry.fallback_periods(), office.country, occurred_at)?;
        step.late = Some(Late { occurred_at, period: period.id.clone() });
    }
    let acting = || office.expect("customs act through an office");
    match &request.message {
        Message::RegisterGuarantee { .. } => unreachable!("handled above"),
        Message::CancelGuarantee { reason } => step.cancel_guarantee(reason)?,
        Message::AdvanceData { declaration } => step.advance_data(registry, declaration, None, false)?,
        Message::AdvanceAmendment { declaration, country } => {
            step.advance_data(registry, declaration, *country, true)?
        }
        Message::AdvanceCancellation { reason } => step.advance_cancellation(reason)?,
        Message::AcceptGuarantee { .. } => step.accept_guarantee(acting())?,
        Message::RecordDeclaration { declaration, .. } => {
            step.record_declaration(registry, acting(), declaration.as_ref())?
        }
        Message::StartOperation { seals, operation_id, controls, .. } => {
            step.start_operation(acting(), seals.as_deref(), operation_id.as_ref(), controls)?
        }
        Message::TerminateOperation { seals, reservations, controls, .. } => {
            step.terminate_operation(acting(), seals.as_deref(), reservations, controls)?
        }
        Message::DischargeOperation { .. } => step.discharge_operation(acting())?,
        Message::RefuseStart { reason, controls, .. } => step.refuse_start(acting(), reason, controls)?,
        Message::RecordIncident { kind, description, new_vehicle, new_seals, .. } => {
            step.record_incident(acting(), *kind, description, new_vehicle.as_ref(), new_seals.as_deref())?
        }
    }
    Ok(step.finish())
}

/// Whether `party` may read `guarantee` (E5/I5).
pub fn may_read(party: &Party, guarantee: &Guarantee) -> bool {
    match party {
        Party::Admin => true,
        Party::Customs { country, .. } => {
            guarantee.on_itinerary(*country) || guarantee.accepted_by.as_ref().is_some_and(|o| o.country() == *country)
        }
        Party::GuaranteeChain { id } => &guarantee.chain == id,
        Party::Holder { tir_id, .. } => &guarantee.holder == tir_id,
    }
}

/// One message being applied: the guarantee as it changes, and what the
/// message has to say to the timeline and to the feeds so far.
struct Step<'a> {
    guarantee: Guarantee,
    notifications: Vec<Notification>,
    events: Vec<Event>,
    sender: &'a Party,
    request: &'a Request,
    now: Timestamp,
    /// The customs office acting, if customs are.
    office: Option<OfficeCode>,
    /// The operation this message acts on, once the step knows it.
    operation: Option<u16>,
    /// Recorded in fallback: when it happened, under which period.
    late: Option<Late>,
}

impl<'a> Step<'a> {
    fn new(guarantee: Guarantee, sender: &'a Party, request: &'a Request, now: Timestamp) -> Self {
        Step {
            guarantee,
            notifications: Vec::new(),
            events: Vec::new(),
            sender,
            request,
            now,
            office: None,
            operation: None,
            late: None,
        }
    }

    fn finish(self) -> Outcome {
        debug_assert!(self.notifications.iter().all(|n| !n.recipients.is_empty()), "a notification without a feed");
        Outcome { guarantee: self.guarantee, notifications: self.notifications, events: self.events }
    }

    /// When what the message reports happened: at the office for a message
    /// recorded in fallback, else when it arrived.
    fn at(&self) -> Timestamp {
        self.late.as_ref().map_or(self.now, |late| late.occurred_at)
    }

    /// Adds `summary` to the transport's timeline (`Outcome::events`).
    fn add_event(&mut self, office: Option<&OfficeCode>, summary: String) {
        self.events.push(Event {
            at: self.now,
            message_type: self.request.kind.as_str().to_owned(),
            party: self.sender.id().to_owned(),
            office: office.cloned(),
            summary,
            occurred_at: self.late.as_ref().map(|late| late.occurred_at),
            fallback_period: self.late.as_ref().map(|late| late.period.clone()),
        });
    }

    /// Marks the operation at `index` as acted on by a message recorded in fallback.
    fn mark_late(&mut self, index: usize) {
        if let Some(late) = &self.late {
            let record = crate::guarantee::LateRecord {
                message_type: self.request.kind.as_str().to_owned(),
                occurred_at: late.occurred_at,
                received_at: self.now,
                period: late.period.clone(),
            };
            self.guarantee.operations[index].recorded_late.push(record);
        }
    }
}
