//! The server's path for `POST /v1/messages` on arbitrary bytes:
//! `wire::parse_body`, then `Request::parse` (see `parsers::check_message`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/tir-model/tests/properties/parsers.rs"]
#[allow(dead_code)]
mod parsers;

fuzz_target!(|bytes: &[u8]| parsers::check_message(bytes));
