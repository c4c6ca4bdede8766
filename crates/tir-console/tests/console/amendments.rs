//! Amendments with what changed, on the customs transport page.

use reqwest::Method;
use serde_json::json;
use tir_testkit::fixtures::{SEAL, declaration, message};

use super::{act, session, spawn};

/// The holder amends the advance data before recording (E11: a description
/// changed, a goods line added), then en route in TR (E11 with `country`: the
/// mass changed, a seal added), which TR's customs accept (I7, version 2): the
/// transport page lists the three amendments with who sent them and the fields
/// that changed, for TR and for GE further on; DE, off the itinerary, gets 403.
#[tokio::test]
async fn the_transport_page_lists_each_amendment_with_the_fields_that_changed() {
    let server = spawn(false).await;
    let seeded = server.seed().await;
    server.advance_data(&seeded).await;
    let (tr, ge) = (session(&server, &seeded.tr).await, session(&server, &seeded.ge).await);
    let path = format!("/console/transports/{}", seeded.reference);
    let (_, page) = server.get(&path, &tr).await;
    assert!(page.contains("id=\"amendments\"") && page.contains("The declaration has not been amended."), "{page}");

    let mut before_recording = declaration();
    before_recording["consignments"][0]["goods"][0]["description"] = json!("Passenger cars, new");
    before_recording["consignments"][0]["goods"]
        .as_array_mut()
        .expect("goods")
        .push(json!({"hs_code": "870899", "description": "Car parts", "gross_mass_kg": 300.0}));
    let e11 = message("E11", &seeded.reference, json!({"declaration": before_recording}));
    let (status, answer) = server.api(Method::POST, "/v1/messages", &seeded.holder, Some(e11)).await;
    assert_eq!(status, 200, "{answer}");
    for action in ["accept", "record", "start"] {
        act(&server, &tr, &seeded.reference, action, "TR000100").await;
    }
    let mut en_route = before_recording.clone();
    en_route["consignments"][0]["goods"][1]["gross_mass_kg"] = json!(450.0);
    en_route["seals"] = json!([SEAL, "TR-7731"]);
    let e11 = message("E11", &seeded.reference, json!({"declaration": en_route, "country": "TR"}));
    let (status, answer) = server.api(Method::POST, "/v1/messages", &seeded.holder, Some(e11)).await;
    assert_eq!(status, 200, "{answer}");
    act(&server, &tr, &seeded.reference, "record", "TR000100").await;
    let (_, guarantee) =
        server.api(Method::GET, &format!("/v1/guarantees/{}", seeded.reference), &seeded.tr, None).await;
    assert_eq!(guarantee["transport"]["declaration_version"], 2, "{guarantee}");

    for cookies in [&tr, &ge] {
        let (status, page) = server.get(&path, cookies).await;
        assert_eq!(status, 200, "{page}");
        let start = page.find("id=\"amendments\"").expect("the amendments section");
        let section = &page[start..start + page[start..].find("</section>").expect("its end")];
        let headings: Vec<&str> = section.match_indices("<h3>").map(|(at, _)| &section[at + 4..]).collect();
        assert_eq!(headings.len(), 3, "{section}");
        assert!(headings[0].starts_with("E11 · advance data amended before recording"), "{section}");
        assert!(headings[1].starts_with("E11 · amendment requested in TR, over version 1"), "{section}");
        assert!(headings[2].starts_with("I7 · version 2 accepted at TR000100"), "{section}");
        let rows = |from: usize, to: usize| {
            let (a, b) = (section.match_indices("<h3>").nth(from).unwrap().0, to);
            section[a..b].to_owned()
        };
        let first = rows(0, section.match_indices("<h3>").nth(1).unwrap().0);
        assert!(
            first.contains(
                "<td>consignment 1, goods line 1: description</td><td>Passenger cars</td><td>Passenger cars, new</td>"
            ),
            "{first}"
        );
        assert!(
            first.contains("<td>consignment 1, goods line 2</td><td><span class=\"hint\">(added)</span></td><td>870899 Car parts, 300 kg, none, no packages</td>"),
            "{first}"
        );
        // Who: the holder's party id, as the journal's E9 row (further down) names its sender.
        let marker = "<td>E9<br><span class=\"hint\">";
        let e9 = &page[page.find(marker).expect("the E9 entry") + marker.len()..];
        let holder_id = &e9[..e9.find("</span>").expect("the sender's end")];
        assert!(!holder_id.is_empty() && first.contains(&format!(" · {holder_id}</p>")), "{holder_id}: {first}");
        let last = rows(2, section.len());
        assert!(
            last.contains("<td>consignment 1, goods line 2: gross mass</td><td>300 kg</td><td>450 kg</td>"),
            "{last}"
        );
        assert!(last.contains("<td>seal</td><td><span class=\"hint\">(added)</span></td><td>TR-7731</td>"), "{last}");
        assert_eq!(last.matches("<tr>").count(), 3, "header and two changes: {last}");
    }
    // The holder and the chain see them on the portal's page of the transport.
    for token in [&seeded.holder, &seeded.chain] {
        let cookies = session(&server, token).await;
        let (status, page) = server.get(&format!("/console/my/transports/{}", seeded.reference), &cookies).await;
        assert_eq!(status, 200, "{page}");
        let start = page.find("id=\"amendments\"").expect("the amendments section");
        let section = &page[start..start + page[start..].find("</section>").expect("its end")];
        assert_eq!(section.matches("<h3>").count(), 3, "{section}");
        assert!(section.contains("<td>TR-7731</td>") && section.contains("<td>450 kg</td>"), "{section}");
    }
    let de = session(&server, &seeded.de).await;
    let (status, page) = server.get(&path, &de).await;
    assert_eq!(status, 403);
    assert!(!page.contains("TR-7731"), "{page}");
}
