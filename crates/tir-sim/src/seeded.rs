//! One corridor's parties seeded over the admin routes, and scripted
//! transports along it: the messages of one full TIR transport, in order,
//! each with the token of the party that sends it. The end-to-end tests of
//! the binary drive servers with these.

use serde_json::{Value, json};

use crate::AnyError;
use crate::client::{ExchangeClient, segment};
use crate::model::script::{Script, ScriptLeg};
use crate::model::world::{VIA_BALTICA_CROSSINGS, office_at};

pub struct CustomsSide {
    pub country: String,
    pub token: String,
    pub office: String,
}

/// The parties seeded along `VIA_BALTICA_CROSSINGS` over HTTP: their tokens,
/// the holder's TIR id, and each country's customs with one office.
pub struct SeededCorridor {
    pub chain: String,
    pub holder: String,
    pub holder_tir_id: String,
    pub customs: Vec<CustomsSide>,
}

/// Seeds customs, offices, a chain and a holder along `VIA_BALTICA_CROSSINGS`
/// through the admin routes. `tag` keeps holder ids apart between seeds.
pub async fn seed_corridor(client: &ExchangeClient, admin: &str, tag: u16) -> Result<SeededCorridor, AnyError> {
    let mut customs = Vec::new();
    for (country, locations) in VIA_BALTICA_CROSSINGS {
        let created = client
            .expect(
                admin,
                "/v1/admin/parties",
                &json!({"kind": "customs", "name": format!("Customs {country}"), "country": country}),
                201,
            )
            .await?;
        let office = office_at(country, locations[0])?;
        let body = json!({"code": office.code.as_str(), "country": country, "name": office.name,
                          "roles": ["departure", "destination", "entry", "exit"], "unlocode": office.unlocode});
        client.expect(admin, "/v1/admin/offices", &body, 201).await?;
        let token = created["token"].as_str().ok_or("no token")?.to_owned();
        customs.push(CustomsSide { country: country.to_owned(), token, office: office.code.to_string() });
    }
    let chain =
        client.expect(admin, "/v1/admin/parties", &json!({"kind": "guarantee_chain", "name": "Chain"}), 201).await?;
    let holder_tir_id = format!("LTU/{:03}/{}", tag % 1000, 4242);
    let (status, text) = client
        .put(
            admin,
            &format!("/v1/admin/holders/{}", segment(&holder_tir_id)),
            &json!({"name": "Baltic Haulage", "country": "LT", "status": "authorized"}),
        )
        .await?;
    if status != 200 {
        return Err(format!("PUT holder: {status} {text}").into());
    }
    let holder = client
        .expect(
            admin,
            "/v1/admin/parties",
            &json!({"kind": "holder", "name": "Baltic Haulage", "tir_id": holder_tir_id}),
            201,
        )
        .await?;
    Ok(SeededCorridor {
        chain: chain["token"].as_str().ok_or("no token")?.to_owned(),
        holder: holder["token"].as_str().ok_or("no token")?.to_owned(),
        holder_tir_id,
        customs,
    })
}

/// A declaration over `stops` (indices into the corridor's customs).
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

/// Every message of a full transport: E1, E9, I1, I7, then I9 and I11 in
/// each country, then I13 in each. Message ids derive from the reference.
pub fn full_transport(corridor: &SeededCorridor, reference: &str, stops: &[usize]) -> Vec<(String, Value)> {
    let declaration = declaration(corridor, stops);
    let seals = ["S-0002".to_owned(), "S-0001".to_owned()];
    Script {
        reference,
        chain_token: &corridor.chain,
        holder_tir_id: &corridor.holder_tir_id,
        holder_token: &corridor.holder,
        declaration: &declaration,
        seals: &seals,
        legs: stops
            .iter()
            .map(|s| {
                let side = &corridor.customs[*s];
                ScriptLeg { token: &side.token, office: &side.office, reservations: &[] }
            })
            .collect(),
    }
    .messages()
}
