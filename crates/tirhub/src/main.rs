//! `tirhub`: the eTIR international exchange in one binary.

mod backup;
mod demo;
mod risk;
mod seed;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tir_server::{RateLimit, RateLimits};
use tir_sim::{bench, simulate};

use crate::server::run_server;

type AnyError = tir_sim::AnyError;

#[derive(Parser)]
#[command(
    name = "tirhub",
    version,
    about = "The eTIR international exchange: guarantees, declarations and TIR operations across borders",
    long_about = "tirhub runs the eTIR international system as an HTTP+JSON service (contract: etir-binding v2, in part; docs/architecture.md says which parts).\n\
Customs administrations, guarantee chains and TIR carnet holders exchange the eTIR messages \
(E1..E13, I1..I19); every message is authenticated, idempotent, and journaled in a hash chain.\n\n\
Start here:\n  tirhub demo                       a seeded server on a fresh SQLite file, with tokens printed\n  \
tirhub serve --admin-token T      the service (SQLite by default, PostgreSQL with --db postgres://...)\n  \
tirhub simulate --url URL --admin-token T   realistic traffic against a running server\n  \
tirhub bench                      throughput and latency on this machine, against its no-op ceiling\n  \
tirhub audit verify --db URL      recompute the journal's hash chain (and the holders' signatures)\n  \
tirhub risk evaluate --data F.csv --test-from 2014-07-01   the risk model against baselines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    ///
    /// Every party has a rate limit by kind (a token bucket: RATE requests per
    /// second, BURST at once; past it HTTP 429, code 386, Retry-After). The
    /// defaults suit real parties: a holder's and a chain's far below a customs
    /// administration's system. `tirhub simulate` or another load test against a
    /// served instance drives a few parties much harder than real ones: give it
    /// --no-rate-limits or higher limits, or its figures measure the limiter.
    /// (`tirhub bench` starts its own server, without limits.)
    #[command(after_help = "Examples:\n  \
tirhub serve --admin-token \"$T\" --rate-limit-holder 20/100\n  \
TIRHUB_RATE_LIMIT_CUSTOMS=1000/2000 tirhub serve --admin-token \"$T\"\n  \
tirhub serve --admin-token \"$T\" --no-rate-limits    # before tirhub simulate")]
    Serve(ServeArgs),
    /// Start a server on a fresh SQLite file with parties seeded along the
    /// KZ-RU-BY-LT-PL-DE corridor (into the Union at Medininkai), and print
    /// their tokens.
    Demo(DemoArgs),
    /// Play realistic TIR traffic against a running server.
    ///
    /// Bootstraps what it needs over the admin API (customs of about 30 countries on
    /// ten real TIR corridors, their offices at UN/LOCODE border crossings, two
    /// guarantee chains, 60 holders in the ITDB), then plays full transport life
    /// cycles per binding v2 (E1, E9, I1, I7, then for each TIR operation, one per TIR
    /// territory crossed, I9 at departure or entry and I11 at exit or destination, then
    /// I13): 2 to 6 countries, operation ids and customs controls, now and then a
    /// refusal to start (I17), a seal finding or an incident (X1), goods with HS 2022
    /// codes, plausible masses and values, and a share of irregular transports
    /// (undervaluation, misdeclared HS code, detour).
    /// The same --seed plays the same traffic; references differ per run, so it can
    /// run again on the same server. Prints a summary; exits 1 if any answer was not 200.
    #[command(after_help = "Examples:\n  \
tirhub simulate --url http://127.0.0.1:8080 --admin-token \"$T\" --transports 200 --seed 7\n  \
TIRHUB_URL=http://127.0.0.1:8080 TIRHUB_ADMIN_TOKEN=... tirhub simulate --rate 100 --duration 5m")]
    Simulate(SimulateArgs),
    /// Measure: start the server in-process on a fresh database, drive full
    /// transports over HTTP on loopback, and compare with the ceiling of the
    /// same client against GET /health.
    ///
    /// Examples:
    ///   tirhub bench --transports 20000 --concurrency 64
    ///   tirhub bench --rate 5000 --json
    ///   tirhub bench --db postgres://postgres@127.0.0.1:5432/test
    #[command(verbatim_doc_comment)]
    Bench(BenchArgs),
    /// Fill a database with simulated transports written straight through the
    /// store (no HTTP; the store's own checks, journal, feeds and console rows),
    /// on a clock spread over the last days, with the risk assessor beside it:
    /// to measure the console's pages at scale (docs/performance.md). The parties
    /// get fresh tokens; a few are printed to sign in with.
    ///
    /// Examples:
    ///   tirhub seed --db sqlite:///var/tmp/big.db --transports 1000000
    ///   tirhub seed --db postgres://postgres@127.0.0.1:5432/big --transports 100000 --days 30
    #[command(verbatim_doc_comment)]
    Seed(SeedArgs),
    /// Risk management offline: generate BACUDA-style declarations, evaluate
    /// the learned model on a date split, simulate weekly inspections.
    ///
    /// Examples:
    ///   tirhub risk generate --rows 100000 --seed 1 --out bacuda.csv
    ///   tirhub risk evaluate --data bacuda.csv --test-from 2014-07-01
    ///   tirhub risk simulate --data bacuda.csv --capacity 0.05 --explore 0.1
    #[command(verbatim_doc_comment)]
    Risk {
        #[command(subcommand)]
        command: risk::RiskCommand,
    },
    /// Copy a live SQLite database, consistently, while the server runs; the copy's
    /// journal is verified. (PostgreSQL: this prints the pg_dump way.)
    ///
    /// Example:
    ///   tirhub backup --db sqlite://tirhub.db --out tirhub-2026-11-30.db
    #[command(verbatim_doc_comment)]
    Backup(backup::BackupArgs),
    /// Put a backup in place, after verifying its journal.
    ///
    /// Example:
    ///   tirhub restore --from tirhub-2026-11-30.db --db sqlite://tirhub.db --force
    #[command(verbatim_doc_comment)]
    Restore(backup::RestoreArgs),
    /// Check the tamper-evident journal.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The server's signing keys (published at GET /v1/keys).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The accompanying document (GET /v1/guarantees/{ref}/accompanying-document).
    Document {
        #[command(subcommand)]
        command: DocumentCommand,
    },
}

#[derive(Subcommand)]
enum DocumentCommand {
    /// Check an accompanying document's signed token offline: exit 0 valid,
    /// 1 invalid (changed, or signed by no published key), 2 unreadable.
    ///
    /// Example:
    ///   curl -s https://tirhub.example/v1/keys > keys.json
    ///   tirhub document verify XH25000001-v1.pdf --keys keys.json
    #[command(verbatim_doc_comment)]
    Verify {
        /// The PDF, or the QR code's text (TIR1.<payload>.<signature>).
        input: String,
        /// The body of GET /v1/keys, saved while online.
        #[arg(long)]
        keys: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new signing key current and retire the current one. Both stay
    /// published, so heads signed with the old key still verify. Servers
    /// sharing the database sign with the new key from their next checkpoint.
    Rotate {
        #[arg(long, env = "TIRHUB_DB", default_value = "sqlite://tirhub.db")]
        db: String,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Database: sqlite://PATH (embedded, the default) or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "TIRHUB_DB", default_value = "sqlite://tirhub.db")]
    db: String,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "TIRHUB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Bearer token of the operator (admin routes); keep it secret.
    #[arg(long, env = "TIRHUB_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Hours a refused message's answer is kept and replayed for its message_id;
    /// after that it is pruned and the same id is processed anew. Accepted
    /// messages' answers are kept as long as the journal.
    #[arg(long, env = "TIRHUB_REFUSAL_RETENTION_HOURS", value_name = "HOURS", default_value_t = 24,
          value_parser = clap::value_parser!(u64).range(1..=24 * 365))]
    refusal_retention_hours: u64,
    /// Do not run the risk assessor in this process. Several servers sharing one
    /// PostgreSQL database may all run it (each feed item is assessed once);
    /// this keeps one of them to the exchange alone.
    #[arg(long)]
    no_risk: bool,
    /// Do not push feeds to the parties' endpoints from this process (they still
    /// read them with GET /v1/notifications). Servers sharing one PostgreSQL
    /// database may all push: each endpoint is delivered to by one at a time.
    #[arg(long)]
    no_push: bool,
    /// Trust this CA bundle (PEM) for push endpoints, beside the Mozilla roots
    /// built in: endpoints whose certificates a private CA signed (a customs
    /// administration's own). Read at start: a bad file stops the server.
    #[arg(long, env = "TIRHUB_PUSH_CA", value_name = "FILE")]
    push_ca: Option<std::path::PathBuf>,
    /// Bearer token GET /metrics asks for; without it /metrics is open to
    /// whoever reaches the listen address (scrapers on a private network).
    #[arg(long, env = "TIRHUB_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Mark the console's cookies `Secure`: set when clients reach this server
    /// over TLS (a TLS-terminating proxy in front of it).
    #[arg(long, env = "TIRHUB_CONSOLE_SECURE_COOKIES")]
    console_secure_cookies: bool,
    #[command(flatten)]
    rate: RateArgs,
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    log: LogArgs,
}

/// TLS and mutual TLS (docs/reliability.md, "TLS and mutual TLS").
#[derive(clap::Args)]
#[command(next_help_heading = "TLS")]
struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, the server's first);
    /// TLS 1.2 and 1.3 only.
    #[arg(long, env = "TIRHUB_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "TIRHUB_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Mutual TLS: ask clients for a certificate signed by a CA of this bundle
    /// (PEM). Clients without one still connect and use their tokens; a party
    /// bound to a certificate (PUT /v1/admin/parties/{id}/certificate) needs it.
    #[arg(long, env = "TIRHUB_CLIENT_CA", value_name = "FILE", requires = "tls_cert")]
    client_ca: Option<std::path::PathBuf>,
}

impl TlsArgs {
    /// The TLS set-up, read before anything starts: a bad file is an error naming it.
    fn load(&self) -> Result<Option<tir_server::Tls>, AnyError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else { return Ok(None) };
        let tls = tir_server::Tls::from_pem_files(cert, key, self.client_ca.as_deref())
            .map_err(|e| format!("cannot use the TLS files: {e}"))?;
        Ok(Some(tls))
    }
}

/// The connection layer's limits (docs/architecture.md, "The connection layer").
#[derive(clap::Args)]
#[command(next_help_heading = "Connections")]
struct ConnArgs {
    /// Connections served at once; more wait in the listen backlog until one
    /// closes. Keep it well below the open-files limit (ulimit -n).
    #[arg(long, env = "TIRHUB_CONNECTIONS_MAX", value_name = "N", default_value_t = tir_server::CONNECTIONS_MAX,
          value_parser = connections_max)]
    connections_max: usize,
    /// Seconds a client has to send a request's line and headers, from the
    /// connection's start or the previous answer; idle kept-alive connections
    /// close after it too.
    #[arg(long, env = "TIRHUB_HEADER_TIMEOUT", value_name = "SECS",
          default_value_t = Seconds(tir_server::HEADER_READ_TIMEOUT))]
    header_timeout: Seconds,
    /// Seconds a client has to send a request's body once its headers are in;
    /// past it, HTTP 408 with code 100.
    #[arg(long, env = "TIRHUB_BODY_TIMEOUT", value_name = "SECS",
          default_value_t = Seconds(tir_server::BODY_READ_TIMEOUT))]
    body_timeout: Seconds,
    /// Seconds answers in flight may take to finish after SIGTERM or Ctrl-C;
    /// then the connections still open are dropped.
    #[arg(long, env = "TIRHUB_SHUTDOWN_GRACE", value_name = "SECS",
          default_value_t = Seconds(tir_server::SHUTDOWN_GRACE))]
    shutdown_grace: Seconds,
}

impl ConnArgs {
    fn limits(&self) -> tir_server::ServeLimits {
        tir_server::ServeLimits {
            connections_max: self.connections_max,
            header_read_timeout: self.header_timeout.0,
            body_read_timeout: self.body_timeout.0,
            shutdown_grace: self.shutdown_grace.0,
        }
    }
}

/// The most connections `--connections-max` accepts: each holds a file and buffers.
const CONNECTIONS_MAX_LIMIT: usize = 100_000;
/// The longest `--*-timeout` and `--shutdown-grace` accept, in seconds.
const SECONDS_MAX: f64 = 3_600.0;

fn connections_max(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=CONNECTIONS_MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!("{s:?}: expected a whole number of connections from 1 to {CONNECTIONS_MAX_LIMIT}")),
    }
}

/// A duration given in seconds (fractions allowed: 0.5), more than 0 and at most an hour.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Seconds(std::time::Duration);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

impl std::str::FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Seconds, String> {
        match s.trim().parse::<f64>() {
            Ok(secs) if secs > 0.0 && secs <= SECONDS_MAX => Ok(Seconds(std::time::Duration::from_secs_f64(secs))),
            _ => Err(format!("{s:?}: expected seconds, a number above 0 and at most {SECONDS_MAX}")),
        }
    }
}

/// How the log lines on stderr look; RUST_LOG chooses which are written
/// (`RUST_LOG=info,tir_server::observe=debug` adds a line per request).
#[derive(clap::Args)]
#[command(next_help_heading = "Logs")]
struct LogArgs {
    /// text: for people; json: one JSON object per line, for a log collector.
    #[arg(long, env = "TIRHUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Per-party rate limits: a token bucket per party, refilled continuously at
/// RATE requests per second up to BURST; past it, HTTP 429 with code 386 and
/// Retry-After. Each kind has its own default; an authenticated route spends
/// one token per request.
#[derive(clap::Args)]
#[command(next_help_heading = "Rate limits (per party, RATE/BURST)")]
struct RateArgs {
    /// Each customs administration's limit, as RATE/BURST (requests per second / burst).
    #[arg(long, env = "TIRHUB_RATE_LIMIT_CUSTOMS", value_name = "RATE/BURST", default_value_t = tir_server::CUSTOMS_RATE_LIMIT)]
    rate_limit_customs: RateLimit,
    /// Each guarantee chain's limit.
    #[arg(long, env = "TIRHUB_RATE_LIMIT_CHAIN", value_name = "RATE/BURST", default_value_t = tir_server::GUARANTEE_CHAIN_RATE_LIMIT)]
    rate_limit_chain: RateLimit,
    /// Each holder's limit.
    #[arg(long, env = "TIRHUB_RATE_LIMIT_HOLDER", value_name = "RATE/BURST", default_value_t = tir_server::HOLDER_RATE_LIMIT)]
    rate_limit_holder: RateLimit,
    /// The admin's limit.
    #[arg(long, env = "TIRHUB_RATE_LIMIT_ADMIN", value_name = "RATE/BURST", default_value_t = tir_server::ADMIN_RATE_LIMIT)]
    rate_limit_admin: RateLimit,
    /// No rate limits at all, e.g. to run `tirhub simulate` or a load test against
    /// this server (a simulated holder or chain soon passes its default limit).
    #[arg(long, env = "TIRHUB_NO_RATE_LIMITS")]
    no_rate_limits: bool,
}

impl RateArgs {
    fn limits(&self) -> RateLimits {
        if self.no_rate_limits {
            return RateLimits::unlimited();
        }
        RateLimits {
            customs: Some(self.rate_limit_customs),
            guarantee_chain: Some(self.rate_limit_chain),
            holder: Some(self.rate_limit_holder),
            admin: Some(self.rate_limit_admin),
        }
    }
}

#[derive(clap::Args)]
struct DemoArgs {
    /// SQLite file for the demo; it is deleted and created anew.
    #[arg(long, default_value = "tirhub-demo.db")]
    file: std::path::PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Messages per second of the background traffic (the Lithuanian corridors).
    #[arg(long, default_value_t = 4.0)]
    traffic_rate: f64,
    /// Serve the seeded parties without background traffic.
    #[arg(long)]
    no_traffic: bool,
    #[command(flatten)]
    rate: RateArgs,
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// PostgreSQL server to bench on (a fresh database is created on it and
    /// dropped afterwards); without it, a fresh SQLite file in a temporary directory.
    #[arg(long)]
    db: Option<String>,
    /// Full transports to drive (each 4 + 3 x TIR operations messages, about), at most 1000000.
    #[arg(long, default_value_t = 5_000)]
    transports: usize,
    /// Concurrent HTTP connections, each sending its transports' messages in order.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Open loop: send at this fixed rate (messages/s); latency then counts from
    /// each message's scheduled time, free of coordinated omission.
    #[arg(long)]
    rate: Option<f64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Run the server without its risk assessor, to measure the exchange alone
    /// (compare with and without: assessing runs off the writer's path).
    #[arg(long)]
    no_risk: bool,
}

#[derive(clap::Args)]
struct SeedArgs {
    /// The database to fill (made if missing; it should hold nothing else).
    #[arg(long)]
    db: String,
    /// Transports to start, at most 1000000 (the references of one run).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    transports: u64,
    /// The days the writer's clock runs over, ending now.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Transports under way at once (and still under way at the end).
    #[arg(long, default_value_t = 512)]
    in_flight: usize,
    /// Seed of the traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Without the risk assessor (no assessments stored).
    #[arg(long)]
    no_risk: bool,
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// Base URL of the server.
    #[arg(long, env = "TIRHUB_URL")]
    url: String,
    /// The server's admin token (parties, offices and holders are created with it).
    #[arg(long, env = "TIRHUB_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Messages per second over all transports (open loop); default: as fast as --concurrency allows.
    #[arg(long, value_name = "MSG_PER_S")]
    rate: Option<f64>,
    /// Stop after this long: 30s, 5m, 2h, 1h30m.
    #[arg(long, value_parser = simulate::parse_duration)]
    duration: Option<std::time::Duration>,
    /// Stop after this many transports (at most 1000000, the references one run numbers).
    /// Without --duration or --transports, runs until Ctrl-C or the 1000000th transport.
    #[arg(long, value_name = "N")]
    transports: Option<usize>,
    /// Seed of the traffic; default: from the clock (printed, to replay it).
    #[arg(long)]
    seed: Option<u64>,
    /// Expected share of irregular transports, 0 to 1.
    #[arg(long, value_name = "F", default_value_t = 0.05)]
    irregular_share: f64,
    /// Transports in flight at once (each sends its messages in order).
    #[arg(long, value_name = "C", default_value_t = 32)]
    concurrency: usize,
    /// Customs do not read risk assessments nor record inspection results
    /// (by default they do where they see a truck, and inspect on red and yellow).
    #[arg(long)]
    no_inspections: bool,
    /// Set every simulated administration's policy at start: this share of
    /// transports sent red (0 to 1) ...
    #[arg(long, value_name = "SHARE", requires = "explore")]
    red_share: Option<f64>,
    /// ... of which this share is selected at random (exploration), so the
    /// outcomes recorded can train a model (`tirhub risk train`).
    #[arg(long, value_name = "SHARE", requires = "red_share")]
    explore: Option<f64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the journal's SHA-256 chain and name the first broken entry.
    /// Exits with status 1 when the chain is broken.
    ///
    /// With --head FILE (a head kept from GET /v1/journal/head), also checks its
    /// signature against the database's server keys and that journal entry
    /// `entries` still has hash `head`: exits 1 if the history was rewritten.
    Verify {
        #[arg(long, env = "TIRHUB_DB", default_value = "sqlite://tirhub.db")]
        db: String,
        /// A signed head kept earlier: the JSON GET /v1/journal/head answered.
        #[arg(long, value_name = "FILE")]
        head: Option<std::path::PathBuf>,
    },
    /// Show a holder's signed message as journaled, with what proves it: the
    /// body bytes as sent, the signature and the public key, verified here.
    /// Any Ed25519 tool verifies the same three (docs/etir-binding.md,
    /// "Signed holder messages"). Exits 1 if the signature does not verify,
    /// 2 if no journaled message has this id or it carries no signature.
    Message {
        #[arg(long, env = "TIRHUB_DB", default_value = "sqlite://tirhub.db")]
        db: String,
        /// The message's message_id.
        #[arg(long)]
        message_id: String,
        /// The sending party's id (message ids are unique per sender only); any sender if absent.
        #[arg(long)]
        sender: Option<String>,
        /// Also write the signed body's exact bytes to this file.
        #[arg(long, value_name = "FILE")]
        body_out: Option<std::path::PathBuf>,
    },
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `tirhub audit ... | head` closes our stdout early; `println!` then panics
/// with EPIPE (Rust ignores SIGPIPE). End as a piped Unix tool does instead:
/// quietly, with the status a shell reports for SIGPIPE.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("(os error 32)") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let log_format = match &cli.command {
        Command::Serve(args) => args.log.log_format,
        Command::Demo(args) => args.log.log_format,
        _ => LogFormat::Text,
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr);
    match log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Demo(args) => match args.tls.load() {
                Ok(tls) => {
                    demo::run(demo::DemoOptions {
                        file: args.file,
                        listen: args.listen,
                        limits: args.rate.limits(),
                        serve_limits: args.conn.limits(),
                        traffic_rate: (!args.no_traffic).then_some(args.traffic_rate),
                        tls,
                    })
                    .await
                }
                Err(e) => Err(e),
            },
            Command::Simulate(args) => {
                let options = simulate::SimulateOptions {
                    url: args.url,
                    admin_token: args.admin_token,
                    rate_msgs_per_s: args.rate,
                    duration: args.duration,
                    transports: args.transports,
                    seed: args.seed.unwrap_or_else(simulate::seed_from_clock),
                    irregular_share: args.irregular_share,
                    concurrency: args.concurrency,
                    inspections: !args.no_inspections,
                    risk_policy: args
                        .red_share
                        .zip(args.explore)
                        .map(|(red_share, exploration_share)| simulate::RiskPolicy { red_share, exploration_share }),
                };
                simulate::command(options, args.json).await
            }
            Command::Audit { command: AuditCommand::Verify { db, head } } => audit_verify(&db, head.as_deref()).await,
            Command::Audit { command: AuditCommand::Message { db, message_id, sender, body_out } } => {
                audit_message(&db, &message_id, sender.as_deref(), body_out.as_deref()).await
            }
            Command::Keys { command: KeysCommand::Rotate { db } } => keys_rotate(&db).await,
            Command::Document { command: DocumentCommand::Verify { input, keys } } => {
                Ok(document_verify(&input, &keys))
            }
            Command::Bench(args) => run_bench(args).await,
            Command::Seed(args) => {
                seed::run(seed::SeedOptions {
                    db: args.db,
                    transports: args.transports,
                    days: args.days,
                    in_flight: args.in_flight,
                    seed: args.seed,
                    assess: !args.no_risk,
                })
                .await
            }
            Command::Backup(args) => backup::backup(args).await,
            Command::Restore(args) => backup::restore(args).await,
            // Offline compute blocks this thread on purpose (`train` waits on its database inside).
            Command::Risk { command } => risk::run(command),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<ExitCode, AnyError> {
    if args.admin_token.trim().len() < 16 {
        return Err("the admin token must be at least 16 characters".into());
    }
    let tls = args.tls.load()?;
    let push_roots = match &args.push_ca {
        Some(file) => {
            tir_server::PushRoots::from_pem_file(file).map_err(|e| format!("cannot use the push CA bundle: {e}"))?
        }
        None => tir_server::PushRoots::default(),
    };
    let retention = std::time::Duration::from_secs(args.refusal_retention_hours * 3600);
    let options = tir_store::StoreOptions::default().with_refusal_retention(retention);
    let store = tir_store::open_with_options(&args.db, tir_store::Env::system(), options)
        .await
        .map_err(|e| format!("cannot open {}: {e}", args.db))?;
    let app = tir_server::App::new(store, args.admin_token.trim());
    let app = if args.no_risk { app.without_risk() } else { app };
    let app = if args.no_push { app.without_push() } else { app.with_push_roots(push_roots) };
    let app = match &args.metrics_token {
        Some(token) if token.trim().len() < 16 => return Err("the metrics token must be at least 16 characters".into()),
        Some(token) => app.with_metrics_token(token),
        None => app,
    };
    run_server(app, args.listen, args.rate.limits(), args.conn.limits(), args.console_secure_cookies, tls).await?;
    Ok(ExitCode::SUCCESS)
}

async fn run_bench(args: BenchArgs) -> Result<ExitCode, AnyError> {
    let options = bench::BenchOptions {
        db: args.db,
        transports: args.transports,
        concurrency: args.concurrency,
        rate: args.rate,
        progress: !args.json,
        no_risk: args.no_risk,
    };
    let report = bench::run(options).await?;
    if args.json {
        println!("{report}");
    } else {
        print!("{}", bench::table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens an existing database: opening a missing SQLite file would create an
/// empty one (with a trivially intact journal).
async fn open_existing(db: &str) -> Result<std::sync::Arc<dyn tir_store::Store>, AnyError> {
    if let Some(path) = db.strip_prefix("sqlite://").or_else(|| db.strip_prefix("sqlite:"))
        && !std::path::Path::new(path).exists()
    {
        return Err(format!("no database at {path}").into());
    }
    Ok(tir_store::open(db).await.map_err(|e| format!("cannot open {db}: {e}"))?)
}

async fn audit_verify(db: &str, head: Option<&std::path::Path>) -> Result<ExitCode, AnyError> {
    // Read first: a head file that cannot be read is an error before any work.
    let kept = match head {
        Some(path) => Some(read_kept_head(path)?),
        None => None,
    };
    let store = open_existing(db).await?;
    let verdict = store.verify_journal().await?;
    println!("{}", serde_json::to_string_pretty(&tir_server::verdict_json(&verdict))?);
    let mut intact = match &verdict.first_broken {
        None => {
            eprintln!(
                "journal intact: {} entries, head {}; {} holder signatures verified",
                verdict.entries, verdict.head, verdict.holder_signatures
            );
            true
        }
        Some((seq, reason)) => {
            eprintln!("journal BROKEN at entry {seq}: {reason}");
            false
        }
    };
    if let Some(kept) = kept {
        match check_kept_head(store.as_ref(), &kept).await? {
            Ok(()) => eprintln!(
                "kept head verified: signed by key {} at {}; entry {} still has hash {}",
                kept.key_id, kept.signed_at, kept.entries, kept.head
            ),
            Err(problem) => {
                eprintln!("kept head FAILED: {problem}");
                intact = false;
            }
        }
    }
    Ok(if intact { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Journal pages read at a time while looking for a message.
const AUDIT_PAGE: usize = 1_000;

async fn audit_message(
    db: &str,
    message_id: &str,
    sender: Option<&str>,
    body_out: Option<&std::path::Path>,
) -> Result<ExitCode, AnyError> {
    let store = open_existing(db).await?;
    let mut from = 1;
    let entry = loop {
        let page = store.journal(from, AUDIT_PAGE).await?;
        let wanted = |e: &&tir_store::JournalEntry| {
            e.message_id == message_id && e.holder_signature.is_some() && sender.is_none_or(|s| e.sender == s)
        };
        if let Some(entry) = page.iter().find(wanted) {
            break entry.clone();
        }
        let Some(last) = page.last() else {
            eprintln!("no signed message {message_id:?} in the journal");
            return Ok(ExitCode::from(2));
        };
        from = last.seq + 1;
    };
    let signature = entry.holder_signature.as_ref().expect("found with a signature");
    let verified = signature.verify();
    let report = serde_json::json!({
        "seq": entry.seq,
        "hash": entry.hash,
        "sender": entry.sender,
        "type": entry.message_type,
        "message_id": entry.message_id,
        "guarantee_reference": entry.reference,
        "tir_id": signature.tir_id,
        "key_id": signature.key_id,
        "algorithm": "Ed25519",
        "public_key": signature.public_key,
        "signature": signature.signature,
        "signed_body": signature.signed_body,
        "verified": verified.is_ok(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(path) = body_out {
        std::fs::write(path, signature.signed_body.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    match verified {
        Ok(()) => {
            eprintln!(
                "entry {}: {} {} signed by {} with key {}: the signature verifies",
                entry.seq, entry.message_type, entry.message_id, signature.tir_id, signature.key_id
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            eprintln!("entry {}: the signature FAILED: {problem}", entry.seq);
            Ok(ExitCode::from(1))
        }
    }
}

/// `tirhub document verify`: says what a valid token proves and what it does not.
fn document_verify(input: &str, keys: &std::path::Path) -> ExitCode {
    use tir_store::doc_token::{self, TokenError};
    let unreadable = |why: String| {
        eprintln!("unreadable: {why}");
        ExitCode::from(2)
    };
    let token = if input.trim_start().starts_with(doc_token::PREFIX) {
        input.trim().to_owned()
    } else {
        match std::fs::read(input) {
            // The PDF carries the token as plain text (under the QR code and in its Keywords).
            Ok(bytes) => match doc_token::find_in(&bytes) {
                Some(token) => token,
                None => return unreadable(format!("{input}: no {}. token in it", doc_token::PREFIX)),
            },
            Err(e) => return unreadable(format!("{input}: {e}")),
        }
    };
    let keys = match std::fs::read(keys)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| e.to_string()))
        .and_then(|body| doc_token::keys_from_view(&body))
    {
        Ok(keys) => keys,
        Err(e) => return unreadable(format!("{}: {e}", keys.display())),
    };
    match doc_token::verify(&token, &keys) {
        Ok(claims) => {
            println!("valid: signed by server key {}", claims.kid);
            println!(
                "proves: guarantee {} had declaration version {} with SHA-256 {}",
                claims.reference, claims.v, claims.sha256
            );
            println!("        recorded in eTIR at {} (signed then by key {})", claims.iat, claims.kid);
            println!("does not prove: that the goods on the vehicle match the declaration, nor that this version is");
            println!("        still the current one or the transport still valid (amended, stopped, discharged):");
            println!("        check the live system when online (GET /v1/guarantees/{})", claims.reference);
            ExitCode::SUCCESS
        }
        Err(TokenError::Invalid(why)) => {
            println!("invalid: {why}");
            ExitCode::FAILURE
        }
        Err(TokenError::Unreadable(why)) => unreadable(why),
    }
}

fn read_kept_head(path: &std::path::Path) -> Result<tir_store::KeptHead, AnyError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the head {}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("the head {} is not JSON: {e}", path.display()))?;
    Ok(tir_store::SignedHead::from_view(&value).map_err(|e| format!("{}: {e}", path.display()))?)
}

/// Whether the kept head is signed by one of the database's keys and its
/// entry is still in the journal as it was: `Err` says what failed.
async fn check_kept_head(
    store: &dyn tir_store::Store,
    kept: &tir_store::KeptHead,
) -> Result<Result<(), String>, AnyError> {
    let keys = store.server_keys().await?;
    if let Err(problem) = tir_store::keys::verify_head(kept, &keys) {
        return Ok(Err(format!("its signature: {problem}")));
    }
    if kept.entries == 0 {
        return Ok((kept.head == tir_store::journal::GENESIS)
            .then_some(())
            .ok_or_else(|| "a head of 0 entries must be 64 zeros".to_owned()));
    }
    let Some(entry) = store.journal(kept.entries, 1).await?.into_iter().find(|e| e.seq == kept.entries) else {
        return Ok(Err(format!(
            "entry {} is no longer in the journal: the history was cut short after this head was signed",
            kept.entries
        )));
    };
    if entry.hash != kept.head {
        return Ok(Err(format!(
            "entry {} has hash {}, the kept head says {}: the history up to entry {} was rewritten",
            kept.entries, entry.hash, kept.head, kept.entries
        )));
    }
    Ok(Ok(()))
}

async fn keys_rotate(db: &str) -> Result<ExitCode, AnyError> {
    let store = open_existing(db).await?;
    let reply = store.rotate_key().await?;
    if reply.status != 201 {
        return Err(format!("rotation refused: {}", reply.body).into());
    }
    let answer: serde_json::Value = serde_json::from_str(&reply.body)?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    eprintln!("new current key {}; the old key stays published as retired", answer["current"]["key_id"]);
    Ok(ExitCode::SUCCESS)
}
