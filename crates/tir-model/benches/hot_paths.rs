//! The model's hot paths, as the store's writer and the HTTP layer run them
//! for every message: parsing a declaration, the canonical body text, one
//! state-machine step, the response view and a notification's payload.
//!
//! Run with `cargo bench -p tir-model --bench hot_paths`.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use tir_model::exchange::{self, Outcome, Registry};
use tir_model::guarantee::{Guarantee, GuaranteeState};
use tir_model::message::{Request, parse_request};
use tir_model::party::{HolderRecord, HolderStatus, Office, OfficeRole, Party};
use tir_model::{Country, Date, OfficeCode, Timestamp, TirId, view, wire};

const REF: &str = "XH202600001";
const HOLDER: &str = "FIN/001/1001";
const SEALS: [&str; 3] = ["FI-884211", "FI-884212", "FI-884213"];

/// Five countries of the demo corridor (Via Baltica), one office each, in
/// itinerary order: the first is of departure, the last of destination.
const CORRIDOR: [(&str, &str); 5] =
    [("FI", "FIVAI001"), ("EE", "EEMUG001"), ("LV", "LVGRE001"), ("LT", "LTKYB001"), ("PL", "PLKUB001")];

/// Goods lines cycle through these, so descriptions and codes vary as in real traffic.
const GOODS: [(&str, &str); 10] = [
    ("870323", "Passenger cars, petrol, 1.5-3.0 l"),
    ("847130", "Laptop computers"),
    ("940360", "Wooden furniture, flat-packed"),
    ("220421", "Still wine in bottles of 0.75 l"),
    ("300490", "Medicaments for retail sale"),
    ("851713", "Smartphones"),
    ("640399", "Leather footwear"),
    ("841810", "Combined refrigerator-freezers"),
    ("401110", "New car tyres"),
    ("441114", "MDF boards, over 9 mm"),
];

const TRADERS: [(&str, &str); 4] = [
    ("Suomi Logistics Oy", "FI"),
    ("Helsinki Trading Ab", "FI"),
    ("Warszawa Import Sp. z o.o.", "PL"),
    ("Poznan Distribution S.A.", "PL"),
];

// ---------------------------------------------------------------- registry

/// The office list and the ITDB, as the store loads them for one message.
struct World {
    offices: HashMap<OfficeCode, Office>,
    holders: HashMap<TirId, HolderRecord>,
}

impl World {
    fn new() -> World {
        let mut offices = HashMap::new();
        for (country, code) in CORRIDOR {
            let code = OfficeCode::parse(code).unwrap();
            let office = Office {
                code: code.clone(),
                country: Country::parse(country).unwrap(),
                name: format!("border crossing {code}"),
                roles: OfficeRole::ALL.to_vec(),
                unlocode: Some(code.as_str()[..5].to_owned()),
            };
            offices.insert(code, office);
        }
        let tir_id = TirId::parse(HOLDER).unwrap();
        let record = HolderRecord {
            tir_id: tir_id.clone(),
            name: "Suomi Logistics Oy".into(),
            country: tir_id.country(),
            status: HolderStatus::Authorized,
        };
        World { offices, holders: HashMap::from([(tir_id, record)]) }
    }
}

impl Registry for World {
    fn office(&self, code: &OfficeCode) -> Option<&Office> {
        self.offices.get(code)
    }

    fn holder(&self, tir_id: &TirId) -> Option<&HolderRecord> {
        self.holders.get(tir_id)
    }

    /// Every country has customs here: the bench measures the exchange, not 308.
    fn has_customs(&self, _country: Country) -> bool {
        true
    }
}

fn chain() -> Party {
    Party::GuaranteeChain { id: "chain-iru".into() }
}

fn holder() -> Party {
    Party::Holder { id: "holder-suomi".into(), tir_id: TirId::parse(HOLDER).unwrap() }
}

fn customs(country: &str) -> Party {
    Party::Customs { id: format!("customs-{}", country.to_lowercase()), country: Country::parse(country).unwrap() }
}

// ---------------------------------------------------------------- bodies

fn declaration(consignments: usize, goods_per_consignment: usize) -> Value {
    let last = CORRIDOR.len() - 1;
    let offices: Vec<Value> = CORRIDOR
        .iter()
        .enumerate()
        .map(|(i, (_, code))| {
            let role = match i {
                0 => "departure",
                i if i == last => "destination",
                _ => "entry",
            };
            json!({"code": code, "role": role})
        })
        .collect();
    let consignments: Vec<Value> = (0..consignments)
        .map(|c| {
            let (consignor, from) = TRADERS[c % 2];
            let (consignee, to) = TRADERS[2 + c % 2];
            let goods: Vec<Value> = (0..goods_per_consignment)
                .map(|g| {
                    let (hs_code, description) = GOODS[(c + g) % GOODS.len()];
                    let n = (c * goods_per_consignment + g) as f64;
                    json!({"hs_code": hs_code, "description": description, "packages": 1 + g * 3,
                           "gross_mass_kg": 120.5 + 37.25 * n,
                           "value": {"amount": 1_840.0 + 975.5 * n, "currency": "EUR"}})
                })
                .collect();
            json!({"consignor": {"name": consignor, "country": from},
                   "consignee": {"name": consignee, "country": to},
                   "goods": goods})
        })
        .collect();
    json!({
        "itinerary": CORRIDOR.iter().map(|(country, _)| *country).collect::<Vec<_>>(),
        "offices": offices,
        "vehicle": {"registration": "ABC-123", "country": "FI"},
        "seals": SEALS,
        "consignments": consignments,
    })
}

fn body(step: &str, kind: &str, fields: Value) -> Value {
    let mut v = json!({"message_id": format!("{REF}-{step}"), "type": kind, "guarantee_reference": REF});
    v.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    v
}

fn e1() -> Value {
    body("e1", "E1", json!({"holder": HOLDER, "valid_until": "2027-06-30"}))
}

fn e9(consignments: usize, goods_per_consignment: usize) -> Value {
    body("e9", "E9", json!({"declaration": declaration(consignments, goods_per_consignment)}))
}

fn customs_step(kind: &str, office: &str, extra: Value) -> Value {
    let mut fields = json!({ "office": office });
    fields.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body(&format!("{kind}-{office}"), kind, fields)
}

// ---------------------------------------------------------------- state

/// 2026-11-28T08:00:00Z: after registration, before `valid_until`.
fn now() -> Timestamp {
    let day = Date::parse("2026-11-28").unwrap().days_since_epoch();
    Timestamp::from_unix_ms(day * 86_400_000 + 8 * 3_600_000)
}

fn request(body: &Value) -> Request {
    Request::parse(body).unwrap_or_else(|e| panic!("{body} does not parse: {e}"))
}

fn apply(world: &World, sender: &Party, request: &Request, current: Option<&Guarantee>) -> Outcome {
    exchange::apply(world, sender, request, current, now())
        .unwrap_or_else(|e| panic!("{:?} rejected: {e}", request.kind))
}

/// Applies `steps` in order from no guarantee; returns the guarantee they leave.
fn drive(world: &World, steps: &[(Party, Value)]) -> Guarantee {
    let mut current: Option<Guarantee> = None;
    for (sender, body) in steps {
        current = Some(apply(world, sender, &request(body), current.as_ref()).guarantee);
    }
    current.expect("at least one step")
}

/// E1, E9, I1, I7: the declaration recorded, every operation pending.
fn to_recorded() -> Vec<(Party, Value)> {
    let (departure_country, departure) = CORRIDOR[0];
    vec![
        (chain(), e1()),
        (holder(), e9(1, 3)),
        (customs(departure_country), customs_step("I1", departure, json!({}))),
        (customs(departure_country), customs_step("I7", departure, json!({}))),
    ]
}

/// Every operation discharged but the last, which is terminated.
fn to_last_terminated() -> Vec<(Party, Value)> {
    let mut steps = to_recorded();
    for (i, (country, office)) in CORRIDOR.iter().enumerate() {
        steps.push((customs(country), customs_step("I9", office, json!({"seals": SEALS}))));
        steps.push((customs(country), customs_step("I11", office, json!({"reservations": []}))));
        if i + 1 < CORRIDOR.len() {
            steps.push((customs(country), customs_step("I13", office, json!({}))));
        }
    }
    steps
}

// ---------------------------------------------------------------- benches

fn declaration_benches(c: &mut Criterion) {
    let mut parse = c.benchmark_group("declaration");
    for (consignments, goods) in [(1, 3), (10, 20)] {
        let bytes = serde_json::to_vec(&e9(consignments, goods)).unwrap();
        parse_request(&bytes).expect("the benchmark's E9 is valid");
        parse.throughput(Throughput::Bytes(bytes.len() as u64));
        parse.bench_with_input(BenchmarkId::new("parse", format!("{consignments}x{goods}")), &bytes, |b, bytes| {
            b.iter(|| parse_request(black_box(bytes)))
        });
    }
    parse.finish();

    let mut canonical = c.benchmark_group("canonical");
    for (consignments, goods) in [(1, 3), (10, 20)] {
        let value = e9(consignments, goods);
        canonical.throughput(Throughput::Bytes(wire::canonical(&value).len() as u64));
        canonical.bench_with_input(BenchmarkId::new("e9", format!("{consignments}x{goods}")), &value, |b, value| {
            b.iter(|| wire::canonical(black_box(value)))
        });
    }
    canonical.finish();
}

fn exchange_benches(c: &mut Criterion) {
    let world = World::new();
    let (first_country, first_office) = CORRIDOR[0];
    let (last_country, last_office) = CORRIDOR[CORRIDOR.len() - 1];

    let register = request(&e1());
    let recorded = drive(&world, &to_recorded());
    // Seals in another order than declared: the check compares sets.
    let reversed: Vec<&str> = SEALS.iter().rev().copied().collect();
    let start = request(&customs_step("I9", first_office, json!({ "seals": reversed })));
    let last_terminated = drive(&world, &to_last_terminated());
    let discharge = request(&customs_step("I13", last_office, json!({})));
    let released = apply(&world, &customs(last_country), &discharge, Some(&last_terminated)).guarantee;
    assert_eq!(released.state, GuaranteeState::Released, "the last discharge releases the guarantee");

    let mut group = c.benchmark_group("exchange");
    let cases: [(&str, Party, &Request, Option<&Guarantee>); 3] = [
        ("e1_register", chain(), &register, None),
        ("i9_start_sealed", customs(first_country), &start, Some(&recorded)),
        ("i13_discharge_release", customs(last_country), &discharge, Some(&last_terminated)),
    ];
    for (name, sender, request, current) in cases {
        group.bench_function(BenchmarkId::new("step", name), |b| {
            b.iter(|| exchange::apply(&world, black_box(&sender), black_box(request), black_box(current), now()))
        });
    }
    group.finish();

    // The heaviest response: every operation carries its timestamps.
    let mut group = c.benchmark_group("view");
    group.bench_function(BenchmarkId::new("response", "5_countries"), |b| {
        b.iter(|| view::response_view(black_box(&discharge), black_box(&released)))
    });
    // The heaviest notification: I15 carries the declaration, rendered once for every later country.
    let steps = to_recorded();
    let (recorder, record) = steps.last().expect("to_recorded ends with I7");
    let accepted = drive(&world, &steps[..steps.len() - 1]);
    let recording = apply(&world, recorder, &request(record), Some(&accepted));
    let declared = &recording.notifications[0];
    assert_eq!(declared.kind(), "I15", "I7 notifies later countries first");
    group.bench_function(BenchmarkId::new("notification", "i15_declaration_recorded"), |b| {
        b.iter(|| view::notification_view(black_box(declared), black_box(&recording.guarantee)))
    });
    group.finish();
}

criterion_group!(benches, declaration_benches, exchange_benches);
criterion_main!(benches);
