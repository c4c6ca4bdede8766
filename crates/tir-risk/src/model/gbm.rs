//! Gradient-boosted trees for log loss, histogram style: features binned to
//! at most 64 quantile bins once, trees grown depth-first to a fixed depth
//! with the second-order gain, the larger child's histogram obtained by
//! subtracting the smaller one's from its parent's. Missing values get their
//! own bin and go to whichever side gains more.

use super::flat::{Forest, LEAF, Node};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub rounds: usize,
    pub depth: usize,
    pub eta: f64,
    /// L2 penalty on leaf values.
    pub lambda: f64,
    /// Least hessian sum in a child.
    pub min_hessian: f64,
}

impl Default for Params {
    fn default() -> Self {
        // XGBoost's defaults, except 64 bins instead of 256.
        Params { rounds: 100, depth: 6, eta: 0.1, lambda: 1.0, min_hessian: 1.0 }
    }
}

/// Bin 0 is missing; bin k >= 1 holds cuts[k-2] <= x < cuts[k-1].
const BINS: usize = 64;

struct Binned {
    cuts: Vec<Vec<f64>>,
    /// Row-major, one byte per feature.
    bins: Vec<u8>,
    cols: usize,
}

fn bin_features(rows: &[&[f64]], cols: usize) -> Binned {
    let step = (rows.len() / 50_000).max(1);
    let cuts: Vec<Vec<f64>> = (0..cols)
        .map(|j| {
            let mut v: Vec<f64> = rows.iter().step_by(step).map(|r| r[j]).filter(|x| !x.is_nan()).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            if v.len() < BINS {
                return v.into_iter().skip(1).collect();
            }
            let mut c: Vec<f64> = (1..BINS - 1).map(|q| v[q * v.len() / (BINS - 1)]).collect();
            c.dedup();
            c
        })
        .collect();
    let mut bins = Vec::with_capacity(rows.len() * cols);
    for r in rows {
        for (j, c) in cuts.iter().enumerate() {
            let x = r[j];
            bins.push(if x.is_nan() { 0 } else { 1 + c.partition_point(|t| *t <= x) as u8 });
        }
    }
    Binned { cuts, bins, cols }
}

#[derive(Clone, Copy, Default)]
struct Gh {
    g: f64,
    h: f64,
}

type Hist = Vec<Gh>;

struct Grower<'a> {
    data: &'a Binned,
    grad: &'a [Gh],
    p: &'a Params,
    nodes: Vec<Node>,
}

struct Split {
    gain: f64,
    feature: usize,
    bin: usize,
    missing_left: bool,
}

impl Grower<'_> {
    fn hist(&self, rows: &[u32]) -> Hist {
        let cols = self.data.cols;
        let mut h = vec![Gh::default(); cols * (BINS + 1)];
        for &r in rows {
            let gh = self.grad[r as usize];
            let b = &self.data.bins[r as usize * cols..(r as usize + 1) * cols];
            for (j, &bin) in b.iter().enumerate() {
                let cell = &mut h[j * (BINS + 1) + bin as usize];
                cell.g += gh.g;
                cell.h += gh.h;
            }
        }
        h
    }

    fn score(&self, g: f64, h: f64) -> f64 {
        g * g / (h + self.p.lambda)
    }

    fn best(&self, hist: &Hist, total: Gh) -> Option<Split> {
        let parent = self.score(total.g, total.h);
        let mut best: Option<Split> = None;
        for j in 0..self.data.cols {
            let cells = &hist[j * (BINS + 1)..(j + 1) * (BINS + 1)];
            let miss = cells[0];
            let mut left = Gh::default();
            for (bin, cell) in cells.iter().enumerate().take(self.data.cuts[j].len() + 1).skip(1) {
                left.g += cell.g;
                left.h += cell.h;
                for missing_left in [false, true] {
                    let (lg, lh) = if missing_left { (left.g + miss.g, left.h + miss.h) } else { (left.g, left.h) };
                    let (rg, rh) = (total.g - lg, total.h - lh);
                    if lh < self.p.min_hessian || rh < self.p.min_hessian {
                        continue;
                    }
                    let gain = self.score(lg, lh) + self.score(rg, rh) - parent;
                    if gain > 1e-9 && best.as_ref().is_none_or(|b| gain > b.gain) {
                        best = Some(Split { gain, feature: j, bin, missing_left });
                    }
                }
            }
        }
        best
    }

    /// Grow the subtree over `rows` (reordered in place); returns its index.
    fn grow(&mut self, rows: &mut [u32], hist: Hist, total: Gh, depth: usize, pred: &mut [f64]) -> u32 {
        let value = -total.g / (total.h + self.p.lambda) * self.p.eta;
        let at = self.nodes.len() as u32;
        self.nodes.push(Node { feature: LEAF, threshold: 0.0, left: 0, right: 0, missing: 0, value });
        let split = if depth < self.p.depth { self.best(&hist, total) } else { None };
        let Some(s) = split else {
            for &r in rows.iter() {
                pred[r as usize] += value;
            }
            return at;
        };
        let cols = self.data.cols;
        let goes_left = |r: u32| {
            let b = self.data.bins[r as usize * cols + s.feature] as usize;
            if b == 0 { s.missing_left } else { b <= s.bin }
        };
        // Partition: left rows first.
        let mut k = 0;
        for i in 0..rows.len() {
            if goes_left(rows[i]) {
                rows.swap(i, k);
                k += 1;
            }
        }
        let (l, r) = rows.split_at_mut(k);
        let sum = |rs: &[u32]| {
            rs.iter()
                .fold(Gh::default(), |a, &i| Gh { g: a.g + self.grad[i as usize].g, h: a.h + self.grad[i as usize].h })
        };
        let (lt, rt) = (sum(l), sum(r));
        // Build the smaller child's histogram, subtract for the other.
        let small = if l.len() <= r.len() { self.hist(l) } else { self.hist(r) };
        let large: Hist = hist.iter().zip(&small).map(|(p, c)| Gh { g: p.g - c.g, h: p.h - c.h }).collect();
        let (lh, rh) = if l.len() <= r.len() { (small, large) } else { (large, small) };
        let left = self.grow(l, lh, lt, depth + 1, pred);
        let right = self.grow(r, rh, rt, depth + 1, pred);
        self.nodes[at as usize] = Node {
            feature: s.feature as u32,
            threshold: self.data.cuts[s.feature][s.bin - 1],
            left,
            right,
            missing: if s.missing_left { left } else { right },
            value,
        };
        at
    }
}

/// What the trees fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Log loss on 0/1 targets; scores are log-odds.
    Logistic,
    /// Squared error; scores are in the target's unit.
    Squared,
}

/// Train on `rows` (each `cols` wide) for labels `y`. Deterministic.
pub fn train(rows: &[&[f64]], y: &[bool], p: &Params) -> Forest {
    let t: Vec<f64> = y.iter().map(|v| f64::from(u8::from(*v))).collect();
    train_objective(rows, &t, Objective::Logistic, p)
}

/// Train on `rows` for targets `y` under `objective`. Deterministic.
pub fn train_objective(rows: &[&[f64]], y: &[f64], objective: Objective, p: &Params) -> Forest {
    let cols = rows.first().map_or(0, |r| r.len());
    let data = bin_features(rows, cols);
    let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
    let base = match objective {
        Objective::Logistic => {
            let m = mean.clamp(1e-6, 1.0 - 1e-6);
            (m / (1.0 - m)).ln()
        }
        Objective::Squared => mean,
    };
    let mut pred = vec![base; y.len()];
    let mut forest = Forest { base, roots: Vec::new(), nodes: Vec::new() };
    let mut grad = vec![Gh::default(); y.len()];
    let mut order: Vec<u32> = (0..y.len() as u32).collect();
    for _ in 0..p.rounds {
        for ((gh, &f), &t) in grad.iter_mut().zip(&pred).zip(y) {
            *gh = match objective {
                Objective::Logistic => {
                    let q = 1.0 / (1.0 + (-f).exp());
                    Gh { g: q - t, h: (q * (1.0 - q)).max(1e-16) }
                }
                Objective::Squared => Gh { g: f - t, h: 1.0 },
            };
        }
        let mut g = Grower { data: &data, grad: &grad, p, nodes: Vec::new() };
        let hist = g.hist(&order);
        let total = grad.iter().fold(Gh::default(), |a, b| Gh { g: a.g + b.g, h: a.h + b.h });
        g.grow(&mut order, hist, total, 0, &mut pred);
        let offset = forest.nodes.len() as u32;
        forest.roots.push(offset);
        forest.nodes.extend(g.nodes.into_iter().map(|mut n| {
            if n.feature != LEAF {
                n.left += offset;
                n.right += offset;
                n.missing += offset;
            }
            n
        }));
    }
    forest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_threshold_and_routes_missing() {
        // y = x > 5; the NaN rows are all positive, so missing must go right.
        let xs: Vec<[f64; 1]> = (0..200).map(|i| [if i % 10 == 9 { f64::NAN } else { f64::from(i % 10) }]).collect();
        let y: Vec<bool> = xs.iter().map(|x| x[0].is_nan() || x[0] > 5.0).collect();
        let rows: Vec<&[f64]> = xs.iter().map(|x| &x[..]).collect();
        let f = train(&rows, &y, &Params { rounds: 30, depth: 2, ..Params::default() });
        for (x, t) in xs.iter().zip(&y) {
            assert_eq!(f.score(x) > 0.0, *t, "x = {}", x[0]);
        }
        let root = f.nodes[f.roots[0] as usize];
        assert_eq!(root.feature, 0);
        assert!(root.threshold > 5.0 && root.threshold <= 6.0, "{root:?}");
    }

    #[test]
    fn squared_error_fits_each_sides_mean() {
        let xs: Vec<[f64; 1]> = (0..200).map(|i| [f64::from(i % 10)]).collect();
        let y: Vec<f64> = xs.iter().map(|x| if x[0] > 5.0 { 10.0 } else { 2.0 }).collect();
        let rows: Vec<&[f64]> = xs.iter().map(|x| &x[..]).collect();
        let f = train_objective(&rows, &y, Objective::Squared, &Params { rounds: 60, depth: 2, ..Params::default() });
        assert!((f.base - 5.2).abs() < 1e-12, "base is the mean: {}", f.base);
        for (x, t) in xs.iter().zip(&y) {
            assert!((f.score(x) - t).abs() < 0.05, "x = {}: {} vs {t}", x[0], f.score(x));
        }
    }

    #[test]
    fn leaf_updates_match_the_forest() {
        // The training predictions (leaf by leaf) and the served scores agree.
        let xs: Vec<[f64; 2]> = (0..300).map(|i| [f64::from(i % 17), f64::from((i * 7) % 13)]).collect();
        let y: Vec<bool> = xs.iter().map(|x| (x[0] + x[1]) % 3.0 == 0.0).collect();
        let rows: Vec<&[f64]> = xs.iter().map(|x| &x[..]).collect();
        let p = Params { rounds: 5, depth: 3, ..Params::default() };
        let a = train(&rows, &y, &p);
        let b = train(&rows, &y, &p);
        assert_eq!(a, b, "deterministic");
        let mut out = [0.0; 2];
        for x in &xs {
            out = [0.0; 2];
            let bias = a.contributions(x, &mut out);
            assert!((bias + out[0] + out[1] - a.score(x)).abs() < 1e-12);
        }
        assert!(out.iter().all(|c| c.is_finite()));
    }
}
