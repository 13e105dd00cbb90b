//! A hostile member: every agency holds a valid certificate, and none of them may take a node
//! down for the others. Idle, silent and stalled connections are closed; one agency's flood of
//! connections is refused while other agencies, the node's own operator and the Prefettura
//! are served. Bounded in time and count; no timing assertions beyond "within the bound".

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// How long a test waits for the node to close a connection it must close.
const BOUND: Duration = Duration::from_secs(20);

/// Short timeouts so the tests run quickly.
fn quick(c: &mut attesta::config::NodeConfig) {
    c.limits.header_read_timeout_ms = 300;
    c.limits.idle_timeout_ms = 400;
    c.limits.send_timeout_ms = 400;
}

/// An HTTP/2 connection of agency `id`, with the client's stream window set to `window`.
async fn h2(
    pki: &mut Pki,
    id: &str,
    node: &TestNode,
    window: Option<u32>,
) -> (
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
) {
    let tls = raw_tls(pki, id, node, &[b"h2"]).await;
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    // The client answers the server's PINGs and sends its own: it looks alive.
    builder.keep_alive_interval(Duration::from_millis(100));
    builder.keep_alive_while_idle(true);
    if let Some(w) = window {
        builder.initial_stream_window_size(w);
    }
    let (sender, conn) = builder.handshake(TokioIo::new(tls)).await.unwrap();
    (sender, tokio::spawn(conn))
}

async fn whoami(
    sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    node: &TestNode,
) -> http::Response<hyper::body::Incoming> {
    sender.ready().await.unwrap();
    let req = http::Request::get(node.url("/v1/whoami"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    sender.send_request(req).await.unwrap()
}

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "questura-pu", quick).await;
    for alpn in [&b"h2"[..], b"http/1.1", b""] {
        let protocols: Vec<&[u8]> = if alpn.is_empty() { vec![] } else { vec![alpn] };
        let mut silent = raw_tls(&mut pki, "inps-pesaro", &node, &protocols).await;
        let mut buf = Vec::new();
        // The node may write (HTTP/2 settings, a GOAWAY) but then closes.
        let closed = tokio::time::timeout(BOUND, silent.read_to_end(&mut buf)).await;
        assert!(
            closed.is_ok(),
            "a silent connection ({:?}) was kept open",
            String::from_utf8_lossy(alpn)
        );
    }
    // HTTP/2 is closed by the node's watchdog (HTTP/1.1 by hyper's header timeout first).
    let me = pki.client("questura-pu");
    let closed = wait_metric(
        &me,
        &node,
        "attesta_connections_closed_total{reason=\"no_request\"}",
        1.0,
    )
    .await;
    assert!(closed >= 1.0);
}

#[tokio::test]
async fn an_http2_connection_that_only_answers_pings_is_closed_when_idle() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "questura-pu", quick).await;
    let (mut sender, conn) = h2(&mut pki, "inps-pesaro", &node, None).await;
    let resp = whoami(&mut sender, &node).await;
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();

    // Nothing more is asked; the client keeps pinging. The node ends the connection.
    tokio::time::timeout(BOUND, conn)
        .await
        .expect("an idle HTTP/2 connection is closed")
        .unwrap()
        .ok();
    assert!(sender.is_closed());

    // HTTP/1.1 keep-alive the same way.
    let mut h1 = raw_tls(&mut pki, "inps-pesaro", &node, &[b"http/1.1"]).await;
    h1.write_all(b"GET /v1/whoami HTTP/1.1\r\nhost: node\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(BOUND, h1.read_to_end(&mut buf))
        .await
        .expect("an idle HTTP/1.1 connection is closed")
        .ok();
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_stream_stalled_by_a_zero_window_closes_its_connection_and_others_are_served() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "questura-pu", |c| {
        quick(c);
        // Idle connections stay: only the stall may close this one.
        c.limits.idle_timeout_ms = 600_000;
    })
    .await;
    // A client that never opens its flow-control window: the answer's headers arrive, its
    // body can never be sent.
    let (mut stalled, conn) = h2(&mut pki, "inps-pesaro", &node, Some(0)).await;
    let mut pending = Vec::new();
    for _ in 0..4 {
        pending.push(whoami(&mut stalled, &node).await);
    }
    // Meanwhile another agency is served.
    let other = pki.client("asl-1");
    assert_eq!(
        other.get(&node.url("/v1/whoami")).await.unwrap().status,
        200
    );
    tokio::time::timeout(BOUND, conn)
        .await
        .expect("a connection whose answers cannot be sent is closed")
        .unwrap()
        .ok();
    drop(pending);
    let me = pki.client("questura-pu");
    wait_metric(
        &me,
        &node,
        "attesta_connections_closed_total{reason=\"stalled\"}",
        1.0,
    )
    .await;
    assert_eq!(
        other.get(&node.url("/v1/whoami")).await.unwrap().status,
        200
    );
}

#[tokio::test]
async fn one_agency_flooding_connections_is_refused_while_others_are_served() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "questura-pu", |c| {
        c.limits.max_connections = 6;
        c.limits.reserved_connections = 2;
        c.limits.max_connections_per_agency = 3;
    })
    .await;
    let me = pki.client("questura-pu");
    // The readiness probe's connection may still be closing.
    eventually(|| async {
        let m = me.get(&node.url("/metrics")).await.ok()?;
        let text = String::from_utf8(m.body.to_vec()).ok()?;
        (metric(&text, "attesta_open_connections") == Some(1.0)).then_some(())
    })
    .await;

    // INPS holds three connections: its cap.
    let mut held = Vec::new();
    for _ in 0..3 {
        let (mut s, c) = h2(&mut pki, "inps-pesaro", &node, None).await;
        assert_eq!(whoami(&mut s, &node).await.status(), 200);
        held.push((s, c));
    }
    // A fourth is told why, in problem+json, and closed.
    let refused = pki
        .client("inps-pesaro")
        .get(&node.url("/v1/whoami"))
        .await
        .unwrap();
    assert_eq!(refused.status, 429);
    assert_eq!(refused.content_type(), Some("application/problem+json"));
    let p = refused.json::<serde_json::Value>().unwrap();
    assert_eq!(p["type"], "urn:attesta:problem:too-many-connections");
    assert!(
        p["detail"].as_str().unwrap().contains("3 connections"),
        "{p}"
    );
    assert!(refused.headers.get("retry-after").is_some());

    // Another agency gets in: the fourth unreserved place.
    let (mut asl, _asl_conn) = h2(&mut pki, "asl-1", &node, None).await;
    assert_eq!(whoami(&mut asl, &node).await.status(), 200);
    // Now only the reserve is left: a third agency is refused...
    let full = pki
        .client("comune-urbino")
        .get(&node.url("/v1/whoami"))
        .await
        .unwrap();
    assert_eq!(full.status, 429);
    // ...while the node's own operator and the Prefettura still get in.
    assert_eq!(me.get(&node.url("/v1/whoami")).await.unwrap().status, 200);
    let prefettura = pki.client(PREFETTURA);
    assert_eq!(
        prefettura
            .get(&node.url("/v1/whoami"))
            .await
            .unwrap()
            .status,
        200
    );

    // INPS lets go of its connections: the others get their places back.
    drop(held);
    let urbino = pki.client("comune-urbino");
    eventually(|| async {
        let r = urbino.get(&node.url("/v1/whoami")).await.ok()?;
        (r.status == 200).then_some(())
    })
    .await;
    let text =
        String::from_utf8(me.get(&node.url("/metrics")).await.unwrap().body.to_vec()).unwrap();
    assert_metric_at_least(
        &text,
        "attesta_connections_refused_total{reason=\"agency_limit\"}",
        1.0,
    );
    assert_metric_at_least(
        &text,
        "attesta_connections_refused_total{reason=\"node_full\"}",
        1.0,
    );
}

#[tokio::test]
async fn a_slow_body_gets_408_problem() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "questura-pu", |c| {
        c.limits.request_timeout_ms = 300;
    })
    .await;
    let mut slow = raw_tls(&mut pki, "inps-pesaro", &node, &[b"http/1.1"]).await;
    slow.write_all(
        b"POST /v1/attest/legal-presence HTTP/1.1\r\nhost: node\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"subject\":",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(BOUND, slow.read_to_end(&mut buf))
        .await
        .expect("the node answers a body that never finishes")
        .ok();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(
        text.contains("urn:attesta:problem:request-timeout"),
        "{text}"
    );
}

/// Signs `manifest` with a Prefettura sign certificate valid from `from` to `until` days from
/// now (negative: in the past).
fn sign_with_prefettura_key(
    pki: &mut Pki,
    manifest: &attesta_policy::Manifest,
    from_days: i64,
    until_days: i64,
) -> String {
    let day = |d: i64| {
        let now = std::time::SystemTime::now();
        let span = Duration::from_secs(d.unsigned_abs() * 86_400);
        if d < 0 {
            now - span
        } else {
            now + span
        }
    };
    let leaf = pki.leaf(PREFETTURA, |spec| {
        *spec = attesta_certs::LeafSpec::sign(&td(), &agency(PREFETTURA), 1);
        spec.not_before = day(from_days);
        spec.not_after = day(until_days);
    });
    let dir = pki.dir.path().join("old-prefettura-key");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sign.crt"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("sign.key"), &leaf.key_pem).unwrap();
    let identity =
        attesta_certs::SigningIdentity::load(&td(), &dir.join("sign.crt"), &dir.join("sign.key"))
            .unwrap();
    attesta::manifest::sign(&identity, manifest).unwrap()
}

fn issued_days_ago(days: u64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::days(days as i64);
    t.replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn an_expired_prefettura_key_cannot_sign_a_backdated_manifest() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "questura-pu", |_| {}).await;
    let prefettura = pki.client(PREFETTURA);
    let push = |token: String| notify(&prefettura, &node, token);

    // A key that expired yesterday signs version 2 "issued" three days ago, when it was valid.
    let mut m = test_manifest(2, &test_policy());
    m.issued_at = issued_days_ago(3);
    let token = sign_with_prefettura_key(&mut pki, &m, -10, -1);
    let r = push(token).await;
    assert_eq!(r.status, 422, "{:?}", r.json::<serde_json::Value>());
    let detail = r.json::<serde_json::Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("not valid"), "{detail}");

    // A valid key cannot backdate either: version 2 issued before version 1 (in force) is
    // refused, and the real version 2 still goes in afterwards (no fork).
    let mut m = test_manifest(2, &test_policy());
    m.issued_at = (time::OffsetDateTime::now_utc() - time::Duration::seconds(90))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let backdated = pki.sign_manifest(PREFETTURA, &m);
    let r = push(backdated).await;
    assert_eq!(r.status, 422);
    let detail = r.json::<serde_json::Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("backdated"), "{detail}");

    // Nor date into the future beyond the skew.
    let mut m = test_manifest(2, &test_policy());
    m.issued_at = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = push(pki.sign_manifest(PREFETTURA, &m)).await;
    assert_eq!(r.status, 422);
    assert!(r.json::<serde_json::Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("future"));

    let real = pki.manifest(2, &test_policy());
    let r = push(real).await;
    assert_eq!(r.status, 200, "{:?}", r.json::<serde_json::Value>());
    assert_eq!(r.json::<serde_json::Value>().unwrap()["version"], 2);
}

#[tokio::test]
async fn as_of_outside_1900_to_tomorrow_is_refused_and_the_edges_are_answered() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "questura-pu", |c| {
        c.serves = vec!["legal-presence".into()];
    })
    .await;
    let inps = pki.client("inps-pesaro");
    let ask = |as_of: serde_json::Value| {
        let inps = &inps;
        let url = node.url("/v1/attest/legal-presence");
        async move {
            let body = serde_json::json!({
                "subject": "RSSMRA85T10A562S",
                "purpose": "benefit-eligibility",
                "as_of": as_of,
            });
            inps.post(&url, "application/json", Bytes::from(body.to_string()))
                .await
                .unwrap()
        }
    };
    let today = time::OffsetDateTime::now_utc().date();
    let fmt = |d: time::Date| attesta::domain::records::format_date(d);
    for bad in [
        serde_json::json!("0000-01-01"),
        serde_json::json!("-001-01-01"),
        serde_json::json!("1899-12-31"),
        serde_json::json!("9999-12-31"),
        serde_json::json!(fmt(today + time::Duration::days(2))),
        serde_json::Value::Null,
    ] {
        let r = ask(bad.clone()).await;
        assert_eq!(
            r.status,
            400,
            "{bad}: {} {:?}",
            r.status,
            r.json::<serde_json::Value>()
        );
        assert_eq!(r.content_type(), Some("application/problem+json"));
        assert!(
            r.json::<serde_json::Value>().unwrap()["detail"]
                .as_str()
                .unwrap()
                .contains("as_of"),
            "{bad}"
        );
    }
    // The edges pass the bounds (the answer itself depends on the data: none here).
    for edge in [
        "1900-01-01".to_owned(),
        fmt(today + time::Duration::days(1)),
    ] {
        let r = ask(serde_json::json!(edge)).await;
        assert_ne!(r.status, 400, "{edge}: {:?}", r.json::<serde_json::Value>());
    }
}

#[tokio::test]
async fn long_targets_and_large_headers_get_problem_json() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "questura-pu", |_| {}).await;
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let long = format!("/v1/audit/entries?start=0&end=1&x={}", "a".repeat(5000));
        let big = "b".repeat(3000);
        for (path, headers, status, slug) in [
            (long.as_str(), vec![], 414, "uri-too-long"),
            (
                "/v1/whoami",
                vec![
                    ("x-one", big.clone()),
                    ("x-two", big.clone()),
                    ("x-three", big.clone()),
                ],
                431,
                "headers-too-large",
            ),
        ] {
            let (status_got, content_type, body) = if alpn == b"h2" {
                let (mut sender, _conn) = h2(&mut pki, "inps-pesaro", &node, None).await;
                sender.ready().await.unwrap();
                let mut req = http::Request::get(node.url(path));
                for (k, v) in &headers {
                    req = req.header(*k, v.as_str());
                }
                let resp = sender
                    .send_request(req.body(Full::new(Bytes::new())).unwrap())
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let ct = resp
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                (status, ct, body)
            } else {
                let mut tls = raw_tls(&mut pki, "inps-pesaro", &node, &[b"http/1.1"]).await;
                let mut head =
                    format!("GET {path} HTTP/1.1\r\nhost: node\r\nconnection: close\r\n");
                for (k, v) in &headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                tls.write_all(head.as_bytes()).await.unwrap();
                let mut buf = Vec::new();
                tokio::time::timeout(BOUND, tls.read_to_end(&mut buf))
                    .await
                    .unwrap()
                    .ok();
                let text = String::from_utf8_lossy(&buf).into_owned();
                let status: u16 = text[9..12].parse().unwrap();
                let ct = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-type: "))
                    .map(str::to_owned);
                let body = Bytes::from(text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned());
                (status, ct, body)
            };
            assert_eq!(status_got, status, "{alpn:?} {path:.40}");
            assert_eq!(content_type.as_deref(), Some("application/problem+json"));
            let p: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(p["type"], format!("urn:attesta:problem:{slug}"));
        }
    }
}

#[tokio::test]
async fn half_open_connections_are_dropped_and_their_address_is_capped() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "questura-pu", |c| {
        c.limits.handshake_timeout_ms = 300;
        c.limits.max_connections_per_address = 4;
    })
    .await;
    // TCP connections that never start TLS hold a place only until the handshake timeout.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(tokio::net::TcpStream::connect(node.addr).await.unwrap());
    }
    // The address is at its cap: one more is closed at once, before any TLS.
    let mut extra = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(BOUND, extra.read(&mut buf))
        .await
        .expect("a connection over the address cap is closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    for mut s in silent {
        let n = tokio::time::timeout(BOUND, s.read(&mut buf))
            .await
            .expect("a connection that never starts TLS is dropped")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
    // Once they are gone, the same address is served.
    let me = pki.client("questura-pu");
    let text = eventually(|| async {
        let r = me.get(&node.url("/metrics")).await.ok()?;
        String::from_utf8(r.body.to_vec()).ok()
    })
    .await;
    assert_metric_at_least(
        &text,
        "attesta_connections_refused_total{reason=\"address_limit\"}",
        1.0,
    );
    assert_metric_at_least(
        &text,
        "attesta_tls_handshake_failures_total{reason=\"timeout\"}",
        3.0,
    );
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_problem_json_too() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "questura-pu", |_| {}).await;
    let huge = format!(
        "GET /v1/whoami HTTP/1.1\r\nhost: node\r\nx-big: {}\r\n\r\n",
        "c".repeat(600 << 10)
    );
    for (raw, status, slug) in [
        ("NOT HTTP AT ALL\r\n\r\n".to_owned(), "400", "bad-request"),
        (
            "GET /v1/whoami HTTP/1.1\r\nbad header\r\n\r\n".to_owned(),
            "400",
            "bad-request",
        ),
        (huge, "431", "headers-too-large"),
    ] {
        let mut tls = raw_tls(&mut pki, "inps-pesaro", &node, &[b"http/1.1"]).await;
        // The node may answer before it has read all of a huge head: a failed write is fine.
        let _ = tls.write_all(raw.as_bytes()).await;
        let mut buf = Vec::new();
        tokio::time::timeout(BOUND, tls.read_to_end(&mut buf))
            .await
            .expect("the node answers and closes")
            .ok();
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
        assert!(
            text.contains("content-type: application/problem+json"),
            "{text}"
        );
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let p: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(p["type"], format!("urn:attesta:problem:{slug}"));
    }
    // The node keeps serving.
    let r = pki
        .client("asl-1")
        .get(&node.url("/v1/whoami"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
}
