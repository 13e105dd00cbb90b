//! The small HTTP pieces every handler uses: the response type, JSON answers, the clock, and
//! the headers attesta adds. A leaf: it imports nothing of the server.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use crate::problem::{Problem, ProblemKind};

/// What every handler answers.
pub(crate) type Resp = Response<Full<Bytes>>;

pub use crate::wire::{LOG_INDEX_HEADER, QUERY_ID_HEADER};

/// A JSON answer.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            *resp.status_mut() = status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(_) => Problem::new(ProblemKind::Internal).into_response(),
    }
}

/// A text answer of `content_type`.
pub(crate) fn text(content_type: &'static str, body: String) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Unix milliseconds now (audit entry times).
pub(crate) use crate::audit::entry::now_ms;

/// When a node's dataset was last imported, for an answer's `data_as_of`; a node that never
/// imported it has no data to answer from (503 `no-data`).
pub(crate) fn data_as_of(info: &crate::store::DatasetInfo) -> Result<Option<String>, Problem> {
    if info.generation == 0 {
        return Err(Problem::new(ProblemKind::NoData));
    }
    Ok(info.as_of.map(crate::domain::records::format_date))
}

/// A store or file failure: logged (without the request's data), a bare 500 on the wire.
pub(crate) fn store_failure(e: impl std::error::Error) -> Problem {
    tracing::error!(error = %crate::config::error_chain(&e), "store read failed");
    Problem::new(ProblemKind::Internal)
}

/// A request body the node's routes read: hyper's for the API port, an in-memory one for the
/// console's requests made on an operator's behalf.
pub(crate) trait ReqBody:
    hyper::body::Body<Data = bytes::Bytes, Error: std::error::Error + Send + Sync + 'static>
    + Send
    + Unpin
    + 'static
{
}

impl<T> ReqBody for T where
    T: hyper::body::Body<Data = bytes::Bytes, Error: std::error::Error + Send + Sync + 'static>
        + Send
        + Unpin
        + 'static
{
}
