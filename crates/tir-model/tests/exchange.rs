//! The eTIR state machine (`exchange::apply`) driven through the public API
//! with request bodies written as the contract (etir-binding.md) shows them.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use tir_model::exchange::{self, Outcome, Registry};
use tir_model::guarantee::{DeclarationState, Finding, Guarantee, GuaranteeState, Operation, OperationState};
use tir_model::message::Request;
use tir_model::party::{HolderRecord, HolderStatus, Office, OfficeRole, Party, Recipient};
use tir_model::{Country, Date, EtirError, OfficeCode, Timestamp, TirId, view};
// The contract's sample declaration, TR → GE → AZ, and the parties it names.
use tir_testkit::fixtures::{HOLDER, OTHER_HOLDER, SEAL, WITHDRAWN_HOLDER, declaration};

const REF: &str = "XH123456789";

const TR: &str = "TR000100";
const GE: &str = "GE000100";
const AZ: &str = "AZ000200";
const AM: &str = "AM000100";
/// A Turkish office that is not of departure.
const TR_EXIT: &str = "TR000200";
/// Offices of the right country in the wrong role for some operations.
const GE_EXIT_ONLY: &str = "GE000300";
const GE_ENTRY_ONLY: &str = "GE000400";
const AZ_ENTRY_ONLY: &str = "AZ000300";

const MINUTE_MS: i64 = 60_000;

/// Transports across TIR territories: the Union's single operation, re-entry,
/// amendments en route, incidents, national lodging.
#[path = "exchange/territories.rs"]
mod territories;

/// Messages recorded late after a fallback period (Annex 11, Art. 10).
#[path = "exchange/fallback.rs"]
mod fallback;

// ---------------------------------------------------------------- fixture

fn country(code: &str) -> Country {
    Country::parse(code).unwrap()
}

fn tir_id(raw: &str) -> TirId {
    TirId::parse(raw).unwrap()
}

/// The registries: offices of TR, GE, AZ (and AM, off the itinerary) and the ITDB.
struct World {
    offices: HashMap<OfficeCode, Office>,
    holders: HashMap<TirId, HolderRecord>,
    /// Declared fallback periods (`fallback.rs`).
    fallback: Vec<tir_model::fallback::FallbackPeriod>,
}

impl World {
    fn new() -> World {
        use OfficeRole::*;
        let mut world = World { offices: HashMap::new(), holders: HashMap::new(), fallback: Vec::new() };
        world.add_office(TR, "Kapikule", &[Departure, Exit]);
        world.add_office(TR_EXIT, "Sarp", &[Exit]);
        world.add_office(GE_EXIT_ONLY, "Vale", &[Exit]);
        world.add_office(GE_ENTRY_ONLY, "Tsiteli Khidi", &[Entry]);
        world.add_office(AZ_ENTRY_ONLY, "Red Bridge", &[Entry]);
        world.add_office(GE, "Sarpi", &[Entry, Exit]);
        world.add_office(AZ, "Baku", &[Entry, Destination]);
        world.add_office(AM, "Bagratashen", &[Departure, Destination, Entry, Exit]);
        territories::add_offices(&mut world);
        world.set_holder(HOLDER, HolderStatus::Authorized);
        world.set_holder(WITHDRAWN_HOLDER, HolderStatus::Withdrawn);
        world
    }

    fn add_office(&mut self, code: &str, name: &str, roles: &[OfficeRole]) {
        let code = OfficeCode::parse(code).unwrap();
        let office = Office {
            country: code.country(),
            code: code.clone(),
            name: name.to_owned(),
            roles: roles.to_vec(),
            unlocode: None,
        };
        self.offices.insert(code, office);
    }

    fn set_holder(&mut self, raw: &str, status: HolderStatus) {
        let id = tir_id(raw);
        let record = HolderRecord { tir_id: id.clone(), name: format!("holder {raw}"), country: id.country(), status };
        self.holders.insert(id, record);
    }
}

impl Registry for World {
    fn office(&self, code: &OfficeCode) -> Option<&Office> {
        self.offices.get(code)
    }

    fn holder(&self, tir_id: &TirId) -> Option<&HolderRecord> {
        self.holders.get(tir_id)
    }

    /// Customs of every country but those in `NO_CUSTOMS`.
    fn has_customs(&self, country: Country) -> bool {
        !NO_CUSTOMS.contains(&country.as_str())
    }

    fn fallback_periods(&self) -> &[tir_model::fallback::FallbackPeriod] {
        &self.fallback
    }
}

/// Countries without a customs party: advance data through them is 308.
const NO_CUSTOMS: [&str; 1] = ["IR"];

fn chain() -> Party {
    Party::GuaranteeChain { id: "chain-1".into() }
}

fn other_chain() -> Party {
    Party::GuaranteeChain { id: "chain-2".into() }
}

fn holder() -> Party {
    Party::Holder { id: "h1".into(), tir_id: tir_id(HOLDER) }
}

fn other_holder() -> Party {
    Party::Holder { id: "h2".into(), tir_id: tir_id(OTHER_HOLDER) }
}

fn customs(code: &str) -> Party {
    Party::Customs { id: format!("customs-{}", code.to_lowercase()), country: country(code) }
}

// ---------------------------------------------------------------- bodies

fn declaration_sealed(seals: &[&str]) -> Value {
    let mut d = declaration();
    d["seals"] = json!(seals);
    d
}

fn body(kind: &str, fields: Value) -> Value {
    let mut v = json!({"message_id": format!("m-{kind}"), "type": kind, "guarantee_reference": REF});
    v.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    v
}

fn e1() -> Value {
    e1_for(HOLDER)
}

fn e1_for(holder: &str) -> Value {
    body("E1", json!({"holder": holder}))
}

fn e1_valid_until(date: &str) -> Value {
    body("E1", json!({"holder": HOLDER, "valid_until": date}))
}

fn e3() -> Value {
    body("E3", json!({"reason": "guarantee withdrawn by the association"}))
}

fn e9(declaration: Value) -> Value {
    body("E9", json!({ "declaration": declaration }))
}

fn e11(declaration: Value) -> Value {
    body("E11", json!({ "declaration": declaration }))
}

fn e13() -> Value {
    body("E13", json!({"reason": "trip postponed"}))
}

fn i1(office: &str) -> Value {
    body("I1", json!({ "office": office }))
}

fn i7(office: &str) -> Value {
    body("I7", json!({ "office": office }))
}

fn i7_with(office: &str, declaration: Value) -> Value {
    body("I7", json!({"office": office, "declaration": declaration}))
}

fn i9(office: &str) -> Value {
    body("I9", json!({ "office": office }))
}

fn i9_sealed(office: &str, seals: &[&str]) -> Value {
    body("I9", json!({"office": office, "seals": seals}))
}

fn i11(office: &str, reservations: &[&str]) -> Value {
    body("I11", json!({"office": office, "reservations": reservations}))
}

fn i13(office: &str) -> Value {
    body("I13", json!({ "office": office }))
}

fn i17(office: &str) -> Value {
    body("I17", json!({"office": office, "reason": "load not as declared"}))
}

// ---------------------------------------------------------------- driver

/// 2026-11-28T08:00:00Z, before any `valid_until` the tests use as "future".
fn start_time() -> Timestamp {
    let day = Date::parse("2026-11-28").unwrap().days_since_epoch();
    Timestamp::from_unix_ms(day * 86_400_000 + 8 * 3_600_000)
}

/// One guarantee threaded through successive `apply` calls; a minute passes per message.
struct Run {
    world: World,
    guarantee: Option<Guarantee>,
    history: Vec<tir_model::guarantee::Event>,
    now: Timestamp,
}

impl Run {
    fn new() -> Run {
        Run { world: World::new(), guarantee: None, history: Vec::new(), now: start_time() }
    }

    fn send(&mut self, sender: &Party, body: Value) -> Result<Outcome, EtirError> {
        self.now = Timestamp::from_unix_ms(self.now.unix_ms() + MINUTE_MS);
        let request = Request::parse(&body).unwrap_or_else(|e| panic!("{body} does not parse: {e}"));
        let outcome = exchange::apply(&self.world, sender, &request, self.guarantee.as_ref(), self.now)?;
        self.guarantee = Some(outcome.guarantee.clone());
        self.history.extend(outcome.events.iter().cloned());
        Ok(outcome)
    }

    /// Sends a message that must succeed; returns what it adds to the feeds.
    fn ok(&mut self, sender: &Party, body: Value) -> Vec<FeedItem> {
        let kind = body["type"].clone();
        match self.send(sender, body) {
            Ok(outcome) => feed_items(&outcome),
            Err(e) => panic!("{kind} from {} rejected: {e}", sender.id()),
        }
    }

    /// Sends a message that must fail with `code` at `pointer`, leaving the guarantee as it was.
    fn rejects(&mut self, sender: &Party, body: Value, code: u16, pointer: &str) {
        let before = self.guarantee.clone();
        let kind = body["type"].clone();
        match self.send(sender, body) {
            Ok(outcome) => panic!("{kind} from {} accepted, expected {code}: {:?}", sender.id(), outcome.guarantee),
            Err(e) => assert_error(&e, code, pointer),
        }
        assert_eq!(self.guarantee, before);
    }

    fn drive(&mut self, steps: impl IntoIterator<Item = (Party, Value)>) {
        for (sender, body) in steps {
            self.ok(&sender, body);
        }
    }

    fn g(&self) -> &Guarantee {
        self.guarantee.as_ref().expect("a guarantee was registered")
    }

    fn state(&self) -> GuaranteeState {
        self.g().state
    }

    fn op(&self, index: usize) -> &Operation {
        &self.g().operations[index]
    }

    fn op_states(&self) -> Vec<OperationState> {
        self.g().operations.iter().map(|op| op.state).collect()
    }
}

fn assert_error(error: &EtirError, code: u16, pointer: &str) {
    assert_eq!((error.code.number(), error.pointer.as_str()), (code, pointer), "got {error}");
}

/// E1 → E9 → I1 → I7, then I9/I11/I13 in TR, GE and AZ.
fn happy_path_with(declaration: Value) -> Vec<(Party, Value)> {
    let mut steps =
        vec![(chain(), e1()), (holder(), e9(declaration)), (customs("TR"), i1(TR)), (customs("TR"), i7(TR))];
    for (code, office) in [("TR", TR), ("GE", GE), ("AZ", AZ)] {
        steps.push((customs(code), i9(office)));
        steps.push((customs(code), i11(office, &[])));
        steps.push((customs(code), i13(office)));
    }
    steps
}

fn happy_path() -> Vec<(Party, Value)> {
    happy_path_with(declaration())
}

// Number of happy-path steps that lead to each stage.
const REGISTERED: usize = 1;
const ADVANCED: usize = 2;
const ACCEPTED: usize = 3;
const RECORDED: usize = 4;
const STARTED_TR: usize = 5;
const TERMINATED_TR: usize = 6;
const DISCHARGED_TR: usize = 7;
const STARTED_GE: usize = 8;
const TERMINATED_GE: usize = 9;
const RELEASED: usize = 13;

fn run_to(steps: usize) -> Run {
    let mut run = Run::new();
    run.drive(happy_path().into_iter().take(steps));
    run
}

/// A notification as one of its recipients' feeds serves it.
struct FeedItem {
    recipient: Recipient,
    kind: &'static str,
    payload: String,
}

impl FeedItem {
    fn payload_json(&self) -> Value {
        serde_json::from_str(&self.payload).expect("payloads are JSON")
    }
}

/// The outcome's notifications, rendered once each and fanned out to their recipients, in order.
fn feed_items(outcome: &Outcome) -> Vec<FeedItem> {
    let mut items = Vec::new();
    for n in &outcome.notifications {
        let payload = view::notification_view(n, &outcome.guarantee);
        for recipient in &n.recipients {
            items.push(FeedItem { recipient: recipient.clone(), kind: n.kind(), payload: payload.clone() });
        }
    }
    items
}

/// "recipient kind event" for each feed item, in order.
fn feed(notifications: &[FeedItem]) -> Vec<String> {
    notifications
        .iter()
        .map(|n| format!("{} {} {}", n.recipient.key(), n.kind, n.payload_json()["event"].as_str().unwrap_or("?")))
        .collect()
}

// ---------------------------------------------------------------- happy path

#[test]
fn full_transport_from_registration_to_release_notifies_every_party_in_turn() {
    use OperationState::*;
    let mut run = Run::new();

    let n = run.ok(&chain(), e1());
    assert!(n.is_empty());
    let g = run.g();
    assert_eq!(
        (g.state, g.reference.as_str(), g.holder.as_str(), g.chain.as_str()),
        (GuaranteeState::Registered, REF, HOLDER, "chain-1")
    );
    assert_eq!(g.registered_at, run.now);
    assert_eq!(g.declaration_state(), DeclarationState::None);

    let n = run.ok(&holder(), e9(declaration()));
    assert_eq!(feed(&n), ["customs:TR E9 advance_data"]);
    assert_eq!(n[0].payload_json()["holder"], HOLDER);
    assert_eq!(n[0].payload_json()["declaration"]["itinerary"], json!(["TR", "GE", "AZ"]));
    assert_eq!(n[0].payload_json()["message_type"], "E9");
    assert_eq!(n[0].payload_json()["at"], run.now.to_rfc3339());
    assert_eq!(run.g().declaration_state(), DeclarationState::Advance);
    assert!(run.g().operations.is_empty());

    let n = run.ok(&customs("TR"), i1(TR));
    assert_eq!(feed(&n), ["chain:chain-1 E7 guarantee_accepted"]);
    assert_eq!(n[0].payload_json()["guarantee_state"], "accepted");
    assert_eq!(run.state(), GuaranteeState::Accepted);
    assert_eq!(run.g().accepted_by.as_ref().map(|o| o.as_str()), Some(TR));

    // Customs of every later country learn of the declaration, not TR itself.
    let n = run.ok(&customs("TR"), i7(TR));
    assert_eq!(
        feed(&n),
        [
            "customs:GE I15 declaration_recorded",
            "customs:AZ I15 declaration_recorded",
            "chain:chain-1 E7 declaration_recorded",
        ]
    );
    assert_eq!(n[0].payload_json()["declaration"]["seals"], json!([SEAL]));
    assert_eq!(run.g().declaration_state(), DeclarationState::Recorded);
    assert!(run.g().advance.is_none());
    assert_eq!(run.op_states(), [Pending, Pending, Pending]);
    let countries: Vec<Vec<&str>> =
        run.g().operations.iter().map(|op| op.countries.iter().map(|c| c.as_str()).collect()).collect();
    assert_eq!(countries, [["TR"], ["GE"], ["AZ"]]);

    let legs = [("TR", TR, Some("customs:GE")), ("GE", GE, Some("customs:AZ")), ("AZ", AZ, None)];
    for (i, (code, office, next)) in legs.into_iter().enumerate() {
        let n = run.ok(&customs(code), i9_sealed(office, &[SEAL]));
        assert_eq!(feed(&n), ["chain:chain-1 E7 operation_started"]);
        assert_eq!(n[0].payload_json()["country"], code);
        let started = run.now;
        assert_eq!(run.op(i).state, Started);
        assert_eq!(run.op(i).started_at, Some(started));
        assert_eq!(run.op(i).office.as_ref().map(|o| o.as_str()), Some(office));
        assert_eq!(run.op(i).terminated_at, None);

        let reservations: &[&str] = if code == "GE" { &["seal scratched"] } else { &[] };
        let n = run.ok(&customs(code), i11(office, reservations));
        let mut expected: Vec<String> =
            next.map(|key| format!("{key} I15 previous_operation_terminated")).into_iter().collect();
        expected.push("chain:chain-1 E7 operation_terminated".into());
        assert_eq!(feed(&n), expected);
        assert_eq!(n[0].payload_json()["reservations"], json!(reservations));
        assert_eq!(run.op(i).state, Terminated);
        assert_eq!(run.op(i).started_at, Some(started));
        assert_eq!(run.op(i).terminated_at, Some(run.now));
        assert_eq!(run.op(i).reservations, reservations);

        let n = run.ok(&customs(code), i13(office));
        let mut expected = vec!["chain:chain-1 E7 operation_discharged".to_owned()];
        if next.is_none() {
            expected.push("chain:chain-1 E7 guarantee_released".into());
        }
        assert_eq!(feed(&n), expected);
        assert_eq!(run.op(i).state, Discharged);
        assert_eq!(run.op(i).discharged_at, Some(run.now));
        // Later operations stay untouched until their turn.
        assert!(run.g().operations[i + 1..].iter().all(|op| op.state == Pending));
        let state = if next.is_some() { GuaranteeState::Accepted } else { GuaranteeState::Released };
        assert_eq!(run.state(), state);
    }
    assert_eq!(run.op_states(), [Discharged, Discharged, Discharged]);
    assert!(run.g().transport_finished());
    // One event per message plus the release.
    assert_eq!(run.history.len(), RELEASED + 1);
    assert_eq!(run.history.last().unwrap().message_type, "I13");
}

#[test]
fn happy_path_driver_reaches_each_named_stage() {
    use OperationState::*;
    assert_eq!(run_to(REGISTERED).state(), GuaranteeState::Registered);
    assert_eq!(run_to(ADVANCED).g().declaration_state(), DeclarationState::Advance);
    assert_eq!(run_to(ACCEPTED).state(), GuaranteeState::Accepted);
    assert_eq!(run_to(RECORDED).op_states(), [Pending, Pending, Pending]);
    assert_eq!(run_to(STARTED_TR).op_states(), [Started, Pending, Pending]);
    assert_eq!(run_to(TERMINATED_TR).op_states(), [Terminated, Pending, Pending]);
    assert_eq!(run_to(DISCHARGED_TR).op_states(), [Discharged, Pending, Pending]);
    assert_eq!(run_to(STARTED_GE).op_states(), [Discharged, Started, Pending]);
    assert_eq!(run_to(TERMINATED_GE).op_states(), [Discharged, Terminated, Pending]);
    assert_eq!(run_to(RELEASED).state(), GuaranteeState::Released);
}

/// Binding v2: the answer is `{"message_id", "type", "guarantee"}`, the guarantee
/// being the bytes of `GET /v1/guarantees/{ref}` (which hold the transport), once.
#[test]
fn each_answer_carries_the_guarantee_view_once() {
    let mut run = Run::new();
    for (sender, body) in happy_path() {
        let request = Request::parse(&body).expect("the happy path parses");
        let outcome = run.send(&sender, body).expect("the happy path is accepted");
        let answer = view::response_view(&request, &outcome.guarantee);
        let expected = format!(
            r#"{{"message_id":"{}","type":"{}","guarantee":{}}}"#,
            request.message_id.as_str(),
            request.kind.response(),
            view::guarantee_view(&outcome.guarantee)
        );
        assert_eq!(answer, expected);
    }
}

#[test]
fn discharge_out_of_order_releases_only_after_the_last_one() {
    let mut run = run_to(TERMINATED_TR);
    run.drive([
        (customs("GE"), i9(GE)),
        (customs("GE"), i11(GE, &[])),
        (customs("GE"), i13(GE)),
        (customs("AZ"), i9(AZ)),
        (customs("AZ"), i11(AZ, &[])),
        (customs("AZ"), i13(AZ)),
    ]);
    assert_eq!(run.state(), GuaranteeState::Accepted);
    let n = run.ok(&customs("TR"), i13(TR));
    assert_eq!(feed(&n), ["chain:chain-1 E7 operation_discharged", "chain:chain-1 E7 guarantee_released"]);
    assert_eq!(run.state(), GuaranteeState::Released);
}

// ---------------------------------------------------------------- 1xx

#[test]
fn unknown_acting_office_is_rejected_with_304_at_office() {
    run_to(ADVANCED).rejects(&customs("TR"), i1("TR999999"), 304, "/office");
    run_to(RECORDED).rejects(&customs("GE"), i9("GE999999"), 304, "/office");
}

#[test]
fn advance_data_naming_an_unknown_office_is_rejected_with_304_at_its_code() {
    let mut d = declaration();
    d["offices"][1]["code"] = json!("GE999999");
    run_to(REGISTERED).rejects(&holder(), e9(d), 304, "/declaration/offices/1/code");
}

#[test]
fn recorded_declaration_naming_an_unknown_office_is_rejected_with_304_at_its_code() {
    let mut d = declaration();
    d["offices"][2]["code"] = json!("AZ999999");
    run_to(ACCEPTED).rejects(&customs("TR"), i7_with(TR, d), 304, "/declaration/offices/2/code");
}

#[test]
fn declared_office_lacking_the_declared_role_is_rejected_with_180_at_its_role() {
    // GE000100 is an entry/exit office, never a destination.
    let mut d = declaration();
    d["offices"][1]["role"] = json!("destination");
    run_to(REGISTERED).rejects(&holder(), e9(d.clone()), 180, "/declaration/offices/1/role");
    run_to(ACCEPTED).rejects(&customs("TR"), i7_with(TR, d), 180, "/declaration/offices/1/role");
}

// ---------------------------------------------------------------- 2xx

#[test]
fn second_advance_data_is_rejected_with_201_at_type() {
    run_to(ADVANCED).rejects(&holder(), e9(declaration()), 201, "/type");
}

#[test]
fn accepting_an_accepted_guarantee_is_rejected_with_201() {
    run_to(ACCEPTED).rejects(&customs("TR"), i1(TR), 201, "/guarantee_reference");
}

#[test]
fn recording_before_acceptance_is_rejected_with_201() {
    run_to(ADVANCED).rejects(&customs("TR"), i7(TR), 201, "/guarantee_reference");
}

#[test]
fn starting_or_refusing_before_acceptance_is_rejected_with_201() {
    run_to(ADVANCED).rejects(&customs("TR"), i9(TR), 201, "/guarantee_reference");
    run_to(ADVANCED).rejects(&customs("TR"), i17(TR), 201, "/guarantee_reference");
}

#[test]
fn starting_or_refusing_on_a_released_guarantee_is_rejected_with_201() {
    run_to(RELEASED).rejects(&customs("TR"), i9(TR), 201, "/guarantee_reference");
    run_to(RELEASED).rejects(&customs("GE"), i17(GE), 201, "/guarantee_reference");
}

#[test]
fn advance_data_on_a_released_guarantee_is_rejected_with_201() {
    run_to(RELEASED).rejects(&holder(), e11(declaration()), 201, "/guarantee_reference");
}

#[test]
fn guarantee_valid_until_a_past_date_cannot_be_accepted_201() {
    let mut run = Run::new();
    run.drive([(chain(), e1_valid_until("2020-01-01")), (holder(), e9(declaration()))]);
    run.rejects(&customs("TR"), i1(TR), 201, "/guarantee_reference");
    assert_eq!(run.state(), GuaranteeState::Registered);
}

#[test]
fn guarantee_valid_until_today_can_still_be_accepted() {
    let mut run = Run::new();
    run.drive([(chain(), e1_valid_until("2026-11-28")), (holder(), e9(declaration()))]);
    run.ok(&customs("TR"), i1(TR));
    assert_eq!(run.state(), GuaranteeState::Accepted);
}

#[test]
fn cancelling_a_released_guarantee_is_rejected_with_203() {
    run_to(RELEASED).rejects(&chain(), e3(), 203, "/guarantee_reference");
}

#[test]
fn registering_an_existing_guarantee_is_rejected_with_204() {
    run_to(REGISTERED).rejects(&chain(), e1(), 204, "/guarantee_reference");
    run_to(RELEASED).rejects(&chain(), e1(), 204, "/guarantee_reference");
}

#[test]
fn cancelling_twice_is_rejected_with_205() {
    let mut run = run_to(ACCEPTED);
    run.ok(&chain(), e3());
    run.rejects(&chain(), e3(), 205, "/guarantee_reference");
}

#[test]
fn acting_on_a_cancelled_guarantee_before_any_operation_is_rejected_with_201() {
    let mut run = run_to(ADVANCED);
    run.ok(&chain(), e3());
    run.rejects(&customs("TR"), i1(TR), 201, "/guarantee_reference");
    run.rejects(&holder(), e11(declaration()), 201, "/guarantee_reference");
    run.rejects(&holder(), e13(), 201, "/guarantee_reference");

    let mut run = run_to(ACCEPTED);
    run.ok(&chain(), e3());
    run.rejects(&customs("TR"), i7(TR), 201, "/guarantee_reference");
}

#[test]
fn starting_on_a_cancelled_guarantee_is_rejected_with_201() {
    let mut run = run_to(RECORDED);
    run.ok(&chain(), e3());
    run.rejects(&customs("TR"), i9(TR), 201, "/guarantee_reference");
}

#[test]
fn starting_twice_is_rejected_with_210() {
    run_to(STARTED_TR).rejects(&customs("TR"), i9(TR), 210, "/office");
    run_to(STARTED_TR).rejects(&customs("TR"), i17(TR), 210, "/office");
}

#[test]
fn terminating_twice_is_rejected_with_211() {
    run_to(TERMINATED_TR).rejects(&customs("TR"), i11(TR, &[]), 211, "/office");
    run_to(TERMINATED_TR).rejects(&customs("TR"), i9(TR), 211, "/office");
}

#[test]
fn discharging_twice_is_rejected_with_212() {
    run_to(DISCHARGED_TR).rejects(&customs("TR"), i13(TR), 212, "/office");
    run_to(DISCHARGED_TR).rejects(&customs("TR"), i11(TR, &[]), 212, "/office");
    run_to(DISCHARGED_TR).rejects(&customs("TR"), i9(TR), 212, "/office");
}

#[test]
fn terminating_or_discharging_an_operation_not_started_is_rejected_with_213() {
    run_to(RECORDED).rejects(&customs("TR"), i11(TR, &[]), 213, "/office");
    run_to(RECORDED).rejects(&customs("TR"), i13(TR), 213, "/office");
    run_to(DISCHARGED_TR).rejects(&customs("GE"), i11(GE, &[]), 213, "/office");
}

#[test]
fn acting_on_a_refused_operation_is_rejected_with_280() {
    let mut run = run_to(TERMINATED_TR);
    run.ok(&customs("GE"), i17(GE));
    run.rejects(&customs("GE"), i9(GE), 280, "/office");
    run.rejects(&customs("GE"), i11(GE, &[]), 280, "/office");
    run.rejects(&customs("GE"), i13(GE), 280, "/office");
    run.rejects(&customs("GE"), i17(GE), 280, "/office");
}

#[test]
fn start_before_previous_country_terminated_is_rejected_with_281() {
    run_to(RECORDED).rejects(&customs("GE"), i9(GE), 281, "/office");
    run_to(STARTED_TR).rejects(&customs("GE"), i9(GE), 281, "/office");
    run_to(STARTED_TR).rejects(&customs("GE"), i17(GE), 281, "/office");
    // Only the immediately preceding country counts: AZ waits for GE.
    run_to(DISCHARGED_TR).rejects(&customs("AZ"), i9(AZ), 281, "/office");
    run_to(STARTED_GE).rejects(&customs("AZ"), i9(AZ), 281, "/office");
}

#[test]
fn changing_advance_data_after_the_declaration_is_recorded_is_rejected_with_282() {
    // After recording, E11 is an amendment en route and must name its country.
    run_to(RECORDED).rejects(&holder(), e11(declaration()), 101, "/country");
    run_to(RECORDED).rejects(&holder(), e13(), 282, "/guarantee_reference");
    run_to(RECORDED).rejects(&holder(), e9(declaration()), 282, "/guarantee_reference");
}

#[test]
fn recording_the_declaration_again_is_rejected_with_283_no_amendment_waits() {
    run_to(RECORDED).rejects(&customs("TR"), i7(TR), 283, "/guarantee_reference");
}

#[test]
fn discharging_a_started_operation_is_rejected_with_285() {
    run_to(STARTED_TR).rejects(&customs("TR"), i13(TR), 285, "/office");
    run_to(STARTED_GE).rejects(&customs("GE"), i13(GE), 285, "/office");
}

// ---------------------------------------------------------------- 3xx

#[test]
fn amending_or_withdrawing_missing_advance_data_is_rejected_with_307() {
    run_to(REGISTERED).rejects(&holder(), e11(declaration()), 307, "/guarantee_reference");
    run_to(REGISTERED).rejects(&holder(), e13(), 307, "/guarantee_reference");
}

#[test]
fn starting_before_the_declaration_is_recorded_is_rejected_with_220() {
    run_to(ACCEPTED).rejects(&customs("TR"), i9(TR), 220, "/guarantee_reference");
    run_to(ACCEPTED).rejects(&customs("TR"), i11(TR, &[]), 220, "/guarantee_reference");
    run_to(ACCEPTED).rejects(&customs("TR"), i13(TR), 220, "/guarantee_reference");
    run_to(ACCEPTED).rejects(&customs("TR"), i17(TR), 220, "/guarantee_reference");
    // Without any declaration, advance data included, the same.
    let mut run = run_to(ACCEPTED);
    run.ok(&holder(), e13());
    run.rejects(&customs("TR"), i9(TR), 220, "/guarantee_reference");
}

#[test]
fn recording_without_a_declaration_after_advance_data_was_withdrawn_is_rejected_with_307() {
    let mut run = run_to(ACCEPTED);
    run.ok(&holder(), e13());
    // Pointer unchecked: see the next test, which fails on the same early check.
    let error = run.send(&customs("TR"), i7(TR)).unwrap_err();
    assert_eq!(error.code.number(), 307, "got {error}");
}

#[test]
fn declaration_given_in_i7_is_recorded_even_after_advance_data_was_withdrawn() {
    // The contract makes I7's declaration optional ("omitted = the advance
    // data"), so a declaration given in full needs no advance data.
    let mut run = run_to(ACCEPTED);
    run.ok(&holder(), e13());
    assert_eq!(run.g().declaration_state(), DeclarationState::Withdrawn);
    let n = run.ok(&customs("TR"), i7_with(TR, declaration()));
    assert_eq!(feed(&n).len(), 3);
    assert_eq!(run.g().declaration_state(), DeclarationState::Recorded);
    assert_eq!(run.g().operations.len(), 3);
}

fn i11_sealed(office: &str, seals: &[&str]) -> Value {
    body("I11", json!({"office": office, "seals": seals, "reservations": []}))
}

fn findings(run: &Run, index: usize) -> Vec<Finding> {
    run.op(index).findings.clone()
}

fn seals_differ(office: &str, recorded: &[&str], reported: &[&str]) -> (OfficeCode, Vec<String>, Vec<String>) {
    let owned = |seals: &[&str]| seals.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    (OfficeCode::parse(office).unwrap(), owned(recorded), owned(reported))
}

/// (office, recorded, reported) of each finding, without its time.
fn finding_parts(findings: &[Finding]) -> Vec<(OfficeCode, Vec<String>, Vec<String>)> {
    findings
        .iter()
        .map(|f| match f {
            Finding::SealsDiffer { office, recorded, reported, .. } => {
                (office.clone(), recorded.clone(), reported.clone())
            }
        })
        .collect()
}

#[test]
fn seals_reported_at_the_first_start_are_recorded_without_a_finding() {
    let two = declaration_sealed(&["TR-1", "TR-2"]);
    for (reported, recorded) in [
        (vec!["TR-1"], vec!["TR-1"]),
        (vec!["TR-1", "TR-3", "TR-1"], vec!["TR-1", "TR-3"]),
        // None reported: the declared ones.
        (vec![], vec!["TR-1", "TR-2"]),
    ] {
        let mut run = Run::new();
        run.drive(happy_path_with(two.clone()).into_iter().take(RECORDED));
        let n = run.ok(&customs("TR"), i9_sealed(TR, &reported));
        assert_eq!(feed(&n), ["chain:chain-1 E7 operation_started"]);
        assert_eq!(run.g().seals, Some(recorded.iter().map(|s| s.to_string()).collect()));
        assert!(findings(&run, 0).is_empty());
    }
    let mut run = run_to(RECORDED);
    assert_eq!(run.g().seals(), [SEAL], "before the start: the declared seals");
    run.ok(&customs("TR"), i9(TR));
    assert_eq!(run.g().seals, Some(vec![SEAL.to_owned()]));
}

#[test]
fn other_seals_at_a_termination_are_a_finding_told_to_the_chain_and_become_the_recorded_ones() {
    let mut run = run_to(STARTED_TR);
    let n = run.ok(&customs("TR"), i11_sealed(TR, &["TR-2", "TR-9", "TR-2"]));
    assert_eq!(run.op(0).state, OperationState::Terminated);
    assert_eq!(
        feed(&n),
        [
            "customs:GE I15 previous_operation_terminated",
            "chain:chain-1 E7 operation_terminated",
            "chain:chain-1 E7 seal_finding",
        ]
    );
    let payload = n[2].payload_json();
    assert_eq!(
        (&payload["office"], &payload["country"], &payload["recorded"], &payload["reported"]),
        (&json!(TR), &json!("TR"), &json!([SEAL]), &json!(["TR-2", "TR-9"]))
    );
    assert_eq!(finding_parts(&findings(&run, 0)), [seals_differ(TR, &[SEAL], &["TR-2", "TR-9"])]);
    assert_eq!(run.g().seals(), ["TR-2", "TR-9"]);
    assert!(run.history.last().unwrap().summary.contains("seals differ"), "{:?}", run.history.last());

    // The next start compares with the new record: the same set is no finding, another one is.
    run.ok(&customs("TR"), i13(TR));
    let n = run.ok(&customs("GE"), i9_sealed(GE, &["TR-9", "TR-2"]));
    assert_eq!(feed(&n), ["chain:chain-1 E7 operation_started"]);
    let n = run.ok(&customs("GE"), i11_sealed(GE, &[]));
    assert_eq!(feed(&n)[2], "chain:chain-1 E7 seal_finding");
    assert_eq!(finding_parts(&findings(&run, 1)), [seals_differ(GE, &["TR-2", "TR-9"], &[])]);
    assert!(run.g().seals().is_empty());
}

#[test]
fn other_seals_at_a_later_start_are_a_finding_on_that_operation() {
    let mut run = run_to(DISCHARGED_TR);
    let n = run.ok(&customs("GE"), i9_sealed(GE, &["GE-1"]));
    assert_eq!(feed(&n), ["chain:chain-1 E7 operation_started", "chain:chain-1 E7 seal_finding"]);
    assert_eq!(run.op(1).state, OperationState::Started);
    assert!(findings(&run, 0).is_empty());
    assert_eq!(finding_parts(&findings(&run, 1)), [seals_differ(GE, &[SEAL], &["GE-1"])]);
    assert_eq!(run.g().seals(), ["GE-1"]);
    // The guarantee document keeps the finding.
    let stored: Guarantee = serde_json::from_str(&serde_json::to_string(run.g()).unwrap()).unwrap();
    assert_eq!(&stored, run.g());
}

#[test]
fn omitted_seals_at_a_termination_are_not_compared() {
    let mut run = run_to(STARTED_TR);
    let n = run.ok(&customs("TR"), i11(TR, &[]));
    assert_eq!(feed(&n).len(), 2);
    assert!(findings(&run, 0).is_empty());
}

#[test]
fn seals_matching_the_declaration_in_any_order_pass() {
    let two = declaration_sealed(&["TR-1", "TR-2"]);
    let mut run = Run::new();
    run.drive(happy_path_with(two).into_iter().take(RECORDED));
    run.ok(&customs("TR"), i9_sealed(TR, &["TR-2", "TR-1"]));
    assert_eq!(run.op(0).state, OperationState::Started);
    run.drive([(customs("TR"), i11(TR, &[]))]);
    run.ok(&customs("GE"), i9_sealed(GE, &["TR-1", "TR-2"]));
    assert_eq!(run.op(1).state, OperationState::Started);
}

#[test]
fn omitted_seals_are_not_checked() {
    let mut run = run_to(RECORDED);
    run.ok(&customs("TR"), i9(TR));
    assert_eq!(run.op(0).state, OperationState::Started);
}

#[test]
fn unsealed_declaration_accepts_an_empty_seal_list() {
    let mut run = Run::new();
    run.drive(happy_path_with(declaration_sealed(&[])).into_iter().take(RECORDED));
    run.ok(&customs("TR"), i9_sealed(TR, &[]));
    assert_eq!(run.op(0).state, OperationState::Started);
}

#[test]
fn advance_data_from_another_holder_is_rejected_with_320() {
    run_to(REGISTERED).rejects(&other_holder(), e9(declaration()), 320, "/guarantee_reference");
    run_to(ADVANCED).rejects(&other_holder(), e13(), 320, "/guarantee_reference");
}

#[test]
fn registering_for_a_withdrawn_holder_is_rejected_with_321() {
    Run::new().rejects(&chain(), e1_for(WITHDRAWN_HOLDER), 321, "/holder");
}

#[test]
fn holder_withdrawn_after_registration_cannot_send_advance_data_321() {
    let mut run = run_to(REGISTERED);
    run.world.set_holder(HOLDER, HolderStatus::Withdrawn);
    run.rejects(&holder(), e9(declaration()), 321, "/guarantee_reference");
}

#[test]
fn registering_for_a_holder_missing_from_the_itdb_is_rejected_with_322() {
    Run::new().rejects(&chain(), e1_for(OTHER_HOLDER), 322, "/holder");
}

#[test]
fn holder_removed_from_the_itdb_cannot_send_advance_data_322() {
    let mut run = run_to(REGISTERED);
    run.world.holders.clear();
    run.rejects(&holder(), e9(declaration()), 322, "/guarantee_reference");
}

#[test]
fn another_chain_cannot_cancel_the_guarantee_331() {
    run_to(ACCEPTED).rejects(&other_chain(), e3(), 331, "/guarantee_reference");
}

// ---------------------------------------------------------------- 380, 301

#[test]
fn message_from_the_wrong_kind_of_party_is_rejected_with_380_at_type() {
    let mut run = run_to(ADVANCED);
    run.rejects(&holder(), i1(TR), 380, "/type");
    run.rejects(&customs("TR"), e3(), 380, "/type");
    run.rejects(&chain(), e11(declaration()), 380, "/type");
    run.rejects(&Party::Admin, e3(), 380, "/type");
    run.rejects(&Party::Admin, i1(TR), 380, "/type");
    Run::new().rejects(&holder(), e1(), 380, "/type");
}

#[test]
fn customs_acting_through_another_countrys_office_is_rejected_with_380_at_office() {
    run_to(ADVANCED).rejects(&customs("GE"), i1(TR), 380, "/office");
    run_to(RECORDED).rejects(&customs("TR"), i9(GE), 380, "/office");
    run_to(TERMINATED_TR).rejects(&customs("AZ"), i9(GE), 380, "/office");
}

#[test]
fn customs_of_a_country_off_the_itinerary_is_rejected_with_380() {
    run_to(ADVANCED).rejects(&customs("AM"), i1(AM), 380, "/guarantee_reference");
    run_to(TERMINATED_GE).rejects(&customs("AM"), i9(AM), 380, "/guarantee_reference");
    run_to(TERMINATED_GE).rejects(&customs("AM"), i17(AM), 380, "/guarantee_reference");
}

#[test]
fn acceptance_or_recording_by_a_non_departure_office_is_rejected_with_380_at_office() {
    run_to(ADVANCED).rejects(&customs("GE"), i1(GE), 380, "/office");
    run_to(ADVANCED).rejects(&customs("TR"), i1(TR_EXIT), 380, "/office");
    run_to(ACCEPTED).rejects(&customs("GE"), i7(GE), 380, "/office");
    run_to(ACCEPTED).rejects(&customs("TR"), i7(TR_EXIT), 380, "/office");
}

#[test]
fn an_operation_starts_and_ends_only_at_offices_of_the_right_role() {
    // First country: a departure office of the declaration, for a start or a refusal.
    run_to(RECORDED).rejects(&customs("TR"), i9(TR_EXIT), 380, "/office");
    run_to(RECORDED).rejects(&customs("TR"), i17(TR_EXIT), 380, "/office");
    // Later countries: an office of entry (or departure).
    run_to(DISCHARGED_TR).rejects(&customs("GE"), i9(GE_EXIT_ONLY), 380, "/office");
    run_to(DISCHARGED_TR).rejects(&customs("GE"), i17(GE_EXIT_ONLY), 380, "/office");
    // Termination en route at an office of exit (or destination), at the end at one of destination.
    run_to(STARTED_GE).rejects(&customs("GE"), i11(GE_ENTRY_ONLY, &[]), 380, "/office");
    let mut run = run_to(TERMINATED_GE);
    run.ok(&customs("AZ"), i9(AZ_ENTRY_ONLY));
    run.rejects(&customs("AZ"), i11(AZ_ENTRY_ONLY, &[]), 380, "/office");
    run.ok(&customs("AZ"), i11(AZ, &[]));
    // Discharge is the country's: any of its offices.
    run.ok(&customs("AZ"), i13(AZ_ENTRY_ONLY));
}

#[test]
fn a_transport_may_leave_the_first_country_through_another_office_than_it_started_at() {
    let mut run = run_to(STARTED_TR);
    run.ok(&customs("TR"), i11(TR_EXIT, &[]));
    run.ok(&customs("TR"), i13(TR_EXIT));
    run.ok(&customs("GE"), i9(GE_ENTRY_ONLY));
    run.ok(&customs("GE"), i11(GE_EXIT_ONLY, &[]));
    assert_eq!(run.op_states()[..2], [OperationState::Discharged, OperationState::Terminated]);
}

#[test]
fn message_about_an_unknown_guarantee_is_rejected_with_301() {
    Run::new().rejects(&chain(), e3(), 301, "/guarantee_reference");
    Run::new().rejects(&holder(), e9(declaration()), 301, "/guarantee_reference");
    Run::new().rejects(&customs("TR"), i1(TR), 301, "/guarantee_reference");
}

// ---------------------------------------------------------------- cancellation

#[test]
fn cancelling_a_registered_guarantee_makes_it_cancelled() {
    let mut run = run_to(REGISTERED);
    let n = run.ok(&chain(), e3());
    assert_eq!(run.state(), GuaranteeState::Cancelled);
    assert_eq!(run.g().cancellation_reason.as_deref(), Some("guarantee withdrawn by the association"));
    // No itinerary known yet: nobody to tell.
    assert!(n.is_empty());
}

#[test]
fn cancelling_tells_customs_of_every_itinerary_country_once_the_declaration_is_recorded() {
    // Advance data only: customs have recorded nothing to stop.
    let mut run = run_to(ADVANCED);
    assert!(run.ok(&chain(), e3()).is_empty());
    assert_eq!(run.state(), GuaranteeState::Cancelled);
    let mut run = run_to(RECORDED);
    let n = run.ok(&chain(), e3());
    assert_eq!(
        feed(&n),
        [
            "customs:TR I15 guarantee_cancelled",
            "customs:GE I15 guarantee_cancelled",
            "customs:AZ I15 guarantee_cancelled",
        ]
    );
}

#[test]
fn cancelling_an_accepted_guarantee_makes_it_cancelled() {
    let mut run = run_to(RECORDED);
    run.ok(&chain(), e3());
    assert_eq!(run.state(), GuaranteeState::Cancelled);
}

#[test]
fn operation_started_before_cancellation_still_terminates_and_is_discharged() {
    let mut run = run_to(STARTED_TR);
    run.ok(&chain(), e3());
    let n = run.ok(&customs("TR"), i11(TR, &[]));
    assert_eq!(feed(&n), ["customs:GE I15 previous_operation_terminated", "chain:chain-1 E7 operation_terminated"]);
    // Nothing new may start, even though TR has terminated.
    run.rejects(&customs("GE"), i9(GE), 201, "/guarantee_reference");
    let n = run.ok(&customs("TR"), i13(TR));
    assert_eq!(feed(&n), ["chain:chain-1 E7 operation_discharged"]);
    assert_eq!(run.op(0).state, OperationState::Discharged);
    assert_eq!(run.state(), GuaranteeState::Cancelled);
}

#[test]
fn cancelled_guarantee_stays_cancelled_when_its_last_operation_is_discharged() {
    let mut run = run_to(TERMINATED_GE);
    run.drive([(customs("GE"), i13(GE)), (customs("AZ"), i9(AZ))]);
    run.ok(&chain(), e3());
    run.drive([(customs("AZ"), i11(AZ, &[])), (customs("AZ"), i13(AZ))]);
    assert!(run.g().transport_finished());
    assert_eq!(run.state(), GuaranteeState::Cancelled);
    run.rejects(&chain(), e3(), 205, "/guarantee_reference");
}

// ---------------------------------------------------------------- refusal

#[test]
fn refusal_in_georgia_blocks_azerbaijan_and_releases_once_turkey_is_discharged() {
    let mut run = run_to(TERMINATED_TR);
    let n = run.ok(&customs("GE"), i17(GE));
    assert_eq!(feed(&n), ["customs:AZ I15 operation_refused", "chain:chain-1 E7 operation_refused"]);
    assert_eq!(n[0].payload_json()["reason"], "load not as declared");
    assert_eq!(n[1].payload_json()["operation"], 2);
    assert_eq!(run.op(1).state, OperationState::Refused);
    assert_eq!(run.op(1).refusal_reason.as_deref(), Some("load not as declared"));
    assert_eq!(run.op(1).started_at, None);
    // TR is terminated, not discharged: the guarantee still covers it.
    assert_eq!(run.state(), GuaranteeState::Accepted);
    // After a refused operation, none starts.
    run.rejects(&customs("AZ"), i9(AZ), 280, "/office");
    run.rejects(&customs("AZ"), i17(AZ), 280, "/office");

    let n = run.ok(&customs("TR"), i13(TR));
    assert_eq!(feed(&n), ["chain:chain-1 E7 operation_discharged", "chain:chain-1 E7 guarantee_released"]);
    assert_eq!(run.state(), GuaranteeState::Released);
    assert_eq!(run.op(2).state, OperationState::Pending);
}

#[test]
fn refusal_after_discharged_predecessors_releases_at_once() {
    let mut run = run_to(DISCHARGED_TR);
    let n = run.ok(&customs("GE"), i17(GE));
    assert_eq!(
        feed(&n),
        [
            "customs:AZ I15 operation_refused",
            "chain:chain-1 E7 operation_refused",
            "chain:chain-1 E7 guarantee_released"
        ]
    );
    assert_eq!(run.state(), GuaranteeState::Released);
}

#[test]
fn refusal_of_the_first_operation_is_216_and_of_a_released_guarantee_201() {
    // Customs of departure refuse by not accepting the guarantee.
    run_to(RECORDED).rejects(&customs("TR"), i17(TR), 216, "/office");
    let mut run = run_to(DISCHARGED_TR);
    run.ok(&customs("GE"), i17(GE));
    assert_eq!(run.state(), GuaranteeState::Released);
    // Released: nothing more may start or be refused.
    run.rejects(&customs("AZ"), i17(AZ), 201, "/guarantee_reference");
    run.rejects(&customs("AZ"), i9(AZ), 201, "/guarantee_reference");
}

// ---------------------------------------------------------------- advance data

#[test]
fn amendment_replaces_the_advance_data_and_is_what_customs_record() {
    let mut amended = declaration_sealed(&["TR-900001"]);
    amended["vehicle"]["registration"] = json!("34XYZ789");
    let mut run = run_to(ACCEPTED);
    let n = run.ok(&holder(), e11(amended.clone()));
    assert_eq!(feed(&n), ["customs:TR E11 advance_data_amended"]);
    assert_eq!(n[0].payload_json()["declaration"]["seals"], json!(["TR-900001"]));
    let advance = run.g().advance.as_ref().unwrap();
    assert_eq!(advance.seals, ["TR-900001"]);
    assert_eq!(advance.vehicle.as_ref().unwrap().registration, "34XYZ789");
    assert_eq!(run.g().declaration_state(), DeclarationState::Advance);

    run.ok(&customs("TR"), i7(TR));
    let recorded = run.g().declaration.as_ref().unwrap();
    assert_eq!(recorded.seals, ["TR-900001"]);
    run.ok(&customs("TR"), i9(TR));
    assert_eq!(run.g().seals(), ["TR-900001"]);
}

#[test]
fn withdrawal_removes_the_advance_data_and_allows_sending_it_again() {
    let mut run = run_to(ADVANCED);
    let n = run.ok(&holder(), e13());
    assert_eq!(feed(&n), ["customs:TR E13 advance_data_cancelled"]);
    assert_eq!(n[0].payload_json()["reason"], "trip postponed");
    assert!(run.g().advance.is_none());
    assert_eq!(run.g().declaration_state(), DeclarationState::Withdrawn);
    run.ok(&holder(), e9(declaration()));
    assert_eq!(run.g().declaration_state(), DeclarationState::Advance);
}

#[test]
fn declaration_given_in_i7_replaces_the_advance_data() {
    let mut run = run_to(ACCEPTED);
    run.ok(&customs("TR"), i7_with(TR, declaration_sealed(&["TR-777"])));
    assert_eq!(run.g().declaration.as_ref().unwrap().seals, ["TR-777"]);
    // The advance data stays readable as version 0, the recorded text is version 1.
    assert_eq!(run.g().declaration_at(0).unwrap().seals, [SEAL]);
    assert_eq!(run.g().declaration_at(1).unwrap().seals, ["TR-777"]);
    assert_eq!(run.g().declaration_at(2), None);
    // Recorded as sent: version 0 is version 1's text.
    let run = run_to(RECORDED);
    assert!(run.g().advance.is_none());
    assert_eq!(run.g().declaration_at(0), run.g().declaration_at(1));
}

// ---------------------------------------------------------------- payloads

/// "recipient kind payload" for each notification a message sends, the payload
/// as the feeds serve it.
fn sent(run: &mut Run, sender: &Party, body: Value) -> Vec<String> {
    run.ok(sender, body).iter().map(|n| format!("{} {} {}", n.recipient.key(), n.kind, n.payload)).collect()
}

/// The sample declaration's JSON as the feeds carry it, with its one seal.
fn declaration_json(seal: &str) -> String {
    format!(
        r#"{{"itinerary":["TR","GE","AZ"],"offices":[{{"code":"TR000100","role":"departure"}},{{"code":"GE000100","role":"entry"}},{{"code":"AZ000200","role":"destination"}}],"vehicle":{{"registration":"34ABC123","country":"TR"}},"seals":["{seal}"],"consignments":[{{"consignor":{{"name":"Anatolia Export","country":"TR"}},"consignee":{{"name":"Baku Import","country":"AZ"}},"goods":[{{"hs_code":"870323","description":"Passenger cars","packages":4,"gross_mass_kg":6200.0,"value":{{"amount":88000.0,"currency":"EUR"}}}}]}}]}}"#
    )
}

// Pinned: the feeds must serve these bytes (binding v2's payloads: every one
// names office, operation and declaration_version, null where none applies).
#[test]
fn every_kind_of_notification_renders_to_the_pinned_json() {
    let (sample, amended) = (declaration_json(SEAL), declaration_json("TR-900001"));
    let mut run = Run::new();
    assert!(sent(&mut run, &chain(), e1()).is_empty());
    assert_eq!(
        sent(&mut run, &holder(), e9(declaration())),
        [format!(
            r#"customs:TR E9 {{"event":"advance_data","message_type":"E9","guarantee_state":"registered","at":"2026-11-28T08:02:00.000Z","office":null,"operation":null,"declaration_version":0,"declaration":{sample},"holder":"TUR/012/345"}}"#
        )]
    );
    assert_eq!(
        sent(&mut run, &holder(), e11(declaration_sealed(&["TR-900001"]))),
        [format!(
            r#"customs:TR E11 {{"event":"advance_data_amended","message_type":"E11","guarantee_state":"registered","at":"2026-11-28T08:03:00.000Z","office":null,"operation":null,"declaration_version":0,"declaration":{amended},"holder":"TUR/012/345"}}"#
        )]
    );
    assert_eq!(
        sent(&mut run, &holder(), e13()),
        [
            r#"customs:TR E13 {"event":"advance_data_cancelled","message_type":"E13","guarantee_state":"registered","at":"2026-11-28T08:04:00.000Z","office":null,"operation":null,"declaration_version":0,"reason":"trip postponed"}"#
        ]
    );
    run.ok(&holder(), e9(declaration()));
    assert_eq!(
        sent(&mut run, &customs("TR"), i1(TR)),
        [
            r#"chain:chain-1 E7 {"event":"guarantee_accepted","message_type":"I1","guarantee_state":"accepted","at":"2026-11-28T08:06:00.000Z","office":"TR000100","operation":null,"declaration_version":0}"#
        ]
    );
    let recorded = |country: &str| {
        format!(
            r#"customs:{country} I15 {{"event":"declaration_recorded","message_type":"I7","guarantee_state":"accepted","at":"2026-11-28T08:07:00.000Z","office":"TR000100","operation":null,"declaration_version":1,"declaration":{sample}}}"#
        )
    };
    assert_eq!(
        sent(&mut run, &customs("TR"), i7(TR)),
        [
            recorded("GE"),
            recorded("AZ"),
            r#"chain:chain-1 E7 {"event":"declaration_recorded","message_type":"I7","guarantee_state":"accepted","at":"2026-11-28T08:07:00.000Z","office":"TR000100","operation":null,"declaration_version":1}"#.to_owned(),
        ]
    );
    assert_eq!(
        sent(&mut run, &customs("TR"), i9(TR)),
        [
            r#"chain:chain-1 E7 {"event":"operation_started","message_type":"I9","guarantee_state":"accepted","at":"2026-11-28T08:08:00.000Z","office":"TR000100","operation":1,"declaration_version":1,"country":"TR"}"#
        ]
    );
    assert_eq!(
        sent(&mut run, &customs("TR"), i11(TR, &["seal scratched"])),
        [
            r#"customs:GE I15 {"event":"previous_operation_terminated","message_type":"I11","guarantee_state":"accepted","at":"2026-11-28T08:09:00.000Z","office":"TR000100","operation":1,"declaration_version":1,"country":"TR","reservations":["seal scratched"]}"#,
            r#"chain:chain-1 E7 {"event":"operation_terminated","message_type":"I11","guarantee_state":"accepted","at":"2026-11-28T08:09:00.000Z","office":"TR000100","operation":1,"declaration_version":1,"country":"TR","reservations":["seal scratched"]}"#,
        ]
    );
    assert_eq!(
        sent(&mut run, &customs("TR"), i13(TR)),
        [
            r#"chain:chain-1 E7 {"event":"operation_discharged","message_type":"I13","guarantee_state":"accepted","at":"2026-11-28T08:10:00.000Z","office":"TR000100","operation":1,"declaration_version":1,"country":"TR"}"#
        ]
    );
    // The release follows the refusal in the same message, in the guarantee's new state.
    assert_eq!(
        sent(&mut run, &customs("GE"), i17(GE)),
        [
            r#"customs:AZ I15 {"event":"operation_refused","message_type":"I17","guarantee_state":"accepted","at":"2026-11-28T08:11:00.000Z","office":"GE000100","operation":2,"declaration_version":1,"country":"GE","reason":"load not as declared"}"#,
            r#"chain:chain-1 E7 {"event":"operation_refused","message_type":"I17","guarantee_state":"accepted","at":"2026-11-28T08:11:00.000Z","office":"GE000100","operation":2,"declaration_version":1,"country":"GE","reason":"load not as declared"}"#,
            r#"chain:chain-1 E7 {"event":"guarantee_released","message_type":"I17","guarantee_state":"released","at":"2026-11-28T08:11:00.000Z","office":"GE000100","operation":2,"declaration_version":1}"#,
        ]
    );

    let mut run = run_to(RECORDED);
    let cancelled = |country: &str| {
        format!(
            r#"customs:{country} I15 {{"event":"guarantee_cancelled","message_type":"E3","guarantee_state":"cancelled","at":"2026-11-28T08:05:00.000Z","office":null,"operation":null,"declaration_version":1,"reason":"guarantee withdrawn by the association"}}"#
        )
    };
    assert_eq!(sent(&mut run, &chain(), e3()), [cancelled("TR"), cancelled("GE"), cancelled("AZ")]);
}

// ---------------------------------------------------------------- may_read

#[test]
fn may_read_follows_the_rights_of_each_party_kind() {
    let registered = run_to(REGISTERED);
    let registered = registered.g();
    let recorded = run_to(RECORDED);
    let recorded = recorded.g();

    for g in [registered, recorded] {
        assert!(exchange::may_read(&Party::Admin, g));
        assert!(exchange::may_read(&chain(), g));
        assert!(!exchange::may_read(&other_chain(), g));
        assert!(exchange::may_read(&holder(), g));
        assert!(!exchange::may_read(&other_holder(), g));
        assert!(!exchange::may_read(&customs("AM"), g));
    }
    // Customs read only once an itinerary names their country.
    for code in ["TR", "GE", "AZ"] {
        assert!(!exchange::may_read(&customs(code), registered), "{code}");
        assert!(exchange::may_read(&customs(code), recorded), "{code}");
    }
    assert!(exchange::may_read(&customs("GE"), run_to(ADVANCED).g()));
}

// ---------------------------------------------------------------- property

const KINDS: [&str; 11] = ["E1", "E3", "E9", "E11", "E13", "I1", "I7", "I9", "I11", "I13", "I17"];
const PROP_SEALS: [&str; 2] = ["TR-1", "TR-2"];

#[derive(Debug, Clone, Copy)]
enum Seals {
    Omitted,
    Declared,
    Reversed,
    Missing,
    Extra,
}

#[derive(Debug, Clone)]
struct Move {
    kind: &'static str,
    country: usize,
    seals: Seals,
}

fn moves() -> impl Strategy<Value = Move> {
    let seals = prop_oneof![
        Just(Seals::Omitted),
        Just(Seals::Declared),
        Just(Seals::Reversed),
        Just(Seals::Missing),
        Just(Seals::Extra),
    ];
    (prop::sample::select(KINDS.to_vec()), 0..3usize, seals).prop_map(|(kind, country, seals)| Move {
        kind,
        country,
        seals,
    })
}

fn message_of(m: &Move) -> (Party, Value) {
    let (code, office) = [("TR", TR), ("GE", GE), ("AZ", AZ)][m.country];
    let declaration = || declaration_sealed(&PROP_SEALS);
    match m.kind {
        "E1" => (chain(), e1()),
        "E3" => (chain(), e3()),
        "E9" => (holder(), e9(declaration())),
        "E11" => (holder(), e11(declaration())),
        "E13" => (holder(), e13()),
        "I1" => (customs(code), i1(office)),
        "I7" => (customs(code), i7(office)),
        "I9" => {
            let body = match m.seals {
                Seals::Omitted => i9(office),
                Seals::Declared => i9_sealed(office, &PROP_SEALS),
                Seals::Reversed => i9_sealed(office, &["TR-2", "TR-1"]),
                Seals::Missing => i9_sealed(office, &["TR-1"]),
                Seals::Extra => i9_sealed(office, &["TR-1", "TR-2", "TR-3"]),
            };
            (customs(code), body)
        }
        "I11" => (customs(code), i11(office, &[])),
        "I13" => (customs(code), i13(office)),
        "I17" => (customs(code), i17(office)),
        other => unreachable!("{other}"),
    }
}

fn state_may_follow(before: Option<GuaranteeState>, after: GuaranteeState) -> bool {
    use GuaranteeState::*;
    match (before, after) {
        (None, Registered) => true,
        (Some(b), a) if b == a => true,
        (Some(Registered), Accepted | Cancelled) => true,
        (Some(Accepted), Released | Cancelled) => true,
        _ => false,
    }
}

fn operation_may_follow(before: OperationState, after: OperationState) -> bool {
    use OperationState::*;
    before == after
        || matches!(
            (before, after),
            (Pending, Started) | (Started, Terminated) | (Terminated, Discharged) | (Pending, Refused)
        )
}

/// Independent of `Guarantee::transport_finished`: every operation
/// discharged, or the first one not discharged is a refusal.
fn finished(ops: &[Operation]) -> bool {
    match ops.iter().position(|op| op.state != OperationState::Discharged) {
        _ if ops.is_empty() => false,
        None => true,
        Some(i) => ops[i].state == OperationState::Refused,
    }
}

fn check_step(
    before: Option<&Guarantee>,
    after: &Guarantee,
    notifications: &[FeedItem],
    events: &[tir_model::guarantee::Event],
) -> Result<(), TestCaseError> {
    use OperationState::*;
    prop_assert!(
        state_may_follow(before.map(|g| g.state), after.state),
        "guarantee moved {:?} -> {:?}",
        before.map(|g| g.state),
        after.state
    );
    prop_assert!(!events.is_empty(), "an accepted message leaves an event");

    let previous_ops = before.map(|g| g.operations.as_slice()).unwrap_or(&[]);
    if previous_ops.is_empty() {
        prop_assert!(after.operations.iter().all(|op| op.state == Pending));
    } else {
        prop_assert_eq!(previous_ops.len(), after.operations.len());
        for (b, a) in previous_ops.iter().zip(&after.operations) {
            prop_assert_eq!(b.sequence, a.sequence);
            prop_assert!(operation_may_follow(b.state, a.state), "{} moved {:?} -> {:?}", a.sequence, b.state, a.state);
            if before.unwrap().state == GuaranteeState::Cancelled {
                prop_assert!(!(b.state == Pending && a.state == Started), "{} started after cancellation", a.sequence);
            }
        }
    }

    for pair in after.operations.windows(2) {
        if pair[1].state != Pending {
            prop_assert!(
                matches!(pair[0].state, Terminated | Discharged),
                "{} is {:?} while {} is {:?}",
                pair[1].sequence,
                pair[1].state,
                pair[0].sequence,
                pair[0].state
            );
        }
    }

    match after.state {
        GuaranteeState::Released => prop_assert!(finished(&after.operations), "released early: {:?}", after.operations),
        GuaranteeState::Accepted => {
            prop_assert!(!finished(&after.operations), "finished but not released")
        }
        GuaranteeState::Registered => prop_assert!(after.operations.is_empty()),
        GuaranteeState::Cancelled => {}
    }

    for n in notifications {
        prop_assert!(["E7", "I15", "E9", "E11", "E13"].contains(&n.kind), "kind {}", n.kind);
        prop_assert!(n.payload_json()["event"].is_string());
        match &n.recipient {
            Recipient::Chain(id) => {
                prop_assert_eq!(id.as_str(), "chain-1");
                prop_assert_eq!(n.kind, "E7", "only E7 goes to the chain");
            }
            // E13 goes to the departure customs of the advance data it withdraws.
            Recipient::Customs(c) => {
                prop_assert!(n.kind != "E7", "E7 goes to the chain only");
                prop_assert!(
                    after.on_itinerary(*c) || before.is_some_and(|g| g.on_itinerary(*c)),
                    "{} is off the itinerary",
                    c
                );
            }
            Recipient::Holder(id) => {
                prop_assert!(false, "unexpected holder notification to {}", id)
            }
        }
    }
    Ok(())
}

proptest! {
    // No regressions file: this test must not write into the source tree.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_message_sequences_keep_the_life_cycle_invariants(
        prefix in 0..=RELEASED,
        tail in prop::collection::vec(moves(), 0..40),
    ) {
        // A valid prefix of the happy path gets the random tail into every stage.
        let world = World::new();
        let mut current: Option<Guarantee> = None;
        let mut now = start_time();
        let steps = happy_path_with(declaration_sealed(&PROP_SEALS)).into_iter().take(prefix);
        let steps: Vec<(Party, Value)> = steps.chain(tail.iter().map(message_of)).collect();
        for (i, (sender, body)) in steps.iter().enumerate() {
            now = Timestamp::from_unix_ms(now.unix_ms() + MINUTE_MS);
            let request = Request::parse(body).unwrap();
            match exchange::apply(&world, sender, &request, current.as_ref(), now) {
                Ok(outcome) => {
                    check_step(current.as_ref(), &outcome.guarantee, &feed_items(&outcome), &outcome.events)?;
                    current = Some(outcome.guarantee);
                }
                Err(e) => prop_assert!(i >= prefix, "happy-path step {} rejected: {}", i, e),
            }
        }
    }
}
