//! The guarantee with its transport: the aggregate every message acts on.

use serde::{Deserialize, Serialize};

use crate::declaration::Declaration;
use crate::ids::{Country, Date, GuaranteeRef, OfficeCode, Timestamp, TirId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuaranteeState {
    Registered,
    Accepted,
    Released,
    Cancelled,
}

impl GuaranteeState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Accepted => "accepted",
            Self::Released => "released",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    Pending,
    Started,
    Terminated,
    Discharged,
    Refused,
}

impl OperationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Started => "started",
            Self::Terminated => "terminated",
            Self::Discharged => "discharged",
            Self::Refused => "refused",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclarationState {
    None,
    Advance,
    Recorded,
}

impl DeclarationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Advance => "advance",
            Self::Recorded => "recorded",
        }
    }
}

/// The TIR operation in one country of the itinerary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub country: Country,
    pub state: OperationState,
    /// The office that last acted on this operation.
    pub office: Option<OfficeCode>,
    pub started_at: Option<Timestamp>,
    pub terminated_at: Option<Timestamp>,
    pub discharged_at: Option<Timestamp>,
    pub reservations: Vec<String>,
    pub refusal_reason: Option<String>,
    /// What customs reported that differs from the record; accepted, never refused.
    #[serde(default)]
    pub findings: Vec<Finding>,
}

/// A difference customs reported on an operation: it is for them to act on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// Seals reported in I9 or I11 other than the recorded ones, compared as sets.
    SealsDiffer { office: OfficeCode, at: Timestamp, recorded: Vec<String>, reported: Vec<String> },
}

impl Operation {
    pub fn pending(country: Country) -> Operation {
        Operation {
            country,
            state: OperationState::Pending,
            office: None,
            started_at: None,
            terminated_at: None,
            discharged_at: None,
            reservations: Vec::new(),
            refusal_reason: None,
            findings: Vec::new(),
        }
    }
}

/// One step of the transport's history, for timelines. Kept apart from the
/// guarantee: the guarantee is rewritten on every message, its history only grows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    pub message_type: String,
    pub party: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office: Option<OfficeCode>,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guarantee {
    pub reference: GuaranteeRef,
    pub holder: TirId,
    /// Party id of the guarantee chain that registered it.
    pub chain: String,
    pub state: GuaranteeState,
    pub valid_until: Option<Date>,
    pub registered_at: Timestamp,
    pub accepted_by: Option<OfficeCode>,
    pub cancellation_reason: Option<String>,
    /// Advance data from the holder, until customs record a declaration.
    pub advance: Option<Declaration>,
    pub declaration: Option<Declaration>,
    /// One per itinerary country, created when the declaration is recorded.
    pub operations: Vec<Operation>,
    /// The transport's seals as customs recorded them at the first start, and
    /// as later reports replaced them; `None` before the first start.
    #[serde(default)]
    pub seals: Option<Vec<String>>,
}

impl Guarantee {
    pub fn declaration_state(&self) -> DeclarationState {
        match (&self.declaration, &self.advance) {
            (Some(_), _) => DeclarationState::Recorded,
            (None, Some(_)) => DeclarationState::Advance,
            (None, None) => DeclarationState::None,
        }
    }

    /// The recorded declaration, else the advance data.
    pub fn current_declaration(&self) -> Option<&Declaration> {
        self.declaration.as_ref().or(self.advance.as_ref())
    }

    /// The recorded seals, else the declared ones.
    pub fn seals(&self) -> &[String] {
        match &self.seals {
            Some(recorded) => recorded,
            None => self.current_declaration().map(|d| d.seals.as_slice()).unwrap_or(&[]),
        }
    }

    pub fn itinerary(&self) -> &[Country] {
        self.current_declaration().map(|d| d.itinerary.as_slice()).unwrap_or(&[])
    }

    pub fn on_itinerary(&self, country: Country) -> bool {
        self.itinerary().contains(&country)
    }

    /// The transport is over when every operation is discharged, or a refusal
    /// stopped it after every earlier operation was discharged.
    pub fn transport_finished(&self) -> bool {
        if self.operations.is_empty() {
            return false;
        }
        for op in &self.operations {
            match op.state {
                OperationState::Discharged => continue,
                OperationState::Refused => return true,
                _ => return false,
            }
        }
        true
    }
}
