use super::*;
use tir_model::limits::AMENDMENTS_MAX;
use tir_model::operation;

pub(super) const BY: &str = "BY000100";
/// Medininkai: where the Union starts for BY → LT traffic.
pub(super) const LT: &str = "LT000100";
/// An inland office: goods loaded en route.
pub(super) const LT_INLAND: &str = "LT000200";
pub(super) const PL: &str = "PL000100";
pub(super) const BG: &str = "BG000100";
pub(super) const RS: &str = "RS000100";
pub(super) const HU: &str = "HU000100";
pub(super) const DE: &str = "DE000100";
/// A Turkish departure office the sample declaration does not name.
pub(super) const TR_OTHER: &str = "TR000300";

pub(super) fn add_offices(world: &mut World) {
    use OfficeRole::*;
    world.add_office(BY, "Kamenny Log", &[Departure, Exit]);
    world.add_office(LT, "Medininkai", &[Entry, Exit]);
    world.add_office(LT_INLAND, "Vilnius", &[Departure, Destination]);
    world.add_office(PL, "Warszawa", &[Entry, Exit, Destination]);
    world.add_office(BG, "Kapitan Andreevo", &[Entry, Exit]);
    world.add_office(RS, "Gradina", &[Entry, Exit]);
    world.add_office(HU, "Roszke", &[Entry, Exit]);
    world.add_office(DE, "Muenchen", &[Entry, Exit, Destination]);
    world.add_office(TR_OTHER, "Istanbul", &[Departure]);
}

/// BY → LT → PL: operation 1 in Belarus, operation 2 in the Union.
fn baltic() -> Value {
    let mut d = declaration();
    d["itinerary"] = json!(["BY", "LT", "PL"]);
    d["offices"] = json!([
        {"code": BY, "role": "departure"},
        {"code": LT, "role": "entry"},
        {"code": PL, "role": "destination"}
    ]);
    d["vehicle"] = json!({"registration": "1234AB-7", "country": "BY"});
    d["consignments"][0]["consignee"]["country"] = json!("PL");
    d
}

/// TR → BG → RS → HU → DE: the Union left and entered again, four operations.
fn balkan() -> Value {
    let mut d = declaration();
    d["itinerary"] = json!(["TR", "BG", "RS", "HU", "DE"]);
    d["offices"] = json!([
        {"code": TR, "role": "departure"},
        {"code": DE, "role": "destination"}
    ]);
    d["consignments"][0]["consignee"]["country"] = json!("DE");
    d
}

fn run_recorded(declaration: Value, departure: &str) -> Run {
    let country = &departure[..2];
    let mut run = Run::new();
    run.drive([
        (chain(), e1()),
        (holder(), e9(declaration)),
        (customs(country), i1(departure)),
        (customs(country), i7(departure)),
    ]);
    run
}

fn countries_of(run: &Run) -> Vec<(u16, String, Vec<String>)> {
    run.g()
        .operations
        .iter()
        .map(|op| (op.sequence, op.territory.to_string(), op.countries.iter().map(|c| c.as_str().to_owned()).collect()))
        .collect()
}

fn e11_in(declaration: Value, country: &str) -> Value {
    body("E11", json!({"declaration": declaration, "country": country}))
}

fn x1(office: &str, fields: Value) -> Value {
    let mut v = body("X1", json!({"office": office, "description": "seen at the border"}));
    v.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    v
}

#[test]
fn the_union_is_one_operation_that_its_member_states_run_together() {
    use OperationState::*;
    let mut run = run_recorded(baltic(), BY);
    assert_eq!(
        countries_of(&run),
        [(1, "BY".into(), vec!["BY".into()]), (2, "EU".into(), vec!["LT".into(), "PL".into()])]
    );
    run.ok(&customs("BY"), i9(BY));
    let n = run.ok(&customs("BY"), i11(BY, &[]));
    assert_eq!(
        feed(&n),
        [
            "customs:LT I15 previous_operation_terminated",
            "customs:PL I15 previous_operation_terminated",
            "chain:chain-1 E7 operation_terminated"
        ]
    );
    assert_eq!(n[0].payload_json()["operation"], 1);
    // Lithuania starts the Union's operation at the border; Poland then finds it started.
    run.ok(&customs("LT"), body("I9", json!({"office": LT, "operation_id": "26LT00000000001234"})));
    assert_eq!(run.op(1).state, Started);
    assert_eq!(run.op(1).operation_id.as_ref().map(|id| id.as_str()), Some("26LT00000000001234"));
    run.rejects(&customs("PL"), i9(PL), 210, "/office");
    // The last operation ends only at a declared destination office.
    run.rejects(&customs("LT"), i11(LT, &[]), 380, "/office");
    let n = run.ok(&customs("PL"), i11(PL, &[]));
    assert_eq!(feed(&n), ["chain:chain-1 E7 operation_terminated"]);
    assert_eq!(run.op(1).terminated_by.as_ref().unwrap().as_str(), PL);
    // Discharged by the customs of the country where it terminated.
    run.rejects(&customs("LT"), i13(LT), 380, "/office");
    run.ok(&customs("PL"), i13(PL));
    assert_eq!(run.state(), GuaranteeState::Accepted, "Belarus has not discharged yet");
    let n = run.ok(&customs("BY"), i13(BY));
    assert_eq!(feed(&n), ["chain:chain-1 E7 operation_discharged", "chain:chain-1 E7 guarantee_released"]);
}

#[test]
fn leaving_the_union_and_entering_it_again_makes_four_operations() {
    let mut run = run_recorded(balkan(), TR);
    let territories: Vec<String> = countries_of(&run).into_iter().map(|(_, t, _)| t).collect();
    assert_eq!(territories, ["TR", "EU", "RS", "EU"]);
    assert_eq!(countries_of(&run)[3].2, ["HU", "DE"]);
    // Hungary waits for Serbia, even though the Union's first operation is over.
    run.drive([(customs("TR"), i9(TR)), (customs("TR"), i11(TR, &[])), (customs("BG"), i9(BG))]);
    run.rejects(&customs("HU"), i9(HU), 281, "/office");
    run.drive([
        (customs("BG"), i11(BG, &[])),
        (customs("RS"), i9(RS)),
        (customs("RS"), i11(RS, &[])),
        (customs("HU"), i9(HU)),
        (customs("DE"), i11(DE, &[])),
    ]);
    for (code, office) in [("DE", DE), ("RS", RS), ("BG", BG)] {
        run.ok(&customs(code), i13(office));
        assert_eq!(run.state(), GuaranteeState::Accepted);
    }
    let n = run.ok(&customs("TR"), i13(TR));
    assert_eq!(feed(&n).last().unwrap(), "chain:chain-1 E7 guarantee_released");
    assert!(run.g().operations.iter().all(|op| op.state == OperationState::Discharged));
}

#[test]
fn a_transport_inside_one_territory_is_refused_with_181() {
    let mut d = baltic();
    d["itinerary"] = json!(["LT", "PL"]);
    let error = Request::parse(&e9(d)).unwrap_err();
    assert_error(&error, 181, "/declaration/itinerary");
}

#[test]
fn operation_ids_are_unique_within_the_guarantee_214_and_controls_are_kept() {
    let mut run = run_recorded(baltic(), BY);
    let controls = json!([{"type": "seal_check", "result": "satisfactory"},
                          {"type": "physical", "result": "irregularity", "remarks": "one pallet short"}]);
    run.ok(&customs("BY"), body("I9", json!({"office": BY, "operation_id": "BY-1", "controls": controls})));
    assert_eq!(run.op(0).controls.len(), 2);
    assert_eq!(run.op(0).controls[1].remarks.as_deref(), Some("one pallet short"));
    run.ok(&customs("BY"), i11(BY, &[]));
    run.rejects(&customs("LT"), body("I9", json!({"office": LT, "operation_id": "BY-1"})), 214, "/operation_id");
    let unknown = body("I9", json!({"office": LT, "controls": [{"type": "x-ray", "result": "satisfactory"}]}));
    assert_error(&Request::parse(&unknown).unwrap_err(), 306, "/controls/0/type");
}

#[test]
fn goods_loaded_en_route_start_at_a_declared_departure_office_and_i1_stays_with_the_first_territory() {
    let mut d = baltic();
    d["offices"].as_array_mut().unwrap().push(json!({"code": LT_INLAND, "role": "departure"}));
    let mut run = Run::new();
    run.drive([(chain(), e1()), (holder(), e9(d))]);
    // A departure office of a later operation accepts nothing.
    run.rejects(&customs("LT"), i1(LT_INLAND), 380, "/office");
    run.drive([(customs("BY"), i1(BY)), (customs("BY"), i7(BY))]);
    run.rejects(&customs("LT"), i7(LT_INLAND), 283, "/guarantee_reference");
    run.drive([(customs("BY"), i9(BY)), (customs("BY"), i11(BY, &[])), (customs("LT"), i9(LT_INLAND))]);
    assert_eq!(run.op(1).state, OperationState::Started);
}

#[test]
fn an_amendment_en_route_waits_for_the_customs_of_its_country_and_becomes_version_2() {
    let mut run = run_recorded(baltic(), BY);
    run.drive([(customs("BY"), i9(BY)), (customs("BY"), i11(BY, &[])), (customs("LT"), i9(LT))]);
    let mut amended = baltic();
    amended["consignments"][0]["goods"][0]["packages"] = json!(6);
    let n = run.ok(&holder(), e11_in(amended.clone(), "LT"));
    assert_eq!(feed(&n), ["customs:LT I15 amendment_requested"]);
    assert_eq!(n[0].payload_json()["declaration"]["consignments"][0]["goods"][0]["packages"], 6);
    assert_eq!(run.g().declaration_state(), DeclarationState::AmendmentRequested);
    // Only the customs it waits for accept it.
    run.rejects(&customs("PL"), i7(PL), 283, "/guarantee_reference");
    let n = run.ok(&customs("LT"), i7(LT));
    assert_eq!(
        feed(&n),
        [
            "customs:BY I15 amendment_accepted",
            "customs:PL I15 amendment_accepted",
            "chain:chain-1 E7 amendment_accepted"
        ]
    );
    assert_eq!(n[1].payload_json()["changes"], json!(["/declaration/consignments/0/goods/0/packages"]));
    assert_eq!(n[1].payload_json()["declaration_version"], 2);
    assert_eq!(run.g().declaration_version, 2);
    assert_eq!(run.g().declaration_state(), DeclarationState::Recorded);
    assert_eq!(run.g().declaration_at(1).unwrap().consignments[0].goods[0].packages, Some(4));
    assert_eq!(run.g().declaration_at(2).unwrap().consignments[0].goods[0].packages, Some(6));
    assert!(run.history.last().unwrap().summary.contains("/declaration/consignments/0/goods/0/packages"));
    // Nothing waits any more.
    run.rejects(&customs("LT"), i7(LT), 283, "/guarantee_reference");
}

#[test]
fn an_amendment_needs_the_country_s_operation_started_and_keeps_the_itinerary_behind() {
    let mut run = run_recorded(baltic(), BY);
    run.rejects(&holder(), e11_in(baltic(), "LT"), 213, "/country");
    run.rejects(&holder(), e11_in(baltic(), "DE"), 180, "/country");
    run.drive([(customs("BY"), i9(BY)), (customs("BY"), i11(BY, &[])), (customs("LT"), i9(LT))]);
    run.rejects(&holder(), e11_in(baltic(), "BY"), 211, "/country");
    // The route up to Lithuania is travelled: it cannot change.
    let mut rerouted = balkan();
    rerouted["itinerary"] = json!(["TR", "BG", "RS", "HU", "DE"]);
    run.rejects(&holder(), e11_in(rerouted, "LT"), 180, "/declaration/itinerary");
    // Before recording, `country` is no field of E11.
    let mut early = Run::new();
    early.drive([(chain(), e1()), (holder(), e9(baltic()))]);
    early.rejects(&holder(), e11_in(baltic(), "BY"), 107, "/country");
}

#[test]
fn a_waiting_amendment_lapses_when_its_operation_terminates_and_amendments_are_capped_284() {
    let mut run = run_recorded(baltic(), BY);
    run.drive([(customs("BY"), i9(BY)), (customs("BY"), i11(BY, &[])), (customs("LT"), i9(LT))]);
    for _ in 0..AMENDMENTS_MAX {
        run.ok(&holder(), e11_in(baltic(), "PL"));
    }
    run.rejects(&holder(), e11_in(baltic(), "PL"), 284, "/guarantee_reference");
    run.ok(&customs("PL"), i11(PL, &[]));
    assert!(run.g().amendment.is_none());
    assert_eq!(run.g().declaration_state(), DeclarationState::Recorded);
}

#[test]
fn amendments_of_advance_data_count_toward_the_same_cap_284() {
    let mut run = Run::new();
    run.drive([(chain(), e1()), (holder(), e9(baltic()))]);
    for _ in 0..AMENDMENTS_MAX {
        run.ok(&holder(), e11(baltic()));
    }
    run.rejects(&holder(), e11(baltic()), 284, "/guarantee_reference");
    // Refused ones did not count: the cap is still exactly AMENDMENTS_MAX.
    assert_eq!(run.g().amendments_requested as usize, AMENDMENTS_MAX);
}

#[test]
fn a_transhipment_changes_vehicle_and_seals_and_is_told_to_the_later_customs() {
    let mut run = run_recorded(baltic(), BY);
    run.rejects(&customs("BY"), x1(BY, json!({"kind": "accident"})), 213, "/office");
    run.ok(&customs("BY"), i9(BY));
    let n = run.ok(
        &customs("BY"),
        x1(
            BY,
            json!({"kind": "transhipment", "new_vehicle": {"registration": "5678CD-7", "country": "BY"},
                    "new_seals": ["BY-1", "BY-2"]}),
        ),
    );
    assert_eq!(feed(&n), ["customs:LT I15 incident", "customs:PL I15 incident", "chain:chain-1 E7 incident"]);
    assert_eq!(n[0].payload_json()["kind"], "transhipment");
    assert_eq!(run.g().vehicle().unwrap().registration, "5678CD-7");
    assert_eq!(run.g().seals(), ["BY-1", "BY-2"]);
    assert_eq!(run.op(0).incidents.len(), 1);
    assert_eq!(run.g().declaration_version, 1, "the declaration keeps its version");
    // The new seals are the record: reporting them at the next start is no finding.
    run.drive([(customs("BY"), i11(BY, &[])), (customs("LT"), i9_sealed(LT, &["BY-2", "BY-1"]))]);
    assert!(run.op(1).findings.is_empty());
    let accident_with_vehicle =
        x1(BY, json!({"kind": "accident", "new_vehicle": {"registration": "X", "country": "BY"}}));
    assert_error(&Request::parse(&accident_with_vehicle).unwrap_err(), 107, "/new_vehicle");
    assert_error(&Request::parse(&x1(BY, json!({"kind": "transhipment"}))).unwrap_err(), 101, "/new_vehicle");
}

#[test]
fn a_declaration_lodged_nationally_comes_in_i7_without_e9() {
    let mut run = Run::new();
    run.ok(&chain(), e1());
    run.ok(&customs("TR"), i1(TR));
    run.rejects(&customs("TR"), i7(TR), 307, "/declaration");
    let mut elsewhere = declaration();
    elsewhere["offices"][0]["code"] = json!(TR_OTHER);
    run.rejects(&customs("TR"), i7_with(TR_OTHER, elsewhere), 180, "/declaration/offices");
    run.ok(&customs("TR"), i7_with(TR, declaration()));
    assert_eq!(run.g().declaration_state(), DeclarationState::Recorded);
    assert_eq!(run.g().declaration_at(0), None, "no advance data was sent");
    assert!(exchange::may_read(&customs("AZ"), run.g()));
}

#[test]
fn advance_data_through_a_country_without_customs_is_308() {
    let mut d = declaration();
    d["itinerary"] = json!(["TR", "IR", "AZ"]);
    d["offices"] = json!([{"code": TR, "role": "departure"}, {"code": AZ, "role": "destination"}]);
    let mut run = Run::new();
    run.ok(&chain(), e1());
    run.rejects(&holder(), e9(d), 308, "/declaration/itinerary/1");
}

#[test]
fn advance_data_goes_to_the_customs_of_the_first_operation_s_departure_offices() {
    let mut d = baltic();
    d["offices"].as_array_mut().unwrap().push(json!({"code": LT_INLAND, "role": "departure"}));
    let mut run = Run::new();
    run.ok(&chain(), e1());
    assert_eq!(feed(&run.ok(&holder(), e9(d))), ["customs:BY E9 advance_data"]);
}

// ---------------------------------------------------------------- property

/// Countries the generated itineraries are drawn from: members of the Union
/// and neighbours that are territories of their own.
const POOL: [(&str, &str); 8] =
    [("TR", TR), ("BG", BG), ("RS", RS), ("HU", HU), ("DE", DE), ("BY", BY), ("LT", LT), ("PL", PL)];

fn office_in(country: &str) -> &'static str {
    POOL.iter().find(|(c, _)| *c == country).map(|(_, o)| *o).unwrap()
}

/// An itinerary of 2 to 6 countries of the pool that `operation::plan` accepts
/// and whose ends have offices of departure and destination in the fixture.
fn itineraries() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(POOL.map(|(c, _)| c).to_vec()), 2..=6).prop_filter(
        "a TIR transport from a departure country to a destination country",
        |codes| {
            let countries: Vec<Country> = codes.iter().map(|c| country(c)).collect();
            operation::plan(&countries).is_ok()
                && ["TR", "BY"].contains(&codes[0])
                && !codes[1..].iter().any(|c| ["TR", "BY"].contains(c))
                && ["DE", "PL"].contains(codes.last().unwrap())
        },
    )
}

fn declaration_for(codes: &[&str]) -> Value {
    let mut d = declaration();
    d["itinerary"] = json!(codes);
    d["offices"] = json!([
        {"code": office_in(codes[0]), "role": "departure"},
        {"code": office_in(codes[codes.len() - 1]), "role": "destination"}
    ]);
    d
}

#[derive(Debug, Clone)]
struct Act {
    kind: &'static str,
    country: usize,
}

fn acts() -> impl Strategy<Value = Act> {
    (prop::sample::select(vec!["I9", "I11", "I13", "I17", "X1", "E3"]), 0usize..6)
        .prop_map(|(kind, country)| Act { kind, country })
}

fn check_invariants(codes: &[&str], g: &Guarantee) -> Result<(), TestCaseError> {
    use OperationState::*;
    // The operations partition the itinerary, each in one territory, neighbours in different ones.
    let joined: Vec<&str> = g.operations.iter().flat_map(|op| op.countries.iter().map(|c| c.as_str())).collect();
    prop_assert_eq!(&joined, &codes.to_vec());
    for op in &g.operations {
        prop_assert!(op.countries.iter().all(|c| c.territory() == op.territory));
    }
    for pair in g.operations.windows(2) {
        prop_assert!(pair[0].territory != pair[1].territory);
        prop_assert_eq!(pair[1].sequence, pair[0].sequence + 1);
    }
    // At most one operation open at a time.
    prop_assert!(g.operations.iter().filter(|op| op.state == Started).count() <= 1);
    // Released exactly when nothing is open and everything before the first refusal is discharged.
    let refused = g.operations.iter().position(|op| op.state == Refused).unwrap_or(g.operations.len());
    let done = !g.operations.iter().any(|op| matches!(op.state, Started | Terminated))
        && g.operations[..refused].iter().all(|op| op.state == Discharged);
    match g.state {
        GuaranteeState::Accepted => prop_assert!(!done, "finished but not released: {:?}", g.operations),
        GuaranteeState::Released => prop_assert!(done, "released early: {:?}", g.operations),
        GuaranteeState::Cancelled => {}
        GuaranteeState::Registered => prop_assert!(false, "a recorded declaration on a registered guarantee"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn operations_across_territories_keep_their_invariants(
        codes in itineraries(),
        tail in prop::collection::vec(acts(), 0..40),
    ) {
        let mut run = run_recorded(declaration_for(&codes), office_in(codes[0]));
        check_invariants(&codes, run.g())?;
        for act in &tail {
            let code = codes[act.country % codes.len()];
            let office = office_in(code);
            let body = match act.kind {
                "I9" => i9(office),
                "I11" => i11(office, &[]),
                "I13" => i13(office),
                "I17" => i17(office),
                "X1" => x1(office, json!({"kind": "other"})),
                _ => e3(),
            };
            let sender = if act.kind == "E3" { chain() } else { customs(code) };
            let _ = run.send(&sender, body);
            check_invariants(&codes, run.g())?;
        }
    }

    #[test]
    fn the_happy_path_over_any_itinerary_releases_the_guarantee(codes in itineraries()) {
        let mut run = run_recorded(declaration_for(&codes), office_in(codes[0]));
        let operations = run.g().operations.clone();
        for op in &operations {
            let (first, last) = (op.countries[0].as_str(), op.countries[op.countries.len() - 1].as_str());
            run.ok(&customs(first), i9(office_in(first)));
            run.ok(&customs(last), i11(office_in(last), &[]));
            run.ok(&customs(last), i13(office_in(last)));
        }
        prop_assert_eq!(run.state(), GuaranteeState::Released);
        check_invariants(&codes, run.g())?;
    }
}
