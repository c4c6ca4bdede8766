//! The request messages of the exchange, parsed from the JSON envelope.

use serde_json::Value;

use crate::declaration::{Declaration, Vehicle};
use crate::error::{ErrorCode, EtirError, fail};
use crate::ids::{Country, Date, GuaranteeRef, OfficeCode, ParseError, Timestamp, TirId};
use crate::limits::*;
use crate::party::PartyKind;
use crate::records::{IncidentKind, OperationId, ReportedControl, parse_controls, require};
use crate::wire::{Obj, echo};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    E1,
    E3,
    E9,
    E11,
    E13,
    I1,
    I7,
    I9,
    I11,
    I13,
    I17,
    /// tirhub's own: an incident en route.
    X1,
}

impl MessageType {
    pub const ALL: [MessageType; 12] = [
        Self::E1,
        Self::E3,
        Self::E9,
        Self::E11,
        Self::E13,
        Self::I1,
        Self::I7,
        Self::I9,
        Self::I11,
        Self::I13,
        Self::I17,
        Self::X1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::E1 => "E1",
            Self::E3 => "E3",
            Self::E9 => "E9",
            Self::E11 => "E11",
            Self::E13 => "E13",
            Self::I1 => "I1",
            Self::I7 => "I7",
            Self::I9 => "I9",
            Self::I11 => "I11",
            Self::I13 => "I13",
            Self::I17 => "I17",
            Self::X1 => "X1",
        }
    }

    pub fn parse(raw: &str) -> Option<MessageType> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    /// Requests are odd; the response is the next even number.
    pub fn response(self) -> &'static str {
        match self {
            Self::E1 => "E2",
            Self::E3 => "E4",
            Self::E9 => "E10",
            Self::E11 => "E12",
            Self::E13 => "E14",
            Self::I1 => "I2",
            Self::I7 => "I8",
            Self::I9 => "I10",
            Self::I11 => "I12",
            Self::I13 => "I14",
            Self::I17 => "I18",
            Self::X1 => "X2",
        }
    }

    /// The customs' operation messages, which may be recorded late after a
    /// fallback period (`fallback`, `occurred_at`): what happens at the office.
    pub fn accepts_fallback(self) -> bool {
        matches!(self, Self::I9 | Self::I11 | Self::I13 | Self::I17 | Self::X1)
    }

    pub fn sender(self) -> PartyKind {
        match self {
            Self::E1 | Self::E3 => PartyKind::GuaranteeChain,
            Self::E9 | Self::E11 | Self::E13 => PartyKind::Holder,
            _ => PartyKind::Customs,
        }
    }
}

/// The sender's idempotency key: printable, no spaces, a UUID in practice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    pub fn parse(raw: &str) -> Result<MessageId, ParseError> {
        if raw.is_empty() || raw.len() > MESSAGE_ID_CHARS_MAX {
            return Err(ParseError::Length);
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')) {
            return Err(ParseError::Pattern);
        }
        Ok(MessageId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// On the wire, each is the envelope's `type` with its own fields beside the envelope's.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), serde(tag = "type"))]
pub enum Message {
    #[cfg_attr(feature = "openapi", serde(rename = "E1"))]
    RegisterGuarantee { holder: TirId, valid_until: Option<Date> },
    #[cfg_attr(feature = "openapi", serde(rename = "E3"))]
    CancelGuarantee {
        #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
        reason: String,
    },
    #[cfg_attr(feature = "openapi", serde(rename = "E9"))]
    AdvanceData { declaration: Declaration },
    /// `country` only after recording: an amendment en route, for the customs of that country.
    #[cfg_attr(feature = "openapi", serde(rename = "E11"))]
    AdvanceAmendment { declaration: Declaration, country: Option<Country> },
    #[cfg_attr(feature = "openapi", serde(rename = "E13"))]
    AdvanceCancellation {
        #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
        reason: String,
    },
    #[cfg_attr(feature = "openapi", serde(rename = "I1"))]
    AcceptGuarantee { office: OfficeCode },
    /// Without a declaration, the advance data is recorded.
    #[cfg_attr(feature = "openapi", serde(rename = "I7"))]
    RecordDeclaration { office: OfficeCode, declaration: Option<Declaration> },
    #[cfg_attr(feature = "openapi", serde(rename = "I9"))]
    StartOperation {
        office: OfficeCode,
        #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::found_seals))]
        seals: Option<Vec<String>>,
        #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::operation_id))]
        operation_id: Option<OperationId>,
        #[cfg_attr(feature = "openapi", serde(default), schema(schema_with = crate::schema::controls))]
        controls: Vec<ReportedControl>,
    },
    #[cfg_attr(feature = "openapi", serde(rename = "I11"))]
    TerminateOperation {
        office: OfficeCode,
        #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::found_seals))]
        seals: Option<Vec<String>>,
        #[cfg_attr(feature = "openapi", serde(default), schema(schema_with = crate::schema::reservations))]
        reservations: Vec<String>,
        #[cfg_attr(feature = "openapi", serde(default), schema(schema_with = crate::schema::controls))]
        controls: Vec<ReportedControl>,
    },
    #[cfg_attr(feature = "openapi", serde(rename = "I13"))]
    DischargeOperation { office: OfficeCode },
    #[cfg_attr(feature = "openapi", serde(rename = "I17"))]
    RefuseStart {
        office: OfficeCode,
        #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
        reason: String,
        #[cfg_attr(feature = "openapi", serde(default), schema(schema_with = crate::schema::controls))]
        controls: Vec<ReportedControl>,
    },
    /// `new_vehicle` only with `transhipment`, and there it is required.
    #[cfg_attr(feature = "openapi", serde(rename = "X1"))]
    RecordIncident {
        office: OfficeCode,
        #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::incident_kind))]
        kind: IncidentKind,
        #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
        description: String,
        new_vehicle: Option<Vehicle>,
        #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::found_seals))]
        new_seals: Option<Vec<String>>,
    },
}

/// A parsed request: everything that can be checked without the store.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(description = "The message envelope (message_id, type, guarantee_reference) and the fields of its type")
)]
pub struct Request {
    pub message_id: MessageId,
    /// On the wire as the message's `type`.
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub kind: MessageType,
    pub guarantee_reference: GuaranteeRef,
    #[cfg_attr(feature = "openapi", serde(flatten))]
    pub message: Message,
    /// Recorded after a fallback period (I9, I11, I13, I17, X1 only): customs
    /// worked on paper and send what they did once the exchange is back.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub fallback: bool,
    /// With `fallback: true` (and only then): when it happened at the office.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, required = false))]
    pub occurred_at: Option<Timestamp>,
}

impl Request {
    pub fn parse(body: &Value) -> Result<Request, EtirError> {
        let obj = Obj::new(body, "")?;
        let message_id = obj.parse("message_id", MessageId::parse)?;
        let raw_type = obj.str("type")?;
        let Some(kind) = MessageType::parse(raw_type) else {
            return Err(EtirError::new(ErrorCode::InvalidDomain, "/type")
                .with_detail(format!("unknown message type {:?}", echo(raw_type))));
        };
        let guarantee_reference = obj.parse("guarantee_reference", GuaranteeRef::parse)?;
        let office = || obj.parse("office", OfficeCode::parse);
        let declaration = || Declaration::parse(obj.object("declaration")?.view());
        let message = match kind {
            MessageType::E1 => Message::RegisterGuarantee {
                holder: obj.parse("holder", TirId::parse)?,
                valid_until: obj.parse_opt("valid_until", Date::parse).map_err(|e| match e.code {
                    // A text that is no date; a value of another JSON type stays 106.
                    ErrorCode::WrongFormat | ErrorCode::WrongLength
                        if obj.get("valid_until").is_some_and(Value::is_string) =>
                    {
                        EtirError { code: ErrorCode::MalformedDate, ..e }
                    }
                    _ => e,
                })?,
            },
            MessageType::E3 => Message::CancelGuarantee { reason: obj.text("reason", TEXT_CHARS_MAX)? },
            MessageType::E9 => Message::AdvanceData { declaration: declaration()? },
            MessageType::E11 => Message::AdvanceAmendment {
                declaration: declaration()?,
                country: obj.parse_opt("country", Country::parse)?,
            },
            MessageType::E13 => Message::AdvanceCancellation { reason: obj.text("reason", TEXT_CHARS_MAX)? },
            MessageType::I1 => Message::AcceptGuarantee { office: office()? },
            MessageType::I7 => {
                let office = office()?;
                let declaration = match obj.get("declaration") {
                    None => None,
                    Some(_) => Some(declaration()?),
                };
                Message::RecordDeclaration { office, declaration }
            }
            MessageType::I9 => Message::StartOperation {
                office: office()?,
                seals: obj.id_texts_opt("seals", SEALS_MAX, TEXT_CHARS_MAX)?,
                operation_id: obj.parse_opt("operation_id", OperationId::parse)?,
                controls: parse_controls(&obj)?,
            },
            MessageType::I11 => Message::TerminateOperation {
                office: office()?,
                seals: obj.id_texts_opt("seals", SEALS_MAX, TEXT_CHARS_MAX)?,
                reservations: obj.texts_opt("reservations", RESERVATIONS_MAX, TEXT_CHARS_MAX)?.unwrap_or_default(),
                controls: parse_controls(&obj)?,
            },
            MessageType::I13 => Message::DischargeOperation { office: office()? },
            MessageType::I17 => Message::RefuseStart {
                office: office()?,
                reason: obj.text("reason", TEXT_CHARS_MAX)?,
                controls: parse_controls(&obj)?,
            },
            MessageType::X1 => {
                let office = office()?;
                let raw_kind = obj.str("kind")?;
                let Some(kind) = IncidentKind::parse(raw_kind) else {
                    return Err(EtirError::new(ErrorCode::InvalidDomain, obj.pointer("kind")).with_detail(format!(
                        "incident kinds: {}",
                        IncidentKind::ALL.map(IncidentKind::as_str).join(", ")
                    )));
                };
                let description = obj.text("description", TEXT_CHARS_MAX)?;
                let new_vehicle = match obj.object_opt("new_vehicle")? {
                    None => None,
                    Some(v) => Some(Vehicle::parse(v.view())?),
                };
                if kind == IncidentKind::Transhipment {
                    require(new_vehicle.is_some(), &obj, "new_vehicle")?;
                } else if new_vehicle.is_some() {
                    return Err(EtirError::new(ErrorCode::UnknownField, obj.pointer("new_vehicle"))
                        .with_detail("a new vehicle only comes with a transhipment"));
                }
                let new_seals = obj.id_texts_opt("new_seals", SEALS_MAX, TEXT_CHARS_MAX)?;
                Message::RecordIncident { office, kind, description, new_vehicle, new_seals }
            }
        };
        let occurred_at = if kind.accepts_fallback() { parse_fallback(&obj)? } else { None };
        // Only the fields of this type (107 for another), once those parsed.
        obj.finish()?;
        Ok(Request { message_id, kind, guarantee_reference, message, fallback: occurred_at.is_some(), occurred_at })
    }

    /// Offices the store must load for this request: the acting office and
    /// every office of a declaration it carries.
    pub fn referenced_offices(&self) -> Vec<OfficeCode> {
        let mut codes = Vec::new();
        match &self.message {
            Message::AcceptGuarantee { office }
            | Message::StartOperation { office, .. }
            | Message::TerminateOperation { office, .. }
            | Message::DischargeOperation { office }
            | Message::RefuseStart { office, .. }
            | Message::RecordIncident { office, .. } => codes.push(office.clone()),
            Message::RecordDeclaration { office, declaration } => {
                codes.push(office.clone());
                if let Some(d) = declaration {
                    codes.extend(d.offices.iter().map(|o| o.code.clone()));
                }
            }
            Message::AdvanceData { declaration } | Message::AdvanceAmendment { declaration, .. } => {
                codes.extend(declaration.offices.iter().map(|o| o.code.clone()));
            }
            Message::RegisterGuarantee { .. }
            | Message::CancelGuarantee { .. }
            | Message::AdvanceCancellation { .. } => {}
        }
        codes.sort();
        codes.dedup();
        codes
    }

    /// The countries whose customs advance data in this request would be
    /// forwarded to (E9, E11): each must have a customs party (308).
    pub fn forwarded_to(&self) -> Vec<Country> {
        match &self.message {
            Message::AdvanceData { declaration } | Message::AdvanceAmendment { declaration, .. } => {
                declaration.itinerary.clone()
            }
            _ => Vec::new(),
        }
    }

    /// The holder whose registry entry the request depends on, if any.
    pub fn referenced_holder(&self) -> Option<&TirId> {
        match &self.message {
            Message::RegisterGuarantee { holder, .. } => Some(holder),
            _ => None,
        }
    }
}

/// `fallback` and `occurred_at`: `Some(occurred_at)` for a message recorded in
/// fallback. `fallback: true` needs `occurred_at` (101); `occurred_at` comes
/// only with it (107); a text that is no RFC 3339 time is 103.
fn parse_fallback(obj: &Obj<'_>) -> Result<Option<Timestamp>, EtirError> {
    let fallback = match obj.get("fallback") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return fail(ErrorCode::WrongFormat, "/fallback"),
    };
    let occurred_at = obj.parse_opt("occurred_at", Timestamp::parse_rfc3339).map_err(|e| match e.code {
        ErrorCode::WrongFormat | ErrorCode::WrongLength if obj.get("occurred_at").is_some_and(Value::is_string) => {
            EtirError { code: ErrorCode::MalformedDate, ..e }
        }
        _ => e,
    })?;
    match (fallback, occurred_at) {
        (true, None) => Err(EtirError::new(ErrorCode::RequiredFieldMissing, "/occurred_at")
            .with_detail("a message recorded in fallback says when it happened")),
        (false, Some(_)) => Err(EtirError::new(ErrorCode::UnknownField, "/occurred_at")
            .with_detail("occurred_at only comes with fallback: true")),
        (_, occurred_at) => Ok(occurred_at),
    }
}

/// Convenience for callers holding raw bytes.
pub fn parse_request(body: &[u8]) -> Result<Request, EtirError> {
    let value = crate::wire::parse_body(body)?;
    Request::parse(&value)
}

/// Fails with 380 unless parties of kind `sender` send messages of `message_type`.
pub fn check_sender(message_type: MessageType, sender: PartyKind) -> Result<(), EtirError> {
    if message_type.sender() != sender {
        return fail(ErrorCode::PartyNotAuthorized, "/type");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declaration::tests::sample;
    use serde_json::json;

    fn error(v: Value) -> (u16, String) {
        let e = Request::parse(&v).unwrap_err();
        (e.code.number(), e.pointer)
    }

    #[test]
    fn every_message_type_parses() {
        let base = |t: &str| json!({"message_id": "m-1", "type": t, "guarantee_reference": "XH123456789"});
        let with = |t: &str, extra: Value| {
            let mut v = base(t);
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            v
        };
        let cases = [
            with("E1", json!({"holder": "TUR/012/345", "valid_until": "2027-01-31"})),
            with("E3", json!({"reason": "fraud"})),
            with("E9", json!({"declaration": sample()})),
            with("E11", json!({"declaration": sample()})),
            with("E13", json!({"reason": "trip cancelled"})),
            with("I1", json!({"office": "TR000100"})),
            with("I7", json!({"office": "TR000100"})),
            with("I9", json!({"office": "TR000100", "seals": ["TR-884211"]})),
            with("I11", json!({"office": "GE000100", "reservations": []})),
            with("I13", json!({"office": "GE000100"})),
            with("I17", json!({"office": "GE000100", "reason": "unsafe load"})),
            with("X1", json!({"office": "GE000100", "kind": "accident", "description": "trailer overturned"})),
        ];
        for (case, kind) in cases.iter().zip(MessageType::ALL) {
            let request = Request::parse(case).unwrap();
            assert_eq!(request.kind, kind);
            assert_eq!(request.kind.as_str(), case["type"]);
        }
    }

    #[test]
    fn unknown_type_is_102_at_type() {
        assert_eq!(
            error(json!({"message_id": "m", "type": "X99", "guarantee_reference": "XH25001234"})),
            (102, "/type".into())
        );
    }

    #[test]
    fn missing_envelope_fields_are_101() {
        assert_eq!(error(json!({"type": "E3"})), (101, "/message_id".into()));
        assert_eq!(error(json!({"message_id": "m"})), (101, "/type".into()));
        assert_eq!(error(json!({"message_id": "m", "type": "E3"})), (101, "/guarantee_reference".into()));
        assert_eq!(
            error(json!({"message_id": "m", "type": "I9", "guarantee_reference": "XH25001234"})),
            (101, "/office".into())
        );
    }

    #[test]
    fn malformed_identifiers_have_their_codes() {
        let v = |r: &str| json!({"message_id": "m", "type": "E3", "guarantee_reference": r, "reason": "x"});
        assert_eq!(error(v("XH2500000001")), (105, "/guarantee_reference".into()));
        assert_eq!(error(v("xh12345")), (106, "/guarantee_reference".into()));
        let id = json!({"message_id": "has space", "type": "E3", "guarantee_reference": "XH25001234", "reason": "x"});
        assert_eq!(error(id), (106, "/message_id".into()));
        let long = json!({"message_id": "m".repeat(MESSAGE_ID_CHARS_MAX + 1), "type": "E3"});
        assert_eq!(error(long), (105, "/message_id".into()));
    }

    #[test]
    fn non_object_body_is_100() {
        assert_eq!(error(json!([1, 2])), (100, String::new()));
        assert_eq!(error(json!("E1")), (100, String::new()));
    }

    #[test]
    fn reservations_at_their_limit_pass_and_past_it_are_105() {
        let v = |n: usize| {
            json!({"message_id": "m", "type": "I11", "guarantee_reference": "XH25001234", "office": "GE000100",
                   "reservations": vec!["scratched seal"; n]})
        };
        assert!(Request::parse(&v(RESERVATIONS_MAX)).is_ok());
        assert_eq!(error(v(RESERVATIONS_MAX + 1)), (105, "/reservations".into()));
    }

    #[test]
    fn referenced_offices_include_the_declaration() {
        let v = json!({"message_id": "m", "type": "I7", "guarantee_reference": "XH25001234", "office": "TR000100", "declaration": sample()});
        let codes: Vec<String> =
            Request::parse(&v).unwrap().referenced_offices().iter().map(|c| c.to_string()).collect();
        assert_eq!(codes, ["AZ000200", "GE000100", "TR000100"]);
    }

    #[test]
    fn wrong_sender_kind_is_380() {
        assert!(check_sender(MessageType::I9, PartyKind::Customs).is_ok());
        let e = check_sender(MessageType::I9, PartyKind::Holder).unwrap_err();
        assert_eq!(e.code.number(), 380);
    }
}
