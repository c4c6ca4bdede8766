//! `tirhub risk`: generate BACUDA-style declarations, evaluate the learned
//! model against baselines on a date split, and simulate weekly inspections.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use tir_risk::bacuda::{self, Dataset, GenConfig};
use tir_risk::eval::{self, ExploreMode, Metrics, SimConfig};
use tir_risk::model;
use tir_risk::records::StoredModel;
use tir_risk::serving;

use crate::AnyError;

#[derive(Subcommand)]
pub enum RiskCommand {
    /// Write a synthetic import declaration file in the BACUDA schema.
    ///
    /// Columns: sgd.id, sgd.date (YY-MM-DD), importer.id, declarant.id, country,
    /// office.id, tariff.code, quantity, gross.weight, fob.value, cif.value,
    /// total.taxes, illicit (0/1), revenue (what an inspection recovers).
    /// Two years from 13-01-01. Irregularity follows risky importers,
    /// declarants, HS chapters and origins; half of the illicit declarations
    /// are undervalued. Halfway (14-01-01) the risky ones are drawn anew: a drift
    /// (--drift says what else changes). The same arguments write the same bytes.
    ///
    /// Examples:
    ///   tirhub risk generate --rows 100000 --seed 1 --out bacuda.csv
    ///   tirhub risk generate --rows 100000 --seed 1 --drift replace --out replace.csv
    ///   tirhub risk generate --rows 100000 --seed 1 --drift route --out route.csv
    #[command(verbatim_doc_comment)]
    Generate {
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// What the drift changes (the rows before it are the same bytes):
        /// redraw: the risky importers, declarants, chapters and origins are
        /// drawn anew; new-schemes: so are they, and the irregularities the
        /// newly risky add show nothing in the values; replace: the old
        /// schemes stop (everyone of the first half becomes ordinary) and new
        /// importers that never declared before (one per 3,000 rows, 10 % of
        /// the declarations after the drift) are irregular about 45 % of the
        /// time, by schemes that show nothing in the values; turn: as replace,
        /// but the new schemes start among established importers that were
        /// ordinary before (10 % of the declarations after the drift); route:
        /// the old schemes go on (the risky ones stay as before) and a new
        /// smuggling route opens: 60 % of the declarations of a few high-duty
        /// chapters that were ordinary (10 % of all declarations), by
        /// importers that were not risky, come from one origin that was
        /// ordinary, and about half of those are irregular (a misdeclared
        /// origin, nothing in the values); trusted: the old schemes go on and
        /// the largest importers that were ordinary (10 % of the
        /// declarations) start to be irregular about half of the time, by
        /// schemes that show nothing in the values.
        #[arg(long, value_enum, default_value_t = Drift::Redraw)]
        drift: Drift,
        /// The same as --drift new-schemes.
        #[arg(long, conflicts_with = "drift")]
        new_schemes: bool,
    },
    /// Train on the declarations dated before --test-from, test on the rest.
    ///
    /// Prints precision (irregular among the inspected), recall (share of all
    /// irregular found) and revenue share (share of all recoverable revenue
    /// found) when the top 1, 2, 5 and 10 % by score are inspected, and AUC, for
    /// the model and two baselines: random (fixed seed) and the importer's
    /// historic irregularity rate. Then training seconds and the scoring rate
    /// (declarations/s, one core, features already built).
    /// Historic rates use outcomes dated before --test-from only.
    ///
    /// Examples:
    ///   tirhub risk evaluate --data bacuda.csv --test-from 2014-07-01
    ///   tirhub risk evaluate --data bacuda.csv --test-from 2014-07-01 --json | jq .model.auc
    #[command(verbatim_doc_comment)]
    Evaluate {
        /// A CSV in the BACUDA schema (see `tirhub risk generate --help`).
        #[arg(long)]
        data: PathBuf,
        /// First day of the test period: YYYY-MM-DD or YY-MM-DD.
        #[arg(long, value_parser = parse_day)]
        test_from: bacuda::Day,
        /// Boosting rounds (trees); depth 6, learning rate 0.1.
        #[arg(long, default_value_t = 100)]
        trees: usize,
        /// One line of JSON: {"model": {...}, "baselines": {"random": {...},
        /// "importer_rate": {...}}, "train_seconds": x, "score_per_s": x}.
        #[arg(long)]
        json: bool,
        /// Also write the feature matrix (with illicit, revenue and a `test`
        /// column) to this CSV, e.g. for tools/xgboost_compare.py.
        #[arg(long, value_name = "FILE")]
        features_out: Option<PathBuf>,
    },
    /// The weekly loop of "Take a Chance" (Kim et al.): each week inspect
    /// --capacity of the declarations, learn only from what was inspected,
    /// retrain every --retrain-every weeks; compare pure exploitation (the top
    /// scores) with the mix (a share --explore of the inspections at random).
    ///
    /// Prints, per week, the normalized precision (hits / the most hits that
    /// many inspections could find) and normalized revenue (revenue / the most
    /// revenue that many could recover) of both, and their means before and
    /// after the drift (by default the middle of the file's dates), then, per
    /// period, the share of each one's inspections that went to importers with
    /// no outcome known to it yet, and how many of those were irregular.
    /// The first --warmup-weeks are inspected at random by both.
    ///
    /// Example:
    ///   tirhub risk simulate --data bacuda.csv --capacity 0.05 --explore 0.1
    #[command(verbatim_doc_comment)]
    Simulate {
        #[arg(long)]
        data: PathBuf,
        /// Share of each week's declarations inspected, 0 to 1.
        #[arg(long, default_value_t = 0.05)]
        capacity: f64,
        /// Share of the inspections picked for exploration, 0 to 1.
        #[arg(long, default_value_t = 0.1)]
        explore: f64,
        /// How the mix picks them: random (among the declarations the model
        /// did not pick), novel (first among those whose importer has no
        /// inspection outcome known to the mix yet; the rest at random) or
        /// uncertain (weighted by 1 / (1 + the outcomes the mix knows in the
        /// declaration's origin × HS chapter, counting its picks this week)).
        #[arg(long, value_enum, default_value_t = Explore::Random)]
        explore_mode: Explore,
        #[arg(long, default_value_t = 4)]
        retrain_every: usize,
        #[arg(long, default_value_t = 4)]
        warmup_weeks: usize,
        /// Where the drift is measured from: YYYY-MM-DD; default mid-file.
        #[arg(long, value_parser = parse_day)]
        drift_from: Option<bacuda::Day>,
        /// Trees per retraining (fewer: faster weeks).
        #[arg(long, default_value_t = 50)]
        trees: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// One line of JSON with the weeks and the means.
        #[arg(long)]
        json: bool,
    },
    /// Retrain one administration's model from the outcomes its customs
    /// recorded (POST /v1/risk/results), on the contexts of their assessments,
    /// and store it as the newest version (journaled). At least 20 inspected
    /// transports with both outcomes are needed.
    ///
    /// Example:
    ///   tirhub risk train --db sqlite://tirhub.db --administration LT
    #[command(verbatim_doc_comment)]
    Train(TrainArgs),
}

/// `tirhub risk train`: what to train and where to store it.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The database the server uses: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "TIRHUB_DB")]
    pub db: String,
    /// The customs administration (ISO country code) whose model to train, on
    /// its own assessments and inspection results only.
    #[arg(long, value_parser = parse_country)]
    pub administration: tir_model::Country,
    /// Boosting rounds (trees).
    #[arg(long, default_value_t = 100)]
    pub trees: usize,
    /// One line of JSON: the stored model's metadata, with train_seconds.
    #[arg(long)]
    pub json: bool,
}

fn parse_country(s: &str) -> Result<tir_model::Country, String> {
    tir_model::Country::parse(s).map_err(|_| format!("`{s}` is not an ISO 3166 alpha-2 country code"))
}

/// Retrains one administration's model from its recorded outcomes and stores
/// it as the newest version; running servers score with it within seconds.
async fn train(args: TrainArgs) -> Result<ExitCode, AnyError> {
    let store = tir_store::open(&args.db).await.map_err(|e| format!("cannot open {}: {e}", args.db))?;
    let administration = args.administration;
    let bar = spinner("reading assessments and inspection results");
    let records = store.all_assessments(administration).await?;
    let results = store.results(administration).await?;
    bar.set_message(format!("training on {} assessments, {} inspection results", records.len(), results.len()));
    let params = model::Params { rounds: args.trees, ..model::Params::default() };
    let started = std::time::Instant::now();
    let trained = tokio::task::spawn_blocking(move || serving::train_from_records(&records, &results, &params))
        .await
        .map_err(|e| format!("training stopped: {e}"))?;
    bar.finish_and_clear();
    let trained = trained.map_err(|e| format!("{administration}: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let stored = StoredModel {
        administration,
        version: trained.model.version.clone(),
        // The store stamps its own time.
        trained_at: tir_model::Timestamp::from_unix_ms(0),
        trained_by: "cli".to_owned(),
        rows_trained: trained.model.rows_trained,
        irregular_trained: trained.model.irregular_trained,
        model_json: trained.model.to_json(),
    };
    let reply = store.put_model(stored).await?;
    if !matches!(reply.status, 200 | 201) {
        return Err(format!("the store refused the model: {} {}", reply.status, reply.body).into());
    }
    let mut view: serde_json::Value = serde_json::from_str(&reply.body)?;
    view["train_seconds"] = serde_json::json!(seconds);
    if args.json {
        println!("{view}");
    } else {
        let again = if reply.status == 200 { " (already stored: the same trees)" } else { "" };
        println!(
            "{administration}: model {}{again}\n  trained on {} inspected transports ({} irregular) in {seconds:.2} s\n  \
             servers on this database score with it from their next reload (within 5 s)",
            trained.model.version, trained.model.rows_trained, trained.model.irregular_trained
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--drift`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Drift {
    Redraw,
    NewSchemes,
    Replace,
    Turn,
    Route,
    Trusted,
}

/// `--explore-mode`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Explore {
    Random,
    Novel,
    Uncertain,
}

fn parse_day(s: &str) -> Result<bacuda::Day, String> {
    bacuda::parse_date(s).ok_or_else(|| format!("`{s}` is not a date YYYY-MM-DD"))
}

fn load(path: &PathBuf) -> Result<Dataset, AnyError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(bacuda::read(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}

fn spinner(msg: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_message(msg.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

pub fn run(command: RiskCommand) -> Result<ExitCode, AnyError> {
    match command {
        // The one subcommand on a database: this thread is the runtime's, so it may wait on it.
        RiskCommand::Train(args) => {
            return tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(train(args)));
        }
        RiskCommand::Generate { rows, seed, out, drift, new_schemes } => {
            let drift = match (drift, new_schemes) {
                (_, true) | (Drift::NewSchemes, _) => bacuda::DriftKind::NewSchemes,
                (Drift::Redraw, false) => bacuda::DriftKind::Redraw,
                (Drift::Replace, false) => bacuda::DriftKind::Replace,
                (Drift::Turn, false) => bacuda::DriftKind::Turn,
                (Drift::Route, false) => bacuda::DriftKind::Route,
                (Drift::Trusted, false) => bacuda::DriftKind::Trusted,
            };
            let ds = bacuda::generate(&GenConfig { drift, ..GenConfig::new(rows, seed) });
            std::fs::write(&out, bacuda::write(&ds)).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            let irregular = ds.rows.iter().filter(|r| r.illicit).count();
            eprintln!("wrote {} declarations ({irregular} irregular) to {}", rows, out.display());
        }
        RiskCommand::Evaluate { data, test_from, trees, json, features_out } => {
            let bar = spinner("reading");
            let ds = load(&data)?;
            if let Some(out) = features_out {
                std::fs::write(&out, feature_csv(&ds, test_from))
                    .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            }
            let (report, d) =
                eval::evaluate(&ds, test_from, &model::Params { rounds: trees, ..model::Params::default() }, |p| {
                    bar.set_message(p.to_owned())
                })?;
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_evaluation(&report, &d, test_from);
            }
        }
        RiskCommand::Simulate {
            data,
            capacity,
            explore,
            explore_mode,
            retrain_every,
            warmup_weeks,
            drift_from,
            trees,
            seed,
            json,
        } => {
            if !(0.0..=1.0).contains(&capacity) || !(0.0..=1.0).contains(&explore) {
                return Err("--capacity and --explore are shares from 0 to 1".into());
            }
            let ds = load(&data)?;
            let cfg = SimConfig {
                capacity,
                explore,
                explore_mode: match explore_mode {
                    Explore::Random => ExploreMode::Random,
                    Explore::Novel => ExploreMode::Novel,
                    Explore::Uncertain => ExploreMode::Uncertain,
                },
                retrain_every,
                warmup_weeks,
                params: model::Params { rounds: trees, ..model::Params::default() },
                seed,
                drift_from,
            };
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("simulate [{bar:40}] week {pos}/{len} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let report = eval::simulate(&ds, &cfg, |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            });
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_simulation(&report);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn feature_csv(ds: &Dataset, test_from: bacuda::Day) -> String {
    use std::fmt::Write as _;
    let (f, _) = tir_risk::features::split(&ds.rows, test_from);
    let mut out = tir_risk::features::NAMES.join(",") + ",illicit,revenue,test\n";
    for (x, r) in f.iter().zip(&ds.rows) {
        for v in x {
            // NaN stays empty: pandas reads it as missing.
            if v.is_nan() {
                out.push(',');
            } else {
                let _ = write!(out, "{v},");
            }
        }
        let _ = writeln!(out, "{},{},{}", u8::from(r.illicit), r.revenue, u8::from(r.day >= test_from));
    }
    out
}

fn print_evaluation(r: &eval::Report, d: &eval::Details, test_from: bacuda::Day) {
    println!(
        "trained on {} declarations before {}, tested on {} ({} irregular)",
        d.train_rows,
        bacuda::format_date(test_from),
        d.test_rows,
        d.test_irregular
    );
    println!(
        "model {}: {} trees, trained in {:.3} s (features {:.3} s), scores {:.0} declarations/s on one core",
        d.model_version, d.trees, r.train_seconds, d.feature_seconds, r.score_per_s
    );
    println!();
    println!("{:<10} {:<14} {:>7} {:>7} {:>7} {:>7}", "inspected", "", "1 %", "2 %", "5 %", "10 %");
    let rows: [(&str, &Metrics); 3] =
        [("model", &r.model), ("random", &r.baselines.random), ("importer_rate", &r.baselines.importer_rate)];
    for (label, pick) in [
        ("precision", (|m: &Metrics| m.precision_at) as fn(&Metrics) -> eval::AtRates),
        ("recall", |m: &Metrics| m.recall_at),
        ("revenue", |m: &Metrics| m.revenue_at),
    ] {
        for (i, (name, m)) in rows.iter().enumerate() {
            let v = pick(m).values();
            println!(
                "{:<10} {:<14} {:>7.3} {:>7.3} {:>7.3} {:>7.3}",
                if i == 0 { label } else { "" },
                name,
                v[0],
                v[1],
                v[2],
                v[3]
            );
        }
    }
    println!("{:<10} {:<14} {:>7.3}", "AUC", "model", r.model.auc);
    println!("{:<10} {:<14} {:>7.3}", "", "random", r.baselines.random.auc);
    println!("{:<10} {:<14} {:>7.3}", "", "importer_rate", r.baselines.importer_rate.auc);
    let reasons: Vec<String> = d.top_reasons.iter().map(|(n, c)| format!("{n} {c:+.2}")).collect();
    println!("\nmean contributions (log-odds) in the inspected 5 %: {}", reasons.join(", "));
}

fn print_simulation(r: &eval::SimReport) {
    let fmt = |x: Option<f64>| x.map_or_else(|| "    -".to_owned(), |v| format!("{v:5.3}"));
    println!(
        "capacity {} explore {} ({:?}) retrain every {} weeks; drift from {}",
        r.capacity, r.explore, r.explore_mode, r.retrain_every, r.drift_from
    );
    println!("{:>4} {:<8} {:>6} {:>5}   exploit prec  rev   mix prec  rev", "week", "start", "rows", "irr");
    for w in &r.weeks {
        println!(
            "{:>4} {:<8} {:>6} {:>5}   {:>12} {:>5}   {:>8} {:>5}",
            w.week,
            w.start,
            w.rows,
            w.irregular,
            fmt(w.exploit.precision),
            fmt(w.exploit.revenue_norm),
            fmt(w.mix.precision),
            fmt(w.mix.revenue_norm)
        );
    }
    for (name, p) in [("before drift", &r.before_drift), ("after drift", &r.after_drift)] {
        println!(
            "{name:<13} ({:>3} weeks)  exploit: precision {:.3} revenue {:.3}   mix: precision {:.3} revenue {:.3}",
            p.weeks, p.exploit.precision, p.exploit.revenue, p.mix.precision, p.mix.revenue
        );
    }
    for (name, p) in [("before drift", &r.before_drift), ("after drift", &r.after_drift)] {
        println!(
            "{name:<13} inspections of importers with no known outcome: exploit {:.3} (irregular {:.3})   mix {:.3} (irregular {:.3})",
            p.exploit.novel, p.exploit.novel_hit_rate, p.mix.novel, p.mix.novel_hit_rate
        );
    }
}
