//! What the selection did, for the risk officer: per ISO week and per
//! selector, how many transports were assessed, how many were inspected, what
//! was found and recovered.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tir_model::{Country, Timestamp};

use crate::bacuda::{Day, day_from_ymd, weekday, ymd_from_day};
use crate::records::{AssessmentRecord, InspectionResult};
use crate::serving::day_of_timestamp;

/// One group's figures. The rates are `None` when nothing was inspected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// `YYYY-Www`, or the selector: `rule:<id>@<version>`, `model@<version>`,
    /// `random`, `none`.
    pub key: String,
    /// Assessments.
    pub volume: usize,
    /// Assessments whose transport has an inspection result.
    pub inspected: usize,
    /// Of those, with an irregularity.
    pub hits: usize,
    pub hit_rate: Option<f64>,
    /// Recovered, EUR.
    pub revenue: f64,
    pub revenue_per_inspection: Option<f64>,
}

/// One selector's figures in one week: `group.key` is the selector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeekGroup {
    pub week: String,
    #[serde(flatten)]
    pub group: Group,
}

/// By ISO week of `assessed_at` (oldest first), by selector (by key), and by
/// both (week, then selector): each profile version's, model's and the random
/// share's hit rate and revenue week by week.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub by_week: Vec<Group>,
    pub by_selector: Vec<Group>,
    pub by_week_and_selector: Vec<WeekGroup>,
}

/// ISO 8601 week of a timestamp (UTC), `YYYY-Www`.
pub fn iso_week(at: Timestamp) -> String {
    iso_week_of_day(day_of_timestamp(at))
}

/// ISO 8601 week of a day (days since 2000-01-01), `YYYY-Www`.
pub fn iso_week_of_day(day: Day) -> String {
    // The week belongs to the year of its Thursday.
    let thursday = day - weekday(day) as i32 + 3;
    let (year, _, _) = ymd_from_day(thursday);
    let week = (thursday - day_from_ymd(year, 1, 1)) / 7 + 1;
    format!("{year:04}-W{week:02}")
}

#[derive(Default)]
struct Acc {
    volume: usize,
    inspected: usize,
    hits: usize,
    revenue: f64,
}

impl Acc {
    fn group(self, key: String) -> Group {
        let per = |x: f64| (self.inspected > 0).then(|| x / self.inspected as f64);
        Group {
            key,
            volume: self.volume,
            inspected: self.inspected,
            hits: self.hits,
            hit_rate: per(self.hits as f64),
            revenue: self.revenue,
            revenue_per_inspection: per(self.revenue),
        }
    }
}

/// An assessment is inspected when its guarantee has a result of its
/// administration at its office, or failing that at another office of that
/// administration (the earliest recorded). Two assessments of one transport
/// both count that result.
pub fn stats(assessments: &[AssessmentRecord], results: &[InspectionResult]) -> Stats {
    let mut sums = Sums::default();
    for (a, result) in inspected(assessments, results) {
        let (week, selector) = (iso_week(a.assessment.assessed_at), a.assessment.selected_by.to_string());
        sums.add(week, selector, |acc| {
            acc.volume += 1;
            if let Some(r) = result {
                acc.inspected += 1;
                acc.hits += usize::from(r.outcome.is_irregular());
                acc.revenue += r.revenue;
            }
        });
    }
    sums.stats()
}

/// The sums by week, by selector and by both, as they are added up.
#[derive(Default)]
struct Sums {
    weeks: BTreeMap<String, Acc>,
    selectors: BTreeMap<String, Acc>,
    both: BTreeMap<(String, String), Acc>,
}

impl Sums {
    fn add(&mut self, week: String, selector: String, f: impl Fn(&mut Acc)) {
        f(self.both.entry((week.clone(), selector.clone())).or_default());
        f(self.weeks.entry(week).or_default());
        f(self.selectors.entry(selector).or_default());
    }

    fn stats(self) -> Stats {
        Stats {
            by_week: self.weeks.into_iter().map(|(k, a)| a.group(k)).collect(),
            by_selector: self.selectors.into_iter().map(|(k, a)| a.group(k)).collect(),
            by_week_and_selector: self
                .both
                .into_iter()
                .map(|((week, selector), a)| WeekGroup { week, group: a.group(selector) })
                .collect(),
        }
    }
}

/// Each assessment with the result that counts for it (`stats`): its
/// administration's at its office, else the earliest recorded at another office
/// of that administration (the first of `results` among equal times).
fn inspected<'a>(
    assessments: &'a [AssessmentRecord],
    results: &'a [InspectionResult],
) -> impl Iterator<Item = (&'a AssessmentRecord, Option<&'a InspectionResult>)> {
    let mut at_office: HashMap<(Country, &str, &str), &InspectionResult> = HashMap::new();
    let mut any: HashMap<(Country, &str), &InspectionResult> = HashMap::new();
    for r in results {
        at_office.insert((r.administration, &r.guarantee, &r.office), r);
        any.entry((r.administration, &r.guarantee))
            .and_modify(|e| {
                if r.recorded_at < e.recorded_at {
                    *e = r;
                }
            })
            .or_insert(r);
    }
    assessments.iter().map(move |a| {
        let result = at_office
            .get(&(a.administration, a.guarantee.as_str(), a.assessment.office.as_str()))
            .or_else(|| any.get(&(a.administration, a.guarantee.as_str())))
            .copied();
        (a, result)
    })
}

/// What one selector did on one day (of `assessed_at`, UTC) for one
/// administration: the sums `stats` counts, which the store keeps per
/// (administration, day, selector) as assessments and results are written,
/// so the figures read a few rows instead of every assessment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tally {
    pub volume: i64,
    pub inspected: i64,
    pub hits: i64,
    /// Recovered, EUR.
    pub revenue: f64,
}

/// (administration, day since 2000-01-01, selector `rule:<id>@<version>`, `model@<version>`, `random`, `none`).
pub type TallyKey = (Country, Day, String);

/// The tallies of `assessments`, each counted with the result `stats` gives it from `results`.
pub fn tallies(assessments: &[AssessmentRecord], results: &[InspectionResult]) -> BTreeMap<TallyKey, Tally> {
    let mut out: BTreeMap<TallyKey, Tally> = BTreeMap::new();
    for (a, result) in inspected(assessments, results) {
        let key = (a.administration, day_of_timestamp(a.assessment.assessed_at), a.assessment.selected_by.to_string());
        let t = out.entry(key).or_default();
        t.volume += 1;
        if let Some(r) = result {
            t.inspected += 1;
            t.hits += i64::from(r.outcome.is_irregular());
            t.revenue += r.revenue;
        }
    }
    out
}

/// What to add to the stored tallies when they move from `before` to `after`
/// (a result written or replaced: the tallies of the guarantee's assessments
/// with the results before and after it); unchanged keys left out.
pub fn tally_changes(before: &BTreeMap<TallyKey, Tally>, after: &BTreeMap<TallyKey, Tally>) -> Vec<(TallyKey, Tally)> {
    let mut keys: Vec<&TallyKey> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (b, a) = (before.get(k).copied().unwrap_or_default(), after.get(k).copied().unwrap_or_default());
            let change = Tally {
                volume: a.volume - b.volume,
                inspected: a.inspected - b.inspected,
                hits: a.hits - b.hits,
                revenue: a.revenue - b.revenue,
            };
            (change != Tally::default()).then(|| (k.clone(), change))
        })
        .collect()
}

/// `stats` from one administration's stored tallies (day, selector, sums).
pub fn stats_of_tallies(rows: impl IntoIterator<Item = (Day, String, Tally)>) -> Stats {
    let mut sums = Sums::default();
    for (day, selector, t) in rows {
        if t.volume <= 0 {
            continue;
        }
        sums.add(iso_week_of_day(day), selector, |acc| {
            acc.volume += t.volume as usize;
            acc.inspected += t.inspected.max(0) as usize;
            acc.hits += t.hits.max(0) as usize;
            acc.revenue += t.revenue;
        });
    }
    sums.stats()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assessment::SelectedBy;
    use crate::serving::tests::{record, result};

    fn ts(y: i32, m: u32, d: u32) -> Timestamp {
        Timestamp::from_unix_ms((i64::from(day_from_ymd(y, m, d)) + 10_957) * 86_400_000 + 3_600_000)
    }

    #[test]
    fn iso_weeks_at_year_ends() {
        assert_eq!(iso_week(ts(2026, 11, 30)), "2026-W49");
        // 2021-01-03 (a Sunday) is in 2020's week 53; 2024-12-30 in 2025's week 1.
        assert_eq!(iso_week(ts(2021, 1, 3)), "2020-W53");
        assert_eq!(iso_week(ts(2021, 1, 4)), "2021-W01");
        assert_eq!(iso_week(ts(2024, 12, 30)), "2025-W01");
        assert_eq!(iso_week(Timestamp::from_unix_ms(0)), "1970-W01");
    }

    #[test]
    fn counts_by_week_and_selector() {
        let day = |y, m, d| day_from_ymd(y, m, d);
        // Week 2026-W49: three assessments; W50: two.
        let mut a = record("RO", "XH1", "TUR/1/1", day(2026, 11, 30), "RO000100");
        a.assessment.selected_by = SelectedBy::Model { version: "gbm-1".into() };
        let mut b = record("RO", "XH2", "TUR/1/1", day(2026, 12, 1), "RO000100");
        b.assessment.selected_by = SelectedBy::Random;
        let c = record("RO", "XH3", "TUR/1/1", day(2026, 12, 6), "RO000100");
        let mut d = record("RO", "XH4", "TUR/1/1", day(2026, 12, 7), "RO000100");
        d.assessment.selected_by = SelectedBy::Rule { id: "cig".into(), version: 2 };
        let mut e = record("RO", "XH5", "TUR/1/1", day(2026, 12, 8), "RO000100");
        e.assessment.selected_by = SelectedBy::Model { version: "gbm-1".into() };
        let results = vec![
            // At the assessment's office: it wins over the other office's.
            result("RO", "XH1", "RO000100", true, 300.0),
            result("RO", "XH1", "RO000900", false, 0.0),
            // Only at another office of the same administration.
            result("RO", "XH4", "RO000900", true, 120.0),
            result("RO", "XH5", "RO000100", false, 0.0),
            // Another administration's result does not count.
            result("BG", "XH2", "RO000100", true, 50.0),
        ];
        let s = stats(&[a, b, c, d, e], &results);
        let w = &s.by_week;
        assert_eq!(w.iter().map(|g| g.key.as_str()).collect::<Vec<_>>(), ["2026-W49", "2026-W50"]);
        assert_eq!((w[0].volume, w[0].inspected, w[0].hits, w[0].revenue), (3, 1, 1, 300.0));
        assert_eq!((w[0].hit_rate, w[0].revenue_per_inspection), (Some(1.0), Some(300.0)));
        assert_eq!((w[1].volume, w[1].inspected, w[1].hits, w[1].revenue), (2, 2, 1, 120.0));
        assert_eq!((w[1].hit_rate, w[1].revenue_per_inspection), (Some(0.5), Some(60.0)));
        let by: HashMap<&str, &Group> = s.by_selector.iter().map(|g| (g.key.as_str(), g)).collect();
        assert_eq!(by.len(), 4);
        let m = by["model@gbm-1"];
        assert_eq!((m.volume, m.inspected, m.hits, m.revenue, m.hit_rate), (2, 2, 1, 300.0, Some(0.5)));
        let r = by["random"];
        assert_eq!((r.volume, r.inspected, r.hit_rate, r.revenue_per_inspection), (1, 0, None, None));
        assert_eq!((by["none"].volume, by["none"].inspected), (1, 0));
        let rule = by["rule:cig@2"];
        assert_eq!((rule.inspected, rule.hits, rule.revenue), (1, 1, 120.0));
        // The model's two assessments fall in two weeks: one inspected and hit in each.
        let model_weeks: Vec<(&str, usize, usize, f64)> = s
            .by_week_and_selector
            .iter()
            .filter(|w| w.group.key == "model@gbm-1")
            .map(|w| (w.week.as_str(), w.group.inspected, w.group.hits, w.group.revenue))
            .collect();
        assert_eq!(model_weeks, [("2026-W49", 1, 1, 300.0), ("2026-W50", 1, 0, 0.0)]);
        assert_eq!(s.by_week_and_selector.len(), 5, "{:?}", s.by_week_and_selector);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["by_week_and_selector"][0]["week"], "2026-W49");
        assert_eq!(json["by_selector"][0]["key"], "model@gbm-1");
        assert_eq!(json["by_week"][0]["hit_rate"], 1.0);
        assert!(json["by_selector"][1]["hit_rate"].is_null());
    }

    /// Sums kept per day and selector, the figures `stats` gives; each result
    /// written one by one, its changes added to the sums, the same again.
    #[test]
    fn tallies_give_the_figures_of_the_records() {
        let day = |y, m, d| day_from_ymd(y, m, d);
        let mut records = Vec::new();
        for (i, (d, selector)) in [
            (day(2026, 11, 30), "model@gbm-1"),
            (day(2026, 11, 30), "model@gbm-1"),
            (day(2026, 12, 1), "random"),
            (day(2026, 12, 6), "none"),
            (day(2026, 12, 7), "rule:cig@2"),
            (day(2026, 12, 8), "model@gbm-1"),
            (day(2027, 1, 3), "model@gbm-1"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = record("RO", &format!("XH{}", i % 5), "TUR/1/1", d, "RO000100");
            r.assessment.selected_by = selector.parse().unwrap();
            records.push(r);
        }
        let mut results = vec![
            result("RO", "XH0", "RO000100", true, 300.0),
            result("RO", "XH0", "RO000900", false, 0.0),
            result("RO", "XH4", "RO000900", true, 120.5),
            result("RO", "XH1", "RO000100", false, 0.0),
            result("BG", "XH2", "RO000100", true, 50.0),
        ];
        // Recorded one after another (the earliest of another office counts).
        for (i, r) in results.iter_mut().enumerate() {
            r.recorded_at = Timestamp::from_unix_ms(1_000 * i as i64);
        }
        let rows = |t: &BTreeMap<TallyKey, Tally>| -> Vec<(Day, String, Tally)> {
            t.iter().filter(|(k, _)| k.0.as_str() == "RO").map(|(k, v)| (k.1, k.2.clone(), *v)).collect()
        };
        let expected = stats(&records, &results);
        assert_eq!(stats_of_tallies(rows(&tallies(&records, &results))), expected);
        assert_eq!(expected.by_week.iter().map(|g| g.inspected).sum::<usize>(), 5, "{expected:?}");

        // Assessments first, then each result with the changes it makes, as the store keeps them.
        let mut kept = tallies(&records, &[]);
        for n in 1..=results.len() {
            let before = tallies(&records, &results[..n - 1]);
            let after = tallies(&records, &results[..n]);
            for (key, change) in tally_changes(&before, &after) {
                let t = kept.entry(key).or_default();
                t.volume += change.volume;
                t.inspected += change.inspected;
                t.hits += change.hits;
                t.revenue += change.revenue;
            }
        }
        assert_eq!(stats_of_tallies(rows(&kept)), expected);
        // A result replaced by a compliant one takes its hit and revenue back.
        let mut corrected = results.clone();
        corrected[0] = result("RO", "XH0", "RO000100", false, 0.0);
        corrected[0].recorded_at = Timestamp::from_unix_ms(9_000);
        let changes = tally_changes(&tallies(&records, &results), &tallies(&records, &corrected));
        assert!(changes.iter().all(|(_, c)| c.volume == 0 && c.inspected == 0 && c.hits == -1), "{changes:?}");
        assert_eq!(changes.iter().map(|(_, c)| c.revenue).sum::<f64>(), -600.0);
        assert_eq!(iso_week_of_day(day(2027, 1, 3)), "2026-W53");
    }
}
