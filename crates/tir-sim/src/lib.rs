//! Traffic for the eTIR exchange: a pure, seeded model of TIR transports
//! (`model`), `tirhub simulate` playing it against a server over HTTP
//! (`simulate`), `tirhub bench` measuring a server in-process (`bench`), a
//! small HTTP client (`client`), and one corridor's parties seeded over HTTP
//! with its scripted transports, for end-to-end tests (`seeded`).

pub mod bench;
pub mod client;
pub mod model;
pub mod seeded;
pub mod simulate;

pub type AnyError = Box<dyn std::error::Error + Send + Sync>;
