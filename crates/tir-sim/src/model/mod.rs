//! The traffic model, pure (no I/O): a world of corridors, customs offices,
//! holders and guarantee chains, and a seeded stream of transports on it,
//! each with its declaration, its life cycle of messages and, for a
//! configurable share, the ground truth of an irregularity.
//!
//! Offices: a country with UN/LOCODE border-crossing points in the shipped
//! data (`refdata::border_crossings_of`) gets offices at some of them, code
//! = country + location + `001` as in the demo. TR, GE, AZ, KZ, HU, RS and AF
//! have none there: their offices get synthetic codes `{CC}SIM001`,
//! `{CC}SIM002`... (no `unlocode`), named after real crossings.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tir_model::exchange::Registry;
use tir_model::party::{HolderRecord, HolderStatus, Office, OfficeRole};
use tir_model::refdata::border_crossings_of;
use tir_model::{Country, HsCode, OfficeCode, TirId};

use crate::AnyError;

pub mod goods;
pub mod rng;

use goods::{Catalog, ChapterCodes, MISDECLARATIONS, VALUE_SIGMA};
use rng::{Cumulative, Rng, mix};

/// Via Baltica and on to Central Europe: each country with two UN/LOCODE
/// border-crossing points (function `B`) that serve as its customs offices.
pub const CORRIDOR: [(&str, [&str; 2]); 7] = [
    ("FI", ["VAI", "VLA"]),
    ("EE", ["MUG", "LHM"]),
    ("LV", ["TER", "GRE"]),
    ("LT", ["MDK", "KYB"]),
    ("PL", ["KUB", "DOR"]),
    ("CZ", ["BOH", "CCA"]),
    ("SK", ["CAD", "BRP"]),
];

/// The office at a border-crossing point: code = country + location + "001".
pub fn office_at(country: &str, location: &str) -> Result<Office, AnyError> {
    let crossing = border_crossings_of(country)
        .into_iter()
        .find(|b| b.location == location)
        .ok_or_else(|| format!("{country}{location} is not a border crossing in the shipped UN/LOCODE data"))?;
    Ok(Office {
        code: OfficeCode::parse(&format!("{country}{location}001"))
            .map_err(|e| format!("{country}{location}: {e:?}"))?,
        country: Country::parse(country).map_err(|e| format!("{country}: {e:?}"))?,
        name: crossing.name.to_owned(),
        roles: OfficeRole::ALL.to_vec(),
        unlocode: Some(format!("{country}{location}")),
    })
}

/// Real road corridors where TIR is used, with a relative weight.
pub const CORRIDORS: [(&str, &[&str], f64); 9] = [
    ("Via Baltica", &["FI", "EE", "LV", "LT", "PL", "CZ", "SK"], 3.0),
    ("Middle Corridor", &["TR", "GE", "AZ", "KZ", "UZ"], 3.0),
    ("Danube", &["TR", "BG", "RO", "HU", "AT", "DE"], 4.0),
    ("North Sea", &["LT", "PL", "DE", "NL", "BE"], 2.0),
    ("Iran-Balkans", &["IR", "TR", "BG", "RS", "HU"], 2.0),
    ("Western Balkans", &["TR", "BG", "RS", "HR", "SI", "IT"], 2.0),
    ("Vardar", &["GR", "MK", "RS", "HU", "AT", "DE"], 1.0),
    ("Trans-Afghan", &["PK", "AF", "UZ", "KZ"], 1.0),
    ("Iran-Central Asia", &["TR", "IR", "TM", "UZ", "KZ"], 2.0),
];

/// Border-crossing locations (UN/LOCODE, function B) used as offices, beside
/// the demo corridor's (`demo::CORRIDOR`).
const CROSSINGS: [(&str, &[&str]); 15] = [
    ("DE", &["JES", "RIA"]),
    ("NL", &["HZK", "HRB"]),
    ("BE", &["WCG", "BSR"]),
    ("RO", &["GRG", "CAF"]),
    ("AT", &["HBZ", "KOS"]),
    ("BG", &["GJE"]),
    ("UZ", &["TER"]),
    ("IR", &["DJU"]),
    ("TM", &["FAR"]),
    ("PK", &["TOR", "CMN"]),
    ("HR", &["BOT", "ERD"]),
    ("SI", &["DOB", "VAS"]),
    ("IT", &["RNO", "PTT"]),
    ("MK", &["TBN", "BRD"]),
    ("GR", &["KKV"]),
];

/// Countries without a border crossing in the shipped data: real crossing
/// names at synthetic codes.
const SYNTHETIC: [(&str, &[&str]); 7] = [
    ("TR", &["Kapikule", "Sarp", "Gurbulak"]),
    ("GE", &["Sarpi", "Tsiteli Khidi"]),
    ("AZ", &["Qirmizi Korpu", "Astara"]),
    ("KZ", &["Khorgos", "Zhibek Zholy"]),
    ("HU", &["Roszke", "Hegyeshalom", "Nagylak"]),
    ("RS", &["Batrovci", "Gradina", "Horgos"]),
    ("AF", &["Torkham", "Hairatan"]),
];

/// Where holders come from, weighted as TIR carnet use is.
const HOLDER_COUNTRIES: [(&str, f64); 29] = [
    ("TR", 10.0),
    ("PL", 6.0),
    ("LT", 6.0),
    ("IR", 5.0),
    ("UZ", 4.0),
    ("KZ", 4.0),
    ("GE", 3.0),
    ("BG", 3.0),
    ("RO", 3.0),
    ("AZ", 2.0),
    ("HU", 2.0),
    ("RS", 2.0),
    ("MK", 1.0),
    ("GR", 1.0),
    ("FI", 1.0),
    ("EE", 1.0),
    ("LV", 1.0),
    ("CZ", 1.0),
    ("SK", 1.0),
    ("DE", 1.0),
    ("NL", 1.0),
    ("BE", 1.0),
    ("AT", 1.0),
    ("HR", 1.0),
    ("SI", 1.0),
    ("IT", 1.0),
    ("TM", 1.0),
    ("PK", 1.0),
    ("AF", 1.0),
];

const LEGAL_FORMS: [(&str, &str); 29] = [
    ("FI", "Oy"),
    ("EE", "OU"),
    ("LV", "SIA"),
    ("LT", "UAB"),
    ("PL", "Sp. z o.o."),
    ("CZ", "s.r.o."),
    ("SK", "s.r.o."),
    ("DE", "GmbH"),
    ("AT", "GmbH"),
    ("NL", "B.V."),
    ("BE", "NV"),
    ("TR", "A.S."),
    ("GE", "LLC"),
    ("AZ", "MMC"),
    ("KZ", "TOO"),
    ("UZ", "MChJ"),
    ("BG", "EOOD"),
    ("RO", "SRL"),
    ("HU", "Kft."),
    ("RS", "d.o.o."),
    ("HR", "d.o.o."),
    ("SI", "d.o.o."),
    ("IT", "S.r.l."),
    ("GR", "A.E."),
    ("MK", "DOOEL"),
    ("IR", "Co."),
    ("TM", "HJ"),
    ("PK", "(Pvt) Ltd"),
    ("AF", "Ltd"),
];

const STEMS: [&str; 30] = [
    "Atlas",
    "Orient",
    "Nova",
    "Delta",
    "Baltic",
    "Caspian",
    "Danube",
    "Amber",
    "Falcon",
    "Silk Road",
    "Anatolia",
    "Aurora",
    "Vega",
    "Polar",
    "Sunrise",
    "Horizon",
    "Meridian",
    "Granit",
    "Zenit",
    "Kama",
    "Ararat",
    "Pamir",
    "Tulpar",
    "Kartal",
    "Sokol",
    "Vistula",
    "Neman",
    "Aral",
    "Sirius",
    "Borealis",
];

const HAULIER_WORDS: [&str; 8] = ["Trans", "Logistics", "Cargo", "Freight", "Haulage", "Express", "Lines", "Transport"];

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

/// Lengths of normal itineraries, 2 to 6 countries.
const TRIP_LENGTHS: [(usize, f64); 5] = [(2, 28.0), (3, 30.0), (4, 20.0), (5, 13.0), (6, 9.0)];

const USD_PER_EUR: f64 = 1.08;
/// The world is the same for every `--seed`, so runs against one server share it.
const WORLD_SEED: u64 = 0x5449_5248_5542; // "TIRHUB"
pub const HOLDERS: usize = 60;

/// How a holder behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// Clean declarations, rare reservations.
    Reliable,
    /// More reservations at termination.
    Careless,
    /// Often irregular.
    Fraudster,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Reliable, Profile::Careless, Profile::Fraudster];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Reliable => "reliable",
            Profile::Careless => "careless",
            Profile::Fraudster => "fraudster",
        }
    }

    /// Share of holders with this profile.
    fn share(self) -> f64 {
        match self {
            Profile::Reliable => 0.78,
            Profile::Careless => 0.16,
            Profile::Fraudster => 0.06,
        }
    }

    /// Relative propensity to irregular transports (scaled to the configured share).
    fn irregular_weight(self) -> f64 {
        match self {
            Profile::Reliable => 0.4,
            Profile::Careless => 1.5,
            Profile::Fraudster => 12.0,
        }
    }

    /// Chance that customs record reservations when terminating in one country.
    fn reservation_chance(self) -> f64 {
        match self {
            Profile::Reliable => 0.01,
            Profile::Careless => 0.15,
            Profile::Fraudster => 0.04,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Corridor {
    pub name: &'static str,
    pub countries: Vec<Country>,
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub record: HolderRecord,
    pub profile: Profile,
    /// Relative number of transports (lognormal: a few big hauliers).
    pub activity: f64,
    /// Index into `World::chains`.
    pub chain: usize,
    /// Registration plates of its trucks.
    pub fleet: Vec<String>,
}

/// Corridors, offices, holders and chains; also the registry the pure
/// state machine looks offices and holders up in.
#[derive(Debug, Clone)]
pub struct World {
    pub corridors: Vec<Corridor>,
    pub offices: Vec<Office>,
    pub holders: Vec<Holder>,
    /// Names of the guarantee chains.
    pub chains: Vec<String>,
    pub catalog: Catalog,
    offices_by_code: HashMap<OfficeCode, usize>,
    offices_by_country: HashMap<Country, Vec<usize>>,
    holders_by_id: HashMap<TirId, usize>,
    /// Simple paths through the corridor graph that no corridor runs and
    /// that are longer than the shortest path between their ends.
    detours: Vec<(Vec<Country>, usize)>,
}

fn country(code: &str) -> Country {
    Country::parse(code).unwrap_or_else(|e| panic!("{code} is not a country of the shipped data: {e}"))
}

fn legal_form(country: Country) -> &'static str {
    LEGAL_FORMS.iter().find(|(c, _)| *c == country.as_str()).map_or("Ltd", |(_, form)| *form)
}

fn letters(rng: &mut Rng, n: usize) -> String {
    (0..n).map(|_| char::from(b'A' + rng.below(26) as u8)).collect()
}

fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.below(10) as u8)).collect()
}

/// A registration plate in the country's usual shape.
fn plate(country: Country, rng: &mut Rng) -> String {
    match country.as_str() {
        "TR" => format!("{:02}{}{}", rng.range(1, 81), letters(rng, 3), digits(rng, 3)),
        "PL" => format!("{}{}", letters(rng, 3), digits(rng, 5)),
        "DE" | "AT" => {
            let len = rng.range(1, 3);
            format!("{}{}{}", letters(rng, len), letters(rng, 2), digits(rng, 4))
        }
        "IR" | "PK" | "AF" => format!("{}{}", digits(rng, 2), digits(rng, 5)),
        _ => format!("{}{}", letters(rng, 3), digits(rng, 3)),
    }
}

impl World {
    /// The world every `tirhub simulate` uses.
    pub fn standard() -> World {
        World::generate(WORLD_SEED, HOLDERS)
    }

    pub fn generate(seed: u64, holders: usize) -> World {
        let mut rng = Rng::new(seed);
        let corridors: Vec<Corridor> = CORRIDORS
            .iter()
            .map(|(name, countries, weight)| Corridor {
                name,
                countries: countries.iter().map(|c| country(c)).collect(),
                weight: *weight,
            })
            .collect();
        let mut world = World {
            corridors,
            offices: Vec::new(),
            holders: Vec::new(),
            chains: vec![
                "IRU international guarantee chain".to_owned(),
                "Second guarantee chain (simulated)".to_owned(),
            ],
            catalog: Catalog::new(&mut rng),
            offices_by_code: HashMap::new(),
            offices_by_country: HashMap::new(),
            holders_by_id: HashMap::new(),
            detours: Vec::new(),
        };
        for c in world.countries() {
            for office in offices_for(c) {
                world.offices_by_code.insert(office.code.clone(), world.offices.len());
                world.offices_by_country.entry(c).or_default().push(world.offices.len());
                world.offices.push(office);
            }
        }
        world.add_holders(&mut rng, holders);
        world.detours = detours(&world.corridors);
        world
    }

    fn add_holders(&mut self, rng: &mut Rng, count: usize) {
        let weights: Vec<f64> = HOLDER_COUNTRIES.iter().map(|(_, w)| *w).collect();
        let profile_shares: Vec<f64> = Profile::ALL.iter().map(|p| p.share()).collect();
        while self.holders.len() < count {
            let home = country(HOLDER_COUNTRIES[rng.weighted(&weights)].0);
            // Six-digit holder numbers keep clear of the demo's and tests' holders.
            let tir_id = format!("{}/{:03}/{}", home.alpha3(), 10 + rng.below(90), 100_000 + rng.below(900_000));
            let tir_id = TirId::parse(&tir_id).expect("alpha-3 of a shipped country and digits");
            if self.holders_by_id.contains_key(&tir_id) {
                continue;
            }
            // The first holders cover every profile so small worlds still have all three.
            let profile = match self.holders.len() {
                n if n < Profile::ALL.len() => Profile::ALL[n],
                _ => Profile::ALL[rng.weighted(&profile_shares)],
            };
            let activity = rng.lognormal(1.0, 1.0);
            let fleet_size = (activity * 4.0).round().clamp(1.0, 40.0) as usize;
            let fleet = (0..fleet_size).map(|_| plate(home, rng)).collect();
            let name = format!("{} {} {}", rng.pick(&STEMS), rng.pick(&HAULIER_WORDS), legal_form(home));
            let chain = usize::from(rng.chance(0.1));
            let record = HolderRecord { tir_id: tir_id.clone(), name, country: home, status: HolderStatus::Authorized };
            self.holders_by_id.insert(tir_id, self.holders.len());
            self.holders.push(Holder { record, profile, activity, chain, fleet });
        }
    }

    /// Every country of a corridor, once, in the order first met.
    pub fn countries(&self) -> Vec<Country> {
        let mut seen = Vec::new();
        for c in self.corridors.iter().flat_map(|c| &c.countries) {
            if !seen.contains(c) {
                seen.push(*c);
            }
        }
        seen
    }

    pub fn offices_of(&self, country: Country) -> Vec<&Office> {
        self.offices_by_country
            .get(&country)
            .map_or_else(Vec::new, |ids| ids.iter().map(|i| &self.offices[*i]).collect())
    }

    pub fn find_holder(&self, tir_id: &TirId) -> Option<&Holder> {
        self.holders_by_id.get(tir_id).map(|i| &self.holders[*i])
    }

    /// Itineraries no corridor runs, each with its extra countries over the shortest path.
    pub fn detours(&self) -> &[(Vec<Country>, usize)] {
        &self.detours
    }

    /// Whether `itinerary` is a run of consecutive countries of a corridor, either way.
    pub fn on_a_corridor(&self, itinerary: &[Country]) -> bool {
        self.corridors.iter().any(|c| is_segment(&c.countries, itinerary))
    }

    /// 2 to 6 consecutive countries of a corridor through `home`.
    fn corridor_trip(&self, home: Country, rng: &mut Rng) -> Vec<Country> {
        let through: Vec<&Corridor> = self.corridors.iter().filter(|c| c.countries.contains(&home)).collect();
        let corridor = through[rng.weighted(&through.iter().map(|c| c.weight).collect::<Vec<_>>())];
        let mut countries = corridor.countries.clone();
        if rng.chance(0.5) {
            countries.reverse();
        }
        let wanted = TRIP_LENGTHS[rng.weighted(&TRIP_LENGTHS.map(|(_, w)| w))].0;
        let len = wanted.min(countries.len());
        let at = countries.iter().position(|c| *c == home).expect("corridor chosen through home");
        let first = at.saturating_sub(len - 1);
        let last = at.min(countries.len() - len);
        let start = rng.range(first, last);
        countries[start..start + len].to_vec()
    }

    /// A detour, through `home` when one passes there.
    fn detour_trip(&self, home: Country, rng: &mut Rng) -> (Vec<Country>, usize) {
        let through: Vec<&(Vec<Country>, usize)> = self.detours.iter().filter(|(p, _)| p.contains(&home)).collect();
        if through.is_empty() { rng.pick(&self.detours).clone() } else { (*rng.pick(&through)).clone() }
    }
}

impl Registry for World {
    fn office(&self, code: &OfficeCode) -> Option<&Office> {
        self.offices_by_code.get(code).map(|i| &self.offices[*i])
    }

    fn holder(&self, tir_id: &TirId) -> Option<&HolderRecord> {
        self.find_holder(tir_id).map(|h| &h.record)
    }
}

fn offices_for(c: Country) -> Vec<Office> {
    let code = c.as_str();
    let demo = CORRIDOR.iter().find(|(d, _)| *d == code).map(|(_, l)| l.as_slice());
    let real = demo.or_else(|| CROSSINGS.iter().find(|(d, _)| *d == code).map(|(_, l)| *l)).unwrap_or(&[]);
    let placed: Vec<Office> = real.iter().filter_map(|location| office_at(code, location).ok()).collect();
    if !placed.is_empty() {
        return placed;
    }
    let names = SYNTHETIC.iter().find(|(d, _)| *d == code).map_or(&[][..], |(_, n)| *n);
    let names = if names.is_empty() { &["Border office"][..] } else { names };
    names
        .iter()
        .enumerate()
        .map(|(i, name)| Office {
            code: OfficeCode::parse(&format!("{code}SIM{:03}", i + 1)).expect("country and 6 letters or digits"),
            country: c,
            name: format!("{name} (synthetic office)"),
            roles: OfficeRole::ALL.to_vec(),
            unlocode: None,
        })
        .collect()
}

fn is_segment(corridor: &[Country], path: &[Country]) -> bool {
    let reversed: Vec<Country> = path.iter().rev().copied().collect();
    corridor.windows(path.len()).any(|w| w == path || w == reversed.as_slice())
}

/// Every simple path of 3 to 6 countries in the graph of corridor
/// neighbours that is not a corridor segment and is longer than the
/// shortest path between its ends.
fn detours(corridors: &[Corridor]) -> Vec<(Vec<Country>, usize)> {
    let mut graph: BTreeMap<Country, BTreeSet<Country>> = BTreeMap::new();
    for c in corridors {
        for w in c.countries.windows(2) {
            graph.entry(w[0]).or_default().insert(w[1]);
            graph.entry(w[1]).or_default().insert(w[0]);
        }
    }
    let hops = |from: Country| {
        let mut dist = HashMap::from([(from, 0usize)]);
        let mut queue = VecDeque::from([from]);
        while let Some(at) = queue.pop_front() {
            for next in &graph[&at] {
                if !dist.contains_key(next) {
                    dist.insert(*next, dist[&at] + 1);
                    queue.push_back(*next);
                }
            }
        }
        dist
    };
    let mut out = Vec::new();
    for start in graph.keys() {
        let dist = hops(*start);
        let mut stack = vec![vec![*start]];
        while let Some(path) = stack.pop() {
            let end = path[path.len() - 1];
            if path.len() >= 3 {
                let extra = (path.len() - 1).saturating_sub(dist[&end]);
                if extra > 0 && !corridors.iter().any(|c| is_segment(&c.countries, &path)) {
                    out.push((path.clone(), extra));
                }
            }
            if path.len() < 6 {
                for next in graph[&end].iter().rev() {
                    if !path.contains(next) {
                        let mut longer = path.clone();
                        longer.push(*next);
                        stack.push(longer);
                    }
                }
            }
        }
    }
    out
}

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

/// One country of the itinerary: the office acting there and the
/// reservations its customs record at termination.
#[derive(Debug, Clone, PartialEq)]
pub struct Leg {
    pub country: Country,
    pub office: OfficeCode,
    pub reservations: Vec<String>,
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
    pub legs: Vec<Leg>,
    pub seals: Vec<String>,
    /// As the contract's "Declaration" section.
    pub declaration: Value,
    pub irregularity: Option<Irregularity>,
}

impl Transport {
    pub fn itinerary(&self) -> Vec<Country> {
        self.legs.iter().map(|l| l.country).collect()
    }
}

/// A reproducible stream of transports: transport `i` depends only on the
/// world, the seed, the tag and `i`.
#[derive(Debug, Clone)]
pub struct Traffic {
    world: Arc<World>,
    seed: u64,
    prefix: String,
    holders: Cumulative,
    irregular: Vec<f64>,
}

/// `n` in base 36, zero-padded to `width`.
fn base36(mut n: u64, width: usize) -> String {
    let mut out = Vec::new();
    while n > 0 || out.len() < width {
        out.push(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
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
            prefix: format!("SM{}", base36(mix(seed, 0x0052_4546) % 36u64.pow(6), 6)),
            world,
            seed,
            irregular,
        }
    }

    /// Adds `tag` (A-Z, 0-9, fixed length across runs) to every reference,
    /// so that one seed can be played twice against the same server.
    pub fn with_tag(mut self, tag: &str) -> Traffic {
        self.prefix.push_str(tag);
        self
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

    pub fn iter(&self) -> impl Iterator<Item = Transport> + '_ {
        (0..).map(|i| self.transport(i))
    }

    pub fn transport(&self, index: u64) -> Transport {
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
        let roles = roles(itinerary.len(), &mut rng);
        let chance = holder.profile.reservation_chance() + if kind.is_some() { 0.10 } else { 0.0 };
        let legs: Vec<Leg> = itinerary
            .iter()
            .map(|c| {
                let office = rng.pick(&world.offices_by_country[c]);
                let reservations = if rng.chance(chance) {
                    let mut picked = vec![rng.pick(&RESERVATIONS).to_string()];
                    let second = rng.pick(&RESERVATIONS).to_string();
                    if rng.chance(0.3) && second != picked[0] {
                        picked.push(second);
                    }
                    picked
                } else {
                    Vec::new()
                };
                Leg { country: *c, office: world.offices[*office].code.clone(), reservations }
            })
            .collect();

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
        let consignments = goods.consignments(&legs, &roles, &mut rng);

        let offices: Vec<Value> = legs
            .iter()
            .zip(&roles)
            .map(|(leg, role)| json!({"code": leg.office.as_str(), "role": role.as_str()}))
            .collect();
        let declaration = json!({
            "itinerary": itinerary.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "offices": offices,
            "vehicle": {"registration": rng.pick(&holder.fleet), "country": home.as_str()},
            "seals": seals,
            "consignments": consignments,
        });
        Transport {
            index,
            reference: format!("{}{}", self.prefix, base36(index, 8)),
            holder: holder.record.tir_id.clone(),
            profile: holder.profile,
            chain: holder.chain,
            legs,
            seals,
            declaration,
            irregularity,
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
    fn consignments(&mut self, legs: &[Leg], roles: &[OfficeRole], rng: &mut Rng) -> Vec<Value> {
        let at = |role| legs.iter().zip(roles).filter(|(_, r)| **r == role).map(|(l, _)| l.country).collect::<Vec<_>>();
        let (loading, unloading) = (at(OfficeRole::Departure), at(OfficeRole::Destination));
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

fn trader(rng: &mut Rng, sector: &str, country: Country) -> String {
    format!("{} {} {}", rng.pick(&STEMS), sector, legal_form(country))
}

/// Bearer tokens of the parties a world needs.
#[derive(Debug, Clone, Default)]
pub struct Parties {
    pub customs: HashMap<Country, String>,
    /// Parallel to `World::chains`.
    pub chains: Vec<String>,
    pub holders: HashMap<TirId, String>,
}

impl Parties {
    /// Tokens that name their party (`customs:LT`, `chain:0`,
    /// `holder:LTU/012/345`), for driving the pure state machine.
    pub fn symbolic(world: &World) -> Parties {
        Parties {
            customs: world.countries().into_iter().map(|c| (c, format!("customs:{c}"))).collect(),
            chains: (0..world.chains.len()).map(|i| format!("chain:{i}")).collect(),
            holders: world
                .holders
                .iter()
                .map(|h| (h.record.tir_id.clone(), format!("holder:{}", h.record.tir_id)))
                .collect(),
        }
    }
}

/// One country of a scripted transport.
pub struct ScriptLeg<'a> {
    pub token: &'a str,
    pub office: &'a str,
    pub reservations: &'a [String],
}

/// The senders, offices and declaration of one full transport.
pub struct Script<'a> {
    pub reference: &'a str,
    pub chain_token: &'a str,
    pub holder_tir_id: &'a str,
    pub holder_token: &'a str,
    pub declaration: &'a Value,
    /// Seals presented at every start (I9).
    pub seals: &'a [String],
    /// In itinerary order; the first leg's office is the departure office.
    pub legs: Vec<ScriptLeg<'a>>,
}

impl Script<'_> {
    /// E1, E9, I1, I7, then I9 and I11 in each country, then I13 in each,
    /// each with its sender's token. Message ids are `{reference}-{n:02}`.
    pub fn messages(&self) -> Vec<(String, Value)> {
        let mut n = 0;
        let reference = self.reference;
        let mut message = |kind: &str, extra: Value| {
            n += 1;
            let mut body =
                json!({"message_id": format!("{reference}-{n:02}"), "type": kind, "guarantee_reference": reference});
            if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
                body.extend(extra);
            }
            body
        };
        let departure = &self.legs[0];
        let mut out = vec![
            (self.chain_token.to_owned(), message("E1", json!({"holder": self.holder_tir_id}))),
            (self.holder_token.to_owned(), message("E9", json!({"declaration": self.declaration}))),
            (departure.token.to_owned(), message("I1", json!({"office": departure.office}))),
            (departure.token.to_owned(), message("I7", json!({"office": departure.office}))),
        ];
        for leg in &self.legs {
            out.push((leg.token.to_owned(), message("I9", json!({"office": leg.office, "seals": self.seals}))));
            out.push((
                leg.token.to_owned(),
                message("I11", json!({"office": leg.office, "reservations": leg.reservations})),
            ));
        }
        for leg in &self.legs {
            out.push((leg.token.to_owned(), message("I13", json!({"office": leg.office}))));
        }
        out
    }
}

/// The full life cycle of `transport`, each message with its sender's token.
///
/// # Panics
/// When `parties` lacks a token the transport needs: parties must be
/// bootstrapped from the same world as the traffic.
pub fn messages(transport: &Transport, parties: &Parties) -> Vec<(String, Value)> {
    let token = |found: Option<&String>, what: &dyn std::fmt::Display| -> String {
        found.unwrap_or_else(|| panic!("no token for {what}: bootstrap the parties of this world first")).clone()
    };
    let chain = token(parties.chains.get(transport.chain), &format!("guarantee chain {}", transport.chain));
    let holder = token(parties.holders.get(&transport.holder), &transport.holder);
    let customs: Vec<String> = transport
        .legs
        .iter()
        .map(|l| token(parties.customs.get(&l.country), &format!("customs of {}", l.country)))
        .collect();
    let offices: Vec<&str> = transport.legs.iter().map(|l| l.office.as_str()).collect();
    // Seals are compared as a set: present them in another order than declared.
    let seals: Vec<String> = transport.seals.iter().rev().cloned().collect();
    Script {
        reference: &transport.reference,
        chain_token: &chain,
        holder_tir_id: transport.holder.as_str(),
        holder_token: &holder,
        declaration: &transport.declaration,
        seals: &seals,
        legs: transport
            .legs
            .iter()
            .enumerate()
            .map(|(i, leg)| ScriptLeg { token: &customs[i], office: offices[i], reservations: &leg.reservations })
            .collect(),
    }
    .messages()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tir_model::declaration::Declaration;
    use tir_model::exchange::apply;
    use tir_model::guarantee::{GuaranteeState, OperationState};
    use tir_model::message::{MessageId, Request};
    use tir_model::party::Party;
    use tir_model::wire::Obj;
    use tir_model::{GuaranteeRef, Timestamp};

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
    fn the_world_places_offices_at_real_crossings_where_the_data_has_them() {
        let world = World::standard();
        let mut codes = BTreeSet::new();
        for c in world.countries() {
            let offices = world.offices_of(c);
            assert!(!offices.is_empty(), "{c}");
            let has_crossings = !tir_model::refdata::border_crossings_of(c.as_str()).is_empty();
            for office in offices {
                assert!(codes.insert(office.code.clone()), "{} twice", office.code);
                assert_eq!(office.country, c);
                assert_eq!(office.roles, OfficeRole::ALL);
                match &office.unlocode {
                    Some(locode) => {
                        assert!(has_crossings);
                        assert_eq!(office.code.as_str(), format!("{locode}001"));
                    }
                    None => {
                        assert!(!has_crossings, "{c} has crossings but got a synthetic office");
                        assert!(office.code.as_str().starts_with(&format!("{c}SIM")));
                    }
                }
            }
        }
        for (c, locations) in CORRIDOR {
            let codes: Vec<&str> = world.offices_of(country(c)).iter().map(|o| o.code.as_str()).collect();
            let expected: Vec<String> = locations.iter().map(|l| format!("{c}{l}001")).collect();
            assert_eq!(codes, expected);
        }
        assert!(world.countries().len() >= 25);
    }

    #[test]
    fn holders_come_from_corridor_countries_with_every_profile() {
        let world = World::standard();
        assert_eq!(world.holders.len(), HOLDERS);
        let countries = world.countries();
        for h in &world.holders {
            assert!(countries.contains(&h.record.country));
            assert_eq!(h.record.tir_id.country(), h.record.country);
            assert!(!h.fleet.is_empty());
            assert!(h.chain < world.chains.len());
        }
        for profile in Profile::ALL {
            assert!(world.holders.iter().any(|h| h.profile == profile), "no {profile:?}");
        }
        let ids: BTreeSet<&str> = world.holders.iter().map(|h| h.record.tir_id.as_str()).collect();
        assert_eq!(ids.len(), HOLDERS);
        assert!(!ids.contains("LTU/012/345"));
    }

    #[test]
    fn detours_leave_the_corridors_and_are_longer_than_needed() {
        let world = World::standard();
        assert!(world.detours().len() > 20, "{}", world.detours().len());
        for (path, extra) in world.detours() {
            assert!((3..=6).contains(&path.len()));
            assert!(*extra >= 1);
            assert!(!world.on_a_corridor(path), "{path:?}");
            let distinct: BTreeSet<_> = path.iter().collect();
            assert_eq!(distinct.len(), path.len());
        }
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
        let tagged = traffic(u64::MAX, 0.05).with_tag("ZZZZZZZZ");
        let mut seen = BTreeSet::new();
        for t in tagged.iter().take(500).chain(traffic(7, 0.05).iter().take(500)) {
            GuaranteeRef::parse(&t.reference).unwrap();
            assert!(seen.insert(t.reference.clone()), "{} twice", t.reference);
            for (_, m) in messages(&t, &Parties::symbolic(tagged.world())) {
                MessageId::parse(m["message_id"].as_str().unwrap()).unwrap();
            }
        }
        assert_eq!(tagged.transport(u64::from(u32::MAX)).reference.len(), 2 + 6 + 8 + 8);
    }

    #[test]
    fn every_generated_declaration_is_accepted_by_the_model() {
        let traffic = traffic(11, 0.2);
        for t in traffic.iter().take(2000) {
            let d = parse(&t.declaration);
            assert_eq!(d.itinerary, t.itinerary());
            assert_eq!(d.departure_offices().next(), Some(&t.legs[0].office));
            assert!(d.seals_match(&t.seals));
            assert_eq!(d.vehicle.as_ref().unwrap().country, t.holder.country());
        }
    }

    fn party(token: &str) -> Party {
        let (kind, rest) = token.split_once(':').unwrap();
        match kind {
            "customs" => Party::Customs { id: token.to_owned(), country: country(rest) },
            "chain" => Party::GuaranteeChain { id: token.to_owned() },
            "holder" => Party::Holder { id: token.to_owned(), tir_id: TirId::parse(rest).unwrap() },
            _ => unreachable!("{token}"),
        }
    }

    #[test]
    fn full_life_cycles_run_through_the_state_machine_and_release_the_guarantees() {
        let traffic = traffic(3, 0.2);
        let world = traffic.world();
        let parties = Parties::symbolic(world);
        let mut now = 1_780_000_000_000;
        for t in traffic.iter().take(300) {
            let mut guarantee = None;
            for (token, message) in messages(&t, &parties) {
                let request = Request::parse(&message).unwrap_or_else(|e| panic!("{e:?}: {message}"));
                now += 1000;
                let outcome = apply(world, &party(&token), &request, guarantee.as_ref(), Timestamp::from_unix_ms(now))
                    .unwrap_or_else(|e| panic!("{} {}: {e:?}", t.reference, message["type"]));
                guarantee = Some(outcome.guarantee);
            }
            let g = guarantee.unwrap();
            assert_eq!(g.state, GuaranteeState::Released, "{}", t.reference);
            assert_eq!(g.operations.len(), t.legs.len());
            for (op, leg) in g.operations.iter().zip(&t.legs) {
                assert_eq!(op.state, OperationState::Discharged);
                assert_eq!(op.reservations, leg.reservations);
            }
        }
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
            let len = t.legs.len();
            assert!((2..=6).contains(&len), "{len}");
            *lengths.entry(len).or_insert(0) += 1;
            if let Some(i) = &t.irregularity {
                *irregular.entry(i.kind()).or_insert(0) += 1;
            } else {
                assert!(traffic.world().on_a_corridor(&t.itinerary()), "{:?}", t.itinerary());
            }
            let counts = with_reservations.entry(t.profile).or_insert((0, 0));
            counts.0 += 1;
            counts.1 += usize::from(t.legs.iter().any(|l| !l.reservations.is_empty()));
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

    #[test]
    fn base36_pads_and_counts() {
        assert_eq!(base36(0, 3), "000");
        assert_eq!(base36(35, 1), "Z");
        assert_eq!(base36(36, 1), "10");
    }
}
