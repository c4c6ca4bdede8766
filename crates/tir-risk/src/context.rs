//! The transport context a rule profile sees (docs/risk.md, "Transport context").
//!
//! Built once per assessment from the guarantee and the operation being
//! assessed, then handed to every profile. Plain strings and numbers only, so
//! it serializes as it is evaluated and a stored context can be replayed in a
//! preview. Integers are `i64` (CEL `int`), amounts `f64` (CEL `double`);
//! absent values are `""` or `0` rather than null, so a comparison never
//! fails on a missing field.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tir_model::guarantee::Guarantee;
use tir_model::{Country, Date, OfficeCode, Timestamp};

/// What the caller knows of the holder before this transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderHistory {
    /// TIR transports of this holder seen before.
    pub transports: i64,
    /// Of those, how many ended with an irregularity found.
    pub irregularities: i64,
}

/// One goods item of the declaration, with its consignment's traders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoodsItem {
    /// 0-based index of the consignment it belongs to.
    pub consignment: i64,
    pub hs6: String,
    pub hs4: String,
    pub hs2: String,
    pub hs6_description: String,
    pub hs4_description: String,
    pub hs2_description: String,
    pub description: String,
    /// 0 when not declared.
    pub packages: i64,
    pub gross_mass_kg: f64,
    /// 0.0 when not declared; in `currency`.
    pub value: f64,
    /// ISO 4217, `""` when no value is declared.
    pub currency: String,
    /// `value / gross_mass_kg`, 0.0 without a value.
    pub value_per_kg: f64,
    pub consignor_country: String,
    pub consignee_country: String,
}

/// Everything a profile may test. Field names are the CEL variable names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransportContext {
    pub guarantee: String,
    pub holder: String,
    /// ISO alpha-2 of the holder's country (from the TIR id).
    pub holder_country: String,
    pub holder_transports: i64,
    pub holder_irregularities: i64,
    /// irregularities / transports, 0.0 without history.
    pub holder_irregularity_rate: f64,
    /// The assessing administration.
    pub country: String,
    pub office: String,
    /// The assessed operation's sequence (1, 2, ...).
    pub operation: i64,
    /// Its TIR territory (`EU` or a country code).
    pub territory: String,
    pub operation_countries: Vec<String>,
    pub itinerary: Vec<String>,
    /// Countries of the itinerary before `country`, in travel order.
    pub previous_countries: Vec<String>,
    /// Countries after `country`, in travel order.
    pub next_countries: Vec<String>,
    /// The country just before `country`, `""` when it is the first.
    pub previous_country: String,
    /// The country just after `country`, `""` when it is the last.
    pub next_country: String,
    pub departure_country: String,
    pub destination_country: String,
    /// `""` when no vehicle is declared.
    pub vehicle_country: String,
    pub vehicle_registration: String,
    pub seals: i64,
    /// UTC day of week of the assessment, 1 = Monday .. 7 = Sunday.
    pub weekday: i64,
    /// UTC hour of the assessment, 0..23.
    pub hour: i64,
    /// UTC date of the assessment, `YYYY-MM-DD`.
    pub date: String,
    /// Declaration version (0 = advance data only, 1 = recorded, n = n-1 amendments).
    pub declaration_version: i64,
    /// Amendments accepted after recording: `declaration_version - 1`, at least 0.
    pub amendments: i64,
    /// Amendments the holder requested after recording (accepted or not).
    pub amendments_requested: i64,
    pub goods: Vec<GoodsItem>,
    pub goods_count: i64,
    pub consignments: i64,
    /// Distinct codes over all goods, in first-seen order.
    pub hs6: Vec<String>,
    pub hs4: Vec<String>,
    pub hs2: Vec<String>,
    /// All goods descriptions joined with `"; "`.
    pub goods_description: String,
    pub consignor_countries: Vec<String>,
    pub consignee_countries: Vec<String>,
    pub total_gross_mass_kg: f64,
    pub total_packages: i64,
    /// Sum of the declared values when they share one currency, else 0.0.
    pub total_value: f64,
    /// That currency, `"mixed"` when they differ, `""` when none is declared.
    pub value_currency: String,
    /// `total_value / total_gross_mass_kg`.
    pub value_per_kg: f64,
}

impl TransportContext {
    /// The context of operation `operation_sequence` of `guarantee`, as the
    /// customs of `assessing_country` at `office` see it at `at`. Uses the
    /// recorded declaration, else the advance data; `None` when there is
    /// neither.
    pub fn build(
        guarantee: &Guarantee,
        operation_sequence: u16,
        assessing_country: Country,
        office: &OfficeCode,
        holder_history: HolderHistory,
        at: Timestamp,
    ) -> Option<TransportContext> {
        let declaration = guarantee.current_declaration()?;
        let country = assessing_country.as_str().to_owned();
        let itinerary: Vec<String> = declaration.itinerary.iter().map(|c| c.as_str().to_owned()).collect();
        let position = itinerary.iter().position(|c| *c == country);
        let (previous_countries, next_countries) = match position {
            Some(i) => (itinerary[..i].to_vec(), itinerary[i + 1..].to_vec()),
            None => (Vec::new(), Vec::new()),
        };
        // Before recording, the operations are not created yet: plan them.
        let (territory, operation_countries) =
            match guarantee.operations.iter().find(|o| o.sequence == operation_sequence) {
                Some(op) => (op.territory.as_str().to_owned(), strings(&op.countries)),
                None => declaration
                    .operations()
                    .into_iter()
                    .find(|p| p.sequence() == operation_sequence)
                    .map(|p| (p.territory().as_str().to_owned(), strings(p.countries())))
                    .unwrap_or_default(),
            };

        let mut goods = Vec::new();
        for (index, consignment) in declaration.consignments.iter().enumerate() {
            for item in &consignment.goods {
                let code = item.hs_code.as_str();
                let (value, currency) = match &item.value {
                    Some(money) => (money.amount, money.currency.as_str().to_owned()),
                    None => (0.0, String::new()),
                };
                goods.push(GoodsItem {
                    consignment: index as i64,
                    hs6: code.to_owned(),
                    hs4: code[..4].to_owned(),
                    hs2: code[..2].to_owned(),
                    hs6_description: item.hs_code.description().to_owned(),
                    hs4_description: heading_description(&code[..4]).to_owned(),
                    hs2_description: heading_description(&code[..2]).to_owned(),
                    description: item.description.clone(),
                    packages: item.packages.unwrap_or(0),
                    gross_mass_kg: item.gross_mass_kg,
                    value,
                    currency,
                    value_per_kg: per_kg(value, item.gross_mass_kg),
                    consignor_country: consignment.consignor.country.as_str().to_owned(),
                    consignee_country: consignment.consignee.country.as_str().to_owned(),
                });
            }
        }

        let distinct = |f: fn(&GoodsItem) -> &String| {
            let mut out: Vec<String> = Vec::new();
            for g in &goods {
                if !out.contains(f(g)) {
                    out.push(f(g).clone());
                }
            }
            out
        };
        let total_gross_mass_kg: f64 = goods.iter().map(|g| g.gross_mass_kg).sum();
        let mut currencies = goods.iter().filter(|g| !g.currency.is_empty()).map(|g| g.currency.as_str());
        let value_currency = match currencies.next() {
            None => String::new(),
            Some(first) if currencies.all(|c| c == first) => first.to_owned(),
            Some(_) => "mixed".to_owned(),
        };
        let total_value = if value_currency.len() == 3 { goods.iter().map(|g| g.value).sum() } else { 0.0 };
        let vehicle = guarantee.vehicle();
        let version = i64::from(guarantee.declaration_version);
        let (date, weekday, hour) = calendar(at);

        Some(TransportContext {
            guarantee: guarantee.reference.as_str().to_owned(),
            holder: guarantee.holder.as_str().to_owned(),
            holder_country: guarantee.holder.country().as_str().to_owned(),
            holder_transports: holder_history.transports,
            holder_irregularities: holder_history.irregularities,
            holder_irregularity_rate: if holder_history.transports > 0 {
                holder_history.irregularities as f64 / holder_history.transports as f64
            } else {
                0.0
            },
            office: office.as_str().to_owned(),
            operation: i64::from(operation_sequence),
            territory,
            operation_countries,
            previous_country: previous_countries.last().cloned().unwrap_or_default(),
            next_country: next_countries.first().cloned().unwrap_or_default(),
            previous_countries,
            next_countries,
            departure_country: itinerary.first().cloned().unwrap_or_default(),
            destination_country: itinerary.last().cloned().unwrap_or_default(),
            itinerary,
            country,
            vehicle_country: vehicle.map(|v| v.country.as_str().to_owned()).unwrap_or_default(),
            vehicle_registration: vehicle.map(|v| v.registration.clone()).unwrap_or_default(),
            seals: guarantee.seals().len() as i64,
            weekday,
            hour,
            date: date.as_str().to_owned(),
            declaration_version: version,
            amendments: (version - 1).max(0),
            amendments_requested: i64::from(guarantee.amendments_requested),
            goods_count: goods.len() as i64,
            consignments: declaration.consignments.len() as i64,
            hs6: distinct(|g| &g.hs6),
            hs4: distinct(|g| &g.hs4),
            hs2: distinct(|g| &g.hs2),
            goods_description: goods.iter().map(|g| g.description.as_str()).collect::<Vec<_>>().join("; "),
            consignor_countries: distinct(|g| &g.consignor_country),
            consignee_countries: distinct(|g| &g.consignee_country),
            total_packages: goods.iter().map(|g| g.packages).sum(),
            value_per_kg: per_kg(total_value, total_gross_mass_kg),
            total_gross_mass_kg,
            total_value,
            value_currency,
            goods,
        })
    }

    /// The names a profile may use as variables, for refusing typos at compile.
    pub fn field_names() -> &'static [&'static str] {
        FIELDS
    }
}

const FIELDS: &[&str] = &[
    "guarantee",
    "holder",
    "holder_country",
    "holder_transports",
    "holder_irregularities",
    "holder_irregularity_rate",
    "country",
    "office",
    "operation",
    "territory",
    "operation_countries",
    "itinerary",
    "previous_countries",
    "next_countries",
    "previous_country",
    "next_country",
    "departure_country",
    "destination_country",
    "vehicle_country",
    "vehicle_registration",
    "seals",
    "weekday",
    "hour",
    "date",
    "declaration_version",
    "amendments",
    "amendments_requested",
    "goods",
    "goods_count",
    "consignments",
    "hs6",
    "hs4",
    "hs2",
    "goods_description",
    "consignor_countries",
    "consignee_countries",
    "total_gross_mass_kg",
    "total_packages",
    "total_value",
    "value_currency",
    "value_per_kg",
];

fn strings(countries: &[Country]) -> Vec<String> {
    countries.iter().map(|c| c.as_str().to_owned()).collect()
}

fn per_kg(value: f64, mass: f64) -> f64 {
    if mass > 0.0 { value / mass } else { 0.0 }
}

/// (date, ISO weekday 1..7, hour) of `at` in UTC.
pub(crate) fn calendar(at: Timestamp) -> (Date, i64, i64) {
    const DAY_MS: i64 = 86_400_000;
    let days = at.unix_ms().div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday (ISO 4).
    let weekday = (days + 3).rem_euclid(7) + 1;
    let hour = at.unix_ms().rem_euclid(DAY_MS) / 3_600_000;
    let date = Date::parse(&at.to_rfc3339()[..10]).unwrap_or_else(|_| Date::parse("1970-01-01").expect("valid"));
    (date, weekday, hour)
}

/// HS 2022 chapter (2 digits) and heading (4 digits) descriptions. tir-model
/// compiles in only the 6-digit subheadings, so these come with this crate
/// (derived from the same shared HS 2022 file, levels 2 and 4).
fn heading_description(code: &str) -> &'static str {
    static TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        include_str!("rules/hs2022-headings.csv")
            .lines()
            .skip(1)
            .filter_map(|line| {
                let (code, description) = line.split_once(',')?;
                Some((code, description.strip_prefix('"').and_then(|d| d.strip_suffix('"')).unwrap_or(description)))
            })
            .collect()
    });
    table.get(code).copied().unwrap_or("")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;
    use tir_model::declaration::Declaration;
    use tir_model::guarantee::GuaranteeState;
    use tir_model::wire::Obj;
    use tir_model::{GuaranteeRef, TirId};

    /// A TR → BG → RO → HU transport (operations TR, then EU) with two
    /// consignments, advance data only.
    pub(crate) fn guarantee() -> Guarantee {
        let v = json!({
            "itinerary": ["TR", "BG", "RO", "HU"],
            "offices": [
                {"code": "TR000100", "role": "departure"},
                {"code": "BG000100", "role": "entry"},
                {"code": "HU000200", "role": "destination"}
            ],
            "vehicle": {"registration": "34ABC123", "country": "TR"},
            "seals": ["S1", "S2"],
            "consignments": [
                {
                    "consignor": {"name": "A", "country": "TR"},
                    "consignee": {"name": "B", "country": "HU"},
                    "goods": [
                        {"hs_code": "870323", "description": "Used cars", "packages": 2,
                         "gross_mass_kg": 3000.0, "value": {"amount": 30000.0, "currency": "EUR"}},
                        {"hs_code": "240220", "description": "Cigarettes", "packages": 100,
                         "gross_mass_kg": 1000.0, "value": {"amount": 5000.0, "currency": "EUR"}}
                    ]
                },
                {
                    "consignor": {"name": "C", "country": "CN"},
                    "consignee": {"name": "D", "country": "RO"},
                    "goods": [{"hs_code": "010121", "description": "Horses", "gross_mass_kg": 1000.0}]
                }
            ]
        });
        let declaration = Declaration::parse(Obj::new(&v, "/declaration").unwrap()).unwrap();
        let mut guarantee = Guarantee::registered(
            GuaranteeRef::parse("XH25000001").unwrap(),
            TirId::parse("TUR/012/345").unwrap(),
            "chain".into(),
            None,
            Timestamp::from_unix_ms(0),
        );
        guarantee.state = GuaranteeState::Accepted;
        guarantee.advance = Some(declaration);
        guarantee
    }

    /// 2026-11-30 (a Monday) 14:05 UTC.
    pub(crate) const MONDAY_14H: Timestamp = Timestamp::from_unix_ms(1_796_047_500_000);

    pub(crate) fn context() -> TransportContext {
        let history = HolderHistory { transports: 10, irregularities: 3 };
        TransportContext::build(
            &guarantee(),
            2,
            Country::parse("RO").unwrap(),
            &OfficeCode::parse("RO000100").unwrap(),
            history,
            MONDAY_14H,
        )
        .unwrap()
    }

    #[test]
    fn context_has_goods_itinerary_and_history() {
        let c = context();
        assert_eq!(c.operation, 2);
        assert_eq!(c.territory, "EU");
        assert_eq!(c.operation_countries, ["BG", "RO", "HU"]);
        assert_eq!(c.previous_countries, ["TR", "BG"]);
        assert_eq!(c.previous_country, "BG");
        assert_eq!(c.next_countries, ["HU"]);
        assert_eq!(c.next_country, "HU");
        assert_eq!((c.departure_country.as_str(), c.destination_country.as_str()), ("TR", "HU"));
        assert_eq!(c.hs4, ["8703", "2402", "0101"]);
        assert_eq!(c.hs2, ["87", "24", "01"]);
        assert_eq!(
            c.goods[1].hs4_description,
            "Cigars, cheroots, cigarillos and cigarettes; of tobacco or of tobacco substitutes"
        );
        assert_eq!(c.goods[2].hs2_description, "Animals; live");
        assert!(c.goods[0].hs6_description.starts_with("Vehicles; with only spark-ignition"));
        assert_eq!(c.goods[2].currency, "");
        assert_eq!(c.consignor_countries, ["TR", "CN"]);
        assert_eq!(c.total_gross_mass_kg, 5000.0);
        assert_eq!(c.total_packages, 102);
        assert_eq!((c.total_value, c.value_currency.as_str()), (35000.0, "EUR"));
        assert_eq!(c.value_per_kg, 7.0);
        assert_eq!(c.goods[1].value_per_kg, 5.0);
        assert_eq!((c.holder_country.as_str(), c.holder_irregularity_rate), ("TR", 0.3));
        assert_eq!((c.vehicle_country.as_str(), c.seals), ("TR", 2));
        assert_eq!((c.weekday, c.hour, c.date.as_str()), (1, 14, "2026-11-30"));
        assert_eq!((c.declaration_version, c.amendments), (0, 0));
        assert_eq!(c.goods_description, "Used cars; Cigarettes; Horses");
    }

    #[test]
    fn a_recorded_declaration_counts_its_amendments_and_uses_the_operations() {
        let mut g = guarantee();
        let declaration = g.advance.clone().unwrap();
        g.operations = declaration.operations().iter().map(tir_model::guarantee::Operation::pending).collect();
        g.declaration = Some(declaration);
        g.declaration_version = 3;
        g.amendments_requested = 4;
        let tr = Country::parse("TR").unwrap();
        let office = OfficeCode::parse("TR000100").unwrap();
        let c = TransportContext::build(&g, 1, tr, &office, HolderHistory::default(), MONDAY_14H).unwrap();
        assert_eq!((c.declaration_version, c.amendments, c.amendments_requested), (3, 2, 4));
        assert_eq!(
            (c.operation, c.territory.as_str(), c.operation_countries.as_slice()),
            (1, "TR", &["TR".to_owned()][..])
        );
        assert_eq!((c.previous_country.as_str(), c.next_country.as_str()), ("", "BG"));
        assert_eq!((c.holder_transports, c.holder_irregularity_rate), (0, 0.0));
        // A country off the itinerary sees no neighbours; no declaration, no context.
        let de = Country::parse("DE").unwrap();
        let c = TransportContext::build(&g, 2, de, &office, HolderHistory::default(), MONDAY_14H).unwrap();
        assert!(c.previous_countries.is_empty() && c.next_countries.is_empty());
        g.declaration = None;
        g.advance = None;
        assert!(TransportContext::build(&g, 1, tr, &office, HolderHistory::default(), MONDAY_14H).is_none());
    }

    #[test]
    fn context_round_trips_through_json() {
        let c = context();
        let back: TransportContext = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn every_serialized_field_is_listed() {
        let v = serde_json::to_value(context()).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        for key in &keys {
            assert!(FIELDS.contains(&key.as_str()), "{key} missing from FIELDS");
        }
        for name in FIELDS {
            assert!(keys.iter().any(|k| *k == name), "{name} is not a field");
        }
    }

    #[test]
    fn weekday_and_hour_are_utc() {
        assert_eq!(calendar(Timestamp::from_unix_ms(0)).1, 4);
        assert_eq!(calendar(Timestamp::from_unix_ms(-1)).2, 23);
        assert_eq!(calendar(Timestamp::from_unix_ms(-1)).1, 3);
    }
}
