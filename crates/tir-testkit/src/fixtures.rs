//! Sample parties, a sample declaration and message builders: the corridor
//! TR → GE → AZ that the HTTP tests drive transports along.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

pub const ADMIN_TOKEN: &str = "tirhub-test-admin-token";
pub const HOLDER: &str = "TUR/012/345";
pub const OTHER_HOLDER: &str = "TUR/012/346";
pub const WITHDRAWN_HOLDER: &str = "TUR/012/999";
pub const SEAL: &str = "TR-884211";
/// The itinerary with the office each country acts through.
pub const ROUTE: [(&str, &str); 3] = [("TR", "TR000100"), ("GE", "GE000100"), ("AZ", "AZ000200")];

static NEXT_MESSAGE: AtomicU64 = AtomicU64::new(1);

/// The counter keeps ids unique within a run, the random part across runs.
pub fn message_id() -> String {
    format!("m-{}-{}", NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed), crate::random_hex(6))
}

/// A guarantee reference no other test uses: `XH`, a random series from 100
/// to 999 and six random digits, so 9 × 10^8 references to draw from.
pub fn reference() -> String {
    let random = u64::from_str_radix(&crate::random_hex(8), 16).expect("hex digits");
    format!("XH{}", 100_000_000 + random % 900_000_000)
}

/// Path segments carry `/` in TIR ids.
pub fn encode(segment: &str) -> String {
    segment.replace('/', "%2F")
}

/// An envelope with a fresh message_id and the given body fields.
pub fn message(kind: &str, reference: &str, fields: Value) -> Value {
    let mut m = json!({"message_id": message_id(), "type": kind, "guarantee_reference": reference});
    if let (Some(m), Value::Object(fields)) = (m.as_object_mut(), fields) {
        m.extend(fields);
    }
    m
}

/// The body fields (beside the envelope) that message type `kind` has: a
/// message carrying any other is refused with 107.
pub fn fields_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "E1" => &["holder", "valid_until"],
        "E3" | "E13" => &["reason"],
        "E9" | "E11" => &["declaration"],
        "I1" | "I13" => &["office"],
        "I7" => &["office", "declaration"],
        "I9" => &["office", "seals"],
        "I11" => &["office", "seals", "reservations"],
        "I17" => &["office", "reason"],
        _ => &[],
    }
}

/// `message` with those of `fields` that message type `kind` has, for a test
/// sending one set of fields as several types.
pub fn message_of(kind: &str, reference: &str, fields: &Value) -> Value {
    let own: serde_json::Map<String, Value> = fields
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| fields_of(kind).contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    message(kind, reference, Value::Object(own))
}

/// The office each country of `ROUTE` acts through.
pub fn office_of(country: &str) -> &'static str {
    ROUTE.iter().find(|(c, _)| *c == country).map(|(_, o)| *o).unwrap_or_else(|| panic!("{country} is off the route"))
}

/// Advance data for `ROUTE`: one consignment of cars, sealed with `SEAL`.
pub fn declaration() -> Value {
    json!({
        "itinerary": ["TR", "GE", "AZ"],
        "offices": [
            {"code": "TR000100", "role": "departure"},
            {"code": "GE000100", "role": "entry"},
            {"code": "AZ000200", "role": "destination"}
        ],
        "vehicle": {"registration": "34ABC123", "country": "TR"},
        "seals": [SEAL],
        "consignments": [{
            "consignor": {"name": "Anatolia Export", "country": "TR"},
            "consignee": {"name": "Baku Import", "country": "AZ"},
            "goods": [{"hs_code": "870323", "description": "Passenger cars",
                       "packages": 4, "gross_mass_kg": 6200.0,
                       "value": {"amount": 88000.0, "currency": "EUR"}}]
        }]
    })
}

/// Status the contract gives each error code in the answer to a message; a
/// route naming a thing that does not exist answers 404 instead (`Reply::assert_not_found`).
pub fn status_of(code: u16) -> u16 {
    match code {
        183 | 381 => 404,
        184 => 405,
        380 => 403,
        390 => 401,
        400 => 503,
        c if c < 200 => 400,
        c if c < 300 => 409,
        _ => 422,
    }
}

/// The contract's class of each error code: its hundred.
pub fn class_of(code: u16) -> &'static str {
    match code / 100 {
        1 => "validation",
        2 => "workflow",
        3 => "functional",
        _ => "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_get_distinct_ids_and_keep_their_fields() {
        let a = message("I1", "XH25000001", json!({"office": "TR000100"}));
        let b = message("I1", "XH25000001", json!({"office": "TR000100"}));
        assert_ne!(a["message_id"], b["message_id"]);
        assert_eq!((a["type"].as_str(), a["office"].as_str()), (Some("I1"), Some("TR000100")));
    }

    #[test]
    fn references_are_valid_and_random() {
        let drawn: std::collections::BTreeSet<String> = (0..1000).map(|_| reference()).collect();
        assert_eq!(drawn.len(), 1000);
        for r in &drawn {
            assert_eq!(r.len(), 11, "{r}");
            tir_model::GuaranteeRef::parse(r).unwrap();
        }
    }

    #[test]
    fn the_declaration_names_an_office_for_every_country_of_the_route() {
        let d = declaration();
        for (country, office) in ROUTE {
            assert!(d["itinerary"].as_array().unwrap().iter().any(|c| c == country));
            assert!(d["offices"].as_array().unwrap().iter().any(|o| o["code"] == office));
        }
    }
}
