//! An mTLS HTTP client on the same stack as the server (hyper + rustls, TLS 1.3): used by the
//! CLI, the demo's readiness checks and the tests.
//!
//! A [`Connection`] is one TLS connection that can carry several requests (keep-alive), so
//! callers can observe what happens to an established connection.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody as BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, SizeHint};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConfig;
use sha2::Digest as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Errors of the client. Connection-level errors (refused handshakes) and HTTP-level answers
/// are kept apart: an error status is a [`Reply`], not an error.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid URL {0:?}")]
    Url(String),
    #[error("connecting to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr}")]
    Handshake {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} does not speak HTTP/2")]
    NoHttp2(String),
    #[error("HTTP exchange with {addr}")]
    Http {
        addr: String,
        #[source]
        source: hyper::Error,
    },
    #[error("{addr} answered more than {limit} bytes")]
    TooLarge { addr: String, limit: usize },
}

impl ClientError {
    /// The TLS error behind this one, if the peer refused us (or we refused the peer).
    pub fn tls_error(&self) -> Option<&rustls::Error> {
        use std::error::Error;
        let mut cur: Option<&(dyn Error + 'static)> = Some(self);
        while let Some(e) = cur {
            if let Some(t) = e.downcast_ref::<rustls::Error>() {
                return Some(t);
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    return Some(t);
                }
            }
            cur = e.source();
        }
        None
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON of type `T` (a `serde_json::Value` when any JSON will do).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    pub fn content_type(&self) -> Option<&str> {
        self.headers.get(header::CONTENT_TYPE)?.to_str().ok()
    }

    /// The RFC 9457 problem this reply carries, if its body is one.
    pub fn problem(&self) -> Option<crate::problem::Problem> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `403 Forbidden: Denied by the access policy: <detail>`, for one-line messages.
    pub fn problem_line(&self) -> String {
        match self.problem() {
            Some(p) => format!(
                "{} {}{}",
                self.status,
                p.title,
                p.detail.map(|d| format!(": {d}")).unwrap_or_default()
            ),
            None => format!("{} ", self.status),
        }
    }
}

/// A client presenting one agency identity.
#[derive(Clone)]
pub struct Client {
    /// Offers what the config says (HTTP/2 first): for [`Client::connect_h2`].
    connector: TlsConnector,
    /// Offers only `http/1.1` in ALPN: for [`Client::connect`], which speaks nothing else. The
    /// node serves the protocol ALPN chose and does not sniff.
    h1: TlsConnector,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// The one way a pinned client is built: presenting `identity`, trusting the federation
    /// of `trust`, and, when `expected` is given, accepting only that agency's node.
    pub fn pinned(
        trust: &attesta_certs::TrustStore,
        identity: &attesta_certs::Identity,
        expected: Option<&attesta_certs::AgencyId>,
    ) -> Result<Self, attesta_certs::LoadError> {
        let config = attesta_certs::tls::client_config(trust, identity, expected.cloned())?;
        Ok(Self::new(Arc::new(config)))
    }

    pub fn new(config: Arc<ClientConfig>) -> Self {
        let mut h1 = (*config).clone();
        h1.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            connector: TlsConnector::from(config),
            h1: TlsConnector::from(Arc::new(h1)),
        }
    }

    /// Opens a TLS connection to the host and port of `base` (an `https://host:port` URL,
    /// or one with a path: a tenant's base on its host, which then prefixes every request's
    /// path) and speaks HTTP/1.1 on it (keep-alive).
    pub async fn connect(&self, base: &str) -> Result<Connection, ClientError> {
        let open = self.open(&self.h1, base).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(open.tls))
            .await
            .map_err(|source| ClientError::Http {
                addr: open.authority.clone(),
                source,
            })?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection {
            sender,
            prefix: open.prefix,
            authority: open.authority,
            handshake_kind: open.handshake_kind,
            server_certificate: open.server_certificate,
            driver,
        })
    }

    /// Opens a TLS connection to `base` and speaks HTTP/2 on it: one connection carries
    /// concurrent requests, and clones of the [`H2Connection`] share it. A path in `base`
    /// prefixes every request's path, as in [`Client::connect`].
    pub async fn connect_h2(&self, base: &str) -> Result<H2Connection, ClientError> {
        let open = self.open(&self.connector, base).await?;
        if open.tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(ClientError::NoHttp2(open.authority));
        }
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(std::time::Duration::from_secs(30))
            .handshake(TokioIo::new(open.tls))
            .await
            .map_err(|source| ClientError::Http {
                addr: open.authority.clone(),
                source,
            })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let server_fingerprint = open
            .server_certificate
            .as_ref()
            .map(|c| sha2::Sha256::digest(c.as_ref()).into());
        Ok(H2Connection {
            sender,
            prefix: open.prefix.into(),
            authority: open.authority.into(),
            server_fingerprint,
        })
    }

    /// TCP, then TLS, to the host and port of `base`.
    async fn open(&self, connector: &TlsConnector, base: &str) -> Result<Opened, ClientError> {
        let uri: Uri = base
            .parse()
            .map_err(|_| ClientError::Url(base.to_owned()))?;
        if uri.scheme_str() != Some("https") {
            return Err(ClientError::Url(base.to_owned()));
        }
        let host = uri
            .host()
            .ok_or_else(|| ClientError::Url(base.to_owned()))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let authority = format!("{host}:{port}");
        let prefix = match uri.path_and_query() {
            Some(p) if p.query().is_some() => return Err(ClientError::Url(base.to_owned())),
            Some(p) => p.path().trim_end_matches('/').to_owned(),
            None => String::new(),
        };
        let server_name =
            ServerName::try_from(host.clone()).map_err(|_| ClientError::Url(base.to_owned()))?;

        let tcp = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => TcpStream::connect(SocketAddr::new(ip, port)).await,
            Err(_) => TcpStream::connect(&authority).await,
        }
        .map_err(|source| ClientError::Connect {
            addr: authority.clone(),
            source,
        })?;
        let _ = tcp.set_nodelay(true);
        let tls = connector
            .connect(server_name, tcp)
            .await
            .map_err(|source| ClientError::Handshake {
                addr: authority.clone(),
                source,
            })?;
        let handshake_kind = tls.get_ref().1.handshake_kind();
        let server_certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|der| der.clone().into_owned());
        Ok(Opened {
            tls,
            prefix,
            authority,
            handshake_kind,
            server_certificate,
        })
    }

    /// Connects, sends one request, and closes.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<Bytes>,
    ) -> Result<Reply, ClientError> {
        let (base, path) = split_url(url)?;
        let mut conn = self.connect(&base).await?;
        conn.request(method, &path, body).await
    }

    /// Connects and POSTs `body` with the given content type.
    pub async fn post(
        &self,
        url: &str,
        content_type: &'static str,
        body: Bytes,
    ) -> Result<Reply, ClientError> {
        let (base, path) = split_url(url)?;
        let mut conn = self.connect(&base).await?;
        conn.send(Method::POST, &path, Some((content_type, body)))
            .await
    }

    /// Like [`Client::post`], calling `progress(sent, total)` as the body goes out in 1 MiB
    /// chunks (for progress bars).
    pub async fn post_with_progress(
        &self,
        url: &str,
        content_type: &'static str,
        body: Bytes,
        progress: impl FnMut(u64, u64) + Send + Unpin + 'static,
    ) -> Result<Reply, ClientError> {
        let (base, path) = split_url(url)?;
        let mut conn = self.connect(&base).await?;
        let total = body.len() as u64;
        let body = Chunked {
            data: body,
            sent: 0,
            total,
            progress,
        };
        conn.send_body(
            Method::POST,
            &path,
            Some(content_type),
            &[],
            body.boxed_unsync(),
        )
        .await
    }

    pub async fn get(&self, url: &str) -> Result<Reply, ClientError> {
        self.request(Method::GET, url, None).await
    }
}

/// Checks a node's base URL: `https://host[:port]`, nothing after the authority but `/`.
pub fn check_base_url(url: &str) -> Result<(), ClientError> {
    let bad = || ClientError::Url(url.to_owned());
    let uri: Uri = url.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("https") || uri.host().is_none_or(str::is_empty) {
        return Err(bad());
    }
    match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("/") | Some("") => Ok(()),
        Some(_) => Err(bad()),
    }
}

/// Checks an agency's base URL: a node's (`https://host[:port]`), or a hosted agency's on its
/// host (`https://host[:port]/tenants/<agency>`).
pub fn check_agency_url(url: &str) -> Result<(), ClientError> {
    let bad = || ClientError::Url(url.to_owned());
    let uri: Uri = url.parse().map_err(|_| bad())?;
    let base = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or_default(),
        uri.authority().ok_or_else(bad)?
    );
    check_base_url(&base)?;
    match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("/") | Some("") => Ok(()),
        Some(p) => {
            let agency = p
                .trim_end_matches('/')
                .strip_prefix(attesta_policy::TENANTS_PATH)
                .and_then(|r| r.strip_prefix('/'))
                .ok_or_else(bad)?;
            attesta_certs::AgencyId::new(agency).map_err(|_| bad())?;
            Ok(())
        }
    }
}

/// `https://host:port/path?query` → (`https://host:port`, `/path?query`).
fn split_url(url: &str) -> Result<(String, String), ClientError> {
    let bad = || ClientError::Url(url.to_owned());
    let uri: Uri = url.parse().map_err(|_| bad())?;
    let base = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().ok_or_else(bad)?
    );
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Ok((base, path.to_owned()))
}

/// A TLS connection just opened, before HTTP.
struct Opened {
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    /// The path of the base URL, without a trailing `/`.
    prefix: String,
    authority: String,
    handshake_kind: Option<rustls::HandshakeKind>,
    server_certificate: Option<CertificateDer<'static>>,
}

/// An HTTP/2 connection. Clones share the connection; requests on it run concurrently.
#[derive(Debug, Clone)]
pub struct H2Connection {
    sender: http2::SendRequest<Full<Bytes>>,
    /// Put before every path (a tenant's base on its host); empty for a node.
    prefix: Arc<str>,
    authority: Arc<str>,
    server_fingerprint: Option<[u8; 32]>,
}

impl H2Connection {
    /// Whether the connection has closed (the peer went away, or an error ended it).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// SHA-256 of the certificate the server presented.
    pub fn server_fingerprint(&self) -> Option<[u8; 32]> {
        self.server_fingerprint
    }

    /// Sends one request, with a body of the given content type if any, and reads the whole
    /// answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Reply, ClientError> {
        self.send_with(method, path, &[], body).await
    }

    /// [`H2Connection::send`] with extra request headers.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&'static str, &str)],
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Reply, ClientError> {
        let http_err = |source| ClientError::Http {
            addr: self.authority.to_string(),
            source,
        };
        let mut sender = self.sender.clone();
        sender.ready().await.map_err(http_err)?;
        let uri = format!("https://{}{}{path}", self.authority, self.prefix);
        let mut req = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let body = match body {
            Some((content_type, body)) => {
                req = req.header(header::CONTENT_TYPE, content_type);
                body
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(body))
            .map_err(|_| ClientError::Url(path.to_owned()))?;
        let resp = sender.send_request(req).await.map_err(http_err)?;
        read_reply(resp, &self.authority).await
    }
}

/// One open connection.
#[derive(Debug)]
pub struct Connection {
    sender: http1::SendRequest<BoxBody<Bytes, std::convert::Infallible>>,
    /// Put before every path, as in [`H2Connection`].
    prefix: String,
    authority: String,
    handshake_kind: Option<rustls::HandshakeKind>,
    server_certificate: Option<CertificateDer<'static>>,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Connection {
    /// Whether the TLS handshake was full or resumed.
    pub fn handshake_kind(&self) -> Option<rustls::HandshakeKind> {
        self.handshake_kind
    }

    /// The certificate the server presented.
    pub fn server_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.server_certificate.as_ref()
    }

    /// Sends a request (a JSON body, if any) on this connection and reads the whole answer.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Reply, ClientError> {
        self.send(method, path, body.map(|b| ("application/json", b)))
            .await
    }

    /// Sends a request with a body of the given content type.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Reply, ClientError> {
        self.send_with(method, path, &[], body).await
    }

    /// [`Connection::send`] with extra request headers.
    pub async fn send_with(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&'static str, &str)],
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Reply, ClientError> {
        let (content_type, body) = match body {
            Some((t, b)) => (Some(t), b),
            None => (None, Bytes::new()),
        };
        self.send_body(
            method,
            path,
            content_type,
            headers,
            Full::new(body).boxed_unsync(),
        )
        .await
    }

    async fn send_body(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&'static str>,
        headers: &[(&'static str, &str)],
        body: BoxBody<Bytes, std::convert::Infallible>,
    ) -> Result<Reply, ClientError> {
        let http_err = |source| ClientError::Http {
            addr: self.authority.clone(),
            source,
        };
        self.sender.ready().await.map_err(http_err)?;
        let target = format!("{}{path}", self.prefix);
        let mut req = Request::builder()
            .method(method)
            .uri(target)
            .header(header::HOST, &self.authority);
        if let Some(content_type) = content_type {
            req = req.header(header::CONTENT_TYPE, content_type);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(body)
            .map_err(|_| ClientError::Url(path.to_owned()))?;
        let resp = self.sender.send_request(req).await.map_err(http_err)?;
        read_reply(resp, &self.authority).await
    }
}

/// Reads a whole answer.
/// Largest answer body the client reads (a peer that sends more is cut off, not buffered):
/// well above the largest the project's routes give (a page of audit entries, a subject
/// report, a tenant's bundle), far below what would exhaust a node's memory.
pub const MAX_REPLY_BYTES: usize = 256 << 20;

async fn read_reply(
    resp: http::Response<hyper::body::Incoming>,
    authority: &str,
) -> Result<Reply, ClientError> {
    read_limited(resp, authority, MAX_REPLY_BYTES).await
}

async fn read_limited<B>(
    resp: http::Response<B>,
    authority: &str,
    limit: usize,
) -> Result<Reply, ClientError>
where
    B: Body<Data = Bytes, Error = hyper::Error>,
{
    let (parts, body) = resp.into_parts();
    let body = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| match e.downcast::<hyper::Error>() {
            Ok(source) => ClientError::Http {
                addr: authority.to_owned(),
                source: *source,
            },
            // The only other error of `Limited` is its limit.
            Err(_) => ClientError::TooLarge {
                addr: authority.to_owned(),
                limit,
            },
        })?
        .to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// A body handed out in 1 MiB chunks, reporting how much has gone.
struct Chunked<F> {
    data: Bytes,
    sent: u64,
    total: u64,
    progress: F,
}

impl<F: FnMut(u64, u64) + Send + Unpin + 'static> Body for Chunked<F> {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.data.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let part = this.data.split_to(this.data.len().min(1 << 20));
        this.sent += part.len() as u64;
        (this.progress)(this.sent, this.total);
        std::task::Poll::Ready(Some(Ok(Frame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn an_answer_longer_than_the_limit_is_cut_off_not_buffered() {
        use http_body_util::BodyExt as _;
        let body = |n: usize| {
            http::Response::new(
                http_body_util::Full::new(bytes::Bytes::from(vec![b'x'; n]))
                    .map_err(|never: std::convert::Infallible| -> hyper::Error { match never {} }),
            )
        };
        let r = super::read_limited(body(1024), "peer:1", 1024)
            .await
            .unwrap();
        assert_eq!(r.body.len(), 1024);
        let e = super::read_limited(body(1025), "peer:1", 1024)
            .await
            .unwrap_err();
        assert!(
            matches!(e, super::ClientError::TooLarge { limit: 1024, .. }),
            "{e}"
        );
        assert_eq!(e.to_string(), "peer:1 answered more than 1024 bytes");
    }

    #[test]
    fn an_agency_url_is_a_nodes_or_a_tenants_on_its_host() {
        for ok in [
            "https://127.0.0.1:8443",
            "https://127.0.0.1:8443/",
            "https://cst.example:8446/tenants/comune-fano",
            "https://cst.example:8446/tenants/comune-fano/",
        ] {
            assert!(super::check_agency_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:8443",
            "https://127.0.0.1:8443/v1",
            "https://127.0.0.1:8443/tenants/",
            "https://127.0.0.1:8443/tenants/comune-fano/v1",
            "https://127.0.0.1:8443/tenants/comune-fano?x=1",
        ] {
            assert!(super::check_agency_url(bad).is_err(), "{bad}");
        }
    }
}
