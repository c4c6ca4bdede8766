//! Traffic for the eTIR exchange: a pure, seeded model of TIR transports
//! (`model`), `tirhub simulate` playing it against a server over HTTP
//! (`simulate`), `tirhub bench` measuring a server in-process on a fresh
//! database from `tir_testkit` (`bench`), and a small HTTP client (`client`).

pub mod bench;
pub mod client;
pub mod inspect;
pub mod model;
pub mod simulate;

pub type AnyError = Box<dyn std::error::Error + Send + Sync>;
