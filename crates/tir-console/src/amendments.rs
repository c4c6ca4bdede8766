//! Amendments with what changed: the declaration's texts as the journal of the
//! transport holds them (E9, E11, I7), and the fields that differ between one
//! text and the next, for the customs transport page.
//!
//! The guarantee keeps the recorded versions (`superseded`), but not the advance
//! data a holder replaced before recording, nor who sent each text: the journal
//! has both (every accepted message, its sender, time and body), so the page
//! replays it rather than storing the versions twice.

use maud::{Markup, html};
use serde_json::Value;
use tir_model::Timestamp;
use tir_model::declaration::{Consignment, Declaration, DeclaredOffice, Goods, Trader, Vehicle};
use tir_store::JournalEntry;

use crate::pages::when;

/// One field that differs between two texts of a declaration. An empty
/// `before` is something added, an empty `after` something removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Where: "itinerary", "seals", "consignment 1, goods line 2: gross mass", ...
    pub what: String,
    pub before: String,
    pub after: String,
}

impl Change {
    fn new(what: impl Into<String>, before: impl Into<String>, after: impl Into<String>) -> Change {
        Change { what: what.into(), before: before.into(), after: after.into() }
    }
}

/// The fields that changed from `old` to `new`. Goods lines are compared by
/// their position in their consignment (the goods item number of the
/// declaration), seals as a set (their order means nothing), offices in order
/// (the first departure office is the one that records).
pub fn changes(old: &Declaration, new: &Declaration) -> Vec<Change> {
    let mut out = Vec::new();
    if old.itinerary != new.itinerary {
        out.push(Change::new("itinerary", countries(&old.itinerary), countries(&new.itinerary)));
    }
    offices(&old.offices, &new.offices, &mut out);
    if old.vehicle != new.vehicle {
        out.push(Change::new("vehicle", vehicle(&old.vehicle), vehicle(&new.vehicle)));
    }
    for seal in old.seals.iter().filter(|s| !new.seals.contains(s)) {
        out.push(Change::new("seal", seal.as_str(), ""));
    }
    for seal in new.seals.iter().filter(|s| !old.seals.contains(s)) {
        out.push(Change::new("seal", "", seal.as_str()));
    }
    for i in 0..old.consignments.len().max(new.consignments.len()) {
        let name = format!("consignment {}", i + 1);
        match (old.consignments.get(i), new.consignments.get(i)) {
            (Some(a), Some(b)) => consignment(&name, a, b, &mut out),
            (Some(a), None) => out.push(Change::new(name, consignment_text(a), "")),
            (None, Some(b)) => out.push(Change::new(name, "", consignment_text(b))),
            (None, None) => {}
        }
    }
    out
}

fn offices(old: &[DeclaredOffice], new: &[DeclaredOffice], out: &mut Vec<Change>) {
    let removed: Vec<&DeclaredOffice> = old.iter().filter(|o| !new.contains(o)).collect();
    let added: Vec<&DeclaredOffice> = new.iter().filter(|o| !old.contains(o)).collect();
    for office in &removed {
        out.push(Change::new("office", office_text(office), ""));
    }
    for office in &added {
        out.push(Change::new("office", "", office_text(office)));
    }
    if removed.is_empty() && added.is_empty() && old != new {
        let list = |offices: &[DeclaredOffice]| offices.iter().map(office_text).collect::<Vec<_>>().join(", ");
        out.push(Change::new("order of the offices", list(old), list(new)));
    }
}

fn consignment(name: &str, old: &Consignment, new: &Consignment, out: &mut Vec<Change>) {
    if old.consignor != new.consignor {
        out.push(Change::new(format!("{name}: consignor"), trader(&old.consignor), trader(&new.consignor)));
    }
    if old.consignee != new.consignee {
        out.push(Change::new(format!("{name}: consignee"), trader(&old.consignee), trader(&new.consignee)));
    }
    for i in 0..old.goods.len().max(new.goods.len()) {
        let line = format!("{name}, goods line {}", i + 1);
        match (old.goods.get(i), new.goods.get(i)) {
            (Some(a), Some(b)) => goods(&line, a, b, out),
            (Some(a), None) => out.push(Change::new(line, goods_text(a), "")),
            (None, Some(b)) => out.push(Change::new(line, "", goods_text(b))),
            (None, None) => {}
        }
    }
}

fn goods(line: &str, old: &Goods, new: &Goods, out: &mut Vec<Change>) {
    let mut field = |field: &str, before: String, after: String| {
        if before != after {
            out.push(Change::new(format!("{line}: {field}"), before, after));
        }
    };
    field("HS code", old.hs_code.as_str().to_owned(), new.hs_code.as_str().to_owned());
    field("description", old.description.clone(), new.description.clone());
    field("packages", packages(old.packages), packages(new.packages));
    field("gross mass", mass(old.gross_mass_kg), mass(new.gross_mass_kg));
    field("value", value(old), value(new));
}

fn countries(list: &[tir_model::Country]) -> String {
    list.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" → ")
}

fn office_text(office: &DeclaredOffice) -> String {
    format!("{} ({})", office.code.as_str(), office.role.as_str())
}

fn vehicle(vehicle: &Option<Vehicle>) -> String {
    vehicle.as_ref().map(|v| format!("{} ({})", v.registration, v.country.as_str())).unwrap_or_else(|| "none".into())
}

fn trader(trader: &Trader) -> String {
    format!("{} ({})", trader.name, trader.country.as_str())
}

fn packages(packages: Option<i64>) -> String {
    packages.map(|p| p.to_string()).unwrap_or_else(|| "none".into())
}

fn mass(kg: f64) -> String {
    format!("{kg} kg")
}

fn value(goods: &Goods) -> String {
    goods.value.as_ref().map(|v| format!("{} {}", v.amount, v.currency.as_str())).unwrap_or_else(|| "none".into())
}

fn goods_text(goods: &Goods) -> String {
    format!(
        "{} {}, {}, {}, {}",
        goods.hs_code.as_str(),
        goods.description,
        mass(goods.gross_mass_kg),
        value(goods),
        match goods.packages {
            Some(p) => format!("{p} packages"),
            None => "no packages".to_owned(),
        }
    )
}

fn consignment_text(consignment: &Consignment) -> String {
    format!(
        "{} → {}, {} goods line(s)",
        trader(&consignment.consignor),
        trader(&consignment.consignee),
        consignment.goods.len()
    )
}

/// One amendment of the declaration, from the journal entry that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Amendment {
    pub seq: i64,
    pub at_ms: i64,
    pub message_type: String,
    pub sender: String,
    /// "advance data amended", "amendment requested in LT over version 1",
    /// "version 2 accepted at LT000100", ...
    pub what: String,
    /// From the text before (the advance data, or the recorded version).
    pub changes: Vec<Change>,
}

/// Replays the declaration's texts through the journal entries of one
/// transport (oldest first), as the exchange applied them: E9 sets the advance
/// data, E11 replaces it before recording and asks for an amendment after,
/// E13 withdraws it, I7 records (version 1) and then accepts the amendment
/// waiting for its country (the next version). Only accepted messages are
/// journaled, so each entry is a step that happened. The first E9 and a
/// recording of the advance data as it was are not amendments: left out.
pub fn amendments(entries: &[JournalEntry]) -> Vec<Amendment> {
    let mut advance: Option<Declaration> = None;
    let mut recorded: Option<(u32, Declaration)> = None;
    let mut waiting: Option<Declaration> = None;
    let mut out = Vec::new();
    for entry in entries {
        // Only these touch the declaration: the others' bodies are not read.
        if !matches!(entry.message_type.as_str(), "E9" | "E11" | "E13" | "I7") {
            continue;
        }
        let Ok(body) = serde_json::from_str::<Value>(&entry.body) else { continue };
        let given = declaration_of(&body);
        let mut push = |what: String, changes: Vec<Change>| {
            out.push(Amendment {
                seq: entry.seq,
                at_ms: entry.at_ms,
                message_type: entry.message_type.clone(),
                sender: entry.sender.clone(),
                what,
                changes,
            })
        };
        match (entry.message_type.as_str(), &recorded) {
            ("E9", None) => advance = given,
            ("E11", None) => {
                let Some(new) = given else { continue };
                let changes = advance.as_ref().map(|old| changes(old, &new)).unwrap_or_default();
                push("advance data amended before recording".to_owned(), changes);
                advance = Some(new);
            }
            ("E13", None) => advance = None,
            ("I7", None) => {
                let sent = advance.take();
                let Some(text) = given.or_else(|| sent.clone()) else { continue };
                if let Some(old) = sent.filter(|old| *old != text) {
                    push("version 1 recorded, not as the advance data".to_owned(), changes(&old, &text));
                }
                recorded = Some((1, text));
            }
            ("E11", Some((version, current))) => {
                let Some(new) = given else { continue };
                let country = body["country"].as_str().unwrap_or("?");
                push(format!("amendment requested in {country}, over version {version}"), changes(current, &new));
                waiting = Some(new);
            }
            ("I7", Some((version, current))) => {
                let Some(new) = given.or_else(|| waiting.take()) else { continue };
                waiting = None;
                let next = version + 1;
                let office = body["office"].as_str().unwrap_or("?");
                push(format!("version {next} accepted at {office}"), changes(current, &new));
                recorded = Some((next, new));
            }
            _ => {}
        }
    }
    out
}

/// The `declaration` a message carries, if it reads as one.
fn declaration_of(body: &Value) -> Option<Declaration> {
    serde_json::from_value(body.get("declaration")?.clone()).ok()
}

/// The section of the transport page: each amendment, newest last, with its
/// changes as a table (field, before, after).
pub fn section(amendments: &[Amendment]) -> Markup {
    html! {
        section aria-labelledby="amendments" {
            h2 #amendments { "Amendments" }
            @if amendments.is_empty() {
                p { "The declaration has not been amended." }
            } @else {
                p.hint { "Each amendment of the declaration as the journal holds it (entry, time, sender), and the fields that changed from the text before it." }
                @for a in amendments {
                    article.amendment {
                        h3 { (a.message_type) " · " (a.what) }
                        p.hint {
                            "Entry " (a.seq) " · " (when(Some(Timestamp::from_unix_ms(a.at_ms)))) " · " (a.sender)
                        }
                        @if a.changes.is_empty() {
                            p { "No field changed." }
                        } @else {
                            div.table-wrap { table.changes {
                                thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                                tbody { @for c in &a.changes { tr {
                                    td { (c.what) }
                                    td { @if c.before.is_empty() { span.hint { "(added)" } } @else { (c.before) } }
                                    td { @if c.after.is_empty() { span.hint { "(removed)" } } @else { (c.after) } }
                                } } }
                            } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn declaration(value: Value) -> Declaration {
        serde_json::from_value(value).expect("a declaration")
    }

    fn base() -> Value {
        json!({
            "itinerary": ["TR", "GE", "AZ"],
            "offices": [
                {"code": "TR000100", "role": "departure"},
                {"code": "GE000100", "role": "entry"},
                {"code": "AZ000200", "role": "destination"}
            ],
            "vehicle": {"registration": "34ABC123", "country": "TR"},
            "seals": ["S1", "S2"],
            "consignments": [{
                "consignor": {"name": "Anatolia Export", "country": "TR"},
                "consignee": {"name": "Baku Import", "country": "AZ"},
                "goods": [
                    {"hs_code": "870323", "description": "Passenger cars", "packages": 4, "gross_mass_kg": 6200.0,
                     "value": {"amount": 88000.0, "currency": "EUR"}}
                ]
            }]
        })
    }

    #[test]
    fn a_goods_line_added_and_one_changed_and_a_seal_replaced() {
        let old = declaration(base());
        let mut new = base();
        new["seals"] = json!(["S1", "S3"]);
        new["consignments"][0]["goods"][0]["gross_mass_kg"] = json!(6400.0);
        new["consignments"][0]["goods"][0]["hs_code"] = json!("870324");
        new["consignments"][0]["goods"]
            .as_array_mut()
            .unwrap()
            .push(json!({"hs_code": "010121", "description": "Horses", "gross_mass_kg": 900.0}));
        let found = changes(&old, &declaration(new));
        assert_eq!(
            found,
            vec![
                Change::new("seal", "S2", ""),
                Change::new("seal", "", "S3"),
                Change::new("consignment 1, goods line 1: HS code", "870323", "870324"),
                Change::new("consignment 1, goods line 1: gross mass", "6200 kg", "6400 kg"),
                Change::new("consignment 1, goods line 2", "", "010121 Horses, 900 kg, none, no packages"),
            ]
        );
    }

    #[test]
    fn itinerary_offices_vehicle_and_a_removed_line() {
        let mut old = base();
        old["consignments"][0]["goods"]
            .as_array_mut()
            .unwrap()
            .push(json!({"hs_code": "010121", "description": "Horses", "gross_mass_kg": 900.0}));
        let mut new = base();
        new["itinerary"] = json!(["TR", "GE", "AM"]);
        new["offices"][2] = json!({"code": "AM000100", "role": "destination"});
        new["vehicle"] = Value::Null;
        let found = changes(&declaration(old), &declaration(new));
        assert_eq!(
            found,
            vec![
                Change::new("itinerary", "TR → GE → AZ", "TR → GE → AM"),
                Change::new("office", "AZ000200 (destination)", ""),
                Change::new("office", "", "AM000100 (destination)"),
                Change::new("vehicle", "34ABC123 (TR)", "none"),
                Change::new("consignment 1, goods line 2", "010121 Horses, 900 kg, none, no packages", ""),
            ]
        );
        // The same offices in another order: the order is what changed.
        let mut swapped = base();
        swapped["offices"] = json!([
            {"code": "TR000100", "role": "departure"},
            {"code": "AZ000200", "role": "destination"},
            {"code": "GE000100", "role": "entry"}
        ]);
        let found = changes(&declaration(base()), &declaration(swapped));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].what, "order of the offices");
    }

    fn entry(seq: i64, message_type: &str, sender: &str, body: Value) -> JournalEntry {
        JournalEntry::next(&(seq - 1, "0".repeat(64)), seq * 1000, sender, message_type, "m", "R", body.to_string())
    }

    #[test]
    fn the_journal_replays_into_amendments_before_and_after_recording() {
        let mut amended = base();
        amended["consignments"][0]["goods"][0]["description"] = json!("Cars");
        let mut en_route = amended.clone();
        en_route["seals"] = json!(["S1", "S2", "S9"]);
        let entries = vec![
            entry(1, "E1", "chain", json!({"holder": "X"})),
            entry(2, "E9", "holder", json!({"declaration": base()})),
            entry(3, "E11", "holder", json!({"declaration": amended})),
            entry(4, "I1", "tr", json!({"office": "TR000100"})),
            entry(5, "I7", "tr", json!({"office": "TR000100"})),
            entry(6, "I9", "tr", json!({"office": "TR000100"})),
            entry(7, "E11", "holder", json!({"country": "TR", "declaration": en_route})),
            entry(8, "I7", "tr", json!({"office": "TR000100"})),
        ];
        let found = amendments(&entries);
        let summary: Vec<(i64, &str, &str, usize)> =
            found.iter().map(|a| (a.seq, a.what.as_str(), a.sender.as_str(), a.changes.len())).collect();
        assert_eq!(
            summary,
            vec![
                (3, "advance data amended before recording", "holder", 1),
                (7, "amendment requested in TR, over version 1", "holder", 1),
                (8, "version 2 accepted at TR000100", "tr", 1),
            ]
        );
        assert_eq!(
            found[0].changes[0],
            Change::new("consignment 1, goods line 1: description", "Passenger cars", "Cars")
        );
        assert_eq!(found[2].changes[0], Change::new("seal", "", "S9"));
        assert_eq!(found[2].at_ms, 8000);
        // Customs recording another text than the advance data is shown too.
        let mut other = base();
        other["vehicle"] = json!({"registration": "34XYZ9", "country": "TR"});
        let found = amendments(&[
            entry(1, "E9", "holder", json!({"declaration": base()})),
            entry(2, "I7", "tr", json!({"office": "TR000100", "declaration": other})),
        ]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].changes, vec![Change::new("vehicle", "34ABC123 (TR)", "34XYZ9 (TR)")]);
        // Recorded as sent: no amendment.
        let found = amendments(&[
            entry(1, "E9", "holder", json!({"declaration": base()})),
            entry(2, "I7", "tr", json!({"office": "TR000100"})),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }

    prop_compose! {
        fn goods_line()(hs in prop::sample::select(vec!["870323", "010121", "620342", "847130"]),
                        description in "[A-Za-z ]{1,12}",
                        packages in prop::option::of(1i64..500),
                        mass in 1u32..40_000,
                        value in prop::option::of(1u32..1_000_000)) -> Value {
            let mut line = json!({"hs_code": hs, "description": description, "gross_mass_kg": f64::from(mass)});
            if let Some(p) = packages { line["packages"] = json!(p); }
            if let Some(v) = value { line["value"] = json!({"amount": f64::from(v), "currency": "EUR"}); }
            line
        }
    }

    prop_compose! {
        fn a_declaration()(seals in prop::collection::btree_set("S[0-9]{1,3}", 0..4),
                           lines in prop::collection::vec(goods_line(), 1..5),
                           vehicle in any::<bool>()) -> Value {
            let mut value = base();
            value["seals"] = json!(seals.into_iter().collect::<Vec<_>>());
            value["consignments"][0]["goods"] = json!(lines);
            if !vehicle { value["vehicle"] = Value::Null; }
            value
        }
    }

    proptest! {
        /// No change between a text and itself; changes exactly when the texts
        /// differ (seals as a set: the generator makes them sorted and distinct).
        #[test]
        fn changes_are_empty_exactly_when_the_texts_are_equal(a in a_declaration(), b in a_declaration()) {
            let (a, b) = (declaration(a), declaration(b));
            prop_assert!(changes(&a, &a).is_empty());
            prop_assert_eq!(changes(&a, &b).is_empty(), a == b);
        }

        /// Lines appended are each one "added" change; taken away again, one "removed" each.
        #[test]
        fn appended_goods_lines_are_each_one_added_change(a in a_declaration(), extra in prop::collection::vec(goods_line(), 1..4)) {
            let mut longer = a.clone();
            let goods = longer["consignments"][0]["goods"].as_array_mut().unwrap();
            let first_new = goods.len() + 1;
            goods.extend(extra.iter().cloned());
            let (a, longer) = (declaration(a), declaration(longer));
            let added = changes(&a, &longer);
            prop_assert_eq!(added.len(), extra.len());
            for (i, c) in added.iter().enumerate() {
                prop_assert_eq!(&c.what, &format!("consignment 1, goods line {}", first_new + i));
                prop_assert!(c.before.is_empty() && !c.after.is_empty());
            }
            let removed = changes(&longer, &a);
            prop_assert_eq!(removed.len(), extra.len());
            prop_assert!(removed.iter().all(|c| c.after.is_empty() && !c.before.is_empty()));
        }
    }
}
