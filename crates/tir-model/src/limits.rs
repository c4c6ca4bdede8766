//! Every input has a bound; each constant has a test at the limit and one past it.

/// Largest request body accepted by the HTTP layer.
pub const BODY_BYTES_MAX: usize = 256 * 1024;
/// Countries on one itinerary.
pub const ITINERARY_COUNTRIES_MAX: usize = 12;
/// Departure and destination offices together (TIR Convention, Art. 18).
pub const OFFICES_LOADING_UNLOADING_MAX: usize = 4;
/// All offices listed in a declaration (incl. entry/exit).
pub const OFFICES_MAX: usize = 32;
pub const SEALS_MAX: usize = 99;
pub const CONSIGNMENTS_MAX: usize = 50;
pub const GOODS_PER_CONSIGNMENT_MAX: usize = 999;
pub const RESERVATIONS_MAX: usize = 20;
/// Controls reported in one message (I9, I11, I17).
pub const CONTROLS_MAX: usize = 20;
/// Amendments a holder may request for one guarantee after recording (284 past it).
pub const AMENDMENTS_MAX: usize = 20;
/// JSON pointers listed as an amendment's `changes`.
pub const CHANGES_MAX: usize = 100;
/// An operation id chosen by customs (an NCTS MRN is 18).
pub const OPERATION_ID_CHARS_MAX: usize = 35;
/// Names, registrations, seal numbers, reasons, descriptions.
pub const TEXT_CHARS_MAX: usize = 512;
pub const MESSAGE_ID_CHARS_MAX: usize = 64;
pub const NOTIFICATION_PAGE_MAX: usize = 1000;
pub const NOTIFICATION_PAGE_DEFAULT: usize = 100;
/// A feed page stops before its items would pass this many bytes (it always holds one).
pub const NOTIFICATION_PAGE_BYTES_MAX: usize = 1024 * 1024;
/// Largest package count and amounts (keeps arithmetic far from overflow).
pub const PACKAGES_MAX: i64 = 1_000_000_000;
pub const AMOUNT_MAX: f64 = 1.0e12;
