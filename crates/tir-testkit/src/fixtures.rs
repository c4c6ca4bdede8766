//! Sample parties, a sample declaration and message builders: the corridor
//! TR → GE → AZ that the HTTP tests drive transports along (three TIR
//! territories, so three TIR operations), and the offices of the further
//! countries, in and around the Union, that binding v2's tests need.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

pub const ADMIN_TOKEN: &str = "tirhub-test-admin-token";
pub const HOLDER: &str = "TUR/012/345";
pub const OTHER_HOLDER: &str = "TUR/012/346";
pub const WITHDRAWN_HOLDER: &str = "TUR/012/999";
pub const SEAL: &str = "TR-884211";
/// The itinerary with the office each country acts through.
pub const ROUTE: [(&str, &str); 3] = [("TR", "TR000100"), ("GE", "GE000100"), ("AZ", "AZ000200")];
/// Further countries, each with a customs party and one office in every role:
/// Belarus and Serbia outside the Union, Lithuania, Poland, Bulgaria, Hungary
/// and Germany in it (one TIR territory).
pub const MORE_CUSTOMS: [(&str, &str); 7] = [
    ("BY", "BY000100"),
    ("LT", "LT000100"),
    ("PL", "PL000100"),
    ("BG", "BG000100"),
    ("RS", "RS000100"),
    ("HU", "HU000100"),
    ("DE", "DE000100"),
];
/// An office in every role in a country no customs party is registered for:
/// advance data through it has no party to be forwarded to (308).
pub const OFFICE_WITHOUT_CUSTOMS: &str = "UZ000100";

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

/// The office each country of `ROUTE` (or `MORE_CUSTOMS`) acts through.
pub fn office_of(country: &str) -> &'static str {
    ROUTE
        .iter()
        .chain(MORE_CUSTOMS.iter())
        .find(|(c, _)| *c == country)
        .map(|(_, o)| *o)
        .unwrap_or_else(|| panic!("{country} is off the route"))
}

/// The TIR operations of an itinerary, each as its countries in order
/// (consecutive countries of one territory form one operation).
pub fn operations_of(itinerary: &[&str]) -> Vec<Vec<&'static str>> {
    let countries: Vec<tir_model::Country> =
        itinerary.iter().map(|c| tir_model::Country::parse(c).unwrap_or_else(|e| panic!("{c}: {e:?}"))).collect();
    let planned = tir_model::operation::plan(&countries).unwrap_or_else(|e| panic!("{itinerary:?}: {e}"));
    planned.iter().map(|op| op.countries().iter().map(|c| c.as_str()).collect()).collect()
}

/// Advance data along `stops` (country, office): departure at the first
/// office, destination at the last, and the office where each later TIR
/// operation starts declared as an office of entry. One consignment of cars,
/// sealed with `SEAL`.
pub fn declaration_along(stops: &[(&str, &str)]) -> Value {
    let itinerary: Vec<&str> = stops.iter().map(|(c, _)| *c).collect();
    let office = |country: &str| stops.iter().find(|(c, _)| *c == country).map(|(_, o)| *o).expect("a stop");
    let operations = operations_of(&itinerary);
    let mut offices = vec![json!({"code": stops[0].1, "role": "departure"})];
    for op in &operations[1..] {
        offices.push(json!({"code": office(op[0]), "role": "entry"}));
    }
    offices.push(json!({"code": stops[stops.len() - 1].1, "role": "destination"}));
    let first = itinerary[0];
    let last = itinerary[itinerary.len() - 1];
    json!({
        "itinerary": itinerary,
        "offices": offices,
        "vehicle": {"registration": "34ABC123", "country": "TR"},
        "seals": [SEAL],
        "consignments": [{
            "consignor": {"name": "Exporter", "country": first},
            "consignee": {"name": "Importer", "country": last},
            "goods": [{"hs_code": "870323", "description": "Passenger cars",
                       "packages": 4, "gross_mass_kg": 6200.0,
                       "value": {"amount": 88000.0, "currency": "EUR"}}]
        }]
    })
}

/// `declaration_along` the countries given, each through its office (`office_of`).
pub fn declaration_through(countries: &[&str]) -> Value {
    let stops: Vec<(&str, &str)> = countries.iter().map(|c| (*c, office_of(c))).collect();
    declaration_along(&stops)
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
        380 | 382 => 403,
        386 => 429,
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
    fn declarations_along_the_union_declare_where_each_operation_starts() {
        let d = declaration_through(&["TR", "BG", "RS", "HU", "DE"]);
        assert_eq!(d["itinerary"], json!(["TR", "BG", "RS", "HU", "DE"]));
        let offices: Vec<(&str, &str)> = d["offices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["code"].as_str().unwrap(), o["role"].as_str().unwrap()))
            .collect();
        assert_eq!(
            offices,
            [
                ("TR000100", "departure"),
                ("BG000100", "entry"),
                ("RS000100", "entry"),
                ("HU000100", "entry"),
                ("DE000100", "destination")
            ]
        );
        assert_eq!(operations_of(&["BY", "LT", "PL"]), [vec!["BY"], vec!["LT", "PL"]]);
        assert_eq!(operations_of(&["TR", "GE", "AZ"]).len(), 3);
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
