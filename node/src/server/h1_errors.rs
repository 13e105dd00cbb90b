//! hyper's own answers to HTTP/1.1 it cannot parse, in problem+json.
//!
//! When a request head is not HTTP/1.1 (or is larger than hyper reads), hyper answers by itself
//! with a bare `400`, `414` or `431` and no body, before any handler runs. [`ProblemErrors`]
//! wraps the connection's stream and rewrites exactly those answers: a head that starts with
//! one of these statuses, has `content-length: 0` and no `content-type` (every answer of the
//! node's own carries a content type) becomes the same status with an RFC 9457 body and
//! `connection: close`. Everything else passes through untouched.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::problem::{Problem, ProblemKind};

/// A stream whose writes of hyper's bodiless parse-error answers become problem+json.
#[derive(Debug)]
pub struct ProblemErrors<T> {
    inner: T,
    /// A rewritten answer being written, how much of it is out, and how many bytes of
    /// hyper's buffer it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> ProblemErrors<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

/// The problem+json answer that replaces `head`, if `head` is one of hyper's own.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let (kind, detail) = if text.starts_with("HTTP/1.1 400 ") {
        (ProblemKind::BadRequest, "the request is not valid HTTP/1.1")
    } else if text.starts_with("HTTP/1.1 414 ") {
        (ProblemKind::UriTooLong, "the request target is too long")
    } else if text.starts_with("HTTP/1.1 431 ") {
        (
            ProblemKind::HeadersTooLarge,
            "the request head is too large",
        )
    } else {
        return None;
    };
    let lower = text.to_ascii_lowercase();
    if !lower.ends_with("\r\n\r\n")
        || !lower.contains("\r\ncontent-length: 0\r\n")
        || lower.contains("\r\ncontent-type:")
    {
        return None;
    }
    let problem = Problem::new(kind).with_detail(detail);
    let body = serde_json::to_vec(&problem).ok()?;
    let status_line = text.split("\r\n").next()?;
    let mut out = format!(
        "{status_line}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        crate::problem::CONTENT_TYPE,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match rewrite(buf) {
                Some(answer) => this.pending = Some((answer, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        let Some((answer, sent, claimed)) = this.pending.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while *sent < answer.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &answer[*sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        let claimed = *claimed;
        this.pending = None;
        Poll::Ready(Ok(claimed))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // One buffer per write, so that an answer's head arrives whole in `poll_write`.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_parse_error_answers_are_rewritten() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 10:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(bare).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(out.contains("content-type: application/problem+json\r\n"));
        assert!(out.contains("connection: close\r\n"));
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        let p: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(p["type"], "urn:attesta:problem:bad-request");
        assert_eq!(p["status"], 400);
        let len: usize = out
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len());

        let big = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert!(String::from_utf8(rewrite(big).unwrap())
            .unwrap()
            .contains("urn:attesta:problem:headers-too-large"));

        // The node's own answers carry a content type, or a body, or another status.
        for own in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 90\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"{\"subject\": \"HTTP/1.1 400 \"}",
        ] {
            assert!(rewrite(own).is_none(), "{}", String::from_utf8_lossy(own));
        }
    }
}
