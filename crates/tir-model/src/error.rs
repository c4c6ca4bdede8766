//! The contract's error codes (etir-binding.md, "Errors").

use std::fmt;

/// Every code of the contract, plus the few this project adds (marked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    RequiredFieldMissing = 101,
    WrongLength = 105,
    WrongFormat = 106,
    UnknownCode = 110,
    DeclarationRuleBroken = 111,
    GuaranteeStateForbids = 201,
    GuaranteeNotCancellable = 203,
    GuaranteeAlreadyRegistered = 204,
    GuaranteeAlreadyCancelled = 205,
    GuaranteeCancelled = 206,
    OperationAlreadyStarted = 210,
    OperationAlreadyTerminated = 211,
    OperationAlreadyDischarged = 212,
    OperationNotStarted = 213,
    OperationRefused = 214,
    PreviousOperationNotTerminated = 215,
    DeclarationAlreadyRecorded = 216,
    /// Added: discharge asked for an operation that started but has not terminated.
    OperationNotTerminated = 217,
    DeclarationNotFound = 307,
    SealsMismatch = 309,
    HolderMismatch = 320,
    HolderNotAuthorized = 321,
    HolderNotFound = 322,
    ChainNotAuthorized = 330,
    DuplicateMessageId = 340,
    PartyNotAuthorized = 360,
    /// Added: no or unknown bearer token.
    Unauthenticated = 401,
    NotFound = 404,
    /// Added: a route exists but not for this HTTP method.
    MethodNotAllowed = 405,
    /// Added: the request body exceeds `limits::BODY_BYTES_MAX`.
    BodyTooLarge = 413,
    /// Added: a storage or internal failure; details are logged, never sent.
    Unavailable = 503,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 31] = [
        Self::RequiredFieldMissing,
        Self::WrongLength,
        Self::WrongFormat,
        Self::UnknownCode,
        Self::DeclarationRuleBroken,
        Self::GuaranteeStateForbids,
        Self::GuaranteeNotCancellable,
        Self::GuaranteeAlreadyRegistered,
        Self::GuaranteeAlreadyCancelled,
        Self::GuaranteeCancelled,
        Self::OperationAlreadyStarted,
        Self::OperationAlreadyTerminated,
        Self::OperationAlreadyDischarged,
        Self::OperationNotStarted,
        Self::OperationRefused,
        Self::PreviousOperationNotTerminated,
        Self::DeclarationAlreadyRecorded,
        Self::OperationNotTerminated,
        Self::DeclarationNotFound,
        Self::SealsMismatch,
        Self::HolderMismatch,
        Self::HolderNotAuthorized,
        Self::HolderNotFound,
        Self::ChainNotAuthorized,
        Self::DuplicateMessageId,
        Self::PartyNotAuthorized,
        Self::Unauthenticated,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::BodyTooLarge,
        Self::Unavailable,
    ];

    pub fn number(self) -> u16 {
        self as u16
    }

    pub fn from_number(number: u16) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.number() == number)
    }

    /// HTTP status: 1xx → 400, 2xx → 409, 3xx → 422, with the contract's exceptions.
    pub fn http_status(self) -> u16 {
        match self {
            Self::DuplicateMessageId => 409,
            Self::PartyNotAuthorized => 403,
            Self::Unauthenticated => 401,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::BodyTooLarge => 413,
            Self::Unavailable => 503,
            c => match c.number() / 100 {
                1 => 400,
                2 => 409,
                _ => 422,
            },
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Self::DuplicateMessageId => "idempotency",
            Self::PartyNotAuthorized | Self::Unauthenticated => "authorization",
            Self::NotFound | Self::MethodNotAllowed => "not_found",
            Self::BodyTooLarge => "syntax",
            Self::Unavailable => "internal",
            c => match c.number() / 100 {
                1 => "syntax",
                2 => "workflow",
                _ => "business",
            },
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::RequiredFieldMissing => "required field missing",
            Self::WrongLength => "wrong length",
            Self::WrongFormat => "wrong pattern or format",
            Self::UnknownCode => "unknown code",
            Self::DeclarationRuleBroken => "rule of the declaration broken",
            Self::GuaranteeStateForbids => "guarantee not in a state that allows this",
            Self::GuaranteeNotCancellable => "guarantee cannot be cancelled",
            Self::GuaranteeAlreadyRegistered => "guarantee already registered",
            Self::GuaranteeAlreadyCancelled => "guarantee already cancelled",
            Self::GuaranteeCancelled => "guarantee cancelled: no operation may start",
            Self::OperationAlreadyStarted => "TIR operation already started",
            Self::OperationAlreadyTerminated => "TIR operation already terminated",
            Self::OperationAlreadyDischarged => "TIR operation already discharged",
            Self::OperationNotStarted => "TIR operation not yet started",
            Self::OperationRefused => "TIR operation refused",
            Self::PreviousOperationNotTerminated => "previous TIR operation not yet terminated",
            Self::DeclarationAlreadyRecorded => "declaration already recorded",
            Self::OperationNotTerminated => "TIR operation not yet terminated",
            Self::DeclarationNotFound => "declaration not found",
            Self::SealsMismatch => "seals do not match the declaration",
            Self::HolderMismatch => "holder does not match the guarantee",
            Self::HolderNotAuthorized => "holder not authorized (withdrawn)",
            Self::HolderNotFound => "holder not found",
            Self::ChainNotAuthorized => "guarantee chain not authorized for this guarantee",
            Self::DuplicateMessageId => "duplicate message_id with a different body",
            Self::PartyNotAuthorized => "party not authorized for this transport, office or country",
            Self::Unauthenticated => "missing or unknown bearer token",
            Self::NotFound => "guarantee, office or holder not found",
            Self::MethodNotAllowed => "method not allowed on this route",
            Self::BodyTooLarge => "request body too large",
            Self::Unavailable => "service unavailable, try again",
        }
    }
}

/// A contract error: a code and a JSON pointer to the failing field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtirError {
    pub code: ErrorCode,
    pub pointer: String,
    pub detail: Option<String>,
}

impl EtirError {
    pub fn new(code: ErrorCode, pointer: impl Into<String>) -> Self {
        Self { code, pointer: pointer.into(), detail: None }
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
        assert_eq!(ErrorCode::SealsMismatch.http_status(), 422);
        assert_eq!(ErrorCode::DuplicateMessageId.http_status(), 409);
        assert_eq!(ErrorCode::PartyNotAuthorized.http_status(), 403);
        assert_eq!(ErrorCode::NotFound.http_status(), 404);
    }

    #[test]
    fn error_body_has_code_class_title_and_pointer() {
        let body = EtirError::new(ErrorCode::OperationAlreadyTerminated, "/office").to_json();
        assert_eq!(body["error"]["code"], 211);
        assert_eq!(body["error"]["class"], "workflow");
        assert_eq!(body["error"]["title"], "TIR operation already terminated");
        assert_eq!(body["error"]["pointer"], "/office");
    }
}
