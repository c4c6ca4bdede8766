//! The fuzz targets' properties (fuzz/, docs/fuzzing.md) as proptests, so CI
//! runs them on every change, in seconds, and the findings of the fuzz runs
//! as regression tests. The properties themselves live in `properties/`,
//! which the fuzz targets include as they are.

use proptest::prelude::*;
use serde_json::{Value, json};

#[path = "properties/parsers.rs"]
mod parsers;
#[path = "properties/sequence.rs"]
mod sequence;

use parsers::{KEYS, PathStep, WORDS};
use sequence::{Action, ITINERARIES};

/// Message bodies of every type, as the contract shows them.
fn sample_bodies() -> Vec<Value> {
    let d = parsers::sample_declaration();
    let fields = [
        ("E1", json!({"holder": "TUR/012/345", "valid_until": "2027-01-31"})),
        ("E3", json!({"reason": "fraud"})),
        ("E9", json!({"declaration": d})),
        ("E11", json!({"declaration": d, "country": "GE"})),
        ("E13", json!({"reason": "trip cancelled"})),
        ("I1", json!({"office": "TR000100"})),
        ("I7", json!({"office": "TR000100", "declaration": d})),
        (
            "I9",
            json!({"office": "TR000100", "seals": ["TR-884211"], "operation_id": "26TR0001",
                      "controls": [{"type": "documentary", "result": "satisfactory", "remarks": "ok"}]}),
        ),
        ("I11", json!({"office": "GE000100", "seals": ["TR-884211"], "reservations": ["scratched"], "controls": []})),
        ("I13", json!({"office": "GE000100"})),
        (
            "I17",
            json!({"office": "GE000100", "reason": "unsafe load",
                       "controls": [{"type": "physical", "result": "irregularity"}]}),
        ),
        (
            "X1",
            json!({"office": "GE000100", "kind": "transhipment", "description": "new truck",
                      "new_vehicle": {"registration": "X1", "country": "GE"}, "new_seals": ["GE-1"]}),
        ),
    ];
    fields
        .into_iter()
        .map(|(kind, fields)| {
            let mut body = json!({"message_id": "m-1", "type": kind, "guarantee_reference": "XH25000001"});
            body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
            body
        })
        .collect()
}

// ---------------------------------------------------------------- strategies

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        prop::sample::select(WORDS.to_vec()).prop_map(Value::from),
        "[a-zA-Z0-9 /~\u{e9}\u{202e}\n]{0,12}".prop_map(Value::String),
        // Past every identifier's length, near the texts' limit.
        "[A-Z0-9/]{200,600}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn path_step() -> impl Strategy<Value = PathStep> {
    prop_oneof![
        4 => prop::sample::select(KEYS.to_vec()).prop_map(PathStep::Key),
        2 => any::<u8>().prop_map(PathStep::Index),
        1 => Just(PathStep::Remove),
        1 => Just(PathStep::Push),
    ]
}

/// Edits: each a path (of the contract's keys) and the value to set there.
fn edits() -> impl Strategy<Value = Vec<(Vec<PathStep>, Value)>> {
    prop::collection::vec((prop::collection::vec(path_step(), 0..5), json_value()), 0..4)
}

fn edited(mut value: Value, edits: &[(Vec<PathStep>, Value)]) -> Value {
    for (path, new) in edits {
        parsers::edit(&mut value, path, new.clone());
    }
    value
}

fn action() -> impl Strategy<Value = Action> {
    any::<[u8; 8]>().prop_map(|[kind, sender, reference, country, office, declaration, variant, minutes]| Action {
        kind,
        sender,
        reference,
        country,
        office,
        declaration,
        variant,
        minutes,
    })
}

// ---------------------------------------------------------------- properties

proptest! {
    // Default case counts; no regressions file: a test must not write into the source tree.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_parse_as_serde_json_reads_them(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        parsers::check_body(&bytes);
    }

    #[test]
    fn any_edited_body_text_parses_as_serde_json_reads_it(
        index in 0usize..12,
        cuts in prop::collection::vec((any::<prop::sample::Index>(), "[{}\\[\\]:,\"0-9a-z\\\\ ]{0,3}"), 0..4),
    ) {
        let mut text = sample_bodies()[index].to_string().into_bytes();
        for (at, insert) in &cuts {
            let at = at.index(text.len() + 1);
            let end = (at + insert.len() % 3).min(text.len());
            text.splice(at..end, insert.bytes());
        }
        parsers::check_body(&text);
        parsers::check_message(&text);
    }

    #[test]
    fn any_edited_message_parses_or_is_refused_at_a_field(index in 0usize..12, edits in edits()) {
        let body = edited(sample_bodies()[index].clone(), &edits);
        parsers::check_request(&body);
        parsers::check_message(body.to_string().as_bytes());
    }

    #[test]
    fn any_edited_declaration_parses_or_is_refused_at_a_field(edits in edits()) {
        parsers::check_declaration(&edited(parsers::sample_declaration(), &edits));
    }

    #[test]
    fn any_json_declaration_parses_or_is_refused_at_a_field(value in json_value()) {
        parsers::check_declaration(&value);
    }

    #[test]
    fn any_sequence_of_messages_keeps_the_state_machine_invariants(
        template in 0u8..ITINERARIES.len() as u8,
        prefix in any::<u8>(),
        actions in prop::collection::vec(action(), 0..40),
    ) {
        sequence::run(template, prefix, &actions);
    }
}

#[test]
fn every_happy_path_releases_its_guarantee() {
    // The sequences start from these prefixes: each must carry its transport
    // through (but the two itineraries the exchange refuses).
    for template in 0..ITINERARIES.len() as u8 {
        let path = sequence::happy_path(template);
        let mut run = sequence::Run::new();
        for action in &path {
            run.step(action);
        }
        let summary = run.summary;
        let refused_itinerary = ITINERARIES[usize::from(template)].contains(&"IR") || template == 9;
        if refused_itinerary {
            assert!(summary.refused + summary.not_parsed > 0, "{template}: {summary:?}");
        } else {
            assert_eq!((summary.accepted, summary.released), (path.len(), 1), "{template}: {summary:?}");
        }
    }
}

// ---------------------------------------------------------------- findings

/// Fuzz finding (body, 10 s): a number's canonical text read back as another
/// number, one ulp away: serde_json's default float parser is not exact.
/// Fixed by serde_json's `float_roundtrip` (tir-model's Cargo.toml).
#[test]
fn finding_a_float_reads_back_as_the_number_written() {
    let body = br#"{"a": {"b": [1, [-1, 1.5e30,55555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555]]}}"#;
    parsers::check_body(body);
    let x: f64 = serde_json::from_str("5.5555555555555564e+109").unwrap();
    assert_eq!(serde_json::to_string(&x).unwrap(), "5.5555555555555564e+109");
}

/// Fuzz finding (body): serde_json (with `raw_value`) reads an object keyed
/// `$serde_json::private::RawValue` as the JSON text of its value, so it is
/// no reference there; `parse_body` reads the body as written, and the
/// message parser refuses the key like any unknown field.
#[test]
fn finding_the_raw_value_key_is_an_ordinary_key() {
    let body = br#"{"$serde_json::private::RawValue":99999998}"#;
    parsers::check_body(body);
    let value = tir_model::wire::parse_body(body).unwrap();
    assert_eq!(value[parsers::RAW_VALUE_KEY], 99999998);
    let error = tir_model::message::parse_request(body).unwrap_err();
    assert_eq!(error.code.number(), 101, "message_id missing comes first");
    let message = br#"{"message_id":"m","type":"E3","guarantee_reference":"XH25000001","reason":"r","$serde_json::private::RawValue":"1"}"#;
    let error = tir_model::message::parse_request(message).unwrap_err();
    assert_eq!((error.code.number(), error.pointer.as_str()), (107, "/$serde_json::private::RawValue"));
}

/// Finding (the message proptest, with identifiers past their length): the
/// detail of a refused identifier, repeated key or unknown key echoed the
/// input whole. It echoes 32 characters now (`wire::echo`).
#[test]
fn finding_a_detail_never_grows_with_the_input() {
    let long = "M".repeat(380);
    let body = json!({"message_id": long, "type": "E3", "guarantee_reference": "XH25000001", "reason": "r"});
    parsers::check_request(&body);
    let mut body = sample_bodies()[5].clone();
    body[&long] = json!(1);
    parsers::check_request(&body);
    parsers::check_body(format!(r#"{{"{long}": 1, "{long}": 2}}"#).as_bytes());
}
