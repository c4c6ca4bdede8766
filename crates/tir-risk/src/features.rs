//! Features in the style of DATE (Kim et al., KDD 2020): values and their
//! ratios, the HS code at three depths, date features, and smoothed historic
//! irregularity rates of the importer, declarant, HS code, origin and office.
//!
//! The rates come from running counts fed in date order: a declaration's
//! features read the state as it was at the start of its day, and only then is
//! the day's batch added. So no row sees its own outcome, a same-day one or a
//! later one (the test `no_future_leakage` flips those and checks).

use std::collections::HashMap;

use crate::bacuda::{Day, Declaration, weekday, ymd_from_day};

/// Names of the features, in the order of [`Features`].
pub const NAMES: [&str; 21] = [
    "cif_log",
    "unit_value_log",
    "value_per_kg_log",
    "tax_ratio",
    "quantity_log",
    "gross_weight_log",
    "cif_fob_ratio",
    "unit_value_vs_hs6",
    "value_per_kg_vs_hs6",
    "hs2",
    "importer_rate",
    "importer_history",
    "declarant_rate",
    "declarant_history",
    "hs6_rate",
    "hs4_rate",
    "hs2_rate",
    "origin_rate",
    "office_rate",
    "weekday",
    "month",
];

pub const COUNT: usize = NAMES.len();
pub type Features = [f64; COUNT];

/// Index of the importer's historic rate (the baseline scores with it alone).
pub const IMPORTER_RATE: usize = 10;

/// Pseudo-count of the smoothing: a key with `SMOOTHING` known outcomes is
/// halfway between its own rate and the overall one.
const SMOOTHING: f64 = 5.0;

#[derive(Debug, Default, Clone, Copy)]
struct Count {
    declared: u32,
    known: u32,
    illicit: u32,
}

#[derive(Debug, Default, Clone, Copy)]
struct Mean {
    n: u32,
    sum: f64,
}

impl Mean {
    fn add(&mut self, x: f64) {
        if x.is_finite() {
            self.n += 1;
            self.sum += x;
        }
    }
    fn get(&self) -> f64 {
        if self.n == 0 { f64::NAN } else { self.sum / f64::from(self.n) }
    }
}

/// What is known about past declarations: running counts per key.
#[derive(Debug, Default, Clone)]
pub struct History {
    importer: HashMap<u32, Count>,
    declarant: HashMap<u32, Count>,
    hs6: HashMap<u32, Count>,
    hs4: HashMap<u32, Count>,
    hs2: HashMap<u32, Count>,
    country: HashMap<u32, Count>,
    office: HashMap<u32, Count>,
    unit_value: HashMap<u32, Mean>,
    per_kg: HashMap<u32, Mean>,
    known: u32,
    illicit: u32,
}

fn ln_ratio(a: f64, b: f64) -> f64 {
    if a > 0.0 && b > 0.0 { (a / b).ln() } else { f64::NAN }
}

fn ln1p(x: f64) -> f64 {
    if x >= 0.0 { x.ln_1p() } else { f64::NAN }
}

impl History {
    fn prior(&self) -> f64 {
        // Before any outcome is known, a typical customs irregularity rate.
        if self.known == 0 { 0.05 } else { f64::from(self.illicit) / f64::from(self.known) }
    }

    fn rate(&self, map: &HashMap<u32, Count>, key: u32) -> f64 {
        let c = map.get(&key).copied().unwrap_or_default();
        (f64::from(c.illicit) + SMOOTHING * self.prior()) / (f64::from(c.known) + SMOOTHING)
    }

    fn declared(map: &HashMap<u32, Count>, key: u32) -> f64 {
        f64::from(map.get(&key).map_or(0, |c| c.declared)).ln_1p()
    }

    /// The features of `r` from what this history knows.
    pub fn features(&self, r: &Declaration) -> Features {
        let unit = ln_ratio(r.cif, r.quantity);
        let per_kg = ln_ratio(r.cif, r.gross_weight);
        let vs = |m: &HashMap<u32, Mean>, x: f64| x - m.get(&r.hs6()).map_or(f64::NAN, Mean::get);
        let (_, month, _) = ymd_from_day(r.day);
        [
            ln1p(r.cif),
            unit,
            per_kg,
            if r.cif > 0.0 && r.taxes >= 0.0 { r.taxes / r.cif } else { f64::NAN },
            ln1p(r.quantity),
            ln1p(r.gross_weight),
            if r.fob > 0.0 { r.cif / r.fob } else { f64::NAN },
            vs(&self.unit_value, unit),
            vs(&self.per_kg, per_kg),
            f64::from(r.hs2()),
            self.rate(&self.importer, r.importer),
            Self::declared(&self.importer, r.importer),
            self.rate(&self.declarant, r.declarant),
            Self::declared(&self.declarant, r.declarant),
            self.rate(&self.hs6, r.hs6()),
            self.rate(&self.hs4, r.hs4()),
            self.rate(&self.hs2, r.hs2()),
            self.rate(&self.country, r.country),
            self.rate(&self.office, r.office),
            f64::from(weekday(r.day)),
            f64::from(month),
        ]
    }

    /// Add a declaration; `outcome` is its inspection result if one is known
    /// (an uninspected declaration still counts as declared).
    pub fn observe(&mut self, r: &Declaration, outcome: Option<bool>) {
        let bump = |map: &mut HashMap<u32, Count>, key: u32| {
            let c = map.entry(key).or_default();
            c.declared += 1;
            if let Some(illicit) = outcome {
                c.known += 1;
                c.illicit += u32::from(illicit);
            }
        };
        bump(&mut self.importer, r.importer);
        bump(&mut self.declarant, r.declarant);
        bump(&mut self.hs6, r.hs6());
        bump(&mut self.hs4, r.hs4());
        bump(&mut self.hs2, r.hs2());
        bump(&mut self.country, r.country);
        bump(&mut self.office, r.office);
        self.unit_value.entry(r.hs6()).or_default().add(ln_ratio(r.cif, r.quantity));
        self.per_kg.entry(r.hs6()).or_default().add(ln_ratio(r.cif, r.gross_weight));
        if let Some(illicit) = outcome {
            self.known += 1;
            self.illicit += u32::from(illicit);
        }
    }
}

/// Features of `rows` (sorted by day) in one pass: each day's rows read the
/// history of the days before, then join it with the outcome `known` gives.
pub fn build(
    rows: &[Declaration],
    history: &mut History,
    mut known: impl FnMut(usize) -> Option<bool>,
) -> Vec<Features> {
    let mut out = Vec::with_capacity(rows.len());
    let mut start = 0;
    while start < rows.len() {
        let day: Day = rows[start].day;
        let end = start + rows[start..].partition_point(|r| r.day == day);
        debug_assert!(rows[end..].first().is_none_or(|r| r.day > day), "rows must be sorted by day");
        out.extend(rows[start..end].iter().map(|r| history.features(r)));
        for (i, r) in rows[start..end].iter().enumerate() {
            history.observe(r, known(start + i));
        }
        start = end;
    }
    out
}

/// Training and test features for a split at `test_from`: outcomes are known
/// for the rows before it only.
pub fn split(rows: &[Declaration], test_from: Day) -> (Vec<Features>, History) {
    let mut history = History::default();
    let f = build(rows, &mut history, |i| (rows[i].day < test_from).then_some(rows[i].illicit));
    (f, history)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bacuda::{GenConfig, generate};
    use proptest::prelude::*;

    fn row(day: Day, importer: u32, illicit: bool) -> Declaration {
        Declaration {
            id: 0,
            day,
            importer,
            declarant: importer % 2,
            country: importer % 3,
            office: 0,
            tariff: 8_703_210_000 + u64::from(importer % 2) * 1_000_000,
            quantity: 2.0,
            gross_weight: 1000.0,
            fob: 100.0,
            cif: 110.0,
            taxes: 22.0,
            illicit,
            revenue: 0.0,
        }
    }

    fn bits(f: &Features) -> Vec<u64> {
        f.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn rates_are_smoothed_counts_of_earlier_days() {
        let rows = vec![row(0, 1, true), row(0, 1, true), row(1, 1, false), row(2, 1, false)];
        let f = build(&rows, &mut History::default(), |i| Some(rows[i].illicit));
        // Day 0: nothing known, the prior 0.05.
        assert_eq!(f[0][IMPORTER_RATE], 0.05);
        assert_eq!(f[1][IMPORTER_RATE], 0.05);
        // Day 1: 2 of 2 irregular, overall prior 1.0 -> (2 + 5) / (2 + 5).
        assert_eq!(f[2][IMPORTER_RATE], 1.0);
        // Day 2: 2 of 3, prior 2/3 -> (2 + 5 * 2/3) / 8.
        assert!((f[3][IMPORTER_RATE] - (2.0 + 5.0 * 2.0 / 3.0) / 8.0).abs() < 1e-12);
        assert_eq!(f[3][IMPORTER_RATE + 1], 3f64.ln_1p());
    }

    #[test]
    fn unknown_outcomes_count_as_declared_only() {
        let rows = vec![row(0, 1, true), row(1, 1, false)];
        let f = build(&rows, &mut History::default(), |_| None);
        assert_eq!(f[1][IMPORTER_RATE], 0.05);
        assert_eq!(f[1][IMPORTER_RATE + 1], 1f64.ln_1p());
    }

    fn dataset() -> impl Strategy<Value = Vec<Declaration>> {
        prop::collection::vec((0i32..12, 0u32..4, any::<bool>()), 1..60).prop_map(|v| {
            let mut rows: Vec<_> = v.into_iter().map(|(d, i, y)| row(d, i, y)).collect();
            rows.sort_by_key(|r| r.day);
            rows
        })
    }

    proptest! {
        // Changing the outcome of every row from a pivot's day on must not change
        // the features of any row up to that day: neither its own outcome, nor a
        // same-day one, nor a later one is used.
        #[test]
        fn no_future_leakage(rows in dataset(), pivot in any::<prop::sample::Index>()) {
            let p = pivot.index(rows.len());
            let day = rows[p].day;
            let mut flipped = rows.clone();
            for r in flipped.iter_mut().filter(|r| r.day >= day) {
                r.illicit = !r.illicit;
            }
            let a = build(&rows, &mut History::default(), |i| Some(rows[i].illicit));
            let b = build(&flipped, &mut History::default(), |i| Some(flipped[i].illicit));
            for i in 0..rows.len() {
                if rows[i].day <= day {
                    prop_assert_eq!(bits(&a[i]), bits(&b[i]), "row {} (day {}) saw an outcome of day {}", i, rows[i].day, day);
                }
            }
        }
    }

    #[test]
    fn split_knows_only_the_past() {
        let ds = generate(&GenConfig::new(2000, 1));
        let test_from = ds.rows[1500].day;
        let (a, _) = split(&ds.rows, test_from);
        let mut flipped = ds.rows.clone();
        for r in flipped.iter_mut().filter(|r| r.day >= test_from) {
            r.illicit = !r.illicit;
        }
        let (b, _) = split(&flipped, test_from);
        assert!(a.iter().zip(&b).all(|(x, y)| bits(x) == bits(y)));
    }
}
