//! The eTIR domain: identifiers and request messages parsed from input, the
//! declaration, the guarantee and per-country operation state machines with
//! the notifications they send, the contract's error codes and JSON views,
//! and the reference data. Pure: no I/O, no async, no storage.

pub mod declaration;
pub mod error;
pub mod exchange;
pub mod fallback;
pub mod guarantee;
#[macro_use]
pub mod ids;
pub mod limits;
pub mod message;
pub mod operation;
pub mod party;
pub mod records;
pub mod refdata;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod territory;
pub mod view;
pub mod wire;

pub use error::{ErrorCode, EtirError};
pub use ids::{Country, Currency, Date, GuaranteeRef, HsCode, OfficeCode, ParseError, Timestamp, TirId};
pub use operation::{PlanError, PlannedOperation};
pub use territory::Territory;
