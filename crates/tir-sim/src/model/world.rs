//! The world the traffic runs in: real road corridors, the customs offices
//! along them, the holders with their behaviour, and the guarantee chains.
//!
//! Offices: a country with UN/LOCODE border-crossing points in the shipped
//! data (`refdata::border_crossings_of`) gets offices at some of them, code
//! = country + location + `001`. TR, GE, AZ, KZ, HU, RS and AF have none
//! there: their offices get synthetic codes `{CC}SIM001`, `{CC}SIM002`...
//! (no `unlocode`), named after real crossings.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use tir_model::exchange::Registry;
use tir_model::party::{HolderRecord, HolderStatus, Office, OfficeRole};
use tir_model::refdata::border_crossings_of;
use tir_model::{Country, OfficeCode, TirId};

use super::goods::Catalog;
use super::rng::Rng;
use crate::AnyError;

/// Via Baltica and on to Central Europe: each country with two UN/LOCODE
/// border-crossing points (function `B`) that serve as its customs offices,
/// in the simulated world and in the `tirhub demo` seed alike.
pub const VIA_BALTICA_CROSSINGS: [(&str, [&str; 2]); 7] = [
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
pub const ROAD_CORRIDORS: [(&str, &[&str], f64); 9] = [
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
/// `VIA_BALTICA_CROSSINGS`.
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

/// Lengths of normal itineraries, 2 to 6 countries.
const TRIP_LENGTHS: [(usize, f64); 5] = [(2, 28.0), (3, 30.0), (4, 20.0), (5, 13.0), (6, 9.0)];

/// The world is the same for every `--seed`, so runs against one server share it.
const WORLD_SEED: u64 = 0x5449_5248_5542; // "TIRHUB"
/// Holders in the standard world.
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
    pub(super) fn irregular_weight(self) -> f64 {
        match self {
            Profile::Reliable => 0.4,
            Profile::Careless => 1.5,
            Profile::Fraudster => 12.0,
        }
    }

    /// Chance that customs record reservations when terminating in one country.
    pub(super) fn reservation_chance(self) -> f64 {
        match self {
            Profile::Reliable => 0.01,
            Profile::Careless => 0.15,
            Profile::Fraudster => 0.04,
        }
    }
}

/// A road corridor where TIR is used: its countries in road order, and the
/// traffic it carries relative to the other corridors.
#[derive(Debug, Clone, PartialEq)]
pub struct RoadCorridor {
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
    pub corridors: Vec<RoadCorridor>,
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

pub(super) fn digits(rng: &mut Rng, n: usize) -> String {
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
        let corridors: Vec<RoadCorridor> = ROAD_CORRIDORS
            .iter()
            .map(|(name, countries, weight)| RoadCorridor {
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

    /// Indices into `offices` of the offices in `country`.
    pub(super) fn office_indices(&self, country: Country) -> &[usize] {
        &self.offices_by_country[&country]
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
    pub(super) fn corridor_trip(&self, home: Country, rng: &mut Rng) -> Vec<Country> {
        let through: Vec<&RoadCorridor> = self.corridors.iter().filter(|c| c.countries.contains(&home)).collect();
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
    pub(super) fn detour_trip(&self, home: Country, rng: &mut Rng) -> (Vec<Country>, usize) {
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
    let via_baltica = VIA_BALTICA_CROSSINGS.iter().find(|(d, _)| *d == code).map(|(_, l)| l.as_slice());
    let real = via_baltica.or_else(|| CROSSINGS.iter().find(|(d, _)| *d == code).map(|(_, l)| *l)).unwrap_or(&[]);
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
fn detours(corridors: &[RoadCorridor]) -> Vec<(Vec<Country>, usize)> {
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

/// A trading company's name: a stem, its `sector` and the legal form of `country`.
pub(super) fn trader(rng: &mut Rng, sector: &str, country: Country) -> String {
    format!("{} {} {}", rng.pick(&STEMS), sector, legal_form(country))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_places_offices_at_real_crossings_where_the_data_has_them() {
        let world = World::standard();
        let mut codes = BTreeSet::new();
        for c in world.countries() {
            let offices = world.offices_of(c);
            assert!(!offices.is_empty(), "{c}");
            let has_crossings = !border_crossings_of(c.as_str()).is_empty();
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
        for (c, locations) in VIA_BALTICA_CROSSINGS {
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
}
