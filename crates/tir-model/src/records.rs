//! What customs record on a TIR operation besides its state: their own
//! operation id (I9), the controls they made (I9, I11, I17) and incidents
//! en route (X1).

use serde::{Deserialize, Serialize};

use crate::declaration::Vehicle;
use crate::error::{ErrorCode, EtirError, fail};
use crate::ids::{OfficeCode, ParseError, Timestamp};
use crate::limits::{CONTROLS_MAX, OPERATION_ID_CHARS_MAX, TEXT_CHARS_MAX};
use crate::wire::Obj;

/// The customs' own reference for an operation (an NCTS MRN fits): 1 to 35
/// capital letters, digits or `-`; unique within the guarantee (214).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OperationId(String);

impl OperationId {
    pub fn parse(s: &str) -> Result<OperationId, ParseError> {
        let n = s.chars().take(OPERATION_ID_CHARS_MAX + 1).count();
        if n == 0 || n > OPERATION_ID_CHARS_MAX {
            return Err(ParseError::Length);
        }
        if !s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-') {
            return Err(ParseError::Pattern);
        }
        Ok(OperationId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The kinds of control the contract lists; any other is 306.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlType {
    Documentary,
    SealCheck,
    Physical,
    Scanner,
    Sampling,
}

impl ControlType {
    pub const ALL: [ControlType; 5] =
        [Self::Documentary, Self::SealCheck, Self::Physical, Self::Scanner, Self::Sampling];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Documentary => "documentary",
            Self::SealCheck => "seal_check",
            Self::Physical => "physical",
            Self::Scanner => "scanner",
            Self::Sampling => "sampling",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlResult {
    Satisfactory,
    Irregularity,
}

impl ControlResult {
    pub const ALL: [ControlResult; 2] = [Self::Satisfactory, Self::Irregularity];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Satisfactory => "satisfactory",
            Self::Irregularity => "irregularity",
        }
    }
}

/// A control as customs reported it; the operation keeps where and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Control {
    #[serde(rename = "type")]
    pub kind: ControlType,
    pub result: ControlResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
    pub office: OfficeCode,
    pub at: Timestamp,
}

/// A control as the message carries it, before the step stamps it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportedControl {
    #[cfg_attr(feature = "openapi", serde(rename = "type"), schema(schema_with = crate::schema::control_type))]
    pub kind: ControlType,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::control_result))]
    pub result: ControlResult,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub remarks: Option<String>,
}

impl ReportedControl {
    pub fn stamp(&self, office: &OfficeCode, at: Timestamp) -> Control {
        Control { kind: self.kind, result: self.result, remarks: self.remarks.clone(), office: office.clone(), at }
    }
}

/// `controls` of I9, I11 and I17: optional, an empty list when absent.
pub fn parse_controls(obj: &Obj<'_>) -> Result<Vec<ReportedControl>, EtirError> {
    let Some(items) = obj.array_opt("controls", CONTROLS_MAX)? else {
        return Ok(Vec::new());
    };
    items
        .into_iter()
        .map(|(pointer, value)| {
            let control = Obj::new(value, &pointer)?;
            let raw_type = control.str("type")?;
            let Some(kind) = ControlType::ALL.into_iter().find(|t| t.as_str() == raw_type) else {
                return Err(EtirError::new(ErrorCode::ControlTypeNotFound, control.pointer("type"))
                    .with_detail(format!("control types: {}", names(ControlType::ALL.map(ControlType::as_str)))));
            };
            let raw_result = control.str("result")?;
            let Some(result) = ControlResult::ALL.into_iter().find(|r| r.as_str() == raw_result) else {
                return Err(EtirError::new(ErrorCode::InvalidDomain, control.pointer("result"))
                    .with_detail(format!("results: {}", names(ControlResult::ALL.map(ControlResult::as_str)))));
            };
            let remarks = control.text_opt("remarks", TEXT_CHARS_MAX)?;
            control.finish()?;
            Ok(ReportedControl { kind, result, remarks })
        })
        .collect()
}

fn names<const N: usize>(all: [&str; N]) -> String {
    all.join(", ")
}

/// What happened en route (X1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    SealsBroken,
    Transhipment,
    Accident,
    GoodsMissing,
    Other,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 5] =
        [Self::SealsBroken, Self::Transhipment, Self::Accident, Self::GoodsMissing, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SealsBroken => "seals_broken",
            Self::Transhipment => "transhipment",
            Self::Accident => "accident",
            Self::GoodsMissing => "goods_missing",
            Self::Other => "other",
        }
    }

    pub fn parse(raw: &str) -> Option<IncidentKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// An incident as recorded on the operation it happened in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub kind: IncidentKind,
    pub description: String,
    pub office: OfficeCode,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_vehicle: Option<Vehicle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_seals: Option<Vec<String>>,
}

/// Fails with 101 unless `present`.
pub fn require(present: bool, obj: &Obj<'_>, key: &str) -> Result<(), EtirError> {
    if present { Ok(()) } else { fail(ErrorCode::RequiredFieldMissing, obj.pointer(key)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operation_ids_are_capitals_digits_and_dashes_up_to_35() {
        assert!(OperationId::parse("26LT00000000001234").is_ok());
        assert!(OperationId::parse("A-1").is_ok());
        assert!(OperationId::parse(&"9".repeat(OPERATION_ID_CHARS_MAX)).is_ok());
        assert_eq!(OperationId::parse(&"9".repeat(OPERATION_ID_CHARS_MAX + 1)), Err(ParseError::Length));
        assert_eq!(OperationId::parse(""), Err(ParseError::Length));
        assert_eq!(OperationId::parse("26lt0001"), Err(ParseError::Pattern));
        assert_eq!(OperationId::parse("26 LT"), Err(ParseError::Pattern));
    }

    fn controls(v: serde_json::Value) -> Result<Vec<ReportedControl>, EtirError> {
        parse_controls(&Obj::new(&v, "").unwrap())
    }

    #[test]
    fn controls_parse_with_their_codes() {
        let ok = controls(json!({"controls": [{"type": "seal_check", "result": "satisfactory"},
            {"type": "physical", "result": "irregularity", "remarks": "2 pallets short"}]}))
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].kind, ControlType::Physical);
        assert_eq!(ok[1].remarks.as_deref(), Some("2 pallets short"));
        assert!(controls(json!({})).unwrap().is_empty());
        let e = controls(json!({"controls": [{"type": "x-ray", "result": "satisfactory"}]})).unwrap_err();
        assert_eq!((e.code.number(), e.pointer.as_str()), (306, "/controls/0/type"));
        let e = controls(json!({"controls": [{"type": "scanner", "result": "fine"}]})).unwrap_err();
        assert_eq!((e.code.number(), e.pointer.as_str()), (102, "/controls/0/result"));
        let e = controls(json!({"controls": [{"result": "fine"}]})).unwrap_err();
        assert_eq!((e.code.number(), e.pointer.as_str()), (101, "/controls/0/type"));
        let many = vec![json!({"type": "scanner", "result": "satisfactory"}); CONTROLS_MAX + 1];
        assert_eq!(controls(json!({ "controls": many })).unwrap_err().code.number(), 105);
    }

    #[test]
    fn every_incident_kind_round_trips() {
        for kind in IncidentKind::ALL {
            assert_eq!(IncidentKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(IncidentKind::parse("fire"), None);
    }
}
