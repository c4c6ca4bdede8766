//! The properties of the input parsers, as assertions on one input.
//!
//! Shared: `tests/properties.rs` runs them as proptests in CI, and the
//! cargo-fuzz targets in `fuzz/` include this file (`#[path]`) and run them
//! on whatever libFuzzer makes. So it uses only tir-model's public API and
//! serde_json, and fails by panicking.

use serde_json::{Value, json};
use tir_model::EtirError;
use tir_model::declaration::Declaration;
use tir_model::message::{Message, Request};
use tir_model::wire::{self, Obj};

/// The codes a parser answers: the 1xx, and 305 for a country code no country has.
pub const PARSE_CODES: [u16; 12] = [100, 101, 102, 103, 104, 105, 106, 107, 180, 181, 305, 306];

/// An error's detail stays this short whatever the input (issue 14: an answer
/// never grows with the input; a detail echoes at most 32 characters of it,
/// escaped, each at most 10 characters long).
pub const DETAIL_CHARS_MAX: usize = 512;

/// The fields of each message type beside the envelope's.
pub fn fields_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "E1" => &["holder", "valid_until"],
        "E3" | "E13" => &["reason"],
        "E9" => &["declaration"],
        "E11" => &["declaration", "country"],
        "I1" | "I13" => &["office"],
        "I7" => &["office", "declaration"],
        "I9" => &["office", "seals", "operation_id", "controls"],
        "I11" => &["office", "seals", "reservations", "controls"],
        "I17" => &["office", "reason", "controls"],
        "X1" => &["office", "kind", "description", "new_vehicle", "new_seals"],
        _ => &[],
    }
}

/// Checks the parts of an error every refusal shares: a short detail, and a
/// pointer into `input`, at the value refused or (a value missing, 101) at
/// its parent.
pub fn check_error_points_into(input: &Value, error: &EtirError) {
    if let Some(detail) = &error.detail {
        let chars = detail.chars().count();
        assert!(
            chars <= DETAIL_CHARS_MAX,
            "a detail of {chars} characters for {} at {:?}",
            error.code.number(),
            error.pointer
        );
    }
    let pointer = error.pointer.as_str();
    assert!(pointer.is_empty() || pointer.starts_with('/'), "pointer {pointer:?}");
    if input.pointer(pointer).is_some() {
        return;
    }
    let parent = &pointer[..pointer.rfind('/').unwrap_or(0)];
    assert!(
        error.code.number() == 101 && input.pointer(parent).is_some(),
        "{} at {pointer:?}, which names nothing in the input",
        error.code.number()
    );
}

/// serde_json with its `raw_value` feature (tir-model turns it on) reads an
/// object whose first key is this one as the JSON text its value holds, not
/// as an object: there it is no reference for `parse_body`, which reads the
/// body as written (fuzz finding; no accepted message has such a key, 107).
pub const RAW_VALUE_KEY: &str = "$serde_json::private::RawValue";

fn has_raw_value_key(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key(RAW_VALUE_KEY) || map.values().any(has_raw_value_key),
        Value::Array(items) => items.iter().any(has_raw_value_key),
        _ => false,
    }
}

/// `wire::parse_body` on any bytes: it builds what serde_json builds, refuses
/// with 100 exactly what serde_json refuses, what is not one object and a key
/// given twice (pointing at it), and its canonical text is a fixed point.
pub fn check_body(bytes: &[u8]) {
    let ours = wire::parse_body(bytes);
    let theirs = serde_json::from_slice::<Value>(bytes);
    match (ours, theirs) {
        (Ok(value), theirs) => {
            assert!(value.is_object(), "parse_body accepted a body that is not an object");
            check_canonical(&value);
            if !has_raw_value_key(&value) {
                let same = theirs.unwrap_or_else(|e| panic!("parse_body accepted what serde_json refuses: {e}"));
                assert_eq!(value, same, "parse_body built another value than serde_json");
            }
        }
        (Err(error), Ok(value)) => {
            assert_eq!(error.code.number(), 100);
            if error.pointer.is_empty() {
                // Not a key given twice: then the body is not one object.
                assert!(!value.is_object(), "an object without a repeated key refused: {:?}", error.detail);
            } else if !String::from_utf8_lossy(bytes).contains("Value") {
                // serde_json keeps the last of a repeated key: the pointer names it.
                assert!(value.pointer(&error.pointer).is_some(), "no key given twice at {:?}", error.pointer);
                check_error_points_into(&value, &error);
            }
            let detail = error.detail.as_deref().unwrap_or_default();
            assert!(detail.chars().count() <= DETAIL_CHARS_MAX, "a detail of {} characters", detail.chars().count());
        }
        (Err(error), Err(_)) => {
            assert_eq!(error.code.number(), 100);
            let detail = error.detail.as_deref().unwrap_or_default();
            assert!(detail.chars().count() <= DETAIL_CHARS_MAX, "a detail of {} characters", detail.chars().count());
        }
    }
}

/// The canonical text (what the store hashes and keeps) parses, to a value
/// whose canonical text is the same again.
pub fn check_canonical(value: &Value) {
    let text = wire::canonical(value);
    let again = wire::parse_body(text.as_bytes()).unwrap_or_else(|e| panic!("canonical text refused: {e:?}"));
    assert_eq!(wire::canonical(&again), text, "the canonical text is not a fixed point");
    assert_eq!(&again, value, "the canonical text parses to another value");
}

/// The server's path for a message: bytes, `parse_body`, `Request::parse`.
pub fn check_message(bytes: &[u8]) {
    check_body(bytes);
    if let Ok(value) = wire::parse_body(bytes) {
        check_request(&value);
    }
}

/// `Request::parse` on any JSON value: a request that parses names what the
/// body says and reads the same from its canonical text; a refusal has a
/// parser's code, a short detail and a pointer into the body.
pub fn check_request(value: &Value) {
    let request = match Request::parse(value) {
        Ok(request) => request,
        Err(error) => {
            assert!(PARSE_CODES.contains(&error.code.number()), "Request::parse answered {}", error.code.number());
            check_error_points_into(value, &error);
            assert_eq!(Request::parse(value), Err(error), "a refusal depends on the body alone");
            return;
        }
    };
    let body = value.as_object().expect("a request is an object");
    assert_eq!(value["type"], request.kind.as_str());
    assert_eq!(value["message_id"], request.message_id.as_str());
    assert_eq!(value["guarantee_reference"], request.guarantee_reference.as_str());
    let fields = fields_of(request.kind.as_str());
    for key in body.keys() {
        let envelope = ["message_id", "type", "guarantee_reference"].contains(&key.as_str());
        assert!(
            envelope || fields.contains(&key.as_str()),
            "{} accepted with the field {key:?}",
            request.kind.as_str()
        );
    }
    // A replay is judged on the canonical text: it must read as the same request.
    let again = wire::parse_body(wire::canonical(value).as_bytes()).expect("canonical text parses");
    assert_eq!(Request::parse(&again).as_ref(), Ok(&request), "the canonical text reads as another request");
    // What the store asks of a request.
    let offices = request.referenced_offices();
    assert!(offices.windows(2).all(|w| w[0] < w[1]), "referenced offices sorted, each once");
    let _ = (request.forwarded_to(), request.referenced_holder());
    match &request.message {
        Message::AdvanceData { declaration }
        | Message::AdvanceAmendment { declaration, .. }
        | Message::RecordDeclaration { declaration: Some(declaration), .. } => {
            check_parsed_declaration(&value["declaration"], declaration)
        }
        _ => {}
    }
}

/// `Declaration::parse` on any JSON value, as the body's `declaration`.
pub fn check_declaration(value: &Value) {
    let body = json!({ "declaration": value });
    let parsed = Obj::new(value, "/declaration").and_then(Declaration::parse);
    match parsed {
        Ok(declaration) => check_parsed_declaration(value, &declaration),
        Err(error) => {
            assert!(PARSE_CODES.contains(&error.code.number()), "Declaration::parse answered {}", error.code.number());
            assert!(error.pointer.starts_with("/declaration"), "pointer {:?} outside the declaration", error.pointer);
            check_error_points_into(&body, &error);
        }
    }
}

/// What holds of every declaration that parsed: the rules `check_rules`
/// promises, its operations, and its JSON, which reads back as the same
/// declaration (the store keeps it so).
pub fn check_parsed_declaration(value: &Value, declaration: &Declaration) {
    use tir_model::party::OfficeRole::*;
    let itinerary = &declaration.itinerary;
    assert!(itinerary.len() >= 2, "an itinerary of {} countries", itinerary.len());
    for office in &declaration.offices {
        assert!(itinerary.contains(&office.code.country()), "office {} off the itinerary", office.code);
    }
    let first = declaration.departure_offices().next().expect("a departure office");
    assert_eq!(first.country(), itinerary[0], "the itinerary starts where the first departure office is");
    assert!(
        declaration.offices.iter().any(|o| o.role == Destination && o.code.country() == itinerary[itinerary.len() - 1]),
        "the itinerary ends at a destination office's country"
    );
    let loading = declaration.offices.iter().filter(|o| matches!(o.role, Departure | Destination)).count();
    assert!(loading <= 4, "{loading} departure and destination offices");
    assert!(!declaration.consignments.is_empty() && declaration.consignments.iter().all(|c| !c.goods.is_empty()));
    for goods in declaration.consignments.iter().flat_map(|c| &c.goods) {
        assert!(goods.gross_mass_kg.is_finite() && goods.gross_mass_kg > 0.0);
        assert!(goods.packages.is_none_or(|n| n > 0));
    }
    let operations = declaration.operations();
    assert!(operations.len() >= 2, "a TIR transport crosses two territories at least");
    let travelled: Vec<_> = operations.iter().flat_map(|op| op.countries().iter().copied()).collect();
    assert_eq!(&travelled, itinerary, "the operations cover the itinerary in order");
    for (i, op) in operations.iter().enumerate() {
        assert_eq!(usize::from(op.sequence()), i + 1);
    }
    // Its JSON reads back as itself, through the parser and through serde.
    let json = declaration.to_json();
    let reparsed = Obj::new(&json, "/declaration").and_then(Declaration::parse);
    assert_eq!(reparsed.as_ref(), Ok(declaration), "the declaration's JSON parses to another declaration");
    let stored = serde_json::to_string(declaration).expect("declarations serialize");
    let read: Declaration = serde_json::from_str(&stored).expect("a stored declaration reads back");
    assert_eq!(&read, declaration, "a stored declaration reads back as another");
    assert!(declaration.changes_from(declaration).is_empty());
    let reparsed_input = Obj::new(value, "/declaration").and_then(Declaration::parse);
    assert_eq!(reparsed_input.as_ref(), Ok(declaration), "parsing is deterministic");
}

/// The contract's sample declaration, TR → GE → AZ: the start the edits of
/// the declaration properties change (a copy of tir-testkit's fixture, which
/// the fuzz crate does not depend on).
pub fn sample_declaration() -> Value {
    json!({
        "itinerary": ["TR", "GE", "AZ"],
        "offices": [
            {"code": "TR000100", "role": "departure"},
            {"code": "GE000100", "role": "entry"},
            {"code": "AZ000200", "role": "destination"}
        ],
        "vehicle": {"registration": "34ABC123", "country": "TR"},
        "seals": ["TR-884211"],
        "consignments": [{
            "consignor": {"name": "Anatolia Export", "country": "TR"},
            "consignee": {"name": "Baku Import", "country": "AZ"},
            "goods": [{"hs_code": "870323", "description": "Passenger cars",
                       "packages": 4, "gross_mass_kg": 6200.0,
                       "value": {"amount": 88000.0, "currency": "EUR"}}]
        }]
    })
}

/// Keys the declaration (and the messages) have, for edits to aim at.
pub const KEYS: [&str; 31] = [
    "itinerary",
    "offices",
    "code",
    "role",
    "vehicle",
    "registration",
    "country",
    "seals",
    "consignments",
    "consignor",
    "consignee",
    "name",
    "goods",
    "hs_code",
    "description",
    "packages",
    "gross_mass_kg",
    "value",
    "amount",
    "currency",
    "message_id",
    "type",
    "guarantee_reference",
    "office",
    "declaration",
    "holder",
    "reason",
    "kind",
    "controls",
    "result",
    "operation_id",
];

/// Values the parsers know, and near misses.
pub const WORDS: [&str; 40] = [
    "TR",
    "GE",
    "AZ",
    "AM",
    "BG",
    "RO",
    "LT",
    "PL",
    "BY",
    "DE",
    "IR",
    "QQ",
    "tr",
    "TR000100",
    "GE000100",
    "AZ000200",
    "BG000100",
    "LT000100",
    "PL000100",
    "QQ000100",
    "departure",
    "destination",
    "entry",
    "exit",
    "870323",
    "999999",
    "8703",
    "EUR",
    "USD",
    "QQQ",
    "E9",
    "I7",
    "XH25000001",
    "TUR/012/345",
    "2027-01-31",
    "2027-02-30",
    "documentary",
    "satisfactory",
    "transhipment",
    "\u{202E}",
];

/// Sets `new` at `path` (keys, or indices modulo the array's length) in
/// `value`; a path through something else stops there and replaces it.
pub fn edit(value: &mut Value, path: &[PathStep], new: Value) {
    let Some((step, rest)) = path.split_first() else {
        *value = new;
        return;
    };
    match (step, value) {
        (PathStep::Key(key), Value::Object(map)) => match map.get_mut(*key) {
            Some(child) => edit(child, rest, new),
            None if rest.is_empty() => {
                map.insert((*key).to_owned(), new);
            }
            None => {}
        },
        (PathStep::Index(i), Value::Array(items)) if !items.is_empty() => {
            let len = items.len();
            edit(&mut items[usize::from(*i) % len], rest, new)
        }
        (PathStep::Remove, Value::Object(map)) => {
            let first = map.keys().next().cloned();
            if let Some(key) = first {
                map.remove(&key);
            }
        }
        (PathStep::Remove, Value::Array(items)) => {
            items.pop();
        }
        (PathStep::Push, Value::Array(items)) => items.push(new),
        (_, value) => *value = new,
    }
}

#[derive(Debug, Clone, Copy)]
pub enum PathStep {
    Key(&'static str),
    Index(u8),
    /// Removes the first key of an object, the last item of an array.
    Remove,
    /// Appends to an array.
    Push,
}
