//! Shared by the end-to-end tests: a real `tirhub serve` child process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts `tirhub serve` on a free port and returns it with its base URL,
/// read from the `listening on http://ADDR` line it prints once ready.
/// Without rate limits: these tests drive one holder and one chain through
/// many transports at once, far past what a real one sends.
pub fn spawn_serve(db: &str, admin_token: &str) -> (Child, String) {
    spawn_serve_with(db, admin_token, &["--no-rate-limits"])
}

/// `spawn_serve` with these further arguments (and `tirhub serve`'s default rate limits unless they say otherwise).
pub fn spawn_serve_with(db: &str, admin_token: &str, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["serve", "--db", db, "--listen", "127.0.0.1:0", "--admin-token", admin_token])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tirhub starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("tirhub prints its address");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, base)
}
