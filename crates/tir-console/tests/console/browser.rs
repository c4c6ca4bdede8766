//! One walk through the console in headless Chromium, driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`; `.ci/run` installs them). Skipped,
//! with a message, where chromedriver is missing. Screenshots of each step go
//! to a folder the test prints.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::{Seeded, spawn_with};

/// The advance data of the TR → GE → AZ corridor, as the portal's form takes it.
pub fn advance_fields(reference: &str) -> Vec<(&'static str, String)> {
    [
        ("guarantee_reference", reference),
        ("itinerary", "TR GE AZ"),
        ("departure", "TR000100"),
        ("entry", "GE000100"),
        ("destination", "AZ000200"),
        ("vehicle_registration", "34ABC123"),
        ("vehicle_country", "TR"),
        ("seals", crate::SEAL_OF_DECLARATION),
        ("consignor_name", "Anatolia Export"),
        ("consignor_country", "TR"),
        ("consignee_name", "Baku Import"),
        ("consignee_country", "AZ"),
        ("hs_code", "870323"),
        ("description", "Passenger cars"),
        ("packages", "4"),
        ("gross_mass_kg", "6200"),
        ("value_amount", "88000"),
        ("currency", "EUR"),
    ]
    .into_iter()
    .map(|(name, value)| (name, value.to_owned()))
    .collect()
}

/// Whether navigation waits for the page to load (`None`: the test waits for
/// the elements it needs, so a second click can land while the first loads).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PageLoad {
    Normal,
    None,
}

/// The page's own width and the window's, in CSS px: a page wider than its
/// window scrolls sideways.
pub async fn widths(client: &Client) -> (u64, u64) {
    let widths = client
        .execute("return [document.documentElement.scrollWidth, window.innerWidth];", vec![])
        .await
        .expect("measure");
    (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap())
}

/// chromedriver on a free port, stopped when dropped.
pub struct Driver {
    pub url: String,
    _child: tokio::process::Child,
}

impl Driver {
    /// A headless Chromium session (Debian's, no sandbox, no background networking).
    pub async fn session(&self, page_load: PageLoad) -> Client {
        let mut capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1200,900"]
            }
        });
        if page_load == PageLoad::None {
            capabilities["pageLoadStrategy"] = json!("none");
        }
        let capabilities = capabilities.as_object().expect("an object").clone();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector).capabilities(capabilities).connect(&self.url).await.expect("a WebDriver session")
    }

    pub async fn start() -> Option<Driver> {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        if !std::path::Path::new(&binary).exists() {
            println!("browser test skipped: no chromedriver at {binary} (apt-get install chromium chromium-driver)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = tokio::process::Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(Driver { url: format!("http://127.0.0.1:{port}"), _child: child });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not listen on {port} within 10 s");
    }
}

struct Shots {
    dir: PathBuf,
    /// Stable names, one picture per page of the README's tour (docs/console/).
    tour: PathBuf,
    taken: usize,
}

impl Shots {
    fn new() -> Shots {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
        let tour = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-tour");
        for d in [&dir, &tour] {
            std::fs::create_dir_all(d).expect("the screenshot folder");
        }
        println!("screenshots: {}; the tour's: {}", dir.display(), tour.display());
        Shots { dir, tour, taken: 0 }
    }

    async fn take(&mut self, client: &Client, name: &str) -> Vec<u8> {
        self.taken += 1;
        let png = client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = self.dir.join(format!("{:02}-{name}.png", self.taken));
        std::fs::write(&path, &png).expect("write the screenshot");
        png
    }

    /// `take`, and a copy as `console-tour/{name}.png`.
    async fn keep(&mut self, client: &Client, name: &str) {
        let png = self.take(client, name).await;
        std::fs::write(self.tour.join(format!("{name}.png")), png).expect("write the tour's screenshot");
    }
}

async fn fill(client: &Client, id: &str, value: &str) {
    let field = client.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(value).await.expect("type");
}

/// Clicks `button` and waits for an element of the next page.
async fn submit(client: &Client, button: &str, next: &str) {
    client.find(Locator::Css(button)).await.unwrap_or_else(|e| panic!("{button}: {e}")).click().await.expect("click");
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(next))
        .await
        .unwrap_or_else(|e| panic!("after {button}, no {next}: {e}"));
}

/// Waits until the page holds `text` (a form's answer has loaded).
async fn wait_for_text(client: &Client, text: &str) {
    for _ in 0..100 {
        if client.source().await.is_ok_and(|page| page.contains(text)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{text:?} not on the page within 10 s: {}", client.source().await.unwrap_or_default());
}

pub async fn sign_in(client: &Client, base: &str, token: &str, landing: &str) {
    client.goto(&format!("{base}/console/sign-in")).await.expect("the sign-in page");
    fill(client, "token", token).await;
    submit(client, "form[action='/console/sign-in'] button", "form.sign-out").await;
    let url = client.current_url().await.expect("a URL");
    assert_eq!(url.path(), landing);
}

#[tokio::test]
async fn a_holder_sends_advance_data_customs_of_departure_take_it_through_and_the_next_country_sees_it_in_chromium() {
    let Some(driver) = Driver::start().await else { return };
    // The assessor runs, so the next country's arrivals show a lane.
    let server = spawn_with(false, true).await;
    let seeded: Seeded = server.seed().await;
    let base = server.base.clone();
    let client = driver.session(PageLoad::Normal).await;
    let mut shots = Shots::new();
    let reference = seeded.reference.clone();
    // GE's risk officer has a profile this transport matches: its arrivals show a reason.
    let profile = json!({
        "name": "High-value vehicles", "expression": "total_value > 10000.0", "lane": "yellow",
        "selection_percent": 100, "weight": 1, "reason": "Declared value over 10,000",
        "valid_from": "2020-01-01", "valid_until": null, "office_scope": "all"
    });
    let (status, answer) = server.api(reqwest::Method::POST, "/v1/risk/profiles", &seeded.ge, Some(profile)).await;
    assert_eq!(status, 201, "{answer}");

    // The holder finds the goods' code by HS search and sends the advance data.
    client.goto(&format!("{base}/console/sign-in")).await.expect("the sign-in page");
    shots.keep(&client, "sign-in").await;
    sign_in(&client, &base, &seeded.holder, "/console/my").await;
    // The portal lists the guarantee the chain registered for this holder.
    assert!(client.source().await.unwrap().contains(&format!("href=\"/console/my/transports/{reference}\"")));
    shots.take(&client, "holder-portal").await;
    // On the advance-data form, htmx lists the subheadings as the holder
    // types (no button pressed, the page stays), with section and chapter.
    client.goto(&format!("{base}/console/my/advance-data")).await.expect("the advance-data form");
    fill(&client, "hs-q", "8703").await;
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#hs-results a[aria-label='Use 870323 in advance data']"))
        .await
        .expect("the type-ahead's rows");
    assert_eq!(client.current_url().await.expect("a URL").path(), "/console/my/advance-data", "no page was loaded");
    assert!(client.source().await.unwrap().contains("XVII: Vehicles, aircraft"), "the section");
    shots.keep(&client, "advance-data-hs-search").await;
    // The plain form still works: the search button loads the HS page.
    client.goto(&format!("{base}/console/hs?q=8703")).await.expect("the HS page");
    shots.take(&client, "hs-search").await;
    submit(&client, "a[aria-label='Use 870323 in advance data']", "#hs-description").await;
    for (name, value) in advance_fields(&reference) {
        if name != "hs_code" {
            fill(&client, name, &value).await;
        }
    }
    shots.keep(&client, "advance-data-form").await;
    submit(&client, "form[action='/console/my/advance-data'] button", "#timeline").await;
    assert!(client.source().await.unwrap().contains("advance"), "the portal shows the advance data");
    shots.take(&client, "holder-transport").await;
    submit(&client, "form.sign-out button", "#token").await;

    // Customs of departure see it in their arrivals, open it, accept, record and start.
    sign_in(&client, &base, &seeded.tr, "/console/arrivals").await;
    assert!(client.source().await.unwrap().contains(&reference), "the transport is among the arrivals");
    shots.take(&client, "arrivals").await;
    submit(&client, &format!("a[href='/console/transports/{reference}']"), "#action-accept").await;
    shots.take(&client, "transport").await;
    for (action, kind) in [("accept", "I1"), ("record", "I7"), ("start", "I9")] {
        let button = format!("#action-{action} button");
        client.find(Locator::Css(&button)).await.expect(&button).click().await.expect("click");
        wait_for_text(&client, &format!("{kind} accepted.")).await;
        shots.take(&client, &format!("{action}ed")).await;
    }
    shots.keep(&client, "transport-started").await;
    let (_, guarantee) =
        server.api(reqwest::Method::GET, &format!("/v1/guarantees/{reference}"), &seeded.tr, None).await;
    assert_eq!(guarantee["transport"]["operations"][0]["state"], "started", "{guarantee}");

    // At the phone's width the page fits: no sideways scrolling of the page itself.
    client.set_window_size(390, 844).await.expect("resize");
    client.refresh().await.expect("reload");
    let (scroll, inner) = widths(&client).await;
    assert!(inner <= 400, "the window is narrow: {inner}");
    assert!(scroll <= inner, "the page is {scroll} px wide in a {inner} px window");
    shots.take(&client, "transport-390px").await;
    client.set_window_size(1200, 900).await.expect("resize");

    // The operation ends at TR's exit office: terminated, then discharged.
    for (action, kind, name) in [("terminate", "I11", "terminated"), ("discharge", "I13", "discharged")] {
        let button = format!("#action-{action} button");
        client.find(Locator::Css(&button)).await.expect(&button).click().await.expect("click");
        wait_for_text(&client, &format!("{kind} accepted.")).await;
        shots.take(&client, name).await;
    }
    submit(&client, "form.sign-out button", "#token").await;

    // Customs of the next country see it among their arrivals, with the lane the assessor gave.
    sign_in(&client, &base, &seeded.ge, "/console/arrivals").await;
    for _ in 0..100 {
        let page = client.source().await.unwrap();
        if page.contains(&reference) && page.contains("class=\"lane lane-") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.refresh().await.expect("reload");
    }
    let page = client.source().await.unwrap();
    assert!(page.contains(&reference) && page.contains("class=\"lane lane-"), "{page}");
    assert!(page.contains("operation 2 next"), "{page}");
    assert!(page.contains("lane-yellow") && page.contains("Declared value over 10,000"), "GE's profile: {page}");
    shots.keep(&client, "arrivals-with-lane").await;

    // GE starts its operation at the entry: the transport has crossed TR → GE,
    // and the dashboard shows the crossing, its time and the entry's volume.
    submit(&client, &format!("a[href='/console/transports/{reference}']"), "#action-start").await;
    fill(&client, "start-office", "GE000100").await;
    client.find(Locator::Css("#action-start button")).await.expect("start").click().await.expect("click");
    wait_for_text(&client, "I9 accepted.").await;
    submit(&client, "nav a[href='/console/dashboard']", "#crossing-times").await;
    let page = client.source().await.unwrap();
    assert!(page.contains("TR → GE") && page.contains("Crossing time TR → GE: histogram"), "{page}");
    assert!(page.contains("Crossings per day at GE000100"), "{page}");
    let width = client
        .execute("return document.querySelector('section[aria-labelledby=crossing-times] svg.chart').getBoundingClientRect().width;", vec![])
        .await
        .expect("the histogram's box");
    assert!(width.as_f64().unwrap_or(0.0) > 100.0, "the chart is drawn: {width} px wide");
    // The map: the TR → GE arrow at the border and the office of entry, drawn.
    for selector in ["svg.map g.crossing[data-pair='TR-GE'] path.arrow", "svg.map circle[data-office='GE000100']"] {
        let size = client
            .execute(
                "let e = document.querySelector(arguments[0]); if (!e) return [0, 0]; let r = e.getBoundingClientRect(); return [r.width, r.height];",
                vec![json!(selector)],
            )
            .await
            .expect("measure");
        let (w, h) = (size[0].as_f64().unwrap_or(0.0), size[1].as_f64().unwrap_or(0.0));
        assert!(w > 0.0 && h > 0.0, "{selector} is drawn: {w} × {h}");
    }
    let map_width = client
        .execute("return document.querySelector('svg.map').getBoundingClientRect().width;", vec![])
        .await
        .expect("the map's box");
    assert!(map_width.as_f64().unwrap_or(0.0) > 600.0, "the map spans the page: {map_width}");
    shots.keep(&client, "dashboard").await;
    // The map section alone, for the README.
    let map = client.find(Locator::Css("section[aria-labelledby=map]")).await.expect("the map section");
    let png = map.screenshot().await.expect("the map's screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(shots.tour.join("dashboard-map.png"), png).expect("write the map's screenshot");
    client.set_window_size(390, 844).await.expect("resize");
    client.refresh().await.expect("reload");
    let (scroll, inner) = widths(&client).await;
    assert!(scroll <= inner, "the dashboard is {scroll} px wide in a {inner} px window");
    shots.keep(&client, "dashboard-390px").await;

    client.close().await.expect("close the session");
}
