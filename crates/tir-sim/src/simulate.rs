//! `tirhub simulate`: realistic TIR traffic against a running server. It
//! bootstraps the parties of the standard world over the admin API, then
//! plays full transport life cycles from the seeded traffic model, many at
//! once, each one's messages in order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::AnyError;
use crate::client::{ExchangeClient, segment};
use crate::inspect::{self, Checkpoint, RiskReport, TransportRisk};
use crate::model::rng;
use crate::model::script::{Parties, messages};
use crate::model::traffic::{Irregularity, Play, RunTag, TRANSPORTS_MAX, Traffic, Transport};
use crate::model::truth::DEFAULT_DRIFT_AT;
use crate::model::world::World;

pub struct SimulateOptions {
    pub url: String,
    pub admin_token: String,
    /// Messages per second over all transports; `None`: as fast as `concurrency` allows.
    pub rate_msgs_per_s: Option<f64>,
    pub duration: Option<Duration>,
    pub transports: Option<usize>,
    pub seed: u64,
    /// Expected share of irregular transports, 0 to 1.
    pub irregular_share: f64,
    /// Transports in flight at once.
    pub concurrency: usize,
    /// Customs read the risk assessments where they see a truck and inspect
    /// on red and yellow (`--no-inspections` switches it off; default on).
    pub inspections: bool,
    /// Each simulated administration's selection policy, set at start as its
    /// risk officers would (`PUT /v1/risk/policies/*`): `None` keeps the server's.
    pub risk_policy: Option<RiskPolicy>,
}

/// Inspection capacity and exploration, as shares of the assessed transports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskPolicy {
    pub red_share: f64,
    pub exploration_share: f64,
}

/// Non-200 answers (and requests without an answer) kept for the report.
const FAILURES_SHOWN: usize = 5;

#[derive(Debug, Clone, Default)]
pub struct SimulateReport {
    pub seed: u64,
    /// The run tag: the two letters and the series that begin every reference
    /// of the run (`XH123`), one no earlier run on the server used.
    pub tag: String,
    pub elapsed: Duration,
    pub transports_completed: u64,
    /// Stopped (duration or Ctrl-C) before their last message.
    pub transports_interrupted: u64,
    /// Given up after a non-200 answer or a failed request.
    pub transports_failed: u64,
    /// Messages that got an answer.
    pub messages_sent: u64,
    pub answers_by_status: BTreeMap<u16, u64>,
    pub non_200: u64,
    /// Requests that got no HTTP answer at all.
    pub request_errors: u64,
    /// Completed transports whose last answer did not show a released guarantee.
    pub not_released: u64,
    /// Completed irregular transports by kind.
    pub irregular: BTreeMap<&'static str, u64>,
    /// Accepted messages by type (E1, I9, I17, X1...).
    pub by_type: BTreeMap<String, u64>,
    /// TIR operations of completed transports (one per TIR territory crossed):
    /// run to discharge, refused (I17), and never started after a refusal.
    pub operations_discharged: u64,
    pub operations_refused: u64,
    pub operations_not_started: u64,
    /// On completed transports: seal differences found at a start, X1 incidents.
    pub seal_findings: u64,
    pub incidents: u64,
    /// The transport from which the hidden risk patterns change.
    pub drift_at: u64,
    /// Assessments read, inspections and what they found.
    pub risk: RiskReport,
    /// The first few failures: message, status and body.
    pub failures: Vec<String>,
}

impl SimulateReport {
    pub fn messages_per_s(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 { self.messages_sent as f64 / seconds } else { 0.0 }
    }

    fn remember(&mut self, failure: String) {
        if self.failures.len() < FAILURES_SHOWN {
            self.failures.push(failure);
        }
    }

    /// No answer other than 200, every request answered, every guarantee
    /// released, and no failed risk request (a 404 on the risk routes is not one).
    pub fn is_clean(&self) -> bool {
        self.non_200 == 0 && self.request_errors == 0 && self.not_released == 0 && self.risk.errors == 0
    }

    /// The report as one JSON object (`tirhub simulate --json`).
    pub fn to_json(&self) -> Value {
        json!({
            "seed": self.seed,
            "tag": self.tag,
            "seconds": self.elapsed.as_secs_f64(),
            "transports_completed": self.transports_completed,
            "transports_interrupted": self.transports_interrupted,
            "transports_failed": self.transports_failed,
            "messages_sent": self.messages_sent,
            "messages_per_s": self.messages_per_s(),
            "answers_by_status": self.answers_by_status.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "non_200": self.non_200,
            "request_errors": self.request_errors,
            "not_released": self.not_released,
            "irregular": self.irregular,
            "by_type": self.by_type,
            "operations_discharged": self.operations_discharged,
            "operations_refused": self.operations_refused,
            "operations_not_started": self.operations_not_started,
            "seal_findings": self.seal_findings,
            "incidents": self.incidents,
            "drift_at": self.drift_at,
            "risk": self.risk.to_json(),
            "failures": self.failures,
            "clean": self.is_clean(),
        })
    }
}

impl fmt::Display for SimulateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by_status: Vec<String> = self.answers_by_status.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        let irregular: u64 = self.irregular.values().sum();
        let kinds: Vec<String> =
            Irregularity::KINDS.iter().map(|k| format!("{k} {}", self.irregular.get(k).unwrap_or(&0))).collect();
        writeln!(f, "simulate: seed {}, run tag {}, {:.1} s", self.seed, self.tag, self.elapsed.as_secs_f64())?;
        writeln!(f, "transports completed: {}", self.transports_completed)?;
        writeln!(f, "transports interrupted: {}", self.transports_interrupted)?;
        writeln!(f, "transports failed: {}", self.transports_failed)?;
        writeln!(f, "messages sent: {}", self.messages_sent)?;
        writeln!(f, "messages/s: {:.1}", self.messages_per_s())?;
        writeln!(f, "answers by status: {}", if by_status.is_empty() { "-".to_owned() } else { by_status.join(", ") })?;
        writeln!(f, "non-200 answers: {}", self.non_200)?;
        writeln!(f, "requests without answer: {}", self.request_errors)?;
        writeln!(f, "guarantees not released: {}", self.not_released)?;
        writeln!(f, "irregular transports played: {irregular} ({})", kinds.join(", "))?;
        writeln!(
            f,
            "TIR operations: {} discharged, {} refused, {} not started after a refusal",
            self.operations_discharged, self.operations_refused, self.operations_not_started
        )?;
        writeln!(f, "seal findings: {}, incidents: {}", self.seal_findings, self.incidents)?;
        let types: Vec<String> = self.by_type.iter().map(|(t, n)| format!("{t} {n}")).collect();
        writeln!(f, "messages by type: {}", if types.is_empty() { "-".to_owned() } else { types.join(", ") })?;
        write_risk(f, &self.risk, self.drift_at)?;
        for failure in &self.failures {
            writeln!(f, "failure: {failure}")?;
        }
        Ok(())
    }
}

fn write_risk(f: &mut fmt::Formatter<'_>, risk: &RiskReport, drift_at: u64) -> fmt::Result {
    if !risk.enabled {
        return writeln!(f, "inspections: off");
    }
    let count = |map: &BTreeMap<&str, u64>, key: &str| map.get(key).copied().unwrap_or(0);
    writeln!(
        f,
        "assessments read: {} (green {}, yellow {}, red {}), none after polling: {}",
        risk.assessments_read,
        count(&risk.lanes, "green"),
        count(&risk.lanes, "yellow"),
        count(&risk.lanes, "red"),
        risk.assessments_missing
    )?;
    writeln!(
        f,
        "inspections: red {}, yellow {}; irregularities found: {}; revenue recovered: {:.2} EUR",
        count(&risk.inspections, "red"),
        count(&risk.inspections, "yellow"),
        risk.irregularities_found,
        risk.revenue_recovered
    )?;
    let selectors: Vec<String> = risk
        .by_selector
        .iter()
        .map(|(s, h)| format!("{s} {}/{} ({:.1} %)", h.found, h.inspected, 100.0 * h.hit_rate()))
        .collect();
    writeln!(f, "hit rate by selector: {}", if selectors.is_empty() { "-".to_owned() } else { selectors.join(", ") })?;
    writeln!(
        f,
        "smuggling transports: {} completed, {} found, {} never inspected (patterns drift at transport {drift_at})",
        risk.smuggling_transports, risk.smuggling_found, risk.smuggling_uninspected
    )?;
    if let Some(answer) = &risk.risk_routes_missing {
        writeln!(
            f,
            "risk routes missing (404), {} checkpoints without inspection: {answer}",
            risk.skipped_no_risk_routes
        )?;
    }
    if risk.errors > 0 {
        writeln!(f, "risk requests failed: {}", risk.errors)?;
    }
    Ok(())
}

/// Parses `30s`, `5m`, `2h`, `1h30m`, `1.5m` or plain seconds (`90`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let text = raw.trim();
    let bad = || format!("{raw:?} is not a duration: use e.g. 30s, 5m, 2h or 1h30m");
    if text.is_empty() {
        return Err(bad());
    }
    let mut seconds = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "" if number_len == text.len() => 1.0,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        seconds += number * scale;
    }
    if !(seconds.is_finite() && seconds > 0.0 && seconds < 1e9) {
        return Err(format!("{raw:?}: a duration must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A seed from the clock, for runs without `--seed` (printed, so they can be replayed).
pub fn seed_from_clock() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    rng::mix(nanos, u64::from(std::process::id())) % 1_000_000_000
}

/// The `tirhub simulate` command: runs, prints the summary (as JSON with
/// `json`), and exits 1 when any answer was not 200 (a bug on one side or the other).
pub async fn command(options: SimulateOptions, json: bool) -> Result<ExitCode, AnyError> {
    eprintln!(
        "simulate: seed {} (pass --seed {} to play the same traffic again), bootstrapping parties...",
        options.seed, options.seed
    );
    let report = run(options).await?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    Ok(if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub async fn run(options: SimulateOptions) -> Result<SimulateReport, AnyError> {
    let progress = std::io::stderr().is_terminal();
    run_in(options, Arc::new(World::standard()), None, progress, Duration::ZERO).await
}

/// `run` in `world`, with its parties already made by `bootstrap` when
/// `parties` is given (`tirhub demo` prints some of their tokens first), a
/// progress line on stderr when `progress`, and each transport pausing
/// about `dwell` (half to one and a half times it) before each of its
/// messages after the first: trucks on the road, so that many transports are
/// under way at once and a console sees them there.
pub async fn run_in(
    options: SimulateOptions,
    world: Arc<World>,
    parties: Option<Parties>,
    progress: bool,
    dwell: Duration,
) -> Result<SimulateReport, AnyError> {
    if !(0.0..=1.0).contains(&options.irregular_share) {
        return Err("--irregular-share must be between 0 and 1".into());
    }
    if let Some(rate) = options.rate_msgs_per_s
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err("--rate must be a positive number of messages per second".into());
    }
    if options.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    if options.transports.is_some_and(|n| n as u64 > TRANSPORTS_MAX) {
        return Err(
            format!("--transports must be at most {TRANSPORTS_MAX}: the references of a run number that many").into()
        );
    }
    let client = ExchangeClient::new(&options.url);
    let parties = match parties {
        Some(parties) => parties,
        None => bootstrap(&client, &options.admin_token, &world).await?,
    };
    if let (true, Some(policy)) = (options.inspections, options.risk_policy) {
        set_policies(&client, &parties, policy).await?;
    }
    let tag = free_run_tag(&client, &parties.chains[0]).await?;
    let drift_at = drift_point(&options);
    let traffic = Traffic::new(world, options.seed, options.irregular_share).with_tag(tag).with_drift_at(drift_at);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let mut background = JoinSet::new();
    {
        let stop = stop_tx.clone();
        background.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop.send(true);
            }
        });
    }
    if let Some(duration) = options.duration {
        let stop = stop_tx.clone();
        background.spawn(async move {
            tokio::time::sleep(duration).await;
            let _ = stop.send(true);
        });
    }
    let pacer = options.rate_msgs_per_s.map(|rate| Arc::new(Pacer::new(rate)));
    if let Some(pacer) = pacer.clone() {
        background.spawn(async move { pacer.tick().await });
    }
    let shared = Arc::new(Shared {
        client,
        traffic,
        parties,
        // A run without --transports stops at the last reference its tag numbers.
        limit: options.transports.map_or(TRANSPORTS_MAX, |n| n as u64),
        next: AtomicU64::new(0),
        pacer: pacer.clone(),
        dwell,
        inspections: options.inspections,
        risk_routes_missing: AtomicBool::new(false),
        tally: Mutex::new(SimulateReport {
            seed: options.seed,
            tag: tag.to_string(),
            drift_at,
            risk: RiskReport { enabled: options.inspections, ..RiskReport::default() },
            ..SimulateReport::default()
        }),
        messages: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        non_200: AtomicU64::new(0),
    });
    let started = Instant::now();
    if progress {
        let shared = shared.clone();
        background.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let seconds = started.elapsed().as_secs_f64();
                let messages = shared.messages.load(Ordering::Relaxed);
                eprint!(
                    "\r\x1b[K{seconds:>6.0} s  {messages} messages ({:.0}/s)  {} transports completed  {} non-200",
                    messages as f64 / seconds,
                    shared.completed.load(Ordering::Relaxed),
                    shared.non_200.load(Ordering::Relaxed),
                );
                let _ = std::io::stderr().flush();
            }
        });
    }
    let workers = options.transports.map_or(options.concurrency, |n| n.min(options.concurrency));
    let mut set = JoinSet::new();
    for _ in 0..workers {
        set.spawn(worker(shared.clone(), stop_rx.clone()));
    }
    while let Some(joined) = set.join_next().await {
        joined?;
    }
    background.abort_all();
    if progress {
        eprintln!();
    }
    if options.transports.is_none() && shared.next.load(Ordering::Relaxed) >= TRANSPORTS_MAX {
        eprintln!("simulate: stopped after {TRANSPORTS_MAX} transports, the most one run can number");
    }
    let mut report = shared.tally.lock().expect("tally lock").clone();
    report.elapsed = started.elapsed();
    Ok(report)
}

struct Shared {
    client: ExchangeClient,
    traffic: Traffic,
    parties: Parties,
    limit: u64,
    /// Index of the next transport to play.
    next: AtomicU64,
    pacer: Option<Arc<Pacer>>,
    dwell: Duration,
    inspections: bool,
    /// Set on the first 404 from a risk route: an older server, no inspections from then on.
    risk_routes_missing: AtomicBool,
    tally: Mutex<SimulateReport>,
    // Lock-free copies for the progress line.
    messages: AtomicU64,
    completed: AtomicU64,
    non_200: AtomicU64,
}

enum Ending {
    Completed { released: bool },
    Interrupted,
    NotStarted,
    Failed,
}

async fn worker(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= shared.limit {
            return;
        }
        let transport = shared.traffic.transport(index);
        let script = messages(&transport, &shared.parties);
        let checkpoints = if shared.inspections { inspect::checkpoints(&transport, &script) } else { Vec::new() };
        let mut risk = TransportRisk::default();
        let mut ending = Ending::Completed { released: false };
        for (i, (token, message)) in script.iter().enumerate() {
            if i > 0 && !shared.dwell.is_zero() {
                let share = 0.5 + (rng::mix(index, i as u64) % 1000) as f64 / 1000.0;
                tokio::select! {
                    () = tokio::time::sleep(shared.dwell.mul_f64(share)) => {}
                    _ = stop.wait_for(|stopped| *stopped) => {
                        ending = Ending::Interrupted;
                        break;
                    }
                }
            }
            // Customs read the assessment before acting; the message itself is unchanged.
            if let Some((k, checkpoint)) = checkpoints.iter().enumerate().find(|(_, c)| c.message == i) {
                tokio::select! {
                    () = act(&shared, &transport, k, checkpoint, &mut risk) => {}
                    _ = stop.wait_for(|stopped| *stopped) => {
                        ending = Ending::Interrupted;
                        break;
                    }
                }
            }
            let send = async {
                if let Some(pacer) = &shared.pacer {
                    pacer.wait(index, i as u64).await;
                }
                shared.client.send(token, message).await
            };
            let answer = tokio::select! {
                answer = send => answer,
                _ = stop.wait_for(|stopped| *stopped) => {
                    // One that sent nothing yet was never started.
                    ending = if i == 0 { Ending::NotStarted } else { Ending::Interrupted };
                    break;
                }
            };
            let mut tally = shared.tally.lock().expect("tally lock");
            let what = || {
                format!("{} {}", message["type"].as_str().unwrap_or("?"), message["message_id"].as_str().unwrap_or("?"))
            };
            match answer {
                Ok((status, body)) => {
                    tally.messages_sent += 1;
                    shared.messages.fetch_add(1, Ordering::Relaxed);
                    *tally.answers_by_status.entry(status).or_insert(0) += 1;
                    if status == 200 {
                        *tally.by_type.entry(message["type"].as_str().unwrap_or("?").to_owned()).or_insert(0) += 1;
                    }
                    if status != 200 {
                        tally.non_200 += 1;
                        shared.non_200.fetch_add(1, Ordering::Relaxed);
                        tally.remember(format!("{}: {status} {body}", what()));
                        ending = Ending::Failed;
                        break;
                    }
                    if i + 1 == script.len() {
                        ending = Ending::Completed { released: guarantee_state(&body) == Some("released") };
                    }
                }
                Err(e) => {
                    tally.request_errors += 1;
                    tally.remember(format!("{}: no answer: {e}", what()));
                    ending = Ending::Failed;
                    break;
                }
            }
        }
        let mut tally = shared.tally.lock().expect("tally lock");
        tally.risk.add(&risk, &transport.truth, matches!(ending, Ending::Completed { .. }));
        match ending {
            Ending::Completed { released } => {
                tally.transports_completed += 1;
                shared.completed.fetch_add(1, Ordering::Relaxed);
                if !released {
                    tally.not_released += 1;
                    let text = format!("{}: the last answer does not show a released guarantee", transport.reference);
                    tally.remember(text);
                }
                if let Some(irregularity) = &transport.irregularity {
                    *tally.irregular.entry(irregularity.kind()).or_insert(0) += 1;
                }
                for op in &transport.operations {
                    match &op.play {
                        Play::Run(run) => {
                            tally.operations_discharged += 1;
                            tally.seal_findings += u64::from(run.seal_finding);
                            tally.incidents += u64::from(run.incident.is_some());
                        }
                        Play::Refused { .. } => tally.operations_refused += 1,
                        Play::NotStarted => tally.operations_not_started += 1,
                    }
                }
            }
            Ending::Interrupted => tally.transports_interrupted += 1,
            Ending::NotStarted => {}
            Ending::Failed => tally.transports_failed += 1,
        }
    }
}

/// Polls for an assessment this long before customs act without one.
const ASSESSMENT_POLLS: usize = 10;
const ASSESSMENT_POLL_WAIT: Duration = Duration::from_millis(150);
/// Messages of a transport, about, to place the drift of a paced run.
const MESSAGES_PER_TRANSPORT: f64 = 12.0;

/// The drift halfway through the run: of `--transports`, else of what
/// `--rate` and `--duration` allow, else `DEFAULT_DRIFT_AT`.
fn drift_point(options: &SimulateOptions) -> u64 {
    let half = match (options.transports, options.rate_msgs_per_s, options.duration) {
        (Some(n), ..) => Some(n as f64 / 2.0),
        (None, Some(rate), Some(duration)) => Some(rate * duration.as_secs_f64() / MESSAGES_PER_TRANSPORT / 2.0),
        _ => None,
    };
    half.map_or(DEFAULT_DRIFT_AT, |h| h.round().max(1.0) as u64)
}

/// Customs at `checkpoint` (the `k`th of `transport`) read their
/// administration's assessment, polling while there is none for the
/// operation, and on red or yellow inspect and record the result.
async fn act(shared: &Shared, transport: &Transport, k: usize, checkpoint: &Checkpoint, risk: &mut TransportRisk) {
    if shared.risk_routes_missing.load(Ordering::Relaxed) {
        risk.skipped += 1;
        return;
    }
    let failed = |risk: &mut TransportRisk, what: String| {
        risk.errors += 1;
        shared.tally.lock().expect("tally lock").remember(what);
    };
    let path = format!("/v1/risk/assessments/{}", segment(&transport.reference));
    let mut assessment = None;
    for attempt in 0..ASSESSMENT_POLLS {
        if attempt > 0 {
            tokio::time::sleep(ASSESSMENT_POLL_WAIT).await;
        }
        match shared.client.get(&checkpoint.token, &path).await {
            Ok((200, body)) => match inspect::parse_assessments(&body) {
                Ok(items) => {
                    assessment = inspect::pick(&items, checkpoint.operation, &checkpoint.office).cloned();
                    if assessment.is_some() {
                        break;
                    }
                }
                Err(e) => return failed(risk, format!("GET {path}: {e}")),
            },
            Ok((404, body)) => return routes_missing(shared, risk, format!("GET {path}: {body}")),
            Ok((status, body)) => return failed(risk, format!("GET {path}: {status} {body}")),
            Err(e) => return failed(risk, format!("GET {path}: no answer: {e}")),
        }
    }
    let Some(assessment) = assessment else {
        risk.missing += 1;
        return;
    };
    risk.read += 1;
    let mut rng = inspect::inspection_rng(shared.traffic.seed(), transport.index, k);
    let Some(outcome) = inspect::inspect(assessment.lane, &transport.truth, &mut rng) else {
        risk.acted.push((assessment.lane, None));
        return;
    };
    let body = inspect::result_body(&transport.reference, &checkpoint.office, assessment.lane, outcome);
    let recorded = match shared.client.post(&checkpoint.token, "/v1/risk/results", &body).await {
        Ok((200 | 201, _)) => true,
        Ok((404, text)) => {
            routes_missing(shared, risk, format!("POST /v1/risk/results: {text}"));
            false
        }
        Ok((status, text)) => {
            failed(risk, format!("POST /v1/risk/results {body}: {status} {text}"));
            false
        }
        Err(e) => {
            failed(risk, format!("POST /v1/risk/results {body}: no answer: {e}"));
            false
        }
    };
    risk.acted.push((assessment.lane, recorded.then_some((assessment.selected_by, outcome))));
}

/// An older server without the risk routes: no more risk requests this run.
fn routes_missing(shared: &Shared, risk: &mut TransportRisk, answer: String) {
    risk.skipped += 1;
    shared.risk_routes_missing.store(true, Ordering::Relaxed);
    shared.tally.lock().expect("tally lock").risk.risk_routes_missing.get_or_insert(answer);
}

fn guarantee_state(body: &str) -> Option<&'static str> {
    let value: Value = serde_json::from_str(body).ok()?;
    ["registered", "accepted", "released", "cancelled"].into_iter().find(|s| value["guarantee"]["state"] == *s)
}

/// Open-loop pacing: one send slot every `1/rate` seconds over all workers,
/// given to the oldest transport waiting, so that only as many transports
/// are in flight as the rate needs (rather than all of them crawling). A
/// stall may be caught up by at most `CATCH_UP` worth of slots.
struct Pacer {
    interval: Duration,
    waiting: Mutex<BinaryHeap<Reverse<Waiter>>>,
    arrived: Notify,
}

const CATCH_UP: Duration = Duration::from_secs(1);

struct Waiter {
    transport: u64,
    ticket: u64,
    go: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.transport, self.ticket) == (other.transport, other.ticket)
    }
}

impl Eq for Waiter {}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.transport, self.ticket).cmp(&(other.transport, other.ticket))
    }
}

impl Pacer {
    fn new(rate: f64) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate),
            waiting: Mutex::new(BinaryHeap::new()),
            arrived: Notify::new(),
        }
    }

    /// Waits for a slot for a message of transport `transport` (its index).
    async fn wait(&self, transport: u64, ticket: u64) {
        let (go, slot) = oneshot::channel();
        self.waiting.lock().expect("pacer lock").push(Reverse(Waiter { transport, ticket, go }));
        self.arrived.notify_one();
        let _ = slot.await;
    }

    /// Hands out the slots; runs until aborted.
    async fn tick(&self) {
        let mut slot = Instant::now();
        loop {
            tokio::time::sleep_until(slot).await;
            loop {
                let oldest = self.waiting.lock().expect("pacer lock").pop();
                match oldest {
                    // A waiter gone (its transport was stopped) does not use up the slot.
                    Some(Reverse(waiter)) => {
                        if waiter.go.send(()).is_ok() {
                            break;
                        }
                    }
                    None => self.arrived.notified().await,
                }
            }
            let now = Instant::now();
            slot = (slot + self.interval).max(now.checked_sub(CATCH_UP).unwrap_or(now));
        }
    }
}

/// Tags tried before giving up: each costs one GET.
const RUN_TAG_PROBES: usize = 1000;

/// A tag from the clock and the process, so one seed can be played twice on one server.
fn clock_run_tag() -> RunTag {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    RunTag::from_hash(rng::mix(nanos, u64::from(std::process::id())))
}

/// A run tag whose references the server does not know yet: the clock's, or
/// the next one while the server has a guarantee under the tag's first
/// reference (every run registers its transport 0 first). `token` is a party's
/// of this run: the server answers 404 for an unknown guarantee, 403 (or 200)
/// for a known one.
async fn free_run_tag(client: &ExchangeClient, token: &str) -> Result<RunTag, AnyError> {
    let mut tag = clock_run_tag();
    for _ in 0..RUN_TAG_PROBES {
        let path = format!("/v1/guarantees/{}", tag.reference(0));
        match client.get(token, &path).await? {
            (404, _) => return Ok(tag),
            (200 | 403, _) => tag = tag.next(),
            (status, body) => return Err(format!("GET {path}: expected 404, 403 or 200, got {status}: {body}").into()),
        }
    }
    Err(format!("no free run tag: the server knows the first reference of {RUN_TAG_PROBES} tags in a row").into())
}

/// Creates what the world needs on the server: customs of each country and
/// its offices (POST replaces an office), the guarantee chains, and each
/// holder in the ITDB (PUT replaces) with its holder party. Parties are new
/// on every run.
pub async fn bootstrap(client: &ExchangeClient, admin: &str, world: &World) -> Result<Parties, AnyError> {
    enum Made {
        Customs(tir_model::Country, String),
        Chain(usize, String),
        Holder(tir_model::TirId, String),
        Office,
    }
    type Job = std::pin::Pin<Box<dyn Future<Output = Result<Made, AnyError>> + Send>>;
    let mut jobs: Vec<Job> = Vec::new();
    for c in world.countries() {
        let body =
            json!({"kind": "customs", "name": format!("Customs of {} (simulated)", c.name()), "country": c.as_str()});
        let (own_client, own_admin) = (client.clone(), admin.to_owned());
        jobs.push(Box::pin(async move { Ok(Made::Customs(c, token_of(&own_client, &own_admin, &body).await?)) }));
        for office in world.offices_of(c) {
            let (client, admin) = (client.clone(), admin.to_owned());
            let body = json!({"code": office.code.as_str(), "country": c.as_str(), "name": office.name,
                              "roles": office.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                              "unlocode": office.unlocode});
            jobs.push(Box::pin(async move {
                client.expect(&admin, "/v1/admin/offices", &body, 201).await?;
                Ok(Made::Office)
            }));
        }
    }
    for (i, name) in world.chains.iter().enumerate() {
        let (client, admin) = (client.clone(), admin.to_owned());
        let body = json!({"kind": "guarantee_chain", "name": name});
        jobs.push(Box::pin(async move { Ok(Made::Chain(i, token_of(&client, &admin, &body).await?)) }));
    }
    for holder in &world.holders {
        let (client, admin) = (client.clone(), admin.to_owned());
        let record = holder.record.clone();
        jobs.push(Box::pin(async move {
            let path = format!("/v1/admin/holders/{}", segment(record.tir_id.as_str()));
            let body =
                json!({"name": record.name, "country": record.country.as_str(), "status": record.status.as_str()});
            let (status, text) = client.put(&admin, &path, &body).await?;
            if status != 200 {
                return Err(format!("PUT {path}: expected 200, got {status}: {text}").into());
            }
            let body = json!({"kind": "holder", "name": record.name, "tir_id": record.tir_id.as_str()});
            Ok(Made::Holder(record.tir_id, token_of(&client, &admin, &body).await?))
        }));
    }
    // A few at a time: admin writes are journaled one by one anyway.
    let permits = Arc::new(Semaphore::new(8));
    let mut tasks = JoinSet::new();
    for job in jobs {
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            job.await
        });
    }
    let mut parties = Parties { chains: vec![String::new(); world.chains.len()], ..Parties::default() };
    while let Some(joined) = tasks.join_next().await {
        match joined?? {
            Made::Customs(c, token) => {
                parties.customs.insert(c, token);
            }
            Made::Chain(i, token) => parties.chains[i] = token,
            Made::Holder(tir_id, token) => {
                parties.holders.insert(tir_id, token);
            }
            Made::Office => {}
        }
    }
    Ok(parties)
}

/// Every administration's default policy; a server without risk routes (404) is left as it is.
async fn set_policies(client: &ExchangeClient, parties: &Parties, policy: RiskPolicy) -> Result<(), AnyError> {
    let body = json!({"red_share": policy.red_share, "exploration_share": policy.exploration_share});
    for token in parties.customs.values() {
        let (status, text) = client.put(token, "/v1/risk/policies/*", &body).await?;
        match status {
            200 => {}
            404 => return Ok(()),
            _ => return Err(format!("PUT /v1/risk/policies/*: {status}: {text}").into()),
        }
    }
    Ok(())
}

async fn token_of(client: &ExchangeClient, admin: &str, body: &Value) -> Result<String, AnyError> {
    let created = client.expect(admin, "/v1/admin/parties", body, 201).await?;
    Ok(created["token"].as_str().ok_or("POST /v1/admin/parties: no token in the answer")?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 90 "), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn bad_durations_are_refused_with_an_example() {
        for raw in ["", "s", "5x", "5 m", "m5", "0s", "-3s", "1..2s", "90s5"] {
            let e = parse_duration(raw).unwrap_err();
            assert!(e.contains(raw.trim()) || e.contains("positive"), "{raw:?}: {e}");
        }
    }

    #[test]
    fn the_report_names_every_count() {
        let mut report =
            SimulateReport { seed: 7, tag: "XH123".into(), transports_completed: 40, ..Default::default() };
        report.answers_by_status.insert(200, 520);
        report.irregular.insert("undervaluation", 2);
        report.by_type.insert("I17".into(), 1);
        report.operations_discharged = 120;
        report.operations_refused = 1;
        let text = report.to_string();
        for line in [
            "transports completed: 40",
            "non-200 answers: 0",
            "answers by status: 200: 520",
            "undervaluation 2",
            "TIR operations: 120 discharged, 1 refused, 0 not started after a refusal",
            "messages by type: I17 1",
        ] {
            assert!(text.contains(line), "{text}");
        }
        assert!(report.is_clean());
    }

    #[test]
    fn the_report_shows_what_the_inspections_did() {
        let mut report = SimulateReport { seed: 7, drift_at: 100, ..Default::default() };
        assert!(report.to_string().contains("inspections: off"));
        report.risk.enabled = true;
        report.risk.assessments_read = 30;
        report.risk.lanes = BTreeMap::from([("green", 25), ("red", 3), ("yellow", 2)]);
        report.risk.inspections = BTreeMap::from([("red", 3), ("yellow", 2)]);
        report.risk.irregularities_found = 2;
        report.risk.revenue_recovered = 1500.5;
        report.risk.by_selector.insert("random".into(), inspect::Hits { inspected: 4, smuggling: 1, found: 1 });
        report.risk.smuggling_transports = 5;
        report.risk.smuggling_found = 2;
        report.risk.smuggling_uninspected = 3;
        let text = report.to_string();
        for line in [
            "assessments read: 30 (green 25, yellow 2, red 3), none after polling: 0",
            "inspections: red 3, yellow 2; irregularities found: 2; revenue recovered: 1500.50 EUR",
            "hit rate by selector: random 1/4 (25.0 %)",
            "smuggling transports: 5 completed, 2 found, 3 never inspected (patterns drift at transport 100)",
        ] {
            assert!(text.contains(line), "{text}");
        }
        assert!(!text.contains("risk routes missing"));
        assert!(report.is_clean());
        report.risk.risk_routes_missing = Some("GET /v1/risk/assessments/XH123000000: 404".into());
        report.risk.skipped_no_risk_routes = 12;
        assert!(report.to_string().contains("risk routes missing (404), 12 checkpoints without inspection"));
        assert!(report.is_clean(), "an older server is not a failure");
        report.risk.errors = 1;
        assert!(!report.is_clean());
        let json = report.to_json();
        assert_eq!(json["risk"]["inspections"]["red"], 3);
        assert_eq!(json["risk"]["by_selector"]["random"]["hit_rate"], 0.25);
        assert_eq!(json["drift_at"], 100);
        assert_eq!(json["clean"], false);
    }

    #[test]
    fn the_drift_falls_halfway_through_the_run() {
        let options = |transports, rate, duration| SimulateOptions {
            url: String::new(),
            admin_token: String::new(),
            rate_msgs_per_s: rate,
            duration,
            transports,
            seed: 1,
            irregular_share: 0.05,
            concurrency: 1,
            inspections: true,
            risk_policy: None,
        };
        assert_eq!(drift_point(&options(Some(500), None, None)), 250);
        assert_eq!(drift_point(&options(Some(500), Some(10.0), Some(Duration::from_secs(1)))), 250);
        assert_eq!(drift_point(&options(None, Some(120.0), Some(Duration::from_secs(100)))), 500);
        assert_eq!(drift_point(&options(None, None, Some(Duration::from_secs(100)))), DEFAULT_DRIFT_AT);
        assert_eq!(drift_point(&options(Some(1), None, None)), 1);
    }

    #[test]
    fn clock_run_tags_begin_valid_references() {
        let tag = clock_run_tag();
        assert_eq!(tag.to_string().len(), 5);
        tir_model::GuaranteeRef::parse(&tag.reference(0)).unwrap();
    }
}
