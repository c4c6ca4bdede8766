//! The TIR operation in each country of the itinerary: start (I9),
//! termination (I11), discharge (I13) and refusal to start (I17).

use std::collections::BTreeSet;

use super::Step;
use super::authorize::{check_departure_office, check_office_role};
use super::notify::{ChainEvent, CustomsEvent};
use crate::error::{ErrorCode, EtirError, fail};
use crate::guarantee::{Finding, GuaranteeState, Operation, OperationState};
use crate::party::{Office, OfficeRole};

impl Step<'_> {
    /// This country's operation; the declaration must be recorded.
    fn operation_index(&self, office: &Office) -> Result<usize, EtirError> {
        if self.guarantee.declaration.is_none() {
            return fail(ErrorCode::DeclarationNotRecorded, "/guarantee_reference");
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
            return check_departure_office(office, declaration);
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

    /// Fails unless the operation at `index` is `expected`, with the error its
    /// actual state calls for.
    fn check_operation_state(&self, index: usize, expected: OperationState) -> Result<(), EtirError> {
        let state = self.guarantee.operations[index].state;
        let code = match state {
            _ if state == expected => return Ok(()),
            OperationState::Pending => ErrorCode::OperationNotStarted,
            OperationState::Started if expected == OperationState::Terminated => ErrorCode::OperationNotTerminated,
            OperationState::Started => ErrorCode::OperationAlreadyStarted,
            OperationState::Terminated => ErrorCode::OperationAlreadyTerminated,
            OperationState::Discharged => ErrorCode::OperationAlreadyDischarged,
            OperationState::Refused => ErrorCode::OperationRefused,
        };
        fail(code, "/office")
    }

    /// Puts the operation at `index` in `state`, acted on by `office`; the caller
    /// records the rest of the step on the operation returned.
    fn move_operation(&mut self, index: usize, office: &Office, state: OperationState) -> &mut Operation {
        let op = &mut self.guarantee.operations[index];
        op.state = state;
        op.office = Some(office.code.clone());
        op
    }

    /// Preconditions shared by start (I9) and refusal to start (I17).
    fn check_may_start(&self, index: usize) -> Result<(), EtirError> {
        self.check_operation_state(index, OperationState::Pending)?;
        if let Some(refused) = self.guarantee.operations[..index].iter().find(|op| op.state == OperationState::Refused)
        {
            return Err(EtirError::new(ErrorCode::OperationRefused, "/office")
                .with_detail(format!("the operation in {} was refused", refused.country)));
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

    pub(super) fn start_operation(&mut self, office: &Office, seals: Option<&[String]>) -> Result<(), EtirError> {
        match self.guarantee.state {
            GuaranteeState::Accepted => {}
            GuaranteeState::Registered | GuaranteeState::Cancelled | GuaranteeState::Released => {
                return fail(ErrorCode::GuaranteeStateForbids, "/guarantee_reference");
            }
        }
        let index = self.operation_index(office)?;
        self.check_start_office(office, index)?;
        self.check_may_start(index)?;
        self.move_operation(index, office, OperationState::Started).started_at = Some(self.now);
        self.add_event(Some(&office.code), format!("TIR operation started in {}", office.country));
        self.notify_chain(ChainEvent::OperationStarted { country: office.country, office: office.code.clone() });
        if self.guarantee.seals.is_none() {
            // The first start records the transport's seals: the ones customs
            // checked or affixed there, else the declared ones.
            let declared = &self.guarantee.declaration.as_ref().expect("operation_index checked it").seals;
            let recorded = match seals {
                Some(reported) if !reported.is_empty() => distinct(reported),
                _ => declared.clone(),
            };
            self.guarantee.seals = Some(recorded);
        } else {
            self.compare_seals(index, office, seals);
        }
        Ok(())
    }

    /// Seals reported after the first start: another set is accepted, recorded
    /// as a finding on the operation at `index`, told to the chain, and becomes
    /// the recorded seals.
    fn compare_seals(&mut self, index: usize, office: &Office, reported: Option<&[String]>) {
        let Some(reported) = reported else {
            return;
        };
        let recorded = self.guarantee.seals.clone().unwrap_or_default();
        let as_set = |seals: &[String]| seals.iter().cloned().collect::<BTreeSet<String>>();
        if as_set(&recorded) == as_set(reported) {
            return;
        }
        let reported = distinct(reported);
        self.guarantee.operations[index].findings.push(Finding::SealsDiffer {
            office: office.code.clone(),
            at: self.now,
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
        self.notify_chain(ChainEvent::SealFinding {
            country: office.country,
            office: office.code.clone(),
            recorded,
            reported,
        });
    }

    pub(super) fn terminate_operation(
        &mut self,
        office: &Office,
        seals: Option<&[String]>,
        reservations: &[String],
    ) -> Result<(), EtirError> {
        let index = self.operation_index(office)?;
        self.check_termination_office(office, index)?;
        self.check_operation_state(index, OperationState::Started)?;
        let now = self.now;
        let op = self.move_operation(index, office, OperationState::Terminated);
        op.terminated_at = Some(now);
        op.reservations = reservations.to_vec();
        let summary = match reservations.len() {
            0 => format!("TIR operation terminated in {} without reservations", office.country),
            n => format!("TIR operation terminated in {} with {n} reservation(s)", office.country),
        };
        self.add_event(Some(&office.code), summary);
        if let Some(next) = self.guarantee.operations.get(index + 1).map(|op| op.country) {
            self.notify_customs(
                [next],
                CustomsEvent::PreviousOperationTerminated {
                    country: office.country,
                    office: office.code.clone(),
                    reservations: reservations.to_vec(),
                },
            );
        }
        self.notify_chain(ChainEvent::OperationTerminated {
            country: office.country,
            office: office.code.clone(),
            reservations: reservations.to_vec(),
        });
        self.compare_seals(index, office, seals);
        Ok(())
    }

    /// Any office of the country: discharge is the country's decision on the
    /// terminated operation, often taken away from the border.
    pub(super) fn discharge_operation(&mut self, office: &Office) -> Result<(), EtirError> {
        let index = self.operation_index(office)?;
        self.check_operation_state(index, OperationState::Terminated)?;
        self.move_operation(index, office, OperationState::Discharged).discharged_at = Some(self.now);
        self.add_event(Some(&office.code), format!("TIR operation discharged in {}", office.country));
        self.notify_chain(ChainEvent::OperationDischarged { country: office.country, office: office.code.clone() });
        self.release_if_finished();
        Ok(())
    }

    pub(super) fn refuse_start(&mut self, office: &Office, reason: &str) -> Result<(), EtirError> {
        // A cancelled guarantee's pending operation may still be refused (binding v1).
        if matches!(self.guarantee.state, GuaranteeState::Registered | GuaranteeState::Released) {
            return fail(ErrorCode::GuaranteeStateForbids, "/guarantee_reference");
        }
        let index = self.operation_index(office)?;
        self.check_start_office(office, index)?;
        self.check_may_start(index)?;
        self.move_operation(index, office, OperationState::Refused).refusal_reason = Some(reason.to_owned());
        self.add_event(
            Some(&office.code),
            format!("start of the TIR operation refused in {}: {reason}", office.country),
        );
        self.notify_chain(ChainEvent::OperationRefused {
            country: office.country,
            office: office.code.clone(),
            reason: reason.to_owned(),
        });
        self.release_if_finished();
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
