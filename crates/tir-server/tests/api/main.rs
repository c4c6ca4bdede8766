//! The eTIR binding (docs/etir-binding.md) exercised over real HTTP, one
//! fresh server and store per test: one test binary, a module per concern.

mod admin;
mod authorization;
mod codes;
mod conn;
mod errors;
mod idempotency;
mod input;
mod openapi;
mod queries;
mod rate;
mod risk;
mod robustness;
mod transport;
mod v2;
