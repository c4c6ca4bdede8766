//! `tirhub backup` and `tirhub restore`: an online copy of an SQLite store,
//! checked by verifying its journal, and its return into place.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::AnyError;

/// How PostgreSQL is backed up: its own tools do it better than we could.
const POSTGRES_WAY: &str = "PostgreSQL is backed up with its own tools, online and consistent:\n  \
    pg_dump --format=custom --file=tirhub.dump postgres://USER@HOST:PORT/DB\n  \
    pg_restore --dbname=postgres://USER@HOST:PORT/NEWDB tirhub.dump\n\
    then check the restored journal: tirhub audit verify --db postgres://USER@HOST:PORT/NEWDB \
    (docs/reliability.md)";

#[derive(clap::Args)]
pub struct BackupArgs {
    /// The live database: sqlite://PATH (for PostgreSQL this prints the pg_dump way).
    #[arg(long, env = "TIRHUB_DB")]
    pub db: String,
    /// The copy to write; it must not exist.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// A copy made by `tirhub backup`.
    #[arg(long)]
    pub from: PathBuf,
    /// Where to put it: sqlite://PATH. Stop every server using PATH first.
    #[arg(long)]
    pub db: String,
    /// Replace an existing database at PATH (its -wal and -shm files too).
    #[arg(long)]
    pub force: bool,
}

fn sqlite_path<'a>(url: &'a str, what: &str) -> Result<&'a Path, AnyError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(POSTGRES_WAY.into());
    }
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty())
        .map(Path::new)
        .ok_or_else(|| format!("{what}: {url:?} is not sqlite://PATH").into())
}

/// Opens a copy and verifies its journal: the copy is only as good as that.
async fn verified(path: &Path) -> Result<tir_store::Verdict, AnyError> {
    let url = format!("sqlite://{}", path.display());
    let store = tir_store::open(&url).await.map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let verdict = store.verify_journal().await?;
    if let Some(broken) = &verdict.first_broken {
        return Err(format!("{}: the journal is broken at entry {} ({})", path.display(), broken.0, broken.1).into());
    }
    Ok(verdict)
}

pub async fn backup(args: BackupArgs) -> Result<ExitCode, AnyError> {
    let db = sqlite_path(&args.db, "--db")?.to_owned();
    let out = args.out.clone();
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || tir_store::backup_sqlite(&db, &out)).await??;
    let verdict = verified(&args.out).await?;
    println!(
        "backed up to {} in {:.2} s: journal intact, {} entries, head {}",
        args.out.display(),
        started.elapsed().as_secs_f64(),
        verdict.entries,
        verdict.head
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn restore(args: RestoreArgs) -> Result<ExitCode, AnyError> {
    let target = sqlite_path(&args.db, "--db")?.to_owned();
    if !args.from.exists() {
        return Err(format!("no backup at {}", args.from.display()).into());
    }
    if target.exists() && !args.force {
        return Err(format!("{} exists: pass --force to replace it (stop its servers first)", target.display()).into());
    }
    // The copy is checked beside the target before anything in place is touched.
    let scratch = scratch_beside(&target);
    std::fs::copy(&args.from, &scratch)?;
    let verdict = match verified(&scratch).await {
        Ok(v) => v,
        Err(e) => {
            remove_database(&scratch);
            return Err(e);
        }
    };
    remove_database(&scratch);
    if target.exists() {
        remove_database(&target);
    }
    // The backup's own bytes, which the scratch copy of them just proved.
    std::fs::copy(&args.from, &target)?;
    let again = verified(&target).await?;
    if (again.entries, &again.head) != (verdict.entries, &verdict.head) {
        return Err(format!("{}: the restored journal differs from the backup's", target.display()).into());
    }
    println!(
        "restored {} to {}: journal intact, {} entries, head {}",
        args.from.display(),
        target.display(),
        again.entries,
        again.head
    );
    Ok(ExitCode::SUCCESS)
}

fn scratch_beside(target: &Path) -> PathBuf {
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    dir.join(format!(".tirhub-restore-{}.db", tir_store::token::random_hex(6)))
}

fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
