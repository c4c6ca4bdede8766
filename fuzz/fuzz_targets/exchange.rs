//! Sequences of messages through `exchange::apply` on an in-memory registry
//! and guarantees, checking every step's invariants (see `sequence.rs`): a
//! prefix of a whole transport's messages gets the sequence anywhere in the
//! life cycle, then the fuzzer's actions.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/tir-model/tests/properties/parsers.rs"]
#[allow(dead_code)]
mod parsers;
#[path = "../../crates/tir-model/tests/properties/sequence.rs"]
#[allow(dead_code)]
mod sequence;

#[derive(Arbitrary, Debug)]
struct Input {
    template: u8,
    prefix: u8,
    actions: Vec<[u8; 8]>,
}

fuzz_target!(|input: Input| {
    let actions: Vec<sequence::Action> = input
        .actions
        .iter()
        .take(64)
        .map(|&[kind, sender, reference, country, office, declaration, variant, minutes]| sequence::Action {
            kind,
            sender,
            reference,
            country,
            office,
            declaration,
            variant,
            minutes,
        })
        .collect();
    sequence::run(input.template, input.prefix, &actions);
});
