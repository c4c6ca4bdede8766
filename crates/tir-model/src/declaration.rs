//! The TIR declaration (advance data E9/E11, recorded by I7).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, EtirError, fail};
use crate::ids::{Country, Currency, HsCode, OfficeCode};
use crate::limits::*;
use crate::operation::{self, PlannedOperation};
use crate::party::OfficeRole;
use crate::wire::{Obj, parse_at};

/// Not changed once parsed (nothing assigns to its fields): the guarantee
/// document is written on every message of a transport, so the declaration's
/// JSON is made once and reused (see `Serialize`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Declaration {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::itinerary))]
    pub itinerary: Vec<Country>,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::declared_offices))]
    pub offices: Vec<DeclaredOffice>,
    #[serde(default)]
    pub vehicle: Option<Vehicle>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::declared_seals))]
    pub seals: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::consignments))]
    pub consignments: Vec<Consignment>,
    #[serde(skip)]
    json: JsonOnce,
}

/// The fields of a declaration as they are written.
#[derive(Serialize)]
struct DeclarationFields<'a> {
    itinerary: &'a [Country],
    offices: &'a [DeclaredOffice],
    #[serde(skip_serializing_if = "Option::is_none")]
    vehicle: &'a Option<Vehicle>,
    seals: &'a [String],
    consignments: &'a [Consignment],
}

impl Serialize for Declaration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(serializer)
    }
}

/// A declaration's JSON, made on first use; equal for equal declarations.
#[derive(Clone, Default)]
struct JsonOnce(std::sync::OnceLock<Box<serde_json::value::RawValue>>);

impl PartialEq for JsonOnce {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for JsonOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonOnce")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeclaredOffice {
    pub code: OfficeCode,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::office_role))]
    pub role: OfficeRole,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Vehicle {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub registration: String,
    pub country: Country,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trader {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub name: String,
    pub country: Country,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Consignment {
    pub consignor: Trader,
    pub consignee: Trader,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::goods))]
    pub goods: Vec<Goods>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Goods {
    pub hs_code: HsCode,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::text))]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::packages))]
    pub packages: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::amount))]
    pub gross_mass_kg: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Money {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::amount))]
    pub amount: f64,
    pub currency: Currency,
}

impl Declaration {
    /// Parses and checks every rule that needs no registry: field formats,
    /// itinerary order, office count and office countries.
    pub fn parse(obj: Obj<'_>) -> Result<Declaration, EtirError> {
        let itinerary = parse_itinerary(&obj)?;
        let offices = parse_offices(&obj)?;
        let vehicle = match obj.object_opt("vehicle")? {
            None => None,
            Some(v) => Some(Vehicle::parse(v.view())?),
        };
        let seals = obj.id_texts_opt("seals", SEALS_MAX, TEXT_CHARS_MAX)?.unwrap_or_default();
        let seal_set: HashSet<&String> = seals.iter().collect();
        if seal_set.len() != seals.len() {
            return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, obj.pointer("seals"))
                .with_detail("seal numbers must be distinct"));
        }
        let consignments = obj
            .array("consignments", CONSIGNMENTS_MAX)?
            .into_iter()
            .map(|(pointer, v)| parse_consignment(Obj::new(v, &pointer)?))
            .collect::<Result<Vec<_>, _>>()?;
        if consignments.is_empty() {
            return fail(ErrorCode::RequiredFieldMissing, obj.pointer("consignments"));
        }
        obj.finish()?;
        let declaration = Declaration { itinerary, offices, vehicle, seals, consignments, json: JsonOnce::default() };
        declaration.check_rules(&obj)?;
        // Made here, on the request's thread, rather than later in the store's writer.
        declaration.json();
        Ok(declaration)
    }

    fn check_rules(&self, obj: &Obj<'_>) -> Result<(), EtirError> {
        let rule = |pointer: String, detail: &str| {
            Err(EtirError::new(ErrorCode::DeclarationRuleBroken, pointer).with_detail(detail))
        };
        for (i, office) in self.offices.iter().enumerate() {
            if !self.itinerary.contains(&office.code.country()) {
                return rule(
                    format!("{}/{i}/code", obj.pointer("offices")),
                    "the office's country is not on the itinerary",
                );
            }
        }
        let loading_unloading =
            self.offices.iter().filter(|o| matches!(o.role, OfficeRole::Departure | OfficeRole::Destination)).count();
        if loading_unloading > OFFICES_LOADING_UNLOADING_MAX {
            return rule(obj.pointer("offices"), "at most 4 departure and destination offices (Art. 18)");
        }
        let Some(first_departure) = self.offices.iter().find(|o| o.role == OfficeRole::Departure) else {
            return rule(obj.pointer("offices"), "a departure office is required");
        };
        if !self.offices.iter().any(|o| o.role == OfficeRole::Destination) {
            return rule(obj.pointer("offices"), "a destination office is required");
        }
        if first_departure.code.country() != self.itinerary[0] {
            return rule(
                format!("{}/0", obj.pointer("itinerary")),
                "the itinerary starts in the country of the first departure office",
            );
        }
        let last = self.itinerary.len() - 1;
        if !self.offices.iter().any(|o| o.role == OfficeRole::Destination && o.code.country() == self.itinerary[last]) {
            return rule(
                format!("{}/{last}", obj.pointer("itinerary")),
                "the itinerary ends in the country of a destination office",
            );
        }
        Ok(())
    }

    /// The TIR operations of this declaration's itinerary (checked at parsing).
    pub fn operations(&self) -> Vec<PlannedOperation> {
        operation::plan(&self.itinerary).expect("Declaration::parse checked the itinerary")
    }

    /// The JSON pointers (under `/declaration`) where this declaration differs
    /// from `earlier`: the deepest that changed, at most `CHANGES_MAX`.
    pub fn changes_from(&self, earlier: &Declaration) -> Vec<String> {
        let mut changes = Vec::new();
        json_changes(&earlier.to_json(), &self.to_json(), &mut "/declaration".to_owned(), &mut changes);
        changes
    }

    /// Whether `code` is declared in `role`.
    pub fn declares(&self, code: &OfficeCode, role: OfficeRole) -> bool {
        self.offices.iter().any(|o| &o.code == code && o.role == role)
    }

    /// Departure offices, in the order declared.
    pub fn departure_offices(&self) -> impl Iterator<Item = &OfficeCode> {
        self.offices.iter().filter(|o| o.role == OfficeRole::Departure).map(|o| &o.code)
    }

    pub fn country_of_departure(&self) -> Country {
        self.itinerary[0]
    }

    /// The seals declared, compared as a set.
    pub fn seals_match(&self, seals: &[String]) -> bool {
        let declared: HashSet<&String> = self.seals.iter().collect();
        let presented: HashSet<&String> = seals.iter().collect();
        declared == presented && seals.len() == self.seals.len()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::from_str(self.json().get()).unwrap_or(serde_json::Value::Null)
    }

    /// This declaration as JSON, made once.
    pub fn json(&self) -> &serde_json::value::RawValue {
        self.json.0.get_or_init(|| {
            let fields = DeclarationFields {
                itinerary: &self.itinerary,
                offices: &self.offices,
                vehicle: &self.vehicle,
                seals: &self.seals,
                consignments: &self.consignments,
            };
            serde_json::value::to_raw_value(&fields).expect("declarations serialize")
        })
    }
}

/// Appends to `out` the pointers below `pointer` where `old` and `new` differ.
fn json_changes(old: &serde_json::Value, new: &serde_json::Value, pointer: &mut String, out: &mut Vec<String>) {
    use serde_json::Value;
    if out.len() >= CHANGES_MAX || old == new {
        return;
    }
    let len = pointer.len();
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => json_changes(x, y, pointer, out),
                    _ if out.len() < CHANGES_MAX => out.push(pointer.clone()),
                    _ => {}
                }
                pointer.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                pointer.push('/');
                pointer.push_str(&i.to_string());
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => json_changes(x, y, pointer, out),
                    _ if out.len() < CHANGES_MAX => out.push(pointer.clone()),
                    _ => {}
                }
                pointer.truncate(len);
            }
        }
        _ => out.push(pointer.clone()),
    }
}

/// The itinerary, with the rules `operation::plan` checks: two territories at
/// least (181), no country following itself or coming again inside one
/// operation (180).
fn parse_itinerary(obj: &Obj<'_>) -> Result<Vec<Country>, EtirError> {
    let items = obj.array("itinerary", ITINERARY_COUNTRIES_MAX)?;
    if items.is_empty() {
        return fail(ErrorCode::RequiredFieldMissing, obj.pointer("itinerary"));
    }
    let mut itinerary: Vec<Country> = Vec::with_capacity(items.len());
    for (pointer, v) in items {
        let raw = v.as_str().ok_or_else(|| EtirError::new(ErrorCode::WrongFormat, pointer.clone()))?;
        itinerary.push(parse_at(raw, &pointer, Country::parse)?);
    }
    if let Err(e) = operation::plan(&itinerary) {
        let pointer = match e.index() {
            Some(i) => format!("{}/{i}", obj.pointer("itinerary")),
            None => obj.pointer("itinerary"),
        };
        return Err(EtirError::new(e.code(), pointer).with_detail(e.to_string()));
    }
    Ok(itinerary)
}

impl Vehicle {
    pub fn parse(obj: Obj<'_>) -> Result<Vehicle, EtirError> {
        let vehicle = Vehicle {
            registration: obj.id_text("registration", TEXT_CHARS_MAX)?,
            country: obj.parse("country", Country::parse)?,
        };
        obj.finish()?;
        Ok(vehicle)
    }
}

fn parse_offices(obj: &Obj<'_>) -> Result<Vec<DeclaredOffice>, EtirError> {
    let items = obj.array("offices", OFFICES_MAX)?;
    let mut offices: Vec<DeclaredOffice> = Vec::with_capacity(items.len());
    for (pointer, v) in items {
        let office = Obj::new(v, &pointer)?;
        let code = office.parse("code", OfficeCode::parse)?;
        let role_raw = office.str("role")?;
        let role = OfficeRole::parse(role_raw)
            .ok_or_else(|| EtirError::new(ErrorCode::InvalidDomain, office.pointer("role")))?;
        office.finish()?;
        if offices.iter().any(|o| o.code == code && o.role == role) {
            return Err(EtirError::new(ErrorCode::DeclarationRuleBroken, pointer)
                .with_detail("the same office is listed twice in the same role"));
        }
        offices.push(DeclaredOffice { code, role });
    }
    Ok(offices)
}

fn parse_trader(obj: Obj<'_>) -> Result<Trader, EtirError> {
    let trader = Trader { name: obj.text("name", TEXT_CHARS_MAX)?, country: obj.parse("country", Country::parse)? };
    obj.finish()?;
    Ok(trader)
}

fn parse_consignment(obj: Obj<'_>) -> Result<Consignment, EtirError> {
    let consignor = parse_trader(obj.object("consignor")?.view())?;
    let consignee = parse_trader(obj.object("consignee")?.view())?;
    let goods = obj
        .array("goods", GOODS_PER_CONSIGNMENT_MAX)?
        .into_iter()
        .map(|(pointer, v)| parse_goods(Obj::new(v, &pointer)?))
        .collect::<Result<Vec<_>, _>>()?;
    if goods.is_empty() {
        return fail(ErrorCode::RequiredFieldMissing, obj.pointer("goods"));
    }
    obj.finish()?;
    Ok(Consignment { consignor, consignee, goods })
}

fn parse_goods(obj: Obj<'_>) -> Result<Goods, EtirError> {
    let hs_code = obj.parse("hs_code", HsCode::parse)?;
    let description = obj.text("description", TEXT_CHARS_MAX)?;
    let packages = match obj.get("packages") {
        None => None,
        Some(_) => Some(obj.positive_i64("packages", PACKAGES_MAX)?),
    };
    let gross_mass_kg = obj.positive_f64("gross_mass_kg", AMOUNT_MAX)?;
    let value = match obj.object_opt("value")? {
        None => None,
        Some(v) => {
            let v = v.view();
            let money = Money {
                amount: v.positive_f64("amount", AMOUNT_MAX)?,
                currency: v.parse("currency", Currency::parse)?,
            };
            v.finish()?;
            Some(money)
        }
    };
    obj.finish()?;
    Ok(Goods { hs_code, description, packages, gross_mass_kg, value })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// A valid declaration for TR → GE → AZ, used across the model's tests.
    pub fn sample() -> Value {
        tir_testkit::fixtures::declaration()
    }

    fn parse(v: &Value) -> Result<Declaration, EtirError> {
        Declaration::parse(Obj::new(v, "/declaration")?)
    }

    fn error(v: &Value) -> (u16, String) {
        let e = parse(v).unwrap_err();
        (e.code.number(), e.pointer)
    }

    #[test]
    fn sample_declaration_parses() {
        let d = parse(&sample()).unwrap();
        assert_eq!(d.itinerary.len(), 3);
        assert_eq!(d.country_of_departure().as_str(), "TR");
        assert!(d.seals_match(&["TR-884211".to_string()]));
        assert!(!d.seals_match(&["TR-000000".to_string()]));
        let back = serde_json::from_value::<Declaration>(d.to_json()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn missing_itinerary_is_101() {
        let mut v = sample();
        v.as_object_mut().unwrap().remove("itinerary");
        assert_eq!(error(&v), (101, "/declaration/itinerary".into()));
    }

    #[test]
    fn unknown_hs_code_is_102() {
        let mut v = sample();
        v["consignments"][0]["goods"][0]["hs_code"] = json!("999999");
        assert_eq!(error(&v), (102, "/declaration/consignments/0/goods/0/hs_code".into()));
    }

    #[test]
    fn hs_code_of_wrong_length_is_105_and_letters_are_106() {
        let mut v = sample();
        v["consignments"][0]["goods"][0]["hs_code"] = json!("8703");
        assert_eq!(error(&v).0, 105);
        v["consignments"][0]["goods"][0]["hs_code"] = json!("87032A");
        assert_eq!(error(&v).0, 106);
    }

    #[test]
    fn unknown_country_is_305_and_currency_102() {
        let mut v = sample();
        v["itinerary"][1] = json!("QQ");
        assert_eq!(error(&v), (305, "/declaration/itinerary/1".into()));
        let mut v = sample();
        v["consignments"][0]["goods"][0]["value"]["currency"] = json!("QQQ");
        assert_eq!(error(&v), (102, "/declaration/consignments/0/goods/0/value/currency".into()));
    }

    #[test]
    fn repeated_itinerary_country_is_180() {
        let mut v = sample();
        v["itinerary"] = json!(["TR", "GE", "GE", "AZ"]);
        assert_eq!(error(&v), (180, "/declaration/itinerary/2".into()));
        // Again within one territory: Bulgaria, Romania, Bulgaria is one EU operation.
        v["itinerary"] = json!(["TR", "BG", "RO", "BG", "GE", "AZ"]);
        assert_eq!(error(&v), (180, "/declaration/itinerary/3".into()));
        // Again after leaving the territory: a new operation, allowed.
        v["itinerary"] = json!(["TR", "GE", "TR", "GE", "AZ"]);
        assert!(parse(&v).is_ok());
    }

    #[test]
    fn single_territory_itinerary_is_181() {
        let mut v = sample();
        v["itinerary"] = json!(["LT", "PL", "DE"]);
        assert_eq!(error(&v), (181, "/declaration/itinerary".into()));
    }

    #[test]
    fn itinerary_not_ending_at_a_destination_country_is_180() {
        let mut v = sample();
        v["itinerary"] = json!(["TR", "GE", "AZ", "KZ"]);
        assert_eq!(error(&v), (180, "/declaration/itinerary/3".into()));
    }

    #[test]
    fn changes_name_the_deepest_pointers() {
        let before = parse(&sample()).unwrap();
        let mut v = sample();
        v["consignments"][0]["goods"][0]["packages"] = json!(5);
        v["vehicle"]["registration"] = json!("34XYZ999");
        let after = parse(&v).unwrap();
        assert_eq!(
            after.changes_from(&before),
            ["/declaration/consignments/0/goods/0/packages", "/declaration/vehicle/registration"]
        );
        assert!(after.changes_from(&after).is_empty());
    }

    #[test]
    fn itinerary_not_starting_at_the_departure_country_is_180() {
        let mut v = sample();
        v["itinerary"] = json!(["GE", "TR", "AZ"]);
        assert_eq!(error(&v), (180, "/declaration/itinerary/0".into()));
    }

    #[test]
    fn office_outside_the_itinerary_is_180() {
        let mut v = sample();
        v["offices"][1]["code"] = json!("AM000100");
        assert_eq!(error(&v), (180, "/declaration/offices/1/code".into()));
    }

    #[test]
    fn four_departure_and_destination_offices_pass_and_five_are_180() {
        let mut v = sample();
        v["offices"] = json!([
            {"code": "TR000100", "role": "departure"},
            {"code": "TR000101", "role": "departure"},
            {"code": "GE000100", "role": "destination"},
            {"code": "AZ000200", "role": "destination"},
            {"code": "GE000200", "role": "entry"}
        ]);
        assert!(parse(&v).is_ok());
        v["offices"].as_array_mut().unwrap().push(json!({"code": "AZ000300", "role": "destination"}));
        assert_eq!(error(&v), (180, "/declaration/offices".into()));
    }

    #[test]
    fn declaration_without_departure_or_destination_is_180() {
        let mut v = sample();
        v["offices"] = json!([{"code": "TR000100", "role": "departure"}]);
        assert_eq!(error(&v).0, 180);
        v["offices"] = json!([{"code": "AZ000200", "role": "destination"}]);
        assert_eq!(error(&v).0, 180);
    }

    #[test]
    fn unknown_office_role_is_102() {
        let mut v = sample();
        v["offices"][0]["role"] = json!("warehouse");
        assert_eq!(error(&v), (102, "/declaration/offices/0/role".into()));
    }

    #[test]
    fn non_positive_mass_is_180_and_a_text_106() {
        let mut v = sample();
        v["consignments"][0]["goods"][0]["gross_mass_kg"] = json!(0);
        assert_eq!(error(&v), (180, "/declaration/consignments/0/goods/0/gross_mass_kg".into()));
        v["consignments"][0]["goods"][0]["gross_mass_kg"] = json!(6200);
        v["consignments"][0]["goods"][0]["packages"] = json!(4.5);
        assert_eq!(error(&v), (104, "/declaration/consignments/0/goods/0/packages".into()));
        v["consignments"][0]["goods"][0]["packages"] = json!(4);
        v["consignments"][0]["goods"][0]["gross_mass_kg"] = json!("6200");
        assert_eq!(error(&v).0, 106);
    }

    #[test]
    fn itinerary_at_its_limit_passes_and_past_it_is_105() {
        let countries = ["TR", "GE", "KZ", "UZ", "TM", "KG", "TJ", "AF", "PK", "IN", "CN", "MN", "AZ"];
        let mut v = sample();
        let mut at_limit = countries[..ITINERARY_COUNTRIES_MAX - 1].to_vec();
        at_limit.push("AZ");
        v["itinerary"] = json!(at_limit);
        assert!(parse(&v).is_ok());
        v["itinerary"] = json!(countries[..ITINERARY_COUNTRIES_MAX + 1]);
        assert_eq!(error(&v), (105, "/declaration/itinerary".into()));
    }

    #[test]
    fn seals_at_their_limit_pass_and_past_it_are_105() {
        let mut v = sample();
        v["seals"] = json!((0..SEALS_MAX).map(|i| format!("S{i}")).collect::<Vec<_>>());
        assert!(parse(&v).is_ok());
        v["seals"] = json!((0..=SEALS_MAX).map(|i| format!("S{i}")).collect::<Vec<_>>());
        assert_eq!(error(&v), (105, "/declaration/seals".into()));
    }

    #[test]
    fn duplicate_seals_are_180() {
        let mut v = sample();
        v["seals"] = json!(["A", "A"]);
        assert_eq!(error(&v), (180, "/declaration/seals".into()));
    }

    #[test]
    fn goods_and_consignments_at_their_limits_pass_and_past_them_are_105() {
        let goods = sample()["consignments"][0]["goods"][0].clone();
        let mut v = sample();
        v["consignments"][0]["goods"] = json!(vec![goods.clone(); GOODS_PER_CONSIGNMENT_MAX]);
        assert!(parse(&v).is_ok());
        v["consignments"][0]["goods"] = json!(vec![goods; GOODS_PER_CONSIGNMENT_MAX + 1]);
        assert_eq!(error(&v), (105, "/declaration/consignments/0/goods".into()));
        let consignment = sample()["consignments"][0].clone();
        let mut v = sample();
        v["consignments"] = json!(vec![consignment.clone(); CONSIGNMENTS_MAX]);
        assert!(parse(&v).is_ok());
        v["consignments"] = json!(vec![consignment; CONSIGNMENTS_MAX + 1]);
        assert_eq!(error(&v), (105, "/declaration/consignments".into()));
    }

    #[test]
    fn empty_consignments_or_goods_are_101() {
        let mut v = sample();
        v["consignments"][0]["goods"] = json!([]);
        assert_eq!(error(&v), (101, "/declaration/consignments/0/goods".into()));
        v["consignments"] = json!([]);
        assert_eq!(error(&v), (101, "/declaration/consignments".into()));
    }
}
