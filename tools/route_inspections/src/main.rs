//! Counts the inspections of `tirhub risk simulate`'s two policies (at its
//! defaults, random exploration, `--trees 30`) that fall after the drift
//! (14-01-01) on the route of a `--drift route` file: the origin whose share
//! grows most, with its chapters that surge; or, with `trusted` after the
//! seed, on the turned importers of a `--drift trusted` file: those with 20+
//! declarations on each side of the drift whose irregular share rises by more
//! than 0.25 (both the definitions of the generator's unit tests). It runs the
//! loop itself (`tir_risk::eval::simulate_observed`), so its precision is
//! `simulate`'s.
use std::collections::HashMap;

use tir_risk::bacuda::{self, Declaration};
use tir_risk::eval::{Inspections, SimConfig, simulate_observed};
use tir_risk::model::Params;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(seed)) = (args.next(), args.next().and_then(|s| s.parse::<u64>().ok())) else {
        eprintln!("usage: route-inspections FILE.csv LOOP_SEED [trusted]");
        std::process::exit(2);
    };
    let trusted = args.next().as_deref() == Some("trusted");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let ds = bacuda::read(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let rows = &ds.rows;
    let drift = bacuda::parse_date("14-01-01").expect("a date");
    let cut = rows.partition_point(|r| r.day < drift);
    // The route, as in the unit test.
    let (n1, n2) = (cut as f64, (rows.len() - cut) as f64);
    let mut by_origin: HashMap<u32, [f64; 2]> = HashMap::new();
    let mut by_segment: HashMap<(u32, u32), [f64; 2]> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let after = usize::from(i >= cut);
        by_origin.entry(r.country).or_default()[after] += 1.0;
        by_segment.entry((r.country, r.hs2())).or_default()[after] += 1.0;
    }
    let growth = |c: &[f64; 2]| c[1] / n2 - c[0] / n1;
    let origin = *by_origin.iter().max_by(|x, y| growth(x.1).total_cmp(&growth(y.1))).expect("rows").0;
    let chapters: Vec<u32> = by_segment
        .iter()
        .filter(|((o, _), c)| *o == origin && c[1] >= 20.0 && c[1] >= 5.0 * c[0].max(1.0))
        .map(|((_, ch), _)| *ch)
        .collect();
    let mut by_importer: HashMap<u32, [f64; 4]> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let at = if i < cut { 0 } else { 2 };
        let c = by_importer.entry(r.importer).or_default();
        c[at] += 1.0;
        c[at + 1] += f64::from(u8::from(r.illicit));
    }
    let turned: Vec<u32> = by_importer
        .iter()
        .filter(|(_, c)| c[0] >= 20.0 && c[2] >= 20.0 && c[3] / c[2] - c[1] / c[0] > 0.25)
        .map(|(&i, _)| i)
        .collect();
    let on_route = |r: &Declaration| {
        if trusted { turned.contains(&r.importer) } else { r.country == origin && chapters.contains(&r.hs2()) }
    };

    let cfg = SimConfig {
        params: Params { rounds: 30, ..Params::default() },
        seed,
        drift_from: Some(drift),
        ..SimConfig::default()
    };
    // Per policy: inspected after the drift, on the route, irregular there, irregular in all;
    // and per quarter after the drift: [on the route, inspected].
    let mut counts = [[0usize; 4]; 2];
    let mut quarters = [[[0usize; 2]; 5]; 2];
    // Per policy, before the drift (after the warm-up): [on the route, inspected].
    let mut before = [[0usize; 2]; 2];
    let report = simulate_observed(
        &ds,
        &cfg,
        |_, _| {},
        |seen: Inspections<'_>| {
            if seen.week < cfg.warmup_weeks {
                return;
            }
            let p = usize::from(seen.mix);
            if seen.rows[0].day < drift {
                for (r, _) in seen.rows.iter().zip(seen.chosen).filter(|(_, c)| **c) {
                    before[p][1] += 1;
                    before[p][0] += usize::from(on_route(r));
                }
                return;
            }
            let quarter = (((seen.rows[0].day - drift) / 7) as usize / 13).min(4);
            for (r, _) in seen.rows.iter().zip(seen.chosen).filter(|(_, c)| **c) {
                counts[p][0] += 1;
                counts[p][3] += usize::from(r.illicit);
                quarters[p][quarter][1] += 1;
                if on_route(r) {
                    counts[p][1] += 1;
                    counts[p][2] += usize::from(r.illicit);
                    quarters[p][quarter][0] += 1;
                }
            }
        },
    );
    let where_ = if trusted { "on the turned importers" } else { "on the route" };
    let precision = [report.after_drift.exploit.precision, report.after_drift.mix.precision];
    for (p, name) in ["exploit", "mix"].iter().enumerate() {
        let [inspected, on, on_hits, hits] = counts[p];
        let by_quarter: Vec<String> =
            quarters[p].iter().filter(|q| q[1] > 0).map(|q| format!("{:.3}", q[0] as f64 / q[1] as f64)).collect();
        println!(
            "{path} seed {seed} {name}: precision {:.3}; after the drift {inspected} inspected, {on} {where_} ({:.3}), {on_hits} irregular there ({:.3} of its hits); share there by quarter {}; before the drift {:.3}",
            precision[p],
            on as f64 / inspected as f64,
            on_hits as f64 / hits as f64,
            by_quarter.join(" "),
            before[p][0] as f64 / before[p][1].max(1) as f64
        );
    }
}
