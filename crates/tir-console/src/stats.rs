//! The dashboard's figures, pure: border crossings of transports (as in the
//! WCO Time Release Study, from the termination of one TIR operation at the
//! exit to the start of the next at the entry), their median, 90th
//! percentile and histogram, and crossings per day at each point.

use std::collections::BTreeMap;

use tir_model::guarantee::{Event, Guarantee};
use tir_model::{Country, OfficeCode, Timestamp};

/// One transport crossing from one TIR territory into the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    pub reference: String,
    /// The last country of the operation ended at the exit.
    pub exit: Country,
    /// The first country of the next operation.
    pub entry: Country,
    /// Where the operation was terminated at the exit.
    pub exit_office: Option<OfficeCode>,
    /// Where the next operation was started, when the timeline says.
    pub entry_office: Option<OfficeCode>,
    pub terminated_at: Timestamp,
    pub started_at: Timestamp,
}

impl Crossing {
    /// A crossing as the store keeps it (`tir_store::console::CrossingRow`).
    pub fn from_row(row: &tir_store::console::CrossingRow) -> Crossing {
        let office = |o: &Option<String>| o.as_deref().and_then(|o| OfficeCode::parse(o).ok());
        Crossing {
            reference: row.reference.clone(),
            exit: row.exit,
            entry: row.entry,
            exit_office: office(&row.exit_office),
            entry_office: office(&row.entry_office),
            terminated_at: Timestamp::from_unix_ms(row.terminated_at_ms),
            started_at: Timestamp::from_unix_ms(row.started_at_ms),
        }
    }

    /// Termination at the exit to start at the entry, in seconds (0 when the
    /// clocks put the start first).
    pub fn seconds(&self) -> f64 {
        (self.started_at.unix_ms() - self.terminated_at.unix_ms()).max(0) as f64 / 1000.0
    }

    /// The crossing point: the office of entry, else of exit.
    pub fn point(&self) -> String {
        match (&self.entry_office, &self.exit_office) {
            (Some(entry), _) => entry.as_str().to_owned(),
            (None, Some(exit)) => format!("{} (exit)", exit.as_str()),
            (None, None) => format!("{} → {}", self.exit.as_str(), self.entry.as_str()),
        }
    }
}

/// The crossings `guarantee` has made so far, as the store keeps them
/// (`tir_store::console::crossings`).
pub fn crossings(guarantee: &Guarantee, events: &[Event]) -> Vec<Crossing> {
    tir_store::console::crossings(guarantee, events).iter().map(Crossing::from_row).collect()
}

/// The median of `values` (the mean of the two middle ones for an even
/// count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let sorted = sorted(values);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The `q` quantile (0 < q ≤ 1) by the nearest rank: the smallest value with
/// at least `q` of the values at or below it. `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let sorted = sorted(values);
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// One bar of a histogram: values in `[low, high)` (the last bar includes its `high`).
#[derive(Debug, Clone, PartialEq)]
pub struct Bin {
    pub low: f64,
    pub high: f64,
    pub count: usize,
}

/// At most `bins` bars of equal, round width (1, 2 or 5 times a power of
/// ten, at least 1: the values are seconds, and a finer bar says nothing)
/// from 0 to past the largest value.
pub fn histogram(values: &[f64], bins: usize) -> Vec<Bin> {
    let sorted = sorted(values);
    let Some(&max) = sorted.last() else { return Vec::new() };
    let bins = bins.max(1);
    let width = round_step(max.max(0.0) / bins as f64).max(1.0);
    let count = ((max / width).floor() as usize + 1).min(bins);
    let mut out: Vec<Bin> =
        (0..count).map(|i| Bin { low: i as f64 * width, high: (i + 1) as f64 * width, count: 0 }).collect();
    for v in sorted {
        let i = ((v.max(0.0) / width).floor() as usize).min(count - 1);
        out[i].count += 1;
    }
    out
}

/// The smallest of 1, 2, 5 × 10^k at or above `raw`, so that the bars cover the maximum.
fn round_step(raw: f64) -> f64 {
    if raw <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|step| *step >= raw).unwrap_or(10.0 * power)
}

/// The figures of one pair of neighbouring territories' border.
#[derive(Debug, Clone, PartialEq)]
pub struct PairFigures {
    pub exit: Country,
    pub entry: Country,
    pub count: usize,
    pub median: f64,
    pub p90: f64,
    pub histogram: Vec<Bin>,
}

/// Histogram bars per pair.
pub const HISTOGRAM_BINS: usize = 10;

/// Per (exit, entry) country pair, the busiest border first.
pub fn by_pair(crossings: &[Crossing]) -> Vec<PairFigures> {
    let mut pairs: BTreeMap<(Country, Country), Vec<f64>> = BTreeMap::new();
    for c in crossings {
        pairs.entry((c.exit, c.entry)).or_default().push(c.seconds());
    }
    let mut out: Vec<PairFigures> = pairs
        .into_iter()
        .map(|((exit, entry), seconds)| PairFigures {
            exit,
            entry,
            count: seconds.len(),
            median: median(&seconds).unwrap_or(0.0),
            p90: quantile(&seconds, 0.9).unwrap_or(0.0),
            histogram: histogram(&seconds, HISTOGRAM_BINS),
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then((a.exit, a.entry).cmp(&(b.exit, b.entry))));
    out
}

/// The figures of one border from the store's sample: its count, and the
/// median, p90 and histogram of the waits read (all of them up to the sample size).
pub fn pair_figures(sample: &tir_store::console::PairSample) -> PairFigures {
    PairFigures {
        exit: sample.exit,
        entry: sample.entry,
        count: usize::try_from(sample.count).unwrap_or(usize::MAX),
        median: median(&sample.seconds).unwrap_or(0.0),
        p90: quantile(&sample.seconds, 0.9).unwrap_or(0.0),
        histogram: histogram(&sample.seconds, HISTOGRAM_BINS),
    }
}

/// `pair_figures` of every border, the busiest first (as `by_pair`).
pub fn pairs_of(samples: &[tir_store::console::PairSample]) -> Vec<PairFigures> {
    let mut out: Vec<PairFigures> = samples.iter().map(pair_figures).collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then((a.exit, a.entry).cmp(&(b.exit, b.entry))));
    out
}

/// The store's (point, day, count) rows as `daily` groups them.
pub fn daily_of(rows: &[(String, String, u64)]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (point, day, n) in rows {
        *out.entry(point.clone()).or_default().entry(day.clone()).or_default() +=
            usize::try_from(*n).unwrap_or(usize::MAX);
    }
    out
}

/// `YYYY-MM-DD` (UTC) of a timestamp.
pub fn day(at: Timestamp) -> String {
    at.to_rfc3339().get(..10).unwrap_or_default().to_owned()
}

/// Crossings per day (of the start at the entry) at each crossing point.
pub fn daily(crossings: &[Crossing]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for c in crossings {
        *out.entry(c.point()).or_default().entry(day(c.started_at)).or_default() += 1;
    }
    out
}

/// `2.5 s`, `45 s`, `12 min`, `3.5 h`, `2.0 d`: a duration short enough for an axis.
pub fn duration_text(seconds: f64) -> String {
    match seconds {
        s if s < 10.0 => format!("{s:.1} s"),
        s if s < 60.0 => format!("{s:.0} s"),
        s if s < 3600.0 => format!("{:.0} min", s / 60.0),
        s if s < 86_400.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} d", s / 86_400.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90_on_known_values() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quantile(&ten, 0.9), Some(9.0));
        assert_eq!(quantile(&ten, 0.5), Some(5.0));
        assert_eq!(quantile(&ten, 1.0), Some(10.0));
        let hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(quantile(&hundred, 0.9), Some(90.0));
        assert_eq!(quantile(&[5.0], 0.9), Some(5.0));
        assert_eq!(quantile(&[], 0.9), None);
        // Not a number is left out rather than sorted somewhere.
        assert_eq!(median(&[f64::NAN, 1.0, 3.0]), Some(2.0));
    }

    #[test]
    fn histogram_bins_have_round_widths_and_count_every_value() {
        // 0..=95 by 5: max 95, ten bins of 10.
        let values: Vec<f64> = (0..20).map(|i| f64::from(i) * 5.0).collect();
        let bins = histogram(&values, 10);
        assert_eq!(bins.len(), 10);
        assert_eq!((bins[0].low, bins[0].high), (0.0, 10.0));
        assert!(bins.iter().all(|b| b.count == 2), "{bins:?}");
        // The largest value falls in the last bin, not past it: max 100 with width 20.
        let bins = histogram(&[0.0, 10.0, 50.0, 100.0], 5);
        assert_eq!(bins.iter().map(|b| b.high).collect::<Vec<_>>(), vec![20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(bins.iter().map(|b| b.count).collect::<Vec<_>>(), vec![2, 0, 1, 0, 1]);
        // A single value and all zeros still make one bar.
        assert_eq!(histogram(&[0.0, 0.0], 10), vec![Bin { low: 0.0, high: 1.0, count: 2 }]);
        assert_eq!(histogram(&[], 10), vec![]);
        let bins = histogram(&[1.0, 2.0, 3.0, 7200.0], 10);
        assert_eq!(bins[0].high, 1000.0);
        assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), 4);
        assert_eq!(bins[0].count, 3);
        // Never narrower than a second.
        assert_eq!(histogram(&[2.0], 10).iter().map(|b| b.high).collect::<Vec<_>>(), vec![1.0, 2.0, 3.0]);
    }

    fn crossing(exit: &str, entry: &str, office: &str, terminated: i64, started: i64) -> Crossing {
        Crossing {
            reference: "XA100000001".into(),
            exit: Country::parse(exit).unwrap(),
            entry: Country::parse(entry).unwrap(),
            exit_office: None,
            entry_office: Some(OfficeCode::parse(office).unwrap()),
            terminated_at: Timestamp::from_unix_ms(terminated),
            started_at: Timestamp::from_unix_ms(started),
        }
    }

    #[test]
    fn pairs_and_days_group_the_crossings() {
        const DAY: i64 = 86_400_000;
        let crossings = vec![
            crossing("BY", "LT", "LTMDK001", 0, 60_000),
            crossing("BY", "LT", "LTMDK001", 0, 120_000),
            crossing("BY", "LT", "LTMDK001", DAY, DAY + 180_000),
            crossing("LV", "LT", "LTKYB001", 0, 30_000),
            // A start stamped before the termination counts as no wait.
            crossing("LV", "LT", "LTKYB001", 10_000, 5_000),
        ];
        assert_eq!(crossings[4].seconds(), 0.0);
        let pairs = by_pair(&crossings);
        assert_eq!(pairs.len(), 2);
        assert_eq!((pairs[0].exit.as_str(), pairs[0].entry.as_str(), pairs[0].count), ("BY", "LT", 3));
        assert_eq!((pairs[0].median, pairs[0].p90), (120.0, 180.0));
        assert_eq!(pairs[0].histogram.iter().map(|b| b.count).sum::<usize>(), 3);
        assert_eq!((pairs[1].median, pairs[1].p90), (15.0, 30.0));
        let days = daily(&crossings);
        assert_eq!(days["LTMDK001"]["1970-01-01"], 2);
        assert_eq!(days["LTMDK001"]["1970-01-02"], 1);
        assert_eq!(days["LTKYB001"]["1970-01-01"], 2);
    }

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(duration_text(42.0), "42 s");
        assert_eq!(duration_text(1.94), "1.9 s");
        assert_eq!(duration_text(600.0), "10 min");
        assert_eq!(duration_text(5400.0), "1.5 h");
        assert_eq!(duration_text(172_800.0), "2.0 d");
    }
}
