//! `tirhub bench`: the server in-process on a fresh database, full transports
//! driven over real HTTP on loopback, and in the same run the ceiling: the
//! same client and concurrency against `GET /health`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tir_testkit::{FreshDatabase, TempSqlite};
use tokio::net::TcpStream;

use crate::AnyError;
use crate::client::ExchangeClient;
use crate::model::script::messages;
use crate::model::traffic::Traffic;
use crate::model::world::World;

/// Fixed, so two runs drive the same transports.
const BENCH_SEED: u64 = 20_261_128;
const BENCH_IRREGULAR_SHARE: f64 = 0.05;

pub struct BenchOptions {
    /// `None`: a fresh SQLite file in a temporary directory.
    pub db: Option<String>,
    pub transports: usize,
    pub concurrency: usize,
    /// Open loop at this many messages/s (latency measured from the intended send time).
    pub rate: Option<f64>,
    pub progress: bool,
    /// The server without its risk engine, to measure the exchange alone.
    pub no_risk: bool,
}

/// One prepared request: the bearer token and the body.
struct Prepared {
    authorization: String,
    body: Bytes,
}

/// The database under test, removed when the bench ends.
enum Fresh {
    Sqlite(TempSqlite),
    Postgres(FreshDatabase),
}

impl Fresh {
    async fn create(db: Option<&str>) -> Result<Fresh, AnyError> {
        match db {
            None => Ok(Fresh::Sqlite(TempSqlite::new("tirhub-bench")?)),
            Some(url) if url.starts_with("sqlite:") => {
                Err("--db takes a postgres:// URL; without --db the bench uses a fresh SQLite file".into())
            }
            Some(server_url) => Ok(Fresh::Postgres(FreshDatabase::create(server_url, "tirhub_bench").await?)),
        }
    }

    fn url(&self) -> &str {
        match self {
            Fresh::Sqlite(db) => db.url(),
            Fresh::Postgres(db) => db.url(),
        }
    }

    /// Bytes on disk for the data (SQLite: main file + WAL; PostgreSQL: the database).
    async fn size_bytes(&self) -> Result<u64, AnyError> {
        match self {
            Fresh::Sqlite(db) => {
                // What stays on disk once the WAL is folded in.
                let conn = rusqlite::Connection::open(db.path())?;
                // The store's threads may still hold the file for a moment after it is
                // dropped; a busy checkpoint leaves the WAL, which would count twice.
                for _ in 0..500 {
                    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
                    if busy == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                drop(conn);
                let mut total = 0;
                for entry in std::fs::read_dir(db.dir())? {
                    total += entry?.metadata()?.len();
                }
                Ok(total)
            }
            Fresh::Postgres(db) => {
                let client = tir_testkit::pg::connect(db.url()).await?;
                let row = client.query_one("SELECT pg_database_size(current_database())", &[]).await?;
                Ok(row.get::<_, i64>(0) as u64)
            }
        }
    }

    /// Whether an acknowledged write survives power loss with this setup.
    async fn durable(&self) -> Result<bool, AnyError> {
        match self {
            // The store answers a SQLite write only after its sync thread has fsynced the WAL.
            Fresh::Sqlite(_) => Ok(true),
            Fresh::Postgres(db) => {
                let client = tir_testkit::pg::connect(db.url()).await?;
                let fsync: String = client.query_one("SHOW fsync", &[]).await?.get(0);
                let commit: String = client.query_one("SHOW synchronous_commit", &[]).await?.get(0);
                Ok(fsync == "on" && commit != "off")
            }
        }
    }

    /// Best effort, as the figures are already measured: a database left
    /// behind costs disk, not the run.
    async fn remove(self) {
        match self {
            Fresh::Sqlite(db) => drop(db),
            Fresh::Postgres(db) => {
                let _ = db.remove().await;
            }
        }
    }
}

/// One keep-alive HTTP/1.1 connection per concurrent worker.
async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, AnyError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The outcome of one load phase.
struct Phase {
    requests: u64,
    failures: u64,
    first_failure: Option<String>,
    seconds: f64,
    latency_us: Histogram<u64>,
}

/// Sends every worker's requests in order on its own connection; with a rate,
/// request k is due at start + k/rate and its latency counts from then.
async fn load(
    addr: SocketAddr,
    per_worker: Vec<Vec<Prepared>>,
    method: hyper::Method,
    path: &'static str,
    rate: Option<f64>,
    progress: indicatif::ProgressBar,
) -> Result<Phase, AnyError> {
    let mut connections = Vec::with_capacity(per_worker.len());
    for _ in 0..per_worker.len() {
        connections.push(connect(addr).await?);
    }
    // Made before the clock starts: some allocators zero a histogram's counts
    // eagerly, which in the open loop showed up as latency of the first requests.
    let histograms: Vec<_> = (0..per_worker.len()).map(|_| latency_histogram()).collect();
    let slot = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = per_worker
        .into_iter()
        .zip(connections)
        .zip(histograms)
        .map(|((requests, mut sender), mut latency_us)| {
            let slot = slot.clone();
            let method = method.clone();
            let progress = progress.clone();
            tokio::spawn(async move {
                let (mut failures, mut first_failure) = (0u64, None);
                let count = requests.len() as u64;
                for prepared in requests {
                    let due = match rate {
                        Some(rate) => {
                            let k = slot.fetch_add(1, Ordering::Relaxed);
                            let due = started + Duration::from_secs_f64(k as f64 / rate);
                            tokio::time::sleep_until(due.into()).await;
                            due
                        }
                        None => Instant::now(),
                    };
                    let request = Request::builder()
                        .method(method.clone())
                        .uri(path)
                        .header(hyper::header::HOST, "bench")
                        .header(hyper::header::AUTHORIZATION, &prepared.authorization)
                        .header(hyper::header::CONTENT_TYPE, "application/json")
                        .body(Full::new(prepared.body))?;
                    sender.ready().await?;
                    let response = sender.send_request(request).await?;
                    let status = response.status();
                    let body = response.into_body().collect().await?.to_bytes();
                    latency_us.saturating_record(due.elapsed().as_micros() as u64);
                    if status != hyper::StatusCode::OK {
                        failures += 1;
                        first_failure.get_or_insert_with(|| format!("{status}: {}", String::from_utf8_lossy(&body)));
                    }
                    progress.inc(1);
                }
                Ok::<_, AnyError>((count, failures, first_failure, latency_us))
            })
        })
        .collect();
    let mut phase =
        Phase { requests: 0, failures: 0, first_failure: None, seconds: 0.0, latency_us: latency_histogram() };
    for task in tasks {
        let (count, failures, first_failure, latency_us) = task.await??;
        phase.requests += count;
        phase.failures += failures;
        if phase.first_failure.is_none() {
            phase.first_failure = first_failure;
        }
        phase.latency_us.add(latency_us)?;
    }
    phase.seconds = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    Ok(phase)
}

/// Microseconds from 1 µs to one minute, three significant digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

fn progress_bar(show: bool, total: u64, label: &'static str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label);
    bar
}

fn resident_set_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub async fn run(options: BenchOptions) -> Result<Value, AnyError> {
    if options.transports == 0 || options.concurrency == 0 {
        return Err("--transports and --concurrency must be at least 1".into());
    }
    if options.transports as u64 > crate::model::traffic::TRANSPORTS_MAX {
        let max = crate::model::traffic::TRANSPORTS_MAX;
        return Err(format!("--transports must be at most {max}: the references of a run number that many").into());
    }
    if let Some(rate) = options.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err("--rate must be a positive number of messages per second".into());
    }
    let fresh = Fresh::create(options.db.as_deref()).await?;
    let result = bench(&options, &fresh).await;
    fresh.remove().await;
    result
}

async fn bench(options: &BenchOptions, fresh: &Fresh) -> Result<Value, AnyError> {
    let store = tir_store::open(fresh.url()).await?;
    let backend = store.backend();
    let admin = tir_store::token::generate();
    let app = tir_server::App::new(store.clone(), &admin);
    let app = if options.no_risk { app.without_risk() } else { app };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tir_server::serve(listener, app, async {
        let _ = stopped.await;
    }));

    // Realistic traffic: the simulator's world and transports, seeded for repeatable runs.
    let world = Arc::new(World::standard());
    let parties = crate::simulate::bootstrap(&ExchangeClient::new(&format!("http://{addr}")), &admin, &world).await?;
    let traffic = Traffic::new(world, BENCH_SEED, BENCH_IRREGULAR_SHARE);
    let workers = options.concurrency.min(options.transports);
    let mut per_worker: Vec<Vec<Prepared>> = (0..workers).map(|_| Vec::new()).collect();
    for t in 0..options.transports {
        for (token, message) in messages(&traffic.transport(t as u64), &parties) {
            per_worker[t % workers].push(Prepared {
                authorization: format!("Bearer {token}"),
                body: Bytes::from(serde_json::to_vec(&message)?),
            });
        }
    }
    let messages: u64 = per_worker.iter().map(|w| w.len() as u64).sum();
    // Request bodies sent: what the traffic weighs on the wire before HTTP headers.
    let request_bytes: u64 = per_worker.iter().flatten().map(|p| p.body.len() as u64).sum();
    // The client's prepared requests live in this process too; reported so RSS can be read.
    let prepared_bytes: usize =
        per_worker.iter().flatten().map(|p| p.body.len() + p.authorization.len() + size_of::<Prepared>()).sum();

    let show = options.progress && std::io::stderr().is_terminal();
    let exchange = load(
        addr,
        per_worker,
        hyper::Method::POST,
        "/v1/messages",
        options.rate,
        progress_bar(show, messages, "messages"),
    )
    .await?;
    if exchange.failures > 0 {
        return Err(format!(
            "{} of {} messages were not accepted; first: {}",
            exchange.failures,
            exchange.requests,
            exchange.first_failure.unwrap_or_default()
        )
        .into());
    }

    // The assessor yields to the exchange (tir_server::ASSESSOR_NICE): how long it
    // takes after the load to assess everything the load announced to customs.
    let risk_drain_s = match options.no_risk {
        true => None,
        false => Some(risk_drain(store.as_ref()).await?),
    };

    // The ceiling: the same client and concurrency, closed loop, on a no-op route.
    let health: Vec<Vec<Prepared>> = (0..workers)
        .map(|w| {
            let share = messages as usize / workers + usize::from(w < messages as usize % workers);
            (0..share).map(|_| Prepared { authorization: String::new(), body: Bytes::new() }).collect()
        })
        .collect();
    let ceiling =
        load(addr, health, hyper::Method::GET, "/health", None, progress_bar(show, messages, "ceiling")).await?;

    let verdict = store.verify_journal().await?;
    let rss = resident_set_bytes();
    let _ = stop.send(());
    let _ = server.await;
    drop(store);
    let db_bytes = fresh.size_bytes().await?;

    let messages_per_s = exchange.requests as f64 / exchange.seconds;
    let ceiling_rps = ceiling.requests as f64 / ceiling.seconds;
    let ms = |q: f64| exchange.latency_us.value_at_quantile(q) as f64 / 1000.0;
    Ok(json!({
        "backend": backend,
        "transports": options.transports,
        "messages": exchange.requests,
        "messages_per_transport": round(exchange.requests as f64 / options.transports as f64, 2),
        "request_bytes_per_transport": request_bytes / options.transports as u64,
        "seconds": round(exchange.seconds, 3),
        "messages_per_s": round(messages_per_s, 0),
        "latency_ms": {"p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99), "max": exchange.latency_us.max() as f64 / 1000.0},
        "ceiling_rps": round(ceiling_rps, 0),
        "ratio": round(messages_per_s / ceiling_rps, 3),
        "durable": fresh.durable().await?,
        "concurrency": workers,
        "rate": options.rate,
        "risk_drain_s": risk_drain_s.map(|s| round(s, 2)),
        "journal_ok": verdict.ok,
        "journal_entries": verdict.entries,
        "db_bytes": db_bytes,
        "db_bytes_per_transport": db_bytes / options.transports as u64,
        "rss_bytes": rss,
        "client_prepared_bytes": prepared_bytes,
    }))
}

/// Seconds until the assessor's cursor reaches the end of the feeds.
async fn risk_drain(store: &dyn tir_store::Store) -> Result<f64, AnyError> {
    let start = Instant::now();
    loop {
        let cursor = store.risk_cursor().await?;
        if store.risk_feed(cursor, 1).await?.is_empty() {
            return Ok(start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// The report as a readable table.
pub fn table(report: &Value) -> String {
    let l = &report["latency_ms"];
    let mb = |v: &Value| v.as_u64().map(|b| format!("{:.1} MiB", b as f64 / 1048576.0)).unwrap_or("-".into());
    format!(
        "backend             {}\n\
         transports          {}\n\
         messages            {} ({} per transport, request bodies {} bytes per transport)\n\
         seconds             {}\n\
         messages/s          {}\n\
         latency ms          p50 {}  p90 {}  p99 {}  max {}\n\
         ceiling (GET /health) {} req/s\n\
         ratio               {}\n\
         durable             {}\n\
         concurrency         {}{}\n\
         risk assessed       {}\n\
         journal             {} ({} entries)\n\
         database            {} ({} bytes per transport)\n\
         process RSS         {} (server and bench client; the client's prepared requests: {})\n",
        report["backend"].as_str().unwrap_or("-"),
        report["transports"],
        report["messages"],
        report["messages_per_transport"],
        report["request_bytes_per_transport"],
        report["seconds"],
        report["messages_per_s"],
        l["p50"],
        l["p90"],
        l["p99"],
        l["max"],
        report["ceiling_rps"],
        report["ratio"],
        report["durable"],
        report["concurrency"],
        report["rate"].as_f64().map(|r| format!(", open loop at {r} messages/s")).unwrap_or_default(),
        match report["risk_drain_s"].as_f64() {
            Some(s) => format!("all, {s} s after the load ended"),
            None => "off (--no-risk)".to_owned(),
        },
        if report["journal_ok"] == true { "intact" } else { "BROKEN" },
        report["journal_entries"],
        mb(&report["db_bytes"]),
        report["db_bytes_per_transport"],
        mb(&report["rss_bytes"]),
        mb(&report["client_prepared_bytes"]),
    )
}
