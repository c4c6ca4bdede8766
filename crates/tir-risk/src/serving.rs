//! The learned model on live transports: a [`TransportContext`] mapped to a
//! BACUDA [`Declaration`] (docs/risk.md, "Serving"), training from the stored
//! assessments and inspection results, and a [`Scorer`] that gives the
//! selection policy its [`ModelScore`].

use std::collections::HashMap;

use tir_model::{Country, Timestamp};

use crate::bacuda::{self, Day, Declaration};
use crate::context::TransportContext;
use crate::features::{self, Features, History};
use crate::model::{Explanation, Params, RiskModel, TrainError};
use crate::policy::ModelScore;
use crate::records::{AssessmentRecord, InspectionResult, StoredModel};

/// Labelled rows below this refuse to train: a handful of outcomes makes a
/// model that only repeats them.
pub const MIN_LABELLED: usize = 20;

/// Id of a name the vocabulary has never seen: no history has counts for it,
/// so its rates are the prior.
const UNSEEN: u32 = u32::MAX;

/// Interned names of what the features count by. The holder is both the
/// importer and the declarant (eTIR has no separate declarant).
#[derive(Debug, Default, Clone)]
pub struct Vocab {
    holders: HashMap<String, u32>,
    countries: HashMap<String, u32>,
    offices: HashMap<String, u32>,
}

fn intern(map: &mut HashMap<String, u32>, s: &str) -> u32 {
    if let Some(&i) = map.get(s) {
        return i;
    }
    let i = map.len() as u32;
    map.insert(s.to_owned(), i);
    i
}

impl Vocab {
    /// The declaration of `ctx`, interning names not seen yet.
    pub fn intern(&mut self, ctx: &TransportContext) -> Declaration {
        let holder = intern(&mut self.holders, &ctx.holder);
        let country = intern(&mut self.countries, origin(ctx));
        let office = intern(&mut self.offices, &ctx.office);
        declaration(ctx, holder, country, office)
    }

    /// The declaration of `ctx` without growing the vocabulary (serving).
    pub fn lookup(&self, ctx: &TransportContext) -> Declaration {
        let get = |m: &HashMap<String, u32>, s: &str| m.get(s).copied().unwrap_or(UNSEEN);
        declaration(
            ctx,
            get(&self.holders, &ctx.holder),
            get(&self.countries, origin(ctx)),
            get(&self.offices, &ctx.office),
        )
    }
}

fn origin(ctx: &TransportContext) -> &str {
    ctx.consignor_countries.first().map_or("", String::as_str)
}

fn missing_if_zero(x: f64) -> f64 {
    if x > 0.0 { x } else { f64::NAN }
}

/// The mapping of docs/risk.md: tariff from the goods item of highest value,
/// else the heaviest; amounts not declared are missing (NaN), never 0.
fn declaration(ctx: &TransportContext, holder: u32, country: u32, office: u32) -> Declaration {
    let mut main: Option<&crate::context::GoodsItem> = None;
    for g in &ctx.goods {
        let better = match main {
            None => true,
            Some(m) => g.value > m.value || (g.value == m.value && g.gross_mass_kg > m.gross_mass_kg),
        };
        if better {
            main = Some(g);
        }
    }
    let hs6: u64 = main.and_then(|g| g.hs6.parse().ok()).unwrap_or(0);
    Declaration {
        id: 0,
        day: day_of(&ctx.date),
        importer: holder,
        declarant: holder,
        country,
        office,
        tariff: hs6 * 10_000,
        quantity: missing_if_zero(ctx.total_packages as f64),
        gross_weight: missing_if_zero(ctx.total_gross_mass_kg),
        fob: missing_if_zero(ctx.total_value),
        cif: missing_if_zero(ctx.total_value),
        taxes: f64::NAN,
        illicit: false,
        revenue: 0.0,
    }
}

/// `YYYY-MM-DD`; a context always has one, an unreadable one reads as day 0.
fn day_of(date: &str) -> Day {
    bacuda::parse_date(date).unwrap_or(0)
}

/// What the features of a live transport read: the vocabulary and the
/// running counts of every stored assessment and outcome.
#[derive(Debug, Default, Clone)]
pub struct ServingHistory {
    vocab: Vocab,
    history: History,
}

/// The outcome of one guarantee for one administration: irregular if any of
/// its inspections found one, revenue summed over them.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Label {
    irregular: bool,
    revenue: f64,
}

/// One row per (administration, guarantee), from its earliest assessment,
/// sorted by day; `labels[i]` is its outcome when inspected.
struct Rows {
    declarations: Vec<Declaration>,
    labels: Vec<Option<Label>>,
    features: Vec<Features>,
    serving: ServingHistory,
}

fn rows(records: &[AssessmentRecord], results: &[InspectionResult]) -> Rows {
    let mut labels: HashMap<(Country, &str), Label> = HashMap::new();
    for r in results {
        let l =
            labels.entry((r.administration, r.guarantee.as_str())).or_insert(Label { irregular: false, revenue: 0.0 });
        l.irregular |= r.outcome.is_irregular();
        l.revenue += r.revenue;
    }
    let mut first: HashMap<(Country, &str), usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let at = |j: usize| records[j].assessment.assessed_at;
        first
            .entry((r.administration, r.guarantee.as_str()))
            .and_modify(|j| {
                if r.assessment.assessed_at < at(*j) {
                    *j = i;
                }
            })
            .or_insert(i);
    }
    let mut chosen: Vec<usize> = first.into_values().collect();
    let key = |i: &usize| (day_of(&records[*i].context.date), records[*i].assessment.assessed_at, *i);
    chosen.sort_by_key(key);
    let mut serving = ServingHistory::default();
    let declarations: Vec<Declaration> = chosen.iter().map(|&i| serving.vocab.intern(&records[i].context)).collect();
    let labels: Vec<Option<Label>> = chosen
        .iter()
        .map(|&i| labels.get(&(records[i].administration, records[i].guarantee.as_str())).copied())
        .collect();
    let features = features::build(&declarations, &mut serving.history, |i| labels[i].map(|l| l.irregular));
    Rows { declarations, labels, features, serving }
}

impl ServingHistory {
    /// Every stored assessment counted as declared, every outcome as known.
    pub fn from_records(records: &[AssessmentRecord], results: &[InspectionResult]) -> ServingHistory {
        rows(records, results).serving
    }

    /// The features of a live transport.
    pub fn features(&self, ctx: &TransportContext) -> Features {
        self.history.features(&self.vocab.lookup(ctx))
    }
}

/// A model trained from stored records, with the history to serve it.
#[derive(Clone)]
pub struct Trained {
    pub model: RiskModel,
    pub history: ServingHistory,
}

/// Train on every (administration, guarantee) with an inspection result of
/// the same administration, each from its earliest assessment's context.
/// Features are built in date order as in `features::build`: a row reads the
/// outcomes of earlier days only. Uninspected ones count as declared.
pub fn train_from_records(
    records: &[AssessmentRecord],
    results: &[InspectionResult],
    params: &Params,
) -> Result<Trained, TrainError> {
    let rows = rows(records, results);
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut revenue = Vec::new();
    for (f, l) in rows.features.iter().zip(&rows.labels) {
        if let Some(l) = l {
            x.push(*f);
            y.push(l.irregular);
            revenue.push(l.revenue);
        }
    }
    let irregular = y.iter().filter(|v| **v).count();
    if x.len() < MIN_LABELLED || irregular == 0 || irregular == x.len() {
        return Err(TrainError(format!(
            "{} inspected transports ({irregular} irregular) of {} assessed: need at least {MIN_LABELLED} with both outcomes",
            x.len(),
            rows.declarations.len()
        )));
    }
    let model = RiskModel::train_with_revenue(&x, &y, &revenue, params)?;
    Ok(Trained { model, history: rows.serving })
}

/// Scores live transports with a model and the history it was trained on.
#[derive(Clone)]
pub struct Scorer {
    model: RiskModel,
    history: ServingHistory,
}

/// How many contributions an officer is shown.
const REASONS: usize = 3;

impl Scorer {
    pub fn new(model: RiskModel, history: ServingHistory) -> Scorer {
        Scorer { model, history }
    }

    /// A stored model with the history rebuilt from the stored records.
    pub fn from_records(model: RiskModel, records: &[AssessmentRecord], results: &[InspectionResult]) -> Scorer {
        Scorer::new(model, ServingHistory::from_records(records, results))
    }

    /// A model as the store keeps it, with the history rebuilt from the
    /// stored records; an unreadable model is an error, not a panic.
    pub fn from_stored(
        model: &StoredModel,
        records: &[AssessmentRecord],
        results: &[InspectionResult],
    ) -> Result<Scorer, serde_json::Error> {
        Ok(Scorer::from_records(RiskModel::from_json(&model.model_json)?, records, results))
    }

    pub fn model(&self) -> &RiskModel {
        &self.model
    }

    /// Count a new assessment (and its outcome, once known) so that later
    /// transports read it; a restart gets the same from `from_records`.
    pub fn observe(&mut self, ctx: &TransportContext, outcome: Option<bool>) {
        let d = self.history.vocab.intern(ctx);
        self.history.history.observe(&d, outcome);
    }

    pub fn features(&self, ctx: &TransportContext) -> Features {
        self.history.features(ctx)
    }

    /// Every feature's contribution (log-odds); `top` holds the largest three.
    pub fn explain(&self, ctx: &TransportContext) -> Explanation {
        self.model.explain(&self.features(ctx), REASONS)
    }

    /// The probability of an irregularity, with the three largest
    /// contributions worded for the officer.
    pub fn score(&self, ctx: &TransportContext) -> ModelScore {
        let e = self.explain(ctx);
        let reasons = e.top.iter().map(|c| reason(&c.feature, c.value, c.contribution)).collect();
        ModelScore { score: e.probability, version: e.model_version, reasons }
    }
}

/// "holder's irregularity rate 0.31 raised the score by 0.42" (log-odds).
pub fn reason(feature: &str, value: f64, contribution: f64) -> String {
    let what = describe(feature, value);
    let verb = if contribution >= 0.0 { "raised" } else { "lowered" };
    format!("{what} {verb} the score by {:.2}", contribution.abs())
}

fn describe(feature: &str, v: f64) -> String {
    let n = |x: f64| x.exp_m1().round();
    if v.is_nan() {
        return match feature {
            "cif_log"
            | "unit_value_log"
            | "value_per_kg_log"
            | "cif_fob_ratio"
            | "unit_value_vs_hs6"
            | "value_per_kg_vs_hs6" => "no declared value".into(),
            "quantity_log" => "no declared packages".into(),
            "gross_weight_log" => "no declared gross mass".into(),
            "tax_ratio" => "no declared taxes".into(),
            other => format!("{other} unknown"),
        };
    }
    match feature {
        "cif_log" => format!("declared value {:.0}", n(v)),
        "unit_value_log" => format!("value per package {:.2}", v.exp()),
        "value_per_kg_log" => format!("value per kg {:.2}", v.exp()),
        "tax_ratio" => format!("taxes / value {v:.2}"),
        "quantity_log" => format!("{:.0} packages", n(v)),
        "gross_weight_log" => format!("gross mass {:.0} kg", n(v)),
        "cif_fob_ratio" => format!("CIF / FOB {v:.2}"),
        "unit_value_vs_hs6" => format!("value per package {:.2} × the HS code's usual", v.exp()),
        "value_per_kg_vs_hs6" => format!("value per kg {:.2} × the HS code's usual", v.exp()),
        "hs2" => format!("HS chapter {v:02.0}"),
        "importer_rate" => format!("holder's irregularity rate {v:.2}"),
        "importer_history" => format!("holder's {:.0} earlier transports", n(v)),
        "declarant_rate" => format!("holder's irregularity rate (as declarant) {v:.2}"),
        "declarant_history" => format!("holder's {:.0} earlier transports (as declarant)", n(v)),
        "hs6_rate" => format!("HS6 code's irregularity rate {v:.2}"),
        "hs4_rate" => format!("HS heading's irregularity rate {v:.2}"),
        "hs2_rate" => format!("HS chapter's irregularity rate {v:.2}"),
        "origin_rate" => format!("consignor country's irregularity rate {v:.2}"),
        "office_rate" => format!("office's irregularity rate {v:.2}"),
        "weekday" => format!(
            "weekday {}",
            ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][(v as usize).min(6)]
        ),
        "month" => format!("month {v:.0}"),
        other => format!("{other} {v:.3}"),
    }
}

/// The day a timestamp falls on (UTC), as a BACUDA day.
pub(crate) fn day_of_timestamp(at: Timestamp) -> Day {
    // 1970-01-01 is day -10,957 counted from 2000-01-01.
    (at.unix_ms().div_euclid(86_400_000) - 10_957) as Day
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::assessment::Assessment;
    use crate::context::tests::context;
    use crate::records::{Outcome, Trigger};

    pub(crate) fn record(admin: &str, guarantee: &str, holder: &str, day: Day, office: &str) -> AssessmentRecord {
        let mut ctx = context();
        ctx.guarantee = guarantee.into();
        ctx.holder = holder.into();
        ctx.office = office.into();
        let (y, m, d) = bacuda::ymd_from_day(day);
        ctx.date = format!("{y:04}-{m:02}-{d:02}");
        let at = Timestamp::from_unix_ms((i64::from(day) + 10_957) * 86_400_000 + 3_600_000);
        AssessmentRecord {
            administration: Country::parse(admin).unwrap(),
            guarantee: guarantee.into(),
            holder: holder.into(),
            trigger: Trigger::DeclarationRecorded,
            source_cursor: 0,
            declaration_version: 1,
            assessment: Assessment::unselected(office.into(), 2, at),
            context: ctx,
        }
    }

    pub(crate) fn result(
        admin: &str,
        guarantee: &str,
        office: &str,
        irregular: bool,
        revenue: f64,
    ) -> InspectionResult {
        InspectionResult {
            administration: Country::parse(admin).unwrap(),
            guarantee: guarantee.into(),
            office: office.into(),
            outcome: if irregular { Outcome::Irregularity } else { Outcome::Compliant },
            revenue,
            findings: Vec::new(),
            notes: String::new(),
            recorded_by: "customs-ro".into(),
            recorded_at: Timestamp::from_unix_ms(0),
        }
    }

    /// 600 transports of 30 holders over 120 days; holders 0-4 are irregular
    /// on 70 % of their inspected transports, the rest on 5 %, and half of
    /// all transports are inspected.
    fn history() -> (Vec<AssessmentRecord>, Vec<InspectionResult>) {
        let mut rng = bacuda::Rng::new(3);
        let (mut recs, mut res) = (Vec::new(), Vec::new());
        for i in 0..600 {
            let h = rng.below(30);
            let g = format!("XH{i:08}");
            let mut r = record("RO", &g, &format!("TUR/{h:03}/001"), 5000 + i / 5, "RO000100");
            r.context.total_value = (1000.0 + 100.0 * rng.f64()).round();
            recs.push(r);
            if rng.chance(0.5) {
                let irregular = rng.chance(if h < 5 { 0.7 } else { 0.05 });
                res.push(result("RO", &g, "RO000100", irregular, if irregular { 500.0 } else { 0.0 }));
            }
        }
        (recs, res)
    }

    fn params() -> Params {
        Params { rounds: 20, depth: 3, ..Params::default() }
    }

    #[test]
    fn maps_a_context_to_a_declaration() {
        let mut ctx = context();
        let mut v = Vocab::default();
        let d = v.intern(&ctx);
        // The cars (30,000 EUR) are the most valuable item.
        assert_eq!(d.hs6(), 870_323);
        assert_eq!((d.quantity, d.gross_weight), (102.0, 5000.0));
        assert_eq!((d.fob, d.cif), (35_000.0, 35_000.0));
        assert!(d.taxes.is_nan());
        assert_eq!(d.importer, d.declarant);
        assert_eq!(bacuda::format_date(d.day), "26-11-30");
        assert_eq!(format!("{:?}", v.lookup(&ctx)), format!("{d:?}"));
        // Without values, the heaviest item; a zero value is missing.
        for g in &mut ctx.goods {
            g.value = 0.0;
        }
        ctx.goods[2].gross_mass_kg = 9000.0;
        ctx.total_value = 0.0;
        let d = v.lookup(&ctx);
        assert_eq!(d.hs6(), 10_121);
        assert!(d.cif.is_nan() && d.fob.is_nan());
        // A holder never seen is no one's id.
        ctx.holder = "TUR/999/999".into();
        assert_eq!(v.lookup(&ctx).importer, UNSEEN);
    }

    #[test]
    fn scores_add_up_and_read_for_an_officer() {
        let (recs, res) = history();
        let t = train_from_records(&recs, &res, &params()).unwrap();
        let scorer = Scorer::new(t.model, t.history);
        let mut risky = recs[0].context.clone();
        risky.holder = "TUR/000/001".into();
        let mut clean = risky.clone();
        clean.holder = "TUR/020/001".into();
        for ctx in [&risky, &clean] {
            let e = scorer.explain(ctx);
            let s = scorer.score(ctx);
            assert!((e.base + e.all.iter().sum::<f64>() - e.score).abs() < 1e-9);
            assert!((s.score - crate::model::sigmoid(e.score)).abs() < 1e-12);
            assert!((0.0..=1.0).contains(&s.score));
            assert_eq!(s.version, scorer.model().version);
            assert!(!s.reasons.is_empty() && s.reasons.len() <= 3, "{:?}", s.reasons);
        }
        assert!(scorer.score(&risky).score > scorer.score(&clean).score);
        let s = scorer.score(&risky);
        assert!(s.reasons.iter().any(|r| r.starts_with("holder's irregularity rate")), "{:?}", s.reasons);
        assert_eq!(reason("importer_rate", 0.312, 0.4249), "holder's irregularity rate 0.31 raised the score by 0.42");
        assert_eq!(reason("cif_log", f64::NAN, -0.1), "no declared value lowered the score by 0.10");
    }

    #[test]
    fn a_rows_own_outcome_never_changes_its_features() {
        let (recs, res) = history();
        let base = rows(&recs, &res);
        for k in [0, res.len() / 2, res.len() - 1] {
            let mut flipped = res.clone();
            flipped[k].outcome =
                if flipped[k].outcome.is_irregular() { Outcome::Compliant } else { Outcome::Irregularity };
            let other = rows(&recs, &flipped);
            // The row of the flipped guarantee, and every row up to its day.
            let row = (0..recs.len()).find(|&j| recs[j].guarantee == res[k].guarantee).unwrap();
            let day = day_of(&recs[row].context.date);
            let mut checked = 0;
            for j in 0..base.declarations.len() {
                if base.declarations[j].day <= day {
                    let (a, b) = (&base.features[j], &other.features[j]);
                    assert!(
                        a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "row {j} saw an outcome of day {day}"
                    );
                    checked += 1;
                }
            }
            assert!(checked > 0);
            // A later day does see it (the prior moves for every later row).
            if base.declarations.iter().any(|d| d.day > day) {
                assert!(
                    base.features
                        .iter()
                        .zip(&other.features)
                        .any(|(a, b)| a.iter().zip(b).any(|(x, y)| x.to_bits() != y.to_bits()))
                );
            }
        }
    }

    #[test]
    fn results_of_another_administration_do_not_label() {
        let (recs, res) = history();
        let moved: Vec<InspectionResult> = res
            .iter()
            .map(|r| InspectionResult { administration: Country::parse("BG").unwrap(), ..r.clone() })
            .collect();
        let e = train_from_records(&recs, &moved, &params()).err().expect("no labels");
        assert!(e.0.contains("0 inspected transports"), "{e}");
    }

    #[test]
    fn too_few_or_one_class_refuses() {
        let (recs, res) = history();
        let few = train_from_records(&recs, &res[..MIN_LABELLED - 1], &params());
        assert!(few.err().expect("too few").0.contains("need at least"));
        let compliant: Vec<InspectionResult> =
            res.iter().map(|r| InspectionResult { outcome: Outcome::Compliant, ..r.clone() }).collect();
        assert!(train_from_records(&recs, &compliant, &params()).is_err());
        assert!(train_from_records(&[], &[], &params()).is_err());
    }

    #[test]
    fn the_earliest_assessment_of_a_guarantee_is_its_row() {
        let mut recs = vec![
            record("RO", "XH1", "TUR/001/001", 5010, "RO000100"),
            record("RO", "XH1", "TUR/001/001", 5000, "RO000200"),
        ];
        recs[1].context.total_value = 777.0;
        recs.push(record("BG", "XH1", "TUR/001/001", 5020, "BG000100"));
        let r = rows(&recs, &[result("RO", "XH1", "RO000200", true, 10.0)]);
        // One row per administration and guarantee.
        assert_eq!(r.declarations.len(), 2);
        assert_eq!(r.declarations[0].cif, 777.0);
        assert_eq!(r.labels[0], Some(Label { irregular: true, revenue: 10.0 }));
        assert_eq!(r.labels[1], None);
    }
}
