//! Each fault kind against a tiny in-test upstream, asserting the fault really happens.

use super::*;
use crate::{random_bytes, sha256_digest};
use std::net::Ipv4Addr;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// What the test upstream saw of one upload (PUT/PATCH) body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Upload {
    path: String,
    bytes: u64,
    complete: bool,
}

#[derive(Default)]
struct UpState {
    hits: Mutex<Vec<String>>,
    uploads: Mutex<Vec<Upload>>,
}

/// `data` as a body of 16 KiB frames.
fn chunked(data: &Bytes) -> ProxyBody {
    let frames: Vec<Result<Frame<Bytes>, BoxError>> = data
        .chunks(16 * 1024)
        .map(|c| Ok(Frame::data(data.slice_ref(c))))
        .collect();
    http_body_util::StreamBody::new(futures::stream::iter(frames)).boxed()
}

/// Routes: `GET /blob/<n>` → n bytes of `random_bytes` in 16 KiB frames (with Content-Length
/// and Docker-Content-Digest); `GET /hdr` → a relative Location; `PUT|PATCH /upload…` → reads
/// the body, answers 201 with `X-Received`; anything else 404.
async fn upstream_handle(
    st: Arc<UpState>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let path = req.uri().path().to_string();
    lock(&st.hits).push(path.clone());
    if let Some(n) = path.strip_prefix("/blob/") {
        let data = Bytes::from(random_bytes(n.parse().unwrap_or(0)));
        let digest = sha256_digest(&data);
        let mut resp = Response::new(chunked(&data));
        resp.headers_mut()
            .insert("docker-content-digest", digest.parse().unwrap());
        resp.headers_mut()
            .insert(hyper::header::CONTENT_LENGTH, data.len().into());
        return Ok(resp);
    }
    if path == "/hdr" {
        let mut resp = full(StatusCode::ACCEPTED, "text/plain", String::new());
        resp.headers_mut().insert(
            "location",
            "/v2/x/blobs/uploads/abc?state=1".parse().unwrap(),
        );
        return Ok(resp);
    }
    if path.starts_with("/upload") {
        let mut body = req.into_body();
        let mut bytes = 0u64;
        let complete = loop {
            match body.frame().await {
                None => break true,
                Some(Ok(f)) => bytes += f.data_ref().map_or(0, |d| d.len() as u64),
                Some(Err(_)) => break false,
            }
        };
        lock(&st.uploads).push(Upload {
            path,
            bytes,
            complete,
        });
        let mut resp = full(StatusCode::CREATED, "text/plain", String::new());
        resp.headers_mut()
            .insert("x-received", bytes.to_string().parse().unwrap());
        return Ok(resp);
    }
    Ok(full(StatusCode::NOT_FOUND, "text/plain", "nope".into()))
}

struct Upstream {
    addr: SocketAddr,
    state: Arc<UpState>,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn upstream() -> Upstream {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(UpState::default());
    let st = state.clone();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let st = st.clone();
            conns.spawn(async move {
                let svc = hyper::service::service_fn(move |req| upstream_handle(st.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Upstream { addr, state, task }
}

async fn setup() -> (Upstream, FaultProxy, reqwest::Client) {
    let up = upstream().await;
    let proxy = FaultProxy::start(&format!("http://{}", up.addr))
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    (up, proxy, client)
}

/// [`setup`], with `rule` added to the proxy.
async fn setup_with(rule: Rule) -> (Upstream, FaultProxy, reqwest::Client) {
    let (up, proxy, client) = setup().await;
    proxy.add_rule(rule);
    (up, proxy, client)
}

/// Sends `GET` for `path` (starting with `/`) through the proxy.
async fn get(
    client: &reqwest::Client,
    proxy: &FaultProxy,
    path: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .get(format!("{}{path}", proxy.endpoint()))
        .send()
        .await
}

/// Reads a response body chunk by chunk; returns the bytes received and whether it ended in
/// an error.
async fn read_body(mut resp: reqwest::Response) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(&c),
            Ok(None) => return (out, false),
            Err(_) => return (out, true),
        }
    }
}

/// Waits (bounded) until the upstream has recorded `n` uploads.
async fn uploads(up: &Upstream, n: usize) -> Vec<Upload> {
    for _ in 0..200 {
        let u = lock(&up.state.uploads).clone();
        if u.len() >= n {
            return u;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "upstream did not record {n} uploads: {:?}",
        lock(&up.state.uploads)
    );
}

fn hits(up: &Upstream) -> usize {
    lock(&up.state.hits).len()
}

#[tokio::test]
async fn passthrough_streams_records_and_keeps_location() {
    let (up, proxy, client) = setup().await;
    let base = proxy.endpoint();
    assert_eq!(base, format!("http://{}", proxy.addr()));

    let resp = client
        .get(format!("{base}/blob/300000"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(300000));
    let digest = resp.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string();
    let body = resp.bytes().await.unwrap();
    assert_eq!(&body[..], &random_bytes(300000)[..]);
    assert_eq!(digest, sha256_digest(&body));

    let resp = client.get(format!("{base}/hdr?x=1")).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(
        resp.headers()["location"],
        "/v2/x/blobs/uploads/abc?state=1"
    );

    let data = random_bytes(3 << 20);
    let resp = client
        .put(format!("{base}/upload/1"))
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()["x-received"],
        (3u64 << 20).to_string().as_str()
    );
    assert_eq!(
        uploads(&up, 1).await[0],
        Upload {
            path: "/upload/1".into(),
            bytes: 3 << 20,
            complete: true
        }
    );

    let recs = proxy.requests();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].method, "GET");
    assert_eq!(recs[0].path_and_query, "/blob/300000");
    assert_eq!(recs[0].status, Some(200));
    assert_eq!(recs[0].fault, None);
    // Host is forwarded as the client sent it (nothing rewritten).
    assert_eq!(
        recs[0].header("Host"),
        Some(proxy.addr().to_string().as_str())
    );
    assert_eq!(recs[1].path_and_query, "/hdr?x=1");
    assert_eq!(recs[2].method, "PUT");
    assert_eq!(recs[2].status, Some(201));
    proxy.clear();
    assert!(proxy.requests().is_empty());
}

#[tokio::test]
async fn cut_request_after_forwards_n_bytes_then_drops_the_connection() {
    let (up, proxy, client) = setup().await;
    let base = proxy.endpoint();
    proxy.add_rule(
        Rule::new(
            Match::any().method("put").path_contains("/upload"),
            Fault::CutRequestAfter(1 << 20),
        )
        .times(1),
    );
    let r = client
        .put(format!("{base}/upload/a"))
        .body(random_bytes(4 << 20))
        .send()
        .await;
    assert!(r.is_err(), "expected a dropped connection, got {r:?}");
    let u = uploads(&up, 1).await;
    assert_eq!(
        u[0],
        Upload {
            path: "/upload/a".into(),
            bytes: 1 << 20,
            complete: false
        }
    );
    let recs = proxy.requests();
    assert_eq!(recs[0].status, None);
    assert_eq!(recs[0].fault, Some(Fault::CutRequestAfter(1 << 20)));

    // The rule expired: the next upload goes through whole.
    let resp = client
        .put(format!("{base}/upload/b"))
        .body(random_bytes(2 << 20))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(uploads(&up, 2).await[1].bytes, 2 << 20);
}

#[tokio::test]
async fn cut_request_at_zero_bytes() {
    let (up, proxy, client) = setup_with(Rule::new(Match::any(), Fault::CutRequestAfter(0))).await;
    let r = client
        .patch(format!("{}/upload/z", proxy.endpoint()))
        .body(random_bytes(100_000))
        .send()
        .await;
    assert!(r.is_err(), "{r:?}");
    let u = uploads(&up, 1).await;
    assert_eq!((u[0].bytes, u[0].complete), (0, false));
}

#[tokio::test]
async fn cut_response_after_sends_headers_and_n_bytes_then_fails() {
    let (_up, proxy, client) = setup_with(Rule::new(
        Match::any().path_contains("/blob/"),
        Fault::CutResponseAfter(20_000),
    ))
    .await;
    let resp = get(&client, &proxy, "/blob/1000000").await.unwrap();
    assert_eq!(resp.status(), 200);
    // The upstream Content-Length is kept.
    assert_eq!(resp.content_length(), Some(1_000_000));
    let (body, failed) = read_body(resp).await;
    assert!(failed, "body should end in an error");
    assert_eq!(body.len(), 20_000);
    assert_eq!(&body[..], &random_bytes(20_000)[..]);
    assert_eq!(proxy.requests()[0].status, Some(200));
}

#[tokio::test]
async fn truncate_body_sends_fewer_bytes_than_content_length() {
    let (_up, proxy, client) = setup_with(Rule::new(Match::any(), Fault::TruncateBody(5000))).await;
    let resp = get(&client, &proxy, "/blob/70000").await.unwrap();
    assert_eq!(resp.content_length(), Some(70000));
    let (body, failed) = read_body(resp).await;
    assert!(failed, "a short body must be reported as an error");
    assert_eq!(body.len(), 5000);

    // A body shorter than the limit is not affected.
    let resp = get(&client, &proxy, "/blob/4000").await.unwrap();
    let (body, failed) = read_body(resp).await;
    assert!(!failed);
    assert_eq!(body, random_bytes(4000));
}

#[tokio::test]
async fn flip_byte_corrupts_exactly_one_byte() {
    let (_up, proxy, client) =
        setup_with(Rule::new(Match::any(), Fault::FlipByte(40_000)).times(1)).await;
    let resp = get(&client, &proxy, "/blob/100000").await.unwrap();
    let digest = resp.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string();
    let body = resp.bytes().await.unwrap();
    let orig = random_bytes(100_000);
    assert_eq!(body.len(), orig.len());
    let diffs: Vec<usize> = (0..orig.len()).filter(|&i| body[i] != orig[i]).collect();
    assert_eq!(diffs, vec![40_000]);
    assert_eq!(body[40_000], orig[40_000] ^ 0xFF);
    assert_ne!(sha256_digest(&body), digest);
}

#[tokio::test]
async fn replace_and_remove_header() {
    let (_up, proxy, client) = setup().await;
    let lie = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    proxy.add_rule(
        Rule::new(
            Match::any(),
            Fault::ReplaceHeader("Docker-Content-Digest".into(), lie.into()),
        )
        .times(1),
    );
    proxy.add_rule(
        Rule::new(
            Match::any(),
            Fault::RemoveHeader("docker-content-digest".into()),
        )
        .times(1),
    );
    let url = format!("{}/blob/10", proxy.endpoint());
    let resp = client.get(&url).send().await.unwrap();
    let values: Vec<_> = resp
        .headers()
        .get_all("docker-content-digest")
        .iter()
        .collect();
    assert_eq!(values, vec![lie]);
    let resp = client.get(&url).send().await.unwrap();
    assert!(resp.headers().get("docker-content-digest").is_none());
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(
        resp.headers()["docker-content-digest"],
        sha256_digest(&random_bytes(10)).as_str()
    );
}

#[tokio::test]
async fn status_answers_without_forwarding() {
    let (up, proxy, client) = setup_with(
        Rule::new(
            Match::any().method("GET"),
            Fault::Status {
                status: 503,
                retry_after: Some("2".into()),
                body: Some(r#"{"errors":[{"code":"UNAVAILABLE"}]}"#.into()),
            },
        )
        .times(1),
    )
    .await;
    let resp = get(&client, &proxy, "/blob/10").await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"errors":[{"code":"UNAVAILABLE"}]}"#
    );
    assert_eq!(hits(&up), 0, "a Status fault must not reach the upstream");
    assert_eq!(proxy.requests()[0].status, Some(503));
}

#[tokio::test]
async fn delay_delays() {
    let (up, proxy, client) = setup_with(Rule::new(
        Match::any().path_contains("/blob/"),
        Fault::Delay(Duration::from_millis(400)),
    ))
    .await;
    let t = Instant::now();
    let resp = get(&client, &proxy, "/blob/10").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(hits(&up), 1);
}

#[tokio::test]
async fn disconnect_closes_without_answer() {
    let (up, proxy, client) = setup_with(Rule::new(Match::any(), Fault::Disconnect).times(1)).await;
    let r = get(&client, &proxy, "/blob/10").await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(hits(&up), 0);
    assert_eq!(proxy.requests()[0].status, None);
}

#[tokio::test]
async fn rules_apply_in_order_and_expire() {
    let (_up, proxy, client) = setup().await;
    let m = Match::any().path_contains("/blob/");
    proxy.add_rule(Rule::new(m.clone(), Fault::Passthrough).times(1));
    proxy.add_rule(
        Rule::new(
            m.clone(),
            Fault::Status {
                status: 500,
                retry_after: None,
                body: None,
            },
        )
        .times(2),
    );
    // Does not match: method differs.
    proxy.add_rule(Rule::new(
        m.method("DELETE"),
        Fault::Status {
            status: 418,
            retry_after: None,
            body: None,
        },
    ));
    let url = format!("{}/blob/5", proxy.endpoint());
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(client.get(&url).send().await.unwrap().status().as_u16());
    }
    assert_eq!(got, vec![200, 500, 500, 200]);
    assert_eq!(client.delete(&url).send().await.unwrap().status(), 418);
    proxy.clear_rules();
    // The test upstream serves /blob/ for any method.
    assert_eq!(client.delete(&url).send().await.unwrap().status(), 200);
    let statuses: Vec<_> = proxy.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![
            Some(200),
            Some(500),
            Some(500),
            Some(200),
            Some(418),
            Some(200)
        ]
    );
}

#[tokio::test]
async fn unreachable_upstream_gives_502_and_drop_stops() {
    let port = crate::free_port();
    let proxy = FaultProxy::start(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let resp = get(&client, &proxy, "/v2/").await.unwrap();
    assert_eq!(resp.status(), 502);
    let addr = proxy.addr();
    drop(proxy);
    // The listener goes away (bounded wait: abort is asynchronous).
    let mut closed = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "proxy still listening after drop");
}

#[tokio::test]
async fn rejects_non_http_upstream() {
    assert!(FaultProxy::start("https://127.0.0.1:1").await.is_err());
    assert!(FaultProxy::start("not a url").await.is_err());
}

#[test]
fn match_logic() {
    let m = Match::any()
        .method("patch")
        .path_contains("/blobs/uploads/");
    assert!(m.matches("PATCH", "/v2/a/blobs/uploads/123?x"));
    assert!(!m.matches("PUT", "/v2/a/blobs/uploads/123"));
    assert!(!m.matches("PATCH", "/v2/a/manifests/x"));
    assert!(Match::any().matches("GET", "/"));
}
