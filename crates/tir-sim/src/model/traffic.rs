//! What transports look like: a seeded stream of them on a world, each with
//! its itinerary, offices, seals, goods (HS 2022 codes, masses, values), the
//! reservations customs record and, for a configurable share, the ground
//! truth of an irregularity.

use std::sync::Arc;

use serde_json::{Value, json};
use tir_model::operation::{self, PlannedOperation};
use tir_model::party::{Office, OfficeRole};
use tir_model::{Country, HsCode, OfficeCode, TirId};

use super::goods::{Catalog, ChapterCodes, MISDECLARATIONS, VALUE_SIGMA};
use super::names::trader;
use super::rng::{Cumulative, Rng, mix};
use super::truth::{RiskPatterns, RiskTruth};
use super::world::{Profile, World, digits};

const RESERVATIONS: [&str; 8] = [
    "seal damaged on arrival",
    "one package missing",
    "tarpaulin torn, no sign of removal",
    "gross mass differs from the declaration by more than 5%",
    "goods do not match the description",
    "load shifted, packages damaged",
    "excess packages found",
    "vehicle arrived outside the prescribed time limit",
];

pub(super) const USD_PER_EUR: f64 = 1.08;

/// The ground truth of an irregular transport, for a risk engine to learn.
#[derive(Debug, Clone, PartialEq)]
pub enum Irregularity {
    /// Every goods line declared at `factor` (0.05 to 0.25) of a normal value per kg.
    Undervaluation { factor: f64 },
    /// The first goods line is described as `actual` goods but coded `declared`
    /// (another chapter), its value per kg that of the declared chapter.
    MisdeclaredHs { actual: HsCode, declared: HsCode },
    /// An itinerary no corridor runs: `extra_countries` more than the shortest path.
    RoutePattern { extra_countries: usize },
}

impl Irregularity {
    pub const KINDS: [&'static str; 3] = ["undervaluation", "misdeclared_hs", "route_pattern"];

    pub fn kind(&self) -> &'static str {
        match self {
            Irregularity::Undervaluation { .. } => Self::KINDS[0],
            Irregularity::MisdeclaredHs { .. } => Self::KINDS[1],
            Irregularity::RoutePattern { .. } => Self::KINDS[2],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    Undervaluation,
    MisdeclaredHs,
    RoutePattern,
}

/// Relative frequency of each kind among irregular transports.
const IRREGULARITY_MIX: [(Planned, f64); 3] =
    [(Planned::Undervaluation, 0.40), (Planned::MisdeclaredHs, 0.35), (Planned::RoutePattern, 0.25)];

/// A control customs report in I9, I11 or I17 (binding v2's `controls`).
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    /// `documentary`, `seal_check`, `physical`, `scanner` or `sampling`.
    pub kind: &'static str,
    /// `satisfactory` or `irregularity`.
    pub result: &'static str,
    pub remarks: Option<String>,
}

impl Control {
    pub fn to_json(&self) -> Value {
        let mut control = json!({"type": self.kind, "result": self.result});
        if let Some(remarks) = &self.remarks {
            control["remarks"] = json!(remarks);
        }
        control
    }
}

/// An incident en route (X1) on a started operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// The office reporting it: any office of a country of the operation.
    pub office: OfficeCode,
    /// `seals_broken`, `accident` or `other` (the simulator keeps the vehicle).
    pub kind: &'static str,
    pub description: String,
    /// Seals customs affixed after the incident; they become the recorded seals.
    pub new_seals: Option<Vec<String>>,
}

/// How one TIR operation of a transport is played.
#[derive(Debug, Clone, PartialEq)]
pub enum Play {
    /// Started (I9), perhaps an incident (X1), terminated (I11), discharged (I13).
    Run(Box<Run>),
    /// Refused at its office of entry (I17); never the first operation.
    Refused { office: OfficeCode, reason: String, controls: Vec<Control> },
    /// After a refused operation: never starts.
    NotStarted,
}

/// An operation that runs from start to discharge.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The customs' own id, MRN-like: year, country of the start, 14 digits.
    pub operation_id: String,
    /// Of departure for the first operation, of entry for a later one.
    pub start: OfficeCode,
    /// The seals customs report at the start, in another order than recorded
    /// (compared as sets); a different set is a seal finding.
    pub start_seals: Vec<String>,
    pub start_controls: Vec<Control>,
    pub incident: Option<Incident>,
    /// Of exit, the other side of the next operation's office of entry; of
    /// destination for the last operation. Its country's customs discharge (I13).
    pub end: OfficeCode,
    /// The seals customs report at termination: the recorded ones.
    pub end_seals: Vec<String>,
    pub reservations: Vec<String>,
    pub end_controls: Vec<Control>,
    /// The seals reported at the start differ from the recorded ones.
    pub seal_finding: bool,
}

/// One TIR operation of a transport (binding v2: one per TIR territory).
#[derive(Debug, Clone, PartialEq)]
pub struct TransportOperation {
    pub sequence: u16,
    pub countries: Vec<Country>,
    pub play: Play,
}

impl TransportOperation {
    pub fn run(&self) -> Option<&Run> {
        match &self.play {
            Play::Run(run) => Some(run),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transport {
    pub index: u64,
    /// The guarantee reference.
    pub reference: String,
    pub holder: TirId,
    pub profile: Profile,
    /// Index into `World::chains`.
    pub chain: usize,
    /// The countries in the order travelled.
    pub countries: Vec<Country>,
    /// One per TIR territory crossed, as `tir_model::operation::plan` derives them.
    pub operations: Vec<TransportOperation>,
    /// The declared seals.
    pub seals: Vec<String>,
    /// As the contract's "Declaration" section.
    pub declaration: Value,
    pub irregularity: Option<Irregularity>,
    /// Never sent: whether it smuggles, and the revenue at stake (`truth`);
    /// smuggled sensitive goods are already undervalued in `declaration`.
    pub truth: RiskTruth,
}

impl Transport {
    pub fn itinerary(&self) -> Vec<Country> {
        self.countries.clone()
    }

    /// The office of departure: where the guarantee is accepted (I1), the
    /// declaration recorded (I7) and the first operation started.
    pub fn departure(&self) -> &OfficeCode {
        match &self.operations[0].play {
            Play::Run(run) => &run.start,
            _ => unreachable!("the first operation is never refused"),
        }
    }
}

/// Transports in one run: a reference's last six digits are the transport's index.
pub const TRANSPORTS_MAX: u64 = 1_000_000;

/// What begins every reference of a run: two letters of which one is `X` and
/// a 3-digit series from 100 to 999 (`XH123`), so that a reference is the tag
/// and the transport's index in six digits, `XH123000042`, which is binding
/// v2's format. Runs with different tags never share a reference; there are
/// `RunTag::COUNT` of them (51 letter pairs by 900 series).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunTag(u32);

impl RunTag {
    /// `X` then A to Z, or A to Z but `X` then `X`.
    const LETTER_PAIRS: u32 = 26 + 25;
    const SERIES: u32 = 900;
    pub const COUNT: u32 = Self::LETTER_PAIRS * Self::SERIES;

    /// The `n`th tag, `n` below `COUNT`.
    pub fn new(n: u32) -> Option<RunTag> {
        (n < Self::COUNT).then_some(RunTag(n))
    }

    /// A tag chosen by a hash (of a seed, a clock).
    pub fn from_hash(h: u64) -> RunTag {
        RunTag((h % u64::from(Self::COUNT)) as u32)
    }

    /// The tag after this one, wrapping around after the last.
    pub fn next(self) -> RunTag {
        RunTag((self.0 + 1) % Self::COUNT)
    }

    pub fn number(self) -> u32 {
        self.0
    }

    fn letters(self) -> [u8; 2] {
        let pair = (self.0 / Self::SERIES) as u8;
        if pair < 26 {
            [b'X', b'A' + pair]
        } else {
            // 0..25 over the letters other than X (the 24th).
            let k = pair - 26;
            [b'A' + k + u8::from(k >= 23), b'X']
        }
    }

    fn series(self) -> u32 {
        100 + self.0 % Self::SERIES
    }

    /// Transport `index`'s reference. Panics when `index` is `TRANSPORTS_MAX` or more.
    pub fn reference(self, index: u64) -> String {
        assert!(index < TRANSPORTS_MAX, "transport {index}: a run has at most {TRANSPORTS_MAX} transports");
        format!("{self}{index:06}")
    }
}

impl std::fmt::Display for RunTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b] = self.letters();
        write!(f, "{}{}{}", char::from(a), char::from(b), self.series())
    }
}

/// A reproducible stream of transports: transport `i` depends only on the
/// world, the seed, the tag and `i`.
#[derive(Debug, Clone)]
pub struct Traffic {
    world: Arc<World>,
    seed: u64,
    tag: RunTag,
    holders: Cumulative,
    irregular: Vec<f64>,
    patterns: Arc<RiskPatterns>,
}

impl Traffic {
    /// `irregular_share` (0 to 1) is the expected share of irregular
    /// transports; fraudsters carry most of it.
    pub fn new(world: Arc<World>, seed: u64, irregular_share: f64) -> Traffic {
        let activity: Vec<f64> = world.holders.iter().map(|h| h.activity).collect();
        let propensity: Vec<f64> = world.holders.iter().map(|h| h.profile.irregular_weight()).collect();
        let irregular = irregular_chances(&activity, &propensity, irregular_share);
        Traffic {
            holders: Cumulative::new(activity),
            tag: RunTag::from_hash(mix(seed, 0x0052_4546)),
            patterns: Arc::new(RiskPatterns::new(&world, seed)),
            world,
            seed,
            irregular,
        }
    }

    /// Begins every reference with `tag` instead of the one the seed picks,
    /// so that one seed can be played twice against the same server.
    pub fn with_tag(mut self, tag: RunTag) -> Traffic {
        self.tag = tag;
        self
    }

    pub fn tag(&self) -> RunTag {
        self.tag
    }

    /// Moves the drift of the risk patterns to transport `index` (default
    /// `truth::DEFAULT_DRIFT_AT`); a run sets it to its middle.
    pub fn with_drift_at(mut self, index: u64) -> Traffic {
        self.patterns = Arc::new(RiskPatterns::clone(&self.patterns).with_drift_at(index));
        self
    }

    pub fn risk_patterns(&self) -> &RiskPatterns {
        &self.patterns
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The chance that a transport of holder `holder` (index) is irregular.
    pub fn irregular_chance(&self, holder: usize) -> f64 {
        self.irregular[holder]
    }

    /// Transports 0 to `TRANSPORTS_MAX - 1`.
    pub fn iter(&self) -> impl Iterator<Item = Transport> + '_ {
        (0..TRANSPORTS_MAX).map(|i| self.transport(i))
    }

    /// Transport `index`, below `TRANSPORTS_MAX` (panics otherwise).
    pub fn transport(&self, index: u64) -> Transport {
        let reference = self.tag.reference(index);
        let world = &*self.world;
        let mut rng = Rng::keyed(self.seed, index);
        let h = self.holders.sample(&mut rng);
        let holder = &world.holders[h];
        let home = holder.record.country;
        let kind =
            rng.chance(self.irregular[h]).then(|| IRREGULARITY_MIX[rng.weighted(&IRREGULARITY_MIX.map(|(_, w)| w))].0);

        let (itinerary, extra) = match kind {
            Some(Planned::RoutePattern) => {
                let (path, extra) = world.detour_trip(home, &mut rng);
                (path, Some(extra))
            }
            _ => (world.corridor_trip(home, &mut rng), None),
        };
        let planned = operation::plan(&itinerary).expect("the world draws TIR transports only");
        let roles = roles(itinerary.len(), &mut rng);
        let route = Route::draw(world, &itinerary, &planned, &roles, &mut rng);

        let mut seals: Vec<String> = Vec::new();
        let seal_count = 1 + rng.weighted(&[60.0, 30.0, 10.0]);
        while seals.len() < seal_count {
            let seal = format!("{}{}", itinerary[0].as_str(), digits(&mut rng, 7));
            if !seals.contains(&seal) {
                seals.push(seal);
            }
        }

        let mut goods =
            GoodsDraw { catalog: &world.catalog, usd: rng.chance(0.3), value_factor: 1.0, misdeclared: None, lines: 0 };
        let irregularity = match kind {
            Some(Planned::Undervaluation) => {
                goods.value_factor = rng.uniform(0.05, 0.25);
                Some(Irregularity::Undervaluation { factor: goods.value_factor })
            }
            Some(Planned::MisdeclaredHs) => {
                let (actual, declared) = *rng.pick(&MISDECLARATIONS);
                let (actual, declared) = (world.catalog.chapter(actual), world.catalog.chapter(declared));
                let pair = (actual.draw_code(&mut rng), declared.draw_code(&mut rng));
                goods.misdeclared = Some((actual, declared, pair.0, pair.1));
                Some(Irregularity::MisdeclaredHs { actual: pair.0, declared: pair.1 })
            }
            Some(Planned::RoutePattern) => Some(Irregularity::RoutePattern { extra_countries: extra.unwrap_or(1) }),
            None => None,
        };
        let consignments = goods.consignments(&route.loading, &route.unloading, &mut rng);
        let offices: Vec<Value> =
            route.declared.iter().map(|(code, role)| json!({"code": code.as_str(), "role": role.as_str()})).collect();
        let mut declaration = json!({
            "itinerary": itinerary.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "offices": offices,
            "vehicle": {"registration": rng.pick(&holder.fleet), "country": home.as_str()},
            "seals": seals,
            "consignments": consignments,
        });
        let conduct = Conduct {
            reservation_chance: holder.profile.reservation_chance() + if kind.is_some() { 0.10 } else { 0.0 },
            irregular: kind.is_some(),
        };
        let operations = conduct.operations(world, &planned, &route, &seals, &mut rng);
        let truth = self.patterns.draw(&world.catalog, self.seed, index, h, irregularity.as_ref(), &mut declaration);
        Transport {
            index,
            reference,
            holder: holder.record.tir_id.clone(),
            profile: holder.profile,
            chain: holder.chain,
            countries: itinerary,
            operations,
            seals,
            declaration,
            irregularity,
            truth,
        }
    }
}

/// Where a transport goes through: each operation's offices of start and end
/// (exit of one and entry of the next are the two sides of one crossing),
/// and the offices its declaration names.
struct Route {
    /// (start, end) of each planned operation.
    ends: Vec<(OfficeCode, OfficeCode)>,
    /// In itinerary order, each office once.
    declared: Vec<(OfficeCode, OfficeRole)>,
    loading: Vec<Country>,
    unloading: Vec<Country>,
}

impl Route {
    fn draw(
        world: &World,
        itinerary: &[Country],
        planned: &[PlannedOperation],
        roles: &[OfficeRole],
        rng: &mut Rng,
    ) -> Route {
        let last = itinerary.len() - 1;
        let departure = random_office(world, itinerary, 0, None, rng);
        let mut starts = vec![departure.clone()];
        let mut ends = Vec::new();
        for pair in planned.windows(2) {
            let from = *pair[0].countries().last().expect("an operation has a country");
            let (exit, entry) = world.crossing(from, pair[1].countries()[0], rng);
            ends.push(exit);
            starts.push(entry);
        }
        // The destination office, away from the border when the country has another office.
        let last_entry = (planned.len() > 1 && planned[planned.len() - 1].countries().len() == 1)
            .then(|| starts[starts.len() - 1].clone());
        let destination = random_office(world, itinerary, last, last_entry.as_ref(), rng);
        ends.push(destination.clone());

        // (itinerary index, office, role): departure, the entries, destination,
        // and a loading or unloading place en route as `roles` says.
        let mut declared: Vec<(usize, OfficeCode, OfficeRole)> = vec![(0, departure, OfficeRole::Departure)];
        let mut at = 0;
        for (k, op) in planned.iter().enumerate() {
            if k > 0 {
                let role = if roles[at] == OfficeRole::Departure { OfficeRole::Departure } else { OfficeRole::Entry };
                declared.push((at, starts[k].clone(), role));
            } else if op.countries().len() > 1 && roles[1] == OfficeRole::Departure {
                declared.push((1, random_office(world, itinerary, 1, None, rng), OfficeRole::Departure));
            }
            at += op.countries().len();
            if k + 1 < planned.len() && roles[at - 1] == OfficeRole::Destination {
                declared.push((at - 1, ends[k].clone(), OfficeRole::Destination));
            } else if k + 1 == planned.len() && at - 1 > 0 && roles[last - 1] == OfficeRole::Destination {
                // Unloading inside the last operation, before its destination.
                if op.countries().len() >= 2 {
                    declared.push((
                        last - 1,
                        random_office(world, itinerary, last - 1, None, rng),
                        OfficeRole::Destination,
                    ));
                }
            }
        }
        declared.push((last, ends[ends.len() - 1].clone(), OfficeRole::Destination));
        // An office met twice (a country with one office) keeps its place of
        // loading or unloading over its role of entry, and is declared once.
        declared.sort_by_key(|(i, _, role)| (*i, *role == OfficeRole::Entry));
        let mut kept: Vec<(usize, OfficeCode, OfficeRole)> = Vec::new();
        for (i, code, role) in declared {
            match kept.iter_mut().find(|(_, c, _)| *c == code) {
                Some(found) if found.2 == OfficeRole::Entry => *found = (found.0, code, role),
                Some(_) => {}
                None => kept.push((i, code, role)),
            }
        }
        let declared = kept;
        let countries_in = |role: OfficeRole| {
            let mut out: Vec<Country> = Vec::new();
            for (i, _, r) in &declared {
                if *r == role && !out.contains(&itinerary[*i]) {
                    out.push(itinerary[*i]);
                }
            }
            out
        };
        let (loading, unloading) = (countries_in(OfficeRole::Departure), countries_in(OfficeRole::Destination));
        Route {
            ends: starts.into_iter().zip(ends).collect(),
            declared: declared.into_iter().map(|(_, code, role)| (code, role)).collect(),
            loading,
            unloading,
        }
    }
}

/// An office of the itinerary's country `at` (one its neighbours on the
/// itinerary allow: `World::trip_offices`), another than `avoid` when there is one.
fn random_office(
    world: &World,
    itinerary: &[Country],
    at: usize,
    avoid: Option<&OfficeCode>,
    rng: &mut Rng,
) -> OfficeCode {
    let next_to: Vec<Country> =
        [at.checked_sub(1), Some(at + 1)].into_iter().flatten().filter_map(|i| itinerary.get(i).copied()).collect();
    let offices = world.trip_offices(itinerary[at], &next_to);
    let others: Vec<&&Office> = offices.iter().filter(|o| Some(&o.code) != avoid).collect();
    if others.is_empty() { rng.pick(&offices).code.clone() } else { rng.pick(&others).code.clone() }
}

const REFUSALS: [&str; 5] = [
    "goods not admitted: import ban on the declared goods",
    "guarantee considered insufficient for the goods carried",
    "seals broken on arrival at the border",
    "vehicle not approved for the transport of goods under customs seal",
    "documents do not match the goods presented",
];

const INCIDENTS: [(&str, &str); 4] = [
    ("seals_broken", "seal broken while the load was checked after a road accident; new seals affixed"),
    ("seals_broken", "seal found torn at a rest stop, reported by the driver; new seals affixed"),
    ("accident", "minor collision, trailer undamaged, load intact"),
    ("other", "vehicle held for a day by a road closure"),
];

/// How customs along the way treat a transport.
struct Conduct {
    reservation_chance: f64,
    irregular: bool,
}

impl Conduct {
    fn operations(
        &self,
        world: &World,
        planned: &[PlannedOperation],
        route: &Route,
        declared_seals: &[String],
        rng: &mut Rng,
    ) -> Vec<TransportOperation> {
        let mut recorded: Vec<String> = declared_seals.to_vec();
        let mut ids: Vec<String> = Vec::new();
        let mut refused = false;
        let mut out = Vec::new();
        for (k, op) in planned.iter().enumerate() {
            let (start, end) = route.ends[k].clone();
            let refuse = k > 0 && rng.chance(if self.irregular { 0.06 } else { 0.01 });
            let play = if refused {
                Play::NotStarted
            } else if refuse {
                refused = true;
                let reason = rng.pick(&REFUSALS).to_string();
                let controls = if rng.chance(0.5) {
                    vec![Control { kind: "physical", result: "irregularity", remarks: Some(reason.clone()) }]
                } else {
                    vec![Control { kind: "documentary", result: "irregularity", remarks: None }]
                };
                Play::Refused { office: start, reason, controls }
            } else {
                Play::Run(Box::new(self.run(world, op, start, end, k, &mut recorded, &mut ids, rng)))
            };
            out.push(TransportOperation { sequence: op.sequence(), countries: op.countries().to_vec(), play });
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        world: &World,
        op: &PlannedOperation,
        start: OfficeCode,
        end: OfficeCode,
        k: usize,
        recorded: &mut Vec<String>,
        ids: &mut Vec<String>,
        rng: &mut Rng,
    ) -> Run {
        let operation_id = loop {
            let id = format!("26{}{}", start.country().as_str(), digits(rng, 14));
            if !ids.contains(&id) {
                ids.push(id.clone());
                break id;
            }
        };
        let mut start_controls = Vec::new();
        // Later starts: now and then the seals found are not the recorded ones.
        let seal_finding = k > 0 && rng.chance(if self.irregular { 0.05 } else { 0.01 });
        if seal_finding {
            let replaced = rng.below(recorded.len() as u64) as usize;
            recorded[replaced] = new_seal(start.country(), recorded, rng);
            start_controls.push(Control {
                kind: "seal_check",
                result: "irregularity",
                remarks: Some(format!("seal {} found in place of the recorded one", recorded[replaced])),
            });
        } else if rng.chance(0.25) {
            start_controls.push(Control { kind: "seal_check", result: "satisfactory", remarks: None });
        }
        if rng.chance(0.10) {
            start_controls.push(Control { kind: "documentary", result: "satisfactory", remarks: None });
        }
        if rng.chance(if self.irregular { 0.20 } else { 0.04 }) {
            let irregularity = rng.chance(if self.irregular { 0.6 } else { 0.1 });
            start_controls.push(if irregularity {
                Control {
                    kind: "physical",
                    result: "irregularity",
                    remarks: Some("goods differ from the declaration; reported to the office of destination".into()),
                }
            } else {
                Control { kind: "physical", result: "satisfactory", remarks: Some("load inspected".into()) }
            });
        }
        // Seals are compared as a set: present them in another order than recorded.
        let start_seals: Vec<String> = recorded.iter().rev().cloned().collect();

        let incident = rng.chance(if self.irregular { 0.02 } else { 0.005 }).then(|| {
            let at = rng.below(op.countries().len() as u64) as usize;
            let country = op.countries()[at];
            let office = random_office(world, op.countries(), at, None, rng);
            // On the Kaliningrad road the operation's own office is the only one nearby.
            let office = [&start, &end]
                .into_iter()
                .find(|o| o.country() == country && !world.trip_offices(country, &[]).iter().any(|x| &x.code == *o))
                .cloned()
                .unwrap_or(office);
            let (kind, description) = *rng.pick(&INCIDENTS);
            let new_seals = (kind == "seals_broken").then(|| {
                let seals: Vec<String> =
                    (0..recorded.len()).map(|_| new_seal(country, recorded, rng)).collect::<Vec<_>>();
                *recorded = seals.clone();
                seals
            });
            Incident { office, kind, description: description.to_owned(), new_seals }
        });

        let reservations = if rng.chance(self.reservation_chance) {
            let mut picked = vec![rng.pick(&RESERVATIONS).to_string()];
            let second = rng.pick(&RESERVATIONS).to_string();
            if rng.chance(0.3) && second != picked[0] {
                picked.push(second);
            }
            picked
        } else {
            Vec::new()
        };
        let end_controls = if rng.chance(0.15) {
            vec![Control { kind: "seal_check", result: "satisfactory", remarks: None }]
        } else {
            Vec::new()
        };
        Run {
            operation_id,
            start,
            start_seals,
            start_controls,
            incident,
            end,
            end_seals: recorded.clone(),
            reservations,
            end_controls,
            seal_finding,
        }
    }
}

/// A seal number of `country`'s customs that is not among `seals`.
fn new_seal(country: Country, seals: &[String], rng: &mut Rng) -> String {
    loop {
        let seal = format!("{}{}", country.as_str(), digits(rng, 7));
        if !seals.contains(&seal) {
            return seal;
        }
    }
}

/// Per-holder chances of an irregular transport, proportional to each
/// profile's propensity and capped at 1, scaled so that the activity-weighted
/// mean is `share` (bisection on the scale).
fn irregular_chances(activity: &[f64], propensity: &[f64], share: f64) -> Vec<f64> {
    let share = share.clamp(0.0, 1.0);
    let total: f64 = activity.iter().sum();
    let at = |scale: f64| propensity.iter().map(|p| (scale * p).min(1.0)).collect::<Vec<_>>();
    let mean = |scale: f64| at(scale).iter().zip(activity).map(|(c, a)| c * a).sum::<f64>() / total;
    let smallest = propensity.iter().copied().fold(f64::INFINITY, f64::min);
    let (mut lo, mut hi) = (0.0, 1.0 / smallest);
    if share >= 1.0 {
        return at(hi);
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mean(mid) < share { lo = mid } else { hi = mid }
    }
    at(0.5 * (lo + hi))
}

/// Roles along the itinerary: departure first, destination last, entry
/// between; sometimes a second loading or unloading place (at most 4
/// departure and destination offices together, Art. 18).
fn roles(len: usize, rng: &mut Rng) -> Vec<OfficeRole> {
    let mut roles = vec![OfficeRole::Entry; len];
    roles[0] = OfficeRole::Departure;
    roles[len - 1] = OfficeRole::Destination;
    if len >= 3 && rng.chance(0.08) {
        roles[1] = OfficeRole::Departure;
    }
    if len >= 3 && rng.chance(0.08) && roles[len - 2] == OfficeRole::Entry {
        roles[len - 2] = OfficeRole::Destination;
    }
    roles
}

struct GoodsDraw<'c> {
    catalog: &'c Catalog,
    usd: bool,
    value_factor: f64,
    /// (actual chapter, declared chapter, actual code, declared code) for the first line.
    misdeclared: Option<(&'c ChapterCodes, &'c ChapterCodes, HsCode, HsCode)>,
    lines: usize,
}

impl<'c> GoodsDraw<'c> {
    /// Consignments from each loading country to each unloading country.
    fn consignments(&mut self, loading: &[Country], unloading: &[Country], rng: &mut Rng) -> Vec<Value> {
        let count = (1 + rng.weighted(&[75.0, 20.0, 5.0])).max(loading.len()).max(unloading.len());
        let lines: Vec<usize> = (0..count).map(|_| 1 + rng.weighted(&[50.0, 22.0, 12.0, 8.0, 5.0, 3.0])).collect();
        let total: usize = lines.iter().sum();
        (0..count)
            .map(|k| {
                let (from, to) = (loading[k % loading.len()], unloading[k % unloading.len()]);
                let mut chapter = self.catalog.draw_chapter(rng);
                if let (0, Some((_, declared, ..))) = (self.lines, self.misdeclared) {
                    // The rest of the load looks like what the false code says.
                    chapter = declared;
                }
                let sector = chapter.profile.sector;
                let mut goods = Vec::new();
                for line in 0..lines[k] {
                    if line > 0 && !rng.chance(0.6) {
                        chapter = self.catalog.draw_chapter(rng);
                    }
                    goods.push(self.line(chapter, total, rng));
                }
                json!({
                    "consignor": {"name": trader(rng, sector, from), "country": from.as_str()},
                    "consignee": {"name": trader(rng, sector, to), "country": to.as_str()},
                    "goods": goods,
                })
            })
            .collect()
    }

    fn line(&mut self, chapter: &'c ChapterCodes, lines_in_truck: usize, rng: &mut Rng) -> Value {
        let first = self.lines == 0;
        self.lines += 1;
        let (mass_chapter, value_chapter, described, coded) = match self.misdeclared {
            Some((actual, declared, a, d)) if first => (actual, declared, a, d),
            _ => {
                let code = chapter.draw_code(rng);
                (chapter, chapter, code, code)
            }
        };
        let p = mass_chapter.profile;
        let mass = rng.lognormal(p.mass_median_kg / lines_in_truck as f64, p.mass_sigma).clamp(1.0, 25_000.0);
        let mass = (mass * 10.0).round() / 10.0;
        let eur = mass * rng.lognormal(value_chapter.profile.value_per_kg_eur, VALUE_SIGMA) * self.value_factor;
        let (amount, currency) = if self.usd { (eur * USD_PER_EUR, "USD") } else { (eur, "EUR") };
        let amount = ((amount * 100.0).round() / 100.0).max(1.0);
        let packages = (mass / p.kg_per_package * rng.uniform(0.8, 1.25)).round().max(1.0) as i64;
        json!({
            "hs_code": coded.as_str(),
            "description": described.description(),
            "packages": packages,
            "gross_mass_kg": mass,
            "value": {"amount": amount, "currency": currency},
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use tir_model::GuaranteeRef;
    use tir_model::declaration::Declaration;
    use tir_model::message::MessageId;
    use tir_model::wire::Obj;

    use super::*;
    use crate::model::script::{Parties, messages};

    fn traffic(seed: u64, share: f64) -> Traffic {
        Traffic::new(Arc::new(World::standard()), seed, share)
    }

    fn parse(declaration: &Value) -> Declaration {
        let obj = Obj::new(declaration, "/declaration").unwrap();
        Declaration::parse(obj).unwrap_or_else(|e| panic!("{e:?}\n{declaration:#}"))
    }

    fn chapter_of(code: &Value) -> u8 {
        HsCode::parse(code.as_str().unwrap()).unwrap().chapter()
    }

    #[test]
    fn the_same_seed_gives_identical_transports() {
        let (a, b) = (traffic(7, 0.05), traffic(7, 0.05));
        let first: Vec<Transport> = a.iter().take(300).collect();
        assert_eq!(first, b.iter().take(300).collect::<Vec<_>>());
        // Transport i does not depend on the ones drawn before it.
        assert_eq!(b.transport(250), first[250]);
        let other: Vec<Transport> = traffic(8, 0.05).iter().take(300).collect();
        assert_ne!(
            first.iter().map(|t| &t.declaration).collect::<Vec<_>>(),
            other.iter().map(|t| &t.declaration).collect::<Vec<_>>()
        );
    }

    #[test]
    fn references_and_message_ids_are_valid_and_unique() {
        let untagged = traffic(7, 0.05);
        let last = RunTag::new(RunTag::COUNT - 1).unwrap();
        assert_ne!(untagged.tag(), last);
        let tagged = traffic(u64::MAX, 0.05).with_tag(last);
        let mut seen = BTreeSet::new();
        for t in tagged.iter().take(500).chain(untagged.iter().take(500)) {
            GuaranteeRef::parse(&t.reference).unwrap();
            assert!(seen.insert(t.reference.clone()), "{} twice", t.reference);
            for (_, m) in messages(&t, &Parties::symbolic(tagged.world())) {
                MessageId::parse(m["message_id"].as_str().unwrap()).unwrap();
            }
        }
        let final_one = tagged.transport(TRANSPORTS_MAX - 1).reference;
        assert_eq!(final_one, "ZX999999999");
        GuaranteeRef::parse(&final_one).unwrap();
        assert_eq!(traffic(7, 0.05).with_tag(RunTag::new(0).unwrap()).transport(42).reference, "XA100000042");
    }

    #[test]
    fn every_run_tag_begins_its_own_valid_references() {
        let mut prefixes = BTreeSet::new();
        for n in 0..RunTag::COUNT {
            let tag = RunTag::new(n).unwrap();
            let prefix = tag.to_string();
            assert_eq!(prefix.len(), 5, "{prefix}");
            for index in [0, 1, TRANSPORTS_MAX - 1] {
                let reference = tag.reference(index);
                assert!(reference.starts_with(&prefix));
                GuaranteeRef::parse(&reference).unwrap_or_else(|e| panic!("{reference}: {e}"));
            }
            assert!(prefixes.insert(prefix), "tag {n} repeats a prefix");
        }
        assert_eq!(RunTag::new(RunTag::COUNT), None);
        assert_eq!(RunTag::new(RunTag::COUNT - 1).unwrap().next(), RunTag::new(0).unwrap());
        // The same seed with two tags: the same transports under other references.
        let (a, b) = (traffic(3, 0.05), traffic(3, 0.05).with_tag(RunTag::from_hash(99)));
        assert_ne!(a.tag(), b.tag());
        let (ta, tb) = (a.transport(5), b.transport(5));
        assert_ne!(ta.reference, tb.reference);
        assert_eq!(ta.declaration, tb.declaration);
    }

    #[test]
    #[should_panic(expected = "at most 1000000 transports")]
    fn a_run_has_at_most_a_million_transports() {
        traffic(7, 0.05).transport(TRANSPORTS_MAX);
    }

    #[test]
    fn every_generated_declaration_is_accepted_by_the_model() {
        let traffic = traffic(11, 0.2);
        for t in traffic.iter().take(2000) {
            let d = parse(&t.declaration);
            assert_eq!(d.itinerary, t.itinerary());
            assert_eq!(d.departure_offices().next(), Some(t.departure()));
            assert!(d.seals_match(&t.seals));
            assert_eq!(d.vehicle.as_ref().unwrap().country, t.holder.country());
        }
    }

    #[test]
    fn every_generated_itinerary_is_a_tir_transport() {
        let mut detours = 0;
        for seed in [1, 7, 11, 2024, u64::MAX] {
            for t in traffic(seed, 0.3).iter().take(3000) {
                let itinerary = t.itinerary();
                if let Err(e) = operation::plan(&itinerary) {
                    panic!("seed {seed}, transport {}: {itinerary:?}: {e}", t.index);
                }
                detours += usize::from(matches!(t.irregularity, Some(Irregularity::RoutePattern { .. })));
            }
        }
        assert!(detours > 500, "{detours} detours");
    }

    #[test]
    fn some_generated_transports_leave_and_reenter_the_union() {
        let reentering = traffic(7, 0.05)
            .iter()
            .take(2000)
            .filter(|t| {
                let operations = operation::plan(&t.itinerary()).unwrap();
                operations.iter().filter(|o| o.territory().is_union()).count() >= 2
            })
            .count();
        assert!(reentering >= 10, "{reentering} of 2000");
    }

    #[test]
    fn ten_thousand_transports_have_the_configured_mix() {
        let share = 0.05;
        let traffic = traffic(2024, share);
        let n = 10_000;
        let mut irregular = BTreeMap::new();
        let mut chapters: BTreeMap<u8, usize> = BTreeMap::new();
        let mut lines = 0;
        let mut lengths = BTreeMap::new();
        let mut with_reservations: BTreeMap<Profile, (usize, usize)> = BTreeMap::new();
        for t in traffic.iter().take(n) {
            let len = t.countries.len();
            assert!((2..=6).contains(&len), "{len}");
            *lengths.entry(len).or_insert(0) += 1;
            if let Some(i) = &t.irregularity {
                *irregular.entry(i.kind()).or_insert(0) += 1;
            } else {
                assert!(traffic.world().on_a_corridor(&t.itinerary()), "{:?}", t.itinerary());
            }
            let counts = with_reservations.entry(t.profile).or_insert((0, 0));
            counts.0 += 1;
            counts.1 += usize::from(t.operations.iter().filter_map(|o| o.run()).any(|r| !r.reservations.is_empty()));
            for c in t.declaration["consignments"].as_array().unwrap() {
                for g in c["goods"].as_array().unwrap() {
                    *chapters.entry(chapter_of(&g["hs_code"])).or_insert(0) += 1;
                    lines += 1;
                }
            }
        }
        let irregular_share = irregular.values().sum::<usize>() as f64 / n as f64;
        assert!((irregular_share - share).abs() <= 0.015, "irregular share {irregular_share}");
        assert_eq!(irregular.len(), 3, "{irregular:?}");
        assert_eq!(lengths.len(), 5, "{lengths:?}");
        let mut shares: Vec<usize> = chapters.values().copied().collect();
        shares.sort_unstable_by(|a, b| b.cmp(a));
        let top5 = shares.iter().take(5).sum::<usize>() as f64 / lines as f64;
        assert!(top5 > 0.40, "top 5 chapters {top5}");
        let rate = |p: Profile| with_reservations[&p].1 as f64 / with_reservations[&p].0 as f64;
        assert!(rate(Profile::Careless) > 3.0 * rate(Profile::Reliable));
    }

    #[test]
    fn fraudsters_carry_most_irregular_transports() {
        let traffic = traffic(5, 0.05);
        let mut by_profile: BTreeMap<Profile, (usize, usize)> = BTreeMap::new();
        for t in traffic.iter().take(5000) {
            let counts = by_profile.entry(t.profile).or_insert((0, 0));
            counts.0 += 1;
            counts.1 += usize::from(t.irregularity.is_some());
        }
        let rate = |p: Profile| by_profile[&p].1 as f64 / by_profile[&p].0 as f64;
        assert!(rate(Profile::Fraudster) > 0.2, "{by_profile:?}");
        assert!(rate(Profile::Reliable) < 0.05, "{by_profile:?}");
    }

    #[test]
    fn irregularities_show_in_the_declarations() {
        let traffic = traffic(9, 0.5);
        let catalog = &traffic.world().catalog;
        let mut seen = BTreeSet::new();
        for t in traffic.iter().take(600) {
            let Some(irregularity) = &t.irregularity else { continue };
            seen.insert(irregularity.kind());
            let consignments = t.declaration["consignments"].as_array().unwrap();
            let first = &consignments[0]["goods"][0];
            match irregularity {
                Irregularity::Undervaluation { factor } => {
                    assert!((0.05..0.25).contains(factor));
                    for g in consignments.iter().flat_map(|c| c["goods"].as_array().unwrap()) {
                        let norm = catalog.chapter(chapter_of(&g["hs_code"])).profile.value_per_kg_eur;
                        let eur = g["value"]["amount"].as_f64().unwrap()
                            / if g["value"]["currency"] == "USD" { USD_PER_EUR } else { 1.0 };
                        let per_kg = eur / g["gross_mass_kg"].as_f64().unwrap();
                        // Well below the norm, allowing for the value spread and the 1.00 floor.
                        assert!(per_kg < norm * 0.8 || eur <= 1.0, "{per_kg} vs {norm}");
                    }
                }
                Irregularity::MisdeclaredHs { actual, declared } => {
                    assert_ne!(actual.chapter(), declared.chapter());
                    assert_eq!(first["hs_code"], declared.as_str());
                    assert_eq!(first["description"], actual.description());
                }
                Irregularity::RoutePattern { extra_countries } => {
                    assert!(*extra_countries >= 1);
                    assert!(!traffic.world().on_a_corridor(&t.itinerary()));
                }
            }
        }
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn irregular_share_zero_and_one_are_exact() {
        assert!(traffic(1, 0.0).iter().take(2000).all(|t| t.irregularity.is_none()));
        assert!(traffic(1, 1.0).iter().take(500).all(|t| t.irregularity.is_some()));
    }
}
