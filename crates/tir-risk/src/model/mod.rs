//! The learned model: gradient-boosted trees of our own ([`gbm`]: histogram
//! GBM for log loss; docs/risk.md says why not the `perpetual` crate),
//! versioned and stored as JSON, scoring in batches and explaining one score
//! at a time.

pub mod flat;
pub mod gbm;

use serde::{Deserialize, Serialize};

use crate::features::{self, Features};

pub use gbm::{Objective, Params};

#[derive(Debug)]
pub struct TrainError(pub String);

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "training failed: {}", self.0)
    }
}

impl std::error::Error for TrainError {}

/// A trained model with what it takes to serve it again.
#[derive(Clone, Serialize, Deserialize)]
pub struct RiskModel {
    /// `gbm-<hash of the trees>`: the same trees give the same version.
    pub version: String,
    /// The feature names the trees were trained on, in order.
    pub features: Vec<String>,
    pub rows_trained: usize,
    pub irregular_trained: usize,
    forest: flat::Forest,
    /// ln(1 + revenue) of an irregular declaration, fitted on the irregular
    /// rows only (DATE's second head); models stored before it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revenue: Option<flat::Forest>,
}

/// How much the predicted revenue weighs against the probability in the
/// inspection ranking: rank = ln p + `REVENUE_WEIGHT` × ln(1 + revenue if
/// irregular). 1 would be the expected revenue; less keeps precision
/// (docs/risk.md, "Revenue-aware ranking", shows how it was chosen).
pub const REVENUE_WEIGHT: f64 = 0.1;

/// A feature and how much it moved this score (in log-odds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    pub value: f64,
    pub contribution: f64,
}

/// Why a declaration scored what it did: `base` plus every feature's
/// contribution is `score` (log-odds); `top` lists the largest by magnitude.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Explanation {
    pub model_version: String,
    pub score: f64,
    pub probability: f64,
    pub base: f64,
    pub top: Vec<Contribution>,
    /// All contributions, in feature order (`top` is a sorted excerpt).
    pub all: Vec<f64>,
}

/// The revenue head is smaller than the classifier: it fits a smooth target
/// on the irregular rows only, and scoring both must stay fast.
pub fn revenue_params(p: &Params) -> Params {
    Params { rounds: p.rounds.div_ceil(2), depth: p.depth.min(4), ..*p }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl RiskModel {
    /// Train on `rows` labelled `illicit`. Deterministic for the same input.
    pub fn train(rows: &[Features], illicit: &[bool], params: &Params) -> Result<RiskModel, TrainError> {
        Self::fit(rows, illicit, None, params)
    }

    /// Train the classifier and, on the irregular rows, the revenue head that
    /// [`RiskModel::rank`] uses.
    pub fn train_with_revenue(
        rows: &[Features],
        illicit: &[bool],
        revenue: &[f64],
        params: &Params,
    ) -> Result<RiskModel, TrainError> {
        if revenue.len() != rows.len() {
            return Err(TrainError(format!("{} rows, {} revenues", rows.len(), revenue.len())));
        }
        Self::fit(rows, illicit, Some(revenue), params)
    }

    fn fit(
        rows: &[Features],
        illicit: &[bool],
        revenue: Option<&[f64]>,
        params: &Params,
    ) -> Result<RiskModel, TrainError> {
        if rows.is_empty() || rows.len() != illicit.len() {
            return Err(TrainError(format!("{} rows, {} labels", rows.len(), illicit.len())));
        }
        let positives = illicit.iter().filter(|y| **y).count();
        if positives == 0 || positives == rows.len() {
            return Err(TrainError("the labels need both outcomes".into()));
        }
        let x: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
        let forest = gbm::train(&x, illicit, params);
        let revenue = revenue.map(|rev| {
            let (xs, ys): (Vec<&[f64]>, Vec<f64>) = x
                .iter()
                .zip(illicit)
                .zip(rev)
                .filter(|((_, y), _)| **y)
                .map(|((r, _), v)| (*r, v.max(0.0).ln_1p()))
                .unzip();
            gbm::train_objective(&xs, &ys, Objective::Squared, &revenue_params(params))
        });
        let json = serde_json::to_vec(&(&forest, &revenue)).map_err(|e| TrainError(e.to_string()))?;
        Ok(RiskModel {
            version: format!("gbm-{:012x}", fnv1a(&json) >> 16),
            features: features::NAMES.iter().map(|s| (*s).to_owned()).collect(),
            rows_trained: rows.len(),
            irregular_trained: positives,
            forest,
            revenue,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a model serializes")
    }

    pub fn from_json(s: &str) -> Result<RiskModel, serde_json::Error> {
        serde_json::from_str(s)
    }

    pub fn trees(&self) -> usize {
        self.forest.roots.len()
    }

    /// Log-odds of irregularity, one per row, on this thread.
    pub fn score(&self, rows: &[Features]) -> Vec<f64> {
        rows.iter().map(|r| self.forest.score(r)).collect()
    }

    /// Predicted revenue (EUR) if the declaration is irregular; `None`
    /// without a revenue head.
    pub fn revenue_if_irregular(&self, row: &Features) -> Option<f64> {
        self.revenue.as_ref().map(|f| f.score(row).max(0.0).exp_m1())
    }

    /// The inspection ranking, one per row, higher first: ln p, plus
    /// [`REVENUE_WEIGHT`] × the predicted ln(1 + revenue) when the model has
    /// a revenue head (without one, the log-odds). Only the order means something.
    pub fn rank(&self, rows: &[Features]) -> Vec<f64> {
        match &self.revenue {
            None => self.score(rows),
            Some(rev) => rows
                .iter()
                .map(|r| {
                    let z = self.forest.score(r);
                    // ln p = -ln(1 + e^-z), stable for large |z|.
                    let ln_p = -((-z).exp().ln_1p());
                    ln_p + REVENUE_WEIGHT * rev.score(r).max(0.0)
                })
                .collect(),
        }
    }

    /// Score one declaration with its path contributions (Saabas: each split
    /// on the way to a leaf credits its feature with the change of the node
    /// value), so base + contributions = score exactly.
    pub fn explain(&self, row: &Features, top: usize) -> Explanation {
        let mut all = vec![0.0; features::COUNT];
        let base = self.forest.contributions(row, &mut all);
        let score = base + all.iter().sum::<f64>();
        let mut order: Vec<usize> = (0..features::COUNT).filter(|&j| all[j] != 0.0).collect();
        order.sort_by(|&a, &b| all[b].abs().total_cmp(&all[a].abs()).then(a.cmp(&b)));
        Explanation {
            model_version: self.version.clone(),
            score,
            probability: sigmoid(score),
            base,
            top: order
                .into_iter()
                .take(top)
                .map(|j| Contribution { feature: self.features[j].clone(), value: row[j], contribution: all[j] })
                .collect(),
            all,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bacuda::{GenConfig, generate};

    fn trained() -> (RiskModel, Vec<Features>) {
        let ds = generate(&GenConfig::new(4000, 11));
        let (f, _) = features::split(&ds.rows, i32::MAX);
        let y: Vec<bool> = ds.rows.iter().map(|r| r.illicit).collect();
        (RiskModel::train(&f, &y, &Params { rounds: 30, ..Params::default() }).unwrap(), f)
    }

    #[test]
    fn explanations_add_up_to_the_score() {
        let (m, f) = trained();
        assert!(m.trees() > 0);
        let scores = m.score(&f[..200]);
        for (row, s) in f[..200].iter().zip(&scores) {
            let e = m.explain(row, 5);
            let sum = e.base + e.all.iter().sum::<f64>();
            assert!((sum - s).abs() < 1e-9, "contributions {sum} vs score {s}");
            assert!((e.score - s).abs() < 1e-9);
            assert!(e.top.len() <= 5);
            assert!(e.top.windows(2).all(|w| w[0].contribution.abs() >= w[1].contribution.abs()));
        }
    }

    #[test]
    fn a_stored_model_scores_the_same() {
        let (m, f) = trained();
        let back = RiskModel::from_json(&m.to_json()).unwrap();
        assert_eq!(back.version, m.version);
        assert_eq!(back.score(&f[..100]), m.score(&f[..100]));
    }

    #[test]
    fn the_revenue_head_ranks_and_is_stored() {
        let ds = generate(&GenConfig::new(4000, 11));
        let (f, _) = features::split(&ds.rows, i32::MAX);
        let y: Vec<bool> = ds.rows.iter().map(|r| r.illicit).collect();
        let rev: Vec<f64> = ds.rows.iter().map(|r| r.revenue).collect();
        let p = Params { rounds: 30, ..Params::default() };
        let plain = RiskModel::train(&f, &y, &p).unwrap();
        let m = RiskModel::train_with_revenue(&f, &y, &rev, &p).unwrap();
        // Same classifier, a different model (its version covers the head).
        assert_eq!(m.score(&f[..100]), plain.score(&f[..100]));
        assert_ne!(m.version, plain.version);
        assert_eq!(plain.rank(&f[..100]), plain.score(&f[..100]));
        assert!(plain.revenue_if_irregular(&f[0]).is_none());
        let rank = m.rank(&f[..100]);
        for (i, row) in f[..100].iter().enumerate() {
            let ln_p = sigmoid(m.score(std::slice::from_ref(row))[0]).ln();
            let r = m.revenue_if_irregular(row).unwrap();
            assert!(r >= 0.0);
            assert!((rank[i] - (ln_p + REVENUE_WEIGHT * r.ln_1p())).abs() < 1e-9);
        }
        let back = RiskModel::from_json(&m.to_json()).unwrap();
        assert_eq!(back.rank(&f[..100]), rank);
        // A model stored before the head has no `revenue` key and still loads.
        assert!(!plain.to_json().contains("\"revenue\""));
        assert_eq!(RiskModel::from_json(&plain.to_json()).unwrap().rank(&f[..10]), plain.score(&f[..10]));
        assert!(RiskModel::train_with_revenue(&f, &y, &rev[..10], &p).is_err());
    }

    #[test]
    fn refuses_one_class_labels() {
        let f = vec![[0.0; features::COUNT]; 3];
        assert!(RiskModel::train(&f, &[false; 3], &Params::default()).is_err());
        assert!(RiskModel::train(&f, &[false; 2], &Params::default()).is_err());
    }
}
