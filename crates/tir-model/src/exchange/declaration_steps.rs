//! The declaration: the holder's advance data (E9, E11, E13), its recording
//! by customs of departure (I7), and amendments en route (E11 with a country,
//! accepted by that country's customs with I7).

use super::authorize::check_first_departure_office;
use super::notify::{ChainEvent, CustomsEvent, NotificationEvent};
use super::{Registry, Step};
use crate::declaration::Declaration;
use crate::error::{ErrorCode, EtirError, fail};
use crate::guarantee::{Amendment, GuaranteeState, Operation, OperationState};
use crate::ids::Country;
use crate::limits::AMENDMENTS_MAX;
use crate::party::{Office, OfficeRole, Recipient};

impl Step<'_> {
    fn check_open(&self) -> Result<(), EtirError> {
        match self.guarantee.state {
            GuaranteeState::Cancelled | GuaranteeState::Released => {
                fail(ErrorCode::GuaranteeStateForbids, "/guarantee_reference")
            }
            GuaranteeState::Registered | GuaranteeState::Accepted => Ok(()),
        }
    }

    /// E9, or E11 when `amendment`: before recording, the holder's declaration,
    /// kept until customs record one; after, an amendment en route in `country`.
    pub(super) fn advance_data(
        &mut self,
        registry: &impl Registry,
        declaration: &Declaration,
        country: Option<Country>,
        amendment: bool,
    ) -> Result<(), EtirError> {
        self.check_open()?;
        if self.guarantee.declaration.is_some() {
            return match (amendment, country) {
                (true, Some(country)) => self.request_amendment(registry, declaration, country),
                (true, None) => Err(EtirError::new(ErrorCode::RequiredFieldMissing, "/country")
                    .with_detail("after recording, an amendment names the country whose customs accept it")),
                (false, _) => fail(ErrorCode::DeclarationAlreadyRecorded, "/guarantee_reference"),
            };
        }
        if country.is_some() {
            return Err(EtirError::new(ErrorCode::UnknownField, "/country")
                .with_detail("`country` only comes with an amendment after the declaration is recorded"));
        }
        match (amendment, self.guarantee.advance.is_some()) {
            (false, true) => {
                return Err(EtirError::new(ErrorCode::GuaranteeStateForbids, "/type")
                    .with_detail("advance data already sent: amend it with E11"));
            }
            (true, false) => return fail(ErrorCode::DeclarationNotFound, "/guarantee_reference"),
            _ => {}
        }
        if amendment {
            self.count_amendment()?;
        }
        check_declared_offices(registry, declaration)?;
        check_customs_to_forward_to(registry, declaration)?;
        self.guarantee.advance = Some(declaration.clone());
        self.guarantee.advance_withdrawn = false;
        let holder = self.guarantee.holder.clone();
        let event = if amendment {
            NotificationEvent::AdvanceAmendment { holder }
        } else {
            NotificationEvent::AdvanceData { holder }
        };
        self.add_event(None, format!("{} for {}", event.name(), itinerary_text(&declaration.itinerary)));
        self.notify(forward_to(declaration), event);
        Ok(())
    }

    /// E13: the holder withdraws advance data customs have not recorded.
    pub(super) fn advance_cancellation(&mut self, reason: &str) -> Result<(), EtirError> {
        self.check_open()?;
        if self.guarantee.declaration.is_some() {
            return fail(ErrorCode::DeclarationAlreadyRecorded, "/guarantee_reference");
        }
        let Some(advance) = self.guarantee.advance.take() else {
            return fail(ErrorCode::DeclarationNotFound, "/guarantee_reference");
        };
        self.guarantee.advance_withdrawn = true;
        self.add_event(None, format!("advance data withdrawn: {reason}"));
        self.notify(forward_to(&advance), NotificationEvent::AdvanceCancellation { reason: reason.to_owned() });
        Ok(())
    }

    /// E11 after recording: an amendment for the customs of `country`, whose
    /// operation must be started; it replaces one already waiting.
    fn request_amendment(
        &mut self,
        registry: &impl Registry,
        declaration: &Declaration,
        country: Country,
    ) -> Result<(), EtirError> {
        self.count_amendment()?;
        let index = self.started_operation_of(country, "/country")?;
        self.operation = Some(self.guarantee.operations[index].sequence);
        check_itinerary_kept(self.recorded(), declaration, index, country)?;
        check_declared_offices(registry, declaration)?;
        let changes = declaration.changes_from(self.recorded());
        self.guarantee.amendment =
            Some(Amendment { country, declaration: declaration.clone(), requested_at: self.now });
        self.add_event(None, format!("amendment requested in {country}: {}", changes_text(&changes)));
        self.notify_customs([country], CustomsEvent::AmendmentRequested { country });
        Ok(())
    }

    /// Counts one more E11, before or after recording: each forwards a whole
    /// declaration, so a guarantee has at most `AMENDMENTS_MAX` (284 past it).
    /// A refused E11 leaves the guarantee as it was: it does not count.
    fn count_amendment(&mut self) -> Result<(), EtirError> {
        if self.guarantee.amendments_requested as usize >= AMENDMENTS_MAX {
            return Err(EtirError::new(ErrorCode::TooManyAmendments, "/guarantee_reference")
                .with_detail(format!("at most {AMENDMENTS_MAX} amendments per guarantee")));
        }
        self.guarantee.amendments_requested += 1;
        Ok(())
    }

    /// The index of the started operation `country` is in, or the error the
    /// state of its operation calls for (pending 213, terminated or discharged
    /// 211, refused or after a refusal 280); off the itinerary 180.
    fn started_operation_of(&self, country: Country, pointer: &str) -> Result<usize, EtirError> {
        if let Some(index) = self.started_index(country) {
            return Ok(index);
        }
        let Some(index) = self.operation_found(country) else {
            return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, pointer)
                .with_detail(format!("{country} is not on the itinerary")));
        };
        // For an amendment an operation that is over is over: terminated or discharged, 211.
        let code = match self.state_code(index) {
            ErrorCode::OperationAlreadyStarted | ErrorCode::OperationAlreadyDischarged => {
                ErrorCode::OperationAlreadyTerminated
            }
            code => code,
        };
        Err(EtirError::new(code, pointer).with_detail(format!("no operation in {country} is started")))
    }

    fn recorded(&self) -> &Declaration {
        self.guarantee.declaration.as_ref().expect("the declaration is recorded")
    }

    /// I7: before recording, the declaration given, else the advance data,
    /// recorded as version 1 with one pending operation per TIR territory of
    /// its itinerary; after, the amendment waiting for the sender's country.
    pub(super) fn record_declaration(
        &mut self,
        registry: &impl Registry,
        office: &Office,
        given: Option<&Declaration>,
    ) -> Result<(), EtirError> {
        match self.guarantee.state {
            GuaranteeState::Accepted => {}
            GuaranteeState::Registered | GuaranteeState::Cancelled | GuaranteeState::Released => {
                return fail(ErrorCode::GuaranteeStateForbids, "/guarantee_reference");
            }
        }
        if self.guarantee.declaration.is_some() {
            return self.accept_amendment(registry, office, given);
        }
        let declaration = match (given, &self.guarantee.advance) {
            (Some(d), _) => {
                check_declared_offices(registry, d)?;
                d.clone()
            }
            (None, Some(advance)) => advance.clone(),
            (None, None) => return fail(ErrorCode::DeclarationNotFound, "/declaration"),
        };
        check_first_departure_office(office, &declaration)?;
        if self.guarantee.advance.is_none() {
            // Lodged nationally: the declaration must name the office that accepted the guarantee.
            let accepted_by = self.guarantee.accepted_by.as_ref().expect("an accepted guarantee names its office");
            if !declaration.declares(accepted_by, OfficeRole::Departure) {
                return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, "/declaration/offices").with_detail(
                    format!("a declaration lodged nationally names {accepted_by}, which accepted the guarantee, as a departure office"),
                ));
            }
        }
        self.guarantee.operations = declaration.operations().iter().map(Operation::pending).collect();
        self.guarantee.recorded_from_advance = self.guarantee.advance.as_ref() == Some(&declaration);
        if self.guarantee.recorded_from_advance {
            self.guarantee.advance = None;
        }
        self.guarantee.declaration_version = 1;
        self.add_event(
            Some(&office.code),
            format!("declaration recorded for {}", itinerary_text(&declaration.itinerary)),
        );
        let others = others_on_itinerary(&declaration, office.country);
        self.guarantee.declaration = Some(declaration);
        self.notify_customs(others, CustomsEvent::DeclarationRecorded);
        self.notify_chain(ChainEvent::DeclarationRecorded);
        Ok(())
    }

    /// I7 after recording: the amendment waiting for the sender's country (or
    /// the text its customs accept instead) becomes the next version.
    fn accept_amendment(
        &mut self,
        registry: &impl Registry,
        office: &Office,
        given: Option<&Declaration>,
    ) -> Result<(), EtirError> {
        let country = office.country;
        let Some(waiting) = self.guarantee.amendment.as_ref().filter(|a| a.country == country) else {
            return Err(EtirError::new(ErrorCode::NoAmendmentWaiting, "/guarantee_reference")
                .with_detail(format!("no amendment waits for the customs of {country}")));
        };
        let index = self.started_operation_of(country, "/office")?;
        self.operation = Some(self.guarantee.operations[index].sequence);
        let declaration = match given {
            Some(d) => {
                check_itinerary_kept(self.recorded(), d, index, country)?;
                check_declared_offices(registry, d)?;
                d.clone()
            }
            None => waiting.declaration.clone(),
        };
        let changes = declaration.changes_from(self.recorded());
        let previous = self.guarantee.declaration.replace(declaration).expect("recorded");
        if previous.vehicle != self.recorded().vehicle {
            // The amended declaration states the vehicle now, over a transhipment's.
            self.guarantee.vehicle = None;
        }
        self.guarantee.superseded.push(previous);
        self.guarantee.declaration_version += 1;
        self.guarantee.amendment = None;
        self.replan();
        let version = self.guarantee.declaration_version;
        self.add_event(
            Some(&office.code),
            format!("amendment accepted in {country}: version {version} ({})", changes_text(&changes)),
        );
        let others = others_on_itinerary(self.recorded(), country);
        self.notify_customs(others, CustomsEvent::DeclarationAmended { country, changes: changes.clone() });
        self.notify_chain(ChainEvent::AmendmentAccepted { country, changes });
        Ok(())
    }

    /// The operations of the amended itinerary: those already begun keep their
    /// record (an amendment keeps the itinerary up to where it is requested),
    /// the rest are planned again.
    fn replan(&mut self) {
        let planned = self.recorded().operations();
        let mut kept = std::mem::take(&mut self.guarantee.operations);
        kept.retain(|op| op.state != OperationState::Pending);
        let mut operations = Vec::with_capacity(planned.len());
        for (i, plan) in planned.iter().enumerate() {
            match kept.get(i) {
                Some(op) => {
                    debug_assert_eq!(op.territory, plan.territory());
                    let mut op = op.clone();
                    op.countries = plan.countries().to_vec();
                    operations.push(op);
                }
                None => operations.push(Operation::pending(plan)),
            }
        }
        self.guarantee.operations = operations;
    }
}

/// An amendment keeps the itinerary as it is up to and including `country` in
/// the operation at `index`.
fn check_itinerary_kept(
    recorded: &Declaration,
    amended: &Declaration,
    index: usize,
    country: Country,
) -> Result<(), EtirError> {
    let planned = recorded.operations();
    let before: usize = planned[..index].iter().map(|op| op.countries().len()).sum();
    let within = planned[index].countries().iter().position(|c| *c == country).expect("the operation includes it");
    let kept = before + within + 1;
    if amended.itinerary.len() < kept || amended.itinerary[..kept] != recorded.itinerary[..kept] {
        return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, "/declaration/itinerary").with_detail(format!(
            "an amendment in {country} keeps the itinerary as recorded up to {country}: {}",
            itinerary_text(&recorded.itinerary[..kept])
        )));
    }
    Ok(())
}

/// Checks a declaration against the office list: every office exists and
/// is registered for the role it is declared in.
fn check_declared_offices(registry: &impl Registry, declaration: &Declaration) -> Result<(), EtirError> {
    for (i, declared) in declaration.offices.iter().enumerate() {
        let Some(office) = registry.office(&declared.code) else {
            return fail(ErrorCode::OfficeNotFound, format!("/declaration/offices/{i}/code"));
        };
        if !office.has_role(declared.role) {
            return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, format!("/declaration/offices/{i}/role"))
                .with_detail(format!("office {} is not an office of {}", office.code, declared.role.as_str())));
        }
    }
    Ok(())
}

/// 308 when a country of the itinerary has no customs party to forward to.
fn check_customs_to_forward_to(registry: &impl Registry, declaration: &Declaration) -> Result<(), EtirError> {
    for (i, country) in declaration.itinerary.iter().enumerate() {
        if !registry.has_customs(*country) {
            return Err(EtirError::new(ErrorCode::NoPartyToForwardTo, format!("/declaration/itinerary/{i}"))
                .with_detail(format!("no customs party of {country} is registered")));
        }
    }
    Ok(())
}

/// Advance data goes to the customs of the countries of the first
/// operation's departure offices.
fn forward_to(declaration: &Declaration) -> Vec<Recipient> {
    let first = declaration.operations().into_iter().next().expect("two operations at least");
    let mut recipients = Vec::new();
    for code in declaration.departure_offices() {
        let recipient = Recipient::Customs(code.country());
        if first.countries().contains(&code.country()) && !recipients.contains(&recipient) {
            recipients.push(recipient);
        }
    }
    recipients
}

/// Every country of the itinerary but `sender`, each once.
fn others_on_itinerary(declaration: &Declaration, sender: Country) -> Vec<Country> {
    declaration.itinerary.iter().copied().filter(|c| *c != sender).collect()
}

fn itinerary_text(itinerary: &[Country]) -> String {
    itinerary.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("-")
}

fn changes_text(changes: &[String]) -> String {
    match changes.len() {
        0 => "no change".to_owned(),
        _ => format!("changed {}", changes.join(", ")),
    }
}
