//! What the risk engine stores (its persistence types): assessments with the
//! context they were made on, inspection outcomes, trained models and each
//! office's selection policy. The store writes them as JSON; the server shows
//! them only to the customs of their administration.

use serde::{Deserialize, Serialize};
use tir_model::{Country, Timestamp};

use crate::assessment::Assessment;
use crate::context::TransportContext;
use crate::policy::PolicyConfig;

/// The feed item that made customs aware of a transport, so an assessment ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// E9: the holder's advance data, forwarded to customs of departure.
    AdvanceData,
    /// E11 before recording: the advance data as amended.
    AdvanceDataAmended,
    /// I15 to a later country: the declaration recorded at departure.
    DeclarationRecorded,
    /// I15 to a later country: an amendment accepted en route.
    AmendmentAccepted,
}

impl Trigger {
    /// The trigger of a feed item's `event`, if that event tells customs of a
    /// transport's declaration.
    pub fn of_event(event: &str) -> Option<Trigger> {
        Some(match event {
            "advance_data" => Trigger::AdvanceData,
            "advance_data_amended" => Trigger::AdvanceDataAmended,
            "declaration_recorded" => Trigger::DeclarationRecorded,
            "amendment_accepted" => Trigger::AmendmentAccepted,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::AdvanceData => "advance_data",
            Trigger::AdvanceDataAmended => "advance_data_amended",
            Trigger::DeclarationRecorded => "declaration_recorded",
            Trigger::AmendmentAccepted => "amendment_accepted",
        }
    }
}

/// One assessment as stored: by `administration`, of one operation of
/// `guarantee`, on the declaration version and context it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessmentRecord {
    pub administration: Country,
    pub guarantee: String,
    /// The holder's TIR id (its history counts are per administration).
    pub holder: String,
    pub trigger: Trigger,
    /// The cursor of the notification feed item it answers.
    pub source_cursor: i64,
    pub declaration_version: u32,
    #[serde(flatten)]
    pub assessment: Assessment,
    /// What the profiles and the model saw; replayed by previews and training.
    pub context: TransportContext,
}

/// What an inspection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Compliant,
    Irregularity,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Compliant => "compliant",
            Outcome::Irregularity => "irregularity",
        }
    }

    pub fn is_irregular(self) -> bool {
        self == Outcome::Irregularity
    }
}

/// An inspection outcome recorded by the customs who inspected. One per
/// (administration, guarantee, office): a later one corrects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionResult {
    pub administration: Country,
    pub guarantee: String,
    pub office: String,
    pub outcome: Outcome,
    /// Recovered, in EUR; 0 when nothing was.
    pub revenue: f64,
    pub findings: Vec<String>,
    pub notes: String,
    /// The customs party that recorded it.
    pub recorded_by: String,
    pub recorded_at: Timestamp,
}

/// A trained model as stored: its metadata and the model itself
/// (`crate::model::RiskModel::to_json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredModel {
    pub administration: Country,
    pub version: String,
    pub trained_at: Timestamp,
    /// Who asked for it: a customs party id, or `cli` for `tirhub risk train`.
    pub trained_by: String,
    pub rows_trained: usize,
    pub irregular_trained: usize,
    pub model_json: String,
}

/// The selection policy of one office, or of every office of the
/// administration without one of its own (`office: None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub administration: Country,
    pub office: Option<String>,
    pub config: PolicyConfig,
    pub author: String,
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_read_as_they_write() {
        for t in [
            Trigger::AdvanceData,
            Trigger::AdvanceDataAmended,
            Trigger::DeclarationRecorded,
            Trigger::AmendmentAccepted,
        ] {
            assert_eq!(Trigger::of_event(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.as_str()));
        }
        for other in ["previous_operation_terminated", "incident", "guarantee_cancelled", ""] {
            assert_eq!(Trigger::of_event(other), None);
        }
    }
}
