//! A longer corridor than `fixtures`' TR → GE → AZ, seeded over the admin
//! routes of a server reached from outside (a `tirhub serve` child process):
//! six countries with one customs office each (every country of the
//! itinerary has a customs party, so advance data always has someone to be
//! forwarded to), a chain and a holder. Through the whole corridor a
//! transport has four TIR operations: KZ, RU, BY, then EU [LT, PL, DE].

use reqwest::Method;
use serde_json::{Value, json};

use tir_model::Country;

use crate::fixtures::encode;

/// Where a country's office of the corridor stands.
#[derive(Debug, Clone, Copy)]
pub enum Crossing {
    /// A border crossing of the shipped UN/LOCODE data (its location); the
    /// office there is `<country><location>001`.
    Locode(&'static str),
    /// A real crossing the data lacks, at a synthetic office code.
    Synthetic { office: &'static str, name: &'static str },
}

/// The corridor of `tirhub demo`: Kazakhstan, Russia and Belarus, then into
/// the Union (one TIR territory) at Medininkai, on to Germany; each country
/// through one border crossing, with the demo's office codes.
pub const CROSSINGS: [(&str, Crossing); 6] = [
    ("KZ", Crossing::Synthetic { office: "KZSIM001", name: "Syrym (synthetic office)" }),
    ("RU", Crossing::Locode("ZLY")),
    ("BY", Crossing::Synthetic { office: "BYSIM001", name: "Kamenny Log (synthetic office)" }),
    ("LT", Crossing::Locode("MDK")),
    ("PL", Crossing::Locode("KUB")),
    ("DE", Crossing::Locode("JES")),
];

pub struct CustomsSide {
    pub country: String,
    pub token: String,
    pub office: String,
}

/// The parties seeded along `CROSSINGS`: their tokens, the holder's TIR id,
/// and each country's customs with its office, in `CROSSINGS` order.
pub struct SeededCorridor {
    pub chain: String,
    pub holder: String,
    pub holder_tir_id: String,
    pub customs: Vec<CustomsSide>,
}

/// Seeds customs, offices, a chain and a holder along `CROSSINGS` through the
/// admin routes of the server at `base`. `tag` keeps holder ids apart between
/// seeds of one server. Panics, naming the call, if the server refuses one.
pub async fn seed_corridor(base: &str, admin: &str, tag: u16) -> SeededCorridor {
    let api = AdminApi { http: reqwest::Client::new(), base: base.trim_end_matches('/'), token: admin };
    let mut customs = Vec::new();
    for (country, crossing) in CROSSINGS {
        let token =
            api.party(json!({"kind": "customs", "name": format!("Customs {country}"), "country": country})).await;
        let office = office_code(country, crossing);
        let mut body = json!({"code": office, "country": country,
                              "roles": ["departure", "destination", "entry", "exit"]});
        match crossing {
            Crossing::Locode(location) => {
                body["name"] = json!(crossing_name(country, location));
                body["unlocode"] = json!(format!("{country}{location}"));
            }
            Crossing::Synthetic { name, .. } => body["name"] = json!(name),
        }
        api.write(Method::POST, "/v1/admin/offices", &body, 201).await;
        customs.push(CustomsSide { country: country.to_owned(), token, office });
    }
    let chain = api.party(json!({"kind": "guarantee_chain", "name": "Chain"})).await;
    let holder_tir_id = format!("LTU/{:03}/{}", tag % 1000, 4242);
    let record = json!({"name": "Baltic Haulage", "country": "LT", "status": "authorized"});
    api.write(Method::PUT, &format!("/v1/admin/holders/{}", encode(&holder_tir_id)), &record, 200).await;
    let holder = api.party(json!({"kind": "holder", "name": "Baltic Haulage", "tir_id": holder_tir_id})).await;
    SeededCorridor { chain, holder, holder_tir_id, customs }
}

/// The code of the office at `crossing` of `country`.
pub fn office_code(country: &str, crossing: Crossing) -> String {
    match crossing {
        Crossing::Locode(location) => format!("{country}{location}001"),
        Crossing::Synthetic { office, .. } => office.to_owned(),
    }
}

/// The crossing's name in the UN/LOCODE data the server checks offices against.
fn crossing_name(country: &str, location: &str) -> &'static str {
    let crossings = tir_model::refdata::border_crossings_of(country);
    let crossing = crossings.into_iter().find(|b| b.location == location);
    crossing.unwrap_or_else(|| panic!("{country}{location} is not a border crossing")).name
}

/// A declaration over `stops` (indices into the corridor's customs): the first
/// office is of departure, the last of destination, the others of entry.
pub fn declaration(corridor: &SeededCorridor, stops: &[usize]) -> Value {
    let last = stops.len() - 1;
    let offices: Vec<Value> = stops
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let role = match i {
                0 => "departure",
                i if i == last => "destination",
                _ => "entry",
            };
            json!({"code": corridor.customs[*s].office, "role": role})
        })
        .collect();
    let first = &corridor.customs[stops[0]].country;
    let final_country = &corridor.customs[stops[last]].country;
    json!({
        "itinerary": stops.iter().map(|s| corridor.customs[*s].country.clone()).collect::<Vec<_>>(),
        "offices": offices,
        "vehicle": {"registration": "LRT123", "country": "LT"},
        "seals": ["S-0001", "S-0002"],
        "consignments": [{
            "consignor": {"name": "Exporter", "country": first},
            "consignee": {"name": "Importer", "country": final_country},
            "goods": [{"hs_code": "870323", "description": "Passenger cars", "packages": 4,
                       "gross_mass_kg": 6200.0, "value": {"amount": 88000.0, "currency": "EUR"}}]
        }]
    })
}

/// The TIR operations of a transport over `stops` (indices into the
/// corridor's customs), each as the indices of its countries in order: the
/// Union's member states travelled in a row form one operation.
pub fn operations(stops: &[usize]) -> Vec<Vec<usize>> {
    let countries: Vec<Country> = stops
        .iter()
        .map(|s| Country::parse(CROSSINGS[*s].0).unwrap_or_else(|e| panic!("{}: {e:?}", CROSSINGS[*s].0)))
        .collect();
    let planned = tir_model::operation::plan(&countries).unwrap_or_else(|e| panic!("stops {stops:?}: {e}"));
    let mut at = 0;
    planned
        .iter()
        .map(|op| {
            let indices = stops[at..at + op.countries().len()].to_vec();
            at += op.countries().len();
            indices
        })
        .collect()
}

/// The admin routes of one server, each write required to succeed.
struct AdminApi<'a> {
    http: reqwest::Client,
    base: &'a str,
    token: &'a str,
}

impl AdminApi<'_> {
    async fn write(&self, method: Method, path: &str, body: &Value, expected: u16) -> String {
        let request = self.http.request(method.clone(), format!("{}{path}", self.base));
        let response = request.bearer_auth(self.token).json(body).send().await;
        let response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(status, expected, "{method} {path} {body}: {text}");
        text
    }

    /// Creates a party and returns its token.
    async fn party(&self, body: Value) -> String {
        let text = self.write(Method::POST, "/v1/admin/parties", &body, 201).await;
        let created: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        created["token"].as_str().unwrap_or_else(|| panic!("no token: {text}")).to_owned()
    }
}

#[cfg(test)]
mod tests {
    use tir_model::operation;
    use tir_model::refdata::border_crossings_of;

    use super::*;

    #[test]
    fn every_crossing_of_the_corridor_is_in_the_shipped_data() {
        for (country, crossing) in CROSSINGS {
            let office = office_code(country, crossing);
            assert!(office.starts_with(country), "{office}");
            match crossing {
                Crossing::Locode(location) => assert!(!crossing_name(country, location).is_empty(), "{office}"),
                Crossing::Synthetic { .. } => assert!(border_crossings_of(country).is_empty(), "{office}"),
            }
        }
    }

    #[test]
    fn the_corridor_enters_the_union_at_medininkai_from_outside_it() {
        let countries: Vec<Country> = CROSSINGS.iter().map(|(c, _)| Country::parse(c).unwrap()).collect();
        let operations = operation::plan(&countries).unwrap();
        let union = operations.last().unwrap();
        assert!(union.territory().is_union());
        assert_eq!(union.countries()[0].as_str(), "LT");
        assert_eq!(office_code("LT", CROSSINGS[3].1), "LTMDK001");
    }

    #[test]
    fn the_whole_corridor_is_four_operations_the_last_in_the_union() {
        let all: Vec<usize> = (0..CROSSINGS.len()).collect();
        assert_eq!(operations(&all), [vec![0], vec![1], vec![2], vec![3, 4, 5]]);
        assert_eq!(operations(&[2, 3, 4]), [vec![2], vec![3, 4]]);
    }

    #[test]
    fn a_declaration_departs_from_the_first_stop_and_ends_at_the_last() {
        let customs = CROSSINGS
            .iter()
            .map(|(c, crossing)| CustomsSide {
                country: (*c).to_owned(),
                token: format!("t-{c}"),
                office: office_code(c, *crossing),
            })
            .collect();
        let corridor =
            SeededCorridor { chain: "c".into(), holder: "h".into(), holder_tir_id: "LTU/001/4242".into(), customs };
        let d = declaration(&corridor, &[2, 3, 4]);
        assert_eq!(d["itinerary"], json!(["BY", "LT", "PL"]));
        let roles: Vec<&str> = d["offices"].as_array().unwrap().iter().map(|o| o["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["departure", "entry", "destination"]);
        assert_eq!(d["offices"][0]["code"], "BYSIM001");
        assert_eq!(d["offices"][2]["code"], "PLKUB001");
        assert_eq!(d["consignments"][0]["consignee"]["country"], "PL");
    }
}
