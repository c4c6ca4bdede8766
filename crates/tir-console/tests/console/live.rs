//! The dashboard's live part: htmx asks for it again every 10 s.

use super::{act, session, spawn};

/// The tag of the live part in `html`: what its next poll says it has seen.
fn seen_tag(html: &str) -> String {
    let from = html.find("hx-get=\"/console/dashboard/live?seen=").expect("the live part's poll") + 37;
    html[from..].split('"').next().unwrap().to_owned()
}

fn trigger(tag: &str) -> String {
    format!(
        "<div id=\"live\" hx-get=\"/console/dashboard/live?seen={tag}\" hx-trigger=\"every 10s\" hx-swap=\"outerHTML\">"
    )
}

#[tokio::test]
async fn the_dashboards_map_and_crossings_refresh_from_their_own_route() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    server.advance_data(&seeded).await;
    let (tr, ge) = (session(&server, &seeded.tr).await, session(&server, &seeded.ge).await);
    // The page carries the trigger on the element the fragment replaces.
    let (status, page) = server.get("/console/dashboard", &ge).await;
    assert_eq!(status, 200, "{page}");
    let tag = seen_tag(&page);
    assert_eq!(page.matches(&trigger(&tag)).count(), 1, "{page}");
    assert!(page.contains("No transport has crossed a border yet."), "{page}");
    // The part alone: no page around it, with the trigger again (outerHTML), and nothing crossed yet.
    let (status, part) = server.get("/console/dashboard/live", &ge).await;
    assert_eq!(status, 200, "{part}");
    assert!(part.starts_with(&trigger(&tag)) && !part.contains("<html"), "{part}");
    assert!(part.contains("No transport has crossed a border yet.") && !part.contains("hit-rates"), "{part}");
    // Nothing written since: the poll of what was seen is 204, which htmx leaves in place.
    let seen = format!("/console/dashboard/live?seen={tag}");
    let (status, nothing) = server.get(&seen, &ge).await;
    assert_eq!((status, nothing.as_str()), (204, ""));
    // Another viewer's tag is not this one's.
    assert_ne!(seen_tag(&server.get("/console/dashboard/live", &tr).await.1), tag);

    // A crossing: the next answer of the part has it, the map's arrow and both offices.
    for action in ["accept", "record", "start", "terminate", "discharge"] {
        act(&server, &tr, &seeded.reference, action, "TR000100").await;
    }
    act(&server, &ge, &seeded.reference, "start", "GE000100").await;
    let response = server
        .client
        .get(format!("{}{seen}", server.base))
        .header("cookie", &ge)
        .header("HX-Request", "true")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let part = response.text().await.expect("a body");
    let new_tag = seen_tag(&part);
    assert_ne!(new_tag, tag, "the journal moved on");
    assert!(part.starts_with(&trigger(&new_tag)), "{part}");
    assert!(part.contains("1 border crossings") && part.contains("<td>TR → GE</td>"), "{part}");
    assert!(part.contains("data-pair=\"TR-GE\"") && part.contains("data-office=\"GE000100\""), "{part}");
    assert!(part.contains("Crossings per day at GE000100"), "{part}");

    // Holders and chains may not read it; without a session it is the sign-in's 303.
    for token in [&seeded.holder, &seeded.chain] {
        let cookies = session(&server, token).await;
        let (status, part) = server.get("/console/dashboard/live", &cookies).await;
        assert_eq!(status, 403);
        assert!(!part.contains("TR → GE"), "{part}");
    }
    assert_eq!(server.get("/console/dashboard/live", "").await.0, 303);
}

/// The arrivals list refreshes itself too: 204 while nothing was written,
/// the transport once it is announced to the country, only to customs.
#[tokio::test]
async fn the_arrivals_list_refreshes_from_its_own_route() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    let (tr, ge) = (session(&server, &seeded.tr).await, session(&server, &seeded.ge).await);
    let (status, page) = server.get("/console/arrivals", &tr).await;
    assert_eq!(status, 200);
    let from = page.find("hx-get=\"/console/arrivals/live?seen=").expect("the list polls") + 36;
    let tag = page[from..].split('"').next().unwrap().to_owned();
    assert!(page.contains("hx-trigger=\"every 10s\"") && page.contains("No transport is announced."), "{page}");
    let seen = format!("/console/arrivals/live?seen={tag}");
    let (status, nothing) = server.get(&seen, &tr).await;
    assert_eq!((status, nothing.as_str()), (204, ""));
    // The holder's advance data announces the transport to departure (TR): the poll draws it.
    server.advance_data(&seeded).await;
    let (status, part) = server.get(&seen, &tr).await;
    assert_eq!(status, 200, "{part}");
    assert!(part.starts_with("<div id=\"arrivals\" hx-get=\"/console/arrivals/live?seen="), "{part}");
    assert!(part.contains(&seeded.reference) && !part.contains("<html") && !part.contains(&seen), "{part}");
    // GE sees its own list, without it; holders may not poll; no session: the sign-in's 303.
    let (status, part) = server.get("/console/arrivals/live", &ge).await;
    assert!(status == 200 && !part.contains(&seeded.reference), "{part}");
    let holder = session(&server, &seeded.holder).await;
    assert_eq!(server.get("/console/arrivals/live", &holder).await.0, 403);
    assert_eq!(server.get("/console/arrivals/live", "").await.0, 303);
}

/// In Chromium: the admin's dashboard, opened before anything crossed, shows
/// the crossing made meanwhile without being reloaded (htmx swapped the live
/// part: a mark set on the window before is still there, the URL unchanged).
#[tokio::test]
async fn the_dashboard_open_in_chromium_shows_a_new_crossing_without_a_reload() {
    use std::time::Duration;

    use serde_json::json;
    use tir_testkit::fixtures::ADMIN_TOKEN;

    let Some(driver) = super::browser::Driver::start().await else { return };
    let server = spawn(false).await;
    let seeded = server.seed().await;
    server.advance_data(&seeded).await;
    let client = driver.session(super::browser::PageLoad::Normal).await;
    super::browser::sign_in(&client, &server.base, ADMIN_TOKEN, "/console/admin/parties").await;
    client.goto(&format!("{}/console/dashboard", server.base)).await.expect("the dashboard");
    let live = "document.getElementById('live').textContent";
    let text = client.execute(&format!("window.kept = 'before'; return {live};"), vec![]).await.expect("read");
    assert!(text.as_str().unwrap_or("").contains("No transport has crossed a border yet."), "{text}");

    let (tr, ge) = (session(&server, &seeded.tr).await, session(&server, &seeded.ge).await);
    for action in ["accept", "record", "start", "terminate", "discharge"] {
        act(&server, &tr, &seeded.reference, action, "TR000100").await;
    }
    act(&server, &ge, &seeded.reference, "start", "GE000100").await;
    // htmx asks every 10 s: within three rounds the part holds the crossing.
    let mut shown = json!(null);
    for _ in 0..300 {
        shown = client.execute(&format!("return [window.kept || null, {live}];"), vec![]).await.expect("read");
        if shown[1].as_str().is_some_and(|t| t.contains("TR → GE")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shown[1].as_str().is_some_and(|t| t.contains("TR → GE")), "not refreshed within 30 s: {shown}");
    assert_eq!(shown[0], json!("before"), "the page was not reloaded");
    assert_eq!(client.current_url().await.expect("a URL").path(), "/console/dashboard");
    // Still polling: the swapped element carries the trigger on.
    let trigger = client
        .execute("return document.getElementById('live').getAttribute('hx-trigger');", vec![])
        .await
        .expect("read");
    assert_eq!(trigger, json!("every 10s"));
    client.close().await.expect("close the session");
}
