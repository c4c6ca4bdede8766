//! Scoring throughput of the model on one core, per declaration.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tir_risk::bacuda::{GenConfig, generate};
use tir_risk::features;
use tir_risk::model::RiskModel;

fn scoring(c: &mut Criterion) {
    let ds = generate(&GenConfig::new(40_000, 1));
    let (f, _) = features::split(&ds.rows, ds.rows[30_000].day);
    let y: Vec<bool> = ds.rows[..30_000].iter().map(|r| r.illicit).collect();
    let rev: Vec<f64> = ds.rows[..30_000].iter().map(|r| r.revenue).collect();
    let model =
        RiskModel::train_with_revenue(&f[..30_000], &y, &rev, &tir_risk::model::Params::default()).expect("trains");
    let test = &f[30_000..];
    let mut g = c.benchmark_group("score");
    g.throughput(Throughput::Elements(test.len() as u64));
    g.bench_function("batch", |b| b.iter(|| model.score(test)));
    // The inspection ranking: both heads.
    g.bench_function("rank", |b| b.iter(|| model.rank(test)));
    g.throughput(Throughput::Elements(1));
    g.bench_function("explain_one", |b| b.iter(|| model.explain(&test[0], 5)));
    g.finish();
}

criterion_group!(benches, scoring);
criterion_main!(benches);
