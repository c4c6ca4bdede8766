//! The eTIR state machine: one function decides what a message does to a
//! guarantee, given the registries. The store runs it inside its transaction.

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::declaration::Declaration;
use crate::error::{ErrorCode, EtirError, fail};
use crate::guarantee::{Event, Guarantee, GuaranteeState, Operation, OperationState};
use crate::ids::{Country, OfficeCode, Timestamp, TirId};
use crate::message::{Message, Request, check_sender};
use crate::party::{HolderRecord, HolderStatus, Office, OfficeRole, Party, Recipient};

/// What the state machine may look up: the office list and the ITDB.
pub trait Registry {
    fn office(&self, code: &OfficeCode) -> Option<&Office>;
    fn holder(&self, tir_id: &TirId) -> Option<&HolderRecord>;
}

/// One item for a party's notification feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub recipient: Recipient,
    /// `E7` to chains, `I15` to customs of later countries, `E9`/`E11`/`E13` to customs of departure.
    pub kind: &'static str,
    /// JSON text, made once per event and shared by all its recipients.
    pub payload: Arc<str>,
}

impl Notification {
    /// The payload parsed, for reading single fields.
    pub fn payload_json(&self) -> Value {
        serde_json::from_str(&self.payload).unwrap_or(Value::Null)
    }
}

/// A notification's payload as written: the common fields, the event's own
/// (`extra`, an object), and the declaration's JSON as already made.
#[derive(Serialize)]
struct Payload<'a> {
    event: &'a str,
    message_type: &'a str,
    guarantee_state: &'a str,
    at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    declaration: Option<&'a RawValue>,
    #[serde(flatten)]
    extra: &'a Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub guarantee: Guarantee,
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
    check_sender(request.kind, sender.kind())?;
    if let Message::RegisterGuarantee { holder, valid_until } = &request.message {
        if current.is_some() {
            return fail(ErrorCode::GuaranteeAlreadyRegistered, "/guarantee_reference");
        }
        check_holder_record(registry, holder, "/holder")?;
        let guarantee = Guarantee {
            reference: request.guarantee_reference.clone(),
            holder: holder.clone(),
            chain: sender.id().to_owned(),
            state: GuaranteeState::Registered,
            valid_until: *valid_until,
            registered_at: now,
            accepted_by: None,
            cancellation_reason: None,
            advance: None,
            declaration: None,
            operations: Vec::new(),
        };
        let mut step = Step { guarantee, notifications: Vec::new(), events: Vec::new(), sender, request, now };
        step.record(None, format!("guarantee registered for holder {holder}"));
        return Ok(step.finish());
    }
    let Some(current) = current else {
        return fail(ErrorCode::NotFound, "/guarantee_reference");
    };
    let office = authorize(registry, sender, request, current)?;
    let mut step =
        Step { guarantee: current.clone(), notifications: Vec::new(), events: Vec::new(), sender, request, now };
    match &request.message {
        Message::RegisterGuarantee { .. } => unreachable!("handled above"),
        Message::CancelGuarantee { reason } => step.cancel_guarantee(reason)?,
        Message::AdvanceData { declaration } => step.advance_data(registry, declaration, false)?,
        Message::AdvanceAmendment { declaration } => step.advance_data(registry, declaration, true)?,
        Message::AdvanceCancellation { reason } => step.advance_cancellation(reason)?,
        Message::AcceptGuarantee { .. } => step.accept_guarantee(office.expect("customs act through an office"))?,
        Message::RecordDeclaration { declaration, .. } => {
            step.record_declaration(registry, office.expect("customs act through an office"), declaration.as_ref())?
        }
        Message::StartOperation { seals, .. } => {
            step.start_operation(office.expect("customs act through an office"), seals.as_deref())?
        }
        Message::TerminateOperation { reservations, .. } => {
            step.terminate_operation(office.expect("customs act through an office"), reservations)?
        }
        Message::DischargeOperation { .. } => {
            step.discharge_operation(office.expect("customs act through an office"))?
        }
        Message::RefuseStart { reason, .. } => {
            step.refuse_start(office.expect("customs act through an office"), reason)?
        }
    }
    Ok(step.finish())
}

/// Whether `party` may read `guarantee` (E5/I5).
pub fn may_read(party: &Party, guarantee: &Guarantee) -> bool {
    match party {
        Party::Admin => true,
        Party::Customs { country, .. } => guarantee.on_itinerary(*country),
        Party::GuaranteeChain { id } => &guarantee.chain == id,
        Party::Holder { tir_id, .. } => &guarantee.holder == tir_id,
    }
}

/// The sender's rights on this guarantee; for customs, the acting office.
fn authorize<'r>(
    registry: &'r impl Registry,
    sender: &Party,
    request: &Request,
    guarantee: &Guarantee,
) -> Result<Option<&'r Office>, EtirError> {
    match sender {
        Party::Admin => fail(ErrorCode::PartyNotAuthorized, "/type"),
        Party::GuaranteeChain { id } if &guarantee.chain != id => {
            fail(ErrorCode::ChainNotAuthorized, "/guarantee_reference")
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
                return fail(ErrorCode::UnknownCode, "/office");
            };
            if office.country != *country {
                return fail(ErrorCode::PartyNotAuthorized, "/office");
            }
            // Without advance data, an I7 carrying its own declaration is judged by that
            // declaration; `record_declaration` then checks it comes from the accepting country.
            let declaration = match (&request.message, guarantee.current_declaration()) {
                (Message::RecordDeclaration { declaration: Some(given), .. }, None) => Some(given),
                (_, current) => current,
            };
            let Some(declaration) = declaration else {
                return fail(ErrorCode::DeclarationNotFound, "/guarantee_reference");
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
        | Message::RefuseStart { office, .. } => Some(office),
        _ => None,
    }
}

fn check_holder_record(registry: &impl Registry, tir_id: &TirId, pointer: &str) -> Result<(), EtirError> {
    match registry.holder(tir_id) {
        None => fail(ErrorCode::HolderNotFound, pointer),
        Some(record) if record.status == HolderStatus::Withdrawn => fail(ErrorCode::HolderNotAuthorized, pointer),
        Some(_) => Ok(()),
    }
}

/// Checks a declaration against the office list: every office exists and
/// is registered for the role it is declared in.
fn check_declared_offices(registry: &impl Registry, declaration: &Declaration) -> Result<(), EtirError> {
    for (i, declared) in declaration.offices.iter().enumerate() {
        let Some(office) = registry.office(&declared.code) else {
            return fail(ErrorCode::UnknownCode, format!("/declaration/offices/{i}/code"));
        };
        if !office.has_role(declared.role) {
            return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, format!("/declaration/offices/{i}/role"))
                .with_detail(format!("office {} is not an office of {}", office.code, declared.role.as_str())));
        }
    }
    Ok(())
}

struct Step<'a> {
    guarantee: Guarantee,
    notifications: Vec<Notification>,
    events: Vec<Event>,
    sender: &'a Party,
    request: &'a Request,
    now: Timestamp,
}

impl Step<'_> {
    fn finish(self) -> Outcome {
        Outcome { guarantee: self.guarantee, notifications: self.notifications, events: self.events }
    }

    fn record(&mut self, office: Option<&OfficeCode>, summary: String) {
        self.events.push(Event {
            at: self.now,
            message_type: self.request.kind.as_str().to_owned(),
            party: self.sender.id().to_owned(),
            office: office.cloned(),
            summary,
        });
    }

    fn notify(&mut self, recipient: Recipient, kind: &'static str, event: &str, extra: Value) {
        self.notify_all([recipient], kind, event, &extra, None);
    }

    /// One payload, serialized once, to every recipient.
    fn notify_all(
        &mut self,
        recipients: impl IntoIterator<Item = Recipient>,
        kind: &'static str,
        event: &str,
        extra: &Value,
        declaration: Option<&Declaration>,
    ) {
        let payload = Payload {
            event,
            message_type: self.request.kind.as_str(),
            guarantee_state: self.guarantee.state.as_str(),
            at: &self.now.to_rfc3339(),
            declaration: declaration.map(Declaration::json),
            extra,
        };
        let payload: Arc<str> = serde_json::to_string(&payload).expect("payloads serialize").into();
        for recipient in recipients {
            self.notifications.push(Notification { recipient, kind, payload: payload.clone() });
        }
    }

    fn notify_chain(&mut self, event: &str, extra: Value) {
        let chain = Recipient::Chain(self.guarantee.chain.clone());
        self.notify(chain, "E7", event, extra);
    }

    fn cancel_guarantee(&mut self, reason: &str) -> Result<(), EtirError> {
        match self.guarantee.state {
            GuaranteeState::Released => return fail(ErrorCode::GuaranteeNotCancellable, "/guarantee_reference"),
            GuaranteeState::Cancelled => return fail(ErrorCode::GuaranteeAlreadyCancelled, "/guarantee_reference"),
            GuaranteeState::Registered | GuaranteeState::Accepted => {}
        }
        self.guarantee.state = GuaranteeState::Cancelled;
        self.guarantee.cancellation_reason = Some(reason.to_owned());
        self.record(None, format!("guarantee cancelled: {reason}"));
        for country in self.guarantee.itinerary().to_vec() {
            self.notify(Recipient::Customs(country), "I15", "guarantee_cancelled", json!({"reason": reason}));
        }
        Ok(())
    }

    fn check_open_for_advance_data(&self) -> Result<(), EtirError> {
        match self.guarantee.state {
            GuaranteeState::Cancelled => fail(ErrorCode::GuaranteeAlreadyCancelled, "/guarantee_reference"),
            GuaranteeState::Released => fail(ErrorCode::GuaranteeStateForbids, "/guarantee_reference"),
            _ if self.guarantee.declaration.is_some() => {
                fail(ErrorCode::DeclarationAlreadyRecorded, "/guarantee_reference")
            }
            _ => Ok(()),
        }
    }

    fn advance_data(
        &mut self,
        registry: &impl Registry,
        declaration: &Declaration,
        amendment: bool,
    ) -> Result<(), EtirError> {
        self.check_open_for_advance_data()?;
        match (amendment, self.guarantee.advance.is_some()) {
            (false, true) => {
                return Err(EtirError::new(ErrorCode::GuaranteeStateForbids, "/type")
                    .with_detail("advance data already sent: amend it with E11"));
            }
            (true, false) => return fail(ErrorCode::DeclarationNotFound, "/guarantee_reference"),
            _ => {}
        }
        check_declared_offices(registry, declaration)?;
        self.guarantee.advance = Some(declaration.clone());
        let (kind, event) = if amendment { ("E11", "advance_data_amended") } else { ("E9", "advance_data") };
        self.record(None, format!("{event} for {}", itinerary_text(&declaration.itinerary)));
        let extra = json!({"holder": self.guarantee.holder.as_str()});
        self.notify_all(
            [Recipient::Customs(declaration.country_of_departure())],
            kind,
            event,
            &extra,
            Some(declaration),
        );
        Ok(())
    }

    fn advance_cancellation(&mut self, reason: &str) -> Result<(), EtirError> {
        self.check_open_for_advance_data()?;
        let Some(advance) = self.guarantee.advance.take() else {
            return fail(ErrorCode::DeclarationNotFound, "/guarantee_reference");
        };
        self.record(None, format!("advance data withdrawn: {reason}"));
        self.notify(
            Recipient::Customs(advance.country_of_departure()),
            "E13",
            "advance_data_cancelled",
            json!({"reason": reason}),
        );
        Ok(())
    }

    /// The acting office must be a departure office of the declaration.
    fn check_departure_office(&self, office: &Office, declaration: &Declaration) -> Result<(), EtirError> {
        if !office.has_role(OfficeRole::Departure) || !declaration.departure_offices().any(|c| c == &office.code) {
            return Err(EtirError::new(ErrorCode::PartyNotAuthorized, "/office")
                .with_detail("only a departure office of the declaration may do this"));
        }
        Ok(())
    }

    fn accept_guarantee(&mut self, office: &Office) -> Result<(), EtirError> {
        let declaration = self.guarantee.current_declaration().expect("authorize checked a declaration exists");
        self.check_departure_office(office, declaration)?;
        match self.guarantee.state {
            GuaranteeState::Registered => {}
            GuaranteeState::Cancelled => return fail(ErrorCode::GuaranteeAlreadyCancelled, "/guarantee_reference"),
            GuaranteeState::Accepted | GuaranteeState::Released => {
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
        self.record(Some(&office.code), "guarantee accepted".to_owned());
        self.notify_chain("guarantee_accepted", json!({"office": office.code.as_str()}));
        Ok(())
    }

    fn record_declaration(
        &mut self,
        registry: &impl Registry,
        office: &Office,
        given: Option<&Declaration>,
    ) -> Result<(), EtirError> {
        match self.guarantee.state {
            GuaranteeState::Accepted => {}
            GuaranteeState::Cancelled => return fail(ErrorCode::GuaranteeAlreadyCancelled, "/guarantee_reference"),
            GuaranteeState::Registered | GuaranteeState::Released => {
                return fail(ErrorCode::GuaranteeStateForbids, "/guarantee_reference");
            }
        }
        if self.guarantee.declaration.is_some() {
            return fail(ErrorCode::DeclarationAlreadyRecorded, "/guarantee_reference");
        }
        if let Some(accepted_by) = &self.guarantee.accepted_by
            && accepted_by.country() != office.country
        {
            return Err(EtirError::new(ErrorCode::PartyNotAuthorized, "/office")
                .with_detail("only customs of the country that accepted the guarantee record the declaration"));
        }
        let declaration = match given {
            Some(d) => {
                check_declared_offices(registry, d)?;
                d.clone()
            }
            None => match &self.guarantee.advance {
                Some(d) => d.clone(),
                None => return fail(ErrorCode::DeclarationNotFound, "/declaration"),
            },
        };
        self.check_departure_office(office, &declaration)?;
        self.guarantee.operations = declaration.itinerary.iter().map(|c| Operation::pending(*c)).collect();
        self.guarantee.advance = None;
        self.record(Some(&office.code), format!("declaration recorded for {}", itinerary_text(&declaration.itinerary)));
        let later = declaration.itinerary.iter().skip(1).map(|c| Recipient::Customs(*c));
        let extra = json!({"office": office.code.as_str()});
        self.notify_all(later, "I15", "declaration_recorded", &extra, Some(&declaration));
        self.guarantee.declaration = Some(declaration);
        self.notify_chain("declaration_recorded", json!({"office": office.code.as_str()}));
        Ok(())
    }

    /// This country's operation; the declaration must be recorded.
    fn operation_index(&self, office: &Office) -> Result<usize, EtirError> {
        if self.guarantee.declaration.is_none() {
            return fail(ErrorCode::DeclarationNotFound, "/guarantee_reference");
        }
        let index = self.guarantee.operations.iter().position(|op| op.country == office.country);
        index.ok_or_else(|| EtirError::new(ErrorCode::PartyNotAuthorized, "/office"))
    }

    /// Where the operation at `index` may start (I9) or be refused (I17): in the
    /// first country at a departure office of the declaration, later at an
    /// office of entry, or of departure (goods loaded en route).
    fn check_start_office(&self, office: &Office, index: usize) -> Result<(), EtirError> {
        if index == 0 {
            let declaration = self.guarantee.declaration.as_ref().expect("operation_index checked it");
            return self.check_departure_office(office, declaration);
        }
        check_office_role(office, &[OfficeRole::Entry, OfficeRole::Departure])
    }

    /// Where the operation at `index` may terminate (I11): in the last country at
    /// an office of destination, earlier at an office of exit, or of destination
    /// (goods unloaded en route).
    fn check_termination_office(&self, office: &Office, index: usize) -> Result<(), EtirError> {
        if index + 1 == self.guarantee.operations.len() {
            check_office_role(office, &[OfficeRole::Destination])
        } else {
            check_office_role(office, &[OfficeRole::Exit, OfficeRole::Destination])
        }
    }

    /// Preconditions shared by start (I9) and refusal to start (I17).
    fn check_may_start(&self, index: usize) -> Result<(), EtirError> {
        match self.guarantee.operations[index].state {
            OperationState::Pending => {}
            OperationState::Started => return fail(ErrorCode::OperationAlreadyStarted, "/office"),
            OperationState::Terminated => return fail(ErrorCode::OperationAlreadyTerminated, "/office"),
            OperationState::Discharged => return fail(ErrorCode::OperationAlreadyDischarged, "/office"),
            OperationState::Refused => return fail(ErrorCode::OperationRefused, "/office"),
        }
        if index > 0 {
            let previous = &self.guarantee.operations[index - 1];
            if !matches!(previous.state, OperationState::Terminated | OperationState::Discharged) {
                return Err(EtirError::new(ErrorCode::PreviousOperationNotTerminated, "/office").with_detail(format!(
                    "the operation in {} is {}",
                    previous.country,
                    previous.state.as_str()
                )));
            }
        }
        Ok(())
    }

    fn start_operation(&mut self, office: &Office, seals: Option<&[String]>) -> Result<(), EtirError> {
        match self.guarantee.state {
            GuaranteeState::Accepted => {}
            GuaranteeState::Cancelled => return fail(ErrorCode::GuaranteeCancelled, "/guarantee_reference"),
            GuaranteeState::Registered | GuaranteeState::Released => {
                return fail(ErrorCode::GuaranteeStateForbids, "/guarantee_reference");
            }
        }
        let index = self.operation_index(office)?;
        self.check_start_office(office, index)?;
        self.check_may_start(index)?;
        let declaration = self.guarantee.declaration.as_ref().expect("operation_index checked it");
        if let Some(seals) = seals
            && !declaration.seals_match(seals)
        {
            return fail(ErrorCode::SealsMismatch, "/seals");
        }
        let op = &mut self.guarantee.operations[index];
        op.state = OperationState::Started;
        op.office = Some(office.code.clone());
        op.started_at = Some(self.now);
        self.record(Some(&office.code), format!("TIR operation started in {}", office.country));
        self.notify_chain(
            "operation_started",
            json!({"country": office.country.as_str(), "office": office.code.as_str()}),
        );
        Ok(())
    }

    fn terminate_operation(&mut self, office: &Office, reservations: &[String]) -> Result<(), EtirError> {
        let index = self.operation_index(office)?;
        self.check_termination_office(office, index)?;
        match self.guarantee.operations[index].state {
            OperationState::Started => {}
            OperationState::Pending => return fail(ErrorCode::OperationNotStarted, "/office"),
            OperationState::Terminated => return fail(ErrorCode::OperationAlreadyTerminated, "/office"),
            OperationState::Discharged => return fail(ErrorCode::OperationAlreadyDischarged, "/office"),
            OperationState::Refused => return fail(ErrorCode::OperationRefused, "/office"),
        }
        let op = &mut self.guarantee.operations[index];
        op.state = OperationState::Terminated;
        op.office = Some(office.code.clone());
        op.terminated_at = Some(self.now);
        op.reservations = reservations.to_vec();
        let summary = match reservations.len() {
            0 => format!("TIR operation terminated in {} without reservations", office.country),
            n => format!("TIR operation terminated in {} with {n} reservation(s)", office.country),
        };
        self.record(Some(&office.code), summary);
        let extra =
            json!({"country": office.country.as_str(), "office": office.code.as_str(), "reservations": reservations});
        if let Some(next) = self.guarantee.operations.get(index + 1).map(|op| op.country) {
            self.notify(Recipient::Customs(next), "I15", "previous_operation_terminated", extra.clone());
        }
        self.notify_chain("operation_terminated", extra);
        Ok(())
    }

    /// Any office of the country: discharge is the country's decision on the
    /// terminated operation, often taken away from the border.
    fn discharge_operation(&mut self, office: &Office) -> Result<(), EtirError> {
        let index = self.operation_index(office)?;
        match self.guarantee.operations[index].state {
            OperationState::Terminated => {}
            OperationState::Pending => return fail(ErrorCode::OperationNotStarted, "/office"),
            OperationState::Started => return fail(ErrorCode::OperationNotTerminated, "/office"),
            OperationState::Discharged => return fail(ErrorCode::OperationAlreadyDischarged, "/office"),
            OperationState::Refused => return fail(ErrorCode::OperationRefused, "/office"),
        }
        let op = &mut self.guarantee.operations[index];
        op.state = OperationState::Discharged;
        op.office = Some(office.code.clone());
        op.discharged_at = Some(self.now);
        self.record(Some(&office.code), format!("TIR operation discharged in {}", office.country));
        self.notify_chain(
            "operation_discharged",
            json!({"country": office.country.as_str(), "office": office.code.as_str()}),
        );
        self.release_if_finished();
        Ok(())
    }

    fn refuse_start(&mut self, office: &Office, reason: &str) -> Result<(), EtirError> {
        if self.guarantee.state == GuaranteeState::Registered {
            return fail(ErrorCode::GuaranteeStateForbids, "/guarantee_reference");
        }
        let index = self.operation_index(office)?;
        self.check_start_office(office, index)?;
        self.check_may_start(index)?;
        let op = &mut self.guarantee.operations[index];
        op.state = OperationState::Refused;
        op.office = Some(office.code.clone());
        op.refusal_reason = Some(reason.to_owned());
        self.record(Some(&office.code), format!("start of the TIR operation refused in {}: {reason}", office.country));
        self.notify_chain(
            "operation_refused",
            json!({"country": office.country.as_str(), "office": office.code.as_str(), "reason": reason}),
        );
        self.release_if_finished();
        Ok(())
    }

    /// Release after the last discharge; a cancelled guarantee stays cancelled.
    fn release_if_finished(&mut self) {
        if self.guarantee.state == GuaranteeState::Accepted && self.guarantee.transport_finished() {
            self.guarantee.state = GuaranteeState::Released;
            self.record(None, "guarantee released".to_owned());
            self.notify_chain("guarantee_released", json!({}));
        }
    }
}

/// 360 unless `office` is registered in one of the `allowed` roles.
fn check_office_role(office: &Office, allowed: &[OfficeRole]) -> Result<(), EtirError> {
    if allowed.iter().any(|role| office.has_role(*role)) {
        return Ok(());
    }
    let roles = allowed.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(" or ");
    Err(EtirError::new(ErrorCode::PartyNotAuthorized, "/office")
        .with_detail(format!("office {} is not an office of {roles} for this operation", office.code)))
}

fn itinerary_text(itinerary: &[Country]) -> String {
    itinerary.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("-")
}
