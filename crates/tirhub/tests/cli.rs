//! The `tirhub` binary end to end: real processes, real HTTP, real databases.

mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde_json::{Value, json};
use tir_model::Country;
use tir_model::operation;
use tir_sim::client::ExchangeClient;
use tir_sim::model::script::{Script, ScriptOperation, Side};
use tir_testkit::seeded::{SeededCorridor, declaration, seed_corridor};
use tir_testkit::{FreshDatabase, TempSqlite};

const ADMIN: &str = "test-admin-token-0123456789";

/// A `tirhub serve` child process, killed on drop.
struct Server {
    child: Child,
    client: ExchangeClient,
}

impl Server {
    fn start(db: &str) -> Server {
        let (child, base) = support::spawn_serve(db, ADMIN);
        Server { child, client: ExchangeClient::new(&base) }
    }

    fn start_with(db: &str, extra: &[&str]) -> Server {
        let (child, base) = support::spawn_serve_with(db, ADMIN, extra);
        Server { child, client: ExchangeClient::new(&base) }
    }

    /// SIGTERM, then wait: the graceful path a process manager takes.
    fn stop(mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SQLite file for one test, removed with its WAL and shared-memory files
/// when the test ends (a panic included).
fn temp_db() -> TempSqlite {
    TempSqlite::new("tirhub-cli").expect("a temporary directory")
}

/// Every message of a full transport under binding v2: E1, E9, I1, I7, then
/// for each TIR operation (one per territory of the stops' countries) I9 at its
/// first country's office and I11 at its last's, then I13 for each. Message
/// ids and operation ids derive from the reference.
fn full_transport(corridor: &SeededCorridor, reference: &str, stops: &[usize]) -> Vec<(String, Value)> {
    let declaration = declaration(corridor, stops);
    let seals = ["S-0002".to_owned(), "S-0001".to_owned()];
    let side = |s: usize| {
        let customs = &corridor.customs[s];
        Side { token: customs.token.clone(), office: customs.office.clone() }
    };
    let countries: Vec<Country> =
        stops.iter().map(|s| Country::parse(&corridor.customs[*s].country).expect("a corridor country")).collect();
    let mut first = 0;
    let operations = operation::plan(&countries)
        .expect("the stops make a TIR transport")
        .iter()
        .map(|op| {
            let (start, end) = (stops[first], stops[first + op.countries().len() - 1]);
            first += op.countries().len();
            let mut played = ScriptOperation::plain(side(start), side(end), &seals);
            if let ScriptOperation::Run { start_fields, .. } = &mut played {
                start_fields["operation_id"] = json!(format!("{reference}-{}", op.sequence()));
            }
            played
        })
        .collect();
    Script {
        reference,
        chain_token: &corridor.chain,
        holder_tir_id: &corridor.holder_tir_id,
        holder_token: &corridor.holder,
        declaration: &declaration,
        departure: side(stops[0]),
        operations,
    }
    .messages()
}

/// Drives `transports` full transports through `servers`, message i of
/// every transport going to server i % n, `concurrency` transports at a time;
/// transport t's reference is `prefix` (two letters and a 3-digit series) and t in six digits.
async fn drive(
    servers: &[&ExchangeClient],
    corridor: &SeededCorridor,
    prefix: &str,
    transports: usize,
    concurrency: usize,
) -> usize {
    let scripts: Vec<Vec<(String, Value)>> = (0..transports)
        .map(|t| {
            let stops: Vec<usize> = match t % 3 {
                // KZ-RU-BY, BY-LT-PL-DE, RU-BY-LT-PL-DE: TIR transports under binding v2.
                0 => vec![0, 1, 2],
                1 => vec![2, 3, 4, 5],
                _ => vec![1, 2, 3, 4, 5],
            };
            full_transport(corridor, &format!("{prefix}{t:06}"), &stops)
        })
        .collect();
    let total: usize = scripts.iter().map(Vec::len).sum();
    stream::iter(scripts)
        .for_each_concurrent(concurrency, |script| async move {
            for (i, (token, message)) in script.iter().enumerate() {
                let server = servers[i % servers.len()];
                let (status, body) = server.send(token, message).await.expect("server answers");
                assert_eq!(status, 200, "{} {}: {body}", message["type"], message["guarantee_reference"]);
            }
        })
        .await;
    total
}

async fn state_of(client: &ExchangeClient, admin: &str, reference: &str) -> String {
    let (status, body) = client.get(admin, &format!("/v1/guarantees/{reference}")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    view["state"].as_str().unwrap().to_owned()
}

async fn verify(client: &ExchangeClient) -> Value {
    let (status, body) = client.get(ADMIN, "/v1/admin/journal/verify").await.unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn help_teaches_the_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_tirhub")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for word in ["serve", "demo", "audit", "TIRHUB_DB"].iter().take(3) {
        assert!(text.contains(word), "--help lacks {word}: {text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tirhub")).args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "TIRHUB_DB",
        "TIRHUB_LISTEN",
        "TIRHUB_ADMIN_TOKEN",
        "sqlite://tirhub.db",
        "127.0.0.1:8080",
        "--rate-limit-holder",
        "TIRHUB_RATE_LIMIT_HOLDER",
        "10/50",
        "--no-rate-limits",
        "simulate",
        "--refusal-retention-hours",
        "TIRHUB_REFUSAL_RETENTION_HOURS",
        "--connections-max",
        "--header-timeout",
        "--body-timeout",
        "--shutdown-grace",
        "[default: 512]",
        "[default: 20]",
        "[default: 10]",
        "--metrics-token",
        "--log-format",
    ] {
        assert!(text.contains(word), "serve --help lacks {word}: {text}");
    }
}

/// `tirhub serve` limits each party by default, and its flags set the limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_applies_per_party_rate_limits_by_default_and_as_configured() {
    let refused = |(status, body): (u16, String)| {
        status == 429 && serde_json::from_str::<Value>(&body).unwrap()["error"]["code"] == 386
    };
    // Configured: a holder gets two requests; a customs administration is not slowed by it.
    let db = temp_db();
    let server = Server::start_with(db.url(), &["--rate-limit-holder", "0.01/2"]);
    let corridor = seed_corridor(server.client.base(), ADMIN, 1).await;
    let feed = "/v1/notifications";
    for _ in 0..2 {
        assert_eq!(server.client.get(&corridor.holder, feed).await.unwrap().0, 200);
    }
    assert!(refused(server.client.get(&corridor.holder, feed).await.unwrap()));
    let customs = &corridor.customs[0].token;
    assert_eq!(server.client.get(customs, feed).await.unwrap().0, 200);
    drop(server);
    // The defaults: a holder flooding the server is refused once past its burst of 50.
    let db = temp_db();
    let server = Server::start_with(db.url(), &[]);
    let corridor = seed_corridor(server.client.base(), ADMIN, 1).await;
    let mut refusals = 0;
    for _ in 0..200 {
        refusals += usize::from(refused(server.client.get(&corridor.holder, feed).await.unwrap()));
    }
    assert!(refusals > 0, "200 requests at once from one holder: none refused");
    drop(server);
}

#[test]
fn serve_refuses_a_nonsense_rate_limit() {
    let out = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", ADMIN, "--rate-limit-holder", "10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RATE/BURST"));
}

#[test]
fn serve_and_demo_refuse_nonsense_connection_limits_with_a_message() {
    for (flag, value, message) in [
        ("--connections-max", "0", "a whole number of connections"),
        ("--connections-max", "many", "a whole number of connections"),
        ("--header-timeout", "0", "expected seconds"),
        ("--body-timeout", "-1", "expected seconds"),
        ("--shutdown-grace", "soon", "expected seconds"),
        ("--log-format", "xml", "possible values"),
    ] {
        for command in [&["serve", "--admin-token", ADMIN][..], &["demo"][..]] {
            let out = Command::new(env!("CARGO_BIN_EXE_tirhub"))
                .args(command)
                .args(["--listen", "127.0.0.1:0", &format!("{flag}={value}")])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command:?} {flag} {value} was accepted");
            assert!(stderr.contains(flag) && stderr.contains(message), "{command:?} {flag} {value}: {stderr}");
        }
    }
}

#[test]
fn serve_with_log_format_json_writes_json_lines_to_stderr_with_a_line_per_request() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    let db = temp_db();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["serve", "--db", db.url(), "--listen", "127.0.0.1:0", "--admin-token", ADMIN, "--log-format", "json"])
        .args(["--header-timeout", "5", "--shutdown-grace", "1"])
        .env("RUST_LOG", "info,tir_server::observe=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tirhub starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line:?}")).to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    let request =
        format!("GET /health HTTP/1.1\r\nHost: tirhub\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n");
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let request = lines
        .iter()
        .find(|line| line["fields"]["route"] == "/health")
        .unwrap_or_else(|| panic!("no line for the request: {stderr}"));
    let fields = &request["fields"];
    assert_eq!((&fields["method"], &fields["status"], &fields["party"]), (&json!("GET"), &json!(200), &json!("none")));
    assert!(fields["latency_ms"].is_number(), "{request}");
    assert!(!stderr.contains(ADMIN), "a token in the logs: {stderr}");
    assert!(lines.iter().any(|line| line["fields"]["message"] == "shutting down"), "{stderr}");
}

#[test]
fn serve_without_admin_token_fails_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("TIRHUB_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--admin-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_one_journal_row_makes_audit_verify_fail_and_name_it() {
    let db = temp_db();
    let (path, url) = (db.path(), db.url());
    let server = Server::start(url);
    let corridor = seed_corridor(server.client.base(), ADMIN, 1).await;
    drive(&[&server.client], &corridor, "XH101", 2, 2).await;
    let verdict = verify(&server.client).await;
    assert_eq!(verdict["ok"], true);
    let entries = verdict["entries"].as_i64().unwrap();
    server.stop();

    let intact = Command::new(env!("CARGO_BIN_EXE_tirhub")).args(["audit", "verify", "--db", url]).output().unwrap();
    assert!(intact.status.success(), "{}", String::from_utf8_lossy(&intact.stderr));
    let report: Value = serde_json::from_slice(&intact.stdout).unwrap();
    // The assessor may have journaled assessments between the verify and the stop.
    assert!(report["entries"].as_i64().unwrap() >= entries, "{report}");
    assert_eq!(report["ok"], true);

    let tampered_seq = entries - 5;
    let conn = rusqlite::Connection::open(path).unwrap();
    let changed = conn.execute("UPDATE journal SET body = body || ' ' WHERE seq = ?1", [tampered_seq]).unwrap();
    assert_eq!(changed, 1);
    drop(conn);

    let broken = Command::new(env!("CARGO_BIN_EXE_tirhub")).args(["audit", "verify", "--db", url]).output().unwrap();
    assert_eq!(broken.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_broken"]["seq"], tampered_seq);
    assert!(String::from_utf8_lossy(&broken.stderr).contains(&format!("entry {tampered_seq}")));
}

#[test]
fn audit_verify_of_a_missing_file_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["audit", "verify", "--db", "sqlite:///nonexistent/dir/x.db"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_transports_on_sqlite_survive_a_restart_and_replay_identically() {
    let db = temp_db();
    let url = db.url();
    let server = Server::start(url);
    let corridor = seed_corridor(server.client.base(), ADMIN, 2).await;
    let started = Instant::now();
    let messages = drive(&[&server.client], &corridor, "XH102", 60, 16).await;
    let seconds = started.elapsed().as_secs_f64();
    // A rough figure for the notes; the benchmark command measures properly.
    eprintln!(
        "sqlite: {messages} messages in {seconds:.2} s = {:.0} messages/s (debug build, reqwest client)",
        messages as f64 / seconds
    );
    let replayed = full_transport(&corridor, "XH102000007", &[2, 3, 4, 5]);
    let mut before = Vec::new();
    for (token, message) in &replayed {
        before.push(server.client.send(token, message).await.unwrap());
    }
    server.stop();

    let server = Server::start(url);
    for ((token, message), first) in replayed.iter().zip(&before) {
        assert_eq!(&server.client.send(token, message).await.unwrap(), first);
    }
    assert_eq!(state_of(&server.client, ADMIN, "XH102000007").await, "released");
    assert_eq!(verify(&server.client).await["ok"], true);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_database_keep_one_gapless_journal() {
    let Some(db) = FreshDatabase::from_env("tirhub_cli").await else { return };
    // The exchange's entries only: the assessor's are counted by the next test.
    let a = Server::start_with(db.url(), &["--no-rate-limits", "--no-risk"]);
    let b = Server::start_with(db.url(), &["--no-rate-limits", "--no-risk"]);
    let corridor = seed_corridor(a.client.base(), ADMIN, 3).await;
    let admin_writes = verify(&a.client).await["entries"].as_i64().unwrap();

    let transports = 90;
    let started = Instant::now();
    let messages = drive(&[&a.client, &b.client], &corridor, "XH103", transports, 24).await;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "postgres, two servers: {messages} messages in {seconds:.2} s = {:.0} messages/s (debug build, reqwest client)",
        messages as f64 / seconds
    );

    for t in 0..transports {
        let server = if t % 2 == 0 { &a.client } else { &b.client };
        assert_eq!(state_of(server, ADMIN, &format!("XH103{t:06}")).await, "released", "transport {t}");
    }
    for server in [&a.client, &b.client] {
        let verdict = verify(server).await;
        assert_eq!(verdict["ok"], true, "{verdict}");
        assert_eq!(verdict["entries"].as_i64().unwrap(), admin_writes + messages as i64);
    }
    // A replay sent to the other server gets the identical answer.
    let script = full_transport(&corridor, "XH103000004", &[1, 2, 3, 4]);
    for (i, (token, message)) in script.iter().enumerate() {
        let (first, other) = if i % 2 == 0 { (&a.client, &b.client) } else { (&b.client, &a.client) };
        assert_eq!(first.send(token, message).await.unwrap(), other.send(token, message).await.unwrap());
    }
    // The same new message sent to both servers at once is applied once.
    let (token, message) = &full_transport(&corridor, "XH103999999", &[0, 1])[0];
    let (x, y) = tokio::join!(a.client.send(token, message), b.client.send(token, message));
    assert_eq!(x.unwrap(), y.unwrap());
    let verdict = verify(&a.client).await;
    assert_eq!(verdict["entries"].as_i64().unwrap(), admin_writes + messages as i64 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_database_assess_each_operation_once() {
    let Some(db) = FreshDatabase::from_env("tirhub_cli").await else { return };
    let a = Server::start(db.url());
    let b = Server::start(db.url());
    let corridor = seed_corridor(a.client.base(), ADMIN, 4).await;
    let transports = 30;
    drive(&[&a.client, &b.client], &corridor, "XH104", transports, 12).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    for t in 0..transports {
        let reference = format!("XH104{t:06}");
        let (status, view) = a.client.get(ADMIN, &format!("/v1/guarantees/{reference}")).await.unwrap();
        assert_eq!(status, 200, "{view}");
        let view: Value = serde_json::from_str(&view).unwrap();
        let operations = view["transport"]["operations"].as_array().unwrap_or_else(|| panic!("{view}")).len();
        loop {
            let mut seen: Vec<(u64, String, String)> = Vec::new();
            for customs in &corridor.customs {
                let path = format!("/v1/risk/assessments/{reference}");
                let (status, body) = b.client.get(&customs.token, &path).await.unwrap();
                if status == 403 {
                    continue; // off this transport's itinerary
                }
                assert_eq!(status, 200, "{body}");
                for item in serde_json::from_str::<Value>(&body).unwrap()["items"].as_array().unwrap() {
                    let key = (
                        item["operation"].as_u64().unwrap(),
                        customs.country.clone(),
                        item["trigger"].as_str().unwrap().to_owned(),
                    );
                    assert!(!seen.contains(&key), "{reference}: {key:?} assessed twice");
                    seen.push(key);
                }
            }
            let assessed = (1..=operations as u64).filter(|op| seen.iter().any(|(o, _, _)| o == op)).count();
            if assessed == operations {
                break;
            }
            assert!(Instant::now() < deadline, "{reference}: {assessed} of {operations} operations assessed: {seen:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(verify(&a.client).await["ok"], true);
}

fn bench_report(extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["bench", "--transports", "24", "--concurrency", "6", "--json"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("bench prints one JSON object")
}

fn assert_bench_report(report: &Value, backend: &str) {
    assert_eq!(report["backend"], backend);
    assert_eq!(report["transports"], 24);
    let messages = report["messages"].as_u64().unwrap();
    // Each transport: E1, E9, I1, I7, then I9, I11 and I13 per TIR operation (2 to 6),
    // an I17 ending it early now and then, an X1 now and then.
    assert!((24 * 8..=24 * 23).contains(&messages), "{messages} messages");
    let per_transport = report["messages_per_transport"].as_f64().unwrap();
    assert!((per_transport - messages as f64 / 24.0).abs() < 0.01, "{per_transport}");
    assert!(report["request_bytes_per_transport"].as_u64().unwrap() > 1000);
    assert_eq!(report["durable"], true);
    assert_eq!(report["journal_ok"], true);
    assert!(report["journal_entries"].as_u64().unwrap() >= messages);
    for key in ["p50", "p90", "p99", "max"] {
        assert!(report["latency_ms"][key].as_f64().unwrap() > 0.0, "latency {key}");
    }
    let (rate, ceiling, ratio) = (
        report["messages_per_s"].as_f64().unwrap(),
        report["ceiling_rps"].as_f64().unwrap(),
        report["ratio"].as_f64().unwrap(),
    );
    assert!(rate > 0.0 && ceiling > 0.0);
    assert!((ratio - rate / ceiling).abs() < 0.01, "ratio {ratio} is not {rate} / {ceiling}");
    assert!(report["db_bytes_per_transport"].as_u64().unwrap() > 0);
}

#[test]
fn bench_reports_throughput_latency_and_the_ceiling_on_sqlite() {
    assert_bench_report(&bench_report(&[]), "sqlite");
    let open_loop = bench_report(&["--rate", "400"]);
    assert_eq!(open_loop["rate"], 400.0);
    assert_bench_report(&open_loop, "sqlite");
}

#[test]
fn bench_reports_on_a_fresh_postgres_database() {
    let Ok(url) = std::env::var(tir_testkit::DATABASE_URL_VAR) else {
        eprintln!("skipped: {} not set", tir_testkit::DATABASE_URL_VAR);
        return;
    };
    assert_bench_report(&bench_report(&["--db", &url]), "postgres");
}

#[test]
fn bench_rejects_nonsense_options() {
    for args in
        [&["--transports", "0"][..], &["--rate", "-5"], &["--db", "sqlite://x.db"], &["--transports", "1000001"]]
    {
        let out = Command::new(env!("CARGO_BIN_EXE_tirhub")).arg("bench").args(args).output().unwrap();
        assert!(!out.status.success(), "bench {args:?} succeeded");
        assert!(!out.stderr.is_empty());
    }
}

/// SIGKILL in the middle of a load, then a restart: every message that was
/// answered 200 before the kill must still be there (its replay answers the
/// same bytes), and the journal must verify.
async fn killed_mid_load_loses_no_acknowledged_message(url: &str, prefix: &str) {
    let server = Server::start(url);
    let corridor = seed_corridor(server.client.base(), ADMIN, 4).await;
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let scripts: Vec<Vec<(String, Value)>> =
        (0..200).map(|t| full_transport(&corridor, &format!("{prefix}{t:06}"), &[0, 1, 2, 3])).collect();
    let client = server.client.clone();
    let load = {
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            stream::iter(scripts)
                .for_each_concurrent(32, |script| {
                    let (client, acknowledged) = (client.clone(), acknowledged.clone());
                    async move {
                        for (token, message) in script {
                            match client.send(&token, &message).await {
                                Ok((200, body)) => acknowledged.lock().unwrap().push((token, message, body)),
                                // The server died under this request: the transport stops here.
                                _ => return,
                            }
                        }
                    }
                })
                .await
        })
    };
    // Kill once enough messages were answered, whatever the machine's speed; the load is
    // 3,200 messages (KZ, RU, BY, LT: four operations), so it is still running then.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 100 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    load.await.unwrap();
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    assert!(acknowledged.len() > 50, "the kill came too early to prove anything: {} answers", acknowledged.len());
    drop(server);

    let server = Server::start(url);
    for (token, message, body) in &acknowledged {
        let replay = server.client.send(token, message).await.unwrap();
        assert_eq!(&replay, &(200, body.clone()), "{} {} lost", message["type"], message["message_id"]);
    }
    let verdict = verify(&server.client).await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    eprintln!("{} acknowledged messages all survived the kill", acknowledged.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_mid_load_loses_no_acknowledged_message() {
    let db = temp_db();
    killed_mid_load_loses_no_acknowledged_message(db.url(), "XH104").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_load_loses_no_acknowledged_message() {
    let Some(db) = FreshDatabase::from_env("tirhub_cli").await else { return };
    killed_mid_load_loses_no_acknowledged_message(db.url(), "XH105").await;
}

fn tirhub(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tirhub")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A backup taken while transports are being driven is consistent (its
/// journal verifies), restores into place, and serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_and_serves() {
    let live = temp_db();
    let server = Server::start(live.url());
    let corridor = seed_corridor(server.client.base(), ADMIN, 5).await;
    let copies = temp_db();
    let copy = format!("{}.backup", copies.url().trim_start_matches("sqlite://"));
    let servers = [&server.client];
    let (driving, backed_up) = tokio::join!(drive(&servers, &corridor, "XH105", 40, 8), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::task::spawn_blocking({
            let (url, copy) = (live.url().to_owned(), copy.clone());
            move || tirhub(&["backup", "--db", &url, "--out", &copy])
        })
        .await
        .unwrap()
    });
    assert!(driving > 0);
    let (ok, text) = backed_up;
    assert!(ok && text.contains("journal intact"), "{text}");
    let (ok, again) = tirhub(&["backup", "--db", live.url(), "--out", &copy]);
    assert!(!ok && again.contains("never overwrites"), "{again}");
    drop(server);

    let restored = format!("sqlite://{}.restored", copy);
    let (ok, text) = tirhub(&["restore", "--from", &copy, "--db", &restored]);
    assert!(ok && text.contains("journal intact"), "{text}");
    let (ok, text) = tirhub(&["restore", "--from", &copy, "--db", &restored]);
    assert!(!ok && text.contains("--force"), "an existing database is not replaced silently: {text}");
    let (ok, text) = tirhub(&["audit", "verify", "--db", &restored]);
    assert!(ok, "{text}");

    // The restored database serves the journal the backup held, entry for entry.
    let entries: i64 = text.split(" entries").next().and_then(|t| t.rsplit(' ').next()).unwrap().parse().unwrap();
    // Without the assessor: it would assess the feed items the copy holds unassessed, adding entries.
    let server = Server::start_with(&restored, &["--no-rate-limits", "--no-risk"]);
    let verdict = verify(&server.client).await;
    assert_eq!((verdict["ok"].as_bool(), verdict["entries"].as_i64()), (Some(true), Some(entries)), "{verdict}");
    let (ok, text) = tirhub(&["backup", "--db", "postgres://postgres@127.0.0.1/none", "--out", "/tmp/x"]);
    assert!(!ok && text.contains("pg_dump"), "{text}");
}

/// `tirhub audit verify` with its arguments; (exit code, stdout, stderr).
fn audit(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tirhub")).arg("audit").arg("verify").args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

async fn add_parties(store: &dyn tir_store::Store, from: usize, count: usize) {
    for i in from..from + count {
        let party = tir_store::NewParty {
            id: format!("gc_{i}"),
            kind: tir_model::party::PartyKind::GuaranteeChain,
            name: format!("Chain {i}"),
            country: None,
            tir_id: None,
            token_hash: tir_store::token::hash(&format!("token {i}")),
        };
        store.create_party(party).await.unwrap();
    }
}

/// Signs the head now and keeps it in `dir/name` as the route answers it.
async fn keep_head(store: &dyn tir_store::Store, dir: &std::path::Path, name: &str) -> (std::path::PathBuf, Value) {
    let reply = store.sign_head(Duration::ZERO).await.unwrap();
    assert_eq!(reply.status, 201, "{}", reply.body);
    let path = dir.join(name);
    std::fs::write(&path, &reply.body).unwrap();
    (path, serde_json::from_str(&reply.body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_head_verifies_after_appends_and_rotation_and_fails_once_history_is_rewritten() {
    let db = temp_db();
    let (path, url) = (db.path(), db.url());
    let dir = path.parent().unwrap();
    let store = tir_store::open(url).await.unwrap();
    add_parties(store.as_ref(), 0, 6).await;
    let (early, early_head) = keep_head(store.as_ref(), dir, "early.json").await;
    assert_eq!(early_head["entries"], 6);
    add_parties(store.as_ref(), 6, 3).await;
    let (_, late_head) = keep_head(store.as_ref(), dir, "late.json").await;
    assert_eq!(late_head["entries"], 9);
    drop(store);
    let early = early.to_str().unwrap();

    // History extended, not rewritten: the early head still verifies.
    let (code, stdout, stderr) = audit(&["--db", url, "--head", early]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["entries"], 9);
    assert!(stderr.contains("kept head verified"), "{stderr}");

    // A new key: heads signed with the retired one still verify.
    let rotated = Command::new(env!("CARGO_BIN_EXE_tirhub")).args(["keys", "rotate", "--db", url]).output().unwrap();
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let rotation: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    assert_eq!(rotation["retired"]["key_id"], early_head["key_id"]);
    assert_ne!(rotation["current"]["key_id"], early_head["key_id"]);
    assert!(!String::from_utf8_lossy(&rotated.stdout).contains("private"));
    let (code, _, stderr) = audit(&["--db", url, "--head", early]);
    assert_eq!(code, Some(0), "{stderr}");

    // A forged signature.
    let mut forged = early_head.clone();
    let signature = forged["signature"].as_str().unwrap();
    let flipped = if signature.starts_with('0') { "1" } else { "0" };
    forged["signature"] = Value::from(format!("{flipped}{}", &signature[1..]));
    let forged_path = dir.join("forged.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let (code, _, stderr) = audit(&["--db", url, "--head", forged_path.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("kept head FAILED: its signature"), "{stderr}");
    // Another count under the same signature.
    forged = early_head.clone();
    forged["entries"] = Value::from(5);
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let (code, _, stderr) = audit(&["--db", url, "--head", forged_path.to_str().unwrap()]);
    assert_eq!((code, stderr.contains("does not verify")), (Some(1), true), "{stderr}");

    // An entry before the head changed: the chain names it.
    let conn = rusqlite::Connection::open(path).unwrap();
    assert_eq!(conn.execute("UPDATE journal SET body = body || ' ' WHERE seq = 3", []).unwrap(), 1);
    let (code, _, stderr) = audit(&["--db", url, "--head", early]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("journal BROKEN at entry 3"), "{stderr}");
    // The head's own entry rewritten (its hash recomputed by whoever changed it): the head names it.
    assert_eq!(conn.execute("UPDATE journal SET hash = ?1 WHERE seq = 6", ["ab".repeat(32)]).unwrap(), 1);
    let (code, _, stderr) = audit(&["--db", url, "--head", early]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("kept head FAILED: entry 6 has hash abab"), "{stderr}");
    // Cut short below the head.
    assert_eq!(conn.execute("DELETE FROM journal WHERE seq >= 6", []).unwrap(), 4);
    drop(conn);
    let (code, _, stderr) = audit(&["--db", url, "--head", early]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("entry 6 is no longer in the journal"), "{stderr}");
}

#[test]
fn audit_verify_with_an_unreadable_head_says_so() {
    let db = temp_db();
    let missing = db.path().with_file_name("missing.json");
    let (code, _, stderr) = audit(&["--db", db.url(), "--head", missing.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot read the head"), "{stderr}");
    let not_a_head = db.path().with_file_name("not-a-head.json");
    std::fs::write(&not_a_head, r#"{"entries": 3}"#).unwrap();
    let (code, _, stderr) = audit(&["--db", db.url(), "--head", not_a_head.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no text field \"head\""), "{stderr}");
}

/// One request over a fresh connection: the answer's head and body as text.
fn raw_get(base: &str, path: &str) -> String {
    use std::io::Read;
    let addr = base.strip_prefix("http://").expect("an http base");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: tirhub\r\nConnection: close\r\n\r\n");
    std::io::Write::write_all(&mut stream, request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    answer
}

#[test]
fn serve_has_the_console_under_slash_console_beside_the_api() {
    let db = temp_db();
    let (mut child, base) = support::spawn_serve_with(db.url(), ADMIN, &["--console-secure-cookies"]);
    let page = raw_get(&base, "/console/sign-in");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.to_ascii_lowercase().contains("content-type: text/html"), "{page}");
    assert!(page.contains("name=\"token\""), "{page}");
    assert!(page.contains("; Secure"), "the flag reaches the console's cookies: {page}");
    assert!(raw_get(&base, "/console/arrivals").starts_with("HTTP/1.1 303"), "no session: to the sign-in form");
    assert!(raw_get(&base, "/health").starts_with("HTTP/1.1 200"), "the API beside it");
    let _ = child.kill();
    let _ = child.wait();
}

/// `tirhub audit verify` counts the holders' signatures it checked, and
/// `tirhub audit message` shows one signed declaration with what proves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_checks_holder_signatures_and_shows_one_with_its_proof() {
    use ed25519_dalek::Signer;
    use tir_testkit::server::{Corridor, HOLDER, Trip, encode, message};

    let mut app = tir_testkit::server::spawn_app().await;
    let c = Corridor::seed(&app).await;
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let public: String = key.verifying_key().as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let path = format!("/v1/holders/{}/signing-key", encode(HOLDER));
    let body = json!({"public_key": public}).to_string();
    let registered = app.call(reqwest::Method::PUT, &path, Some(&c.holder), Some(body.into_bytes())).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let key_id = registered.json()["key_id"].as_str().unwrap().to_owned();
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    let e9 = serde_json::to_string_pretty(&message(
        "E9",
        &trip.reference,
        json!({"declaration": tir_testkit::server::declaration()}),
    ))
    .unwrap();
    let message_id = serde_json::from_str::<Value>(&e9).unwrap()["message_id"].as_str().unwrap().to_owned();
    let signature: String = key.sign(e9.as_bytes()).to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let header = format!("keyid={key_id}, ed25519={signature}");
    let bearer = format!("Bearer {}", c.holder);
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
        ("tirhub-holder-signature", &header),
    ];
    let sent =
        app.call_with_headers(reqwest::Method::POST, "/v1/messages", &headers, Some(e9.clone().into_bytes())).await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    app.stop().await;
    let url = app.db_url().to_owned();

    let (code, stdout, stderr) = audit(&["--db", &url]);
    assert_eq!(code, Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((report["ok"].as_bool(), report["holder_signatures"].as_i64()), (Some(true), Some(1)), "{report}");
    assert!(stderr.contains("1 holder signatures verified"), "{stderr}");

    let dir = tempdir_path("audit-message");
    let body_file = dir.join("body.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["audit", "message", "--db", &url, "--message-id", &message_id, "--body-out"])
        .arg(&body_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["signed_body"], e9.as_str());
    assert_eq!((shown["key_id"].as_str(), shown["public_key"].as_str()), (Some(&*key_id), Some(&*public)));
    assert_eq!((shown["signature"].as_str(), shown["verified"].as_bool()), (Some(&*signature), Some(true)));
    assert_eq!(std::fs::read(&body_file).unwrap(), e9.as_bytes(), "the bytes as sent");

    let missing = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["audit", "message", "--db", &url, "--message-id", "no-such-message"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let other_sender = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["audit", "message", "--db", &url, "--message-id", &message_id, "--sender", "hol_nobody"])
        .output()
        .unwrap();
    assert_eq!(other_sender.status.code(), Some(2));
    let sender = shown["sender"].as_str().unwrap();
    let by_sender = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["audit", "message", "--db", &url, "--message-id", &message_id, "--sender", sender])
        .output()
        .unwrap();
    assert!(by_sender.status.success());
    let _ = std::fs::remove_dir_all(dir);
}

/// Output into a pipe whose reader is gone (`| head`) ends quietly, as a
/// Unix tool killed by SIGPIPE would (status 141), not with a panic.
#[test]
fn output_into_a_closed_pipe_ends_without_a_panic() {
    let dir = tempdir_path("closed-pipe");
    let csv = dir.join("declarations.csv");
    let csv = csv.to_str().unwrap();
    let generated = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["risk", "generate", "--rows", "3000", "--out", csv])
        .output()
        .unwrap();
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["risk", "evaluate", "--data", csv, "--test-from", "2014-01-01"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes before the report is computed, so its first line fails.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempdir_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tirhub-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `tirhub serve --tls-cert --tls-key` answers over HTTPS (certificates made
/// here, written to the test's directory), and `--client-ca` binds parties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_tls_answers_over_https_and_with_a_client_ca_checks_bound_parties() {
    use tir_testkit::tls::{Https, Pki};

    let db = temp_db();
    let pki = Pki::new();
    let file = |name: &str, pem: &str| {
        let path = db.dir().join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let (cert, key, ca) = (
        file("server.pem", &pki.server_cert_pem),
        file("server.key", &pki.server_key_pem),
        file("ca.pem", &pki.ca_pem),
    );
    let (child, base) = support::spawn_serve_with(db.url(), ADMIN, &["--tls-cert", &cert, "--tls-key", &key]);
    let server = Server { child, client: ExchangeClient::new(&base) };
    let addr = base.strip_prefix("https://").unwrap_or_else(|| panic!("not https: {base}")).parse().unwrap();
    let https = Https::new(addr, &pki.ca_pem, None);
    let (status, health) = https.request("GET", "/health", None, None).await.unwrap();
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")), "{health}");
    let (status, verdict) = https.request("GET", "/v1/admin/journal/verify", Some(ADMIN), None).await.unwrap();
    assert_eq!((status, verdict["ok"].as_bool()), (200, Some(true)), "{verdict}");
    server.stop();

    let db = temp_db();
    let extra = ["--tls-cert", &cert, "--tls-key", &key, "--client-ca", &ca];
    let (child, base) = support::spawn_serve_with(db.url(), ADMIN, &extra);
    let server = Server { child, client: ExchangeClient::new(&base) };
    let addr = base.strip_prefix("https://").unwrap().parse().unwrap();
    let body = json!({"kind": "customs", "name": "Customs of LT", "country": "LT"});
    let (status, created) = Https::new(addr, &pki.ca_pem, None)
        .request("POST", "/v1/admin/parties", Some(ADMIN), Some(&body))
        .await
        .unwrap();
    assert_eq!(status, 201, "{created}");
    let (id, token) = (created["id"].as_str().unwrap(), created["token"].as_str().unwrap());
    let own = pki.client("customs LT");
    let path = format!("/v1/admin/parties/{id}/certificate");
    let binding = json!({"certificate_sha256": own.sha256});
    let (status, bound) =
        Https::new(addr, &pki.ca_pem, None).request("PUT", &path, Some(ADMIN), Some(&binding)).await.unwrap();
    assert_eq!(status, 200, "{bound}");
    let with_cert = Https::new(addr, &pki.ca_pem, Some(&own));
    assert_eq!(with_cert.request("GET", "/v1/notifications", Some(token), None).await.unwrap().0, 200);
    let (status, refused) =
        Https::new(addr, &pki.ca_pem, None).request("GET", "/v1/notifications", Some(token), None).await.unwrap();
    assert_eq!((status, refused["error"]["code"].as_u64()), (401, Some(390)), "{refused}");
    server.stop();
}

#[test]
fn serve_and_demo_with_a_missing_or_bad_tls_file_say_which_and_why() {
    let db = temp_db();
    let pki = tir_testkit::tls::Pki::new();
    let cert = db.dir().join("server.pem");
    std::fs::write(&cert, &pki.server_cert_pem).unwrap();
    let missing = db.dir().join("no-such.key");
    let cert = cert.display().to_string();
    let missing = missing.display().to_string();
    let demo_file = db.dir().join("demo.db").display().to_string();
    let serve = ["serve", "--db", db.url(), "--listen", "127.0.0.1:0", "--admin-token", ADMIN];
    let demo = ["demo", "--file", &demo_file, "--listen", "127.0.0.1:0"];
    for (tls, says) in [
        (vec!["--tls-cert", &cert, "--tls-key", &missing], vec![missing.as_str(), "cannot read", "No such file"]),
        // The certificate given as the key.
        (vec!["--tls-cert", &cert, "--tls-key", &cert], vec![cert.as_str(), "no PEM private key"]),
        (vec!["--tls-cert", &cert], vec!["--tls-key"]),
        (vec!["--client-ca", &cert], vec!["--tls-cert"]),
    ] {
        for command in [&serve[..], &demo[..]] {
            let out = Command::new(env!("CARGO_BIN_EXE_tirhub")).args(command).args(&tls).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{} {tls:?} was accepted", command[0]);
            assert!(!stderr.contains("panicked"), "{tls:?}: {stderr}");
            for word in &says {
                assert!(stderr.contains(word), "{} {tls:?}: {word:?} not in {stderr}", command[0]);
            }
        }
    }
    // The push CA bundle (serve only): a missing file, and a key where certificates belong.
    let key = db.dir().join("server.key");
    std::fs::write(&key, &pki.server_key_pem).unwrap();
    let key = key.display().to_string();
    for (file, says) in [(&missing, "cannot read"), (&key, "no CA certificate in it")] {
        let out = Command::new(env!("CARGO_BIN_EXE_tirhub")).args(serve).args(["--push-ca", file]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--push-ca {file} was accepted");
        assert!(
            stderr.contains("push CA bundle") && stderr.contains(file.as_str()) && stderr.contains(says),
            "{stderr}"
        );
    }
}

/// A TCP proxy between tirhub and PostgreSQL that can cut every connection
/// through it and refuse new ones for a while: to the client, what a
/// PostgreSQL restart looks like, without restarting the server other tests share.
struct PgProxy {
    addr: std::net::SocketAddr,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl PgProxy {
    async fn start(upstream: String) -> PgProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::<tokio::task::AbortHandle>::new()));
        let (is_down, all) = (down.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if is_down.load(std::sync::atomic::Ordering::SeqCst) {
                    // The server is "restarting": the connection ends before its startup message.
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                all.lock().unwrap().push(link.abort_handle());
            }
        });
        PgProxy { addr, down, links, accept }
    }

    /// Cuts every connection and refuses new ones until `up`.
    fn cut(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn up(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// `url` with its host and port replaced by `addr`, and the host:port it named.
fn through_proxy(url: &str, addr: std::net::SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    let upstream = if host.contains(':') { host.to_owned() } else { format!("{host}:5432") };
    (format!("{scheme}://{user}{addr}/{path}"), upstream)
}

/// PostgreSQL "restarted" twice under load (every connection cut, new ones
/// refused for a second): messages in flight get 503 and are sent again;
/// every message answered 200 is in the journal once, the journal verifies,
/// and the server serves again once the database is back (the pool reconnects).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_no_acknowledged_message() {
    let Some(db) = FreshDatabase::from_env("tirhub_cli").await else {
        eprintln!("skipped: TIRHUB_TEST_DATABASE_URL is not set");
        return;
    };
    let proxy = PgProxy::start(through_proxy(db.url(), "127.0.0.1:1".parse().unwrap()).1).await;
    let (proxied, _) = through_proxy(db.url(), proxy.addr);
    let server = Server::start(&proxied);
    let corridor = seed_corridor(server.client.base(), ADMIN, 4).await;
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let unavailable = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let scripts: Vec<Vec<(String, Value)>> =
        (0..150).map(|t| full_transport(&corridor, &format!("XH106{t:06}"), &[0, 1, 2, 3])).collect();
    let client = server.client.clone();
    let load = {
        let (acknowledged, unavailable) = (acknowledged.clone(), unavailable.clone());
        tokio::spawn(async move {
            stream::iter(scripts)
                .for_each_concurrent(32, |script| {
                    let (client, acknowledged, unavailable) =
                        (client.clone(), acknowledged.clone(), unavailable.clone());
                    async move {
                        for (token, message) in script {
                            let deadline = Instant::now() + Duration::from_secs(60);
                            loop {
                                let (status, body) = client.send(&token, &message).await.expect("tirhub answers");
                                if status == 200 {
                                    acknowledged.lock().unwrap().push((token.clone(), message.clone(), body));
                                    break;
                                }
                                // The store is unavailable while the database is away: send it again.
                                assert_eq!(status, 503, "{} {}: {body}", message["type"], message["message_id"]);
                                let error: Value = serde_json::from_str(&body).unwrap();
                                assert_eq!(error["error"]["code"], 400, "{body}");
                                unavailable.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                assert!(Instant::now() < deadline, "no recovery within 60 s");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                })
                .await
        })
    };
    let acknowledged_count = || acknowledged.lock().unwrap().len();
    let mut at_cut = Vec::new();
    for threshold in [300, 1_000] {
        let deadline = Instant::now() + Duration::from_secs(120);
        while acknowledged_count() < threshold && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        at_cut.push(acknowledged_count());
        proxy.cut();
        tokio::time::sleep(Duration::from_secs(1)).await;
        proxy.up();
    }
    load.await.expect("every message is accepted in the end");
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    let total = 150 * 16;
    assert_eq!(acknowledged.len(), total, "every message acknowledged once the database came back");
    assert!(at_cut[1] < total, "the second cut came after the load: {at_cut:?}");
    let unavailable = unavailable.load(std::sync::atomic::Ordering::SeqCst);

    // Read the journal straight from the database, not through the proxy.
    let store = tir_store::open(db.url()).await.unwrap();
    let journal = store.journal(1, 1_000_000).await.unwrap();
    let mut journaled = std::collections::HashMap::<&str, usize>::new();
    for entry in &journal {
        *journaled.entry(entry.message_id.as_str()).or_default() += 1;
    }
    for (_, message, _) in &acknowledged {
        let id = message["message_id"].as_str().unwrap();
        assert_eq!(journaled.get(id), Some(&1), "{} {id} is not in the journal once", message["type"]);
    }
    let verdict = store.verify_journal().await.unwrap();
    assert!(verdict.ok, "{verdict:?}");
    // Replays answer what was acknowledged, through the reconnected pool.
    for (token, message, body) in acknowledged.iter().step_by(97) {
        let replay = server.client.send(token, message).await.unwrap();
        assert_eq!(&replay, &(200, body.clone()), "{} {}", message["type"], message["message_id"]);
    }
    assert_eq!(verify(&server.client).await["ok"], true);
    eprintln!(
        "PostgreSQL cut twice (after {at_cut:?} answers): {} acknowledged, {} in the journal of {} entries, \
         {unavailable} answers 503 sent again, 0 lost",
        acknowledged.len(),
        acknowledged.len(),
        journal.len()
    );
}

/// `tirhub demo` is alive: within a minute of starting, the customs of
/// Lithuania it printed a token for have transports in their feed, played by
/// the background traffic, and the console's sign-in page answers.
#[tokio::test]
async fn the_demo_plays_traffic_lithuanian_customs_see_within_a_minute() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let db = temp_db();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tirhub"))
        .args(["demo", "--listen", "127.0.0.1:0", "--traffic-rate", "20"])
        .arg("--file")
        .arg(db.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tirhub demo starts");
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().expect("piped stdout");
    let _child = Kill(child);
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("a line of stdout");
            let done = line.starts_with("live traffic: ");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    let find = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("no line {prefix:?} in {lines:#?}"))
    };
    let base = find("listening on ");
    let console = find("the console: ");
    assert!(console.starts_with(&format!("{base}/console/sign-in")), "{console}");
    let customs_lt = find("sign in as customs LT: ");
    for role in ["sign in as holder ", "sign in as guarantee chain ", "sign in as admin: "] {
        assert!(lines.iter().any(|l| l.trim().starts_with(role)), "no {role:?} in {lines:#?}");
    }
    let client = ExchangeClient::new(&base);
    let started = Instant::now();
    let items = loop {
        let (status, body) = client.get(&customs_lt, "/v1/notifications?limit=10").await.unwrap();
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if !items.is_empty() {
            break items;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no transport for LT customs within a minute");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let reference = items[0]["guarantee_reference"].as_str().expect("a guarantee reference");
    let (status, body) = client.get(&customs_lt, &format!("/v1/guarantees/{reference}")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let guarantee: Value = serde_json::from_str(&body).unwrap();
    let itinerary: Vec<&str> =
        guarantee["transport"]["itinerary"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(itinerary.contains(&"LT"), "{itinerary:?}");
    // The sign-in page needs no token; the bearer header is ignored there.
    let (status, page) = client.get("-", "/console/sign-in").await.unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("name=\"token\""), "{page}");
}

/// `tirhub document verify` on a document the server made: 0 with what it
/// proves; one changed byte of its token, 1; no token at all, 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_verify_checks_the_token_of_a_served_document() {
    use tir_testkit::server::{Corridor, Trip, spawn_app};
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.up_to_recorded().await;
    let url = format!("{}{}/accompanying-document", app.base, trip.path());
    let pdf = app.client.get(url).bearer_auth(&c.holder).send().await.unwrap().bytes().await.unwrap().to_vec();
    let keys = app.client.get(format!("{}/v1/keys", app.base)).send().await.unwrap().bytes().await.unwrap();
    let dir = std::env::temp_dir().join(format!("tirhub-document-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pdf_path, keys_path) = (dir.join("document.pdf"), dir.join("keys.json"));
    std::fs::write(&pdf_path, &pdf).unwrap();
    std::fs::write(&keys_path, &keys).unwrap();
    let verify = |input: &str| {
        Command::new(env!("CARGO_BIN_EXE_tirhub"))
            .args(["document", "verify", input, "--keys", keys_path.to_str().unwrap()])
            .output()
            .unwrap()
    };

    let valid = verify(pdf_path.to_str().unwrap());
    let said = String::from_utf8_lossy(&valid.stdout).into_owned();
    assert_eq!(valid.status.code(), Some(0), "{said}{}", String::from_utf8_lossy(&valid.stderr));
    assert!(said.contains(&format!("proves: guarantee {} had declaration version 1", trip.reference)), "{said}");
    assert!(said.contains("does not prove: that the goods on the vehicle match"), "{said}");

    let token = tir_store::doc_token::find_in(&pdf).expect("the PDF carries its token");
    assert_eq!(verify(&token).status.code(), Some(0));
    let mut tampered = token.into_bytes();
    let i = tampered.len() - 10;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let invalid = verify(&String::from_utf8(tampered).unwrap());
    assert_eq!(invalid.status.code(), Some(1), "{}", String::from_utf8_lossy(&invalid.stdout));
    assert!(String::from_utf8_lossy(&invalid.stdout).starts_with("invalid:"));

    std::fs::write(dir.join("empty.pdf"), b"%PDF-1.7\n%%EOF\n").unwrap();
    assert_eq!(verify(dir.join("empty.pdf").to_str().unwrap()).status.code(), Some(2));
    assert_eq!(verify("TIR1.not-a-token").status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
