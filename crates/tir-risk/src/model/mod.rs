//! The learned model: gradient-boosted trees of our own ([`gbm`]: histogram
//! GBM for log loss; docs/risk.md says why not the `perpetual` crate),
//! versioned and stored as JSON, scoring in batches and explaining one score
//! at a time.

pub mod flat;
pub mod gbm;

use serde::{Deserialize, Serialize};

use crate::features::{self, Features};

pub use gbm::Params;

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
}

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

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl RiskModel {
    /// Train on `rows` labelled `illicit`. Deterministic for the same input.
    pub fn train(rows: &[Features], illicit: &[bool], params: &Params) -> Result<RiskModel, TrainError> {
        if rows.is_empty() || rows.len() != illicit.len() {
            return Err(TrainError(format!("{} rows, {} labels", rows.len(), illicit.len())));
        }
        let positives = illicit.iter().filter(|y| **y).count();
        if positives == 0 || positives == rows.len() {
            return Err(TrainError("the labels need both outcomes".into()));
        }
        let x: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
        let forest = gbm::train(&x, illicit, params);
        let json = serde_json::to_vec(&forest).map_err(|e| TrainError(e.to_string()))?;
        Ok(RiskModel {
            version: format!("gbm-{:012x}", fnv1a(&json) >> 16),
            features: features::NAMES.iter().map(|s| (*s).to_owned()).collect(),
            rows_trained: rows.len(),
            irregular_trained: positives,
            forest,
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
    fn refuses_one_class_labels() {
        let f = vec![[0.0; features::COUNT]; 3];
        assert!(RiskModel::train(&f, &[false; 3], &Params::default()).is_err());
        assert!(RiskModel::train(&f, &[false; 2], &Params::default()).is_err());
    }
}
