//! A userspace WAN link: a loopback TCP proxy that delays each direction and caps the bandwidth
//! of each connection (kernel traffic shaping, `tc netem`, needs privileges these machines lack).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use acr_test_support::{ShapingOptions, ShapingProxy};
//! use std::time::Duration;
//! let link = ShapingProxy::start("127.0.0.1:5000", ShapingOptions {
//!     rtt: Duration::from_millis(40),
//!     bytes_per_sec: 40 << 20,
//!     ..Default::default()
//! }).await?;
//! let base = link.endpoint(); // clients connect here; bytes reach 127.0.0.1:5000 shaped
//! # let _ = base; Ok(()) }
//! ```
//!
//! Each direction of each connection is a delay line followed by a token bucket: a chunk read
//! at time `t` is written on at `t + rtt / 2` at the earliest (chunks are timestamped, so the
//! delay does not limit throughput), and no faster than `bytes_per_sec`. The bytes in flight
//! per direction are bounded (`buffer_bytes`); a full buffer stops reading, so TCP back
//! pressure reaches the sender. Bytes are forwarded untouched (HTTP `Host` and `Location` keep
//! naming the proxy, so clients stay on the shaped path).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::loopback::LoopbackServer;

/// Largest read from a socket, and so the largest chunk of the delay line.
const READ_CHUNK: usize = 64 << 10;
/// Smallest token bucket (bytes), so that slow links still move whole reads.
const MIN_BURST: u64 = 16 << 10;
/// Burst of the token bucket in time at the configured rate: large enough that the timer's
/// millisecond granularity costs no throughput, small enough to keep the cap tight.
const BURST_TIME: Duration = Duration::from_millis(5);

/// How a [`ShapingProxy`] shapes each connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapingOptions {
    /// Round-trip time added by the link: half of it in each direction (default 40 ms).
    pub rtt: Duration,
    /// Bandwidth cap of each connection, in bytes per second and per direction (default
    /// 40 MiB/s). `0` means no cap (delay only).
    pub bytes_per_sec: u64,
    /// Bytes in flight per direction and connection; `None` (the default) sizes it to the
    /// link's bandwidth × one-way delay plus the burst, so the buffer never limits throughput
    /// below the cap.
    pub buffer_bytes: Option<usize>,
}

impl Default for ShapingOptions {
    fn default() -> Self {
        Self {
            rtt: Duration::from_millis(40),
            bytes_per_sec: 40 << 20,
            buffer_bytes: None,
        }
    }
}

impl ShapingOptions {
    fn one_way(&self) -> Duration {
        self.rtt / 2
    }

    /// Token bucket size in bytes.
    fn burst(&self) -> u64 {
        let at_rate = (self.bytes_per_sec as f64 * BURST_TIME.as_secs_f64()) as u64;
        at_rate.max(MIN_BURST)
    }

    fn buffer(&self) -> usize {
        self.buffer_bytes
            .unwrap_or_else(|| {
                let bdp = self.bytes_per_sec as f64 * self.one_way().as_secs_f64();
                let bdp = if self.bytes_per_sec == 0 {
                    16 << 20
                } else {
                    bdp as usize
                };
                bdp + self.burst() as usize + 2 * READ_CHUNK
            })
            // The semaphore's permits must hold it, and a chunk must fit.
            .clamp(READ_CHUNK, Semaphore::MAX_PERMITS)
    }
}

/// Bytes and connections seen by a [`ShapingProxy`].
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    to_upstream: AtomicU64,
    to_client: AtomicU64,
}

/// A running shaping proxy on `127.0.0.1:<free port>` in front of one TCP upstream. Runs on the
/// current tokio runtime; stops (listener and open connections) on drop.
pub struct ShapingProxy {
    server: LoopbackServer,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for ShapingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.server
            .debug_struct(f, "ShapingProxy")
            .finish_non_exhaustive()
    }
}

impl ShapingProxy {
    /// Starts a proxy forwarding to `upstream` (`host:port`, or an `http://host:port` URL whose
    /// path is ignored). Must be called inside a tokio runtime.
    pub async fn start(upstream: &str, options: ShapingOptions) -> anyhow::Result<Self> {
        let authority = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        anyhow::ensure!(!authority.is_empty(), "upstream {upstream:?} has no host");
        let counters = Arc::new(Counters::default());
        let server = LoopbackServer::start("shaping proxy", {
            let (options, counters) = (Arc::new(options), counters.clone());
            move |client| {
                counters.connections.fetch_add(1, Ordering::Relaxed);
                let (upstream, options, counters) =
                    (authority.clone(), options.clone(), counters.clone());
                async move {
                    // Errors end the connection (a peer closed or reset it).
                    let _ = connection(client, &upstream, &options, &counters).await;
                }
            }
        })
        .await?;
        Ok(Self { server, counters })
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }

    /// Bytes forwarded so far from clients to the upstream.
    pub fn bytes_to_upstream(&self) -> u64 {
        self.counters.to_upstream.load(Ordering::Relaxed)
    }

    /// Bytes forwarded so far from the upstream to clients.
    pub fn bytes_to_client(&self) -> u64 {
        self.counters.to_client.load(Ordering::Relaxed)
    }

    /// The proxy's base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
}

async fn connection(
    client: TcpStream,
    upstream: &str,
    options: &ShapingOptions,
    counters: &Counters,
) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::try_join!(
        direction(client_read, server_write, options, &counters.to_upstream),
        direction(server_read, client_write, options, &counters.to_client),
    )?;
    Ok(())
}

/// One direction of one connection: read, timestamp, queue (bounded), then after the delay
/// write out through the token bucket. End of input is passed on as a write shutdown.
async fn direction(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    options: &ShapingOptions,
    forwarded: &AtomicU64,
) -> std::io::Result<()> {
    let budget = Arc::new(Semaphore::new(options.buffer()));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let one_way = options.one_way();
    let reader = async {
        loop {
            let mut buf = BytesMut::with_capacity(READ_CHUNK);
            let n = from.read_buf(&mut buf).await?;
            if n == 0 {
                break;
            }
            // A full buffer stops reading here: the sender's socket fills and TCP backs off.
            let permits = u32::try_from(n).unwrap_or(u32::MAX);
            let permit = budget
                .clone()
                .acquire_many_owned(permits)
                .await
                .map_err(std::io::Error::other)?;
            if tx.send((Instant::now(), buf.freeze(), permit)).is_err() {
                break;
            }
        }
        drop(tx);
        Ok::<_, std::io::Error>(())
    };
    let writer = async {
        let mut bucket = TokenBucket::new(options.bytes_per_sec, options.burst());
        while let Some((read_at, chunk, permit)) = rx.recv().await {
            tokio::time::sleep_until(read_at + one_way).await;
            let piece = usize::try_from(bucket.burst).unwrap_or(usize::MAX).max(1);
            for part in chunk.chunks(piece) {
                bucket.take(part.len() as u64).await;
                to.write_all(part).await?;
                forwarded.fetch_add(part.len() as u64, Ordering::Relaxed);
            }
            drop(permit);
        }
        to.shutdown().await
    };
    tokio::try_join!(reader, writer)?;
    Ok(())
}

/// A token bucket: `rate` bytes per second, at most `burst` bytes saved up.
struct TokenBucket {
    rate: u64,
    burst: u64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u64, burst: u64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst as f64,
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate as f64;
        self.tokens = (self.tokens + earned).min(self.burst as f64);
        self.last = now;
    }

    /// Waits until `n` bytes (at most `burst`) may be sent, and spends them.
    async fn take(&mut self, n: u64) {
        if self.rate == 0 {
            return;
        }
        let n = n.min(self.burst) as f64;
        self.refill(Instant::now());
        if self.tokens < n {
            let wait = Duration::from_secs_f64((n - self.tokens) / self.rate as f64);
            tokio::time::sleep(wait).await;
            self.refill(Instant::now());
        }
        // The timer never fires early, so the deficit is paid; rounding may leave a hair below.
        self.tokens -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Instant as StdInstant;
    use tokio::net::TcpListener;

    /// An echo server on loopback: every byte read is written back.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    /// A server that sends `n` bytes to each connection, then closes it.
    async fn source_server(n: usize) -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let data = vec![0x5au8; n];
                    let _ = s.write_all(&data).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn round_trip_takes_at_least_the_rtt_and_bytes_arrive_intact() {
        let upstream = echo_server().await;
        let rtt = Duration::from_millis(60);
        let proxy = ShapingProxy::start(
            &upstream.to_string(),
            ShapingOptions {
                rtt,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.set_nodelay(true).unwrap();
        for i in 0..5u8 {
            let msg = [i; 100];
            let t0 = StdInstant::now();
            s.write_all(&msg).await.unwrap();
            let mut back = [0u8; 100];
            s.read_exact(&mut back).await.unwrap();
            let took = t0.elapsed();
            assert_eq!(back, msg);
            assert!(took >= rtt, "round trip {i} took {took:?} < {rtt:?}");
        }
        assert_eq!(proxy.connections(), 1);
        assert_eq!(proxy.bytes_to_upstream(), 500);
        assert_eq!(proxy.bytes_to_client(), 500);
    }

    /// The bandwidth cap of the pacing tests, in bytes per second.
    const CAPPED_RATE: u64 = 8 << 20;

    /// A proxy capped at [`CAPPED_RATE`] (10 ms RTT) in front of a [`source_server`] of `n`
    /// bytes, started with the upstream string `upstream` makes of the server's address; and
    /// the least time, in seconds, one connection may take for the `n` bytes (the bucket starts
    /// full, so everything after the first burst is paced; 10% slack).
    async fn capped_source(
        n: usize,
        upstream: impl FnOnce(SocketAddr) -> String,
    ) -> (ShapingProxy, f64) {
        let options = ShapingOptions {
            rtt: Duration::from_millis(10),
            bytes_per_sec: CAPPED_RATE,
            ..Default::default()
        };
        let floor = (n as u64 - options.burst()) as f64 / CAPPED_RATE as f64 * 0.9;
        let upstream = upstream(source_server(n).await);
        let proxy = ShapingProxy::start(&upstream, options).await.unwrap();
        (proxy, floor)
    }

    #[tokio::test]
    async fn one_connection_is_capped_at_its_rate() {
        let n = 3 << 20;
        let (proxy, floor) = capped_source(n, |a| format!("http://{a}")).await;
        let t0 = StdInstant::now();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        let took = t0.elapsed().as_secs_f64();
        assert_eq!(got.len(), n);
        assert!(got.iter().all(|&b| b == 0x5a));
        assert!(
            took >= floor,
            "{n} bytes at {CAPPED_RATE} B/s took {took:.3} s < {floor:.3} s"
        );
    }

    #[tokio::test]
    async fn connections_are_capped_separately() {
        // Two connections at once each get the cap: together they move the bytes in about the
        // time one connection needs, and never faster than the cap allows each.
        let n = 2 << 20;
        let (proxy, floor) = capped_source(n, |a| a.to_string()).await;
        let t0 = StdInstant::now();
        let fetch = || async {
            let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got.len()
        };
        let (a, b) = tokio::join!(fetch(), fetch());
        let took = t0.elapsed().as_secs_f64();
        assert_eq!((a, b), (n, n));
        assert_eq!(proxy.connections(), 2);
        assert_eq!(proxy.bytes_to_client(), 2 * n as u64);
        assert!(took >= floor, "took {took:.3} s < {floor:.3} s");
    }

    #[test]
    fn buffer_covers_the_bandwidth_delay_product() {
        let o = ShapingOptions::default();
        let bdp = (40u64 << 20) as f64 * 0.020;
        assert!(o.buffer() as f64 >= bdp);
        assert_eq!(
            ShapingOptions {
                buffer_bytes: Some(1),
                ..o.clone()
            }
            .buffer(),
            READ_CHUNK
        );
        assert_eq!(o.one_way(), Duration::from_millis(20));
        assert!(o.burst() >= MIN_BURST);
    }

    #[tokio::test]
    async fn an_unreachable_upstream_closes_the_client_connection() {
        let dead = {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            l.local_addr().unwrap()
        };
        let proxy = ShapingProxy::start(&dead.to_string(), ShapingOptions::default())
            .await
            .unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut got = Vec::new();
        // EOF or reset, but never data and never a hang.
        let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
        assert!(r.is_ok(), "the proxy kept the connection open");
        assert!(got.is_empty());
    }
}
