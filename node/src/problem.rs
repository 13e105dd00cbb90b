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
    InvalidSubject,
    InvalidRows,
    Forbidden,
    PolicyDenied,
    NoManifest,
    ManifestRejected,
    Conflict,
    NotServed,
    NoData,
    CertificateRevoked,
    Timeout,
    ShuttingDown,
    /// The audit entry of the request could not be made durable: no answer leaves without one.
    AuditUnavailable,
    /// A witness does not follow the log a checkpoint is for.
    UnknownLog,
    UnknownTenant,
    /// A checkpoint that does not extend the one a witness cosigned last.
    InconsistentCheckpoint,
    /// Audit entries whose content was deleted after the retention period.
    Pruned,
    /// An audit entry that no signed checkpoint covers yet: ask again in a moment.
    NotCheckpointed,
    /// The connection was not admitted: the agency or the node has no room left.
    TooManyConnections,
    /// The request (its body) did not arrive in time.
    RequestTimeout,
    /// The request's target is longer than the node reads.
    UriTooLong,
    /// The request's headers are larger than the node reads.
    HeadersTooLarge,
    Internal,
}

impl ProblemKind {
    pub fn slug(self) -> &'static str {
        match self {
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::BodyTooLarge => "body-too-large",
            Self::BadRequest => "bad-request",
            Self::InvalidSubject => "invalid-codice-fiscale",
            Self::InvalidRows => "invalid-rows",
            Self::Forbidden => "forbidden",
            Self::PolicyDenied => "policy-denied",
            Self::NoManifest => "no-manifest",
            Self::ManifestRejected => "manifest-rejected",
            Self::Conflict => "conflict",
            Self::NotServed => "not-served",
            Self::NoData => "no-data",
            Self::CertificateRevoked => "certificate-revoked",
            Self::Timeout => "timeout",
            Self::ShuttingDown => "shutting-down",
            Self::AuditUnavailable => "audit-unavailable",
            Self::UnknownLog => "unknown-log",
            Self::UnknownTenant => "unknown-tenant",
            Self::InconsistentCheckpoint => "inconsistent-checkpoint",
            Self::Pruned => "pruned",
            Self::NotCheckpointed => "not-checkpointed",
            Self::TooManyConnections => "too-many-connections",
            Self::RequestTimeout => "request-timeout",
            Self::UriTooLong => "uri-too-long",
            Self::HeadersTooLarge => "headers-too-large",
            Self::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadRequest | Self::InvalidSubject => StatusCode::BAD_REQUEST,
            Self::InvalidRows => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Forbidden | Self::PolicyDenied => StatusCode::FORBIDDEN,
            Self::NoManifest => StatusCode::NOT_FOUND,
            Self::ManifestRejected => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict => StatusCode::CONFLICT,
            Self::NotServed => StatusCode::NOT_FOUND,
            Self::NoData => StatusCode::SERVICE_UNAVAILABLE,
            Self::CertificateRevoked => StatusCode::FORBIDDEN,
            Self::Timeout | Self::ShuttingDown | Self::AuditUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::UnknownLog => StatusCode::NOT_FOUND,
            Self::UnknownTenant => StatusCode::NOT_FOUND,
            Self::InconsistentCheckpoint => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Pruned => StatusCode::GONE,
            Self::NotCheckpointed => StatusCode::NOT_FOUND,
            Self::TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::NotFound => "No such resource",
            Self::MethodNotAllowed => "Method not allowed on this resource",
            Self::BodyTooLarge => "Request body too large",
            Self::BadRequest => "Malformed request",
            Self::InvalidSubject => "Subject is not a valid codice fiscale",
            Self::InvalidRows => "Import has invalid rows; nothing was imported",
            Self::Forbidden => "Not allowed for this agency",
            Self::PolicyDenied => "Denied by the access policy",
            Self::NoManifest => "No policy manifest has been published yet",
            Self::ManifestRejected => "Manifest refused; the one in force is kept",
            Self::Conflict => "The resource changed in the meantime",
            Self::NotServed => "This node does not answer this question",
            Self::NoData => "No data has been imported yet",
            Self::CertificateRevoked => "Client certificate revoked",
            Self::Timeout => "Request took too long",
            Self::ShuttingDown => "Node is shutting down",
            Self::AuditUnavailable => "The request could not be logged, so it was not answered",
            Self::UnknownLog => "This witness does not follow that log",
            Self::UnknownTenant => "This node does not serve that agency",
            Self::InconsistentCheckpoint => {
                "The checkpoint does not extend the one this witness cosigned last"
            }
            Self::Pruned => "Deleted after the retention period",
            Self::NotCheckpointed => "Not under a signed checkpoint yet",
            Self::TooManyConnections => "Too many connections; this one is closed",
            Self::RequestTimeout => "The request did not arrive in time",
            Self::UriTooLong => "Request target too long",
            Self::HeadersTooLarge => "Request headers too large",
            Self::Internal => "Internal error",
        }
    }
}

/// The URN prefix of every problem type.
pub const TYPE_PREFIX: &str = "urn:attesta:problem:";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Extension members (RFC 9457 §3.2), e.g. the rejected rows of an import.
    #[serde(flatten)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    /// Whether this problem is of `kind` (by its type URN).
    pub fn is(&self, kind: ProblemKind) -> bool {
        self.type_
            .strip_prefix(TYPE_PREFIX)
            .is_some_and(|slug| slug == kind.slug())
    }

    pub fn new(kind: ProblemKind) -> Self {
        Self {
            type_: format!("{TYPE_PREFIX}{}", kind.slug()),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: None,
            instance: None,
            extensions: serde_json::Map::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_extension(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_read_back_is_of_its_kind_only() {
        let p = Problem::new(ProblemKind::NotCheckpointed).with_detail("entry 7");
        let back: Problem = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
        assert!(back.is(ProblemKind::NotCheckpointed));
        assert!(!back.is(ProblemKind::NotFound));
        assert_eq!(back.status, 404);
        let foreign = Problem {
            type_: "about:blank".into(),
            ..back
        };
        assert!(!foreign.is(ProblemKind::NotCheckpointed));
    }
}
