//! The contract's error codes (etir-binding.md, "Errors").

use std::fmt;

/// Every code the contract gives (Code List 99's numbers, and tirhub's own in
/// x80–x90, which the list leaves free), plus the few this project adds (marked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Not JSON, not one object, a key given twice; HTTP 415 for another Content-Type.
    InvalidMessage = 100,
    RequiredFieldMissing = 101,
    /// A value outside its list: HS code, currency, role, status, kind, message type.
    InvalidDomain = 102,
    MalformedDate = 103,
    NotAnInteger = 104,
    /// Also a body over `limits::BODY_BYTES_MAX`, with HTTP 413.
    WrongLength = 105,
    WrongFormat = 106,
    /// A field the message type does not have.
    UnknownField = 107,
    DeclarationRuleBroken = 180,
    /// The itinerary never leaves its first TIR territory.
    NotTirTransport = 181,
    /// Added: no route at this path (HTTP 404).
    NoSuchRoute = 183,
    /// Added: a route exists but not for this HTTP method (HTTP 405).
    MethodNotAllowed = 184,
    GuaranteeStateForbids = 201,
    GuaranteeNotCancellable = 203,
    GuaranteeAlreadyRegistered = 204,
    GuaranteeAlreadyCancelled = 205,
    OperationAlreadyStarted = 210,
    OperationAlreadyTerminated = 211,
    OperationAlreadyDischarged = 212,
    OperationNotStarted = 213,
    OperationIdRegistered = 214,
    /// I17 on the first operation, or on a guarantee whose state forbids it.
    RefusalNotAuthorized = 216,
    DeclarationNotRecorded = 220,
    OperationRefused = 280,
    PreviousOperationNotTerminated = 281,
    DeclarationAlreadyRecorded = 282,
    NoAmendmentWaiting = 283,
    /// More amendments than `limits::AMENDMENTS_MAX` for one guarantee.
    TooManyAmendments = 284,
    OperationNotTerminated = 285,
    /// Added: a message recorded in fallback (`fallback: true`) whose `occurred_at`
    /// no fallback period of the office's country (or of the whole system) covers.
    NotInFallbackPeriod = 286,
    DuplicateMessage = 299,
    GuaranteeNotFound = 301,
    OfficeNotFound = 304,
    CountryNotFound = 305,
    ControlTypeNotFound = 306,
    DeclarationNotFound = 307,
    /// A country of the itinerary has no customs party to forward the advance data to.
    NoPartyToForwardTo = 308,
    HolderMismatch = 320,
    HolderNotAuthorized = 321,
    HolderNotFound = 322,
    ChainMismatch = 331,
    PartyNotAuthorized = 380,
    /// Added: the admin named a party that does not exist (HTTP 404).
    PartyNotFound = 381,
    /// Added: a holder's signature missing, malformed, under a key that is not its
    /// current one, or not over the body (HTTP 403; docs/etir-binding.md, "Signed holder messages").
    HolderSignatureInvalid = 382,
    /// The party's rate limit (HTTP 429, with `Retry-After`).
    TooManyRequests = 386,
    Unauthenticated = 390,
    /// The store is unavailable (HTTP 503) or a fault (HTTP 500); details are logged, never sent.
    Internal = 400,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 47] = [
        Self::InvalidMessage,
        Self::RequiredFieldMissing,
        Self::InvalidDomain,
        Self::MalformedDate,
        Self::NotAnInteger,
        Self::WrongLength,
        Self::WrongFormat,
        Self::UnknownField,
        Self::DeclarationRuleBroken,
        Self::NotTirTransport,
        Self::NoSuchRoute,
        Self::MethodNotAllowed,
        Self::GuaranteeStateForbids,
        Self::GuaranteeNotCancellable,
        Self::GuaranteeAlreadyRegistered,
        Self::GuaranteeAlreadyCancelled,
        Self::OperationAlreadyStarted,
        Self::OperationAlreadyTerminated,
        Self::OperationAlreadyDischarged,
        Self::OperationNotStarted,
        Self::OperationIdRegistered,
        Self::RefusalNotAuthorized,
        Self::DeclarationNotRecorded,
        Self::OperationRefused,
        Self::PreviousOperationNotTerminated,
        Self::DeclarationAlreadyRecorded,
        Self::NoAmendmentWaiting,
        Self::TooManyAmendments,
        Self::OperationNotTerminated,
        Self::NotInFallbackPeriod,
        Self::DuplicateMessage,
        Self::GuaranteeNotFound,
        Self::OfficeNotFound,
        Self::CountryNotFound,
        Self::ControlTypeNotFound,
        Self::DeclarationNotFound,
        Self::NoPartyToForwardTo,
        Self::HolderMismatch,
        Self::HolderNotAuthorized,
        Self::HolderNotFound,
        Self::ChainMismatch,
        Self::PartyNotAuthorized,
        Self::PartyNotFound,
        Self::HolderSignatureInvalid,
        Self::TooManyRequests,
        Self::Unauthenticated,
        Self::Internal,
    ];

    pub fn number(self) -> u16 {
        self as u16
    }

    pub fn from_number(number: u16) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.number() == number)
    }

    /// HTTP status: 1xx → 400, 2xx → 409, 3xx → 422, with the contract's
    /// exceptions. An error can carry another (`EtirError::with_status`): a
    /// thing a route names that does not exist is 404, a body too large 413.
    pub fn http_status(self) -> u16 {
        match self {
            Self::NoSuchRoute | Self::PartyNotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::PartyNotAuthorized | Self::HolderSignatureInvalid => 403,
            Self::TooManyRequests => 429,
            Self::Unauthenticated => 401,
            Self::Internal => 503,
            c => match c.number() / 100 {
                1 => 400,
                2 => 409,
                _ => 422,
            },
        }
    }

    /// The contract's class, by the code's hundred.
    pub fn class(self) -> &'static str {
        match self.number() / 100 {
            1 => "validation",
            2 => "workflow",
            3 => "functional",
            _ => "internal",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidMessage => "invalid message",
            Self::RequiredFieldMissing => "missing field",
            Self::InvalidDomain => "invalid domain for the value",
            Self::MalformedDate => "malformed date",
            Self::NotAnInteger => "not an integer",
            Self::WrongLength => "field value length exceeded",
            Self::WrongFormat => "invalid pattern",
            Self::UnknownField => "invalid field",
            Self::DeclarationRuleBroken => "rule of the declaration broken",
            Self::NotTirTransport => "not a TIR transport",
            Self::NoSuchRoute => "no such route",
            Self::MethodNotAllowed => "method not allowed on this route",
            Self::GuaranteeStateForbids => "invalid guarantee status for this message",
            Self::GuaranteeNotCancellable => "guarantee not cancellable",
            Self::GuaranteeAlreadyRegistered => "guarantee already registered",
            Self::GuaranteeAlreadyCancelled => "guarantee already cancelled",
            Self::OperationAlreadyStarted => "operation already started",
            Self::OperationAlreadyTerminated => "operation already terminated",
            Self::OperationAlreadyDischarged => "operation already discharged",
            Self::OperationNotStarted => "operation not yet started",
            Self::OperationIdRegistered => "operation id already registered for this guarantee",
            Self::RefusalNotAuthorized => "refusal to start not authorized",
            Self::DeclarationNotRecorded => "declaration not yet recorded",
            Self::OperationRefused => "operation refused",
            Self::PreviousOperationNotTerminated => "previous operation not yet terminated",
            Self::DeclarationAlreadyRecorded => "declaration already recorded",
            Self::NoAmendmentWaiting => "no amendment waits for this country",
            Self::TooManyAmendments => "too many amendments for this guarantee",
            Self::OperationNotTerminated => "operation not yet terminated",
            Self::NotInFallbackPeriod => "no fallback period covers this time",
            Self::DuplicateMessage => "duplicate message",
            Self::GuaranteeNotFound => "guarantee not found",
            Self::OfficeNotFound => "customs office not found",
            Self::CountryNotFound => "country not found",
            Self::ControlTypeNotFound => "control type not found",
            Self::DeclarationNotFound => "declaration not found",
            Self::NoPartyToForwardTo => "no party to forward to",
            Self::HolderMismatch => "holder / guarantee mismatch",
            Self::HolderNotAuthorized => "holder not authorized",
            Self::HolderNotFound => "holder not found",
            Self::ChainMismatch => "guarantee chain / guarantee mismatch",
            Self::PartyNotAuthorized => "party not authorized for this transport, office or country",
            Self::PartyNotFound => "party not found",
            Self::HolderSignatureInvalid => "holder signature missing or invalid",
            Self::TooManyRequests => "too many requests",
            Self::Unauthenticated => "missing or unknown token",
            Self::Internal => "internal error",
        }
    }
}

/// A contract error: a code and a JSON pointer to the failing field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtirError {
    pub code: ErrorCode,
    pub pointer: String,
    pub detail: Option<String>,
    /// The HTTP status when it is not the code's own (`ErrorCode::http_status`).
    pub status: Option<u16>,
}

impl EtirError {
    pub fn new(code: ErrorCode, pointer: impl Into<String>) -> Self {
        Self { code, pointer: pointer.into(), detail: None, status: None }
    }

    /// A thing the route names (`/v1/guarantees/{ref}`, ...) that does not exist: HTTP 404.
    pub fn not_found_on_route(code: ErrorCode, pointer: impl Into<String>) -> Self {
        Self::new(code, pointer).with_status(404)
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn http_status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.code.http_status())
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The body of the error response (`{"error": {...}}`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "code": self.code.number(),
            "class": self.code.class(),
            "title": self.code.title(),
            "pointer": self.pointer,
        });
        if let Some(detail) = &self.detail {
            error["detail"] = serde_json::Value::String(detail.clone());
        }
        serde_json::json!({ "error": error })
    }
}

impl fmt::Display for EtirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} at {:?}", self.code.number(), self.code.title(), self.pointer)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for EtirError {}

/// Shorthand used throughout the model.
pub fn fail<T>(code: ErrorCode, pointer: impl Into<String>) -> Result<T, EtirError> {
    Err(EtirError::new(code, pointer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_number() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_number(code.number()), Some(code));
        }
        assert_eq!(ErrorCode::from_number(999), None);
    }

    #[test]
    fn status_follows_the_contract_classes() {
        assert_eq!(ErrorCode::RequiredFieldMissing.http_status(), 400);
        assert_eq!(ErrorCode::OperationAlreadyTerminated.http_status(), 409);
        assert_eq!(ErrorCode::DuplicateMessage.http_status(), 409);
        assert_eq!(ErrorCode::GuaranteeNotFound.http_status(), 422);
        assert_eq!(ErrorCode::PartyNotAuthorized.http_status(), 403);
        assert_eq!(ErrorCode::Unauthenticated.http_status(), 401);
        assert_eq!(ErrorCode::Internal.http_status(), 503);
        let on_route = EtirError::not_found_on_route(ErrorCode::GuaranteeNotFound, "/reference");
        assert_eq!(on_route.http_status(), 404);
    }

    #[test]
    fn class_follows_the_hundred() {
        assert_eq!(ErrorCode::NoSuchRoute.class(), "validation");
        assert_eq!(ErrorCode::DuplicateMessage.class(), "workflow");
        assert_eq!(ErrorCode::Unauthenticated.class(), "functional");
        assert_eq!(ErrorCode::Internal.class(), "internal");
    }

    #[test]
    fn error_body_has_code_class_title_and_pointer() {
        let body = EtirError::new(ErrorCode::OperationAlreadyTerminated, "/office").to_json();
        assert_eq!(body["error"]["code"], 211);
        assert_eq!(body["error"]["class"], "workflow");
        assert_eq!(body["error"]["title"], "operation already terminated");
        assert_eq!(body["error"]["pointer"], "/office");
    }
}
