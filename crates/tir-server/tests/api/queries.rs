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
