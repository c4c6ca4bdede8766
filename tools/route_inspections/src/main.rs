//! Replays the weekly loop of `tir_risk::eval::simulate` at its defaults
//! (capacity 5 %, exploration 10 % at random, 4 warm-up weeks, retraining
//! every 4 weeks, 30 trees), exploitation and the random mix, and counts their
//! inspections after the drift (14-01-01) that fall on the route of a
//! `--drift route` file: the origin whose share grows most, with its chapters
//! that surge (the definition of the generator's unit test). The loop is
//! copied here because `simulate` does not report which rows it inspected;
//! it prints the same after-drift precision as `simulate` (checked on the
//! files of docs/risk.md).
use std::collections::HashMap;
use tir_risk::bacuda::{self, Declaration, Rng};
use tir_risk::eval::{inspected, ranking};
use tir_risk::features::{Features, History};
use tir_risk::model::{Params, RiskModel};

struct P {
    explore: f64,
    history: History,
    x: Vec<Features>,
    y: Vec<bool>,
    rev: Vec<f64>,
    model: Option<RiskModel>,
}
impl P {
    fn week(&mut self, rows: &[Declaration], k: usize, rng: &mut Rng, warm: bool) -> Vec<bool> {
        let feats: Vec<Features> = rows.iter().map(|r| self.history.features(r)).collect();
        let mut chosen = vec![false; rows.len()];
        let n_random = match (&self.model, warm) {
            (Some(_), false) => ((k as f64) * self.explore).round() as usize,
            _ => k,
        };
        if let (Some(m), false) = (&self.model, warm) {
            for &i in ranking(&m.rank(&feats)).iter().take(k - n_random) {
                chosen[i] = true;
            }
        }
        let mut rest: Vec<usize> = (0..rows.len()).filter(|&i| !chosen[i]).collect();
        for _ in 0..n_random.min(rest.len()) {
            let j = rng.below(rest.len() as u64) as usize;
            chosen[rest.swap_remove(j)] = true;
        }
        for (i, r) in rows.iter().enumerate() {
            if chosen[i] {
                self.x.push(feats[i]);
                self.y.push(r.illicit);
                self.rev.push(r.revenue);
            }
            self.history.observe(r, chosen[i].then_some(r.illicit));
        }
        chosen
    }
    fn retrain(&mut self, p: &Params) {
        if let Ok(m) = RiskModel::train_with_revenue(&self.x, &self.y, &self.rev, p) {
            self.model = Some(m);
        }
    }
}

fn main() {
    let path = std::env::args().nth(1).unwrap();
    let seed: u64 = std::env::args().nth(2).unwrap().parse().unwrap();
    let ds = bacuda::read(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let rows = &ds.rows;
    let drift = bacuda::parse_date("14-01-01").unwrap();
    let cut = rows.partition_point(|r| r.day < drift);
    // The route, as in the unit test.
    let (n1, n2) = (cut as f64, (rows.len() - cut) as f64);
    let mut bc: HashMap<u32, [f64; 2]> = HashMap::new();
    let mut bs: HashMap<(u32, u32), [f64; 2]> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let a = usize::from(i >= cut);
        bc.entry(r.country).or_default()[a] += 1.0;
        bs.entry((r.country, r.hs2())).or_default()[a] += 1.0;
    }
    let g = |c: &[f64; 2]| c[1] / n2 - c[0] / n1;
    let origin = *bc.iter().max_by(|x, y| g(x.1).total_cmp(&g(y.1))).unwrap().0;
    let route: Vec<u32> = bs
        .iter()
        .filter(|((o, _), c)| *o == origin && c[1] >= 20.0 && c[1] >= 5.0 * c[0].max(1.0))
        .map(|((_, ch), _)| *ch)
        .collect();
    let on = |r: &Declaration| r.country == origin && route.contains(&r.hs2());
    let params = Params { rounds: 30, ..Params::default() };
    let mut pol = [
        P { explore: 0.0, history: History::default(), x: vec![], y: vec![], rev: vec![], model: None },
        P { explore: 0.1, history: History::default(), x: vec![], y: vec![], rev: vec![], model: None },
    ];
    let mut rngs = [Rng::new(seed), Rng::new(seed)];
    let (first, last) = (rows[0].day, rows[rows.len() - 1].day);
    let n_weeks = ((last - first) / 7 + 1) as usize;
    // per policy: [inspected after, on route, route hits, hits] and per quarter on-route share
    let mut c = [[0usize; 4]; 2];
    let mut q = [[[0usize; 2]; 5]; 2];
    let mut prec = [[0.0f64, 0.0]; 2];
    let mut start = 0;
    for w in 0..n_weeks {
        let end_day = first + 7 * (w as i32 + 1);
        let end = start + rows[start..].partition_point(|r| r.day < end_day);
        let week = &rows[start..end];
        start = end;
        if week.is_empty() {
            continue;
        }
        let k = inspected(week.len(), 0.05);
        let warm = w < 4;
        let irregular = week.iter().filter(|r| r.illicit).count();
        for p in 0..2 {
            let ch = pol[p].week(week, k, &mut rngs[p], warm);
            if w >= 4 && week[0].day >= drift {
                let hits = week.iter().zip(&ch).filter(|(r, c)| **c && r.illicit).count();
                if irregular > 0 {
                    prec[p][0] += hits as f64 / k.min(irregular) as f64;
                    prec[p][1] += 1.0;
                }
                let wk = ((week[0].day - drift) / 7) as usize;
                for (r, &cc) in week.iter().zip(&ch) {
                    if !cc {
                        continue;
                    }
                    c[p][0] += 1;
                    c[p][3] += usize::from(r.illicit);
                    if on(r) {
                        c[p][1] += 1;
                        c[p][2] += usize::from(r.illicit);
                        q[p][(wk / 13).min(4)][0] += 1;
                    }
                    q[p][(wk / 13).min(4)][1] += 1;
                }
            }
        }
        if (w + 1) >= 4 && (w + 1 - 4) % 4 == 0 {
            for p in pol.iter_mut() {
                p.retrain(&params);
            }
        }
    }
    for (p, name) in ["exploit", "mix"].iter().enumerate() {
        let qs: Vec<String> =
            q[p].iter().filter(|x| x[1] > 0).map(|x| format!("{:.3}", x[0] as f64 / x[1] as f64)).collect();
        println!(
            "{path} seed {seed} {name}: precision {:.3}; after the drift {} inspected, {} on the route ({:.3}), {} irregular there ({:.3} of its hits); route share by quarter {}",
            prec[p][0] / prec[p][1],
            c[p][0],
            c[p][1],
            c[p][1] as f64 / c[p][0] as f64,
            c[p][2],
            c[p][2] as f64 / c[p][3] as f64,
            qs.join(" ")
        );
    }
}
