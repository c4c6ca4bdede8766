//! `GET /metrics` (Prometheus text format): requests, messages by type and
//! result, rate-limit refusals by party kind, connections, the feed's depth.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tir_server::{RateLimit, RateLimits};
use tir_testkit::TempSqlite;
use tir_testkit::server::*;
use tokio::sync::oneshot;

/// The value of the series named exactly `series` (name and labels).
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_messages_by_type_and_result_requests_and_refusals() {
    let limits = RateLimits { holder: RateLimit::new(0.01, 1), ..RateLimits::unlimited() };
    let app = spawn_app_limited(limits).await;
    let c = Corridor::seed(&app).await;
    for _ in 0..2 {
        let (status, body) = app.send(&c.chain_a, &message("E1", &reference(), json!({"holder": HOLDER}))).await;
        assert_eq!(status, 200, "{body}");
    }
    let refused = app.send(&c.chain_a, &message("E1", &reference(), json!({"holder": "TUR/999/999"}))).await;
    assert_eq!(refused.0, 422, "{}", refused.1);
    app.post_raw(&c.chain_a, "not json").await.assert_error(100, "");
    // The holder's burst is 1: its second request is refused (429/386).
    app.get_reply(&c.holder, "/v1/notifications").await;
    assert_eq!(app.get_reply(&c.holder, "/v1/notifications").await.status, 429);

    let reply = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.content_type.starts_with("text/plain; version=0.0.4"), "{}", reply.content_type);
    let m = &reply.text;
    let code = refused.1["error"]["code"].as_u64().unwrap();
    for (series, expected) in [
        ("tirhub_messages_total{type=\"E1\",status=\"200\",code=\"0\"}", 2.0),
        (&format!("tirhub_messages_total{{type=\"E1\",status=\"422\",code=\"{code}\"}}"), 1.0),
        ("tirhub_messages_total{type=\"unknown\",status=\"400\",code=\"100\"}", 1.0),
        ("tirhub_http_requests_total{route=\"/v1/messages\",method=\"POST\",status=\"200\"}", 2.0),
        ("tirhub_http_requests_total{route=\"/v1/notifications\",method=\"GET\",status=\"429\"}", 1.0),
        ("tirhub_http_request_duration_seconds_count{route=\"/v1/messages\",method=\"POST\"}", 4.0),
        ("tirhub_http_request_duration_seconds_bucket{route=\"/v1/messages\",method=\"POST\",le=\"+Inf\"}", 4.0),
        ("tirhub_rate_limit_refusals_total{party_kind=\"holder\"}", 1.0),
        ("tirhub_rate_limit_refusals_total{party_kind=\"customs\"}", 0.0),
        ("tirhub_risk_cursor", 0.0),
    ] {
        assert_eq!(value(m, series), Some(expected), "{series} in\n{m}");
    }
    assert!(value(m, "tirhub_connections_open").is_some_and(|open| open >= 1.0), "{m}");
    assert!(value(m, "tirhub_feed_unassessed_items").is_some(), "{m}");
    // Nothing is being written while the scrape runs: the writer's queue is empty.
    assert_eq!(value(m, "tirhub_writer_queue_depth"), Some(0.0), "{m}");
    assert!(m.contains("# TYPE tirhub_writer_queue_depth gauge"), "{m}");
    // Every sample line is NAME{LABELS} VALUE or NAME VALUE, after its # TYPE.
    for line in m.lines().filter(|line| !line.starts_with('#')) {
        let (_, number) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(number.parse::<f64>().is_ok(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_metrics_token_metrics_need_it() {
    let db = TempSqlite::new("tirhub-metrics").expect("a test directory");
    let store = tir_store::open(db.url()).await.expect("open the store");
    let app = tir_server::App::new(store, ADMIN_TOKEN).with_metrics_token("scrape-token-0123456789");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(tir_server::serve(listener, app, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let open = client.get(&url).send().await.unwrap();
    assert_eq!(open.status().as_u16(), 401);
    let body: serde_json::Value = open.json().await.unwrap();
    assert_eq!(body["error"]["code"], 390);
    let wrong = client.get(&url).bearer_auth("another-token").send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = client.get(&url).bearer_auth("scrape-token-0123456789").send().await.unwrap();
    assert_eq!(right.status().as_u16(), 200);
    assert!(right.text().await.unwrap().contains("tirhub_connections_open"));
}
