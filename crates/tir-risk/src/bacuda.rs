//! The public schema of the WCO BACUDA synthetic import declarations: a reader
//! and a seeded generator with irregularity patterns and a drift halfway.
//!
//! The reader is a small hand parser rather than the `csv` crate: the schema is
//! fixed, its fields are identifiers and numbers that never need quoting, and
//! reading 100,000 rows this way is one pass over the bytes with no dependency.
//! A quoted field is refused with its line, not misread.

use std::collections::HashMap;
use std::fmt::Write as _;

/// The columns, in the order the generator writes them. The reader finds
/// them by name, so another order (or extra columns) reads too.
pub const COLUMNS: [&str; 14] = [
    "sgd.id",
    "sgd.date",
    "importer.id",
    "declarant.id",
    "country",
    "office.id",
    "tariff.code",
    "quantity",
    "gross.weight",
    "fob.value",
    "cif.value",
    "total.taxes",
    "illicit",
    "revenue",
];

/// A day as days since 2000-01-01 (BACUDA dates are `YY-MM-DD`, 20YY).
pub type Day = i32;

/// One import declaration. Identifiers are interned to dense numbers by the
/// reader ([`Dataset::names`] maps them back); `tariff` keeps the code's digits.
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    pub id: u32,
    pub day: Day,
    pub importer: u32,
    pub declarant: u32,
    pub country: u32,
    pub office: u32,
    /// The tariff code as written, left-aligned to 10 digits (HS6 = `tariff / 10_000`).
    pub tariff: u64,
    pub quantity: f64,
    pub gross_weight: f64,
    pub fob: f64,
    pub cif: f64,
    pub taxes: f64,
    pub illicit: bool,
    pub revenue: f64,
}

impl Declaration {
    pub fn hs6(&self) -> u32 {
        (self.tariff / 10_000) as u32
    }
    pub fn hs4(&self) -> u32 {
        self.hs6() / 100
    }
    pub fn hs2(&self) -> u32 {
        self.hs6() / 10_000
    }
}

/// Interned identifier names, per column, to write a file back or to show one.
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub ids: Vec<String>,
    pub importers: Vec<String>,
    pub declarants: Vec<String>,
    pub countries: Vec<String>,
    pub offices: Vec<String>,
}

/// Declarations sorted by day (stable: file order within a day).
#[derive(Debug, Default, Clone)]
pub struct Dataset {
    pub rows: Vec<Declaration>,
    pub names: Names,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ReadError {}

#[derive(Default)]
struct Interner {
    map: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn get(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.map.insert(s.to_owned(), i);
        self.names.push(s.to_owned());
        i
    }
}

/// Days since 2000-01-01 of a proleptic Gregorian date.
pub fn day_from_ymd(y: i32, m: u32, d: u32) -> Day {
    // Count from March so the leap day is the year's last day.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m as i32 + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 730_425
}

/// The inverse of [`day_from_ymd`].
pub fn ymd_from_day(day: Day) -> (i32, u32, u32) {
    let z = day + 730_425;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i32::from(m <= 2);
    (y, m, d)
}

/// `YY-MM-DD` (BACUDA) or `YYYY-MM-DD` (the command line).
pub fn parse_date(s: &str) -> Option<Day> {
    let mut it = s.trim().split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let year: i32 = y.parse().ok()?;
    let year = match y.len() {
        2 => 2000 + year,
        4 => year,
        _ => return None,
    };
    let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || d == 0 || d > 31 {
        return None;
    }
    let day = day_from_ymd(year, m, d);
    (ymd_from_day(day) == (year, m, d)).then_some(day)
}

pub fn format_date(day: Day) -> String {
    let (y, m, d) = ymd_from_day(day);
    format!("{:02}-{m:02}-{d:02}", y.rem_euclid(100))
}

/// 0 = Monday.
pub fn weekday(day: Day) -> u32 {
    // 2000-01-01 was a Saturday.
    (day + 5).rem_euclid(7) as u32
}

fn parse_tariff(s: &str) -> Option<u64> {
    let digits = s.trim();
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Left-align so the HS6 prefix is the same for 6, 8 and 10 digit codes;
    // a code whose leading zero was lost (9 digits) is still a chapter < 10.
    let len = if digits.len() % 2 == 1 { digits.len() + 1 } else { digits.len() };
    let v: u64 = digits.parse().ok()?;
    Some(v * 10u64.pow((10 - len) as u32))
}

/// Read a BACUDA CSV. Rows are sorted by date (stable).
pub fn read(text: &str) -> Result<Dataset, ReadError> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or(ReadError { line: 1, message: "empty file".into() })?;
    let header: Vec<&str> = header.trim_start_matches('\u{feff}').split(',').map(str::trim).collect();
    let mut at = [0usize; 14];
    for (k, name) in COLUMNS.iter().enumerate() {
        at[k] = header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ReadError { line: 1, message: format!("missing column `{name}`") })?;
    }
    let (mut ids, mut imp, mut dec, mut cty, mut off) =
        (Interner::default(), Interner::default(), Interner::default(), Interner::default(), Interner::default());
    let mut rows = Vec::new();
    let mut fields: Vec<&str> = Vec::with_capacity(header.len());
    for (i, line) in lines {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| ReadError { line: line_no, message };
        if line.contains('"') {
            return Err(err("quoted fields are not part of the schema".into()));
        }
        fields.clear();
        fields.extend(line.split(',').map(str::trim));
        if fields.len() != header.len() {
            return Err(err(format!("{} fields, header has {}", fields.len(), header.len())));
        }
        let f = |k: usize| fields[at[k]];
        let num = |k: usize| -> Result<f64, ReadError> {
            let s = f(k);
            if s.is_empty() || s == "NA" {
                return Ok(f64::NAN);
            }
            s.parse::<f64>().map_err(|_| err(format!("`{}` is not a number: `{s}`", COLUMNS[k])))
        };
        let day = parse_date(f(1)).ok_or_else(|| err(format!("`sgd.date` is not YY-MM-DD: `{}`", f(1))))?;
        let tariff = parse_tariff(f(6)).ok_or_else(|| err(format!("`tariff.code` is not digits: `{}`", f(6))))?;
        let illicit = match f(12) {
            "1" | "1.0" => true,
            "0" | "0.0" => false,
            s => return Err(err(format!("`illicit` is not 0 or 1: `{s}`"))),
        };
        let revenue = num(13)?;
        rows.push(Declaration {
            id: ids.get(f(0)),
            day,
            importer: imp.get(f(2)),
            declarant: dec.get(f(3)),
            country: cty.get(f(4)),
            office: off.get(f(5)),
            tariff,
            quantity: num(7)?,
            gross_weight: num(8)?,
            fob: num(9)?,
            cif: num(10)?,
            taxes: num(11)?,
            illicit,
            revenue: if revenue.is_nan() { 0.0 } else { revenue },
        });
    }
    rows.sort_by_key(|r| r.day);
    Ok(Dataset {
        rows,
        names: Names {
            ids: ids.names,
            importers: imp.names,
            declarants: dec.names,
            countries: cty.names,
            offices: off.names,
        },
    })
}

/// Write a dataset in the schema (names from `names`, tariff as 10 digits).
pub fn write(ds: &Dataset) -> String {
    let mut out = String::with_capacity(ds.rows.len() * 120);
    out.push_str(&COLUMNS.join(","));
    out.push('\n');
    let n = &ds.names;
    for r in &ds.rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{:010},{},{:.1},{:.0},{:.0},{:.0},{},{:.0}",
            n.ids[r.id as usize],
            format_date(r.day),
            n.importers[r.importer as usize],
            n.declarants[r.declarant as usize],
            n.countries[r.country as usize],
            n.offices[r.office as usize],
            r.tariff,
            r.quantity,
            r.gross_weight,
            r.fob,
            r.cif,
            r.taxes,
            u8::from(r.illicit),
            r.revenue,
        );
    }
    out
}

/// SplitMix64: small, seeded, and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_5EED)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-12);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
}

/// What changes at the drift ([`GenConfig::drift_day`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriftKind {
    /// The risky importers, declarants, chapters and origins are drawn anew;
    /// half of the irregularities are undervalued, before and after.
    #[default]
    Redraw,
    /// As `Redraw`, but the irregularities the newly risky add (beyond a
    /// neutral declaration's share) are new schemes (misdeclared origin,
    /// misclassification) that show nothing in the values.
    NewSchemes,
    /// The old schemes stop and new ones start among newcomers: every
    /// importer, declarant, chapter and origin of the first half becomes
    /// ordinary, and [`NEW_SHARE`] of the declarations after the drift come
    /// from new importers (about one per 3,000 rows of the file, through a few
    /// new declarants) that never declared before and are irregular about
    /// 45 % of the time, by schemes that show nothing in the values.
    Replace,
    /// As `Replace`, but the new schemes start among established importers
    /// that were ordinary before: drawn at random among those with under 1 %
    /// of the declarations each, until they hold [`NEW_SHARE`] of them; their
    /// log-odds rise by about 3.4 (about 45 % irregular), by schemes that
    /// show nothing in the values. A policy that inspected them before found
    /// them clean.
    Turn,
    /// A new smuggling route while the old schemes go on: after the drift
    /// the first half's risky importers, declarants, chapters and origins
    /// stay risky as before, and goods of a few high-duty HS chapters that
    /// were ordinary (drawn until they hold [`ROUTE_CHAPTERS_SHARE`] of the
    /// declarations) start to come through one origin that was ordinary too:
    /// [`ROUTE_DIVERTED`] of those chapters' declarations by importers that
    /// were not risky are declared from that origin, and are irregular with
    /// log-odds −3.6 + [`ROUTE_LIFT`] plus their importer's, declarant's and
    /// chapter's offsets (about half of them), by a scheme that shows nothing
    /// in the values (a misdeclared origin). The route's declarations look
    /// like any ordinary importer's, so a policy that only inspects its top
    /// scores has little reason to look there.
    Route,
    /// The old schemes go on, and the largest importers that were ordinary
    /// (taken by size until they hold [`NEW_SHARE`] of the declarations)
    /// start to be irregular: their log-odds rise by [`TRUSTED_LIFT`] (about
    /// half of their declarations), by schemes that show nothing in the
    /// values. A policy that inspected them before found them clean, so a
    /// policy that only inspects its top scores has no reason to go back.
    Trusted,
}

/// Under [`DriftKind::Replace`], the share of the declarations after the drift
/// that come from the new importers.
pub const NEW_SHARE: f64 = 0.10;

/// Under [`DriftKind::Route`], the share of the declarations (expected, over
/// the whole file) the route's chapters hold.
pub const ROUTE_CHAPTERS_SHARE: f64 = 0.10;
/// Under [`DriftKind::Route`], the share of the route chapters' declarations
/// by importers that were not risky that come through the route's origin
/// after the drift.
pub const ROUTE_DIVERTED: f64 = 0.6;
/// Under [`DriftKind::Route`], the rise in log-odds of a declaration on the
/// route.
pub const ROUTE_LIFT: f64 = 3.6;
/// Under [`DriftKind::Trusted`], the rise in log-odds of a turned importer's
/// declarations.
pub const TRUSTED_LIFT: f64 = 3.6;

/// What the generator makes. The defaults are a two-year file.
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub rows: usize,
    pub seed: u64,
    /// First day (`13-01-01` like the BACUDA files).
    pub start: Day,
    pub days: i32,
    /// What changes at the drift; the rows before it are the same whatever
    /// this is.
    pub drift: DriftKind,
}

impl GenConfig {
    pub fn new(rows: usize, seed: u64) -> Self {
        GenConfig { rows, seed, start: day_from_ymd(2013, 1, 1), days: 730, drift: DriftKind::Redraw }
    }
    /// The day the patterns change.
    pub fn drift_day(&self) -> Day {
        self.start + self.days / 2
    }
    /// How many new importers [`DriftKind::Replace`] brings (0 otherwise);
    /// they are numbered after the others.
    pub fn new_importers(&self) -> usize {
        if self.drift == DriftKind::Replace { (self.rows / 3000).max(5) } else { 0 }
    }
}

/// Who and what is risky in one half of the file.
struct Regime {
    importer: Vec<f64>,
    declarant: Vec<f64>,
    chapter: Vec<f64>,
    country: Vec<f64>,
}

fn regime(rng: &mut Rng, importers: usize, declarants: usize, countries: usize) -> Regime {
    // Log-odds offsets: a few strongly risky entities, most neutral.
    let mut pick = |n: usize, share: f64, lift: f64| -> Vec<f64> {
        (0..n).map(|_| if rng.chance(share) { lift + 0.5 * rng.normal() } else { 0.3 * rng.normal() }).collect()
    };
    Regime {
        importer: pick(importers, 0.06, 2.6),
        declarant: pick(declarants, 0.08, 1.2),
        chapter: pick(97, 0.12, 1.3),
        country: pick(countries, 0.15, 1.0),
    }
}

/// A deterministic BACUDA-like file: the same config gives the same bytes.
///
/// Irregularities come from a logistic model of importer, declarant, HS
/// chapter and origin. Half of the illicit declarations are undervalued (the
/// declared CIF is 45-85 % of the true one; `revenue` is the tax on the
/// difference); the other half show nothing in their values (`revenue` is
/// 20-80 % of their taxes).
/// Halfway ([`GenConfig::drift_day`]) the risky importers, declarants, chapters
/// and origins are drawn anew; [`GenConfig::drift`] says how otherwise.
pub fn generate(cfg: &GenConfig) -> Dataset {
    let mut rng = Rng::new(cfg.seed);
    let n_imp = (cfg.rows / 40).max(20);
    let n_dec = (cfg.rows / 300).max(8);
    let n_cty = 40;
    let n_off = 12;
    let n_hs6 = (cfg.rows / 150).clamp(30, 900);
    // Per HS6: the code, its price per unit and kg per unit.
    let hs6: Vec<(u32, f64, f64)> = (0..n_hs6)
        .map(|_| {
            let chapter = 1 + rng.below(96) as u32;
            let code = chapter * 10_000 + rng.below(10_000) as u32;
            let price = (2.0 + 2.0 * rng.normal()).exp().clamp(0.5, 5_000.0);
            let kg = (0.5 * rng.normal()).exp() * (0.05 + rng.f64() * 2.0);
            (code, price, kg)
        })
        .collect();
    // Importers trade in a few codes each; declarants serve many importers.
    let imp_codes: Vec<[usize; 4]> =
        (0..n_imp).map(|_| std::array::from_fn(|_| rng.below(n_hs6 as u64) as usize)).collect();
    let imp_declarant: Vec<u32> = (0..n_imp).map(|_| rng.below(n_dec as u64) as u32).collect();
    let imp_country: Vec<u32> = (0..n_imp).map(|_| rng.below(n_cty as u64) as u32).collect();
    let imp_size: Vec<f64> = (0..n_imp).map(|_| (1.2 * rng.normal()).exp()).collect();
    let total_size: f64 = imp_size.iter().sum();
    let mut cum = Vec::with_capacity(n_imp);
    let mut acc = 0.0;
    for s in &imp_size {
        acc += s / total_size;
        cum.push(acc);
    }
    let before = regime(&mut rng, n_imp, n_dec, n_cty);
    let after = regime(&mut rng, n_imp, n_dec, n_cty);
    let rate: Vec<f64> = (0..97).map(|_| [0.0, 0.05, 0.08, 0.12, 0.2][rng.below(5) as usize]).collect();
    // The newcomers of a replacing drift come from their own generator, so
    // that everything before the drift is drawn as by default.
    let replace = cfg.drift == DriftKind::Replace;
    let turn = cfg.drift == DriftKind::Turn;
    let mut side = Rng::new(cfg.seed ^ 0x4E45_5743_4F4D_4552);
    let n_new = cfg.new_importers();
    let n_new_dec = if replace { (n_new / 6).max(2) } else { 0 };
    let new_codes: Vec<[usize; 4]> =
        (0..n_new).map(|_| std::array::from_fn(|_| side.below(n_hs6 as u64) as usize)).collect();
    let new_declarant: Vec<u32> = (0..n_new).map(|_| (n_dec + side.below(n_new_dec as u64) as usize) as u32).collect();
    let new_country: Vec<u32> = (0..n_new).map(|_| side.below(n_cty as u64) as u32).collect();
    let new_lift: Vec<f64> = (0..n_new).map(|_| 3.4 + 0.5 * side.normal()).collect();
    let new_size: Vec<f64> = (0..n_new).map(|_| (0.5 * side.normal()).exp()).collect();
    let new_total: f64 = new_size.iter().sum();
    let new_cum: Vec<f64> = new_size
        .iter()
        .scan(0.0, |acc, s| {
            *acc += s / new_total;
            Some(*acc)
        })
        .collect();
    // After a replacing drift nobody of the first half is risky any more.
    let ordinary = |rng: &mut Rng, n: usize| -> Vec<f64> { (0..n).map(|_| 0.3 * rng.normal()).collect() };
    let mut ordinary = Regime {
        importer: ordinary(&mut side, n_imp),
        declarant: ordinary(&mut side, n_dec + n_new_dec),
        chapter: ordinary(&mut side, 97),
        country: ordinary(&mut side, n_cty),
    };
    // The new route, under `Route`, from its own generator: an origin that
    // was ordinary, and high-duty chapters that were ordinary, in random
    // order until they hold their share of the declarations.
    let on_route_drift = cfg.drift == DriftKind::Route;
    let mut lane = Rng::new(cfg.seed ^ 0x524F_5554_4520_4E45);
    let mut route_chapter = [false; 97];
    let mut route_country = 0u32;
    if on_route_drift {
        let ordinary: Vec<u32> = (0..n_cty as u32).filter(|&c| before.country[c as usize].abs() < 0.5).collect();
        route_country = ordinary[lane.below(ordinary.len() as u64) as usize];
        // Expected share of the declarations per chapter: importers' sizes
        // over their four codes.
        let mut share = vec![0.0; 97];
        for (i, codes) in imp_codes.iter().enumerate() {
            for &c in codes {
                share[(hs6[c].0 / 10_000) as usize] += imp_size[i] / total_size / 4.0;
            }
        }
        let mut order: Vec<usize> = (1..97).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, lane.below(i as u64 + 1) as usize);
        }
        let mut held = 0.0;
        for ch in order {
            if held >= ROUTE_CHAPTERS_SHARE {
                break;
            }
            if share[ch] > 0.0 && rate[ch] >= 0.12 && before.chapter[ch].abs() < 0.5 {
                route_chapter[ch] = true;
                held += share[ch];
            }
        }
    }
    // Who turns (new schemes after the drift), under `Trusted`: the largest
    // that were ordinary.
    let trusted_drift = cfg.drift == DriftKind::Trusted;
    let mut turned = vec![false; n_imp];
    if trusted_drift {
        let mut order: Vec<usize> = (0..n_imp).filter(|&i| before.importer[i] < 0.5).collect();
        order.sort_by(|&a, &b| imp_size[b].total_cmp(&imp_size[a]));
        let mut held = 0.0;
        for i in order {
            if held >= NEW_SHARE {
                break;
            }
            held += imp_size[i] / total_size;
            turned[i] = true;
        }
    }
    // Under `Turn`: ordinary before, small enough, at random.
    if turn {
        let mut order: Vec<usize> = (0..n_imp).collect();
        for i in (1..n_imp).rev() {
            order.swap(i, side.below(i as u64 + 1) as usize);
        }
        let mut share = 0.0;
        for i in order {
            let own = imp_size[i] / total_size;
            if share >= NEW_SHARE || own >= 0.01 || before.importer[i] > 0.5 {
                continue;
            }
            share += own;
            turned[i] = true;
            ordinary.importer[i] += 3.4 + 0.5 * side.normal();
        }
    }

    let mut days: Vec<Day> = (0..cfg.rows).map(|_| cfg.start + rng.below(cfg.days as u64) as Day).collect();
    days.sort_unstable();
    let drift = cfg.drift_day();
    let mut rows = Vec::with_capacity(cfg.rows);
    for (i, &day) in days.iter().enumerate() {
        // A newcomer of a replacing drift, or one of the importers.
        let newcomer = (replace && day >= drift && rng.chance(NEW_SHARE)).then(|| {
            let u = rng.f64();
            new_cum.partition_point(|&c| c < u).min(n_new - 1)
        });
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let mut on_route = false;
        let (imp, declarant, country, code, price, kg, p) = if let Some(j) = newcomer {
            let declarant = if rng.chance(0.9) { new_declarant[j] } else { rng.below(n_dec as u64) as u32 };
            let country = if rng.chance(0.85) { new_country[j] } else { rng.below(n_cty as u64) as u32 };
            let (code, price, kg) = hs6[new_codes[j][rng.below(4) as usize]];
            let r = &ordinary;
            let chapter = (code / 10_000) as usize;
            let lift = new_lift[j] + r.declarant[declarant as usize] + r.chapter[chapter] + r.country[country as usize];
            (n_imp + j, declarant, country, code, price, kg, sig(-3.6 + lift))
        } else {
            let u = rng.f64();
            let imp = cum.partition_point(|&c| c < u).min(n_imp - 1);
            let declarant = if rng.chance(0.8) { imp_declarant[imp] } else { rng.below(n_dec as u64) as u32 };
            let country = if rng.chance(0.85) { imp_country[imp] } else { rng.below(n_cty as u64) as u32 };
            let (code, price, kg) = hs6[imp_codes[imp][rng.below(4) as usize]];
            let chapter = (code / 10_000) as usize;
            let r = match (day < drift, replace) {
                (true, _) => &before,
                (false, false) if turn => &ordinary,
                (false, false) if on_route_drift || trusted_drift => &before,
                (false, false) => &after,
                (false, true) => &ordinary,
            };
            if on_route_drift
                && day >= drift
                && route_chapter[chapter]
                && before.importer[imp] < 0.5
                && lane.chance(ROUTE_DIVERTED)
            {
                on_route = true;
                let lift = ROUTE_LIFT + r.importer[imp] + r.declarant[declarant as usize] + r.chapter[chapter];
                (imp, declarant, route_country, code, price, kg, sig(-3.6 + lift))
            } else {
                let lift = if trusted_drift && turned[imp] && day >= drift { TRUSTED_LIFT } else { 0.0 }
                    + r.importer[imp]
                    + r.declarant[declarant as usize]
                    + r.chapter[chapter]
                    + r.country[country as usize];
                (imp, declarant, country, code, price, kg, sig(-3.6 + lift))
            }
        };
        let chapter = (code / 10_000) as usize;
        let illicit = rng.chance(p);
        // With new schemes, the irregularities the new risky ones add above a
        // neutral declaration's risk are of a kind the values do not show;
        // a newcomer's never show.
        let new_scheme = illicit
            && (newcomer.is_some()
                || on_route
                || (turned.get(imp).copied().unwrap_or(false) && day >= drift)
                || (cfg.drift == DriftKind::NewSchemes && day >= drift && rng.chance(1.0 - sig(-3.6) / p)));
        let quantity = (1.0 + (1.0 + 1.3 * rng.normal()).exp()).round();
        let true_fob = quantity * price * (0.35 * rng.normal()).exp();
        let gross_weight = quantity * kg * (0.1 * rng.normal()).exp() + 0.5;
        let freight = 1.03 + 0.1 * rng.f64();
        // Half of the irregular ones are undervalued; the others (wrong origin,
        // misclassification) show nothing in their values.
        let undervalued = illicit && !new_scheme && rng.chance(0.5);
        let declared = if undervalued { 0.45 + 0.4 * rng.f64() } else { 1.0 };
        let fob = (true_fob * declared).max(1.0);
        let cif = fob * freight;
        let tax_rate = rate[chapter] + 0.2; // duty plus VAT
        let taxes = cif * tax_rate;
        let revenue = if undervalued {
            (true_fob * freight - cif) * tax_rate
        } else if illicit {
            cif * tax_rate * (0.2 + 0.6 * rng.f64())
        } else {
            0.0
        };
        rows.push(Declaration {
            id: i as u32,
            day,
            importer: imp as u32,
            declarant,
            country,
            office: rng.below(n_off) as u32,
            tariff: u64::from(code) * 10_000 + rng.below(100) * 100,
            quantity,
            gross_weight: gross_weight.round().max(1.0),
            fob: fob.round(),
            cif: cif.round(),
            taxes: taxes.round(),
            illicit,
            revenue: revenue.round(),
        });
    }
    let names = Names {
        ids: (0..cfg.rows).map(|i| format!("SGD{i}")).collect(),
        importers: (0..n_imp + n_new).map(|i| format!("IMP{i:06}")).collect(),
        declarants: (0..n_dec + n_new_dec).map(|i| format!("DEC{i:04}")).collect(),
        countries: (0..n_cty).map(|i| format!("CNTRY{i:03}")).collect(),
        offices: (0..n_off).map(|i| format!("OFFICE{i:02}")).collect(),
    };
    Dataset { rows, names }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_weekdays() {
        assert_eq!(day_from_ymd(2000, 1, 1), 0);
        assert_eq!(parse_date("13-01-01"), Some(day_from_ymd(2013, 1, 1)));
        assert_eq!(parse_date("2013-01-01"), parse_date("13-01-01"));
        assert_eq!(parse_date("13-02-29"), None);
        assert_eq!(parse_date("12-02-29").map(format_date).as_deref(), Some("12-02-29"));
        // 2013-01-01 was a Tuesday.
        assert_eq!(weekday(day_from_ymd(2013, 1, 1)), 1);
        for day in -1000..40_000 {
            let (y, m, d) = ymd_from_day(day);
            assert_eq!(day_from_ymd(y, m, d), day);
        }
    }

    #[test]
    fn generator_is_deterministic_and_drifts() {
        let cfg = GenConfig::new(3000, 7);
        let a = write(&generate(&cfg));
        assert_eq!(a, write(&generate(&cfg)));
        assert_ne!(a, write(&generate(&GenConfig::new(3000, 8))));
        let ds = generate(&cfg);
        let rate = ds.rows.iter().filter(|r| r.illicit).count() as f64 / ds.rows.len() as f64;
        assert!((0.02..0.25).contains(&rate), "irregularity rate {rate}");
        assert!(ds.rows.windows(2).all(|w| w[0].day <= w[1].day));
    }

    #[test]
    fn new_schemes_change_only_what_follows_the_drift() {
        let cfg = GenConfig::new(20_000, 7);
        let (a, b) = (generate(&cfg), generate(&GenConfig { drift: DriftKind::NewSchemes, ..cfg.clone() }));
        let cut = a.rows.partition_point(|r| r.day < cfg.drift_day());
        assert_eq!(a.rows[..cut], b.rows[..cut]);
        // Mean log unit value of the irregular ones after the drift against
        // their HS6 code's compliant mean: undervaluation pulls it down.
        let shortfall = |ds: &Dataset| {
            let mut mean: HashMap<u32, (f64, f64)> = HashMap::new();
            for r in ds.rows.iter().filter(|r| !r.illicit) {
                let m = mean.entry(r.hs6()).or_default();
                *m = (m.0 + (r.cif / r.quantity).ln(), m.1 + 1.0);
            }
            let d: Vec<f64> = ds.rows[cut..]
                .iter()
                .filter(|r| r.illicit)
                .filter_map(|r| mean.get(&r.hs6()).map(|m| (r.cif / r.quantity).ln() - m.0 / m.1))
                .collect();
            d.iter().sum::<f64>() / d.len() as f64
        };
        let (old, new) = (shortfall(&a), shortfall(&b));
        assert!(old < -0.1 && new > old + 0.1, "default {old:.3}, new schemes {new:.3}");
    }

    /// The default 30,000-row file and the one with `drift`, checked to be
    /// deterministic and to share the rows before the drift; and where it cuts.
    fn with_drift(drift: DriftKind) -> (GenConfig, Dataset, Dataset, usize) {
        let cfg = GenConfig::new(30_000, 4);
        let dcfg = GenConfig { drift, ..cfg.clone() };
        let (a, b) = (generate(&cfg), generate(&dcfg));
        assert_eq!(write(&b), write(&generate(&dcfg)), "deterministic for a seed");
        let cut = a.rows.partition_point(|r| r.day < cfg.drift_day());
        assert_eq!(a.rows[..cut], b.rows[..cut], "the first half is the default's");
        (dcfg, a, b, cut)
    }

    /// Per importer: declarations and irregular ones before `cut`, then after.
    fn per_importer(ds: &Dataset, cut: usize) -> HashMap<u32, [usize; 4]> {
        let mut counts: HashMap<u32, [usize; 4]> = HashMap::new();
        for (i, r) in ds.rows.iter().enumerate() {
            let at = if i < cut { 0 } else { 2 };
            let c = counts.entry(r.importer).or_default();
            c[at] += 1;
            c[at + 1] += usize::from(r.illicit);
        }
        counts
    }

    #[test]
    fn a_replacing_drift_stops_the_old_schemes_and_starts_new_ones() {
        let (rcfg, a, b, cut) = with_drift(DriftKind::Replace);
        let n_imp = b.names.importers.len() - rcfg.new_importers();
        assert_eq!(rcfg.new_importers(), 10);
        let rate = |rows: &mut dyn Iterator<Item = &Declaration>| {
            let (n, k) = rows.fold((0, 0), |(n, k), r| (n + 1, k + usize::from(r.illicit)));
            (n, k as f64 / n.max(1) as f64)
        };
        // The newcomers declare only after the drift, a tenth of it, and
        // are irregular about half the time.
        assert!(b.rows[..cut].iter().all(|r| (r.importer as usize) < n_imp));
        let (n, new_rate) = rate(&mut b.rows[cut..].iter().filter(|r| r.importer as usize >= n_imp));
        let share = n as f64 / (b.rows.len() - cut) as f64;
        assert!((0.08..0.12).contains(&share), "newcomers' share {share}");
        assert!(new_rate > 0.3, "newcomers' rate {new_rate}");
        // Their irregularities show nothing in the values: revenue is at most
        // 80 % of the declared taxes.
        assert!(
            b.rows[cut..]
                .iter()
                .filter(|r| r.importer as usize >= n_imp && r.illicit)
                .all(|r| r.revenue <= r.taxes * 0.8 + 1.0)
        );
        // The importers that were risky before are ordinary after: over the 30
        // with the highest rate before (at least 20 declarations), the rate
        // after falls to the background's.
        let mut risky: Vec<(u32, f64)> = per_importer(&a, cut)
            .iter()
            .filter(|(_, c)| c[0] >= 20)
            .map(|(&i, c)| (i, c[1] as f64 / c[0] as f64))
            .collect();
        risky.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        let top: Vec<u32> = risky.iter().take(30).map(|x| x.0).collect();
        let (_, before) = rate(&mut a.rows[..cut].iter().filter(|r| top.contains(&r.importer)));
        let (_, after) = rate(&mut b.rows[cut..].iter().filter(|r| top.contains(&r.importer)));
        let (_, old) = rate(&mut b.rows[cut..].iter().filter(|r| (r.importer as usize) < n_imp));
        assert!(before > 0.15 && after < 0.08, "old risky importers: {before:.3} before, {after:.3} after");
        assert!(old < 0.06, "old importers after the drift: {old:.3}");
    }

    #[test]
    fn a_turning_drift_makes_ordinary_importers_risky() {
        let (_, a, b, cut) = with_drift(DriftKind::Turn);
        assert_eq!(b.names.importers.len(), a.names.importers.len(), "no newcomers");
        let counts = per_importer(&b, cut);
        // The turned ones: irregular over 30 % after, on 10+ declarations.
        let turned: Vec<u32> =
            counts.iter().filter(|(_, c)| c[2] >= 10 && c[3] * 10 > c[2] * 3).map(|(&i, _)| i).collect();
        let sum = |k: usize| turned.iter().map(|i| counts[i][k]).sum::<usize>() as f64;
        let share = sum(2) / (b.rows.len() - cut) as f64;
        assert!((0.06..0.14).contains(&share), "turned importers' share after: {share:.3}");
        assert!(sum(1) / sum(0) < 0.1, "their rate before: {:.3}", sum(1) / sum(0));
        // Their irregularities show nothing in the values.
        assert!(
            b.rows[cut..]
                .iter()
                .filter(|r| turned.contains(&r.importer) && r.illicit)
                .all(|r| r.revenue <= r.taxes * 0.8 + 1.0)
        );
    }

    #[test]
    fn a_trusted_drift_keeps_the_old_schemes_and_turns_the_largest_ordinary_importers() {
        let (_, _, b, cut) = with_drift(DriftKind::Trusted);
        let counts = per_importer(&b, cut);
        let rate = |c: &[usize; 4], at: usize| c[at + 1] as f64 / c[at].max(1) as f64;
        let turned: Vec<u32> = counts
            .iter()
            .filter(|(_, c)| c[0] >= 20 && c[2] >= 20 && rate(c, 2) - rate(c, 0) > 0.25)
            .map(|(&i, _)| i)
            .collect();
        let sum = |k: usize| turned.iter().map(|i| counts[i][k]).sum::<usize>() as f64;
        let share = sum(2) / (b.rows.len() - cut) as f64;
        assert!((0.08..0.16).contains(&share), "turned importers' share after: {share:.3}");
        assert!(turned.len() <= 20, "{} turned: they should be a few large ones", turned.len());
        assert!(sum(1) / sum(0) < 0.1, "their rate before: {:.3}", sum(1) / sum(0));
        assert!((0.35..0.7).contains(&(sum(3) / sum(2))), "their rate after: {:.3}", sum(3) / sum(2));
        // The old schemes go on: who was risky before still is.
        let risky: Vec<&[usize; 4]> = counts.values().filter(|c| c[0] >= 20 && rate(c, 0) > 0.3).collect();
        assert!(!risky.is_empty());
        let (after, irregular) = risky.iter().fold((0, 0), |(n, k), c| (n + c[2], k + c[3]));
        assert!(irregular as f64 / after as f64 > 0.25, "the risky ones after: {irregular} of {after}");
        // The turned importers' irregularities show nothing in the values.
        assert!(
            b.rows[cut..]
                .iter()
                .filter(|r| turned.contains(&r.importer) && r.illicit)
                .all(|r| r.revenue <= r.taxes * 0.8 + 1.0)
        );
    }

    #[test]
    fn a_route_drift_keeps_the_old_schemes_and_opens_a_new_origin() {
        let (_, a, b, cut) = with_drift(DriftKind::Route);
        assert_eq!(b.names.importers.len(), a.names.importers.len(), "no newcomers");
        let (n1, n2) = (cut as f64, (b.rows.len() - cut) as f64);
        // The route's origin: the one whose share of the declarations grows
        // most after the drift; its segment, the chapters it then brings at
        // least five times as often as before.
        let mut by_country: HashMap<u32, [f64; 2]> = HashMap::new();
        let mut by_chapter: HashMap<(u32, u32), [f64; 2]> = HashMap::new();
        for (i, r) in b.rows.iter().enumerate() {
            let at = usize::from(i >= cut);
            by_country.entry(r.country).or_default()[at] += 1.0;
            by_chapter.entry((r.country, r.hs2())).or_default()[at] += 1.0;
        }
        let growth = |c: &[f64; 2]| c[1] / n2 - c[0] / n1;
        let (&origin, c) = by_country.iter().max_by(|x, y| growth(x.1).total_cmp(&growth(y.1))).unwrap();
        let grown = growth(c);
        assert!((0.03..0.09).contains(&grown), "the route's origin grows by {grown:.3} of the declarations");
        let route: Vec<u32> = by_chapter
            .iter()
            .filter(|((o, _), c)| *o == origin && c[1] >= 20.0 && c[1] >= 5.0 * c[0].max(1.0))
            .map(|((_, ch), _)| *ch)
            .collect();
        assert!(!route.is_empty(), "no chapter surges through the origin");
        let on_route = |r: &Declaration| r.country == origin && route.contains(&r.hs2());
        let rate = |rows: &[Declaration], f: &dyn Fn(&Declaration) -> bool| {
            let (n, k) = rows.iter().filter(|r| f(r)).fold((0, 0), |(n, k), r| (n + 1, k + usize::from(r.illicit)));
            (n, k as f64 / n.max(1) as f64)
        };
        // The segment was clean before and about half irregular after, by
        // schemes that show nothing in the values.
        let (seg_before, before) = rate(&b.rows[..cut], &on_route);
        let (seg_after, after) = rate(&b.rows[cut..], &on_route);
        assert!(before < 0.1, "route before: {before:.3} of {seg_before}");
        assert!(after > 0.35, "route after: {after:.3} of {seg_after}");
        let share = seg_after as f64 / n2;
        assert!((0.03..0.1).contains(&share), "the route's share after the drift: {share:.3}");
        let hidden = b.rows[cut..].iter().filter(|r| on_route(r) && r.illicit);
        let (n, shown) = hidden.fold((0, 0), |(n, k), r| (n + 1, k + usize::from(r.revenue > r.taxes * 0.8 + 1.0)));
        assert!(shown * 20 < n, "{shown} of the route's {n} irregularities are undervalued");
        // The old schemes go on: the 30 importers with the highest rate
        // before (at least 20 declarations) keep it after.
        let mut by_imp: HashMap<u32, (usize, usize)> = HashMap::new();
        for r in &b.rows[..cut] {
            let e = by_imp.entry(r.importer).or_default();
            *e = (e.0 + 1, e.1 + usize::from(r.illicit));
        }
        let mut risky: Vec<(u32, f64)> =
            by_imp.iter().filter(|(_, c)| c.0 >= 20).map(|(&i, c)| (i, c.1 as f64 / c.0 as f64)).collect();
        risky.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        let top: Vec<u32> = risky.iter().take(30).map(|x| x.0).collect();
        let (_, old_before) = rate(&b.rows[..cut], &|r| top.contains(&r.importer));
        let (_, old_after) = rate(&b.rows[cut..], &|r| top.contains(&r.importer));
        assert!(
            old_before > 0.15 && old_after > 0.7 * old_before,
            "old risky importers: {old_before:.3}, {old_after:.3}"
        );
    }

    #[test]
    fn read_what_was_written() {
        let ds = generate(&GenConfig::new(500, 3));
        let text = write(&ds);
        let back = read(&text).unwrap();
        assert_eq!(back.rows.len(), 500);
        assert_eq!(write(&back), text);
        for (a, b) in ds.rows.iter().zip(&back.rows) {
            assert_eq!((a.day, a.tariff, a.illicit, a.hs6()), (b.day, b.tariff, b.illicit, b.hs6()));
        }
    }

    #[test]
    fn reader_errors_name_the_line() {
        let head = COLUMNS.join(",");
        let e = read(&format!("{head}\n1,13-01-01,a,b,c,d,0101,1,1,1,1,1,2,0\n")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("illicit"), "{e}");
        let e = read("sgd.id,sgd.date\n").unwrap_err();
        assert!(e.message.contains("importer.id"), "{e}");
        let e = read(&format!("{head}\n1,13-13-01,a,b,c,d,0101,1,1,1,1,1,1,0\n")).unwrap_err();
        assert!(e.message.contains("sgd.date"), "{e}");
        // Column order is free, a 6-digit code aligns with a 10-digit one.
        let ds = read(
            "illicit,revenue,sgd.id,sgd.date,importer.id,declarant.id,country,office.id,tariff.code,quantity,gross.weight,fob.value,cif.value,total.taxes\n\
             1,50,x,14-03-02,i,d,CN,o,870321,2,1000,10,11,3\n",
        )
        .unwrap();
        assert_eq!(ds.rows[0].hs6(), 870_321);
        assert_eq!(ds.rows[0].hs2(), 87);
        assert!(ds.rows[0].illicit);
        assert_eq!(ds.rows[0].revenue, 50.0);
    }
}
