//! The TIR operation in each territory of the itinerary: start (I9),
//! termination (I11), discharge (I13), refusal to start (I17) and
//! incidents en route (X1).

use std::collections::BTreeSet;

use super::Step;
use super::authorize::{check_first_departure_office, check_office_role};
use super::notify::{ChainEvent, CustomsEvent};
use crate::declaration::{Declaration, Vehicle};
use crate::error::{ErrorCode, EtirError, fail};
use crate::guarantee::{Finding, GuaranteeState, Operation, OperationState};
use crate::ids::{Country, Timestamp};
use crate::party::{Office, OfficeRole};
use crate::records::{Incident, IncidentKind, OperationId, ReportedControl};

impl Step<'_> {
    fn recorded_declaration(&self) -> Result<&Declaration, EtirError> {
        self.guarantee
            .declaration
            .as_ref()
            .ok_or_else(|| EtirError::new(ErrorCode::DeclarationNotRecorded, "/guarantee_reference"))
    }

    /// The operation of `country` whose state tells why none is in the state a
    /// message needs: its latest that has begun, else its first (pending, or
    /// after a refusal). `None` when `country` is off the itinerary.
    pub(super) fn operation_found(&self, country: Country) -> Option<usize> {
        let ops = &self.guarantee.operations;
        let begun = ops.iter().rposition(|op| op.includes(country) && op.state != OperationState::Pending);
        begun.or_else(|| ops.iter().position(|op| op.includes(country)))
    }

    /// The code for finding the operation at `index` in its state; a pending
    /// one after a refused one counts as refused (280).
    pub(super) fn state_code(&self, index: usize) -> ErrorCode {
        let ops = &self.guarantee.operations;
        match ops[index].state {
            OperationState::Pending if ops[..index].iter().any(|op| op.state == OperationState::Refused) => {
                ErrorCode::OperationRefused
            }
            OperationState::Pending => ErrorCode::OperationNotStarted,
            OperationState::Started => ErrorCode::OperationAlreadyStarted,
            OperationState::Terminated => ErrorCode::OperationAlreadyTerminated,
            OperationState::Discharged => ErrorCode::OperationAlreadyDischarged,
            OperationState::Refused => ErrorCode::OperationRefused,
        }
    }

    /// The error for `country` when none of its operations is in the state a
    /// message needs, naming the operation `operation_found` picks.
    fn state_found(&self, country: Country) -> EtirError {
        let Some(index) = self.operation_found(country) else {
            return EtirError::new(ErrorCode::PartyNotAuthorized, "/office")
                .with_detail(format!("{country} is not on the itinerary"));
        };
        let op = &self.guarantee.operations[index];
        EtirError::new(self.state_code(index), "/office").with_detail(format!(
            "operation {} ({}) is {}",
            op.sequence,
            op.territory,
            op.state.as_str()
        ))
    }

    /// The started operation whose countries include `country`; at most one is.
    pub(super) fn started_index(&self, country: Country) -> Option<usize> {
        self.guarantee.operations.iter().position(|op| op.includes(country) && op.state == OperationState::Started)
    }

    /// The earliest pending operation whose countries include `country`.
    fn pending_operation_of(&self, country: Country) -> Result<usize, EtirError> {
        let ops = &self.guarantee.operations;
        ops.iter()
            .position(|op| op.includes(country) && op.state == OperationState::Pending)
            .ok_or_else(|| self.state_found(country))
    }

    /// The started operation whose countries include `country`.
    fn started_operation(&self, country: Country) -> Result<usize, EtirError> {
        self.started_index(country).ok_or_else(|| self.state_found(country))
    }

    /// Where the operation at `index` may start (I9) or be refused (I17): the
    /// first at a declared departure office; a later one at an office of
    /// entry, or at a declared departure office (goods loaded en route).
    fn check_start_office(&self, office: &Office, index: usize) -> Result<(), EtirError> {
        let declaration = self.recorded_declaration()?;
        if index == 0 {
            return check_first_departure_office(office, declaration);
        }
        check_office_role(office, &[OfficeRole::Entry], declaration, OfficeRole::Departure)
    }

    /// Where the operation at `index` may terminate (I11): the last only at a
    /// declared destination office; an earlier one at an office of exit, or at
    /// a declared destination office (goods unloaded en route).
    fn check_termination_office(&self, office: &Office, index: usize) -> Result<(), EtirError> {
        let declaration = self.recorded_declaration()?;
        let allowed: &[OfficeRole] =
            if index + 1 == self.guarantee.operations.len() { &[] } else { &[OfficeRole::Exit] };
        check_office_role(office, allowed, declaration, OfficeRole::Destination)
    }

    /// The pending operation that I9 or I17 from `office` acts on, at an office
    /// allowed to start it. A guarantee not accepted, cancelled or released
    /// starts nothing, whatever its operations (201).
    fn operation_to_start(&self, office: &Office) -> Result<usize, EtirError> {
        if self.guarantee.state != GuaranteeState::Accepted {
            return fail(ErrorCode::GuaranteeStateForbids, "/guarantee_reference");
        }
        self.recorded_declaration()?;
        let index = self.pending_operation_of(office.country)?;
        self.check_start_office(office, index)?;
        Ok(index)
    }

    /// Puts the operation at `index` in `state`, acted on by `office`; the caller
    /// records the rest of the step on the operation returned.
    fn move_operation(&mut self, index: usize, office: &Office, state: OperationState) -> &mut Operation {
        self.operation = Some(self.guarantee.operations[index].sequence);
        let op = &mut self.guarantee.operations[index];
        op.state = state;
        op.office = Some(office.code.clone());
        op
    }

    /// Preconditions shared by start (I9) and refusal to start (I17): no
    /// operation before was refused (280), the previous one is terminated (281).
    fn check_may_start(&self, index: usize) -> Result<(), EtirError> {
        let ops = &self.guarantee.operations;
        if let Some(refused) = ops[..index].iter().find(|op| op.state == OperationState::Refused) {
            return Err(EtirError::new(ErrorCode::OperationRefused, "/office")
                .with_detail(format!("operation {} ({}) was refused", refused.sequence, refused.territory)));
        }
        if index > 0 {
            let previous = &ops[index - 1];
            if let Some(late) = &self.late {
                return check_late_start(previous, late.occurred_at);
            }
            if !matches!(previous.state, OperationState::Terminated | OperationState::Discharged) {
                return Err(EtirError::new(ErrorCode::PreviousOperationNotTerminated, "/office").with_detail(format!(
                    "operation {} ({}) is {}",
                    previous.sequence,
                    previous.territory,
                    previous.state.as_str()
                )));
            }
        }
        Ok(())
    }

    fn record_controls(&mut self, index: usize, office: &Office, controls: &[ReportedControl]) {
        let now = self.at();
        let op = &mut self.guarantee.operations[index];
        op.controls.extend(controls.iter().map(|c| c.stamp(&office.code, now)));
    }

    /// The countries of the operation at `index` and of the later ones, but `sender`'s.
    fn countries_from(&self, index: usize, sender: Country) -> Vec<Country> {
        let ops = &self.guarantee.operations[index..];
        ops.iter().flat_map(|op| op.countries.iter().copied()).filter(|c| *c != sender).collect()
    }

    pub(super) fn start_operation(
        &mut self,
        office: &Office,
        seals: Option<&[String]>,
        operation_id: Option<&OperationId>,
        controls: &[ReportedControl],
    ) -> Result<(), EtirError> {
        let index = self.operation_to_start(office)?;
        self.check_may_start(index)?;
        if let Some(id) = operation_id
            && let Some(other) = self.guarantee.operations.iter().find(|op| op.operation_id.as_ref() == Some(id))
        {
            return Err(EtirError::new(ErrorCode::OperationIdRegistered, "/operation_id").with_detail(format!(
                "operation {} of this guarantee has the id {}",
                other.sequence,
                id.as_str()
            )));
        }
        let now = self.at();
        self.mark_late(index);
        let op = self.move_operation(index, office, OperationState::Started);
        op.started_at = Some(now);
        op.operation_id = operation_id.cloned();
        let (sequence, territory) = (op.sequence, op.territory);
        self.record_controls(index, office, controls);
        self.add_event(
            Some(&office.code),
            format!("TIR operation {sequence} ({territory}) started in {}", office.country),
        );
        self.notify_chain(ChainEvent::OperationStarted { country: office.country });
        if self.guarantee.seals.is_none() {
            // The first start records the transport's seals: the ones customs
            // checked or affixed there, else the declared ones.
            let recorded = match seals {
                Some(reported) if !reported.is_empty() => distinct(reported),
                _ => self.recorded_declaration()?.seals.clone(),
            };
            self.guarantee.seals = Some(recorded);
        } else {
            self.compare_seals(index, office, seals);
        }
        self.guarantee.operations[index].seals = self.guarantee.seals().to_vec();
        Ok(())
    }

    /// Seals reported after the first start: another set is accepted, recorded
    /// as a finding on the operation at `index`, told to the chain, and becomes
    /// the recorded seals.
    fn compare_seals(&mut self, index: usize, office: &Office, reported: Option<&[String]>) {
        let Some(reported) = reported else {
            return;
        };
        let recorded = self.guarantee.seals().to_vec();
        let as_set = |seals: &[String]| seals.iter().cloned().collect::<BTreeSet<String>>();
        if as_set(&recorded) == as_set(reported) {
            return;
        }
        let reported = distinct(reported);
        let at = self.at();
        self.guarantee.operations[index].findings.push(Finding::SealsDiffer {
            office: office.code.clone(),
            at,
            recorded: recorded.clone(),
            reported: reported.clone(),
        });
        self.guarantee.seals = Some(reported.clone());
        self.add_event(
            Some(&office.code),
            format!(
                "seals differ in {}: recorded {}, reported {}",
                office.country,
                seal_list(&recorded),
                seal_list(&reported)
            ),
        );
        self.notify_chain(ChainEvent::SealFinding { country: office.country, recorded, reported });
    }

    pub(super) fn terminate_operation(
        &mut self,
        office: &Office,
        seals: Option<&[String]>,
        reservations: &[String],
        controls: &[ReportedControl],
    ) -> Result<(), EtirError> {
        self.recorded_declaration()?;
        let index = self.started_operation(office.country)?;
        self.check_termination_office(office, index)?;
        self.check_late_termination(index)?;
        let now = self.at();
        self.mark_late(index);
        let op = self.move_operation(index, office, OperationState::Terminated);
        op.terminated_at = Some(now);
        op.terminated_by = Some(office.code.clone());
        op.reservations = reservations.to_vec();
        let (sequence, territory) = (op.sequence, op.territory);
        self.record_controls(index, office, controls);
        let summary = match reservations.len() {
            0 => {
                format!("TIR operation {sequence} ({territory}) terminated in {} without reservations", office.country)
            }
            n => format!(
                "TIR operation {sequence} ({territory}) terminated in {} with {n} reservation(s)",
                office.country
            ),
        };
        self.add_event(Some(&office.code), summary);
        self.lapse_amendment(index);
        if let Some(next) = self.guarantee.operations.get(index + 1) {
            let countries = next.countries.clone();
            self.notify_customs(
                countries,
                CustomsEvent::PreviousOperationTerminated {
                    country: office.country,
                    reservations: reservations.to_vec(),
                },
            );
        }
        self.notify_chain(ChainEvent::OperationTerminated {
            country: office.country,
            reservations: reservations.to_vec(),
        });
        self.compare_seals(index, office, seals);
        Ok(())
    }

    /// A termination recorded in fallback keeps the order of what happened:
    /// not before its operation started (213), and not after the next
    /// operation started (281: that one may start only once this one is
    /// terminated), both by `occurred_at`.
    fn check_late_termination(&self, index: usize) -> Result<(), EtirError> {
        let Some(late) = &self.late else {
            return Ok(());
        };
        let ops = &self.guarantee.operations;
        let op = &ops[index];
        check_not_before(op.started_at, late.occurred_at, ErrorCode::OperationNotStarted, || {
            format!("operation {} started", op.sequence)
        })?;
        if let Some(next) = ops.get(index + 1)
            && let Some(next_started) = next.started_at
            && next_started < late.occurred_at
        {
            return Err(EtirError::new(ErrorCode::PreviousOperationNotTerminated, "/occurred_at").with_detail(
                format!("operation {} started at {next_started}, before this termination", next.sequence),
            ));
        }
        Ok(())
    }

    /// An amendment waiting for a country of the operation at `index` lapses
    /// when that operation terminates.
    fn lapse_amendment(&mut self, index: usize) {
        let op = &self.guarantee.operations[index];
        if let Some(amendment) = self.guarantee.amendment.take_if(|a| op.includes(a.country)) {
            self.add_event(None, format!("the amendment requested in {} lapsed", amendment.country));
        }
    }

    /// Any office of the country where the operation terminated: discharge is
    /// that country's decision, often taken away from the border.
    pub(super) fn discharge_operation(&mut self, office: &Office) -> Result<(), EtirError> {
        self.recorded_declaration()?;
        let country = office.country;
        let ops = &self.guarantee.operations;
        let terminated_here = |op: &Operation| {
            op.state == OperationState::Terminated && op.terminated_by.as_ref().is_some_and(|o| o.country() == country)
        };
        let Some(index) = ops.iter().position(terminated_here) else {
            if ops.iter().any(|op| op.includes(country) && op.state == OperationState::Started) {
                return fail(ErrorCode::OperationNotTerminated, "/office");
            }
            if let Some(op) = ops.iter().find(|op| op.includes(country) && op.state == OperationState::Terminated) {
                let by = op.terminated_by.as_ref().expect("a terminated operation names its office");
                return Err(EtirError::new(ErrorCode::PartyNotAuthorized, "/office").with_detail(format!(
                    "operation {} terminated at {by}: only the customs of {} discharge it",
                    op.sequence,
                    by.country()
                )));
            }
            return Err(self.state_found(country));
        };
        if let Some(late) = &self.late {
            let op = &ops[index];
            check_not_before(op.terminated_at, late.occurred_at, ErrorCode::OperationNotTerminated, || {
                format!("operation {} terminated", op.sequence)
            })?;
        }
        let now = self.at();
        self.mark_late(index);
        let op = self.move_operation(index, office, OperationState::Discharged);
        op.discharged_at = Some(now);
        let (sequence, territory) = (op.sequence, op.territory);
        self.add_event(Some(&office.code), format!("TIR operation {sequence} ({territory}) discharged in {country}"));
        self.notify_chain(ChainEvent::OperationDischarged { country });
        self.release_if_finished();
        Ok(())
    }

    pub(super) fn refuse_start(
        &mut self,
        office: &Office,
        reason: &str,
        controls: &[ReportedControl],
    ) -> Result<(), EtirError> {
        let index = self.operation_to_start(office)?;
        if index == 0 {
            return Err(EtirError::new(ErrorCode::RefusalNotAuthorized, "/office")
                .with_detail("customs of departure refuse by not accepting the guarantee"));
        }
        self.check_may_start(index)?;
        self.mark_late(index);
        let op = self.move_operation(index, office, OperationState::Refused);
        op.refusal_reason = Some(reason.to_owned());
        let (sequence, territory) = (op.sequence, op.territory);
        self.record_controls(index, office, controls);
        self.add_event(
            Some(&office.code),
            format!("start of TIR operation {sequence} ({territory}) refused in {}: {reason}", office.country),
        );
        let others = self.countries_from(index, office.country);
        self.notify_customs(
            others,
            CustomsEvent::OperationRefused { country: office.country, reason: reason.to_owned() },
        );
        self.notify_chain(ChainEvent::OperationRefused { country: office.country, reason: reason.to_owned() });
        self.release_if_finished();
        Ok(())
    }

    /// X1, on the sender country's started operation.
    pub(super) fn record_incident(
        &mut self,
        office: &Office,
        kind: IncidentKind,
        description: &str,
        new_vehicle: Option<&Vehicle>,
        new_seals: Option<&[String]>,
    ) -> Result<(), EtirError> {
        self.recorded_declaration()?;
        let country = office.country;
        let Some(index) = self.started_index(country) else {
            return Err(EtirError::new(ErrorCode::OperationNotStarted, "/office")
                .with_detail(format!("no operation in {country} is started")));
        };
        if let Some(late) = &self.late {
            let op = &self.guarantee.operations[index];
            check_not_before(op.started_at, late.occurred_at, ErrorCode::OperationNotStarted, || {
                format!("operation {} started", op.sequence)
            })?;
        }
        self.operation = Some(self.guarantee.operations[index].sequence);
        self.mark_late(index);
        let incident = Incident {
            kind,
            description: description.to_owned(),
            office: office.code.clone(),
            at: self.at(),
            new_vehicle: new_vehicle.cloned(),
            new_seals: new_seals.map(distinct),
        };
        self.guarantee.operations[index].incidents.push(incident);
        if let Some(vehicle) = new_vehicle {
            self.guarantee.vehicle = Some(vehicle.clone());
        }
        if let Some(seals) = new_seals {
            self.guarantee.seals = Some(distinct(seals));
        }
        self.add_event(Some(&office.code), format!("incident in {country} ({}): {description}", kind.as_str()));
        let others = self.countries_from(index, country);
        let description = description.to_owned();
        self.notify_customs(others, CustomsEvent::Incident { country, kind, description: description.clone() });
        self.notify_chain(ChainEvent::Incident { country, kind, description });
        Ok(())
    }
}

/// The seals in the order reported, each once.
fn distinct(seals: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    seals.iter().filter(|seal| seen.insert(seal.as_str())).cloned().collect()
}

fn seal_list(seals: &[String]) -> String {
    if seals.is_empty() { "none".to_owned() } else { seals.join(", ") }
}

/// A start (I9) or refusal to start (I17) recorded in fallback: exempt from
/// 281 while the previous operation is started (its termination may be
/// recorded late too), but not before the previous one started, nor before it
/// terminated when it has (281), by `occurred_at`.
fn check_late_start(previous: &Operation, occurred_at: Timestamp) -> Result<(), EtirError> {
    let (since, what) = match previous.state {
        OperationState::Started => (previous.started_at, "started"),
        OperationState::Terminated | OperationState::Discharged => (previous.terminated_at, "terminated"),
        _ => {
            return Err(EtirError::new(ErrorCode::PreviousOperationNotTerminated, "/office").with_detail(format!(
                "operation {} ({}) is {}",
                previous.sequence,
                previous.territory,
                previous.state.as_str()
            )));
        }
    };
    check_not_before(since, occurred_at, ErrorCode::PreviousOperationNotTerminated, || {
        format!("operation {} {what}", previous.sequence)
    })
}

/// `occurred_at` may not be before `since`, the time of the step it follows
/// (`what` names that step); `code` otherwise, at `/occurred_at`.
fn check_not_before(
    since: Option<Timestamp>,
    occurred_at: Timestamp,
    code: ErrorCode,
    what: impl FnOnce() -> String,
) -> Result<(), EtirError> {
    match since {
        Some(since) if occurred_at < since => {
            Err(EtirError::new(code, "/occurred_at").with_detail(format!("{} at {since}, after {occurred_at}", what())))
        }
        _ => Ok(()),
    }
}
