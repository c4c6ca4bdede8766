//! Holder and office queries (I3, I19).

use serde_json::json;

use tir_testkit::server::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holder_and_office_queries_return_their_views() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    for token in [&c.tr, &c.am, &c.chain_a, &c.holder, &app.admin] {
        let (status, holder) = app.get(token, "/v1/holders/TUR%2F012%2F345").await;
        assert_eq!(status, 200, "{holder}");
        assert_eq!(
            holder,
            json!({"tir_id": HOLDER, "name": "Carrier TUR/012/345", "country": "TR", "status": "authorized"})
        );
        let (status, office) = app.get(token, "/v1/offices/AZ000200").await;
        assert_eq!(status, 200, "{office}");
        assert_eq!(office["code"], "AZ000200");
        assert_eq!(office["country"], "AZ");
        assert_eq!(office["name"], "Office AZ000200");
        assert_eq!(office["roles"], json!(["entry", "destination"]));
    }
    let (_, withdrawn) = app.get(&c.tr, "/v1/holders/TUR%2F012%2F999").await;
    assert_eq!(withdrawn["status"], "withdrawn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_holder_or_office_is_404_and_a_malformed_id_is_400_with_106() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    app.get_reply(&c.tr, "/v1/holders/TUR%2F012%2F777").await.assert_not_found(322, "/tir_id");
    app.get_reply(&c.tr, "/v1/offices/TR009999").await.assert_not_found(304, "/code");
    app.get_reply(&c.tr, "/v1/holders/TUR-012-345").await.assert_error(106, "/tir_id");
    app.get_reply(&c.tr, "/v1/holders/tur%2F012%2F345").await.assert_error(106, "/tir_id");
    app.get_reply(&c.tr, "/v1/offices/tr000100").await.assert_error(106, "/code");
    app.get_reply(&c.tr, "/v1/offices/TR00-100").await.assert_error(106, "/code");
    app.get_reply(&c.tr, "/v1/offices/TR0001").await.assert_error(105, "/code");
    app.get_reply(&c.tr, "/v1/holders/QQQ%2F012%2F345").await.assert_error(305, "/tir_id");
}

/// A feed page stops before it would pass 1 MiB (`NOTIFICATION_PAGE_BYTES_MAX`),
/// whatever the limit asked; the next page goes on where it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_page_stops_before_one_mib_and_the_next_page_goes_on() {
    use tir_model::limits::NOTIFICATION_PAGE_BYTES_MAX;
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    let mut trip = Trip::new(&app, &c);
    trip.register().await;
    // Advance data of about 220 KB, sent once and amended four times: five E9/E11 items for TR.
    let mut big = declaration();
    let goods = big["consignments"][0]["goods"][0].clone();
    let mut many = Vec::new();
    for i in 0..380 {
        let mut g = goods.clone();
        g["description"] = json!(format!("{i:04} {}", "spare parts for passenger cars ".repeat(16)));
        many.push(g);
    }
    big["consignments"][0]["goods"] = json!(many);
    for kind in ["E9", "E11", "E11", "E11", "E11"] {
        let body = message(kind, &trip.reference, json!({ "declaration": big }));
        assert_eq!(app.post(&c.holder, &body).await.status, 200);
    }
    let (status, page) = app.get(&c.tr, "/v1/notifications?limit=1000").await;
    assert_eq!(status, 200);
    let items = page["items"].as_array().unwrap();
    let bytes: usize = items.iter().map(|i| i.to_string().len()).sum();
    assert!((1..5).contains(&items.len()), "{} items on the first page", items.len());
    assert!(bytes <= NOTIFICATION_PAGE_BYTES_MAX, "{bytes} bytes on one page");
    let next = page["next"].as_str().unwrap();
    let (_, rest) = app.get(&c.tr, &format!("/v1/notifications?after={next}&limit=1000")).await;
    let rest = rest["items"].as_array().unwrap();
    assert_eq!(items.len() + rest.len(), 5, "nothing lost between the pages");
    assert_eq!(rest.last().unwrap()["type"], "E11");
}

/// A page is read from the store in growing chunks (16, then 64, ...): a feed
/// longer than the first chunk still comes whole and in order in one page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_page_longer_than_the_first_read_comes_whole_and_in_order() {
    let app = spawn_app().await;
    let c = Corridor::seed(&app).await;
    // Each E9 is forwarded to the customs of departure: 90 items in TR's feed.
    for _ in 0..90 {
        let r = reference();
        let (status, body) = app.send(&c.chain_a, &message("E1", &r, json!({"holder": HOLDER}))).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = app.send(&c.holder, &message("E9", &r, json!({"declaration": declaration()}))).await;
        assert_eq!(status, 200, "{body}");
    }
    let whole = app.feed(&c.tr).await;
    assert_eq!(whole.len(), 90);
    assert_eq!(whole, app.feed_paged(&c.tr, 7).await);
    let cursors: Vec<i64> = whole.iter().map(|i| i["cursor"].as_str().unwrap().parse().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    let page = app.feed_page(&c.tr, "", 50).await;
    assert_eq!(page["items"].as_array().unwrap()[..], whole[..50]);
}
