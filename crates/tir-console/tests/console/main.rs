//! The console over HTTP: sessions, CSRF, who may see which page, actions
//! going through the API's path (journal, idempotency), and one walk in a
//! real browser (Debian's chromium and chromedriver; skipped without them).

mod amendments;
mod browser;
mod live;
mod once;
mod riskadmin;

use std::sync::Arc;
use std::time::Duration;

use reqwest::redirect::Policy;
use serde_json::{Value, json};
use tir_testkit::TempSqlite;
use tir_testkit::fixtures::{ADMIN_TOKEN, HOLDER, declaration, encode, message, reference};

/// A server with the console beside the API, over a fresh SQLite file.
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    _db: Arc<TempSqlite>,
}

pub async fn spawn(secure_cookies: bool) -> Server {
    spawn_with(secure_cookies, false).await
}

/// `spawn`, with the risk assessor running beside the routes when `risk`.
pub async fn spawn_with(secure_cookies: bool, risk: bool) -> Server {
    let db = Arc::new(TempSqlite::new("tirhub-console").expect("a test directory"));
    let store = tir_store::open(db.url()).await.expect("open the store");
    serve(store, db, secure_cookies, risk).await
}

/// Two servers over one store, as two behind a load balancer share a database.
pub async fn spawn_two() -> (Server, Server) {
    let db = Arc::new(TempSqlite::new("tirhub-console").expect("a test directory"));
    let store = tir_store::open(db.url()).await.expect("open the store");
    (serve(store.clone(), db.clone(), false, false).await, serve(store, db, false, false).await)
}

async fn serve(store: Arc<dyn tir_store::Store>, db: Arc<TempSqlite>, secure_cookies: bool, risk: bool) -> Server {
    let app = tir_server::App::new(store, ADMIN_TOKEN);
    let app = if risk { app } else { app.without_risk() };
    let console = tir_console::Console::new(app.clone()).with_secure_cookies(secure_cookies);
    let app = app.with_routes(tir_console::router(console));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(tir_server::serve(listener, app, std::future::pending()));
    let client =
        reqwest::Client::builder().redirect(Policy::none()).timeout(Duration::from_secs(30)).build().expect("client");
    Server { base, client, _db: db }
}

/// The parties of the TR → GE → AZ corridor, a customs of a country off it, and a registered guarantee.
pub struct Seeded {
    pub chain: String,
    pub holder: String,
    pub tr: String,
    pub ge: String,
    pub de: String,
    pub reference: String,
}

impl Server {
    pub async fn api(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn party(&self, body: Value) -> String {
        let (status, created) = self.api(reqwest::Method::POST, "/v1/admin/parties", ADMIN_TOKEN, Some(body)).await;
        assert_eq!(status, 201, "{created}");
        created["token"].as_str().expect("a token").to_owned()
    }

    /// The admin seeds everything through the API; the chain registers a guarantee (E1).
    pub async fn seed(&self) -> Seeded {
        use reqwest::Method;
        for (code, roles) in [
            ("TR000100", json!(["departure", "exit"])),
            ("GE000100", json!(["entry", "exit"])),
            ("AZ000200", json!(["entry", "destination"])),
            ("DE000100", json!(["departure", "entry", "exit", "destination"])),
        ] {
            let body = json!({"code": code, "country": &code[..2], "name": format!("Office {code}"), "roles": roles});
            let (status, answer) = self.api(Method::POST, "/v1/admin/offices", ADMIN_TOKEN, Some(body)).await;
            assert_eq!(status, 201, "{answer}");
        }
        let body = json!({"name": "Anatolia Trans", "country": "TR", "status": "authorized"});
        let path = format!("/v1/admin/holders/{}", encode(HOLDER));
        assert_eq!(self.api(Method::PUT, &path, ADMIN_TOKEN, Some(body)).await.0, 200);
        let chain = self.party(json!({"kind": "guarantee_chain", "name": "Chain"})).await;
        let holder = self.party(json!({"kind": "holder", "name": "Anatolia Trans", "tir_id": HOLDER})).await;
        let customs =
            |country: &str| json!({"kind": "customs", "name": format!("Customs {country}"), "country": country});
        let tr = self.party(customs("TR")).await;
        let ge = self.party(customs("GE")).await;
        let _az = self.party(customs("AZ")).await;
        let de = self.party(customs("DE")).await;
        let reference = reference();
        let (status, answer) = self
            .api(Method::POST, "/v1/messages", &chain, Some(message("E1", &reference, json!({"holder": HOLDER}))))
            .await;
        assert_eq!(status, 200, "{answer}");
        Seeded { chain, holder, tr, ge, de, reference }
    }

    /// E9 through the API, as another front end of the holder would send it.
    pub async fn advance_data(&self, seeded: &Seeded) {
        let e9 = message("E9", &seeded.reference, json!({"declaration": declaration()}));
        let (status, answer) = self.api(reqwest::Method::POST, "/v1/messages", &seeded.holder, Some(e9)).await;
        assert_eq!(status, 200, "{answer}");
    }

    pub async fn journal_entries(&self) -> u64 {
        let (status, verdict) = self.api(reqwest::Method::GET, "/v1/admin/journal/verify", ADMIN_TOKEN, None).await;
        assert_eq!((status, &verdict["ok"]), (200, &json!(true)), "{verdict}");
        verdict["entries"].as_u64().expect("entries")
    }

    pub async fn get(&self, path: &str, cookies: &str) -> (u16, String) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if !cookies.is_empty() {
            request = request.header("cookie", cookies);
        }
        let response = request.send().await.expect("GET");
        (response.status().as_u16(), response.text().await.expect("a body"))
    }

    /// A form post: the status, the Location (if any) and the body.
    pub async fn post(&self, path: &str, cookies: &str, form: &[(&str, &str)]) -> (u16, String, String) {
        let mut request = self.client.post(format!("{}{path}", self.base)).form(form);
        if !cookies.is_empty() {
            request = request.header("cookie", cookies);
        }
        let response = request.send().await.expect("POST");
        let status = response.status().as_u16();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        (status, location, response.text().await.expect("a body"))
    }
}

/// The value of the hidden field `name` in the first form whose marker (an
/// id or field) is at or after `after` in the page.
pub fn hidden(page: &str, after: &str, name: &str) -> String {
    let start = page.find(after).unwrap_or_else(|| panic!("{after:?} not in the page:\n{page}"));
    let needle = format!("name=\"{name}\" value=\"");
    let at = page[start..].find(&needle).unwrap_or_else(|| panic!("no hidden {name} after {after:?}")) + start;
    let value = &page[at + needle.len()..];
    value[..value.find('"').expect("a closing quote")].to_owned()
}

/// Signs in with `token`: the session cookie's `Set-Cookie` line and where the answer sends the browser.
pub async fn sign_in(server: &Server, token: &str) -> (String, String) {
    let response = server.client.get(format!("{}/console/sign-in", server.base)).send().await.expect("GET sign-in");
    let pre = set_cookie(&response, "tirhub_sign_in").expect("a sign-in cookie");
    let page = response.text().await.expect("a page");
    let csrf = hidden(&page, "<form", "csrf");
    let pre_value = cookie_value(&pre);
    let response = server
        .client
        .post(format!("{}/console/sign-in", server.base))
        .header("cookie", format!("tirhub_sign_in={pre_value}"))
        .form(&[("csrf", csrf.as_str()), ("token", token)])
        .send()
        .await
        .expect("POST sign-in");
    assert_eq!(response.status().as_u16(), 303, "signed in");
    let location = response.headers()["location"].to_str().expect("a location").to_owned();
    (set_cookie(&response, "tirhub_session").expect("a session cookie"), location)
}

pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// `name=value` of a `Set-Cookie` line.
pub fn cookie_value(line: &str) -> String {
    let pair = line.split(';').next().expect("a pair");
    pair.split_once('=').expect("name=value").1.to_owned()
}

/// The `Cookie` header a browser would send for this session.
pub async fn session(server: &Server, token: &str) -> String {
    let (line, _) = sign_in(server, token).await;
    format!("tirhub_session={}", cookie_value(&line))
}

#[tokio::test]
async fn sign_in_sets_an_http_only_strict_cookie_and_customs_land_on_their_arrivals() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    let (line, location) = sign_in(&server, &seeded.tr).await;
    assert_eq!(location, "/console/arrivals");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(line.contains(flag), "{flag} missing: {line}");
    }
    assert!(!line.contains("Secure"), "plain HTTP: no Secure flag: {line}");
    assert!(!line.contains(&seeded.tr), "the party's token stays out of the cookie");
    let cookies = format!("tirhub_session={}", cookie_value(&line));
    let (status, page) = server.get(&location, &cookies).await;
    assert_eq!(status, 200);
    assert!(page.contains("Arrivals") && page.contains("name=\"viewport\""), "{page}");

    let (_, location) = sign_in(&server, &seeded.holder).await;
    assert_eq!(location, "/console/my", "holders land on their portal");

    // Without a session, a page sends the browser to the sign-in form.
    let (status, _) = server.get("/console/arrivals", "").await;
    assert_eq!(status, 303);

    // Behind TLS the cookie is Secure.
    let tls = spawn(true).await;
    let seeded = tls.seed().await;
    let (line, _) = sign_in(&tls, &seeded.tr).await;
    assert!(line.contains("; Secure"), "{line}");
}

#[tokio::test]
async fn a_session_opened_through_one_server_is_good_on_another_sharing_the_store_until_signed_out_there() {
    let (one, other) = spawn_two().await;
    let seeded = one.seed().await;
    let cookies = session(&one, &seeded.tr).await;
    let (status, page) = other.get("/console/arrivals", &cookies).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Arrivals"), "{page}");
    // Signed out through the other server: the first one no longer knows the session.
    let csrf = hidden(&page, "action=\"/console/sign-out\"", "csrf");
    let (status, location, _) = other.post("/console/sign-out", &cookies, &[("csrf", &csrf)]).await;
    assert_eq!((status, location.as_str()), (303, "/console/sign-in"));
    let (status, _) = one.get("/console/arrivals", &cookies).await;
    assert_eq!(status, 303, "sent to sign in");
}

#[tokio::test]
async fn an_unknown_token_does_not_sign_in_and_a_sign_in_without_its_csrf_token_is_refused() {
    let server = spawn(false).await;
    let response = server.client.get(format!("{}/console/sign-in", server.base)).send().await.unwrap();
    let pre = cookie_value(&set_cookie(&response, "tirhub_sign_in").unwrap());
    let page = response.text().await.unwrap();
    assert!(page.contains("<label for=\"token\">") && page.contains("name=\"token\""), "{page}");
    let csrf = hidden(&page, "<form", "csrf");
    let cookie = format!("tirhub_sign_in={pre}");
    let (status, _, page) =
        server.post("/console/sign-in", &cookie, &[("csrf", &csrf), ("token", "tirhub_nobody")]).await;
    assert_eq!(status, 401);
    assert!(page.contains("unknown or revoked"), "{page}");
    let (status, _, _) = server.post("/console/sign-in", &cookie, &[("token", ADMIN_TOKEN)]).await;
    assert_eq!(status, 403, "no CSRF field");
    let (status, _, _) = server.post("/console/sign-in", "", &[("csrf", &csrf), ("token", ADMIN_TOKEN)]).await;
    assert_eq!(status, 403, "no sign-in cookie to match");
}

#[tokio::test]
async fn a_form_without_or_with_a_wrong_csrf_token_is_refused_and_sends_nothing() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    server.advance_data(&seeded).await;
    let cookies = session(&server, &seeded.tr).await;
    let path = format!("/console/transports/{}", seeded.reference);
    let (status, transport) = server.get(&path, &cookies).await;
    assert_eq!(status, 200, "{transport}");
    let message_id = hidden(&transport, "id=\"action-accept\"", "message_id");
    let entries = server.journal_entries().await;
    let accept = [("message_id", message_id.as_str()), ("action", "accept"), ("office", "TR000100")];
    let (status, _, page) = server.post(&path, &cookies, &accept).await;
    assert_eq!(status, 403, "{page}");
    let mut wrong = accept.to_vec();
    wrong.push(("csrf", "0000"));
    let (status, _, _) = server.post(&path, &cookies, &wrong).await;
    assert_eq!(status, 403);
    assert_eq!(server.journal_entries().await, entries, "nothing was sent");
    // Sign-out is a form too.
    let (status, _, _) = server.post("/console/sign-out", &cookies, &[]).await;
    assert_eq!(status, 403);
    assert_eq!(server.get(&path, &cookies).await.0, 200, "still signed in");
    let csrf = hidden(&transport, "action=\"/console/sign-out\"", "csrf");
    let (status, location, _) = server.post("/console/sign-out", &cookies, &[("csrf", &csrf)]).await;
    assert_eq!((status, location.as_str()), (303, "/console/sign-in"));
    assert_eq!(server.get(&path, &cookies).await.0, 303, "signed out");
}

#[tokio::test]
async fn customs_off_the_itinerary_and_holders_get_the_403_page_not_the_transport() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    server.advance_data(&seeded).await;
    let path = format!("/console/transports/{}", seeded.reference);
    for token in [&seeded.de, &seeded.holder, &seeded.chain] {
        let cookies = session(&server, token).await;
        let (status, page) = server.get(&path, &cookies).await;
        assert_eq!(status, 403, "{page}");
        assert!(!page.contains("Anatolia Export") && !page.contains(SEAL_OF_DECLARATION), "no data: {page}");
    }
    // Nor may they act on it: the POST is refused before any message is built.
    let cookies = session(&server, &seeded.de).await;
    let (_, page) = server.get("/console/arrivals", &cookies).await;
    let csrf = hidden(&page, "action=\"/console/sign-out\"", "csrf");
    let entries = server.journal_entries().await;
    let form = [("csrf", csrf.as_str()), ("message_id", "m-de-1"), ("action", "accept"), ("office", "DE000100")];
    let (status, _, _) = server.post(&path, &cookies, &form).await;
    assert_eq!(status, 403);
    assert_eq!(server.journal_entries().await, entries);
    // A holder on the arrivals page: 403 as well.
    let cookies = session(&server, &seeded.holder).await;
    assert_eq!(server.get("/console/arrivals", &cookies).await.0, 403);
    // The holder sees the transport on the portal's own page.
    let (status, page) = server.get(&format!("/console/my/transports/{}", seeded.reference), &cookies).await;
    assert_eq!(status, 200);
    assert!(page.contains("Anatolia Export") && page.contains("Passenger cars"), "{page}");
}

const SEAL_OF_DECLARATION: &str = tir_testkit::fixtures::SEAL;

#[tokio::test]
async fn a_double_submitted_action_makes_one_journal_entry() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    server.advance_data(&seeded).await;
    let cookies = session(&server, &seeded.tr).await;
    let path = format!("/console/transports/{}", seeded.reference);
    let (_, page) = server.get(&path, &cookies).await;
    let csrf = hidden(&page, "id=\"action-accept\"", "csrf");
    let message_id = hidden(&page, "id=\"action-accept\"", "message_id");
    let form = [("csrf", csrf.as_str()), ("message_id", &message_id), ("action", "accept"), ("office", "TR000100")];
    let entries = server.journal_entries().await;
    let (first, second) = tokio::join!(server.post(&path, &cookies, &form), server.post(&path, &cookies, &form));
    for (status, location, _) in [&first, &second] {
        assert_eq!((*status, location.as_str()), (303, format!("{path}?done=I1").as_str()));
    }
    assert_eq!(server.journal_entries().await, entries + 1, "one I1 in the journal");
    let (_, guarantee) =
        server.api(reqwest::Method::GET, &format!("/v1/guarantees/{}", seeded.reference), ADMIN_TOKEN, None).await;
    assert_eq!(guarantee["state"], "accepted");

    // A refusal shows the API's code on the page: I1 again, with a fresh id, is 2xx.
    let (_, page) = server.get(&format!("{path}?done=I1"), &cookies).await;
    assert!(page.contains("I1 accepted."), "{page}");
    let message_id = hidden(&page, "id=\"action-accept\"", "message_id");
    let form = [("csrf", csrf.as_str()), ("message_id", &message_id), ("action", "accept"), ("office", "TR000100")];
    let (status, _, page) = server.post(&path, &cookies, &form).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("I1 refused: code 2"), "{page}");
}

#[tokio::test]
async fn arrivals_list_the_transports_announced_to_the_country_and_actions_move_them_on() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    server.advance_data(&seeded).await;
    let tr = session(&server, &seeded.tr).await;
    let ge = session(&server, &seeded.ge).await;
    let (_, page) = server.get("/console/arrivals", &tr).await;
    assert!(page.contains(&seeded.reference), "advance data announced to departure: {page}");
    let (_, page) = server.get("/console/arrivals", &ge).await;
    assert!(!page.contains(&seeded.reference), "not yet announced to GE: {page}");

    let path = format!("/console/transports/{}", seeded.reference);
    for (action, kind) in [("accept", "I1"), ("record", "I7"), ("start", "I9")] {
        let (_, page) = server.get(&path, &tr).await;
        let marker = format!("id=\"action-{action}\"");
        let csrf = hidden(&page, &marker, "csrf");
        let message_id = hidden(&page, &marker, "message_id");
        let form = [
            ("csrf", csrf.as_str()),
            ("message_id", &message_id),
            ("action", action),
            ("office", "TR000100"),
            ("seals", SEAL_OF_DECLARATION),
        ];
        let (status, location, page) = server.post(&path, &tr, &form).await;
        assert_eq!((status, location), (303, format!("{path}?done={kind}")), "{page}");
    }
    let (_, page) = server.get(&path, &tr).await;
    assert!(page.contains("started") && page.contains("Passenger cars"), "{page}");
    assert!(page.contains("spark-ignition"), "the HS 2022 description of 870323: {page}");
    // The declaration recorded is announced to GE, whose operation comes next after TR's.
    let (_, page) = server.get("/console/arrivals", &ge).await;
    assert!(page.contains(&seeded.reference) && page.contains("operation 2"), "{page}");
    let (status, page) = server.get(&path, &ge).await;
    assert_eq!(status, 200);
    assert!(page.contains("Not assessed by your administration"), "{page}");

    // TR's operation ends at its exit office: terminated with a reservation, then discharged.
    for (action, kind) in [("terminate", "I11"), ("discharge", "I13")] {
        let (_, page) = server.get(&path, &tr).await;
        let marker = format!("id=\"action-{action}\"");
        let csrf = hidden(&page, &marker, "csrf");
        let message_id = hidden(&page, &marker, "message_id");
        let form = [
            ("csrf", csrf.as_str()),
            ("message_id", &message_id),
            ("action", action),
            ("office", "TR000100"),
            ("seals", SEAL_OF_DECLARATION),
            ("reservations", "Tarpaulin torn\n"),
        ];
        let (status, location, page) = server.post(&path, &tr, &form).await;
        assert_eq!((status, location), (303, format!("{path}?done={kind}")), "{page}");
    }
    let (_, guarantee) =
        server.api(reqwest::Method::GET, &format!("/v1/guarantees/{}", seeded.reference), ADMIN_TOKEN, None).await;
    let first = &guarantee["transport"]["operations"][0];
    assert_eq!(
        (&first["state"], &first["reservations"]),
        (&json!("discharged"), &json!(["Tarpaulin torn"])),
        "{guarantee}"
    );
    // Nothing is left for TR: the transport leaves its arrivals; GE's operation is next.
    let (_, page) = server.get("/console/arrivals", &tr).await;
    assert!(!page.contains(&seeded.reference), "{page}");
    let (_, page) = server.get("/console/arrivals", &ge).await;
    assert!(page.contains("operation 2 next"), "{page}");
    // GE refuses to start it (I17) from the same page.
    let (_, page) = server.get(&path, &ge).await;
    let csrf = hidden(&page, "id=\"action-refuse\"", "csrf");
    let message_id = hidden(&page, "id=\"action-refuse\"", "message_id");
    assert!(
        page.contains("id=\"refuse-office\" name=\"office\" value=\"GE000100\""),
        "the declared entry office: {page}"
    );
    let form = [
        ("csrf", csrf.as_str()),
        ("message_id", &message_id),
        ("action", "refuse"),
        ("office", "GE000100"),
        ("reason", "Vehicle not approved"),
    ];
    let (status, location, page) = server.post(&path, &ge, &form).await;
    assert_eq!((status, location), (303, format!("{path}?done=I17")), "{page}");
    let (_, page) = server.get(&path, &ge).await;
    assert!(page.contains("refused: Vehicle not approved"), "{page}");
    assert!(!server.get("/console/arrivals", &ge).await.1.contains(&seeded.reference), "nothing left for GE");
}

#[tokio::test]
async fn arrivals_and_the_transport_page_show_the_lane_score_and_reasons_of_the_assessment() {
    let server = spawn_with(false, true).await;
    let seeded = server.seed().await;
    server.advance_data(&seeded).await;
    let tr = session(&server, &seeded.tr).await;
    // The assessor answers the advance data's feed item beside the routes.
    let mut page = String::new();
    for _ in 0..100 {
        page = server.get("/console/arrivals", &tr).await.1;
        if page.contains("class=\"lane lane-") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(page.contains("class=\"lane lane-") && !page.contains("not assessed"), "{page}");
    let (_, transport) = server.get(&format!("/console/transports/{}", seeded.reference), &tr).await;
    assert!(transport.contains("class=\"lane lane-") && !transport.contains("Not assessed"), "{transport}");
    // TR's journal of the transport holds its assessment's entry.
    assert!(transport.contains("<td>RISK_ASSESSMENT<br>"), "{transport}");
    // Another administration on the itinerary sees the transport, none of TR's assessment,
    // not even its journal entry.
    let ge = session(&server, &seeded.ge).await;
    let (status, page) = server.get(&format!("/console/transports/{}", seeded.reference), &ge).await;
    assert_eq!(status, 200);
    assert!(page.contains("Not assessed by your administration") && !page.contains("class=\"lane lane-"), "{page}");
    assert!(page.contains("<td>E9<br>") && !page.contains("RISK_ASSESSMENT"), "{page}");
}

#[tokio::test]
async fn hs_search_finds_subheadings_by_code_and_by_words_with_their_section() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    let cookies = session(&server, &seeded.holder).await;
    let (status, page) = server.get("/console/hs?q=870323", &cookies).await;
    assert_eq!(status, 200);
    assert!(page.contains("870323") && page.contains("XVII"), "{page}");
    let (_, page) = server.get("/console/hs?q=live+horses", &cookies).await;
    assert!(page.contains("010121") && page.contains("Live animals"), "{page}");
    let (_, page) = server.get("/console/my/advance-data?hs_code=870323", &cookies).await;
    assert!(page.contains("value=\"870323\"") && page.contains("hs-description"), "{page}");
    // Every field has its label.
    let fields = page.matches("<input id=\"").count() + page.matches("<select id=\"").count();
    let labels = page.matches("<label for=\"").count();
    assert_eq!(fields, labels, "{page}");
    // Without a code yet, the form opens with the type-ahead search: a plain
    // GET form to /console/hs, which htmx also sends to the partial.
    let (_, page) = server.get("/console/my/advance-data", &cookies).await;
    assert!(page.contains("<details class=\"hs-finder\" open"), "{page}");
    assert!(page.contains("action=\"/console/hs\"") && page.contains("hx-get=\"/console/hs/results\""), "{page}");
    assert!(
        page.contains("hx-trigger=\"keyup changed delay:300ms, search\"") && page.contains("id=\"hs-results\""),
        "{page}"
    );
}

#[tokio::test]
async fn the_hs_partial_answers_the_rows_alone_with_section_and_chapter() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    let cookies = session(&server, &seeded.holder).await;
    let response = server
        .client
        .get(format!("{}/console/hs/results?q=8703", server.base))
        .header("cookie", &cookies)
        .header("hx-request", "true")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let rows = response.text().await.expect("a body");
    assert!(!rows.contains("<html") && !rows.contains("<header"), "only the rows: {rows}");
    assert!(rows.contains("<td class=\"mono\">870323</td>"), "{rows}");
    assert!(rows.contains("XVII: Vehicles, aircraft") && rows.contains("<td>87</td>"), "section and chapter: {rows}");
    assert!(rows.contains("href=\"/console/my/advance-data?hs_code=870323\""), "{rows}");
    let (_, rows) = server.get("/console/hs/results?q=live+horses", &cookies).await;
    assert!(rows.contains("010121") && rows.contains("I: Live animals"), "{rows}");
    // Empty and absurd queries find nothing and say so quietly.
    assert_eq!(server.get("/console/hs/results?q=", &cookies).await, (200, String::new()));
    let (status, rows) = server.get("/console/hs/results?q=zzzzqqq", &cookies).await;
    assert_eq!(status, 200);
    assert!(rows.contains("0 subheadings found.") && !rows.contains("<table"), "{rows}");
    // Signed-in parties only.
    assert_eq!(server.get("/console/hs/results?q=8703", "").await.0, 303);
}

#[tokio::test]
async fn htmx_is_served_from_the_binary_with_a_long_cache() {
    let server = spawn(false).await;
    let response = server.client.get(format!("{}/console/assets/htmx.min.js", server.base)).send().await.expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let script = response.text().await.expect("a body");
    assert!(script.starts_with("var htmx=") && script.len() > 30_000, "{}", &script[..80.min(script.len())]);
    // Every page, the sign-in form too, loads it (and works without it).
    let (_, page) = server.get("/console/sign-in", "").await;
    assert!(page.contains("<script src=\"/console/assets/htmx.min.js?v=4.0.1\" defer></script>"), "{page}");
}

#[tokio::test]
async fn advance_data_sent_from_the_portal_is_the_apis_e9() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    let cookies = session(&server, &seeded.holder).await;
    let (_, page) = server.get("/console/my/advance-data", &cookies).await;
    let csrf = hidden(&page, "<form method=\"post\"", "csrf");
    let message_id = hidden(&page, "<form method=\"post\"", "message_id");
    let form = browser::advance_fields(&seeded.reference);
    let mut fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.push(("csrf", &csrf));
    fields.push(("message_id", &message_id));
    let (status, location, page) = server.post("/console/my/advance-data", &cookies, &fields).await;
    assert_eq!((status, location), (303, format!("/console/my/transports/{}", seeded.reference)), "{page}");
    let (_, declaration) = server
        .api(reqwest::Method::GET, &format!("/v1/guarantees/{}/declaration", seeded.reference), ADMIN_TOKEN, None)
        .await;
    assert_eq!(declaration["declaration"]["itinerary"], json!(["TR", "GE", "AZ"]), "{declaration}");
    // A field the model refuses comes back with its code, the form filled in.
    let (_, page) = server.get("/console/my/advance-data", &cookies).await;
    let message_id = hidden(&page, "<form method=\"post\"", "message_id");
    let mut fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.retain(|(k, _)| *k != "hs_code");
    fields.extend([("hs_code", "999999"), ("csrf", &csrf), ("message_id", &message_id)]);
    let (status, _, page) = server.post("/console/my/advance-data", &cookies, &fields).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("E9 refused: code 102") && page.contains("value=\"999999\""), "{page}");
}

/// One action through the transport page's form, as an officer sends it.
pub async fn act(server: &Server, cookies: &str, reference: &str, action: &str, office: &str) {
    let path = format!("/console/transports/{reference}");
    let (_, page) = server.get(&path, cookies).await;
    let marker = format!("id=\"action-{action}\"");
    let csrf = hidden(&page, &marker, "csrf");
    let message_id = hidden(&page, &marker, "message_id");
    let form = [
        ("csrf", csrf.as_str()),
        ("message_id", &message_id),
        ("action", action),
        ("office", office),
        ("seals", SEAL_OF_DECLARATION),
    ];
    let (status, location, page) = server.post(&path, cookies, &form).await;
    assert_eq!(status, 303, "{action}: {location} {page}");
    assert!(location.contains("?done="), "{action}: {location}");
}

#[tokio::test]
async fn the_dashboard_shows_the_crossing_time_and_volume_of_a_transport_that_crossed() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    server.advance_data(&seeded).await;
    let (tr, ge) = (session(&server, &seeded.tr).await, session(&server, &seeded.ge).await);
    let (_, page) = server.get("/console/dashboard", &ge).await;
    assert!(page.contains("No transport has crossed a border yet."), "{page}");
    for action in ["accept", "record", "start", "terminate", "discharge"] {
        act(&server, &tr, &seeded.reference, action, "TR000100").await;
    }
    act(&server, &ge, &seeded.reference, "start", "GE000100").await;

    // The transport page lists its journal entries with their hashes: the
    // last is GE's start, whose hash is the journal's head.
    let (_, verdict) = server.api(reqwest::Method::GET, "/v1/admin/journal/verify", ADMIN_TOKEN, None).await;
    let head = verdict["head"].as_str().expect("the head");
    let (_, page) = server.get(&format!("/console/transports/{}", seeded.reference), &ge).await;
    let journal = &page[page.find("id=\"journal\"").expect("the journal section")..];
    assert!(journal.contains(head), "the head {head} on the page: {journal}");
    // E1, E9, I1, I7, I9, I11, I13 at TR, I9 at GE: two hashes each.
    assert_eq!(journal.matches("<code class=\"hash\">").count(), 16, "{journal}");
    for kind in ["E1", "E9", "I1", "I7", "I11", "I13"] {
        assert!(journal.contains(&format!("<td>{kind}<br>")), "{kind} in {journal}");
    }
    // The crossing is on the transport page too, for customs and for the holder.
    for cookies in [&ge, &session(&server, &seeded.holder).await] {
        let path = if *cookies == ge { "/console/transports" } else { "/console/my/transports" };
        let (_, page) = server.get(&format!("{path}/{}", seeded.reference), cookies).await;
        let section = &page[page.find("id=\"crossings\"").expect("the crossings section")..];
        assert!(section.contains("<td>TR → GE</td>") && section.contains("GE000100"), "{section}");
        assert!(section.contains("TR000100"), "the office of exit: {section}");
    }

    let (status, page) = server.get("/console/dashboard", &ge).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("TR → GE"), "the border: {page}");
    assert!(page.contains("<svg class=\"chart\""), "a chart: {page}");
    assert!(page.contains("Crossing time TR → GE: histogram"), "{page}");
    assert!(page.contains("Crossings per day at GE000100"), "the entry office's volume: {page}");
    assert!(page.contains("1 border crossings") || page.contains(" 1 border crossing"), "{page}");
    // The map: the countries, the TR → GE arrow and both offices (no UN/LOCODE
    // registered: drawn at the TR-GE border of the atlas).
    let map = &page[page.find("<svg class=\"map\"").expect("the map")..];
    let map = &map[..map.find("</svg>").expect("the map's end")];
    assert!(map.contains("data-country=\"GE\"") && map.contains("class=\"country home\" data-country=\"GE\""), "{map}");
    assert!(map.contains("class=\"crossing t") && map.contains("data-pair=\"TR-GE\""), "{map}");
    assert!(map.contains("<title>TR → GE: 1 crossings, median"), "{map}");
    for office in ["GE000100", "TR000100"] {
        assert!(map.contains(&format!("class=\"office placed\" data-office=\"{office}\"")), "{office}: {map}");
    }
    assert!(page.contains("ul class=\"legend\""), "the legend: {page}");
    // The only script is htmx, and nothing on the dashboard needs it.
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    assert!(page.contains("<script src=\"/console/assets/htmx.min.js?v="), "{page}");
    // Departure sees its exit too; the admin sees everything.
    assert!(server.get("/console/dashboard", &tr).await.1.contains("TR → GE"));
    let admin = session(&server, ADMIN_TOKEN).await;
    let (status, page) = server.get("/console/dashboard", &admin).await;
    assert_eq!(status, 200);
    assert!(page.contains("TR → GE") && page.contains("Every transport."), "{page}");
    // Customs off the itinerary see none of it; holders and chains may not open the page.
    let de = session(&server, &seeded.de).await;
    assert!(!server.get("/console/dashboard", &de).await.1.contains("TR → GE"));
    for token in [&seeded.holder, &seeded.chain] {
        let cookies = session(&server, token).await;
        let (status, page) = server.get("/console/dashboard", &cookies).await;
        assert_eq!(status, 403, "{page}");
        assert!(!page.contains("TR → GE"));
    }
}

/// Past `LISTED` guarantees, the chain's and the holder's lists go on by
/// pages: `?before=` the last reference shown, with links both ways.
#[tokio::test]
async fn long_lists_of_guarantees_page_by_reference() {
    const LISTED: usize = 200; // the console's page of guarantees
    let server = spawn(false).await;
    let seeded = server.seed().await;
    let mut references = vec![seeded.reference.clone()];
    for _ in 0..LISTED + 1 {
        let reference = reference();
        let e1 = message("E1", &reference, json!({"holder": HOLDER}));
        let (status, answer) = server.api(reqwest::Method::POST, "/v1/messages", &seeded.chain, Some(e1)).await;
        assert_eq!(status, 200, "{answer}");
        references.push(reference);
    }
    references.sort_by(|a, b| b.cmp(a));
    let shown = |page: &str, r: &str| page.contains(&format!("href=\"/console/my/transports/{r}\""));
    for (token, path) in [(&seeded.chain, "/console/chain"), (&seeded.holder, "/console/my")] {
        let cookies = session(&server, token).await;
        let (status, first) = server.get(path, &cookies).await;
        assert_eq!(status, 200, "{first}");
        assert!(references[..LISTED].iter().all(|r| shown(&first, r)), "{path}: the newest {LISTED}");
        assert!(!shown(&first, &references[LISTED]), "{path}: one page only");
        let older = format!("{path}?before={}", references[LISTED - 1]);
        assert!(first.contains(&format!("href=\"{older}\"")) && !first.contains(">Newest<"), "{first}");
        let (status, second) = server.get(&older, &cookies).await;
        assert_eq!(status, 200, "{second}");
        assert!(references[LISTED..].iter().all(|r| shown(&second, r)), "{path}: the rest");
        assert!(!shown(&second, &references[LISTED - 1]), "{path}: not again");
        assert!(second.contains(&format!("href=\"{path}\"")) && second.contains(">Newest<"), "{second}");
        assert!(!second.contains("Older →"), "{path}: the last page: {second}");
        // Past the oldest: an empty page that says so, with the way back.
        let (_, past) = server.get(&format!("{path}?before={}", references[LISTED + 1]), &cookies).await;
        assert!(past.contains("No older guarantee.") && past.contains(">Newest<"), "{past}");
        // A `before` that is no reference is the first page.
        let (status, page) = server.get(&format!("{path}?before=%3Cb%3E"), &cookies).await;
        assert_eq!(status, 200);
        assert!(shown(&page, &references[0]) && !page.contains("<b>"), "{page}");
    }
}

/// The admin's holder registry goes on by pages past 200, in TIR id order
/// (ids hold `/`, so the next page's key is percent-encoded).
#[tokio::test]
async fn the_admins_holder_registry_pages_by_tir_id() {
    let server = spawn(false).await;
    server.seed().await;
    let mut ids = vec![HOLDER.to_owned()];
    for n in 0..200 {
        let tir_id = format!("LTU/001/{n:04}");
        let body = json!({"name": format!("Holder {n}"), "country": "LT", "status": "authorized"});
        let path = format!("/v1/admin/holders/{}", encode(&tir_id));
        assert_eq!(server.api(reqwest::Method::PUT, &path, ADMIN_TOKEN, Some(body)).await.0, 200);
        ids.push(tir_id);
    }
    ids.sort();
    let admin = session(&server, ADMIN_TOKEN).await;
    let (status, first) = server.get("/console/admin/holders", &admin).await;
    assert_eq!(status, 200);
    let row = |page: &str, id: &str| page.contains(&format!("<td class=\"mono\">{id}</td>"));
    assert!(ids[..200].iter().all(|id| row(&first, id)) && !row(&first, &ids[200]), "{first}");
    let next = format!("/console/admin/holders?after={}", encode(&ids[199]));
    assert!(first.contains(&format!("href=\"{next}\"")), "{first}");
    let (status, second) = server.get(&next, &admin).await;
    assert_eq!(status, 200);
    assert!(row(&second, &ids[200]) && !row(&second, &ids[199]), "{second}");
    assert!(second.contains("href=\"/console/admin/holders\">First<") && !second.contains("Next →"), "{second}");
}

#[tokio::test]
async fn chains_and_holders_list_their_guarantees_chains_register_and_cancel_holders_amend_and_withdraw() {
    use tir_testkit::fixtures::reference as new_reference;
    let server = spawn(false).await;
    let seeded = server.seed().await;
    let (line, landing) = sign_in(&server, &seeded.chain).await;
    assert_eq!(landing, "/console/chain");
    let chain = format!("tirhub_session={}", cookie_value(&line));
    let (status, page) = server.get("/console/chain", &chain).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("href=\"/console/my/transports/{}\"", seeded.reference)), "{page}");

    // The chain registers a second guarantee for the same holder (E1) through its form.
    let second = new_reference();
    let chain_form = |page: &str, marker: &str| (hidden(page, marker, "csrf"), hidden(page, marker, "message_id"));
    let (csrf, message_id) = chain_form(&page, "id=\"action-register\"");
    let form = [
        ("csrf", csrf.as_str()),
        ("message_id", &message_id),
        ("action", "register"),
        ("guarantee_reference", &second),
        ("holder", HOLDER),
    ];
    // Without the CSRF token nothing is sent.
    let entries = server.journal_entries().await;
    let (status, _, _) = server.post("/console/chain", &chain, &form[1..]).await;
    assert_eq!(status, 403);
    assert_eq!(server.journal_entries().await, entries);
    let (status, location, page) = server.post("/console/chain", &chain, &form).await;
    assert_eq!((status, location.as_str()), (303, "/console/chain?done=E1"), "{page}");
    let (_, page) = server.get("/console/chain?done=E1", &chain).await;
    assert!(page.contains("E1 accepted") && page.contains(&second) && page.contains(&seeded.reference), "{page}");
    // The same message id again: answered from the idempotency record, one journal entry.
    let entries = server.journal_entries().await;
    assert_eq!(server.post("/console/chain", &chain, &form).await.0, 303);
    assert_eq!(server.journal_entries().await, entries);

    // The holder's portal lists both, newest reference first is the store's order.
    let holder = session(&server, &seeded.holder).await;
    let (status, page) = server.get("/console/my", &holder).await;
    assert_eq!(status, 200);
    for r in [&seeded.reference, &second] {
        assert!(page.contains(&format!("href=\"/console/my/transports/{r}\"")), "{r}: {page}");
    }
    assert!(page.contains("registered"), "{page}");

    // Advance data, then an amendment (E11, before recording) and a withdrawal (E13) from the portal.
    server.advance_data(&seeded).await;
    let (_, page) = server
        .get(&format!("/console/my/advance-data?guarantee_reference={}&type=E11", seeded.reference), &holder)
        .await;
    assert!(page.contains("<option value=\"E11\" selected>"), "{page}");
    let csrf = hidden(&page, "<form method=\"post\"", "csrf");
    let message_id = hidden(&page, "<form method=\"post\"", "message_id");
    let advance = browser::advance_fields(&seeded.reference);
    let mut fields: Vec<(&str, &str)> =
        advance.iter().filter(|(k, _)| *k != "description").map(|(k, v)| (*k, v.as_str())).collect();
    fields.extend([
        ("description", "Amended: passenger cars"),
        ("type", "E11"),
        ("csrf", &csrf),
        ("message_id", &message_id),
    ]);
    let (status, location, page) = server.post("/console/my/advance-data", &holder, &fields).await;
    assert_eq!((status, location), (303, format!("/console/my/transports/{}?done=E11", seeded.reference)), "{page}");
    let (_, declaration) = server
        .api(reqwest::Method::GET, &format!("/v1/guarantees/{}/declaration", seeded.reference), ADMIN_TOKEN, None)
        .await;
    assert_eq!(
        declaration["declaration"]["consignments"][0]["goods"][0]["description"], "Amended: passenger cars",
        "{declaration}"
    );
    let path = format!("/console/my/transports/{}", seeded.reference);
    let (_, page) = server.get(&path, &holder).await;
    let csrf = hidden(&page, "id=\"action-withdraw\"", "csrf");
    let message_id = hidden(&page, "id=\"action-withdraw\"", "message_id");
    let form = [("csrf", csrf.as_str()), ("message_id", &message_id), ("reason", "Load changed")];
    let (status, location, page) = server.post(&path, &holder, &form).await;
    assert_eq!((status, location), (303, format!("{path}?done=E13")), "{page}");
    let (_, guarantee) =
        server.api(reqwest::Method::GET, &format!("/v1/guarantees/{}", seeded.reference), ADMIN_TOKEN, None).await;
    assert_eq!(guarantee["transport"]["declaration_state"], "withdrawn", "{guarantee}");
    // A second withdrawal is refused by the model, its code shown on the page.
    let (_, page) = server.get(&path, &holder).await;
    let message_id = hidden(&page, "id=\"action-withdraw\"", "message_id");
    let form = [("csrf", csrf.as_str()), ("message_id", &message_id), ("reason", "Again")];
    let (status, _, page) = server.post(&path, &holder, &form).await;
    assert!(status >= 400 && page.contains("E13 refused: code"), "{status}: {page}");

    // The chain cancels the second guarantee (E3).
    let (_, page) = server.get("/console/chain", &chain).await;
    let (csrf, message_id) = chain_form(&page, "id=\"action-cancel\"");
    let form = [
        ("csrf", csrf.as_str()),
        ("message_id", &message_id),
        ("action", "cancel"),
        ("guarantee_reference", &second),
        ("reason", "Holder request"),
    ];
    let (status, location, page) = server.post("/console/chain", &chain, &form).await;
    assert_eq!((status, location.as_str()), (303, "/console/chain?done=E3"), "{page}");
    let (_, guarantee) = server.api(reqwest::Method::GET, &format!("/v1/guarantees/{second}"), ADMIN_TOKEN, None).await;
    assert_eq!(guarantee["state"], "cancelled", "{guarantee}");

    // Customs and holders may not open the chain's page; the chain may not withdraw a holder's data.
    for token in [&seeded.tr, &seeded.holder] {
        let cookies = session(&server, token).await;
        let (status, page) = server.get("/console/chain", &cookies).await;
        assert_eq!(status, 403, "{page}");
        assert!(!page.contains(&second));
    }
    let (_, page) = server.get(&path, &chain).await;
    assert!(!page.contains("action-withdraw"), "no withdraw form for the chain");
    let csrf = hidden(&page, "class=\"sign-out\"", "csrf");
    let form = [("csrf", csrf.as_str()), ("message_id", "chain-withdraw-1"), ("reason", "Not mine")];
    assert_eq!(server.post(&path, &chain, &form).await.0, 403, "E13 is the holder's");
    let tr = session(&server, &seeded.tr).await;
    assert_eq!(server.get("/console/my", &tr).await.0, 403);
}

#[tokio::test]
async fn an_inspection_result_recorded_from_the_transport_page_moves_the_dashboards_hit_rate() {
    let server = spawn_with(false, true).await;
    let seeded = server.seed().await;
    server.advance_data(&seeded).await;
    let tr = session(&server, &seeded.tr).await;
    let path = format!("/console/transports/{}", seeded.reference);
    // The assessor answers the advance data's feed item beside the routes.
    for _ in 0..100 {
        if server.get(&path, &tr).await.1.contains("class=\"lane lane-") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let inspect = |revenue: &'static str| {
        let (server, tr, path) = (&server, &tr, &path);
        async move {
            let (_, page) = server.get(path, tr).await;
            let csrf = hidden(&page, "id=\"action-inspect\"", "csrf");
            let message_id = hidden(&page, "id=\"action-inspect\"", "message_id");
            let form = [
                ("csrf", csrf.as_str()),
                ("message_id", &message_id),
                ("action", "inspect"),
                ("office", "TR000100"),
                ("outcome", "irregularity"),
                ("revenue", revenue),
                ("findings", "Undeclared cigarettes\n"),
                ("notes", ""),
            ];
            server.post(path, tr, &form).await
        }
    };
    // A revenue below 0 is refused with the API's code, nothing recorded.
    let (status, _, page) = inspect("-5").await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Inspection result refused: code 180"), "{page}");
    let (_, stats) = server.api(reqwest::Method::GET, "/v1/risk/stats", &seeded.tr, None).await;
    assert!(stats["by_selector"].as_array().unwrap().iter().all(|g| g["inspected"] == 0), "{stats}");
    let (status, location, page) = inspect("1500").await;
    assert_eq!((status, location), (303, format!("{path}?done=IR")), "{page}");
    assert!(server.get(&format!("{path}?done=IR"), &tr).await.1.contains("Inspection result recorded."));
    // The API's figures and the dashboard's agree: one inspection, one hit.
    let (_, stats) = server.api(reqwest::Method::GET, "/v1/risk/stats", &seeded.tr, None).await;
    let inspected: u64 =
        stats["by_selector"].as_array().unwrap().iter().map(|g| g["inspected"].as_u64().unwrap()).sum();
    assert_eq!(inspected, 1, "{stats}");
    let (_, page) = server.get("/console/dashboard", &tr).await;
    let rates = &page[page.find("id=\"hit-rates\"").expect("the hit rates")..];
    assert!(rates.contains("<td>1</td><td>1</td><td>100.0 %</td><td>1500.00</td>"), "{rates}");
}
