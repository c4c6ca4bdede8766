//! The guarantee with its transport: the aggregate every message acts on.

use serde::{Deserialize, Serialize};

use crate::declaration::{Declaration, Vehicle};
use crate::ids::{Country, Date, GuaranteeRef, OfficeCode, Timestamp, TirId};
use crate::operation::PlannedOperation;
use crate::records::{Control, Incident, OperationId};
use crate::territory::Territory;

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
    /// No advance data has been sent (a value tirhub adds to the contract's four).
    None,
    Advance,
    /// The holder withdrew the advance data (E13).
    Withdrawn,
    Recorded,
    /// Recorded, and an amendment waits for the customs of a country.
    AmendmentRequested,
}

impl DeclarationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Advance => "advance",
            Self::Withdrawn => "withdrawn",
            Self::Recorded => "recorded",
            Self::AmendmentRequested => "amendment_requested",
        }
    }
}

/// One TIR operation: the transport's passage through one TIR territory, from
/// an office of departure or entry to one of exit or destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// 1 for the first operation, then 2, 3, ...
    pub sequence: u16,
    pub territory: Territory,
    /// In the order travelled; never empty.
    pub countries: Vec<Country>,
    /// Chosen by the customs that started it.
    pub operation_id: Option<OperationId>,
    pub state: OperationState,
    /// The office that last acted on this operation.
    pub office: Option<OfficeCode>,
    pub started_at: Option<Timestamp>,
    pub terminated_at: Option<Timestamp>,
    pub discharged_at: Option<Timestamp>,
    /// Where it terminated: only customs of this office's country discharge it.
    pub terminated_by: Option<OfficeCode>,
    /// The seals as customs found them at the start (or affixed there).
    pub seals: Vec<String>,
    pub reservations: Vec<String>,
    pub controls: Vec<Control>,
    pub refusal_reason: Option<String>,
    /// What customs reported that differs from the record; accepted, never refused.
    pub findings: Vec<Finding>,
    pub incidents: Vec<Incident>,
    /// What customs recorded late on this operation after a fallback period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recorded_late: Vec<LateRecord>,
}

/// A message recorded in fallback: it happened at the office at `occurred_at`
/// (the time the operation keeps), and tirhub received it at `received_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LateRecord {
    pub message_type: String,
    pub occurred_at: Timestamp,
    pub received_at: Timestamp,
    /// The fallback period it was recorded under.
    pub period: String,
}

/// A difference customs reported on an operation: it is for them to act on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// Seals reported in I9 or I11 other than the recorded ones, compared as sets.
    SealsDiffer { office: OfficeCode, at: Timestamp, recorded: Vec<String>, reported: Vec<String> },
}

impl Operation {
    /// The pending operation `planned` describes.
    pub fn pending(planned: &PlannedOperation) -> Operation {
        Operation {
            sequence: planned.sequence(),
            territory: planned.territory(),
            countries: planned.countries().to_vec(),
            operation_id: None,
            state: OperationState::Pending,
            office: None,
            started_at: None,
            terminated_at: None,
            discharged_at: None,
            terminated_by: None,
            seals: Vec::new(),
            reservations: Vec::new(),
            controls: Vec::new(),
            refusal_reason: None,
            findings: Vec::new(),
            incidents: Vec::new(),
            recorded_late: Vec::new(),
        }
    }

    pub fn includes(&self, country: Country) -> bool {
        self.countries.contains(&country)
    }
}

/// An amendment the holder requested after recording (E11 with `country`),
/// waiting for the customs of `country` to accept it (I7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Amendment {
    pub country: Country,
    pub declaration: Declaration,
    pub requested_at: Timestamp,
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
    /// Recorded in fallback: when it happened at the office (`at` is when
    /// tirhub received it) and the fallback period it was recorded under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_period: Option<String>,
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
    /// The holder's advance data (version 0). After recording it is kept only
    /// when customs recorded another text; else version 0 is version 1's text.
    pub advance: Option<Declaration>,
    /// The holder withdrew the advance data (E13) and sent none since.
    pub advance_withdrawn: bool,
    /// Customs recorded the advance data as it was: version 0 is version 1's text.
    pub recorded_from_advance: bool,
    /// The recorded declaration, version `declaration_version`.
    pub declaration: Option<Declaration>,
    /// 0 before recording, then 1, 2, ... with each accepted amendment.
    pub declaration_version: u32,
    /// Versions 1 to `declaration_version - 1`, in order.
    pub superseded: Vec<Declaration>,
    /// The amendment waiting for customs, if any.
    pub amendment: Option<Amendment>,
    /// E11s accepted, before and after recording, for the 284 limit.
    pub amendments_requested: u32,
    /// One per TIR territory the itinerary passes through, created when the
    /// declaration is recorded.
    pub operations: Vec<Operation>,
    /// The transport's seals as customs recorded them at the first start, and
    /// as later reports replaced them; `None` before the first start.
    pub seals: Option<Vec<String>>,
    /// The vehicle after a transhipment (X1); else the declaration's.
    pub vehicle: Option<Vehicle>,
}

impl Guarantee {
    /// A guarantee as E1 registers it: no declaration, no operation yet.
    pub fn registered(
        reference: GuaranteeRef,
        holder: TirId,
        chain: String,
        valid_until: Option<Date>,
        now: Timestamp,
    ) -> Guarantee {
        Guarantee {
            reference,
            holder,
            chain,
            state: GuaranteeState::Registered,
            valid_until,
            registered_at: now,
            accepted_by: None,
            cancellation_reason: None,
            advance: None,
            advance_withdrawn: false,
            recorded_from_advance: false,
            declaration: None,
            declaration_version: 0,
            superseded: Vec::new(),
            amendment: None,
            amendments_requested: 0,
            operations: Vec::new(),
            seals: None,
            vehicle: None,
        }
    }

    pub fn declaration_state(&self) -> DeclarationState {
        match (&self.declaration, &self.advance) {
            (Some(_), _) if self.amendment.is_some() => DeclarationState::AmendmentRequested,
            (Some(_), _) => DeclarationState::Recorded,
            (None, Some(_)) => DeclarationState::Advance,
            (None, None) if self.advance_withdrawn => DeclarationState::Withdrawn,
            (None, None) => DeclarationState::None,
        }
    }

    /// The recorded declaration, else the advance data.
    pub fn current_declaration(&self) -> Option<&Declaration> {
        self.declaration.as_ref().or(self.advance.as_ref())
    }

    /// Declaration version `version` (advance data is version 0), if it exists.
    pub fn declaration_at(&self, version: u32) -> Option<&Declaration> {
        let Some(current) = &self.declaration else {
            return if version == 0 { self.advance.as_ref() } else { None };
        };
        match version {
            v if v == self.declaration_version => Some(current),
            0 => self.advance.as_ref().or_else(|| self.recorded_from_advance.then(|| self.declaration_at(1)).flatten()),
            v if v < self.declaration_version => self.superseded.get(v as usize - 1),
            _ => None,
        }
    }

    /// The recorded seals, else the declared ones.
    pub fn seals(&self) -> &[String] {
        match &self.seals {
            Some(recorded) => recorded,
            None => self.current_declaration().map(|d| d.seals.as_slice()).unwrap_or(&[]),
        }
    }

    /// The vehicle after a transhipment, else the declared one.
    pub fn vehicle(&self) -> Option<&Vehicle> {
        self.vehicle.as_ref().or_else(|| self.current_declaration().and_then(|d| d.vehicle.as_ref()))
    }

    pub fn itinerary(&self) -> &[Country] {
        self.current_declaration().map(|d| d.itinerary.as_slice()).unwrap_or(&[])
    }

    pub fn on_itinerary(&self, country: Country) -> bool {
        self.itinerary().contains(&country)
    }

    /// The transport is over when no operation is started or terminated and
    /// every operation before the first refused one (all of them, when none
    /// is refused) is discharged.
    pub fn transport_finished(&self) -> bool {
        if self.operations.is_empty() {
            return false;
        }
        for op in &self.operations {
            match op.state {
                OperationState::Discharged => continue,
                OperationState::Refused => break,
                _ => return false,
            }
        }
        !self.operations.iter().any(|op| matches!(op.state, OperationState::Started | OperationState::Terminated))
    }
}
