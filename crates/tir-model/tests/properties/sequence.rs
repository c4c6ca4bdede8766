//! Sequences of messages through the state machine (`exchange::apply`), with
//! the invariants every step must keep, as assertions.
//!
//! Shared, like `parsers.rs`: `tests/properties.rs` runs it as a proptest, the
//! `exchange` fuzz target on sequences libFuzzer makes. A sequence is a list
//! of `Action`s, plain small numbers that pick the message type, the sender,
//! the guarantee (of three), the office (country and roles), the declaration
//! (itinerary and variant) and the message's optional fields. Each becomes a
//! JSON body, goes the server's way (`parse_request`) and is applied to an
//! in-memory registry and the guarantees so far.

use std::collections::HashMap;

use serde_json::{Value, json};
use tir_model::exchange::{self, Outcome, Registry};
use tir_model::guarantee::{Guarantee, GuaranteeState, Operation, OperationState};
use tir_model::message::{MessageType, Request, parse_request};
use tir_model::party::{HolderRecord, HolderStatus, Office, OfficeRole, Party, Recipient};
use tir_model::{Country, EtirError, OfficeCode, Timestamp, TirId, view};

use super::parsers::{DETAIL_CHARS_MAX, PARSE_CODES, check_error_points_into};

/// Countries with offices; customs parties exist for all but `NO_CUSTOMS`.
pub const COUNTRIES: [&str; 13] = ["TR", "GE", "AZ", "AM", "BG", "RO", "HU", "RS", "LT", "PL", "BY", "IR", "UZ"];
/// Countries without a customs party: advance data through them is 308.
pub const NO_CUSTOMS: [&str; 2] = ["IR", "UZ"];

/// Each country has one office of each kind: its code is the country and the suffix.
pub const OFFICE_KINDS: [(&str, &[OfficeRole]); 6] = [
    ("000100", &[OfficeRole::Departure, OfficeRole::Destination, OfficeRole::Entry, OfficeRole::Exit]),
    ("000200", &[OfficeRole::Departure]),
    ("000300", &[OfficeRole::Entry]),
    ("000400", &[OfficeRole::Exit]),
    ("000500", &[OfficeRole::Destination]),
    // Not in the office list: 304.
    ("000900", &[]),
];

/// Itineraries: across two to four TIR territories, back into one left
/// before, through a country without customs (308), and inside the Union
/// only (181, refused by the parser).
pub const ITINERARIES: [&[&str]; 10] = [
    &["TR", "GE", "AZ"],
    &["TR", "GE", "AM"],
    &["TR", "GE", "AZ", "AM"],
    &["BY", "LT", "PL"],
    &["TR", "BG", "RO", "HU", "RS"],
    &["TR", "BG", "RS", "HU"],
    &["TR", "GE", "TR", "GE", "AZ"],
    &["AM", "GE", "TR", "BG"],
    &["TR", "IR", "AZ"],
    &["LT", "PL"],
];

/// TIR holders: authorized, authorized, withdrawn, not in the ITDB.
pub const HOLDERS: [&str; 4] = ["TUR/012/345", "TUR/012/346", "TUR/012/999", "GEO/001/777"];
pub const REFERENCES: [&str; 3] = ["XH25000001", "XH25000002", "AX999000001"];
const CHAINS: [&str; 2] = ["chain-1", "chain-2"];
/// 2026-11-28T08:00:00Z.
const START_MS: i64 = 1_795_852_800_000;
const MINUTE_MS: i64 = 60_000;

/// One message of a sequence; every field is taken modulo what it picks from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Action {
    /// `MessageType::ALL[kind]`.
    pub kind: u8,
    /// 0 to 3: the party that sends this type (the chain that registered the
    /// guarantee, its holder, customs of the office's country); 4 the other
    /// chain, 5 another holder, 6 customs of another country, 7 the admin.
    pub sender: u8,
    pub reference: u8,
    /// The office's country (`COUNTRIES`), and E11's `country`.
    pub country: u8,
    /// `OFFICE_KINDS`.
    pub office: u8,
    /// `ITINERARIES`, for E9, E11 and I7.
    pub declaration: u8,
    /// Bits choosing the optional fields and the declaration's variant.
    pub variant: u8,
    /// Minutes to the next message (at least one).
    pub minutes: u8,
}

impl Action {
    fn new(kind: MessageType, country: &str, office: u8, declaration: u8, variant: u8) -> Action {
        let kind = MessageType::ALL.iter().position(|k| *k == kind).expect("a message type") as u8;
        let country = COUNTRIES.iter().position(|c| *c == country).expect("a country") as u8;
        Action { kind, sender: 0, reference: 0, country, office, declaration, variant, minutes: 1 }
    }
}

/// The messages that carry the transport of `ITINERARIES[template]` from
/// registration to release, each through the first kind of office (all roles).
pub fn happy_path(template: u8) -> Vec<Action> {
    let itinerary = ITINERARIES[usize::from(template) % ITINERARIES.len()];
    let t = template;
    let mut path = vec![
        Action::new(MessageType::E1, itinerary[0], 0, t, 0),
        Action::new(MessageType::E9, itinerary[0], 0, t, 0),
        Action::new(MessageType::I1, itinerary[0], 0, t, 0),
        Action::new(MessageType::I7, itinerary[0], 0, t, 0),
    ];
    let countries: Vec<Country> = itinerary.iter().map(|c| country(c)).collect();
    for op in tir_model::operation::plan(&countries).unwrap_or_default() {
        let (first, last) = (op.countries()[0].as_str(), op.countries()[op.countries().len() - 1].as_str());
        path.push(Action::new(MessageType::I9, first, 0, t, 0));
        path.push(Action::new(MessageType::I11, last, 0, t, 0));
        path.push(Action::new(MessageType::I13, last, 0, t, 0));
    }
    path
}

fn country(code: &str) -> Country {
    Country::parse(code).expect("a known country")
}

fn pick<T: Copy>(items: &[T], i: u8) -> T {
    items[usize::from(i) % items.len()]
}

/// The registries: offices of every kind in every country, the ITDB.
pub struct World {
    offices: HashMap<OfficeCode, Office>,
    holders: HashMap<TirId, HolderRecord>,
}

impl World {
    pub fn new() -> World {
        let mut offices = HashMap::new();
        for country in COUNTRIES {
            for (suffix, roles) in OFFICE_KINDS.iter().filter(|(_, roles)| !roles.is_empty()) {
                let code = OfficeCode::parse(&format!("{country}{suffix}")).expect("an office code");
                let office = Office {
                    country: code.country(),
                    code: code.clone(),
                    name: format!("office {code}"),
                    roles: roles.to_vec(),
                    unlocode: None,
                };
                offices.insert(code, office);
            }
        }
        let mut holders = HashMap::new();
        for (raw, status) in [(HOLDERS[0], HolderStatus::Authorized), (HOLDERS[1], HolderStatus::Authorized)]
            .into_iter()
            .chain([(HOLDERS[2], HolderStatus::Withdrawn)])
        {
            let tir_id = TirId::parse(raw).expect("a TIR id");
            let record = HolderRecord {
                tir_id: tir_id.clone(),
                name: format!("holder {raw}"),
                country: tir_id.country(),
                status,
            };
            holders.insert(tir_id, record);
        }
        World { offices, holders }
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl Registry for World {
    fn office(&self, code: &OfficeCode) -> Option<&Office> {
        self.offices.get(code)
    }

    fn holder(&self, tir_id: &TirId) -> Option<&HolderRecord> {
        self.holders.get(tir_id)
    }

    fn has_customs(&self, country: Country) -> bool {
        !NO_CUSTOMS.contains(&country.as_str())
    }
}

/// Advance data along `ITINERARIES[template]`. Variant bits: 1 a departure
/// office of departure only, 2 offices of entry of entry only, 4 no office of
/// entry declared, 8 a destination office of destination only, 16 a second
/// destination office en route (goods unloaded there), 32 two seals, 64 no
/// vehicle, 128 other goods.
pub fn declaration(template: u8, variant: u8) -> Value {
    let itinerary = pick(&ITINERARIES, template);
    let bit = |b: u8| variant & b != 0;
    let first = itinerary[0];
    let last = itinerary[itinerary.len() - 1];
    let mut offices =
        vec![json!({"code": format!("{first}{}", if bit(1) { "000200" } else { "000100" }), "role": "departure"})];
    let countries: Vec<Country> = itinerary.iter().map(|c| country(c)).collect();
    if !bit(4) {
        for op in tir_model::operation::plan(&countries).unwrap_or_default().iter().skip(1) {
            let entry = op.countries()[0].as_str();
            let suffix = if bit(2) { "000300" } else { "000100" };
            let office = json!({"code": format!("{entry}{suffix}"), "role": "entry"});
            // Back into a territory: its office of entry is declared once.
            if !offices.contains(&office) {
                offices.push(office);
            }
        }
    }
    if bit(16) && itinerary.len() > 2 {
        offices.push(json!({"code": format!("{}000500", itinerary[1]), "role": "destination"}));
    }
    offices.push(json!({"code": format!("{last}{}", if bit(8) { "000500" } else { "000100" }), "role": "destination"}));
    let seals: &[&str] = if bit(32) { &["S-1", "S-2"] } else { &["S-1"] };
    let goods = if bit(128) {
        json!({"hs_code": "847130", "description": "Laptop computers", "gross_mass_kg": 0.1 + 0.2})
    } else {
        json!({"hs_code": "870323", "description": "Passenger cars", "packages": 4, "gross_mass_kg": 6200.0,
               "value": {"amount": 88000.5, "currency": "EUR"}})
    };
    let mut d = json!({
        "itinerary": itinerary,
        "offices": offices,
        "vehicle": {"registration": "34ABC123", "country": first},
        "seals": seals,
        "consignments": [{
            "consignor": {"name": "Exporter", "country": first},
            "consignee": {"name": "Importer", "country": last},
            "goods": [goods]
        }]
    });
    if bit(64) {
        d.as_object_mut().expect("an object").remove("vehicle");
    }
    d
}

/// What a run did, for the fuzz target's and the proptests' own checks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub accepted: usize,
    pub refused: usize,
    /// Bodies the parser refused before the state machine.
    pub not_parsed: usize,
    pub released: usize,
}

/// The guarantees as the store would hold them, and the clock.
pub struct Run {
    world: World,
    guarantees: HashMap<String, Guarantee>,
    now: i64,
    pub summary: Summary,
}

impl Default for Run {
    fn default() -> Self {
        Run::new()
    }
}

impl Run {
    pub fn new() -> Run {
        Run { world: World::new(), guarantees: HashMap::new(), now: START_MS, summary: Summary::default() }
    }

    /// The sender and the body of `action`, given the guarantees so far.
    pub fn message(&self, a: &Action) -> (Party, Value) {
        let kind = pick(&MessageType::ALL, a.kind);
        let reference = pick(&REFERENCES, a.reference);
        let country_code = pick(&COUNTRIES, a.country);
        let office = format!("{country_code}{}", pick(&OFFICE_KINDS, a.office).0);
        let current = self.guarantees.get(reference);
        let bit = |b: u8| a.variant & b != 0;
        let seals = match a.variant % 4 {
            0 => None,
            1 => Some(json!(["S-1"])),
            2 => Some(json!(["S-2", "S-1"])),
            _ => Some(json!(["X-9", "X-9"])),
        };
        let controls = json!([{"type": "seal_check", "result": if bit(8) { "irregularity" } else { "satisfactory" }}]);
        let mut fields = json!({});
        let f = fields.as_object_mut().expect("an object");
        match kind {
            MessageType::E1 => {
                f.insert("holder".into(), json!(pick(&HOLDERS, a.variant)));
                match (a.variant >> 2) % 3 {
                    0 => {}
                    1 => {
                        f.insert("valid_until".into(), json!("2099-12-31"));
                    }
                    _ => {
                        f.insert("valid_until".into(), json!("2026-11-27"));
                    }
                }
            }
            MessageType::E3 | MessageType::E13 => {
                f.insert("reason".into(), json!("trip cancelled"));
            }
            MessageType::E9 => {
                f.insert("declaration".into(), declaration(a.declaration, a.variant));
            }
            MessageType::E11 => {
                f.insert("declaration".into(), declaration(a.declaration, a.variant & 0x7f));
                if bit(128) {
                    f.insert("country".into(), json!(country_code));
                }
            }
            MessageType::I1 | MessageType::I13 => {
                f.insert("office".into(), json!(office));
            }
            MessageType::I7 => {
                f.insert("office".into(), json!(office));
                if bit(1) {
                    f.insert("declaration".into(), declaration(a.declaration, a.variant >> 1));
                }
            }
            MessageType::I9 | MessageType::I11 => {
                f.insert("office".into(), json!(office));
                if let Some(seals) = seals {
                    f.insert("seals".into(), seals);
                }
                if kind == MessageType::I9 && bit(4) {
                    f.insert("operation_id".into(), json!(format!("OP-{}", (a.variant >> 5) % 3)));
                }
                if kind == MessageType::I11 && bit(16) {
                    f.insert("reservations".into(), json!(["seal scratched"]));
                }
                if bit(32) {
                    f.insert("controls".into(), controls);
                }
            }
            MessageType::I17 => {
                f.insert("office".into(), json!(office));
                f.insert("reason".into(), json!("load not as declared"));
                if bit(32) {
                    f.insert("controls".into(), controls);
                }
            }
            MessageType::X1 => {
                let kinds = ["seals_broken", "transhipment", "accident", "goods_missing", "other"];
                let incident = pick(&kinds, a.variant);
                f.insert("office".into(), json!(office));
                f.insert("kind".into(), json!(incident));
                f.insert("description".into(), json!("what happened"));
                // A new vehicle comes with a transhipment (else 107); without it, 101.
                if incident == "transhipment" && !bit(64) {
                    f.insert("new_vehicle".into(), json!({"registration": "NEW-1", "country": country_code}));
                }
                if bit(128) {
                    f.insert("new_seals".into(), json!(["N-1"]));
                }
            }
        }
        let mut body = json!({"message_id": "m-1", "type": kind.as_str(), "guarantee_reference": reference});
        body.as_object_mut().expect("an object").extend(fields.as_object().expect("an object").clone());

        let chain = current.map_or(CHAINS[0], |g| if g.chain == CHAINS[0] { CHAINS[0] } else { CHAINS[1] });
        let holder = current.map_or(HOLDERS[0].to_owned(), |g| g.holder.as_str().to_owned());
        let natural = match kind.sender() {
            tir_model::party::PartyKind::GuaranteeChain => Party::GuaranteeChain { id: chain.to_owned() },
            tir_model::party::PartyKind::Holder => holder_party(&holder),
            _ => customs(country_code),
        };
        let sender = match a.sender % 8 {
            0..=3 => natural,
            4 => Party::GuaranteeChain { id: if chain == CHAINS[0] { CHAINS[1] } else { CHAINS[0] }.to_owned() },
            5 => holder_party(if holder == HOLDERS[0] { HOLDERS[1] } else { HOLDERS[0] }),
            6 => customs(pick(&COUNTRIES, a.country.wrapping_add(1))),
            _ => Party::Admin,
        };
        (sender, body)
    }

    /// Sends `action`: builds its body, parses it as the server does, applies
    /// it, checks every invariant and keeps the guarantee it leaves.
    pub fn step(&mut self, action: &Action) {
        self.now += MINUTE_MS * i64::from(action.minutes.max(1));
        let now = Timestamp::from_unix_ms(self.now);
        let (sender, body) = self.message(action);
        let bytes = serde_json::to_vec(&body).expect("bodies serialize");
        let request = match parse_request(&bytes) {
            Ok(request) => request,
            Err(e) => {
                assert!(PARSE_CODES.contains(&e.code.number()), "the parser answered {} for {body}", e.code.number());
                self.summary.not_parsed += 1;
                return;
            }
        };
        let reference = request.guarantee_reference.as_str().to_owned();
        let before = self.guarantees.get(&reference).cloned();
        let result = exchange::apply(&self.world, &sender, &request, before.as_ref(), now);
        // Pure: the same message on the same guarantee decides the same.
        let again = exchange::apply(&self.world, &sender, &request, before.as_ref(), now);
        assert_eq!(result, again, "apply decided twice differently");
        match result {
            Ok(outcome) => {
                check_accepted(before.as_ref(), &sender, &request, &outcome, now);
                if outcome.guarantee.state == GuaranteeState::Released
                    && before.as_ref().is_some_and(|b| b.state != GuaranteeState::Released)
                {
                    self.summary.released += 1;
                }
                self.summary.accepted += 1;
                self.guarantees.insert(reference, outcome.guarantee);
            }
            Err(error) => {
                check_refused(before.as_ref(), &sender, &request, &body, &error);
                // A refusal leaves the guarantee as it was: the store keeps `before`.
                assert_eq!(self.guarantees.get(&reference), before.as_ref());
                self.summary.refused += 1;
            }
        }
    }
}

fn holder_party(raw: &str) -> Party {
    Party::Holder { id: format!("holder {raw}"), tir_id: TirId::parse(raw).expect("a TIR id") }
}

fn customs(code: &str) -> Party {
    Party::Customs { id: format!("customs {code}"), country: country(code) }
}

/// Runs the first `prefix` messages of `happy_path(template)`, then `actions`.
pub fn run(template: u8, prefix: u8, actions: &[Action]) -> Summary {
    let mut run = Run::new();
    let path = happy_path(template);
    let prefix = usize::from(prefix) % (path.len() + 1);
    for action in path[..prefix].iter().chain(actions) {
        run.step(action);
    }
    run.summary
}

/// Codes the state machine never answers: the HTTP layer's, the store's, the parser's 100.
const NOT_FROM_APPLY: [u16; 8] = [100, 183, 184, 299, 381, 386, 390, 400];

fn check_refused(before: Option<&Guarantee>, sender: &Party, request: &Request, body: &Value, error: &EtirError) {
    let code = error.code.number();
    assert!(!NOT_FROM_APPLY.contains(&code), "apply answered {code}");
    if let Some(detail) = &error.detail {
        assert!(detail.chars().count() <= DETAIL_CHARS_MAX, "a detail of {} characters", detail.chars().count());
    }
    // The pointer names a field of the message, or one it lacks (101, and 307 for I7's declaration).
    if !(code == 307 && error.pointer == "/declaration") {
        check_error_points_into(body, error);
    }
    // The contract's order of the first checks.
    let wrong_kind = request.kind.sender() != sender.kind();
    let expected = match (request.kind, before) {
        (MessageType::E1, _) if wrong_kind => Some(380),
        (MessageType::E1, Some(_)) => Some(204),
        (MessageType::E1, None) => None,
        (_, None) => Some(301),
        (_, Some(_)) if wrong_kind => Some(380),
        (_, Some(g)) => match sender {
            Party::GuaranteeChain { id } if *id != g.chain => Some(331),
            Party::Holder { tir_id, .. } if *tir_id != g.holder => Some(320),
            _ => None,
        },
    };
    if let Some(expected) = expected {
        assert_eq!(code, expected, "{} from {:?}: {:?}", request.kind.as_str(), sender.kind(), error);
    }
    if let (MessageType::E3, Some(g), None) = (request.kind, before, expected) {
        match g.state {
            GuaranteeState::Cancelled => assert_eq!(code, 205),
            GuaranteeState::Released => assert_eq!(code, 203),
            _ => {}
        }
    }
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

fn state_may_follow(before: Option<GuaranteeState>, after: GuaranteeState, kind: MessageType) -> bool {
    use GuaranteeState::*;
    match (before, after) {
        (None, Registered) => kind == MessageType::E1,
        (Some(b), a) if b == a => true,
        (Some(Registered), Accepted) => kind == MessageType::I1,
        (Some(Registered | Accepted), Cancelled) => kind == MessageType::E3,
        (Some(Accepted), Released) => matches!(kind, MessageType::I13 | MessageType::I17),
        _ => false,
    }
}

fn operation_may_follow(before: OperationState, after: OperationState, kind: MessageType) -> bool {
    use OperationState::*;
    before == after
        || matches!(
            (before, after, kind),
            (Pending, Started, MessageType::I9)
                | (Started, Terminated, MessageType::I11)
                | (Terminated, Discharged, MessageType::I13)
                | (Pending, Refused, MessageType::I17)
        )
}

/// What holds of every guarantee the state machine leaves.
pub fn check_guarantee(g: &Guarantee) {
    use OperationState::*;
    let ops = &g.operations;
    match &g.declaration {
        None => {
            assert!(ops.is_empty(), "operations without a recorded declaration");
            assert_eq!(g.declaration_version, 0);
            assert!(g.superseded.is_empty() && g.amendment.is_none());
        }
        Some(d) => {
            assert_eq!(g.declaration_version as usize, g.superseded.len() + 1, "versions");
            let plan = d.operations();
            assert_eq!(plan.len(), ops.len(), "one operation per territory of the recorded itinerary");
            for (i, (op, planned)) in ops.iter().zip(&plan).enumerate() {
                assert_eq!(usize::from(op.sequence), i + 1);
                assert!(op.territory == planned.territory(), "operation {} in another territory", op.sequence);
                assert_eq!(op.countries, planned.countries(), "operation {}'s countries", op.sequence);
            }
        }
    }
    // Operations go in order: one begins once the previous one is terminated.
    for pair in ops.windows(2) {
        if pair[1].state != Pending {
            assert!(
                matches!(pair[0].state, Terminated | Discharged),
                "operation {} is {:?} while {} is {:?}",
                pair[1].sequence,
                pair[1].state,
                pair[0].sequence,
                pair[0].state
            );
        }
    }
    assert!(ops.iter().filter(|op| op.state == Started).count() <= 1, "two operations open");
    for op in ops {
        assert_eq!(op.started_at.is_some(), matches!(op.state, Started | Terminated | Discharged), "{op:?}");
        assert_eq!(op.terminated_by.is_some(), matches!(op.state, Terminated | Discharged), "{op:?}");
        assert_eq!(op.discharged_at.is_some(), op.state == Discharged, "{op:?}");
        assert_eq!(op.refusal_reason.is_some(), op.state == Refused, "{op:?}");
        if let Some(by) = &op.terminated_by {
            assert!(op.includes(by.country()), "operation {} terminated outside its territory", op.sequence);
        }
    }
    if let Some(amendment) = &g.amendment {
        assert!(
            ops.iter().any(|op| op.state == Started && op.includes(amendment.country)),
            "an amendment waits in {} where no operation is started",
            amendment.country
        );
    }
    assert!(g.amendments_requested as usize <= tir_model::limits::AMENDMENTS_MAX);
    // The release rule: released exactly when the transport is over.
    match g.state {
        GuaranteeState::Registered => {
            assert!(g.declaration.is_none() && g.accepted_by.is_none(), "recorded or accepted while registered")
        }
        GuaranteeState::Accepted => {
            assert!(!finished(ops), "finished but not released: {ops:?}");
            assert!(g.accepted_by.is_some());
        }
        GuaranteeState::Released => {
            assert!(finished(ops), "released early: {ops:?}");
            assert!(g.accepted_by.is_some());
        }
        GuaranteeState::Cancelled => assert!(g.cancellation_reason.is_some()),
    }
    assert_eq!(g.transport_finished(), finished(ops), "transport_finished disagrees");
    if g.seals.is_none() {
        assert!(ops.iter().all(|op| op.state == Pending || op.state == Refused), "started without recording seals");
    }
}

fn check_accepted(before: Option<&Guarantee>, sender: &Party, request: &Request, outcome: &Outcome, now: Timestamp) {
    let after = &outcome.guarantee;
    let kind = request.kind;
    assert!(
        state_may_follow(before.map(|g| g.state), after.state, kind),
        "{} moved the guarantee {:?} -> {:?}",
        kind.as_str(),
        before.map(|g| g.state),
        after.state
    );
    assert_eq!(kind.sender(), sender.kind(), "{} accepted from {:?}", kind.as_str(), sender.kind());
    check_guarantee(after);
    match before {
        None => {
            assert_eq!(kind, MessageType::E1);
            assert_eq!(after.reference, request.guarantee_reference);
            assert_eq!(after.chain, sender.id());
        }
        Some(b) => {
            assert_ne!(kind, MessageType::E1, "E1 on a registered guarantee");
            assert_eq!((&after.reference, &after.holder, &after.chain), (&b.reference, &b.holder, &b.chain));
            assert_eq!(after.registered_at, b.registered_at);
            check_transition(b, after, kind);
        }
    }
    // What the message tells the timeline and the feeds.
    assert!(!outcome.events.is_empty(), "an accepted message leaves an event");
    for event in &outcome.events {
        assert_eq!((event.at, event.message_type.as_str(), event.party.as_str()), (now, kind.as_str(), sender.id()));
    }
    for n in &outcome.notifications {
        assert!(!n.recipients.is_empty(), "a notification without a feed");
        assert_eq!((n.message_type, n.at), (kind, now));
        assert!(n.guarantee_state == after.state || before.is_some_and(|b| b.state == n.guarantee_state));
        for recipient in &n.recipients {
            match recipient {
                Recipient::Chain(id) => assert_eq!(id, &after.chain, "E7 to another chain"),
                Recipient::Customs(c) => assert!(
                    after.on_itinerary(*c) || before.is_some_and(|b| b.on_itinerary(*c)),
                    "{c} is off the itinerary"
                ),
                Recipient::Holder(id) => panic!("a notification to holder {id}"),
            }
        }
        let payload: Value = serde_json::from_str(&view::notification_view(n, after)).expect("a JSON payload");
        assert!(payload["event"].is_string(), "{payload}");
    }
    // Its views render, and the guarantee reads back from its stored JSON as itself.
    let _: Value = serde_json::from_str(&view::guarantee_view(after)).expect("the guarantee view is JSON");
    let _: Value = serde_json::from_str(&view::response_view(request, after)).expect("the response is JSON");
    for version in 0..=after.declaration_version + 1 {
        if let Some(text) = view::declaration_view(after, Some(version)) {
            let _: Value = serde_json::from_str(&text).expect("the declaration view is JSON");
        } else {
            assert!(version == 0 || version > after.declaration_version, "version {version} missing");
        }
    }
    let stored = serde_json::to_string(after).expect("guarantees serialize");
    let read: Guarantee = serde_json::from_str(&stored).expect("a stored guarantee reads back");
    assert_eq!(&read, after, "a stored guarantee reads back as another");
}

/// How one accepted message may move the guarantee `b` to `a`.
fn check_transition(b: &Guarantee, a: &Guarantee, kind: MessageType) {
    if matches!(b.state, GuaranteeState::Cancelled | GuaranteeState::Released) {
        assert_eq!(
            a.current_declaration(),
            b.current_declaration(),
            "{} changed a closed guarantee's declaration",
            kind.as_str()
        );
        for (ob, oa) in b.operations.iter().zip(&a.operations) {
            assert!(
                !(ob.state == OperationState::Pending && oa.state != OperationState::Pending),
                "{} began operation {} on a {} guarantee",
                kind.as_str(),
                oa.sequence,
                b.state.as_str()
            );
        }
    }
    assert!(a.amendments_requested >= b.amendments_requested);
    if a.amendments_requested > b.amendments_requested {
        assert_eq!((kind, a.amendments_requested), (MessageType::E11, b.amendments_requested + 1));
    }
    if a.declaration_version != b.declaration_version {
        assert_eq!(kind, MessageType::I7, "the declaration's version moved on {}", kind.as_str());
        assert_eq!(a.declaration_version, b.declaration_version + 1);
        if b.declaration_version > 0 {
            // An amendment keeps what has begun and plans the rest again.
            for (ob, oa) in b.operations.iter().zip(&a.operations).filter(|(ob, _)| ob.state != OperationState::Pending)
            {
                assert_eq!((ob.sequence, ob.state), (oa.sequence, oa.state), "an amendment changed a begun operation");
            }
        }
        return;
    }
    assert_eq!(b.operations.len(), a.operations.len(), "{} changed the number of operations", kind.as_str());
    let mut moved = 0;
    for (ob, oa) in b.operations.iter().zip(&a.operations) {
        assert!(
            operation_may_follow(ob.state, oa.state, kind),
            "{} moved operation {} {:?} -> {:?}",
            kind.as_str(),
            oa.sequence,
            ob.state,
            oa.state
        );
        moved += usize::from(ob.state != oa.state);
    }
    assert!(moved <= 1, "{} moved {moved} operations", kind.as_str());
}
