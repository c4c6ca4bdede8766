//! Profile evaluation speed: a typical set of 20 profiles over one transport,
//! the CEL bindings made once per transport as `SelectionPolicy::assess` does.
//! Throughput is in profile evaluations.
//!
//! Run with `cargo bench -p tir-risk --bench rules`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use tir_risk::context::TransportContext;
use tir_risk::rules::{Bindings, compile};

/// Twenty expressions of the kinds a risk officer writes: HS codes, values,
/// routes, traders, the holder's record, times and amendments.
const PROFILES: [&str; 20] = [
    r#""2402" in hs4"#,
    r#"goods.exists(g, g.hs2 == "24" && g.value_per_kg < 10.0)"#,
    r#"goods.exists(g, g.hs4 == "8703" && g.value < 2000.0)"#,
    r#"goods_description.matches("(?i)(spare parts|samples|personal effects)")"#,
    r#"value_per_kg < 0.5 && total_gross_mass_kg > 10000.0"#,
    r#"holder_irregularity_rate > 0.2 && holder_transports >= 5"#,
    r#"holder_transports < 3"#,
    r#""AF" in itinerary || "IR" in previous_countries"#,
    r#"previous_country == "BY" && hs2.exists(c, c in ["24", "22", "87"])"#,
    r#"consignor_countries.exists(c, c in ["CN", "TR", "AE"]) && "85" in hs2"#,
    r#"vehicle_country != holder_country"#,
    r#"amendments >= 2"#,
    r#"weekday >= 6 && (hour < 6 || hour >= 22)"#,
    r#"office == "LT000001" && total_packages > 500"#,
    r#"goods.exists(g, g.hs4_description.contains("tobacco"))"#,
    r#"size(goods) > 10 && value_currency == "mixed""#,
    r#"destination_country == "DE" && "3004" in hs4 && value_per_kg > 500.0"#,
    r#"consignee_countries.exists(c, !(c in itinerary))"#,
    r#"goods.all(g, g.packages == 0)"#,
    r#"total_value > 100000.0 && holder_transports < 20"#,
];

fn context() -> TransportContext {
    let goods = |hs: &str, heading: &str, description: &str, mass: f64, value: f64| {
        json!({
            "consignment": 0, "hs6": hs, "hs4": &hs[..4], "hs2": &hs[..2],
            "hs6_description": description, "hs4_description": heading, "hs2_description": "",
            "description": description, "packages": 20, "gross_mass_kg": mass, "value": value,
            "currency": "EUR", "value_per_kg": value / mass,
            "consignor_country": "TR", "consignee_country": "LT"
        })
    };
    serde_json::from_value(json!({
        "guarantee": "XH25000001", "holder": "TUR/012/345", "holder_country": "TR",
        "holder_transports": 12, "holder_irregularities": 1, "holder_irregularity_rate": 0.083,
        "country": "LT", "office": "LT000001", "operation": 2, "territory": "EU",
        "operation_countries": ["LT", "PL", "DE"], "itinerary": ["TR", "GE", "RU", "BY", "LT", "PL", "DE"],
        "previous_countries": ["TR", "GE", "RU", "BY"], "next_countries": ["PL", "DE"],
        "previous_country": "BY", "next_country": "PL", "departure_country": "TR", "destination_country": "DE",
        "vehicle_country": "TR", "vehicle_registration": "34ABC123", "seals": 2,
        "weekday": 3, "hour": 10, "date": "2026-11-25",
        "declaration_version": 1, "amendments": 0, "amendments_requested": 0,
        "goods": [
            goods("870323", "Motor cars", "Used cars", 3000.0, 30000.0),
            goods("620342", "Men's trousers", "Cotton trousers", 2000.0, 16000.0),
            goods("940360", "Other furniture", "Wooden furniture", 5000.0, 12000.0)
        ],
        "goods_count": 3, "consignments": 1,
        "hs6": ["870323", "620342", "940360"], "hs4": ["8703", "6203", "9403"], "hs2": ["87", "62", "94"],
        "goods_description": "Used cars; Cotton trousers; Wooden furniture",
        "consignor_countries": ["TR"], "consignee_countries": ["LT"],
        "total_gross_mass_kg": 10000.0, "total_packages": 60, "total_value": 58000.0,
        "value_currency": "EUR", "value_per_kg": 5.8
    }))
    .expect("the bench's context matches TransportContext")
}

fn profiles(c: &mut Criterion) {
    let programs: Vec<_> = PROFILES.iter().map(|p| compile(p).expect("bench profiles compile")).collect();
    let transport = context();
    let mut group = c.benchmark_group("profiles");
    group.throughput(Throughput::Elements(PROFILES.len() as u64));
    group.bench_function("20 profiles, bindings per transport", |b| {
        b.iter(|| {
            let bindings = Bindings::new(black_box(&transport));
            programs.iter().filter(|p| p.evaluate(&bindings) == Ok(true)).count()
        })
    });
    let bindings = Bindings::new(&transport);
    group.bench_function("20 profiles, bindings reused", |b| {
        b.iter(|| programs.iter().filter(|p| p.evaluate(black_box(&bindings)) == Ok(true)).count())
    });
    group.finish();
    // Each profile alone, to see which kind of expression costs what.
    let mut each = c.benchmark_group("profile");
    each.sample_size(20)
        .measurement_time(std::time::Duration::from_millis(500))
        .warm_up_time(std::time::Duration::from_millis(200));
    for (i, program) in programs.iter().enumerate() {
        each.bench_function(format!("{i:02}"), |b| b.iter(|| program.evaluate(black_box(&bindings))));
    }
    each.finish();
    c.bench_function("bindings of one transport", |b| b.iter(|| Bindings::new(black_box(&transport))));
    c.bench_function("compile one profile", |b| b.iter(|| compile(black_box(PROFILES[1])).is_ok()));
}

criterion_group!(benches, profiles);
criterion_main!(benches);
