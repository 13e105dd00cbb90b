//! The stack's ceiling, for `node/benches/scripts/compare.sh`: a minimal HTTPS server on the node's TLS
//! configuration (TLS 1.3, mutual authentication with the federation's client verifier) and
//! hyper, answering every request with the same small JSON document. No routing, policy,
//! store or signature: what is left is the cost of TLS and HTTP.
//!
//! ```sh
//! baseline --config demo/agencies/comune-pesaro/node.toml --listen 127.0.0.1:18450
//! ```

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const ANSWER: &[u8] = br#"{"resident":true,"comune":"041044","since":"2010-01-01"}"#;

async fn answer(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(ANSWER)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut config, mut listen) = (None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => config = args.next(),
            "--listen" => listen = args.next(),
            other => anyhow::bail!("unknown argument {other:?} (--config node.toml --listen addr)"),
        }
    }
    let config = config.context("--config node.toml is required")?;
    let listen = listen.context("--listen host:port is required")?;
    attesta_certs::tls::install_default_provider();
    let settings = attesta::config::Settings::load(std::path::Path::new(&config))?;
    let tls = attesta_certs::tls::server_config(&settings.trust, &settings.identity)?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            eprintln!("baseline listening on {listen}");
            loop {
                let (tcp, _) = listener.accept().await?;
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service_fn(answer))
                        .await;
                });
            }
        })
}
