//! The risk officer's pages and the admin's pages over HTTP.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tir_testkit::fixtures::ADMIN_TOKEN;

use super::{hidden, session, sign_in, spawn, spawn_with};

/// Every visible form field of the page (input, select, textarea) has a `<label for>` naming its id.
fn every_field_labelled(page: &str) {
    let mut fields = 0;
    for tag in ["<input", "<select", "<textarea"] {
        for (at, _) in page.match_indices(tag) {
            let end = at + page[at..].find('>').expect("a closed tag");
            let element = &page[at..end];
            if element.contains("type=\"hidden\"") {
                continue;
            }
            let id_at = element.find(" id=\"").unwrap_or_else(|| panic!("a field without an id: {element}")) + 5;
            let id = &element[id_at..id_at + element[id_at..].find('"').expect("a quote")];
            assert!(page.contains(&format!("<label for=\"{id}\"")), "no label for {id}: {element}");
            fields += 1;
        }
    }
    assert!(fields > 0, "no field in {page}");
}

/// The form fields of the profile form, as a browser sends them.
fn profile_form<'a>(csrf: &'a str, action: &'a str, expression: &'a str, percent: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("name", "Cars from TR"),
        ("expression", expression),
        ("lane", "red"),
        ("selection_percent", percent),
        ("weight", "5"),
        ("reason", "Cars are often undervalued"),
        ("valid_from", "2026-01-01"),
        ("valid_until", ""),
        ("office_scope", "all"),
        ("last", "100"),
        ("action", action),
    ]
}

#[tokio::test]
async fn a_risk_officer_writes_a_profile_sees_its_cel_error_edits_it_previews_it_and_reads_the_stats() {
    let server = spawn_with(false, true).await;
    let seeded = server.seed().await;
    server.advance_data(&seeded).await;
    let tr = session(&server, &seeded.tr).await;
    // The assessor answers the advance data's feed item: the preview then has a transport to replay.
    let mut assessed = false;
    for _ in 0..100 {
        let (_, assessments) =
            server.api(Method::GET, &format!("/v1/risk/assessments/{}", seeded.reference), &seeded.tr, None).await;
        if assessments["items"].as_array().is_some_and(|a| !a.is_empty()) {
            assessed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(assessed, "the assessor assessed the advance data");

    let (status, page) = server.get("/console/risk/profiles", &tr).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("href=\"/console/risk/profiles\"") && page.contains("no rule profile yet"), "{page}");
    let (status, form) = server.get("/console/risk/profiles/new", &tr).await;
    assert_eq!(status, 200);
    every_field_labelled(&form);
    let csrf = hidden(&form, "id=\"profile-form\"", "csrf");

    // An expression that does not compile comes back with the API's code and a caret under its column.
    let bad = "hs4.exists(h, h == \"8703\") &&\n  vehicle_colour == \"red\"";
    let (status, _, page) =
        server.post("/console/risk/profiles/new", &tr, &profile_form(&csrf, "save", bad, "50")).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Profile refused: code 106") && page.contains("at /expression"), "{page}");
    assert!(page.contains("Line 2, column 3:"), "{page}");
    assert!(page.contains("  vehicle_colour == &quot;red&quot;\n<span class=\"caret\">  ^</span>"), "{page}");
    assert!(page.contains("value=\"Cars are often undervalued\""), "the form comes back filled in: {page}");
    every_field_labelled(&page);
    let (_, list) = server.api(Method::GET, "/v1/risk/profiles", &seeded.tr, None).await;
    assert_eq!(list["items"], json!([]), "nothing saved");

    // The preview runs the API's: the one assessed transport matches.
    let good = "\"8703\" in hs4 && departure_country == \"TR\"";
    let (status, _, page) =
        server.post("/console/risk/profiles/new", &tr, &profile_form(&csrf, "preview", good, "50")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("It would have matched <strong>1</strong> of the last 1 assessed transports"), "{page}");
    let (_, preview) = server
        .api(Method::POST, "/v1/risk/profiles/preview", &seeded.tr, Some(json!({"expression": good, "last": 100})))
        .await;
    assert_eq!((preview["matched"].as_u64(), preview["evaluated"].as_u64()), (Some(1), Some(1)), "{preview}");

    // Saved: version 1, in the list with its fields, as the API lists it.
    let (status, location, page) =
        server.post("/console/risk/profiles/new", &tr, &profile_form(&csrf, "save", good, "50")).await;
    assert_eq!(status, 303, "{page}");
    let (_, list) = server.api(Method::GET, "/v1/risk/profiles", &seeded.tr, None).await;
    let id = list["items"][0]["id"].as_str().expect("a profile").to_owned();
    assert_eq!(location, format!("/console/risk/profiles/{id}?saved=1"));
    let (_, page) = server.get("/console/risk/profiles", &tr).await;
    for shown in ["Cars from TR", &id, "lane lane-red", "<td>50</td>", "<td>5</td>", "2026-01-01 to no end", ">all<"] {
        assert!(page.contains(shown), "{shown} missing: {page}");
    }

    // An edit makes version 2; the history lists both.
    let (status, page) = server.get(&location, &tr).await;
    assert_eq!(status, 200);
    assert!(page.contains("Saved: version 1."), "{page}");
    every_field_labelled(&page);
    let path = format!("/console/risk/profiles/{id}");
    let (status, location, page) = server.post(&path, &tr, &profile_form(&csrf, "save", good, "25")).await;
    assert_eq!((status, location.as_str()), (303, format!("{path}?saved=1").as_str()), "{page}");
    let (_, page) = server.get(&location, &tr).await;
    assert!(
        page.contains("Saved: version 2.") && page.contains("<td>v2</td>") && page.contains("<td>v1</td>"),
        "{page}"
    );
    let (_, history) = server.api(Method::GET, &format!("/v1/risk/profiles/{id}"), &seeded.tr, None).await;
    assert_eq!(history["versions"].as_array().map(Vec::len), Some(2), "{history}");
    assert_eq!(history["profile"]["selection_percent"], json!(25.0));
    // A refused edit (a percentage over 100) keeps version 2 and shows the code.
    let (status, _, page) = server.post(&path, &tr, &profile_form(&csrf, "save", good, "150")).await;
    assert_eq!(status, 400);
    assert!(page.contains("Profile refused: code 180") && page.contains("at /selection_percent"), "{page}");
    // The preview from the profile's page.
    let (status, _, page) = server.post(&path, &tr, &profile_form(&csrf, "preview", good, "25")).await;
    assert_eq!(status, 200);
    assert!(page.contains("It would have matched <strong>1</strong>"), "{page}");

    // Without the CSRF token nothing is saved.
    let mut no_csrf = profile_form(&csrf, "save", good, "10");
    no_csrf.remove(0);
    let (status, _, _) = server.post(&path, &tr, &no_csrf).await;
    assert_eq!(status, 403);
    let (status, _, _) = server.post("/console/risk/profiles/new", &tr, &no_csrf).await;
    assert_eq!(status, 403);
    let (_, list) = server.api(Method::GET, "/v1/risk/profiles", &seeded.tr, None).await;
    assert_eq!((list["items"].as_array().map(Vec::len), &list["items"][0]["version"]), (Some(1), &json!(2)));

    // Another administration's customs: not its profile (404), an empty list.
    let ge = session(&server, &seeded.ge).await;
    assert_eq!(server.get(&path, &ge).await.0, 404);
    assert!(server.get("/console/risk/profiles", &ge).await.1.contains("no rule profile yet"));

    // The stats: an SVG per chart and the table, as GET /v1/risk/stats counts.
    let (status, page) = server.get("/console/risk/stats", &tr).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.matches("<svg class=\"chart\"").count() >= 4, "{page}");
    assert!(page.contains("<title>Hit rate by week, percent</title>"), "{page}");
    let (_, stats) = server.api(Method::GET, "/v1/risk/stats", &seeded.tr, None).await;
    let key = stats["by_selector"][0]["key"].as_str().expect("a selector");
    let assessed = stats["by_selector"][0]["volume"].as_u64().expect("a volume");
    assert!(page.contains(&format!("<td class=\"mono\">{key}</td><td>{assessed}</td>")), "{key}: {page}");
}

#[tokio::test]
async fn holders_chains_the_admin_and_customs_elsewhere_get_403_on_pages_not_theirs() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    let holder = session(&server, &seeded.holder).await;
    let chain = session(&server, &seeded.chain).await;
    let de = session(&server, &seeded.de).await;
    let (admin, landing) = sign_in(&server, ADMIN_TOKEN).await;
    assert_eq!(landing, "/console/admin/parties", "the admin lands on the parties");
    let admin = format!("tirhub_session={}", super::cookie_value(&admin));
    for path in
        ["/console/risk/profiles", "/console/risk/profiles/new", "/console/risk/stats", "/console/risk/profiles/x"]
    {
        for (who, cookies) in [("holder", &holder), ("chain", &chain), ("admin", &admin)] {
            let (status, page) = server.get(path, cookies).await;
            assert_eq!(status, 403, "{who} on {path}: {page}");
        }
    }
    for path in ["/console/admin/parties", "/console/admin/offices", "/console/admin/holders", "/console/admin/journal"]
    {
        for (who, cookies) in [("holder", &holder), ("chain", &chain), ("customs", &de)] {
            let (status, page) = server.get(path, cookies).await;
            assert_eq!(status, 403, "{who} on {path}: {page}");
            assert!(!page.contains("Create a party") && !page.contains(&seeded.tr), "{page}");
        }
    }
    // A customs officer's posts to the admin's forms are refused too, nothing created.
    let (_, page) = server.get("/console/risk/profiles", &de).await;
    let csrf = hidden(&page, "action=\"/console/sign-out\"", "csrf");
    let form = [("csrf", csrf.as_str()), ("action", "create"), ("kind", "guarantee_chain"), ("name", "Rogue")];
    assert_eq!(server.post("/console/admin/parties", &de, &form).await.0, 403);
    // The menus: risk pages for customs, admin pages for the admin.
    assert!(page.contains("href=\"/console/risk/stats\"") && !page.contains("href=\"/console/admin/parties\""));
    let (_, page) = server.get("/console/admin/parties", &admin).await;
    assert!(page.contains("href=\"/console/admin/journal\"") && !page.contains("href=\"/console/risk/profiles\""));
    assert!(!page.contains("Rogue"), "{page}");
}

#[tokio::test]
async fn the_admin_creates_and_revokes_a_party_adds_an_office_and_a_holder_and_verifies_the_journal() {
    let server = spawn(false).await;
    let admin = session(&server, ADMIN_TOKEN).await;
    let (status, page) = server.get("/console/admin/parties", &admin).await;
    assert_eq!(status, 200, "{page}");
    every_field_labelled(&page);
    let csrf = hidden(&page, "id=\"party-create\"", "csrf");

    // Without the CSRF token nothing is created.
    let create = [("action", "create"), ("kind", "customs"), ("name", "Customs LT"), ("country", "LT"), ("tir_id", "")];
    let entries = server.journal_entries().await;
    assert_eq!(server.post("/console/admin/parties", &admin, &create).await.0, 403);
    assert_eq!(server.journal_entries().await, entries);
    assert!(!server.get("/console/admin/parties", &admin).await.1.contains("Customs LT"));

    // A refusal shows the API's code (305: an unknown country).
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend([("action", "create"), ("kind", "customs"), ("name", "Customs QQ"), ("country", "QQ"), ("tir_id", "")]);
    let (status, _, page) = server.post("/console/admin/parties", &admin, &form).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("Party refused: code 305") && page.contains("value=\"Customs QQ\""), "{page}");

    // Created: the token is on the answer, once.
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend(create);
    let (status, _, page) = server.post("/console/admin/parties", &admin, &form).await;
    assert_eq!(status, 201, "{page}");
    let at = page.find("id=\"new-token\">").expect("the token") + "id=\"new-token\">".len();
    let token = page[at..at + page[at..].find('<').unwrap()].to_owned();
    assert!(token.starts_with("tirhub_"), "{token}");
    let (_, list) = server.get("/console/admin/parties", &admin).await;
    assert!(list.contains("Customs LT") && !list.contains(&token), "the list never shows the token: {list}");
    let (lt_line, landing) = sign_in(&server, &token).await;
    assert_eq!(landing, "/console/arrivals", "the new token signs in");
    let lt = format!("tirhub_session={}", super::cookie_value(&lt_line));

    // Revoked: its session is gone and its token no longer signs in.
    let id_at = list.find("name=\"id\" value=\"").expect("a revoke form") + "name=\"id\" value=\"".len();
    let id = list[id_at..id_at + list[id_at..].find('"').unwrap()].to_owned();
    assert!(id.starts_with("cus_"), "{id}");
    let revoke = [("csrf", csrf.as_str()), ("action", "revoke"), ("id", id.as_str())];
    let (status, location, _) = server.post("/console/admin/parties", &admin, &revoke).await;
    assert_eq!((status, location.as_str()), (303, "/console/admin/parties?done=revoked"));
    let (_, list) = server.get(&location, &admin).await;
    assert!(list.contains("its token no longer signs in") && !list.contains(&format!("value=\"{id}\"")), "{list}");
    assert_eq!(server.get("/console/arrivals", &lt).await.0, 303, "signed out");
    let response = server.client.get(format!("{}/console/sign-in", server.base)).send().await.unwrap();
    let pre = super::cookie_value(&super::set_cookie(&response, "tirhub_sign_in").unwrap());
    let sign_in_csrf = hidden(&response.text().await.unwrap(), "<form", "csrf");
    let (status, _, page) = server
        .post("/console/sign-in", &format!("tirhub_sign_in={pre}"), &[("csrf", &sign_in_csrf), ("token", &token)])
        .await;
    assert_eq!(status, 401, "{page}");
    let (status, _) = server.api(Method::GET, "/v1/risk/profiles", &token, None).await;
    assert_eq!(status, 401, "nor does it authenticate on the API");

    // An office: added, listed, edited (the form comes back filled in).
    let (_, page) = server.get("/console/admin/offices", &admin).await;
    every_field_labelled(&page);
    let office = [
        ("csrf", csrf.as_str()),
        ("code", "LT000001"),
        ("country", "LT"),
        ("name", "Medininkai"),
        ("role_entry", "on"),
        ("role_exit", "on"),
        ("unlocode", "LTMDK"),
    ];
    let (status, location, page) = server.post("/console/admin/offices", &admin, &office).await;
    assert_eq!((status, location.as_str()), (303, "/console/admin/offices?done=LT000001"), "{page}");
    let (_, page) = server.get(&location, &admin).await;
    assert!(page.contains("Office LT000001 saved.") && page.contains("<td>entry, exit</td>"), "{page}");
    let (_, page) = server.get("/console/admin/offices?edit=LT000001", &admin).await;
    assert!(page.contains("value=\"Medininkai\"") && page.contains("name=\"role_exit\" checked"), "{page}");
    let mut renamed = office.to_vec();
    renamed[3] = ("name", "Medininkai road");
    assert_eq!(server.post("/console/admin/offices", &admin, &renamed).await.0, 303);
    let (status, answer) = server.api(Method::GET, "/v1/offices/LT000001", ADMIN_TOKEN, None).await;
    assert_eq!((status, &answer["name"]), (200, &json!("Medininkai road")), "{answer}");
    // An office of another country than its code: the API's 180.
    let mut wrong = office.to_vec();
    wrong[2] = ("country", "PL");
    let (status, _, page) = server.post("/console/admin/offices", &admin, &wrong).await;
    assert_eq!(status, 400);
    assert!(page.contains("Office refused: code 180"), "{page}");

    // A holder: added, then withdrawn.
    let (_, page) = server.get("/console/admin/holders", &admin).await;
    every_field_labelled(&page);
    let holder = [
        ("csrf", csrf.as_str()),
        ("tir_id", "LTU/012/345"),
        ("name", "Baltic Haulage"),
        ("country", "LT"),
        ("status", "authorized"),
    ];
    let (status, location, _) = server.post("/console/admin/holders", &admin, &holder).await;
    assert_eq!((status, location.as_str()), (303, "/console/admin/holders?done=LTU%2F012%2F345"));
    let (_, page) = server.get(&location, &admin).await;
    assert!(page.contains("Holder LTU/012/345 saved.") && page.contains("<td>authorized</td>"), "{page}");
    let mut withdrawn = holder.to_vec();
    withdrawn[4] = ("status", "withdrawn");
    assert_eq!(server.post("/console/admin/holders", &admin, &withdrawn).await.0, 303);
    let (_, page) = server.get("/console/admin/holders?edit=LTU%2F012%2F345", &admin).await;
    assert!(page.contains("<td>withdrawn</td>") && page.contains("value=\"withdrawn\" selected"), "{page}");
    let (_, answer) = server.api(Method::GET, "/v1/holders/LTU%2F012%2F345", ADMIN_TOKEN, None).await;
    assert_eq!(answer["status"], json!("withdrawn"), "{answer}");

    // The journal: verified, the verdict and the entry count shown.
    let (status, page) = server.get("/console/admin/journal", &admin).await;
    assert_eq!(status, 200);
    assert!(page.contains("No head has been signed yet.") || page.contains("Signature (Ed25519)"), "{page}");
    assert_eq!(server.post("/console/admin/journal", &admin, &[]).await.0, 403, "a form without CSRF");
    let (status, _, page) = server.post("/console/admin/journal", &admin, &[("csrf", &csrf)]).await;
    assert_eq!(status, 200, "{page}");
    let entries = server.journal_entries().await;
    assert!(page.contains("The journal is intact."), "{page}");
    assert!(page.contains(&format!("<dd id=\"verdict-entries\">{entries}</dd>")), "{entries}: {page}");
}

/// The page's own width against the window's: more means sideways scrolling.
async fn fits(client: &fantoccini::Client, what: &str) {
    let (scroll, inner) = super::browser::widths(client).await;
    assert!(inner <= 400, "the window is narrow: {inner}");
    assert!(scroll <= inner, "{what} scrolls sideways at {inner} px: {scroll}");
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(dir.join(format!("riskadmin-{what}.png")), png).expect("write the screenshot");
}

async fn open(client: &fantoccini::Client, url: &str, what: &str) {
    client.goto(url).await.expect("a page");
    fits(client, what).await;
}

#[tokio::test]
async fn the_risk_and_admin_pages_fit_a_390_px_window_in_chromium() {
    use fantoccini::Locator;
    let Some(driver) = super::browser::Driver::start().await else { return };
    // The assessor runs: the stats page has figures to draw.
    let server = spawn_with(false, true).await;
    let seeded = server.seed().await;
    server.advance_data(&seeded).await;
    let base = server.base.clone();
    let draft = json!({"name": "Cars from TR with a long name to wrap", "expression": "\"8703\" in hs4 && departure_country == \"TR\" && total_value > 100000.0",
        "lane": "red", "selection_percent": 50, "weight": 5, "reason": "Cars are often undervalued at this border crossing",
        "valid_from": "2026-01-01", "office_scope": {"offices": ["TR000100"]}});
    let (status, profile) = server.api(Method::POST, "/v1/risk/profiles", &seeded.tr, Some(draft)).await;
    assert_eq!(status, 201, "{profile}");
    let id = profile["id"].as_str().unwrap().to_owned();
    let client = driver.session(super::browser::PageLoad::Normal).await;
    client.set_window_size(390, 844).await.expect("resize");
    let sign_in = |token: String| {
        let (client, base) = (&client, &base);
        async move {
            client.goto(&format!("{base}/console/sign-in")).await.expect("the sign-in page");
            client.find(Locator::Id("token")).await.unwrap().send_keys(&token).await.unwrap();
            client.find(Locator::Css("form[action='/console/sign-in'] button")).await.unwrap().click().await.unwrap();
            client.wait().for_element(Locator::Css("form.sign-out")).await.expect("signed in");
        }
    };

    sign_in(seeded.tr.clone()).await;
    open(&client, &format!("{base}/console/risk/profiles"), "profiles").await;
    open(&client, &format!("{base}/console/risk/profiles/{id}"), "profile").await;
    // A CEL error, as the browser sends the form: the caret under the column.
    let expression = client.find(Locator::Id("profile-expression")).await.unwrap();
    expression.clear().await.unwrap();
    expression
        .send_keys("hs4.exists(h, h == \"8703\") && vehicle_colour == \"red\" && total_value > 1000.0")
        .await
        .unwrap();
    client.find(Locator::Css("button[value=save]")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css(".cel-error .caret")).await.expect("the caret");
    fits(&client, "profile-cel-error").await;
    open(&client, &format!("{base}/console/risk/profiles/new"), "profile-new").await;
    for _ in 0..100 {
        let (_, stats) = server.api(Method::GET, "/v1/risk/stats", &seeded.tr, None).await;
        if stats["by_selector"].as_array().is_some_and(|s| !s.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    open(&client, &format!("{base}/console/risk/stats"), "stats").await;
    let width = client
        .execute("return document.querySelector('svg.chart').getBoundingClientRect().width;", vec![])
        .await
        .expect("a chart's box");
    assert!(width.as_f64().unwrap_or(0.0) > 100.0, "the chart is drawn: {width} px wide");
    client.find(Locator::Css("form.sign-out button")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Id("token")).await.expect("signed out");

    sign_in(ADMIN_TOKEN.to_owned()).await;
    assert_eq!(client.current_url().await.unwrap().path(), "/console/admin/parties");
    fits(&client, "parties").await;
    client.find(Locator::Id("party-name")).await.unwrap().send_keys("Customs of Lithuania").await.unwrap();
    client.find(Locator::Id("party-country")).await.unwrap().send_keys("LT").await.unwrap();
    client.find(Locator::Css("#party-create button")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Id("new-token")).await.expect("the token");
    fits(&client, "party-created").await;
    open(&client, &format!("{base}/console/admin/offices?edit=TR000100"), "offices").await;
    open(&client, &format!("{base}/console/admin/holders"), "holders").await;
    open(&client, &format!("{base}/console/admin/journal"), "journal").await;
    client.find(Locator::Css("#verify button")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Id("verdict")).await.expect("the verdict");
    fits(&client, "journal-verified").await;
    client.close().await.expect("close the session");
}
