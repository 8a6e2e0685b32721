//! The HTTP side, apart from what is served: hyper (HTTP/1 only) on a tokio runtime, with
//! every resource a client can hold bounded.
//!
//! - A request head (request line and headers) larger than [`Limits::max_head_bytes`] or
//!   with more than [`Limits::max_headers`] headers is answered 431 (or 400) and closed:
//!   hyper stops buffering at that size.
//! - A client has [`Limits::header_read_timeout`] to send its request head.
//! - A write that waits [`Limits::write_timeout`] for the client to take data fails, and
//!   the connection is closed; no connection lives longer than
//!   [`Limits::connection_lifetime`].
//! - One request per connection (no keep-alive), each connection its own task: a client
//!   that never reads its answer holds only its own connection.
//! - At most [`Limits::max_connections`] connections at once. When a new one arrives at the
//!   limit, the oldest connection that has not yet sent a request is closed to make room
//!   (so clients that connect and send nothing cannot lock out a scrape); if every
//!   connection is busy answering, the new one gets a 503 and is closed.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Sleep;

/// What one connection may take from the exporter.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Bytes of a request's head (request line and headers); at least 8192 (hyper's minimum).
    pub max_head_bytes: usize,
    /// Headers in a request.
    pub max_headers: usize,
    /// Time a client has, from connecting, to send its whole request head.
    pub header_read_timeout: Duration,
    /// Time one write may wait for the client to take data.
    pub write_timeout: Duration,
    /// Time after which a connection is closed whatever it is doing.
    pub connection_lifetime: Duration,
    /// Time in-flight requests get to finish once the server is told to stop.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            header_read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            connection_lifetime: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

/// What is served: a metrics page at `metrics_path`, rendered by `scrape` on a blocking
/// thread for each GET or HEAD of it, and a small HTML page at `/` linking to it.
pub struct Site {
    /// Path of the metrics page, such as `/metrics`.
    pub metrics_path: String,
    /// Renders the metrics page (Prometheus text format).
    pub scrape: Box<dyn Fn() -> String + Send + Sync>,
}

const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Content-Length: 37\r\nConnection: close\r\n\r\ntoo many connections, try again soon\n";

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Answers one request: the metrics page, the index page, 404 for any other path and 405
/// for any method but GET and HEAD.
async fn answer(
    site: Arc<Site>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    let path = req.uri().path();
    Ok(if path == site.metrics_path {
        let s = site.clone();
        match tokio::task::spawn_blocking(move || (s.scrape)()).await {
            Ok(body) => text(StatusCode::OK, METRICS_TYPE, body),
            Err(_) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                "the scrape failed\n",
            ),
        }
    } else if path == "/" {
        let m = &site.metrics_path;
        let page = format!(
            "<!doctype html><html><head><title>mpqueue exporter</title></head><body>\
             <h1>mpqueue exporter</h1><p><a href=\"{m}\">{m}</a></p></body></html>\n"
        );
        text(StatusCode::OK, "text/html; charset=utf-8", page)
    } else {
        text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n",
        )
    })
}

/// A connection in the table: whether it has started a request, and how to close it.
struct Entry {
    id: u64,
    answering: Arc<AtomicBool>,
    evict: Arc<Notify>,
}

/// The connections being served, oldest first.
struct Table {
    limit: usize,
    state: Mutex<(u64, Vec<Entry>)>,
}

/// A connection's place in the [`Table`], given back on drop.
struct Ticket {
    id: u64,
    table: Arc<Table>,
    answering: Arc<AtomicBool>,
    evict: Arc<Notify>,
}

impl Table {
    fn new(limit: usize) -> Arc<Self> {
        Arc::new(Table {
            limit: limit.max(1),
            state: Mutex::new((0, Vec::new())),
        })
    }

    /// A place for a new connection, making room by closing the oldest connection that has
    /// not started a request; `None` if every connection is answering one.
    fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (next, conns) = &mut *guard;
        if conns.len() >= self.limit {
            let idle = conns
                .iter()
                .position(|c| !c.answering.load(Ordering::Acquire))?;
            conns.remove(idle).evict.notify_one();
        }
        *next += 1;
        let entry = Entry {
            id: *next,
            answering: Arc::new(AtomicBool::new(false)),
            evict: Arc::new(Notify::new()),
        };
        let ticket = Ticket {
            id: entry.id,
            table: self.clone(),
            answering: entry.answering.clone(),
            evict: entry.evict.clone(),
        };
        conns.push(entry);
        Some(ticket)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .len()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut guard = self
            .table
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        guard.1.retain(|c| c.id != self.id);
    }
}

/// A stream whose writes fail with [`io::ErrorKind::TimedOut`] once one of them has waited
/// `limit` for the peer to take data. Reads pass through.
pub struct WriteDeadline<T> {
    inner: T,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, limit: Duration) -> Self {
        WriteDeadline {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Passes on a write's result, arming the deadline while the write waits.
    fn watch<R>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match r {
            Poll::Pending => {
                let limit = self.limit;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client took no data within the write timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            done => {
                self.stalled = None;
                done
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, r)
    }
}

/// Serves `site` on `listener` within `limits` until `stop` completes, then gives requests
/// in flight [`Limits::shutdown_grace`] to finish and closes the rest.
pub async fn serve(
    listener: TcpListener,
    site: Arc<Site>,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let table = Table::new(limits.max_connections);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(false);
    let mut tasks = JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    let mut accept_error_reported = false;
    loop {
        while tasks.try_join_next().is_some() {}
        let stream = tokio::select! {
            () = &mut stop => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: report once, wait a little, go on.
                    if !accept_error_reported {
                        eprintln!("mpqueue-exporter: accepting a connection: {e}");
                        accept_error_reported = true;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        accept_error_reported = false;
        let Some(ticket) = table.admit() else {
            // Every connection is answering: say so if the socket takes it at once, close.
            let _ = stream.try_write(BUSY);
            continue;
        };
        let answering = ticket.answering.clone();
        let site = site.clone();
        let service = service_fn(move |req| {
            answering.store(true, Ordering::Release);
            answer(site.clone(), req)
        });
        let io = TokioIo::new(WriteDeadline::new(stream, limits.write_timeout));
        let conn = http.serve_connection(io, service);
        let lifetime = limits.connection_lifetime;
        tasks.spawn(async move {
            // Errors (timeouts, malformed or oversized requests, clients gone) concern one
            // client only and are not reported; hyper has answered what it could.
            tokio::select! {
                _ = conn => {}
                () = ticket.evict.notified() => {}
                () = tokio::time::sleep(lifetime) => {}
            }
            drop(ticket);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_write_nobody_reads_times_out() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut w = WriteDeadline::new(server, Duration::from_millis(50));
        let e = w.write_all(&[7u8; 4096]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        // A reader that takes the data keeps the writer going.
        let mut w = WriteDeadline::new(w.inner, Duration::from_secs(10));
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut client, &mut sink)
                .await
                .unwrap();
            sink.len()
        });
        w.write_all(&[7u8; 4096]).await.unwrap();
        w.shutdown().await.unwrap();
        drop(w);
        assert!(reader.await.unwrap() >= 4096);
    }

    #[test]
    fn the_busy_answer_declares_its_length() {
        let text = std::str::from_utf8(BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let declared = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap();
        assert_eq!(declared.parse::<usize>().unwrap(), body.len());
    }

    #[test]
    fn a_full_table_closes_the_oldest_idle_connection() {
        let table = Table::new(3);
        let a = table.admit().unwrap();
        let b = table.admit().unwrap();
        let c = table.admit().unwrap();
        a.answering.store(true, Ordering::Release);
        // Full: b is the oldest that has not started a request.
        let d = table.admit().unwrap();
        assert_eq!(table.len(), 3);
        let evicted = Arc::new(AtomicBool::new(false));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::select! {
                () = b.evict.notified() => evicted.store(true, Ordering::Release),
                () = c.evict.notified() => panic!("c is younger than b"),
            }
        });
        assert!(evicted.load(Ordering::Acquire));
        drop(b);
        assert_eq!(table.len(), 3, "b had already left the table");
        c.answering.store(true, Ordering::Release);
        d.answering.store(true, Ordering::Release);
        // Everyone is answering: no room.
        assert!(table.admit().is_none());
        drop(c);
        assert!(table.admit().is_some());
    }
}
