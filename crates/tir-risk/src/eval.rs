//! How well a score picks the declarations worth inspecting: precision,
//! recall and revenue share when the top 1, 2, 5 and 10 % are inspected, and
//! AUC; the model against two baselines on a date split; and the weekly loop of
//! "Take a Chance" (Kim et al., TKDE 2022), where only what was inspected is
//! ever learned, with and without an exploration share.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use crate::bacuda::{Dataset, Day, Declaration, Rng};
use crate::features::{self, Features, History};
use crate::model::{Params, RiskModel, TrainError};

/// The inspected shares every report covers.
pub const RATES: [f64; 4] = [0.01, 0.02, 0.05, 0.10];

/// How many of `n` an inspected `share` is: rounded, at least one.
pub fn inspected(n: usize, share: f64) -> usize {
    if n == 0 { 0 } else { ((n as f64 * share).round() as usize).clamp(1, n) }
}

/// Indices by descending score; ties keep input order so results are stable.
pub fn ranking(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// Precision, recall and revenue share of inspecting the top `share`.
pub fn at_share(order: &[usize], illicit: &[bool], revenue: &[f64], share: f64) -> (f64, f64, f64) {
    let k = inspected(order.len(), share);
    let hits = order[..k].iter().filter(|&&i| illicit[i]).count() as f64;
    let positives = illicit.iter().filter(|y| **y).count() as f64;
    let total: f64 = revenue.iter().sum();
    let got: f64 = order[..k].iter().map(|&i| revenue[i]).sum();
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    (div(hits, k as f64), div(hits, positives), div(got, total))
}

/// Area under the ROC curve (Mann-Whitney, ties count half); 0.5 when one
/// class is missing.
pub fn auc(scores: &[f64], illicit: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1..=j+1 share their mean.
        let mean = (i + j + 2) as f64 / 2.0;
        rank_sum += mean * order[i..=j].iter().filter(|&&k| illicit[k]).count() as f64;
        i = j + 1;
    }
    let p = illicit.iter().filter(|y| **y).count() as f64;
    let n = illicit.len() as f64 - p;
    if p == 0.0 || n == 0.0 {
        return 0.5;
    }
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

/// One value per inspected share, keyed "1", "2", "5", "10" (percent).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct AtRates {
    #[serde(rename = "1")]
    pub p1: f64,
    #[serde(rename = "2")]
    pub p2: f64,
    #[serde(rename = "5")]
    pub p5: f64,
    #[serde(rename = "10")]
    pub p10: f64,
}

impl AtRates {
    fn from_fn(mut f: impl FnMut(f64) -> f64) -> AtRates {
        AtRates { p1: f(RATES[0]), p2: f(RATES[1]), p5: f(RATES[2]), p10: f(RATES[3]) }
    }
    pub fn values(&self) -> [f64; 4] {
        [self.p1, self.p2, self.p5, self.p10]
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metrics {
    pub precision_at: AtRates,
    pub recall_at: AtRates,
    pub revenue_at: AtRates,
    pub auc: f64,
}

impl Metrics {
    pub fn of(scores: &[f64], illicit: &[bool], revenue: &[f64]) -> Metrics {
        let order = ranking(scores);
        let at: Vec<(f64, f64, f64)> = RATES.iter().map(|&s| at_share(&order, illicit, revenue, s)).collect();
        let mut i = 0;
        let mut pick = |g: fn(&(f64, f64, f64)) -> f64| {
            i = 0;
            AtRates::from_fn(|_| {
                i += 1;
                g(&at[i - 1])
            })
        };
        Metrics {
            precision_at: pick(|t| t.0),
            recall_at: pick(|t| t.1),
            revenue_at: pick(|t| t.2),
            auc: auc(scores, illicit),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Baselines {
    pub random: Metrics,
    pub importer_rate: Metrics,
}

/// What `tirhub risk evaluate --json` prints, exactly these keys.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: Metrics,
    pub baselines: Baselines,
    pub train_seconds: f64,
    pub score_per_s: f64,
}

/// The rest of an evaluation, for the text output.
#[derive(Debug, Clone)]
pub struct Details {
    pub train_rows: usize,
    pub test_rows: usize,
    pub test_irregular: usize,
    pub feature_seconds: f64,
    pub model_version: String,
    pub trees: usize,
    pub top_reasons: Vec<(String, f64)>,
}

#[derive(Debug)]
pub enum EvalError {
    Split(String),
    Train(TrainError),
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalError::Split(s) => f.write_str(s),
            EvalError::Train(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for EvalError {}

/// The seed of the random baseline: fixed so reports repeat.
pub const RANDOM_SEED: u64 = 20_200_823;

/// Train on the rows dated before `test_from`, test on the rest.
pub fn evaluate(
    ds: &Dataset,
    test_from: Day,
    params: &Params,
    mut phase: impl FnMut(&str),
) -> Result<(Report, Details), EvalError> {
    let rows = &ds.rows;
    let cut = rows.partition_point(|r| r.day < test_from);
    if cut == 0 || cut == rows.len() {
        return Err(EvalError::Split(format!(
            "--test-from leaves {cut} rows to train on and {} to test",
            rows.len() - cut
        )));
    }
    phase("features");
    let t = Instant::now();
    let (f, _) = features::split(rows, test_from);
    let feature_seconds = t.elapsed().as_secs_f64();
    let (train, test) = f.split_at(cut);
    let y_train: Vec<bool> = rows[..cut].iter().map(|r| r.illicit).collect();
    let rev_train: Vec<f64> = rows[..cut].iter().map(|r| r.revenue).collect();
    phase("training");
    let t = Instant::now();
    let model = RiskModel::train_with_revenue(train, &y_train, &rev_train, params).map_err(EvalError::Train)?;
    let train_seconds = t.elapsed().as_secs_f64();
    phase("scoring");
    let t = Instant::now();
    let scores = model.rank(test);
    let score_seconds = t.elapsed().as_secs_f64();
    let illicit: Vec<bool> = rows[cut..].iter().map(|r| r.illicit).collect();
    let revenue: Vec<f64> = rows[cut..].iter().map(|r| r.revenue).collect();
    let mut rng = Rng::new(RANDOM_SEED);
    let random: Vec<f64> = test.iter().map(|_| rng.f64()).collect();
    let importer: Vec<f64> = test.iter().map(|x| x[features::IMPORTER_RATE]).collect();
    // Which features moved the inspected top 5 % most, on average.
    let order = ranking(&scores);
    let mut weight = vec![0.0; features::COUNT];
    let top = &order[..inspected(order.len(), 0.05)];
    for &i in top.iter().take(2000) {
        for (w, c) in weight.iter_mut().zip(model.explain(&test[i], 0).all) {
            *w += c / top.len().min(2000) as f64;
        }
    }
    let mut top_reasons: Vec<(String, f64)> =
        features::NAMES.iter().zip(weight).map(|(n, w)| ((*n).to_owned(), w)).collect();
    top_reasons.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    top_reasons.truncate(5);
    Ok((
        Report {
            model: Metrics::of(&scores, &illicit, &revenue),
            baselines: Baselines {
                random: Metrics::of(&random, &illicit, &revenue),
                importer_rate: Metrics::of(&importer, &illicit, &revenue),
            },
            train_seconds,
            score_per_s: test.len() as f64 / score_seconds.max(1e-9),
        },
        Details {
            train_rows: cut,
            test_rows: rows.len() - cut,
            test_irregular: illicit.iter().filter(|y| **y).count(),
            feature_seconds,
            model_version: model.version.clone(),
            trees: model.trees(),
            top_reasons,
        },
    ))
}

/// How the mix picks its exploration share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExploreMode {
    /// Uniformly among the week's declarations the model did not pick.
    #[default]
    Random,
    /// Directed at the unknown (in the spirit of gATE, Kim et al.): uniformly
    /// among the declarations the model did not pick whose importer has no
    /// inspection outcome known to this policy yet (so an importer is drawn
    /// in proportion to its declarations); when there are too few, the rest
    /// uniformly as `Random`.
    Novel,
    /// Directed at the least known segments (uncertainty-driven, in the
    /// spirit of gATE): each pick is drawn among the declarations the model
    /// did not pick with weight 1 / (1 + n), n the inspection outcomes this
    /// policy knows in the declaration's segment (origin × HS chapter, the
    /// key of a customs risk profile) plus its picks there this week. A
    /// segment draws in proportion to its volume this week over what is known
    /// of it: where a rate is both uncertain and decides many declarations.
    Uncertain,
}

/// The weekly loop's settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Share of each week's declarations inspected.
    pub capacity: f64,
    /// Share of the inspections picked for exploration (the mix policy).
    pub explore: f64,
    /// How they are picked.
    pub explore_mode: ExploreMode,
    /// Retrain every this many weeks.
    pub retrain_every: usize,
    /// Weeks inspected at random before the first model.
    pub warmup_weeks: usize,
    pub params: Params,
    pub seed: u64,
    /// Where "after the drift" starts; the middle of the dates if `None`.
    pub drift_from: Option<Day>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            capacity: 0.05,
            explore: 0.1,
            explore_mode: ExploreMode::Random,
            retrain_every: 4,
            warmup_weeks: 4,
            params: Params { rounds: 50, ..Params::default() },
            seed: 1,
            drift_from: None,
        }
    }
}

/// One policy's week: the inspected share, what it found, and both
/// normalized by the best any selection of that size could have done.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WeekScore {
    pub inspected: usize,
    pub hits: usize,
    pub revenue: f64,
    /// hits / min(inspected, irregular that week); `None` without irregular ones.
    pub precision: Option<f64>,
    /// revenue / the top-`inspected` revenues of the week; `None` without revenue.
    pub revenue_norm: Option<f64>,
    /// Inspections of declarations whose importer had no outcome known to
    /// this policy at the start of the week, and the irregular among them.
    pub novel: usize,
    pub novel_hits: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Week {
    pub week: usize,
    pub start: String,
    pub rows: usize,
    pub irregular: usize,
    pub exploit: WeekScore,
    pub mix: WeekScore,
}

#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Mean {
    pub precision: f64,
    pub revenue: f64,
    /// Share of the inspections that went to importers with no known outcome.
    pub novel: f64,
    /// Share of those that were irregular.
    pub novel_hit_rate: f64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Period {
    pub weeks: usize,
    pub exploit: Mean,
    pub mix: Mean,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    pub capacity: f64,
    pub explore: f64,
    pub explore_mode: ExploreMode,
    pub retrain_every: usize,
    pub drift_from: String,
    pub before_drift: Period,
    pub after_drift: Period,
    pub weeks: Vec<Week>,
}

/// One inspection policy: what it has learned, from its inspections only.
struct Policy {
    explore: f64,
    mode: ExploreMode,
    history: History,
    /// Inspection outcomes known per importer (what `Novel` looks for).
    known_importer: HashMap<u32, u32>,
    /// Inspection outcomes known per origin × HS chapter (what `Uncertain`
    /// weighs by).
    known_segment: HashMap<(u32, u32), u32>,
    x: Vec<Features>,
    y: Vec<bool>,
    revenue: Vec<f64>,
    model: Option<RiskModel>,
}

impl Policy {
    fn new(explore: f64, mode: ExploreMode) -> Policy {
        Policy {
            explore,
            mode,
            history: History::default(),
            known_importer: HashMap::new(),
            known_segment: HashMap::new(),
            x: Vec::new(),
            y: Vec::new(),
            revenue: Vec::new(),
            model: None,
        }
    }

    /// Select `k` of the week's rows, learn their outcomes, score the week;
    /// `chosen` is left holding which rows were inspected.
    fn week(
        &mut self,
        rows: &[Declaration],
        k: usize,
        rng: &mut Rng,
        random_only: bool,
        chosen: &mut Vec<bool>,
    ) -> WeekScore {
        let feats: Vec<Features> = rows.iter().map(|r| self.history.features(r)).collect();
        chosen.clear();
        chosen.resize(rows.len(), false);
        let n_random = match (&self.model, random_only) {
            (Some(_), false) => ((k as f64) * self.explore).round() as usize,
            _ => k,
        };
        if let (Some(m), false) = (&self.model, random_only) {
            for &i in ranking(&m.rank(&feats)).iter().take(k - n_random) {
                chosen[i] = true;
            }
        }
        let mut n_random = n_random;
        if self.mode == ExploreMode::Novel && self.model.is_some() && !random_only {
            let mut novel: Vec<usize> = (0..rows.len())
                .filter(|&i| !chosen[i] && !self.known_importer.contains_key(&rows[i].importer))
                .collect();
            while n_random > 0 && !novel.is_empty() {
                let j = rng.below(novel.len() as u64) as usize;
                chosen[novel.swap_remove(j)] = true;
                n_random -= 1;
            }
        }
        if self.mode == ExploreMode::Uncertain && self.model.is_some() && !random_only {
            let mut picked: HashMap<(u32, u32), u32> = HashMap::new();
            let seg = |r: &Declaration| (r.country, r.hs2());
            while n_random > 0 {
                let weights: Vec<(usize, f64)> = (0..rows.len())
                    .filter(|&i| !chosen[i])
                    .map(|i| {
                        let s = seg(&rows[i]);
                        let n = self.known_segment.get(&s).copied().unwrap_or(0) + picked.get(&s).copied().unwrap_or(0);
                        (i, 1.0 / (1.0 + f64::from(n)))
                    })
                    .collect();
                let Some(&(last, _)) = weights.last() else { break };
                let mut u = rng.f64() * weights.iter().map(|w| w.1).sum::<f64>();
                let mut pick = last;
                for &(i, w) in &weights {
                    if u < w {
                        pick = i;
                        break;
                    }
                    u -= w;
                }
                chosen[pick] = true;
                *picked.entry(seg(&rows[pick])).or_default() += 1;
                n_random -= 1;
            }
        }
        let mut rest: Vec<usize> = (0..rows.len()).filter(|&i| !chosen[i]).collect();
        for _ in 0..n_random.min(rest.len()) {
            let j = rng.below(rest.len() as u64) as usize;
            chosen[rest.swap_remove(j)] = true;
        }
        let (mut hits, mut revenue, mut novel, mut novel_hits) = (0, 0.0, 0, 0);
        for (i, r) in rows.iter().enumerate() {
            if chosen[i] && !self.known_importer.contains_key(&r.importer) {
                novel += 1;
                novel_hits += usize::from(r.illicit);
            }
        }
        for (i, r) in rows.iter().enumerate() {
            if chosen[i] {
                hits += usize::from(r.illicit);
                revenue += r.revenue;
                self.x.push(feats[i]);
                self.y.push(r.illicit);
                self.revenue.push(r.revenue);
                *self.known_importer.entry(r.importer).or_default() += 1;
                *self.known_segment.entry((r.country, r.hs2())).or_default() += 1;
            }
            self.history.observe(r, chosen[i].then_some(r.illicit));
        }
        let irregular = rows.iter().filter(|r| r.illicit).count();
        let mut best: Vec<f64> = rows.iter().map(|r| r.revenue).collect();
        best.sort_by(|a, b| b.total_cmp(a));
        let best_revenue: f64 = best[..k].iter().sum();
        WeekScore {
            inspected: k,
            hits,
            revenue,
            precision: (irregular > 0).then(|| hits as f64 / k.min(irregular) as f64),
            revenue_norm: (best_revenue > 0.0).then(|| revenue / best_revenue),
            novel,
            novel_hits,
        }
    }

    fn retrain(&mut self, params: &Params) {
        // Not enough of both outcomes yet: keep the current model (or none).
        if let Ok(m) = RiskModel::train_with_revenue(&self.x, &self.y, &self.revenue, params) {
            self.model = Some(m);
        }
    }
}

fn mean(weeks: &[&Week], f: impl Fn(&Week) -> &WeekScore) -> Mean {
    let avg = |v: Vec<f64>| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    let sum = |g: fn(&WeekScore) -> usize| weeks.iter().map(|w| g(f(w))).sum::<usize>() as f64;
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    Mean {
        precision: avg(weeks.iter().filter_map(|w| f(w).precision).collect()),
        revenue: avg(weeks.iter().filter_map(|w| f(w).revenue_norm).collect()),
        novel: div(sum(|s| s.novel), sum(|s| s.inspected)),
        novel_hit_rate: div(sum(|s| s.novel_hits), sum(|s| s.novel)),
    }
}

/// One week's inspections by one policy, for a caller that looks closer than
/// the report does (`simulate_observed`).
pub struct Inspections<'a> {
    /// The week's index from the first row's week.
    pub week: usize,
    /// `false`: pure exploitation; `true`: the exploration mix.
    pub mix: bool,
    pub rows: &'a [Declaration],
    /// Per row of `rows`: inspected.
    pub chosen: &'a [bool],
}

/// Play the weeks of `ds` under pure exploitation and under the exploration
/// mix, side by side. `on_week(done, total)` reports progress.
pub fn simulate(ds: &Dataset, cfg: &SimConfig, on_week: impl FnMut(usize, usize)) -> SimReport {
    simulate_observed(ds, cfg, on_week, |_| {})
}

/// As `simulate`, showing `on_inspections` each policy's inspections of each week.
pub fn simulate_observed(
    ds: &Dataset,
    cfg: &SimConfig,
    mut on_week: impl FnMut(usize, usize),
    mut on_inspections: impl FnMut(Inspections<'_>),
) -> SimReport {
    let rows = &ds.rows;
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(a), Some(b)) => (a.day, b.day),
        _ => (0, 0),
    };
    let drift = cfg.drift_from.unwrap_or(first + (last - first + 1) / 2);
    let n_weeks = if rows.is_empty() { 0 } else { ((last - first) / 7 + 1) as usize };
    let mut exploit = Policy::new(0.0, ExploreMode::Random);
    let mut mix = Policy::new(cfg.explore, cfg.explore_mode);
    // Both start from the same random warm-up inspections.
    let (mut rng_a, mut rng_b) = (Rng::new(cfg.seed), Rng::new(cfg.seed));
    let mut weeks = Vec::with_capacity(n_weeks);
    let (mut chosen_a, mut chosen_b) = (Vec::new(), Vec::new());
    let mut start = 0;
    for w in 0..n_weeks {
        let end_day = first + 7 * (w as i32 + 1);
        let end = start + rows[start..].partition_point(|r| r.day < end_day);
        let week = &rows[start..end];
        start = end;
        if week.is_empty() {
            continue;
        }
        let k = inspected(week.len(), cfg.capacity);
        let warm = w < cfg.warmup_weeks;
        let a = exploit.week(week, k, &mut rng_a, warm, &mut chosen_a);
        let b = mix.week(week, k, &mut rng_b, warm, &mut chosen_b);
        on_inspections(Inspections { week: w, mix: false, rows: week, chosen: &chosen_a });
        on_inspections(Inspections { week: w, mix: true, rows: week, chosen: &chosen_b });
        if (w + 1) >= cfg.warmup_weeks && (w + 1 - cfg.warmup_weeks).is_multiple_of(cfg.retrain_every.max(1)) {
            exploit.retrain(&cfg.params);
            mix.retrain(&cfg.params);
        }
        weeks.push(Week {
            week: w,
            start: crate::bacuda::format_date(week[0].day),
            rows: week.len(),
            irregular: week.iter().filter(|r| r.illicit).count(),
            exploit: a,
            mix: b,
        });
        on_week(w + 1, n_weeks);
    }
    let period = |after: bool| {
        let sel: Vec<&Week> = weeks
            .iter()
            .filter(|w| w.week >= cfg.warmup_weeks)
            .filter(|w| (crate::bacuda::parse_date(&w.start).unwrap_or(0) >= drift) == after)
            .collect();
        Period { weeks: sel.len(), exploit: mean(&sel, |w| &w.exploit), mix: mean(&sel, |w| &w.mix) }
    };
    SimReport {
        capacity: cfg.capacity,
        explore: cfg.explore,
        explore_mode: cfg.explore_mode,
        retrain_every: cfg.retrain_every,
        drift_from: crate::bacuda::format_date(drift),
        before_drift: period(false),
        after_drift: period(true),
        weeks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bacuda::{GenConfig, generate};
    use proptest::prelude::*;

    const ILLICIT: [bool; 10] = [true, false, true, false, false, false, false, false, false, true];
    const REVENUE: [f64; 10] = [50.0, 0.0, 30.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 20.0];

    #[test]
    fn shares_round_and_keep_one() {
        assert_eq!(inspected(0, 0.05), 0);
        assert_eq!(inspected(10, 0.01), 1);
        assert_eq!(inspected(1000, 0.05), 50);
        assert_eq!(inspected(30, 0.05), 2); // 1.5 rounds up
        assert_eq!(inspected(10, 1.0), 10);
    }

    #[test]
    fn precision_recall_revenue_by_hand() {
        // Scores put rows 0, 1, 2, 9 first, in that order.
        let scores = [0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.6];
        let order = ranking(&scores);
        assert_eq!(&order[..4], &[0, 1, 2, 9]);
        // Top 10 % of 10 = row 0: 1 hit of 1, 1 of 3 irregular, 50 of 100.
        assert_eq!(at_share(&order, &ILLICIT, &REVENUE, 0.1), (1.0, 1.0 / 3.0, 0.5));
        // Top 30 %: rows 0, 1, 2: 2 of 3, 2 of 3, 80 of 100.
        assert_eq!(at_share(&order, &ILLICIT, &REVENUE, 0.3), (2.0 / 3.0, 2.0 / 3.0, 0.8));
        // Top 40 % adds row 9: 3 of 4, all irregular, all revenue.
        assert_eq!(at_share(&order, &ILLICIT, &REVENUE, 0.4), (0.75, 1.0, 1.0));
        // No irregular, no revenue: zeros, not NaN.
        assert_eq!(at_share(&order, &[false; 10], &[0.0; 10], 0.4), (0.0, 0.0, 0.0));
    }

    #[test]
    fn auc_by_hand() {
        // Perfect, reversed, and all tied.
        assert_eq!(auc(&[0.9, 0.1, 0.8], &[true, false, true]), 1.0);
        assert_eq!(auc(&[0.1, 0.9, 0.2], &[true, false, true]), 0.0);
        assert_eq!(auc(&[0.5; 4], &[true, false, true, false]), 0.5);
        // Positives 0.8 and 0.4; negatives 0.6 and 0.4: pairs (0.8>0.6) (0.8>0.4)
        // (0.4<0.6) (0.4=0.4 half) -> 2.5 / 4.
        assert_eq!(auc(&[0.8, 0.6, 0.4, 0.4], &[true, false, true, false]), 0.625);
        assert_eq!(auc(&[0.3, 0.2], &[false, false]), 0.5);
    }

    #[test]
    fn json_has_the_documented_keys_in_order() {
        let m = Metrics::of(&[0.9, 0.1, 0.8, 0.2], &[true, false, true, false], &[1.0, 0.0, 1.0, 0.0]);
        let r = Report {
            model: m.clone(),
            baselines: Baselines { random: m.clone(), importer_rate: m },
            train_seconds: 1.0,
            score_per_s: 2.0,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(
            s.starts_with(r#"{"model":{"precision_at":{"1":1.0,"2":1.0,"5":1.0,"10":1.0},"recall_at":{"1":0.5,"#),
            "{s}"
        );
        assert!(s.contains(r#""baselines":{"random":{"#) && s.contains(r#""importer_rate":{"#));
        assert!(s.ends_with(r#""train_seconds":1.0,"score_per_s":2.0}"#), "{s}");
    }

    proptest! {
        // Against a brute-force count over all pairs.
        #[test]
        fn auc_matches_pair_counting(v in prop::collection::vec((0u8..6, any::<bool>()), 1..40)) {
            let scores: Vec<f64> = v.iter().map(|x| f64::from(x.0)).collect();
            let y: Vec<bool> = v.iter().map(|x| x.1).collect();
            let (mut wins, mut pairs) = (0.0, 0.0);
            for i in 0..v.len() {
                for j in 0..v.len() {
                    if y[i] && !y[j] {
                        pairs += 1.0;
                        wins += if scores[i] > scores[j] { 1.0 } else if scores[i] == scores[j] { 0.5 } else { 0.0 };
                    }
                }
            }
            let want = if pairs == 0.0 { 0.5 } else { wins / pairs };
            prop_assert!((auc(&scores, &y) - want).abs() < 1e-12);
        }

        #[test]
        fn shares_are_fractions(v in prop::collection::vec((any::<u16>(), any::<bool>(), 0u16..100), 1..50), s in 0.0f64..1.0) {
            let scores: Vec<f64> = v.iter().map(|x| f64::from(x.0)).collect();
            let y: Vec<bool> = v.iter().map(|x| x.1).collect();
            let rev: Vec<f64> = v.iter().map(|x| if x.1 { f64::from(x.2) } else { 0.0 }).collect();
            let (p, r, g) = at_share(&ranking(&scores), &y, &rev, s);
            prop_assert!((0.0..=1.0).contains(&p) && (0.0..=1.0).contains(&r) && (0.0..=1.0).contains(&g));
        }
    }

    #[test]
    fn evaluate_beats_random_on_generated_data() {
        let ds = generate(&GenConfig::new(6000, 5));
        let test_from = ds.rows[4500].day;
        let (r, d) = evaluate(&ds, test_from, &Params::default(), |_| {}).unwrap();
        assert_eq!(d.train_rows + d.test_rows, 6000);
        assert!(r.model.auc > r.baselines.random.auc, "{r:?}");
        assert!(evaluate(&ds, 0, &Params::default(), |_| {}).is_err());
    }

    #[test]
    fn the_revenue_head_recovers_more_revenue() {
        let ds = generate(&GenConfig::new(30_000, 2));
        let test_from = ds.rows[22_000].day;
        let (f, _) = features::split(&ds.rows, test_from);
        let cut = ds.rows.partition_point(|r| r.day < test_from);
        let y: Vec<bool> = ds.rows.iter().map(|r| r.illicit).collect();
        let rev: Vec<f64> = ds.rows.iter().map(|r| r.revenue).collect();
        let m = RiskModel::train_with_revenue(&f[..cut], &y[..cut], &rev[..cut], &Params::default()).unwrap();
        let by_p = Metrics::of(&m.score(&f[cut..]), &y[cut..], &rev[cut..]);
        let by_rank = Metrics::of(&m.rank(&f[cut..]), &y[cut..], &rev[cut..]);
        for (a, b) in by_rank.revenue_at.values().iter().zip(by_p.revenue_at.values()) {
            assert!(*a >= b, "{by_rank:?} vs {by_p:?}");
        }
    }

    #[test]
    fn simulate_inspects_the_capacity_every_week() {
        let ds = generate(&GenConfig::new(4000, 9));
        let cfg = SimConfig { retrain_every: 8, ..SimConfig::default() };
        let r = simulate(&ds, &cfg, |_, _| {});
        assert!(r.weeks.len() > 90);
        for w in &r.weeks {
            assert_eq!(w.exploit.inspected, inspected(w.rows, 0.05));
            assert_eq!(w.mix.inspected, w.exploit.inspected);
            assert!(w.exploit.precision.is_none_or(|p| (0.0..=1.0).contains(&p)));
        }
        assert!(r.before_drift.weeks > 0 && r.after_drift.weeks > 0);
    }

    #[test]
    fn novel_exploration_inspects_the_capacity_and_finds_the_newcomers() {
        use crate::bacuda::DriftKind;
        let gen_cfg = GenConfig { drift: DriftKind::Replace, ..GenConfig::new(20_000, 3) };
        let ds = generate(&gen_cfg);
        let newcomer = (ds.names.importers.len() - gen_cfg.new_importers()) as u32;
        let cfg = SimConfig { explore_mode: ExploreMode::Novel, retrain_every: 8, ..SimConfig::default() };
        let r = simulate(&ds, &cfg, |_, _| {});
        for w in &r.weeks {
            assert_eq!(w.mix.inspected, inspected(w.rows, 0.05));
        }
        // The directed picks are drawn before the uniform ones and the policy
        // is deterministic: replay the mix's first model-led week by hand.
        let (mut p, _, week) = trained_before_drift(&ds, &gen_cfg, &cfg, 0.5, ExploreMode::Novel);
        let before = p.known_importer.clone();
        p.week(week, 40, &mut crate::bacuda::Rng::new(2), false, &mut Vec::new());
        // 20 novel picks: importers unknown before (the newcomers among them).
        let novel = p.known_importer.iter().filter(|(i, _)| !before.contains_key(i)).map(|(_, n)| n).sum::<u32>();
        assert!(novel >= 20, "{novel} novel inspections");
        assert!(p.known_importer.keys().any(|&i| i >= newcomer));
    }

    /// A policy that inspected 5 % of everything before the drift at random
    /// and trained on it; the rows before the drift (how many) and the first
    /// four weeks after it.
    fn trained_before_drift<'a>(
        ds: &'a Dataset,
        gen_cfg: &GenConfig,
        cfg: &SimConfig,
        explore: f64,
        mode: ExploreMode,
    ) -> (Policy, usize, &'a [Declaration]) {
        let mut p = Policy::new(explore, mode);
        let cut = ds.rows.partition_point(|x| x.day < gen_cfg.drift_day());
        let (seen, rest) = ds.rows.split_at(cut);
        p.week(seen, inspected(seen.len(), 0.05), &mut crate::bacuda::Rng::new(1), true, &mut Vec::new());
        p.retrain(&cfg.params);
        assert!(p.model.is_some());
        (p, seen.len(), &rest[..rest.partition_point(|x| x.day < gen_cfg.drift_day() + 28)])
    }

    #[test]
    fn the_observer_sees_the_inspections_the_report_counts() {
        let ds = generate(&GenConfig::new(8_000, 5));
        let cfg = SimConfig { retrain_every: 8, ..SimConfig::default() };
        let mut seen: Vec<(usize, bool, usize, usize)> = Vec::new();
        let observed = simulate_observed(
            &ds,
            &cfg,
            |_, _| {},
            |i: Inspections<'_>| {
                let inspected: Vec<&Declaration> =
                    i.rows.iter().zip(i.chosen).filter(|(_, c)| **c).map(|(r, _)| r).collect();
                seen.push((i.week, i.mix, inspected.len(), inspected.iter().filter(|r| r.illicit).count()));
            },
        );
        let plain = simulate(&ds, &cfg, |_, _| {});
        assert_eq!(serde_json::to_string(&observed).unwrap(), serde_json::to_string(&plain).unwrap());
        assert_eq!(seen.len(), 2 * observed.weeks.len());
        for w in &observed.weeks {
            for (mix, score) in [(false, &w.exploit), (true, &w.mix)] {
                let &(_, _, inspected, hits) = seen.iter().find(|s| s.0 == w.week && s.1 == mix).unwrap();
                assert_eq!((inspected, hits), (score.inspected, score.hits), "week {} mix {mix}", w.week);
            }
        }
    }

    #[test]
    fn uncertain_exploration_goes_where_least_is_known() {
        use crate::bacuda::DriftKind;
        let gen_cfg = GenConfig { drift: DriftKind::Route, ..GenConfig::new(20_000, 3) };
        let ds = generate(&gen_cfg);
        let cfg = SimConfig { explore_mode: ExploreMode::Uncertain, retrain_every: 8, ..SimConfig::default() };
        let r = simulate(&ds, &cfg, |_, _| {});
        for w in &r.weeks {
            assert_eq!(w.mix.inspected, inspected(w.rows, 0.05));
        }
        // All picks exploratory; every segment of the week known a million
        // times but one: the picks go there.
        let (mut p, seen, week) = trained_before_drift(&ds, &gen_cfg, &cfg, 1.0, ExploreMode::Uncertain);
        let mut volume: HashMap<(u32, u32), usize> = HashMap::new();
        for x in week {
            *volume.entry((x.country, x.hs2())).or_default() += 1;
        }
        let (&target, &n) = volume.iter().max_by_key(|(s, n)| (**n, **s)).unwrap();
        assert!(n >= 10, "the largest segment has {n} declarations");
        for &s in volume.keys() {
            p.known_segment.insert(s, if s == target { 0 } else { 1_000_000 });
        }
        let before = p.known_segment.clone();
        p.week(week, 10, &mut crate::bacuda::Rng::new(2), false, &mut Vec::new());
        assert!(p.known_segment[&target] >= 9, "{} of 10 picks in the unknown segment", p.known_segment[&target]);
        // Ten inspections, counted once each, in the week's segments.
        let added: u32 = volume.keys().map(|s| p.known_segment[s] - before[s]).sum();
        assert_eq!(added, 10);
        assert_eq!(p.y.len(), inspected(seen, 0.05) + 10);
    }
}
