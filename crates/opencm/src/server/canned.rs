//! hyper answers a request it cannot parse (a malformed request line or header, conflicting
//! `Content-Length`s, a head beyond the size limit) itself, with an empty-bodied 400 or 431 and a
//! closed connection, before any of opencm's code sees it; it offers no hook to change that
//! answer. This writer recognises that canned answer on its way out — an HTTP/1.1 4xx head with
//! `content-length: 0` and no correlation id, which every response of opencm's own carries — and
//! writes the error body (docs/API.md, "Errors") with a new correlation id in its place, logged like any other
//! refusal. Everything else passes through untouched.
//!
//! Why here and not in hyper: hyper 1's HTTP/1 server writes that answer in its
//! `on_parse_error` (proto/h1/role.rs) and returns the parse error only after the connection is
//! done; `http1::Builder` has no setting or callback for it (asked for in hyperium/hyper#2583,
//! still so in hyper 1.x). The alternatives are worse: parsing request heads ourselves ahead of
//! hyper, or a proxy in front. Why it is safe: opencm's own responses always carry
//! `x-correlation-id` (the API's middleware sets it on every response, errors included), so a
//! 4xx head without one and with an empty body can only be hyper's. Tested here on heads, and from
//! outside by `tests/api/edge.rs` (`malformed_requests_get_the_json_error_body_from_the_http_layer_too`:
//! a header without a colon, conflicting `Content-Length`s, an oversized header and URI, and bytes
//! that are not HTTP, sent over a real socket, each answered with the JSON error body).

use opencm_app::ErrorCode;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub struct CannedErrors<T> {
    inner: T,
    /// The replacement still being written, and how many of the caller's bytes it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
    max_header_bytes: usize,
}

impl<T> CannedErrors<T> {
    pub fn new(inner: T, max_header_bytes: usize) -> Self {
        CannedErrors {
            inner,
            pending: None,
            max_header_bytes,
        }
    }
}

/// The length of a canned error head at the start of `buf`, and its status.
fn canned_head(buf: &[u8]) -> Option<(usize, u16)> {
    if !buf.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?.to_ascii_lowercase();
    if head.contains("x-correlation-id:") || !head.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let status = head.get(9..12)?.parse().ok()?;
    Some((end, status))
}

fn replacement(status: u16, max_header_bytes: usize) -> Vec<u8> {
    let id = uuid::Uuid::new_v4();
    let (reason, code, message) = match status {
        431 => (
            "Request Header Fields Too Large",
            ErrorCode::RequestHeaderTooLarge.as_str(),
            format!("The request line and headers are larger than the {max_header_bytes} bytes this server accepts."),
        ),
        414 => (
            "URI Too Long",
            ErrorCode::RequestHeaderTooLarge.as_str(),
            "The request URI is longer than this server accepts.".to_string(),
        ),
        400 => (
            "Bad Request",
            ErrorCode::BadRequest.as_str(),
            "The request is not valid HTTP/1.1 (a malformed request line or header, or conflicting Content-Length headers).".to_string(),
        ),
        _ => (
            "Client Error",
            ErrorCode::BadRequest.as_str(),
            "The request could not be processed.".to_string(),
        ),
    };
    tracing::info!(status, code, correlation_id = %id, "malformed request refused by the HTTP layer; connection closed");
    let body =
        serde_json::json!({"Message": message, "ErrorCode": code, "CorrelationId": id.to_string()})
            .to_string();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\nx-correlation-id: {id}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl<T: AsyncWrite + Unpin> CannedErrors<T> {
    /// Writes what remains of a replacement; `Ready(Ok(n))` reports the caller's `n` bytes.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, written, stands_for)) = &mut self.pending {
            if *written == bytes.len() {
                let n = *stands_for;
                self.pending = None;
                return Poll::Ready(Ok(n));
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(0))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CannedErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CannedErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            match canned_head(buf) {
                Some((len, status)) => {
                    let bytes = replacement(status, self.max_header_bytes);
                    self.pending = Some((bytes, 0, len));
                }
                None => return Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        self.drain(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            let first = bufs.iter().find(|b| !b.is_empty());
            match first.and_then(|b| canned_head(b)) {
                Some((len, status)) => {
                    let bytes = replacement(status, self.max_header_bytes);
                    self.pending = Some((bytes, 0, len));
                }
                None => return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
            }
        }
        self.drain(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pending.is_some() {
            match self.drain(cx) {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_empty_4xx_heads_are_replaced() {
        let canned = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(canned_head(canned), Some((canned.len(), 400)));
        let ours = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nx-correlation-id: 1\r\n\r\n";
        assert_eq!(canned_head(ours), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(canned_head(ok), None);
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(canned_head(with_body), None);
    }
}
