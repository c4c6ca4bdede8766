//! `tirhub`: the eTIR international exchange in one binary.

use tirhub::{AnyError, demo, run_server};

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tirhub",
    version,
    about = "The eTIR international exchange: guarantees, declarations and TIR operations across borders",
    long_about = "tirhub runs the eTIR international system as an HTTP+JSON service (contract: etir-binding v1).\n\
Customs administrations, guarantee chains and TIR carnet holders exchange the eTIR messages \
(E1..E13, I1..I19); every message is authenticated, idempotent, and journaled in a hash chain.\n\n\
Start here:\n  tirhub demo                       a seeded server on a fresh SQLite file, with tokens printed\n  \
tirhub serve --admin-token T      the service (SQLite by default, PostgreSQL with --db postgres://...)\n  \
tirhub audit verify --db URL      recompute the journal's hash chain"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Start a server on a fresh SQLite file with parties seeded along the
    /// FI-EE-LV-LT-PL-CZ-SK corridor, and print their tokens.
    Demo(DemoArgs),
    /// Check the tamper-evident journal.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
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
}

#[derive(clap::Args)]
struct DemoArgs {
    /// SQLite file for the demo; it is deleted and created anew.
    #[arg(long, default_value = "tirhub-demo.db")]
    file: std::path::PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the journal's SHA-256 chain and name the first broken entry.
    /// Exits with status 1 when the chain is broken.
    Verify {
        #[arg(long, env = "TIRHUB_DB", default_value = "sqlite://tirhub.db")]
        db: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
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
            Command::Demo(args) => demo::run(args.file, args.listen).await,
            Command::Audit { command: AuditCommand::Verify { db } } => audit_verify(&db).await,
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
    let store = tir_store::open(&args.db).await.map_err(|e| format!("cannot open {}: {e}", args.db))?;
    let app = tir_server::App::new(store, args.admin_token.trim());
    run_server(app, args.listen).await?;
    Ok(ExitCode::SUCCESS)
}

async fn audit_verify(db: &str) -> Result<ExitCode, AnyError> {
    // Opening a missing SQLite file would create an empty, trivially intact journal.
    if let Some(path) = db.strip_prefix("sqlite://").or_else(|| db.strip_prefix("sqlite:"))
        && !std::path::Path::new(path).exists()
    {
        return Err(format!("no database at {path}").into());
    }
    let store = tir_store::open(db).await.map_err(|e| format!("cannot open {db}: {e}"))?;
    let verdict = store.verify_journal().await?;
    println!("{}", serde_json::to_string_pretty(&tir_server::verdict_json(&verdict))?);
    match &verdict.first_broken {
        None => {
            eprintln!("journal intact: {} entries, head {}", verdict.entries, verdict.head);
            Ok(ExitCode::SUCCESS)
        }
        Some((seq, reason)) => {
            eprintln!("journal BROKEN at entry {seq}: {reason}");
            Ok(ExitCode::from(1))
        }
    }
}
