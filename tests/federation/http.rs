//! HTTP behaviour of a node: problem+json errors, limits, HTTP/2, health and metrics.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

fn assert_problem(reply: &attesta::client::Reply, status: u16, slug: &str) {
    assert_eq!(reply.status, status);
    assert_eq!(reply.content_type(), Some("application/problem+json"));
    let p = reply.json::<serde_json::Value>().unwrap();
    assert_eq!(p["type"], format!("urn:attesta:problem:{slug}"));
    assert_eq!(p["status"], status);
    assert!(p["title"].is_string());
}

#[tokio::test]
async fn oversized_body_gets_413_problem_and_the_node_keeps_serving() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |c| {
        c.limits.max_body_bytes = 1024
    })
    .await;
    let client = pki.client("inps-pesaro");

    let big = Bytes::from(vec![b'x'; 4096]);
    let reply = client
        .request(Method::POST, &node.url("/v1/whoami"), Some(big))
        .await
        .unwrap();
    assert_problem(&reply, 413, "body-too-large");

    // A body within the limit on the same route gets past the limit (to the method check).
    let small = Bytes::from_static(b"{}");
    let reply = client
        .request(Method::POST, &node.url("/v1/whoami"), Some(small))
        .await
        .unwrap();
    assert_problem(&reply, 405, "method-not-allowed");
    assert_eq!(reply.headers.get("allow").unwrap(), "GET");

    let reply = client.get(&node.url("/v1/whoami")).await.unwrap();
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn unknown_routes_get_404_problem() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let client = pki.client("inps-pesaro");
    let reply = client.get(&node.url("/v1/nope")).await.unwrap();
    assert_problem(&reply, 404, "not-found");
    // Never echoes internals.
    let body = String::from_utf8(reply.body.to_vec()).unwrap();
    assert!(
        !body.contains("/v1/nope") && !body.contains("src/"),
        "{body}"
    );
}

#[tokio::test]
async fn slow_headers_close_the_connection_and_others_are_served() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |c| {
        c.limits.header_read_timeout_ms = 200;
    })
    .await;
    let mut slow = raw_tls(&mut pki, "inps-pesaro", &node, &[b"http/1.1"]).await;
    slow.write_all(b"GET /v1/whoami HTTP/1.1\r\nHost: node\r\n")
        .await
        .unwrap();
    slow.flush().await.unwrap();

    // Meanwhile another client is served normally.
    let other = pki.client("asl-1");
    assert_eq!(
        other.get(&node.url("/v1/whoami")).await.unwrap().status,
        200
    );

    // The node gives up on the slow client: the connection ends (possibly after a 408).
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut buf))
        .await
        .expect("the node closes a connection whose headers never finish");
    let text = String::from_utf8_lossy(&buf);
    assert!(
        read.is_err() || buf.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer to incomplete headers: {text}"
    );
    assert_eq!(
        other.get(&node.url("/v1/whoami")).await.unwrap().status,
        200
    );
}

#[tokio::test]
async fn http2_is_served_with_the_same_identity() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let tls = raw_tls(&mut pki, "inps-pesaro", &node, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    // Several requests multiplexed on one connection.
    let mut answers = Vec::new();
    for _ in 0..3 {
        let req = http::Request::get(node.url("/v1/whoami"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        answers.push(sender.send_request(req));
    }
    for answer in answers {
        let resp = answer.await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["agency"], "inps-pesaro");
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let client = pki.client("inps-pesaro");

    let health = client.get(&node.url("/healthz")).await.unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(health.json::<serde_json::Value>().unwrap()["status"], "ok");
    let ready = client.get(&node.url("/readyz")).await.unwrap();
    assert_eq!(
        ready.json::<serde_json::Value>().unwrap()["status"],
        "ready"
    );
    let _ = client.get(&node.url("/v1/nope")).await.unwrap();

    // Metrics are for the node's own operator, not for other agencies.
    let denied = client.get(&node.url("/metrics")).await.unwrap();
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.json::<serde_json::Value>().unwrap()["type"],
        "urn:attesta:problem:policy-denied"
    );
    let reply = pki
        .client("comune-pesaro")
        .get(&node.url("/metrics"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.content_type().unwrap().starts_with("text/plain"));
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    for series in [
        "attesta_http_requests_total{route=\"/healthz\",status=\"200\"}",
        "attesta_http_requests_total{route=\"unmatched\",status=\"404\"}",
        "attesta_http_request_duration_seconds_count{route=\"/readyz\"}",
        "attesta_tls_handshakes_total",
        // RocksDB's budget in use, read when scraped (index and filter blocks at least).
        "attesta_store_memory_in_use_bytes",
    ] {
        assert!(
            metric(&text, series).is_some_and(|v| v >= 1.0),
            "{series} missing from:\n{text}"
        );
    }
    assert!(text.contains("attesta_http_request_duration_seconds_bucket{le=\""));
}

#[tokio::test]
async fn shutdown_drains_and_stops_accepting() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let client = pki.client("inps-pesaro");
    let mut conn = client.connect(&node.url).await.unwrap();
    assert_eq!(
        conn.request(Method::GET, "/v1/whoami", None)
            .await
            .unwrap()
            .status,
        200
    );
    let url = node.url.clone();
    // `stop` returns only once every connection has been closed by the node.
    node.stop().await;
    assert!(
        client.connect(&url).await.is_err(),
        "node still accepts after shutdown"
    );
    assert!(conn.request(Method::GET, "/v1/whoami", None).await.is_err());
}
