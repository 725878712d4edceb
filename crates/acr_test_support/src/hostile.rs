//! A hand-written hostile HTTP/1.1 server: it records every request it receives (headers and
//! body) and answers as a test's handler tells it to, including answers no honest registry
//! gives (endless or trickling bodies, stalls, silence). Beside [`FaultProxy`](crate::FaultProxy),
//! which breaks the traffic of a real upstream, this one *is* the upstream.
//!
//! ```no_run
//! # async fn demo() {
//! use acr_test_support::{HostileServer, Reply};
//! let server = HostileServer::start("127.0.0.1", |request| match request.path_and_query.as_str() {
//!     "/v2/" => Reply::new(200),
//!     _ => Reply::new(404).after(std::time::Duration::from_secs(1)),
//! })
//! .await;
//! let base = server.endpoint(); // point the client under test here
//! # let _ = base; }
//! ```

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;

/// One request received by a [`HostileServer`].
#[derive(Debug, Clone)]
pub struct Received {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path and query as received.
    pub path_and_query: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Received {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::util::header_value(&self.headers, name)
    }

    /// Whether `secret` appears anywhere in the request: path, header values or body.
    pub fn contains(&self, secret: &str) -> bool {
        self.path_and_query.contains(secret)
            || self.headers.iter().any(|(_, v)| v.contains(secret))
            || String::from_utf8_lossy(&self.body).contains(secret)
    }
}

/// The body of a [`Reply`].
#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// These bytes (with `Content-Length`).
    Bytes(Vec<u8>),
    /// `chunk` repeated up to `cap` bytes in total (chunked, no `Content-Length`): "endless"
    /// for any client that bounds its reads, while the test can never use unbounded memory.
    Endless {
        /// What is repeated.
        chunk: Vec<u8>,
        /// The total at most.
        cap: u64,
    },
    /// `data` one byte at a time, a byte every `every` (with `Content-Length`): inside every
    /// size limit, and slow enough to last for ever.
    Trickle {
        /// The whole body.
        data: Vec<u8>,
        /// The pause before each byte.
        every: Duration,
    },
    /// The first `after` bytes of `data` (with the whole `Content-Length`), then nothing.
    Stall {
        /// The whole body (its length is announced).
        data: Vec<u8>,
        /// How many bytes are sent.
        after: usize,
    },
}

/// An answer of a [`HostileServer`].
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: ReplyBody,
    /// How long the server waits before it answers (a silent server: longer than the test).
    pub delay: Option<Duration>,
}

impl Reply {
    /// An empty answer with `status`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: ReplyBody::Bytes(Vec::new()),
            delay: None,
        }
    }

    /// Answers only after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Sends the first `after` bytes of `data`, with the whole `Content-Length`, then stalls.
    pub fn stall_after(self, data: impl Into<Vec<u8>>, after: usize) -> Self {
        self.announced(data.into(), |data| ReplyBody::Stall { data, after })
    }

    /// Sends `data` a byte every `every`, with its `Content-Length`.
    pub fn trickle(self, data: impl Into<Vec<u8>>, every: Duration) -> Self {
        self.announced(data.into(), |data| ReplyBody::Trickle { data, every })
    }

    /// The body `body(data)`, announced with the `Content-Length` of all of `data`.
    fn announced(self, data: Vec<u8>, body: impl FnOnce(Vec<u8>) -> ReplyBody) -> Self {
        let mut reply = self.header("Content-Length", &data.len().to_string());
        reply.body = body(data);
        reply
    }

    /// A JSON answer.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self::new(status)
            .header("Content-Type", "application/json")
            .body(body.to_string())
    }

    /// A `401` with an ACR-style `UNAUTHORIZED` error carrying `message`.
    pub fn unauthorized(message: &str) -> Self {
        Self::json(
            401,
            serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": message}]}),
        )
    }

    /// Adds a `WWW-Authenticate: Bearer` challenge naming `realm`, `service` and `scope`.
    pub fn challenge(self, realm: &str, service: &str, scope: &str) -> Self {
        self.header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="{realm}",service="{service}",scope="{scope}""#),
        )
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = ReplyBody::Bytes(body.into());
        self
    }

    /// Sends `chunk` again and again, up to `cap` bytes, chunked.
    pub fn endless(mut self, chunk: impl Into<Vec<u8>>, cap: u64) -> Self {
        self.body = ReplyBody::Endless {
            chunk: chunk.into(),
            cap,
        };
        self
    }
}

type Handler = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

/// A hand-written HTTP/1.1 server on a loopback address that records every request and
/// answers with a test's handler. Stops when dropped.
pub struct HostileServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    /// Body bytes handed to the connection by [`ReplyBody::Endless`] answers.
    streamed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostileServer {
    /// Starts on `ip` (e.g. 127.0.0.1 or 127.0.0.2) and a free port.
    ///
    /// # Panics
    /// When `ip` is not an IP address or cannot be bound.
    pub async fn start(
        ip: &str,
        handler: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let ip: IpAddr = ip.parse().expect("an IP address");
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let streamed = Arc::new(AtomicU64::new(0));
        let handler: Handler = Arc::new(handler);
        let task = tokio::spawn({
            let received = received.clone();
            let streamed = streamed.clone();
            async move {
                let mut connections = tokio::task::JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    let received = received.clone();
                    let streamed = streamed.clone();
                    let handler = handler.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(
                            move |request: hyper::Request<hyper::body::Incoming>| {
                                let received = received.clone();
                                let streamed = streamed.clone();
                                let handler = handler.clone();
                                async move {
                                    Ok::<_, Infallible>(
                                        answer(request, &received, &streamed, &handler).await,
                                    )
                                }
                            },
                        );
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await;
                    });
                }
            }
        });
        Self {
            addr,
            received,
            streamed,
            task,
        }
    }

    /// `http://ip:port` (no trailing slash).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://localhost:port`: the same server under another origin.
    pub fn localhost_endpoint(&self) -> String {
        format!("http://localhost:{}", self.addr.port())
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets the requests received so far.
    pub fn clear(&self) {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Bytes of endless bodies handed to connections so far.
    pub fn streamed(&self) -> u64 {
        self.streamed.load(Ordering::SeqCst)
    }
}

async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
    received: &Mutex<Vec<Received>>,
    streamed: &Arc<AtomicU64>,
    handler: &Handler,
) -> hyper::Response<BoxBody<Bytes, Infallible>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let record = Received {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(record.clone());
    let reply = handler(&record);
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let mut builder = hyper::Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body: BoxBody<Bytes, Infallible> = match reply.body {
        ReplyBody::Bytes(bytes) => Full::new(Bytes::from(bytes)).boxed(),
        ReplyBody::Endless { chunk, cap } => {
            let chunk = Bytes::from(chunk);
            let streamed = streamed.clone();
            let stream = futures::stream::unfold(0u64, move |sent| {
                let chunk = chunk.clone();
                let streamed = streamed.clone();
                async move {
                    if sent >= cap {
                        return None;
                    }
                    streamed.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    Some((
                        Ok::<_, Infallible>(Frame::data(chunk.clone())),
                        sent + chunk.len() as u64,
                    ))
                }
            });
            StreamBody::new(stream).boxed()
        }
        ReplyBody::Stall { data, after } => {
            let head = Bytes::from(data[..after.min(data.len())].to_vec());
            let stream = futures::stream::unfold(Some(head), |head| async move {
                match head {
                    Some(head) => Some((Ok::<_, Infallible>(Frame::data(head)), None)),
                    None => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        None
                    }
                }
            });
            StreamBody::new(stream).boxed()
        }
        ReplyBody::Trickle { data, every } => {
            let stream = futures::stream::unfold(0usize, move |sent| {
                let byte = data.get(sent).copied();
                async move {
                    let byte = byte?;
                    tokio::time::sleep(every).await;
                    Some((
                        Ok::<_, Infallible>(Frame::data(Bytes::from(vec![byte]))),
                        sent + 1,
                    ))
                }
            });
            StreamBody::new(stream).boxed()
        }
    };
    builder
        .body(body)
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new()).boxed()))
}

/// The ACR token flow for a hostile registry: `/oauth2/exchange` and `/oauth2/token` answer
/// with the given tokens; any other request without `Bearer <access>` gets a challenge whose
/// realm is `realm`. `None`: the request is authorized, the test's handler answers it.
pub fn token_flow(
    request: &Received,
    realm: &str,
    scope: &str,
    refresh: &str,
    access: &str,
) -> Option<Reply> {
    let path = request.path_and_query.split('?').next().unwrap_or_default();
    if path == "/oauth2/exchange" {
        return Some(Reply::json(
            200,
            serde_json::json!({ "refresh_token": refresh }),
        ));
    }
    if path == "/oauth2/token" {
        return Some(Reply::json(
            200,
            serde_json::json!({ "access_token": access }),
        ));
    }
    if request.header("authorization") == Some(format!("Bearer {access}").as_str()) {
        return None;
    }
    Some(Reply::unauthorized("authentication required").challenge(realm, "hostile", scope))
}

/// A JWT-shaped token (unsigned) with these claims.
pub fn jwt(claims: serde_json::Value) -> String {
    use base64::Engine as _;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.c2lnbmF0dXJl",
        e.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        e.encode(claims.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `GET`/`POST` of `url` (POST with `body`) through a client without proxies.
    async fn send(url: String, body: Option<&'static str>) -> reqwest::Response {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let request = match body {
            Some(body) => http.post(url).header("X-Secret", "s3cr3t").body(body),
            None => http.get(url),
        };
        request.send().await.unwrap()
    }

    #[tokio::test]
    async fn records_requests_and_answers_with_the_handler() {
        let server = HostileServer::start("127.0.0.1", |r| {
            if r.path_and_query == "/json" {
                Reply::json(201, serde_json::json!({"a": 1})).header("X-Test", "yes")
            } else {
                Reply::new(404)
            }
        })
        .await;
        let answer = send(format!("{}/json", server.endpoint()), Some("payload")).await;
        assert_eq!(answer.status(), 201);
        assert_eq!(answer.headers()["x-test"], "yes");
        assert_eq!(answer.text().await.unwrap(), r#"{"a":1}"#);
        let received = server.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].method, "POST");
        assert_eq!(received[0].header("x-secret"), Some("s3cr3t"));
        assert_eq!(received[0].body, b"payload");
        assert!(received[0].contains("s3cr3t") && !received[0].contains("other"));
        server.clear();
        assert!(server.received().is_empty());
        assert_eq!(
            server.localhost_endpoint(),
            format!("http://localhost:{}", server.port())
        );
    }

    #[tokio::test]
    async fn endless_bodies_stop_at_their_cap() {
        let server = HostileServer::start("127.0.0.1", |_| {
            Reply::new(200).endless(vec![b'x'; 1000], 10_000)
        })
        .await;
        let body = send(server.endpoint(), None).await.bytes().await.unwrap();
        assert_eq!(body.len(), 10_000);
        assert_eq!(server.streamed(), 10_000);
    }

    #[tokio::test]
    async fn token_flow_challenges_then_authorizes() {
        let realm = "http://127.0.0.1:1/oauth2/token";
        let request = |path: &str, auth: Option<&str>| Received {
            method: "GET".into(),
            path_and_query: path.into(),
            headers: auth
                .map(|a| vec![("authorization".to_string(), a.to_string())])
                .unwrap_or_default(),
            body: Vec::new(),
        };
        let challenge = token_flow(&request("/v2/", None), realm, "s", "r", "a").unwrap();
        assert_eq!(challenge.status, 401);
        assert!(challenge
            .headers
            .iter()
            .any(|(n, v)| n == "WWW-Authenticate" && v.contains(realm)));
        let exchange = token_flow(&request("/oauth2/exchange", None), realm, "s", "r", "a");
        assert_eq!(exchange.unwrap().status, 200);
        assert!(token_flow(&request("/v2/", Some("Bearer a")), realm, "s", "r", "a").is_none());
        assert_eq!(jwt(serde_json::json!({})).split('.').count(), 3);
    }
}
