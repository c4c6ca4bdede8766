//! What the state machine tells whom: the notifications of the contract as
//! Rust types. Rendering them is the binding's job (`view::notification_view`).

use super::Step;
use crate::declaration::Declaration;
use crate::guarantee::{Guarantee, GuaranteeState};
use crate::ids::{Country, OfficeCode, Timestamp, TirId};
use crate::message::MessageType;
use crate::party::Recipient;

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
    GuaranteeAccepted {
        office: OfficeCode,
    },
    DeclarationRecorded {
        office: OfficeCode,
    },
    OperationStarted {
        country: Country,
        office: OfficeCode,
    },
    OperationTerminated {
        country: Country,
        office: OfficeCode,
        reservations: Vec<String>,
    },
    OperationDischarged {
        country: Country,
        office: OfficeCode,
    },
    OperationRefused {
        country: Country,
        office: OfficeCode,
        reason: String,
    },
    /// Seals reported other than the recorded ones; `reported` is now the record.
    SealFinding {
        country: Country,
        office: OfficeCode,
        recorded: Vec<String>,
        reported: Vec<String>,
    },
    GuaranteeReleased,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CustomsEvent {
    /// To every country of the itinerary.
    GuaranteeCancelled { reason: String },
    /// To every country after the one that recorded the declaration.
    DeclarationRecorded { office: OfficeCode },
    /// To the next country of the itinerary.
    PreviousOperationTerminated { country: Country, office: OfficeCode, reservations: Vec<String> },
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
                ChainEvent::GuaranteeAccepted { .. } => "guarantee_accepted",
                ChainEvent::DeclarationRecorded { .. } => "declaration_recorded",
                ChainEvent::OperationStarted { .. } => "operation_started",
                ChainEvent::OperationTerminated { .. } => "operation_terminated",
                ChainEvent::OperationDischarged { .. } => "operation_discharged",
                ChainEvent::OperationRefused { .. } => "operation_refused",
                ChainEvent::SealFinding { .. } => "seal_finding",
                ChainEvent::GuaranteeReleased => "guarantee_released",
            },
            Self::Customs(event) => match event {
                CustomsEvent::GuaranteeCancelled { .. } => "guarantee_cancelled",
                CustomsEvent::DeclarationRecorded { .. } => "declaration_recorded",
                CustomsEvent::PreviousOperationTerminated { .. } => "previous_operation_terminated",
            },
            Self::AdvanceData { .. } => "advance_data",
            Self::AdvanceAmendment { .. } => "advance_data_amended",
            Self::AdvanceCancellation { .. } => "advance_data_cancelled",
        }
    }

    /// The declaration the payload carries (E9, E11, and I15 for a recorded
    /// one): the one `guarantee` holds as the message left it. Not copied into
    /// the event, since a declaration can be large.
    pub fn declaration<'g>(&self, guarantee: &'g Guarantee) -> Option<&'g Declaration> {
        match self {
            Self::AdvanceData { .. } | Self::AdvanceAmendment { .. } => guarantee.advance.as_ref(),
            Self::Customs(CustomsEvent::DeclarationRecorded { .. }) => guarantee.declaration.as_ref(),
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
            event,
        });
    }

    pub(super) fn notify_chain(&mut self, event: ChainEvent) {
        let chain = Recipient::Chain(self.guarantee.chain.clone());
        self.notify(vec![chain], NotificationEvent::Chain(event));
    }

    pub(super) fn notify_customs(&mut self, countries: impl IntoIterator<Item = Country>, event: CustomsEvent) {
        let recipients = countries.into_iter().map(Recipient::Customs).collect();
        self.notify(recipients, NotificationEvent::Customs(event));
    }
}
