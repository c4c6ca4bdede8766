//! The world the traffic runs in: real road corridors, the customs offices
//! along them, the holders with their behaviour, and the guarantee chains.
//!
//! Every corridor is a TIR transport from end to end: for TIR the Union's 27
//! member states are one territory (binding v2), so each corridor crosses
//! into or out of it, or runs wholly outside it; some leave it and enter it
//! again through the Balkans.
//!
//! Offices: a country with UN/LOCODE border-crossing points in the shipped
//! data (`refdata::border_crossings_of`) gets offices at some of them, code
//! = country + location + `001`. TR, GE, AZ, KZ, BY, HU, RS and AF have none
//! there: their offices get synthetic codes `{CC}SIM001`, `{CC}SIM002`...
//! (no `unlocode`), named after real crossings.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use tir_model::exchange::Registry;
use tir_model::operation;
use tir_model::party::{HolderRecord, HolderStatus, Office, OfficeRole};
use tir_model::refdata::border_crossings_of;
use tir_model::{Country, OfficeCode, TirId};

use super::goods::Catalog;
use super::names::haulier;
use super::rng::Rng;
use crate::AnyError;

/// The corridor of the `tirhub demo` seed: from Kazakhstan through Russia
/// and Belarus into the Union at Medininkai (Lithuania), on to Germany.
pub const DEMO_CORRIDOR: [&str; 6] = ["KZ", "RU", "BY", "LT", "PL", "DE"];

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

/// Real road corridors where TIR is used, with a relative weight; at most 6
/// countries each, so that every trip through a country fits in one.
pub const ROAD_CORRIDORS: [(&str, &[&str], f64); 10] = [
    ("Medininkai", &DEMO_CORRIDOR, 3.0),
    ("Via Baltica", &["RU", "EE", "LV", "LT", "PL", "CZ"], 2.0),
    ("Belarus-North Sea", &["RU", "BY", "PL", "DE", "NL", "BE"], 2.0),
    ("Middle Corridor", &["TR", "GE", "AZ", "KZ", "UZ"], 3.0),
    ("Danube", &["TR", "BG", "RO", "HU", "AT", "DE"], 4.0),
    // Leaves the Union at Bulgaria and enters it again at Hungary.
    ("Iran-Balkans", &["IR", "TR", "BG", "RS", "HU", "AT"], 2.0),
    ("Western Balkans", &["TR", "BG", "RS", "HR", "SI", "IT"], 2.0),
    ("Vardar", &["GR", "MK", "RS", "HU", "AT", "DE"], 1.0),
    ("Trans-Afghan", &["PK", "AF", "UZ", "KZ"], 1.0),
    ("Iran-Central Asia", &["TR", "IR", "TM", "UZ", "KZ"], 2.0),
];

/// The corridors of `tirhub demo`'s traffic, the Lithuanian case: from
/// Central Asia, the Caucasus and Türkiye through Russia and Belarus into the
/// Union at Medininkai, from the Kaliningrad region of Russia into the Union
/// at Kybartai (from Chernyshevskoye), and down the Via Baltica through Latvia
/// into Lithuania (Kybartai and Medininkai, paired by position with the
/// Latvian offices). Russia to Georgia is Upper Lars. Every one crosses the
/// Union's border, so every trip through one is a TIR transport.
pub const LITHUANIAN_CORRIDORS: [(&str, &[&str], f64); 6] = [
    ("Medininkai", &DEMO_CORRIDOR, 3.0),
    ("Central Asia-Baltic", &["UZ", "KZ", "RU", "BY", "LT", "PL"], 3.0),
    ("Caucasus-Baltic", &["AZ", "GE", "RU", "BY", "LT", "PL"], 2.0),
    ("Türkiye-Baltic", &["TR", "GE", "RU", "BY", "LT", "PL"], 2.0),
    ("Via Baltica", &["RU", "EE", "LV", "LT", "PL", "CZ"], 1.0),
    // Kaliningrad (RU) into the Union: one territory change, RU then EU.
    ("Kaliningrad-Kybartai", &KALININGRAD_CORRIDOR, 2.0),
];

/// Kaliningrad's road into the Union: Chernyshevskoye (RU) to Kybartai (LT),
/// then through Poland to Germany.
pub const KALININGRAD_CORRIDOR: [&str; 4] = ["RU", "LT", "PL", "DE"];

/// The Russian side of Kybartai. The shipped UN/LOCODE data has no border
/// crossing point there, so it is synthetic like the offices of `SYNTHETIC`,
/// made only in a world that crosses from Russia into Lithuania, and used only
/// at that border (it faces Kybartai in `FACING`; `crossing` does not pair it
/// by position with another border's offices).
const CHERNYSHEVSKOYE: &str = "RUSIM001";

/// Border-crossing locations (UN/LOCODE, function B) used as offices, the
/// ones on the corridors' external borders first.
const CROSSINGS: [(&str, &[&str]); 21] = [
    ("RU", &["ZLY"]),
    ("EE", &["LHM", "MUG"]),
    ("LV", &["TER", "GRE"]),
    ("LT", &["MDK", "KYB"]),
    ("PL", &["KUB", "DOR"]),
    ("CZ", &["BOH", "CCA"]),
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
const SYNTHETIC: [(&str, &[&str]); 8] = [
    ("TR", &["Kapikule", "Sarp", "Gurbulak"]),
    ("GE", &["Sarpi", "Tsiteli Khidi"]),
    ("AZ", &["Qirmizi Korpu", "Astara"]),
    ("KZ", &["Syrym", "Khorgos", "Zhibek Zholy"]),
    // Kamenny Log faces Medininkai, Bruzgi faces Kuznica Bialostocka.
    ("BY", &["Kamenny Log", "Bruzgi"]),
    ("HU", &["Roszke", "Hegyeshalom", "Nagylak"]),
    ("RS", &["Batrovci", "Gradina", "Horgos"]),
    ("AF", &["Torkham", "Hairatan"]),
];

/// Offices that face each other across a border where the world has both
/// sides of a real crossing: (one side, the other side), either way round.
/// Other borders pair their offices by position (`World::crossing`).
pub const FACING: [(&str, &str); 8] = [
    ("BYSIM001", "LTMDK001"),      // Kamenny Log - Medininkai
    (CHERNYSHEVSKOYE, "LTKYB001"), // Chernyshevskoye - Kybartai
    ("BYSIM002", "PLKUB001"),      // Bruzgi - Kuznica Bialostocka
    ("TRSIM002", "GESIM001"),      // Sarp - Sarpi
    ("GESIM002", "AZSIM001"),      // Tsiteli Khidi - Qirmizi Korpu (Red Bridge)
    ("PKTOR001", "AFSIM001"),      // Torkham - Torkham
    ("AFSIM002", "UZTER001"),      // Hairatan - Termez
    ("HUSIM001", "RSSIM003"),      // Roszke - Horgos
];

/// Where holders come from, weighted as TIR carnet use is.
const HOLDER_COUNTRIES: [(&str, f64); 29] = [
    ("TR", 10.0),
    ("RU", 6.0),
    ("LT", 6.0),
    ("PL", 6.0),
    ("BY", 5.0),
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
    ("EE", 1.0),
    ("LV", 1.0),
    ("CZ", 1.0),
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
        World::on_corridors(seed, holders, &ROAD_CORRIDORS)
    }

    /// The world of `tirhub demo`: only `LITHUANIAN_CORRIDORS`, so that
    /// Lithuanian customs see traffic from the first minute.
    pub fn lithuanian() -> World {
        World::on_corridors(WORLD_SEED, HOLDERS / 2, &LITHUANIAN_CORRIDORS)
    }

    /// A world on these corridors, its holders from their countries.
    pub fn on_corridors(seed: u64, holders: usize, corridors: &[(&'static str, &[&str], f64)]) -> World {
        let mut rng = Rng::new(seed);
        let corridors: Vec<RoadCorridor> = corridors
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
        let (ru, lt) = (country("RU"), country("LT"));
        let kaliningrad = world.corridors.iter().any(|c| is_segment(&c.countries, &[ru, lt]));
        for c in world.countries() {
            let mut offices = border_offices(c);
            if c == ru && kaliningrad {
                offices.push(Office {
                    code: OfficeCode::parse(CHERNYSHEVSKOYE).expect("an office code"),
                    country: ru,
                    name: "Chernyshevskoye (synthetic office)".to_owned(),
                    roles: OfficeRole::ALL.to_vec(),
                    unlocode: None,
                });
            }
            for office in offices {
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
        // Only homes on a corridor: a trip starts on a corridor through home.
        // (Every country of the standard world is on one, so its draws are unchanged.)
        let on_corridors = self.countries();
        let homes: Vec<(&str, f64)> =
            HOLDER_COUNTRIES.iter().copied().filter(|(c, _)| on_corridors.contains(&country(c))).collect();
        let weights: Vec<f64> = homes.iter().map(|(_, w)| *w).collect();
        let profile_shares: Vec<f64> = Profile::ALL.iter().map(|p| p.share()).collect();
        while self.holders.len() < count {
            let home = country(homes[rng.weighted(&weights)].0);
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
            let name = haulier(rng, home);
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

    /// The offices of `country` a trip may use where `country` borders
    /// `next_to` on its itinerary: Chernyshevskoye (Kaliningrad) only on a trip
    /// that crosses into or from Lithuania there, and then it is the only one
    /// (the rest of Russia is not on that road).
    pub fn trip_offices(&self, country: Country, next_to: &[Country]) -> Vec<&Office> {
        let all = self.offices_of(country);
        let kaliningrad = |o: &&Office| o.code.as_str() == CHERNYSHEVSKOYE;
        if !all.iter().any(kaliningrad) {
            return all;
        }
        let via_kybartai = next_to.iter().any(|c| c.as_str() == "LT");
        let kept: Vec<&Office> = all.iter().copied().filter(|o| kaliningrad(o) == via_kybartai).collect();
        if kept.is_empty() { all } else { kept }
    }

    /// Indices into `offices` of the offices in `country`.
    pub(super) fn office_indices(&self, country: Country) -> &[usize] {
        &self.offices_by_country[&country]
    }

    /// One crossing from `from` into `to`: the office of exit on `from`'s side
    /// and the office of entry on `to`'s side, the two sides of one border
    /// crossing. A real pair of `FACING` where the world has one for this
    /// border; otherwise the offices of both countries paired by position
    /// (the k-th of one faces the k-th of the other, wrapping around).
    pub fn crossing(&self, from: Country, to: Country, rng: &mut Rng) -> (OfficeCode, OfficeCode) {
        let facing: Vec<(OfficeCode, OfficeCode)> = FACING
            .iter()
            .flat_map(|(a, b)| [(*a, *b), (*b, *a)])
            .filter_map(|(a, b)| {
                let (a, b) = (OfficeCode::parse(a).ok()?, OfficeCode::parse(b).ok()?);
                (a.country() == from
                    && b.country() == to
                    && self.offices_by_code.contains_key(&a)
                    && self.offices_by_code.contains_key(&b))
                .then_some((a, b))
            })
            .collect();
        if !facing.is_empty() {
            return rng.pick(&facing).clone();
        }
        // Chernyshevskoye is Kaliningrad's: not a crossing of Russia's other borders.
        let pairable = |country: Country| -> Vec<usize> {
            let all = self.office_indices(country);
            let kept: Vec<usize> =
                all.iter().copied().filter(|i| self.offices[*i].code.as_str() != CHERNYSHEVSKOYE).collect();
            if kept.is_empty() { all.to_vec() } else { kept }
        };
        let (exits, entries) = (pairable(from), pairable(to));
        let k = rng.below(exits.len().max(entries.len()) as u64) as usize;
        (self.offices[exits[k % exits.len()]].code.clone(), self.offices[entries[k % entries.len()]].code.clone())
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

    /// 2 to 6 consecutive countries of a corridor through `home` that make a
    /// TIR transport: a run inside the Union alone is not one, so when no run
    /// of the drawn length through `home` leaves it, the trip gets longer.
    pub(super) fn corridor_trip(&self, home: Country, rng: &mut Rng) -> Vec<Country> {
        let through: Vec<&RoadCorridor> = self.corridors.iter().filter(|c| c.countries.contains(&home)).collect();
        let corridor = through[rng.weighted(&through.iter().map(|c| c.weight).collect::<Vec<_>>())];
        let mut countries = corridor.countries.clone();
        if rng.chance(0.5) {
            countries.reverse();
        }
        let wanted = TRIP_LENGTHS[rng.weighted(&TRIP_LENGTHS.map(|(_, w)| w))].0;
        let at = countries.iter().position(|c| *c == home).expect("corridor chosen through home");
        // The whole corridor is a TIR transport of at most 6 countries, so a length is found.
        for len in wanted.min(countries.len())..=countries.len() {
            let starts: Vec<usize> = (at.saturating_sub(len - 1)..=at.min(countries.len() - len))
                .filter(|s| operation::plan(&countries[*s..*s + len]).is_ok())
                .collect();
            if !starts.is_empty() {
                let start = *rng.pick(&starts);
                return countries[start..start + len].to_vec();
            }
        }
        unreachable!("{} is not a TIR transport", corridor.name)
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

    /// The simulation registers customs for every country it has offices in.
    fn has_customs(&self, country: Country) -> bool {
        self.offices.iter().any(|o| o.country == country)
    }
}

/// The customs offices of `c` in the simulated world and the demo: at its
/// UN/LOCODE border crossings where the shipped data has them, otherwise at
/// synthetic codes named after real crossings.
pub fn border_offices(c: Country) -> Vec<Office> {
    let code = c.as_str();
    let real = CROSSINGS.iter().find(|(d, _)| *d == code).map_or(&[][..], |(_, l)| *l);
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

/// Borders whose first country's side is an exclave: Russia meets Lithuania
/// only at Kaliningrad, so a road that crosses there begins or ends in Russia
/// and never goes on to Russia's other neighbours.
const EXCLAVE_BORDERS: [(&str, &str); 1] = [("RU", "LT")];

/// Whether `path` enters an exclave over its border and leaves it elsewhere.
fn through_an_exclave(path: &[Country]) -> bool {
    (1..path.len().saturating_sub(1)).any(|i| {
        EXCLAVE_BORDERS.iter().any(|(exclave, border)| {
            path[i].as_str() == *exclave && (path[i - 1].as_str() == *border || path[i + 1].as_str() == *border)
        })
    })
}

/// Every simple path of 3 to 6 countries in the graph of corridor
/// neighbours that is not a corridor segment, is longer than the shortest
/// path between its ends, and is a TIR transport (leaves its first territory).
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
                let off_corridor = !corridors.iter().any(|c| is_segment(&c.countries, &path));
                if extra > 0 && off_corridor && !through_an_exclave(&path) && operation::plan(&path).is_ok() {
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
        // The demo's corridor enters the Union at Medininkai, from Kamenny Log.
        let first_office = |c: &str| world.offices_of(country(c))[0].code.as_str().to_owned();
        assert_eq!(first_office("LT"), "LTMDK001");
        assert_eq!(first_office("BY"), "BYSIM001");
        assert_eq!(world.offices_of(country("BY"))[0].name, "Kamenny Log (synthetic office)");
        assert!(world.countries().len() >= 25);
    }

    #[test]
    fn every_corridor_is_a_tir_transport_and_one_leaves_and_reenters_the_union() {
        let world = World::standard();
        let mut reentries = Vec::new();
        for corridor in &world.corridors {
            assert!((2..=6).contains(&corridor.countries.len()), "{}", corridor.name);
            let operations = operation::plan(&corridor.countries).unwrap_or_else(|e| panic!("{}: {e}", corridor.name));
            if operations.iter().filter(|o| o.territory().is_union()).count() >= 2 {
                reentries.push(corridor.name);
            }
        }
        assert!(reentries.contains(&"Iran-Balkans"), "{reentries:?}");
        let demo: Vec<Country> = DEMO_CORRIDOR.iter().map(|c| country(c)).collect();
        assert!(world.corridors.iter().any(|c| c.countries == demo));
        let operations = operation::plan(&demo).unwrap();
        let union = operations.last().unwrap();
        assert!(union.territory().is_union());
        assert_eq!(union.countries()[0].as_str(), "LT");
        assert_eq!(operations.len(), 4, "KZ, RU, BY, then the Union");
    }

    #[test]
    fn facing_offices_are_in_the_world_on_neighbouring_countries_of_a_corridor() {
        let (standard, lithuanian) = (World::standard(), World::lithuanian());
        for (a, b) in FACING {
            let (a, b) = (OfficeCode::parse(a).unwrap(), OfficeCode::parse(b).unwrap());
            // Chernyshevskoye - Kybartai is the Lithuanian world's; the others the standard world's.
            let world = if a.as_str() == CHERNYSHEVSKOYE { &lithuanian } else { &standard };
            assert!(world.office(&a).is_some() && world.office(&b).is_some(), "{a} {b}");
            let (x, y) = (a.country(), b.country());
            assert!(world.on_a_corridor(&[x, y]), "{x}-{y} is no corridor's border");
            let mut rng = Rng::new(1);
            assert_eq!(world.crossing(x, y, &mut rng), (a.clone(), b.clone()));
            assert_eq!(world.crossing(y, x, &mut rng), (b, a));
        }
        // Medininkai, from Kamenny Log, on the demo corridor.
        let world = &standard;
        let mut rng = Rng::new(2);
        let (exit, entry) = world.crossing(country("BY"), country("LT"), &mut rng);
        assert_eq!((exit.as_str(), entry.as_str()), ("BYSIM001", "LTMDK001"));
        // Elsewhere, the offices of the two sides.
        let (exit, entry) = world.crossing(country("TR"), country("BG"), &mut rng);
        assert_eq!((exit.country().as_str(), entry.country().as_str()), ("TR", "BG"));
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
            assert!(operation::plan(path).is_ok(), "{path:?}");
        }
    }

    #[test]
    fn the_lithuanian_world_sends_tir_transports_into_the_union_through_lithuania() {
        use std::sync::Arc;

        use crate::model::traffic::Traffic;
        let world = World::lithuanian();
        let (lt, ru) = (country("LT"), country("RU"));
        assert!(world.offices_of(lt).iter().any(|o| o.name == "Medininkai"));
        assert!(world.offices_of(lt).iter().any(|o| o.name == "Kybartai"));
        // Kaliningrad into the Union at Kybartai, from Chernyshevskoye, always; other
        // Russian borders never cross there. The standard world has no such office.
        let kaliningrad: Vec<Country> = KALININGRAD_CORRIDOR.iter().map(|c| country(c)).collect();
        assert!(world.corridors.iter().any(|c| c.countries == kaliningrad));
        let operations = operation::plan(&kaliningrad).unwrap();
        assert_eq!(operations.len(), 2, "RU, then the Union");
        assert!(operations[1].territory().is_union());
        for seed in 0..20 {
            let mut rng = Rng::new(seed);
            let (exit, entry) = world.crossing(ru, lt, &mut rng);
            assert_eq!((exit.as_str(), entry.as_str()), (CHERNYSHEVSKOYE, "LTKYB001"));
            assert_eq!(world.crossing(lt, ru, &mut rng).0.as_str(), "LTKYB001");
            for other in ["BY", "EE", "KZ", "GE"] {
                let (exit, _) = world.crossing(ru, country(other), &mut rng);
                assert_ne!(exit.as_str(), CHERNYSHEVSKOYE, "RU-{other}");
            }
        }
        assert!(World::standard().office(&OfficeCode::parse(CHERNYSHEVSKOYE).unwrap()).is_none());
        for home in ["UZ", "GE", "TR", "AZ", "KZ"] {
            assert!(world.countries().contains(&country(home)), "{home}");
        }
        let traffic = Traffic::new(Arc::new(world), 7, 0.05);
        let transports: Vec<_> = (0..200).map(|i| traffic.transport(i)).collect();
        let through_lt = transports.iter().filter(|t| t.countries.contains(&lt)).count();
        assert!(through_lt > 100, "{through_lt} of 200 through LT");
        for t in &transports {
            // None stays inside one TIR territory.
            let operations = operation::plan(&t.countries).unwrap();
            assert!(!operations.is_empty(), "{:?}", t.countries);
            assert!(t.countries.len() >= 2);
        }
        // Some go from Kaliningrad straight into Lithuania.
        let from_kaliningrad = transports.iter().filter(|t| t.countries.windows(2).any(|w| w == [ru, lt])).count();
        assert!(from_kaliningrad > 0, "none of 200 crosses RU-LT");
        // A trip that crosses at Kybartai leaves from or ends at Kaliningrad; no other
        // trip uses Chernyshevskoye for anything.
        let mut kybartai_trips = 0;
        for t in (0..1_000).map(|i| traffic.transport(i)) {
            let kaliningrad_end = |at: usize| t.countries.get(at) == Some(&ru);
            let via_kybartai = t.countries.windows(2).any(|w| w == [ru, lt] || w == [lt, ru]);
            let offices: Vec<&OfficeCode> = t
                .operations
                .iter()
                .filter_map(|o| o.run())
                .flat_map(|r| [&r.start, &r.end])
                .chain([t.departure()])
                .filter(|o| o.country() == ru)
                .collect();
            if via_kybartai {
                kybartai_trips += 1;
                assert!(offices.iter().all(|o| o.as_str() == CHERNYSHEVSKOYE), "{:?}: {offices:?}", t.countries);
                if kaliningrad_end(0) {
                    assert_eq!(t.departure().as_str(), CHERNYSHEVSKOYE);
                }
            } else {
                assert!(offices.iter().all(|o| o.as_str() != CHERNYSHEVSKOYE), "{:?}: {offices:?}", t.countries);
            }
        }
        assert!(kybartai_trips > 0);
        assert!(through_an_exclave(&[lt, ru, country("EE")]));
        assert!(!through_an_exclave(&[country("PL"), lt, ru]));
        assert!(World::lithuanian().detours().iter().all(|(path, _)| !through_an_exclave(path)));
        // The first transports already cross into Lithuania: the demo shows them at once.
        assert!(transports[..5].iter().any(|t| t.countries.contains(&lt)));
    }
}
