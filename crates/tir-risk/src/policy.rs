//! The selection policy of one office (docs/risk.md, "Selection policy"):
//! rules first, then the model's score against thresholds that follow the
//! recent score distribution so the capacity shares hold, then random
//! exploration. Randomness comes from the caller's seeded generator.

use std::collections::VecDeque;

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};
use tir_model::Timestamp;

use crate::assessment::{Assessment, SelectedBy};
use crate::context::{TransportContext, calendar};
use crate::rules::{Bindings, Lane, RuleSet};

/// An office's inspection capacity and exploration, as shares of all
/// transports it assesses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyConfig {
    /// Target share of transports sent red (physical inspection), exploration included.
    pub red_share: f64,
    /// Target share sent yellow (documentary check).
    pub yellow_share: f64,
    /// Share selected at random among those rules and model leave green.
    pub exploration_share: f64,
    /// The lane a random selection gets: red, so its outcome is a true label.
    pub exploration_lane: Lane,
    /// How many recent model scores the thresholds are the quantiles of.
    pub window: usize,
    /// Below this many scores seen, the fixed thresholds below apply.
    pub warmup: usize,
    pub cold_red_threshold: f64,
    pub cold_yellow_threshold: f64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            red_share: 0.05,
            yellow_share: 0.10,
            exploration_share: 0.01,
            exploration_lane: Lane::Red,
            window: 2_000,
            warmup: 200,
            cold_red_threshold: 0.9,
            cold_yellow_threshold: 0.7,
        }
    }
}

impl PolicyConfig {
    /// Refuses shares that cannot all be honoured.
    pub fn check(&self) -> Result<(), String> {
        let share = |v: f64| (0.0..=1.0).contains(&v);
        if !share(self.red_share) || !share(self.yellow_share) || !share(self.exploration_share) {
            return Err("shares are from 0 to 1".into());
        }
        if self.red_share + self.yellow_share > 1.0 {
            return Err("red_share + yellow_share exceeds 1".into());
        }
        match self.exploration_lane {
            Lane::Green => return Err("exploration_lane must be yellow or red: a random selection is inspected".into()),
            Lane::Red if self.exploration_share > self.red_share => {
                return Err("exploration_share exceeds red_share, of which it is a part".into());
            }
            Lane::Yellow if self.exploration_share > self.yellow_share => {
                return Err("exploration_share exceeds yellow_share, of which it is a part".into());
            }
            _ => {}
        }
        if self.window == 0 {
            return Err("window must be at least 1".into());
        }
        Ok(())
    }

    /// The shares the model's thresholds aim at: the lane's capacity less
    /// what exploration takes of it.
    pub fn model_shares(&self) -> (f64, f64) {
        let take = |lane: Lane| if self.exploration_lane == lane { self.exploration_share } else { 0.0 };
        ((self.red_share - take(Lane::Red)).max(0.0), (self.yellow_share - take(Lane::Yellow)).max(0.0))
    }

    /// Probability of a random selection for a transport the model left
    /// green, so that `exploration_share` of all transports are selected at random.
    pub fn exploration_probability(&self, model_scored: bool) -> f64 {
        if !model_scored {
            return self.exploration_share;
        }
        let (red, yellow) = self.model_shares();
        let green = 1.0 - red - yellow;
        if green <= 0.0 { 0.0 } else { (self.exploration_share / green).min(1.0) }
    }
}

/// A model's verdict on one transport, from the learned model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelScore {
    /// In [0, 1]; higher is riskier.
    pub score: f64,
    pub version: String,
    /// The model's explanation (top contributing features), for the officer.
    pub reasons: Vec<String>,
}

/// The thresholds in force: a score strictly above `red` is red, else
/// strictly above `yellow` is yellow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub red: f64,
    pub yellow: f64,
    /// False while warming up on the fixed thresholds.
    pub from_window: bool,
}

/// The last `capacity` scores, kept both in arrival order and sorted, so a
/// quantile is an index and an update is one binary search and one shift.
#[derive(Debug, Clone)]
struct ScoreWindow {
    arrival: VecDeque<f64>,
    sorted: Vec<f64>,
    capacity: usize,
}

impl ScoreWindow {
    fn new(capacity: usize) -> ScoreWindow {
        ScoreWindow { arrival: VecDeque::with_capacity(capacity), sorted: Vec::with_capacity(capacity), capacity }
    }

    fn push(&mut self, score: f64) {
        if self.arrival.len() == self.capacity
            && let Some(oldest) = self.arrival.pop_front()
        {
            let at = self.sorted.partition_point(|v| v.total_cmp(&oldest).is_lt());
            self.sorted.remove(at);
        }
        self.arrival.push_back(score);
        let at = self.sorted.partition_point(|v| v.total_cmp(&score).is_lt());
        self.sorted.insert(at, score);
    }

    /// The smallest score with at least `p` of the window at or below it;
    /// `p >= 1` gives infinity (nothing is above it).
    fn quantile(&self, p: f64) -> f64 {
        let n = self.sorted.len();
        if p >= 1.0 || n == 0 {
            return f64::INFINITY;
        }
        let index = ((p * n as f64).ceil() as usize).saturating_sub(1).min(n - 1);
        self.sorted[index]
    }
}

/// One office's policy with its recent scores.
#[derive(Debug, Clone)]
pub struct SelectionPolicy {
    config: PolicyConfig,
    window: ScoreWindow,
}

impl SelectionPolicy {
    pub fn new(config: PolicyConfig) -> Result<SelectionPolicy, String> {
        config.check()?;
        Ok(SelectionPolicy { window: ScoreWindow::new(config.window), config })
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Feeds past scores (e.g. on restart, the office's recent assessments)
    /// without assessing.
    pub fn observe(&mut self, scores: impl IntoIterator<Item = f64>) {
        for score in scores {
            if score.is_finite() {
                self.window.push(score.clamp(0.0, 1.0));
            }
        }
    }

    pub fn thresholds(&self) -> Thresholds {
        if self.window.sorted.len() < self.config.warmup.max(1) {
            return Thresholds {
                red: self.config.cold_red_threshold,
                yellow: self.config.cold_yellow_threshold,
                from_window: false,
            };
        }
        let (red, yellow) = self.config.model_shares();
        Thresholds {
            red: self.window.quantile(1.0 - red),
            yellow: self.window.quantile(1.0 - red - yellow),
            from_window: true,
        }
    }

    /// Assesses one operation: the first applicable profile that matches and
    /// wins its draw decides (highest lane, then weight, then id); else the
    /// model's score against the thresholds; else a random draw for
    /// exploration; else green, `none`.
    pub fn assess<R: Rng + ?Sized>(
        &mut self,
        context: &TransportContext,
        rules: &RuleSet,
        model: Option<&ModelScore>,
        rng: &mut R,
        at: Timestamp,
    ) -> Assessment {
        let (date, _, _) = calendar(at);
        let mut assessment = Assessment::unselected(context.office.clone(), context.operation, at);

        // Rules.
        let mut fired: Vec<&crate::rules::Profile> = Vec::new();
        let mut bindings: Option<Bindings<'_>> = None;
        for compiled in rules.applicable(&context.country, &context.office, date) {
            let profile = &compiled.profile;
            assessment.profile_versions.push(profile.reference());
            let bindings = bindings.get_or_insert_with(|| Bindings::new(context));
            match compiled.program.evaluate(bindings) {
                Ok(true) => {
                    assessment.matched_profiles.push(profile.reference());
                    if rng.random::<f64>() * 100.0 < profile.draft.selection_percent {
                        fired.push(profile);
                    }
                }
                Ok(false) => {}
                Err(e) => assessment.rule_errors.push(format!("{}: {e}", profile.reference())),
            }
        }
        let winner = fired.iter().copied().max_by(|a, b| {
            (a.draft.lane, a.draft.weight).cmp(&(b.draft.lane, b.draft.weight)).then_with(|| b.id.cmp(&a.id))
        });

        let model = model.filter(|m| m.score.is_finite());
        let thresholds = self.thresholds();
        if let Some(m) = model {
            assessment.score = Some(m.score.clamp(0.0, 1.0));
            assessment.model_version = Some(m.version.clone());
        }

        if let Some(winner) = winner {
            assessment.lane = winner.draft.lane;
            assessment.selected_by = SelectedBy::Rule { id: winner.id.clone(), version: winner.version };
            assessment.reasons.push(winner.draft.reason.clone());
            for other in fired.iter().filter(|p| p.reference() != winner.reference()) {
                assessment.reasons.push(format!("also {}: {}", other.draft.lane.as_str(), other.draft.reason));
            }
        } else if let Some((m, score)) = model.zip(assessment.score) {
            let lane = if score > thresholds.red {
                Some((Lane::Red, thresholds.red))
            } else if score > thresholds.yellow {
                Some((Lane::Yellow, thresholds.yellow))
            } else {
                None
            };
            if let Some((lane, threshold)) = lane {
                assessment.lane = lane;
                assessment.selected_by = SelectedBy::Model { version: m.version.clone() };
                assessment
                    .reasons
                    .push(format!("model score {score:.3} above the {} threshold {threshold:.3}", lane.as_str()));
                assessment.reasons.extend(m.reasons.iter().cloned());
            } else {
                let yellow = thresholds.yellow;
                assessment.reasons.push(format!("model score {score:.3} not above the yellow threshold {yellow:.3}"));
            }
        }

        if assessment.selected_by == SelectedBy::None
            && rng.random::<f64>() < self.config.exploration_probability(model.is_some())
        {
            assessment.lane = self.config.exploration_lane;
            assessment.selected_by = SelectedBy::Random;
            // The deciding reason first.
            assessment.reasons.insert(0, "selected at random, to measure compliance without bias".into());
        }

        // Every score joins the window, whoever decided, so the quantiles
        // describe all the office's traffic.
        if let Some(score) = assessment.score {
            self.window.push(score);
        }
        assessment
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::{MONDAY_14H, context};
    use crate::rules::tests::{date, draft};
    use crate::rules::{OfficeScope, ProfileHistory};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;
    use tir_model::{Country, OfficeCode};

    fn rng(seed: u64) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(seed)
    }

    fn model(score: f64) -> ModelScore {
        ModelScore { score, version: "7".into(), reasons: vec!["value_per_kg low".into()] }
    }

    fn rule_set(profiles: &[(&str, crate::rules::ProfileDraft)]) -> RuleSet {
        let ro = Country::parse("RO").unwrap();
        RuleSet::new(profiles.iter().map(|(id, d)| {
            ProfileHistory::create(id, ro, d.clone(), "ana", Timestamp::from_unix_ms(0)).unwrap().current().clone()
        }))
        .unwrap()
    }

    type Draw = fn(&mut Xoshiro256PlusPlus) -> f64;

    struct Shares {
        red: f64,
        yellow: f64,
        random: f64,
        model: f64,
    }

    /// Runs `skip + n` assessments with scores from `score(rng)`, no rules,
    /// and counts the last `n`.
    fn run(
        config: PolicyConfig,
        skip: usize,
        n: usize,
        seed: u64,
        score: impl Fn(&mut Xoshiro256PlusPlus) -> f64,
    ) -> Shares {
        let mut policy = SelectionPolicy::new(config).unwrap();
        let (mut scores, mut decisions) = (rng(seed), rng(seed + 1));
        let (c, rules) = (context(), RuleSet::default());
        let (mut red, mut yellow, mut random, mut by_model) = (0, 0, 0, 0);
        for _ in 0..skip {
            policy.assess(&c, &rules, Some(&model(score(&mut scores))), &mut decisions, MONDAY_14H);
        }
        for _ in 0..n {
            let a = policy.assess(&c, &rules, Some(&model(score(&mut scores))), &mut decisions, MONDAY_14H);
            red += usize::from(a.lane == Lane::Red);
            yellow += usize::from(a.lane == Lane::Yellow);
            random += usize::from(a.selected_by == SelectedBy::Random);
            by_model += usize::from(matches!(a.selected_by, SelectedBy::Model { .. }));
        }
        let share = |k: usize| k as f64 / n as f64;
        Shares { red: share(red), yellow: share(yellow), random: share(random), model: share(by_model) }
    }

    /// Stated tolerance: ±1 percentage point on each lane share and ±0.5 on
    /// the random share over 10,000 assessments.
    #[test]
    fn capacity_and_exploration_shares_hold_over_10000_assessments() {
        let config =
            PolicyConfig { red_share: 0.05, yellow_share: 0.10, exploration_share: 0.02, ..PolicyConfig::default() };
        let distributions: [(&str, Draw); 3] = [
            ("uniform", |r| r.random::<f64>()),
            ("skewed low", |r| r.random::<f64>().powi(4)),
            ("skewed high", |r| r.random::<f64>().powf(0.25)),
        ];
        for (name, score) in distributions {
            // Warm-up included: its 200 fixed-threshold assessments fit the tolerance.
            let s = run(config.clone(), 0, 10_000, 42, score);
            assert!((s.red - 0.05).abs() <= 0.01, "{name}: red {}", s.red);
            assert!((s.yellow - 0.10).abs() <= 0.01, "{name}: yellow {}", s.yellow);
            assert!((s.random - 0.02).abs() <= 0.005, "{name}: random {}", s.random);
            assert!((s.model - 0.13).abs() <= 0.015, "{name}: model {}", s.model);
        }
    }

    #[test]
    fn without_a_model_only_exploration_selects() {
        let mut policy =
            SelectionPolicy::new(PolicyConfig { exploration_share: 0.03, ..PolicyConfig::default() }).unwrap();
        let (c, rules, mut r) = (context(), RuleSet::default(), rng(3));
        let n = 10_000;
        let random = (0..n)
            .map(|_| policy.assess(&c, &rules, None, &mut r, MONDAY_14H))
            .filter(|a| {
                assert!(matches!(a.selected_by, SelectedBy::Random | SelectedBy::None));
                a.selected_by == SelectedBy::Random
            })
            .count();
        assert!((random as f64 / n as f64 - 0.03).abs() <= 0.005, "{random}");
    }

    #[test]
    fn a_30_percent_profile_selects_about_30_percent_of_its_matches() {
        let rules = rule_set(&[("cig", draft(r#""2402" in hs4"#, Lane::Red, 30.0))]);
        let mut policy =
            SelectionPolicy::new(PolicyConfig { exploration_share: 0.0, ..PolicyConfig::default() }).unwrap();
        let (c, mut r) = (context(), rng(7));
        let n = 10_000;
        let mut fired = 0;
        for _ in 0..n {
            let a = policy.assess(&c, &rules, None, &mut r, MONDAY_14H);
            assert_eq!(a.matched_profiles, ["rule:cig@1"]);
            if a.selected_by.to_string() == "rule:cig@1" {
                assert_eq!((a.lane, a.reasons[0].as_str()), (Lane::Red, "cigarettes under-valued"));
                fired += 1;
            }
        }
        // ±2 points: about 4 standard deviations at n = 10,000.
        assert!((fired as f64 / n as f64 - 0.30).abs() <= 0.02, "{fired}");
    }

    #[test]
    fn expired_future_out_of_scope_and_foreign_profiles_never_fire() {
        let mut expired = draft("true", Lane::Red, 100.0);
        expired.valid_until = Some(date("2026-11-29"));
        let mut future = draft("true", Lane::Red, 100.0);
        future.valid_from = date("2026-12-01");
        let mut elsewhere = draft("true", Lane::Red, 100.0);
        elsewhere.office_scope = OfficeScope::Offices(vec![OfficeCode::parse("RO000999").unwrap()]);
        let mut rules = rule_set(&[("expired", expired), ("future", future), ("elsewhere", elsewhere)]);
        let hu = ProfileHistory::create(
            "hu",
            Country::parse("HU").unwrap(),
            draft("true", Lane::Red, 100.0),
            "x",
            MONDAY_14H,
        );
        rules = RuleSet::new(rules.profiles().iter().map(|p| p.profile.clone()).chain([hu.unwrap().current().clone()]))
            .unwrap();
        let mut policy =
            SelectionPolicy::new(PolicyConfig { exploration_share: 0.0, ..PolicyConfig::default() }).unwrap();
        let (c, mut r) = (context(), rng(1));
        for _ in 0..1_000 {
            let a = policy.assess(&c, &rules, None, &mut r, MONDAY_14H);
            assert_eq!(a.selected_by, SelectedBy::None);
            assert!(a.profile_versions.is_empty() && a.matched_profiles.is_empty());
        }
        // The same profiles fire on their day, office and administration.
        let mut on_day = draft("true", Lane::Red, 100.0);
        on_day.valid_from = date("2026-11-30");
        on_day.valid_until = Some(date("2026-11-30"));
        on_day.office_scope = OfficeScope::Offices(vec![OfficeCode::parse("RO000100").unwrap()]);
        let a = policy.assess(&c, &rule_set(&[("day", on_day)]), None, &mut r, MONDAY_14H);
        assert_eq!(a.selected_by.to_string(), "rule:day@1");
    }

    #[test]
    fn rules_come_before_the_model_and_the_model_before_random() {
        let rules = rule_set(&[("green", draft("holder_transports >= 10", Lane::Green, 100.0))]);
        let config =
            PolicyConfig { red_share: 0.5, yellow_share: 0.5, exploration_share: 0.5, ..PolicyConfig::default() };
        let mut policy = SelectionPolicy::new(config).unwrap();
        let (c, mut r) = (context(), rng(5));
        // A green rule releases even a top score: the model is not asked.
        let a = policy.assess(&c, &rules, Some(&model(1.0)), &mut r, MONDAY_14H);
        assert_eq!((a.lane, a.selected_by.to_string()), (Lane::Green, "rule:green@1".into()));
        assert_eq!((a.score, a.model_version.as_deref()), (Some(1.0), Some("7")));

        let mut policy = SelectionPolicy::new(PolicyConfig {
            exploration_share: 1.0,
            red_share: 1.0,
            yellow_share: 0.0,
            ..PolicyConfig::default()
        })
        .unwrap();
        // Cold thresholds 0.9 / 0.7: the model decides above them, random only below.
        let none = RuleSet::default();
        let a = policy.assess(&c, &none, Some(&model(0.95)), &mut r, MONDAY_14H);
        assert_eq!((a.lane, a.selected_by.to_string()), (Lane::Red, "model@7".into()));
        assert_eq!(a.reasons, ["model score 0.950 above the red threshold 0.900", "value_per_kg low"]);
        let a = policy.assess(&c, &none, Some(&model(0.8)), &mut r, MONDAY_14H);
        assert_eq!((a.lane, a.selected_by.to_string()), (Lane::Yellow, "model@7".into()));
        let a = policy.assess(&c, &none, Some(&model(0.1)), &mut r, MONDAY_14H);
        assert_eq!((a.lane, a.selected_by), (Lane::Red, SelectedBy::Random));
        assert_eq!(
            a.reasons,
            [
                "selected at random, to measure compliance without bias",
                "model score 0.100 not above the yellow threshold 0.700"
            ]
        );
    }

    #[test]
    fn the_highest_lane_then_the_weight_wins() {
        let mut heavy_yellow = draft("true", Lane::Yellow, 100.0);
        heavy_yellow.weight = 100;
        let mut light_red = draft("true", Lane::Red, 100.0);
        light_red.reason = "red reason".into();
        let mut heavy_red = light_red.clone();
        heavy_red.weight = 5;
        heavy_red.reason = "heavy red reason".into();
        let rules = rule_set(&[
            ("y", heavy_yellow),
            ("r1", light_red),
            ("r2", heavy_red),
            ("never", draft("false", Lane::Red, 100.0)),
        ]);
        let mut policy = SelectionPolicy::new(PolicyConfig::default()).unwrap();
        let a = policy.assess(&context(), &rules, None, &mut rng(0), MONDAY_14H);
        assert_eq!(a.selected_by.to_string(), "rule:r2@1");
        assert_eq!(a.reasons[0], "heavy red reason");
        assert_eq!(a.reasons.len(), 3);
        assert_eq!(a.profile_versions.len(), 4);
        assert_eq!(a.matched_profiles, ["rule:y@1", "rule:r1@1", "rule:r2@1"]);
    }

    #[test]
    fn a_failing_profile_is_recorded_and_does_not_select() {
        let rules = rule_set(&[("bad", draft("goods[7].hs2 == '24'", Lane::Red, 100.0))]);
        let mut policy =
            SelectionPolicy::new(PolicyConfig { exploration_share: 0.0, ..PolicyConfig::default() }).unwrap();
        let a = policy.assess(&context(), &rules, None, &mut rng(0), MONDAY_14H);
        assert_eq!(a.selected_by, SelectedBy::None);
        assert!(a.rule_errors[0].starts_with("rule:bad@1: "), "{:?}", a.rule_errors);
    }

    #[test]
    fn the_same_seed_gives_the_same_assessments() {
        let rules = rule_set(&[("half", draft("true", Lane::Yellow, 50.0))]);
        let go = || {
            let mut policy = SelectionPolicy::new(PolicyConfig::default()).unwrap();
            let (mut r, mut s) = (rng(9), rng(10));
            (0..500)
                .map(|_| policy.assess(&context(), &rules, Some(&model(s.random())), &mut r, MONDAY_14H))
                .collect::<Vec<_>>()
        };
        assert_eq!(go(), go());
    }

    #[test]
    fn quantiles_follow_the_window() {
        let mut w = ScoreWindow::new(4);
        for v in [0.4, 0.1, 0.3, 0.2] {
            w.push(v);
        }
        assert_eq!((w.quantile(0.5), w.quantile(0.75), w.quantile(1.0)), (0.2, 0.3, f64::INFINITY));
        w.push(0.9); // drops 0.4
        assert_eq!(w.sorted, [0.1, 0.2, 0.3, 0.9]);
        assert!(
            SelectionPolicy::new(PolicyConfig { exploration_share: 0.2, red_share: 0.1, ..PolicyConfig::default() })
                .is_err()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Any continuous score distribution (u^k) and any feasible shares:
        /// after the warm-up (whose fixed thresholds know nothing of the
        /// distribution), the lanes and the random share stay within sampling
        /// noise of their targets over 4,000 assessments.
        #[test]
        fn shares_hold_for_random_distributions_and_targets(
            k in 0.1f64..8.0,
            red in 0.01f64..0.2,
            yellow in 0.0f64..0.3,
            explore_part in 0.0f64..1.0,
            seed in any::<u64>(),
        ) {
            let config = PolicyConfig {
                red_share: red,
                yellow_share: yellow,
                exploration_share: red * explore_part,
                window: 1_000,
                warmup: 100,
                ..PolicyConfig::default()
            };
            let n = 4_000;
            let s = run(config, 100, n, seed, |r| r.random::<f64>().powf(k));
            // Four standard deviations of a share measured on n transports,
            // plus half a point for the quantile estimate.
            let tolerance = |p: f64| 4.0 * (p * (1.0 - p) / n as f64).sqrt() + 0.005;
            prop_assert!((s.red - red).abs() <= tolerance(red), "red {} vs {}", s.red, red);
            prop_assert!((s.yellow - yellow).abs() <= tolerance(yellow), "yellow {} vs {}", s.yellow, yellow);
            let explore = red * explore_part;
            prop_assert!((s.random - explore).abs() <= tolerance(explore), "random {} vs {}", s.random, explore);
        }
    }
}
