//! Who gets in: the mTLS rules of the node, each refusal in its own test, each counted in
//! `/metrics`.

use std::time::Duration;

use attesta::client::Client;
use http::Method;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::harness::*;

const FAILURES: &str = "attesta_tls_handshake_failures_total";

fn failures(reason: &str) -> String {
    format!("{FAILURES}{{reason=\"{reason}\"}}")
}

/// Asserts that `client` cannot get an answer from `node`, and that the node counted the
/// handshake failure under `reason`.
async fn assert_refused(pki: &mut Pki, node: &TestNode, client: &Client, reason: &str) {
    let result = client.get(&node.url("/v1/whoami")).await;
    match result {
        Ok(reply) => panic!("expected a refused handshake, got {}", reply.status),
        Err(e) => assert!(
            e.tls_error().is_some(),
            "expected a TLS refusal, got: {}",
            attesta::config::error_chain(&e)
        ),
    }
    // Metrics are for the node's own operator.
    let observer = pki.client(&node.agency);
    wait_metric(&observer, node, &failures(reason), 1.0).await;
}

#[tokio::test]
async fn valid_agency_certificate_gets_its_own_agency_id_from_whoami() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let client = pki.client("inps-pesaro");

    let reply = client.get(&node.url("/v1/whoami")).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type(), Some("application/json"));
    let body = reply.json::<serde_json::Value>().unwrap();
    assert_eq!(body["agency"], "inps-pesaro");
    assert_eq!(
        body["spiffe_id"],
        "spiffe://pu.attesta.test/agency/inps-pesaro"
    );
    assert_eq!(body["node"], "comune-pesaro");
    assert_eq!(body["certificate_sha256"].as_str().unwrap().len(), 64);
    let own = pki.client("comune-pesaro");
    wait_metric(&own, &node, "attesta_tls_handshakes_total", 1.0).await;
}

#[tokio::test]
async fn client_without_certificate_is_refused_at_handshake() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let client = pki.anonymous_client();
    assert_refused(&mut pki, &node, &client, "no_client_certificate").await;
}

#[tokio::test]
async fn certificate_from_an_untrusted_ca_is_refused() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;

    // A CA of another name: no issuer is found.
    let mut stranger =
        Pki::with_trust_domain(attesta_certs::TrustDomain::new("rogue.test").unwrap());
    let files = stranger.agency("inps-pesaro");
    let client = pki.client_with(
        &std::fs::read(files.auth_cert).unwrap(),
        &std::fs::read(files.auth_key).unwrap(),
    );
    assert_refused(&mut pki, &node, &client, "unknown_issuer").await;

    // A look-alike CA (same name, same trust domain, same agency): the signature gives it away.
    let mut lookalike = Pki::new();
    let files = lookalike.agency("inps-pesaro");
    let client = pki.client_with(
        &std::fs::read(files.auth_cert).unwrap(),
        &std::fs::read(files.auth_key).unwrap(),
    );
    assert_refused(&mut pki, &node, &client, "bad_signature").await;
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let leaf = pki.leaf("inps-pesaro", |spec| {
        spec.not_before = now() - hours(48);
        spec.not_after = now() - hours(1);
    });
    let client = pki.client_with(&leaf.cert_pem, &leaf.key_pem);
    assert_refused(&mut pki, &node, &client, "expired").await;
}

#[tokio::test]
async fn not_yet_valid_certificate_is_refused() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let leaf = pki.leaf("inps-pesaro", |spec| {
        spec.not_before = now() + hours(1);
        spec.not_after = now() + hours(48);
    });
    let client = pki.client_with(&leaf.cert_pem, &leaf.key_pem);
    assert_refused(&mut pki, &node, &client, "not_yet_valid").await;
}

#[tokio::test]
async fn sign_certificate_used_for_tls_is_refused() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let files = pki.agency("inps-pesaro");
    let client = pki.client_with(
        &std::fs::read(files.sign_cert).unwrap(),
        &std::fs::read(files.sign_key).unwrap(),
    );
    assert_refused(&mut pki, &node, &client, "wrong_key_usage").await;
}

#[tokio::test]
async fn certificate_of_another_trust_domain_is_refused() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    // Issued by our CA, but naming another federation.
    let leaf = pki.leaf("inps-pesaro", |spec| {
        spec.uris = vec!["spiffe://other.attesta.test/agency/inps-pesaro".into()];
    });
    let client = pki.client_with(&leaf.cert_pem, &leaf.key_pem);
    assert_refused(&mut pki, &node, &client, "wrong_trust_domain").await;
}

#[tokio::test]
async fn certificate_without_uri_san_is_refused() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let leaf = pki.leaf("inps-pesaro", |spec| {
        spec.uris.clear();
        spec.dns = vec!["inps-pesaro.example".into()];
    });
    let client = pki.client_with(&leaf.cert_pem, &leaf.key_pem);
    assert_refused(&mut pki, &node, &client, "no_spiffe_id").await;
}

#[tokio::test]
async fn revoked_agency_is_refused_after_crl_reload_without_restart() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let inps = pki.client("inps-pesaro");
    let asl = pki.client("asl-1");

    // Both agencies hold open keep-alive connections before the revocation.
    let mut inps_conn = inps.connect(&node.url).await.unwrap();
    let mut asl_conn = asl.connect(&node.url).await.unwrap();
    for conn in [&mut inps_conn, &mut asl_conn] {
        let r = conn.request(Method::GET, "/v1/whoami", None).await.unwrap();
        assert_eq!(r.status, 200);
    }

    // `attesta ca revoke` runs exactly this, then the node picks up the new crl.pem.
    pki.ca.revoke_agency(&agency("inps-pesaro")).unwrap();
    let url = node.url("/v1/whoami");
    eventually(|| async { inps.get(&url).await.err() }).await;
    assert_refused(&mut pki, &node, &inps, "revoked").await;

    // The connection opened before the revocation is cut off at its next request...
    let r = inps_conn
        .request(Method::GET, "/v1/whoami", None)
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    let problem = r.json::<serde_json::Value>().unwrap();
    assert_eq!(problem["type"], "urn:attesta:problem:certificate-revoked");
    // ...while the other agency's connection was not dropped by the reload.
    let r = asl_conn
        .request(Method::GET, "/v1/whoami", None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json::<serde_json::Value>().unwrap()["agency"], "asl-1");
}

#[tokio::test]
async fn revoked_agency_cannot_get_in_by_resuming_a_session() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    // One client config (and so one session cache) for every connection, as a real client
    // that tries to resume would have.
    let inps = pki.client("inps-pesaro");

    let first = inps.connect(&node.url).await.unwrap();
    assert_eq!(first.handshake_kind(), Some(rustls::HandshakeKind::Full));
    let second = inps.connect(&node.url).await.unwrap();
    // The node issues no tickets and keeps no session cache: nothing to resume.
    assert_eq!(second.handshake_kind(), Some(rustls::HandshakeKind::Full));
    drop((first, second));

    pki.ca.revoke_agency(&agency("inps-pesaro")).unwrap();
    let url = node.url("/v1/whoami");
    let err = eventually(|| async { inps.get(&url).await.err() }).await;
    assert!(err.tls_error().is_some(), "{err}");
    assert_refused(&mut pki, &node, &inps, "revoked").await;
}

#[tokio::test]
async fn a_bad_crl_is_not_loaded_and_the_node_keeps_serving() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let client = pki.client("inps-pesaro");
    let own = pki.client("comune-pesaro");
    std::fs::write(pki.crl(), b"-----BEGIN X509 CRL-----\ntruncated").unwrap();
    wait_metric(
        &own,
        &node,
        "attesta_tls_reloads_total{result=\"error\"}",
        1.0,
    )
    .await;
    let reply = client.get(&node.url("/v1/whoami")).await.unwrap();
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn node_certificate_is_hot_reloaded() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |_| {}).await;
    let client = pki.client("inps-pesaro");
    let own = pki.client("comune-pesaro");
    let before = client.connect(&node.url).await.unwrap();

    // Rotate the node's certificate: issue a new one and move it into place.
    let fresh = pki.leaf("comune-pesaro", |spec| {
        spec.ips = vec![[127, 0, 0, 1].into()];
        spec.not_after = now() + Duration::from_secs(7 * 86_400);
    });
    let dir = pki.agency_dir("comune-pesaro");
    attesta_certs::fsutil::write_atomic(&dir.join("auth.key"), &fresh.key_pem, 0o600).unwrap();
    attesta_certs::fsutil::write_atomic(&dir.join("auth.crt"), &fresh.cert_pem, 0o644).unwrap();
    wait_metric(&own, &node, "attesta_tls_reloads_total{result=\"ok\"}", 1.0).await;

    // New handshakes see the new certificate.
    let fresh_der = CertificateDer::from_pem_slice(&fresh.cert_pem).unwrap();
    let served = eventually(|| async {
        let conn = client.connect(&node.url).await.ok()?;
        conn.server_certificate()
            .filter(|der| **der == fresh_der)
            .cloned()
    })
    .await;
    assert_ne!(Some(&served), before.server_certificate());
    let reply = client.get(&node.url("/v1/whoami")).await.unwrap();
    assert_eq!(reply.status, 200);
}

/// The key-exchange group a client with `groups` (in its order of preference) gets.
async fn negotiated_group(
    pki: &mut Pki,
    node: &TestNode,
    groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>,
) -> rustls::NamedGroup {
    let files = pki.agency("inps-pesaro");
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = groups;
    let chain = CertificateDer::pem_file_iter(&files.auth_cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&files.auth_key).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(pki.trust().server_verifier(None).unwrap())
        .with_client_auth_cert(chain, key)
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    tls.get_ref()
        .1
        .negotiated_key_exchange_group()
        .unwrap()
        .name()
}

#[tokio::test]
async fn the_post_quantum_hybrid_is_chosen_whenever_the_client_offers_it() {
    use rustls::crypto::aws_lc_rs::kx_group::{SECP256R1, X25519, X25519MLKEM768};
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "questura-pu", |_| {}).await;
    // Preferred by the client, or offered last: the node picks the hybrid either way (with a
    // HelloRetryRequest when the client sent no key share for it).
    for groups in [
        vec![X25519MLKEM768, X25519],
        vec![X25519, X25519MLKEM768],
        vec![SECP256R1, X25519, X25519MLKEM768],
    ] {
        assert_eq!(
            negotiated_group(&mut pki, &node, groups).await,
            rustls::NamedGroup::X25519MLKEM768
        );
    }
    // A client without it still gets in, with what it offers.
    assert_eq!(
        negotiated_group(&mut pki, &node, vec![X25519]).await,
        rustls::NamedGroup::X25519
    );
}
