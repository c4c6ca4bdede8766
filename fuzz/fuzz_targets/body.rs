//! `wire::parse_body` on arbitrary bytes (see `parsers::check_body`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/tir-model/tests/properties/parsers.rs"]
#[allow(dead_code)]
mod parsers;

fuzz_target!(|bytes: &[u8]| parsers::check_body(bytes));
