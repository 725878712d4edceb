//! A loopback HTTP/1.1 reverse proxy that injects faults into chosen requests.
//!
//! ```no_run
//! # async fn demo(upstream: &str) -> anyhow::Result<()> {
//! use acr_test_support::{Fault, FaultProxy, Match, Rule};
//! let proxy = FaultProxy::start(upstream).await?;
//! // The next PATCH to an upload URL gets 1 MiB of its body forwarded, then the client's
//! // connection is dropped.
//! proxy.add_rule(
//!     Rule::new(Match::any().method("PATCH").path_contains("/blobs/uploads/"),
//!               Fault::CutRequestAfter(1 << 20))
//!         .times(1),
//! );
//! let base = proxy.endpoint(); // point the client under test here
//! # let _ = base; Ok(()) }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Sleep;

use crate::loopback::LoopbackServer;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// How long a cutting fault waits after handing its last bytes to hyper before it breaks the
/// connection, so those bytes are flushed to the socket first.
const FLUSH_GRACE: Duration = Duration::from_millis(100);

/// Headers that belong to one connection and are not forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    // hyper answers `100 Continue` itself when the body is first read.
    "expect",
];

/// Which requests a [`Rule`] applies to. Empty fields match everything.
///
/// ```
/// # use acr_test_support::Match;
/// let m = Match::any().method("PUT").path_contains("/manifests/");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    /// HTTP method, compared case-insensitively.
    pub method: Option<String>,
    /// A substring of the request's path and query (as sent by the client, not decoded).
    pub path_contains: Option<String>,
}

impl Match {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Only requests with this method.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// Only requests whose path and query contain `s`.
    pub fn path_contains(mut self, s: impl Into<String>) -> Self {
        self.path_contains = Some(s.into());
        self
    }

    fn matches(&self, method: &str, path_and_query: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path_and_query.contains(p))
    }
}

/// What the proxy does to a matching request.
///
/// Body faults (`Cut*`, `TruncateBody`, `FlipByte`) have no effect when the body is not long
/// enough to reach their offset; the request then completes normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward unchanged. Useful with [`Rule::times`] in front of another rule, e.g. to let the
    /// first upload chunk through and cut the second.
    Passthrough,
    /// Wait this long, then forward unchanged (delays the whole response).
    Delay(Duration),
    /// Answer with this status (and optional `Retry-After` header and body) without contacting
    /// the upstream. A body starting with `{` is sent as `application/json`, else `text/plain`.
    Status {
        /// HTTP status code.
        status: u16,
        /// Value of a `Retry-After` header, if any.
        retry_after: Option<String>,
        /// Response body, if any.
        body: Option<String>,
    },
    /// Close the client's connection without forwarding or answering.
    Disconnect,
    /// Forward this many bytes of the request body to the upstream, then drop the client's
    /// connection (no response) and abort the upstream request.
    CutRequestAfter(u64),
    /// Forward the response headers (with the upstream `Content-Length`) and this many bytes
    /// of the body, then abort the connection (hyper's abort path: the body is reported as
    /// failed, the socket closed).
    CutResponseAfter(u64),
    /// Like [`Fault::CutResponseAfter`] but the body stream ends cleanly after this many
    /// bytes: the client sees fewer bytes than `Content-Length`, then the connection closes.
    TruncateBody(u64),
    /// Forward the response with the byte at this offset of the body XORed with `0xFF`
    /// (same length, same headers, so any digest over the body no longer matches).
    FlipByte(u64),
    /// Set this response header (name, value), replacing any value the upstream sent, e.g.
    /// a wrong `Docker-Content-Digest`.
    ReplaceHeader(String, String),
    /// Remove this response header.
    RemoveHeader(String),
}

/// A [`Match`] plus the [`Fault`] to inject, optionally limited to a number of requests.
#[derive(Debug, Clone)]
pub struct Rule {
    matcher: Match,
    fault: Fault,
    remaining: Option<u64>,
}

impl Rule {
    /// A rule that applies to every matching request until removed.
    pub fn new(matcher: Match, fault: Fault) -> Self {
        Self {
            matcher,
            fault,
            remaining: None,
        }
    }

    /// Apply only to the next `n` matching requests, then expire (later rules, or plain
    /// forwarding, take over).
    pub fn times(mut self, n: u64) -> Self {
        self.remaining = Some(n);
        self
    }
}

/// One request seen by the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequestRecord {
    /// Request method.
    pub method: String,
    /// Path and query as sent by the client.
    pub path_and_query: String,
    /// Request headers (lower-case names, values decoded lossily), in order.
    pub headers: Vec<(String, String)>,
    /// Status sent to the client; `None` if no response head was sent (connection cut) or the
    /// response is still pending.
    pub status: Option<u16>,
    /// The fault applied, if a rule matched.
    pub fault: Option<Fault>,
}

impl ProxyRequestRecord {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::util::header_value(&self.headers, name)
    }
}

struct Shared {
    rules: Mutex<Vec<Rule>>,
    records: Mutex<Vec<Arc<Mutex<ProxyRequestRecord>>>>,
    /// `http://host:port` of the upstream.
    upstream_origin: String,
    /// Path prefix of the upstream base URL, without a trailing slash (usually empty).
    upstream_prefix: String,
    client: Client<HttpConnector, ProxyBody>,
}

/// A running fault-injecting reverse proxy on `127.0.0.1:<free port>`, in front of one `http://`
/// upstream. Bodies are streamed in both directions; nothing is rewritten (not `Host`, not
/// `Location`), so relative `Location` headers keep clients on the proxy. Hop-by-hop headers
/// are dropped. Requests that match no live rule are forwarded unchanged; if the upstream
/// cannot be reached the proxy answers `502`.
///
/// Runs on the current tokio runtime; stops (listener and open connections) on drop.
pub struct FaultProxy {
    server: LoopbackServer,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.server
            .debug_struct(f, "FaultProxy")
            .field("upstream", &self.shared.upstream_origin)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream_base_url` (`http://host:port`, optionally with a
    /// path prefix). Must be called inside a tokio runtime.
    pub async fn start(upstream_base_url: &str) -> anyhow::Result<Self> {
        let uri: Uri = upstream_base_url
            .parse()
            .with_context(|| format!("invalid upstream URL {upstream_base_url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("FaultProxy supports http:// upstreams only, got {upstream_base_url:?}");
        }
        let Some(authority) = uri.authority() else {
            bail!("upstream URL {upstream_base_url:?} has no host");
        };
        let upstream_origin = format!("http://{authority}");
        let upstream_prefix = uri.path().trim_end_matches('/').to_string();

        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let shared = Arc::new(Shared {
            rules: Mutex::new(Vec::new()),
            records: Mutex::new(Vec::new()),
            upstream_origin,
            upstream_prefix,
            client,
        });
        let server = LoopbackServer::start("fault proxy", {
            let shared = shared.clone();
            move |stream| serve_connection(shared.clone(), stream)
        })
        .await?;
        Ok(Self { server, shared })
    }

    /// The proxy's base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Appends a rule. Rules are tried in the order added; the first live one that matches
    /// applies.
    pub fn add_rule(&self, rule: Rule) {
        lock(&self.shared.rules).push(rule);
    }

    /// Removes all rules (later requests are forwarded unchanged).
    pub fn clear_rules(&self) {
        lock(&self.shared.rules).clear();
    }

    /// The requests seen so far, oldest first.
    pub fn requests(&self) -> Vec<ProxyRequestRecord> {
        lock(&self.shared.records)
            .iter()
            .map(|r| lock(r).clone())
            .collect()
    }

    /// Forgets the recorded requests (rules stay).
    pub fn clear_requests(&self) {
        lock(&self.shared.records).clear();
    }

    /// Forgets the recorded requests and removes all rules.
    pub fn clear(&self) {
        self.clear_requests();
        self.clear_rules();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves HTTP/1.1 on one client connection, each request through [`handle`].
async fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
    let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
    // Errors here are injected faults or client disconnects.
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

impl Shared {
    /// The fault for this request, consuming one use of a counted rule.
    fn pick(&self, method: &str, path_and_query: &str) -> Option<Fault> {
        let mut rules = lock(&self.rules);
        for rule in rules.iter_mut() {
            if rule.remaining == Some(0) || !rule.matcher.matches(method, path_and_query) {
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            return Some(rule.fault.clone());
        }
        None
    }
}

#[derive(Debug)]
struct FaultError(&'static str);

impl std::fmt::Display for FaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultProxy: {}", self.0)
    }
}

impl std::error::Error for FaultError {}

fn full(status: StatusCode, content_type: &str, body: String) -> Response<ProxyBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|e: Infallible| -> BoxError { match e {} })
            .boxed(),
    );
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, BoxError> {
    let method = req.method().as_str().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let fault = shared.pick(&method, &path_and_query);
    let record = Arc::new(Mutex::new(ProxyRequestRecord {
        method,
        path_and_query: path_and_query.clone(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        status: None,
        fault: fault.clone(),
    }));
    lock(&shared.records).push(record.clone());

    let result = respond(&shared, req, &path_and_query, fault).await;
    if let Ok(resp) = &result {
        lock(&record).status = Some(resp.status().as_u16());
    }
    result
}

async fn respond(
    shared: &Shared,
    req: Request<Incoming>,
    path_and_query: &str,
    fault: Option<Fault>,
) -> Result<Response<ProxyBody>, BoxError> {
    let fault = fault.unwrap_or(Fault::Passthrough);
    match &fault {
        Fault::Status {
            status,
            retry_after,
            body,
        } => {
            let status = StatusCode::from_u16(*status)?;
            let body = body.clone().unwrap_or_default();
            let ct = if body.starts_with('{') {
                "application/json"
            } else {
                "text/plain"
            };
            let mut resp = full(status, ct, body);
            if let Some(ra) = retry_after {
                resp.headers_mut()
                    .insert(hyper::header::RETRY_AFTER, HeaderValue::from_str(ra)?);
            }
            return Ok(resp);
        }
        Fault::Disconnect => return Err(Box::new(FaultError("disconnect"))),
        Fault::Delay(d) => tokio::time::sleep(*d).await,
        _ => {}
    }

    // Build the upstream request: same method, path, headers (minus hop-by-hop) and body.
    let uri: Uri = format!(
        "{}{}{}",
        shared.upstream_origin, shared.upstream_prefix, path_and_query
    )
    .parse()?;
    let (parts, body) = req.into_parts();
    let mut up = Request::builder()
        .method(parts.method)
        .uri(uri)
        .version(hyper::Version::HTTP_11);
    if let Some(h) = up.headers_mut() {
        for (name, value) in parts.headers.iter() {
            if !HOP_BY_HOP.contains(&name.as_str()) {
                h.append(name.clone(), value.clone());
            }
        }
    }
    let body: ProxyBody = body.map_err(|e| -> BoxError { Box::new(e) }).boxed();
    let cut = Arc::new(CutSignal::default());
    let body = match fault {
        Fault::CutRequestAfter(n) => {
            LimitBody::new(body, n, LimitEnd::CutRequest(cut.clone())).boxed()
        }
        _ => body,
    };
    let up = up.body(body)?;

    let upstream = tokio::select! {
        r = shared.client.request(up) => Some(r),
        _ = cut.notify.notified() => None,
    };
    if cut.fired.load(Ordering::SeqCst) {
        // Drop the client's connection: hyper closes it when the service fails.
        return Err(Box::new(FaultError("request cut")));
    }
    let resp = match upstream {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return Ok(full(
                StatusCode::BAD_GATEWAY,
                "text/plain",
                format!(
                    "FaultProxy: upstream {} failed: {e}",
                    shared.upstream_origin
                ),
            ))
        }
        None => return Err(Box::new(FaultError("request cut"))),
    };

    let (mut parts, body) = resp.into_parts();
    for h in HOP_BY_HOP {
        parts.headers.remove(*h);
    }
    let body: ProxyBody = body.map_err(|e| -> BoxError { Box::new(e) }).boxed();
    let body = match fault {
        Fault::CutResponseAfter(n) => LimitBody::new(body, n, LimitEnd::AbortResponse).boxed(),
        Fault::TruncateBody(n) => LimitBody::new(body, n, LimitEnd::Truncate).boxed(),
        Fault::FlipByte(offset) => flip_byte(body, offset),
        Fault::ReplaceHeader(name, value) => {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                (Ok(n), Ok(v)) => {
                    parts.headers.insert(n, v);
                }
                _ => {
                    return Ok(full(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        format!("FaultProxy: invalid ReplaceHeader({name:?}, {value:?})"),
                    ))
                }
            }
            body
        }
        Fault::RemoveHeader(name) => {
            parts.headers.remove(name.as_str());
            body
        }
        _ => body,
    };
    Ok(Response::from_parts(parts, body))
}

#[derive(Default)]
struct CutSignal {
    fired: AtomicBool,
    notify: Notify,
}

/// How a [`LimitBody`] ends once its bytes are passed and [`FLUSH_GRACE`] is over.
enum LimitEnd {
    /// Signal the cut to the request's forwarder, then fail (which aborts the upstream
    /// request).
    CutRequest(Arc<CutSignal>),
    /// Fail: hyper aborts the client's connection.
    AbortResponse,
    /// End cleanly, short of the announced length.
    Truncate,
}

/// Body that passes `remaining` bytes, waits [`FLUSH_GRACE`], then ends as `end` says.
struct LimitBody {
    inner: ProxyBody,
    remaining: u64,
    end: LimitEnd,
    grace: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl LimitBody {
    fn new(inner: ProxyBody, remaining: u64, end: LimitEnd) -> Self {
        Self {
            inner,
            remaining,
            end,
            grace: None,
            done: false,
        }
    }
}

impl Body for LimitBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(grace) = this.grace.as_mut() {
            if grace.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.done = true;
            return match &this.end {
                LimitEnd::CutRequest(signal) => {
                    signal.fired.store(true, Ordering::SeqCst);
                    signal.notify.notify_one();
                    Poll::Ready(Some(Err(Box::new(FaultError("request cut")))))
                }
                LimitEnd::AbortResponse => {
                    Poll::Ready(Some(Err(Box::new(FaultError("response cut")))))
                }
                LimitEnd::Truncate => Poll::Ready(None),
            };
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    let len = data.len() as u64;
                    if len <= this.remaining {
                        this.remaining -= len;
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    let keep = usize::try_from(this.remaining).unwrap_or(usize::MAX);
                    this.remaining = 0;
                    this.grace = Some(Box::pin(tokio::time::sleep(FLUSH_GRACE)));
                    if keep > 0 {
                        Poll::Ready(Some(Ok(Frame::data(data.slice(..keep)))))
                    } else {
                        // Poll the timer so we are woken when it fires.
                        self.poll_frame(cx)
                    }
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        // Unknown: hyper keeps the forwarded Content-Length header (if any), so a cut request's
        // upstream expects the full length and sees a short body, and so does the client of a
        // cut response.
        SizeHint::default()
    }
}

/// `body` with the byte at `offset` XORed with 0xFF (same length, other frames unchanged).
fn flip_byte(body: ProxyBody, offset: u64) -> ProxyBody {
    let mut pos = 0u64;
    body.map_frame(move |frame| match frame.into_data() {
        Ok(data) => {
            let start = pos;
            pos += data.len() as u64;
            if !(start..pos).contains(&offset) {
                return Frame::data(data);
            }
            let i = usize::try_from(offset - start).unwrap_or(usize::MAX);
            let mut m = BytesMut::from(&data[..]);
            if let Some(b) = m.get_mut(i) {
                *b ^= 0xFF;
            }
            Frame::data(m.freeze())
        }
        Err(frame) => frame,
    })
    .boxed()
}

#[cfg(test)]
mod tests;
