//! A form posted twice does one thing: the risk profile forms and the admin's
//! forms carry a form key, as the eTIR forms carry a message id.

use reqwest::Method;
use serde_json::json;
use tir_testkit::fixtures::ADMIN_TOKEN;

use super::{hidden, session, spawn};

/// The form's fields with its CSRF token and form key, as the page rendered them.
fn filled<'a>(page: &str, marker: &str, fields: &[(&'a str, &'a str)]) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    form.push(("csrf".to_owned(), hidden(page, marker, "csrf")));
    let key = hidden(page, marker, "form_key");
    assert!(key.starts_with("form-"), "{key}");
    form.push(("form_key".to_owned(), key));
    form
}

fn pairs(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

const PROFILE: [(&str, &str); 11] = [
    ("name", "Cars from TR"),
    ("expression", "\"8703\" in hs4"),
    ("lane", "red"),
    ("selection_percent", "50"),
    ("weight", "5"),
    ("reason", "Cars are often undervalued"),
    ("valid_from", "2026-01-01"),
    ("valid_until", ""),
    ("office_scope", "all"),
    ("last", "100"),
    ("action", "save"),
];

#[tokio::test]
async fn a_profile_form_posted_twice_saves_one_profile_and_one_version() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    let tr = session(&server, &seeded.tr).await;
    let (_, page) = server.get("/console/risk/profiles/new", &tr).await;
    let form = filled(&page, "id=\"profile-form\"", &PROFILE);
    let form = pairs(&form);
    // A double click: two posts of one rendered form at once, then a third (a reload).
    let path = "/console/risk/profiles/new";
    let (first, second) = tokio::join!(server.post(path, &tr, &form), server.post(path, &tr, &form));
    let third = server.post(path, &tr, &form).await;
    assert_eq!(first.0, 303, "{}", first.2);
    assert_eq!((&first.0, &first.1), (&second.0, &second.1), "the same answer");
    assert_eq!((&first.0, &first.1), (&third.0, &third.1), "the same answer");
    let (_, list) = server.api(Method::GET, "/v1/risk/profiles", &seeded.tr, None).await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "one profile: {list}");
    let id = items[0]["id"].as_str().expect("an id").to_owned();
    assert_eq!(first.1, format!("/console/risk/profiles/{id}?saved=1"));

    // The edit form: twice at once, one version 2.
    let path = format!("/console/risk/profiles/{id}");
    let (_, page) = server.get(&path, &tr).await;
    let mut edited = PROFILE;
    edited[3] = ("selection_percent", "25");
    let form = filled(&page, "id=\"profile-form\"", &edited);
    let form = pairs(&form);
    let (first, second) = tokio::join!(server.post(&path, &tr, &form), server.post(&path, &tr, &form));
    assert_eq!((first.0, first.1.as_str()), (303, format!("{path}?saved=1").as_str()), "{}", first.2);
    assert_eq!((first.0, &first.1), (second.0, &second.1));
    let (_, history) = server.api(Method::GET, &format!("/v1/risk/profiles/{id}"), &seeded.tr, None).await;
    assert_eq!(history["versions"].as_array().map(Vec::len), Some(2), "{history}");
    // The same key with other values: refused, nothing saved.
    let mut changed = form.clone();
    changed.retain(|(k, _)| *k != "selection_percent");
    changed.push(("selection_percent", "10"));
    let (status, _, page) = server.post(&path, &tr, &changed).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("already sent with other values"), "{page}");
    let (_, history) = server.api(Method::GET, &format!("/v1/risk/profiles/{id}"), &seeded.tr, None).await;
    assert_eq!(history["versions"].as_array().map(Vec::len), Some(2), "{history}");
    assert_eq!(history["profile"]["selection_percent"], json!(25.0));
    // A form rendered again (here the answer's page) has a new key: it saves version 3.
    let (_, page) = server.get(&format!("{path}?saved=1"), &tr).await;
    let again = filled(&page, "id=\"profile-form\"", &edited);
    let key_of = |form: &[(&str, &str)]| form.iter().find(|(k, _)| *k == "form_key").map(|(_, v)| v.to_string());
    assert_ne!(key_of(&pairs(&again)), key_of(&form), "a fresh key");
    assert_eq!(server.post(&path, &tr, &pairs(&again)).await.0, 303);
    let (_, history) = server.api(Method::GET, &format!("/v1/risk/profiles/{id}"), &seeded.tr, None).await;
    assert_eq!(history["versions"].as_array().map(Vec::len), Some(3), "{history}");
}

#[tokio::test]
async fn the_admins_forms_posted_twice_create_one_party_one_office_one_holder() {
    let server = spawn(false).await;
    let admin = session(&server, ADMIN_TOKEN).await;
    let (_, page) = server.get("/console/admin/parties", &admin).await;
    let create = [("action", "create"), ("kind", "customs"), ("name", "Customs LT"), ("country", "LT"), ("tir_id", "")];
    let form = filled(&page, "id=\"party-create\"", &create);
    let form = pairs(&form);
    let entries = server.journal_entries().await;
    let path = "/console/admin/parties";
    let (first, second) = tokio::join!(server.post(path, &admin, &form), server.post(path, &admin, &form));
    assert_eq!((first.0, second.0), (201, 201), "{}", first.2);
    // Both answers show the one party's token: not a second party's.
    let token = |page: &str| {
        let at = page.find("id=\"new-token\">").expect("the token") + "id=\"new-token\">".len();
        page[at..at + page[at..].find('<').expect("its end")].to_owned()
    };
    assert_eq!(token(&first.2), token(&second.2));
    assert!(token(&first.2).starts_with("tirhub_"));
    assert_eq!(server.journal_entries().await, entries + 1, "one PARTY entry");
    let (_, list) = server.get(path, &admin).await;
    assert_eq!(list.matches("<td>Customs LT</td>").count(), 1, "one party: {list}");

    // An office and a holder, each posted twice at once: one journal entry each.
    let (_, page) = server.get("/console/admin/offices", &admin).await;
    let office = [("code", "LT000001"), ("country", "LT"), ("name", "Medininkai"), ("role_entry", "on")];
    let form = filled(&page, "id=\"office\"", &office);
    let form = pairs(&form);
    let path = "/console/admin/offices";
    let (first, second) = tokio::join!(server.post(path, &admin, &form), server.post(path, &admin, &form));
    assert_eq!((first.0, first.1.as_str()), (303, "/console/admin/offices?done=LT000001"), "{}", first.2);
    assert_eq!((first.0, &first.1), (second.0, &second.1));
    assert_eq!(server.journal_entries().await, entries + 2, "one OFFICE entry");

    let (_, page) = server.get("/console/admin/holders", &admin).await;
    let holder = [("tir_id", "LTU/012/345"), ("name", "Baltic Haulage"), ("country", "LT"), ("status", "authorized")];
    let form = filled(&page, "id=\"holder\"", &holder);
    let form = pairs(&form);
    let path = "/console/admin/holders";
    let (first, second) = tokio::join!(server.post(path, &admin, &form), server.post(path, &admin, &form));
    assert_eq!(first.0, 303, "{}", first.2);
    assert_eq!((first.0, &first.1), (second.0, &second.1));
    assert_eq!(server.journal_entries().await, entries + 3, "one HOLDER entry");
}

/// In Chromium: the party form's button clicked twice, 5 ms apart (WebDriver's
/// page load strategy `none`: nothing waits for the page); the page shown has
/// the token of the one party created, and that token authenticates.
#[tokio::test]
async fn a_double_click_on_the_party_form_in_chromium_creates_one_party() {
    use std::time::Duration;

    use fantoccini::Locator;

    let Some(driver) = super::browser::Driver::start().await else { return };
    let server = spawn(false).await;
    let client = driver.session(super::browser::PageLoad::None).await;
    // Signed in through the page (page loads are not awaited: wait for the elements).
    let wait = |css: &'static str| {
        let client = client.clone();
        async move {
            client
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no {css}: {e}"))
        }
    };
    client.goto(&format!("{}/console/sign-in", server.base)).await.expect("the sign-in page");
    wait("#token").await.send_keys(ADMIN_TOKEN).await.expect("type");
    client
        .find(Locator::Css("form[action='/console/sign-in'] button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    wait("#party-create").await;
    let entries = server.journal_entries().await;
    wait("#party-name").await.send_keys("Customs LT").await.expect("type");
    client.find(Locator::Id("party-country")).await.expect("country").send_keys("LT").await.expect("type");
    // Two clicks, the second in a later task, while the first request is under way:
    // the browser sends the form again and shows the second answer.
    client
        .execute(
            "let b = document.querySelector('#party-create button'); b.click(); setTimeout(() => b.click(), 5);",
            vec![],
        )
        .await
        .expect("click twice");
    let token = wait("#new-token").await.text().await.expect("the token");
    assert!(token.starts_with("tirhub_"), "{token}");
    assert_eq!(server.journal_entries().await, entries + 1, "one PARTY entry");
    let (_, list) = server.get("/console/admin/parties", &session(&server, ADMIN_TOKEN).await).await;
    assert_eq!(list.matches("<td>Customs LT</td>").count(), 1, "one party: {list}");
    let (status, answer) = server.api(Method::GET, "/v1/risk/profiles", &token, None).await;
    assert_eq!(status, 200, "the token shown is the party's: {answer}");
    client.close().await.expect("close the session");
}
