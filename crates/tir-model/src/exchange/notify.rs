//! What the state machine tells whom: the notifications of the contract as
//! Rust types. Rendering them is the binding's job (`view::notification_view`).

use super::Step;
use crate::declaration::Declaration;
use crate::guarantee::{Guarantee, GuaranteeState};
use crate::ids::{Country, OfficeCode, Timestamp, TirId};
use crate::message::MessageType;
use crate::party::Recipient;
use crate::records::IncidentKind;

/// One notification, with every feed that receives it: they all receive the
/// same payload, so it is rendered once.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Never empty.
    pub recipients: Vec<Recipient>,
    /// The request message that caused it.
    pub message_type: MessageType,
    /// The guarantee's state when it was sent: a release follows, in the same
    /// message, the discharge or refusal that caused it.
    pub guarantee_state: GuaranteeState,
    pub at: Timestamp,
    /// The customs office that acted, if customs did.
    pub office: Option<OfficeCode>,
    /// The sequence of the operation concerned, if one is.
    pub operation: Option<u16>,
    /// The declaration's version when it was sent (0: advance data or none).
    pub declaration_version: u32,
    pub event: NotificationEvent,
}

impl Notification {
    /// The notification message's type: `E7`, `I15`, `E9`, `E11` or `E13`.
    pub fn kind(&self) -> &'static str {
        self.event.kind()
    }
}

/// One variant per notification message of the contract.
#[derive(Debug, Clone, PartialEq)]
pub enum NotificationEvent {
    /// E7, to the guarantee chain: what happened to its guarantee.
    Chain(ChainEvent),
    /// I15, to customs of countries on the itinerary: what concerns their operation.
    Customs(CustomsEvent),
    /// E9, to customs of departure: the holder's advance data.
    AdvanceData { holder: TirId },
    /// E11, to customs of departure: the advance data as the holder amended it.
    AdvanceAmendment { holder: TirId },
    /// E13, to customs of departure of the advance data the holder withdrew.
    AdvanceCancellation { reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChainEvent {
    GuaranteeAccepted,
    DeclarationRecorded,
    /// An amendment accepted in `country`: the declaration's new version.
    AmendmentAccepted {
        country: Country,
        changes: Vec<String>,
    },
    OperationStarted {
        country: Country,
    },
    OperationTerminated {
        country: Country,
        reservations: Vec<String>,
    },
    OperationDischarged {
        country: Country,
    },
    OperationRefused {
        country: Country,
        reason: String,
    },
    /// Seals reported other than the recorded ones; `reported` is now the record.
    SealFinding {
        country: Country,
        recorded: Vec<String>,
        reported: Vec<String>,
    },
    Incident {
        country: Country,
        kind: IncidentKind,
        description: String,
    },
    GuaranteeReleased,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CustomsEvent {
    /// To every country of the itinerary, once a declaration is recorded.
    GuaranteeCancelled { reason: String },
    /// To every other country of the itinerary, with the declaration.
    DeclarationRecorded,
    /// To every other country of the itinerary, with the new version and what changed.
    DeclarationAmended { country: Country, changes: Vec<String> },
    /// To the customs of `country`, with the amended text waiting for them.
    AmendmentRequested { country: Country },
    /// To the countries of the next operation.
    PreviousOperationTerminated { country: Country, reservations: Vec<String> },
    /// To the other countries of the refused operation and the later ones.
    OperationRefused { country: Country, reason: String },
    /// To the other countries of the current operation and the later ones.
    Incident { country: Country, kind: IncidentKind, description: String },
}

impl NotificationEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Chain(_) => "E7",
            Self::Customs(_) => "I15",
            Self::AdvanceData { .. } => "E9",
            Self::AdvanceAmendment { .. } => "E11",
            Self::AdvanceCancellation { .. } => "E13",
        }
    }

    /// The event's name in the contract's payloads.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Chain(event) => match event {
                ChainEvent::GuaranteeAccepted => "guarantee_accepted",
                ChainEvent::DeclarationRecorded => "declaration_recorded",
                ChainEvent::AmendmentAccepted { .. } => "amendment_accepted",
                ChainEvent::OperationStarted { .. } => "operation_started",
                ChainEvent::OperationTerminated { .. } => "operation_terminated",
                ChainEvent::OperationDischarged { .. } => "operation_discharged",
                ChainEvent::OperationRefused { .. } => "operation_refused",
                ChainEvent::SealFinding { .. } => "seal_finding",
                ChainEvent::Incident { .. } => "incident",
                ChainEvent::GuaranteeReleased => "guarantee_released",
            },
            Self::Customs(event) => match event {
                CustomsEvent::GuaranteeCancelled { .. } => "guarantee_cancelled",
                CustomsEvent::DeclarationRecorded => "declaration_recorded",
                CustomsEvent::DeclarationAmended { .. } => "amendment_accepted",
                CustomsEvent::AmendmentRequested { .. } => "amendment_requested",
                CustomsEvent::PreviousOperationTerminated { .. } => "previous_operation_terminated",
                CustomsEvent::OperationRefused { .. } => "operation_refused",
                CustomsEvent::Incident { .. } => "incident",
            },
            Self::AdvanceData { .. } => "advance_data",
            Self::AdvanceAmendment { .. } => "advance_data_amended",
            Self::AdvanceCancellation { .. } => "advance_data_cancelled",
        }
    }

    /// The declaration the payload carries (E9, E11, I15 for a recorded or
    /// amended one, and the amendment waiting for customs): the one
    /// `guarantee` holds as the message left it. Not copied into the event,
    /// since a declaration can be large.
    pub fn declaration<'g>(&self, guarantee: &'g Guarantee) -> Option<&'g Declaration> {
        match self {
            Self::AdvanceData { .. } | Self::AdvanceAmendment { .. } => guarantee.advance.as_ref(),
            Self::Customs(CustomsEvent::DeclarationRecorded | CustomsEvent::DeclarationAmended { .. }) => {
                guarantee.declaration.as_ref()
            }
            Self::Customs(CustomsEvent::AmendmentRequested { .. }) => {
                guarantee.amendment.as_ref().map(|a| &a.declaration)
            }
            _ => None,
        }
    }
}

impl Step<'_> {
    /// Sends `event` to every feed in `recipients`, if there is any.
    pub(super) fn notify(&mut self, recipients: Vec<Recipient>, event: NotificationEvent) {
        if recipients.is_empty() {
            return;
        }
        self.notifications.push(Notification {
            recipients,
            message_type: self.request.kind,
            guarantee_state: self.guarantee.state,
            at: self.now,
            office: self.office.clone(),
            operation: self.operation,
            declaration_version: self.guarantee.declaration_version,
            event,
        });
    }

    pub(super) fn notify_chain(&mut self, event: ChainEvent) {
        let chain = Recipient::Chain(self.guarantee.chain.clone());
        self.notify(vec![chain], NotificationEvent::Chain(event));
    }

    /// To the customs of `countries`, each once, in the order given.
    pub(super) fn notify_customs(&mut self, countries: impl IntoIterator<Item = Country>, event: CustomsEvent) {
        let mut recipients: Vec<Recipient> = Vec::new();
        for country in countries {
            let recipient = Recipient::Customs(country);
            if !recipients.contains(&recipient) {
                recipients.push(recipient);
            }
        }
        self.notify(recipients, NotificationEvent::Customs(event));
    }
}
