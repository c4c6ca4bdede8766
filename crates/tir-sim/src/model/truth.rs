//! The hidden ground truth for risk: whether a transport smuggles and the
//! revenue at stake, for customs' inspections to find and a risk engine to
//! learn. It is drawn from its own seeded stream, so it never changes the
//! draws of the rest of a transport, and it shows in the declaration: the
//! holder, the goods (sensitive chapters declared at a low value per kg) and
//! the consignors' countries.
//!
//! Smuggling comes from two sources:
//! - the declaration frauds of `Irregularity` (undervaluation, a misdeclared
//!   HS code): always smuggling, as their declarations already lie;
//! - patterns, which change at the drift (`drift_at`, halfway through a run):
//!   repeat-offender holders, sensitive HS chapters and consignor countries,
//!   each drawn per period from the seed, multiplying a small base rate.
//!
//! On the standard world about 4 % of transports smuggle by the patterns,
//! plus the declaration frauds (three quarters of `irregular_share`): about
//! 6.6 % at the default share of 0.05, 4.2 % at 0, 12 % at 0.1.

use serde_json::Value;
use tir_model::{Country, HsCode};

use super::goods::Catalog;
use super::rng::{Rng, mix};
use super::traffic::{Irregularity, USD_PER_EUR};
use super::world::World;

/// What a smuggling transport's truth came from; also what a transport
/// matches (its `patterns`), whether it smuggles or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    /// An `Irregularity` that falsifies the declaration (undervaluation, misdeclared HS).
    DeclarationFraud,
    /// A holder among the period's repeat offenders.
    RepeatOffender,
    /// Goods of one of the period's sensitive chapters.
    SensitiveGoods,
    /// A consignor in one of the period's risky countries.
    RiskyConsignor,
}

impl Pattern {
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::DeclarationFraud => "declaration_fraud",
            Pattern::RepeatOffender => "repeat_offender",
            Pattern::SensitiveGoods => "sensitive_goods",
            Pattern::RiskyConsignor => "risky_consignor",
        }
    }
}

/// One transport's truth.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskTruth {
    pub smuggling: bool,
    /// Duties and taxes evaded, EUR; 0 when not smuggling.
    pub revenue_at_stake: f64,
    /// The patterns the transport matches, in `Pattern` order.
    pub patterns: Vec<Pattern>,
    /// 0 before the drift, 1 from it on.
    pub period: u8,
}

impl RiskTruth {
    pub fn clean(period: u8) -> RiskTruth {
        RiskTruth { smuggling: false, revenue_at_stake: 0.0, patterns: Vec::new(), period }
    }
}

/// Transports before the drift when a run does not say (`Traffic::with_drift_at`).
pub const DEFAULT_DRIFT_AT: u64 = 5_000;

/// Chance of smuggling with no pattern; each matched pattern multiplies it.
const BASE_CHANCE: f64 = 0.006;
const OFFENDER_FACTOR: f64 = 14.0;
const GOODS_FACTOR: f64 = 8.0;
const CONSIGNOR_FACTOR: f64 = 3.0;
const CHANCE_CAP: f64 = 0.9;
/// Share of the holders who are repeat offenders in a period.
const OFFENDER_SHARE: f64 = 0.08;
const RISKY_CONSIGNOR_COUNTRIES: usize = 2;
/// Tobacco stays sensitive; spirits and electronics give way to pharmaceuticals,
/// cosmetics and apparel at the drift.
const SENSITIVE_CHAPTERS: [&[u8]; 2] = [&[24, 22, 85], &[24, 30, 33, 62]];
/// Smuggled sensitive goods are declared at this share of their value.
const UNDERVALUED: (f64, f64) = (0.15, 0.45);
/// Goods hidden in a load that declares nothing odd: evaded revenue, EUR (lognormal).
const HIDDEN_REVENUE_MEDIAN: f64 = 6_000.0;
const HIDDEN_REVENUE_SIGMA: f64 = 0.9;

const SALT: u64 = 0x0054_5255_5448; // "TRUTH"

/// Duties and taxes as a share of the customs value, by HS chapter (excise on
/// tobacco and spirits, duty and VAT on the rest).
pub fn tax_rate(chapter: u8) -> f64 {
    match chapter {
        24 => 0.85,
        22 => 0.55,
        84 | 85 | 87 => 0.24,
        30 | 33 | 61 | 62 => 0.30,
        _ => 0.20,
    }
}

/// The patterns of one period.
#[derive(Debug, Clone, PartialEq)]
struct Period {
    /// Parallel to `World::holders`.
    offenders: Vec<bool>,
    chapters: &'static [u8],
    consignors: Vec<Country>,
}

/// Both periods' patterns and where the drift falls.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskPatterns {
    periods: [Period; 2],
    drift_at: u64,
}

impl RiskPatterns {
    pub fn new(world: &World, seed: u64) -> RiskPatterns {
        // Consignors are in loading countries, which are mostly the holders' own.
        let mut countries: Vec<Country> = Vec::new();
        for h in &world.holders {
            if !countries.contains(&h.record.country) {
                countries.push(h.record.country);
            }
        }
        let mut rng = Rng::keyed(seed, SALT);
        let mut used: Vec<Country> = Vec::new();
        let mut period = |chapters: &'static [u8], rng: &mut Rng| {
            let offenders = world.holders.iter().map(|_| rng.chance(OFFENDER_SHARE)).collect();
            // New risky countries at the drift.
            let mut consignors = Vec::new();
            let wanted = RISKY_CONSIGNOR_COUNTRIES.min(countries.len().saturating_sub(used.len()));
            while consignors.len() < wanted {
                let c = *rng.pick(&countries);
                if !used.contains(&c) {
                    used.push(c);
                    consignors.push(c);
                }
            }
            Period { offenders, chapters, consignors }
        };
        let first = period(SENSITIVE_CHAPTERS[0], &mut rng);
        let second = period(SENSITIVE_CHAPTERS[1], &mut rng);
        RiskPatterns { periods: [first, second], drift_at: DEFAULT_DRIFT_AT }
    }

    pub fn with_drift_at(mut self, drift_at: u64) -> RiskPatterns {
        self.drift_at = drift_at;
        self
    }

    pub fn drift_at(&self) -> u64 {
        self.drift_at
    }

    pub fn period_of(&self, index: u64) -> u8 {
        u8::from(index >= self.drift_at)
    }

    /// The risky consignor countries and sensitive chapters of `period` (0 or 1).
    pub fn describe(&self, period: u8) -> (Vec<Country>, &'static [u8]) {
        let p = &self.periods[usize::from(period.min(1))];
        (p.consignors.clone(), p.chapters)
    }

    /// Whether holder `holder` (index into `World::holders`) is a repeat offender in `period`.
    pub fn offender(&self, period: u8, holder: usize) -> bool {
        self.periods[usize::from(period.min(1))].offenders[holder]
    }

    /// Draws transport `index`'s truth from its own stream and, when it
    /// smuggles sensitive goods, lowers their declared values in `declaration`.
    pub fn draw(
        &self,
        catalog: &Catalog,
        seed: u64,
        index: u64,
        holder: usize,
        irregularity: Option<&Irregularity>,
        declaration: &mut Value,
    ) -> RiskTruth {
        let period = self.period_of(index);
        let p = &self.periods[usize::from(period)];
        let mut rng = Rng::keyed(mix(seed, SALT), index);
        let lines = lines(declaration);
        let mut patterns = Vec::new();
        let fraud =
            matches!(irregularity, Some(Irregularity::Undervaluation { .. } | Irregularity::MisdeclaredHs { .. }));
        if fraud {
            patterns.push(Pattern::DeclarationFraud);
        }
        if p.offenders[holder] {
            patterns.push(Pattern::RepeatOffender);
        }
        let sensitive: Vec<usize> = (0..lines.len()).filter(|&k| p.chapters.contains(&lines[k].chapter)).collect();
        if !sensitive.is_empty() {
            patterns.push(Pattern::SensitiveGoods);
        }
        if consignor_countries(declaration).iter().any(|c| p.consignors.contains(c)) {
            patterns.push(Pattern::RiskyConsignor);
        }
        let mut chance = BASE_CHANCE;
        for pattern in &patterns {
            chance *= match pattern {
                Pattern::DeclarationFraud => 1.0,
                Pattern::RepeatOffender => OFFENDER_FACTOR,
                Pattern::SensitiveGoods => GOODS_FACTOR,
                Pattern::RiskyConsignor => CONSIGNOR_FACTOR,
            };
        }
        // Always drawn, so the stream does not depend on the outcome.
        let by_pattern = rng.chance(chance.min(CHANCE_CAP));
        let smuggling = fraud || by_pattern;
        if !smuggling {
            return RiskTruth { smuggling, revenue_at_stake: 0.0, patterns, period };
        }
        let revenue: f64 = match irregularity {
            Some(Irregularity::Undervaluation { factor }) => {
                lines.iter().map(|l| l.eur * (1.0 / factor - 1.0) * tax_rate(l.chapter)).sum()
            }
            Some(Irregularity::MisdeclaredHs { actual, .. }) => {
                // The first line's goods at their own chapter's value and tax.
                let first = lines.first().map_or(0.0, |l| l.mass_kg);
                let profile = catalog.chapter(actual.chapter()).profile;
                first * profile.value_per_kg_eur * tax_rate(actual.chapter())
            }
            _ if !sensitive.is_empty() => {
                let share = rng.uniform(UNDERVALUED.0, UNDERVALUED.1);
                undervalue(declaration, &sensitive, share);
                sensitive.iter().map(|&k| lines[k].eur * (1.0 - share) * tax_rate(lines[k].chapter)).sum()
            }
            _ => rng.lognormal(HIDDEN_REVENUE_MEDIAN, HIDDEN_REVENUE_SIGMA),
        };
        RiskTruth { smuggling, revenue_at_stake: (revenue * 100.0_f64).round() / 100.0, patterns, period }
    }
}

/// A goods line as declared: chapter, mass, value in EUR.
struct Line {
    chapter: u8,
    mass_kg: f64,
    eur: f64,
}

fn goods(declaration: &Value) -> impl Iterator<Item = &Value> {
    declaration["consignments"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["goods"].as_array().into_iter().flatten())
}

fn lines(declaration: &Value) -> Vec<Line> {
    goods(declaration)
        .map(|g| {
            let chapter = g["hs_code"].as_str().and_then(|c| HsCode::parse(c).ok()).map_or(0, |c| c.chapter());
            let amount = g["value"]["amount"].as_f64().unwrap_or(0.0);
            let eur = if g["value"]["currency"] == "USD" { amount / USD_PER_EUR } else { amount };
            Line { chapter, mass_kg: g["gross_mass_kg"].as_f64().unwrap_or(0.0), eur }
        })
        .collect()
}

fn consignor_countries(declaration: &Value) -> Vec<Country> {
    declaration["consignments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["consignor"]["country"].as_str().and_then(|c| Country::parse(c).ok()))
        .collect()
}

/// Declares goods lines `which` (indices over all lines) at `share` of their value.
fn undervalue(declaration: &mut Value, which: &[usize], share: f64) {
    let mut k = 0;
    for consignment in declaration["consignments"].as_array_mut().into_iter().flatten() {
        for g in consignment["goods"].as_array_mut().into_iter().flatten() {
            if which.contains(&k)
                && let Some(amount) = g["value"]["amount"].as_f64()
            {
                g["value"]["amount"] = Value::from(((amount * share * 100.0).round() / 100.0).max(1.0));
            }
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::traffic::{Traffic, Transport};

    fn traffic(seed: u64) -> Traffic {
        Traffic::new(Arc::new(World::standard()), seed, 0.05)
    }

    fn rate(transports: &[&Transport]) -> f64 {
        transports.iter().filter(|t| t.truth.smuggling).count() as f64 / transports.len().max(1) as f64
    }

    #[test]
    fn the_same_seed_gives_the_same_truth_and_another_seed_another() {
        let (a, b) = (traffic(7), traffic(7));
        let first: Vec<RiskTruth> = (0..500).map(|i| a.transport(i).truth).collect();
        assert_eq!(first, (0..500).map(|i| b.transport(i).truth).collect::<Vec<_>>());
        assert_eq!(b.transport(321).truth, first[321]);
        let other: Vec<RiskTruth> = (0..500).map(|i| traffic(8).transport(i).truth).collect();
        assert_ne!(first, other);
    }

    #[test]
    fn the_base_rate_over_ten_thousand_transports_is_five_to_eight_percent() {
        let traffic = traffic(2024);
        let all: Vec<Transport> = traffic.iter().take(10_000).collect();
        let refs: Vec<&Transport> = all.iter().collect();
        let base = rate(&refs);
        assert!((0.05..=0.08).contains(&base), "smuggling rate {base}");
        // Both sides of the drift (at 5,000) stay in the band.
        for half in refs.chunks(5_000) {
            let r = rate(half);
            assert!((0.04..=0.09).contains(&r), "half rate {r}");
        }
        for t in &all {
            assert_eq!(t.truth.smuggling, t.truth.revenue_at_stake > 0.0, "{}: {:?}", t.reference, t.truth);
        }
    }

    #[test]
    fn pattern_transports_smuggle_far_more_often_than_the_rest() {
        let traffic = traffic(5);
        let all: Vec<Transport> = traffic.iter().take(10_000).collect();
        let rest: Vec<&Transport> = all.iter().filter(|t| t.truth.patterns.is_empty()).collect();
        let rest_rate = rate(&rest);
        assert!(rest.len() > 3_000, "{} transports without a pattern", rest.len());
        for pattern in [Pattern::RepeatOffender, Pattern::SensitiveGoods, Pattern::RiskyConsignor] {
            let matching: Vec<&Transport> = all.iter().filter(|t| t.truth.patterns.contains(&pattern)).collect();
            assert!(matching.len() > 200, "{pattern:?}: {}", matching.len());
            let r = rate(&matching);
            assert!(r > 3.0 * rest_rate, "{pattern:?}: {r} against {rest_rate} for the rest");
        }
        let fraud: Vec<&Transport> =
            all.iter().filter(|t| t.truth.patterns.contains(&Pattern::DeclarationFraud)).collect();
        assert!(!fraud.is_empty() && rate(&fraud) == 1.0);
        let patterned: Vec<&Transport> = all.iter().filter(|t| !t.truth.patterns.is_empty()).collect();
        assert!(rate(&patterned) > 5.0 * rest_rate, "{} against {rest_rate}", rate(&patterned));
    }

    #[test]
    fn the_drift_changes_which_chapters_and_holders_are_risky() {
        let traffic = traffic(11).with_drift_at(5_000);
        let patterns = traffic.risk_patterns();
        assert_eq!(patterns.period_of(4_999), 0);
        assert_eq!(patterns.period_of(5_000), 1);
        let (before, after) = (patterns.describe(0), patterns.describe(1));
        assert_ne!(before.1, after.1);
        assert!(before.0.iter().all(|c| !after.0.contains(c)), "{before:?} {after:?}");
        let holders = traffic.world().holders.len();
        assert!((0..holders).any(|h| patterns.offender(0, h) != patterns.offender(1, h)));
        // Spirits and electronics are risky before the drift only; pharmaceuticals,
        // cosmetics and apparel after only. Other patterns are left out.
        let with_any =
            |t: &Transport, chapters: &[u8]| lines(&t.declaration).iter().any(|l| chapters.contains(&l.chapter));
        let all: Vec<Transport> = traffic.iter().take(10_000).collect();
        let (first, second) = all.split_at(5_000);
        let of = |half: &[Transport], chapters: &[u8]| -> f64 {
            let goods_only = |t: &&Transport| t.truth.patterns.iter().all(|p| *p == Pattern::SensitiveGoods);
            let chosen: Vec<&Transport> = half.iter().filter(goods_only).filter(|t| with_any(t, chapters)).collect();
            assert!(chosen.len() > 100, "{chapters:?}: {}", chosen.len());
            rate(&chosen)
        };
        let (old, new) = (&[22, 85][..], &[30, 33, 62][..]);
        assert!(of(first, old) > 2.0 * of(second, old), "{old:?}: {} then {}", of(first, old), of(second, old));
        assert!(of(second, new) > 2.0 * of(first, new), "{new:?}: {} then {}", of(first, new), of(second, new));
    }

    #[test]
    fn smuggled_sensitive_goods_are_declared_at_a_low_value_per_kg() {
        let traffic = traffic(3);
        let catalog = &traffic.world().catalog;
        let (mut smuggled, mut honest) = (Vec::new(), Vec::new());
        for t in traffic.iter().take(6_000) {
            if t.irregularity.is_some() || !t.truth.patterns.contains(&Pattern::SensitiveGoods) {
                continue;
            }
            let (_, chapters) = traffic.risk_patterns().describe(t.truth.period);
            for l in lines(&t.declaration).iter().filter(|l| chapters.contains(&l.chapter)) {
                let norm = catalog.chapter(l.chapter).profile.value_per_kg_eur;
                let ratio = (l.eur / l.mass_kg / norm).ln();
                if t.truth.smuggling { smuggled.push(ratio) } else { honest.push(ratio) }
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(smuggled.len() > 50 && honest.len() > 500, "{} {}", smuggled.len(), honest.len());
        // Lognormal around the norm when honest; at 15-45 % of it when smuggled.
        assert!(mean(&honest).abs() < 0.1, "honest {}", mean(&honest));
        assert!(mean(&smuggled) < (0.5f64).ln(), "smuggled {}", mean(&smuggled));
    }
}
