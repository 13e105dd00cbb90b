//! RFC 9457 problem details: the only error format on the wire.
//!
//! Every error response is built here, from a [`Problem`]. The `type` is a stable URN so
//! clients can match on it; `detail` is for people and never carries internals (paths, stack
//! traces, library errors).

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

/// Media type of problem responses.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// The kinds of problem a node reports. Each has a stable `type` URN and an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    NotFound,
    MethodNotAllowed,
    BodyTooLarge,
    BadRequest,
    CertificateRevoked,
    Timeout,
    ShuttingDown,
    Internal,
}

impl ProblemKind {
    pub fn slug(self) -> &'static str {
        match self {
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::BodyTooLarge => "body-too-large",
            Self::BadRequest => "bad-request",
            Self::CertificateRevoked => "certificate-revoked",
            Self::Timeout => "timeout",
            Self::ShuttingDown => "shutting-down",
            Self::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::CertificateRevoked => StatusCode::FORBIDDEN,
            Self::Timeout | Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::NotFound => "No such resource",
            Self::MethodNotAllowed => "Method not allowed on this resource",
            Self::BodyTooLarge => "Request body too large",
            Self::BadRequest => "Malformed request",
            Self::CertificateRevoked => "Client certificate revoked",
            Self::Timeout => "Request took too long",
            Self::ShuttingDown => "Node is shutting down",
            Self::Internal => "Internal error",
        }
    }
}

/// The URN prefix of every problem type.
pub const TYPE_PREFIX: &str = "urn:attesta:problem:";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl Problem {
    pub fn new(kind: ProblemKind) -> Self {
        Self {
            type_: format!("{TYPE_PREFIX}{}", kind.slug()),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: None,
            instance: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The response carrying this problem.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Serialising a struct of strings and a number cannot fail.
        let body = serde_json::to_vec(&self).expect("problem serialises");
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        resp
    }
}

impl From<ProblemKind> for Problem {
    fn from(kind: ProblemKind) -> Self {
        Problem::new(kind)
    }
}
