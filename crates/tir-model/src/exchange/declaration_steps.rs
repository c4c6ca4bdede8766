//! The declaration: the holder's advance data (E9, E11, E13) and its
//! recording by customs of departure (I7).

use super::authorize::check_departure_office;
use super::notify::{ChainEvent, CustomsEvent, NotificationEvent};
use super::{Registry, Step};
use crate::declaration::Declaration;
use crate::error::{ErrorCode, EtirError, fail};
use crate::guarantee::{GuaranteeState, Operation};
use crate::ids::Country;
use crate::party::{Office, Recipient};

impl Step<'_> {
    fn check_open_for_advance_data(&self) -> Result<(), EtirError> {
        match self.guarantee.state {
            GuaranteeState::Cancelled | GuaranteeState::Released => {
                fail(ErrorCode::GuaranteeStateForbids, "/guarantee_reference")
            }
            _ if self.guarantee.declaration.is_some() => {
                fail(ErrorCode::DeclarationAlreadyRecorded, "/guarantee_reference")
            }
            _ => Ok(()),
        }
    }

    /// E9, or E11 when `amendment`: the holder's declaration, kept until customs record one.
    pub(super) fn advance_data(
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
        let holder = self.guarantee.holder.clone();
        let event = if amendment {
            NotificationEvent::AdvanceAmendment { holder }
        } else {
            NotificationEvent::AdvanceData { holder }
        };
        self.add_event(None, format!("{} for {}", event.name(), itinerary_text(&declaration.itinerary)));
        self.notify(vec![Recipient::Customs(declaration.country_of_departure())], event);
        Ok(())
    }

    /// E13: the holder withdraws advance data customs have not recorded.
    pub(super) fn advance_cancellation(&mut self, reason: &str) -> Result<(), EtirError> {
        self.check_open_for_advance_data()?;
        let Some(advance) = self.guarantee.advance.take() else {
            return fail(ErrorCode::DeclarationNotFound, "/guarantee_reference");
        };
        self.add_event(None, format!("advance data withdrawn: {reason}"));
        self.notify(
            vec![Recipient::Customs(advance.country_of_departure())],
            NotificationEvent::AdvanceCancellation { reason: reason.to_owned() },
        );
        Ok(())
    }

    /// I7: the declaration given, else the advance data, recorded; one
    /// pending operation per country of its itinerary.
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
        // After recording, I7 only accepts an amendment, and none can wait yet.
        if self.guarantee.declaration.is_some() {
            return fail(ErrorCode::NoAmendmentWaiting, "/guarantee_reference");
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
        check_departure_office(office, &declaration)?;
        self.guarantee.operations = declaration.itinerary.iter().map(|c| Operation::pending(*c)).collect();
        self.guarantee.advance = None;
        self.add_event(
            Some(&office.code),
            format!("declaration recorded for {}", itinerary_text(&declaration.itinerary)),
        );
        let later = declaration.itinerary.iter().skip(1).copied();
        self.notify_customs(later, CustomsEvent::DeclarationRecorded { office: office.code.clone() });
        self.guarantee.declaration = Some(declaration);
        self.notify_chain(ChainEvent::DeclarationRecorded { office: office.code.clone() });
        Ok(())
    }
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

fn itinerary_text(itinerary: &[Country]) -> String {
    itinerary.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("-")
}
