//! The listener the proxies share: a free port of 127.0.0.1, one task per connection.

use std::fmt::{DebugStruct, Formatter};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A listener on `127.0.0.1:<free port>` whose connections are each served on their own task.
/// Runs on the current tokio runtime; stops (listener and open connections) on drop.
pub(crate) struct LoopbackServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl LoopbackServer {
    /// Binds `127.0.0.1:0` and serves each accepted connection with the future `serve` makes
    /// of it. `what` names the server in errors (e.g. `"fault proxy"`).
    pub(crate) async fn start<S, F>(what: &str, serve: S) -> anyhow::Result<Self>
    where
        S: FnMut(TcpStream) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .with_context(|| format!("binding the {what} on 127.0.0.1"))?;
        let addr = listener
            .local_addr()
            .with_context(|| format!("{what} local address"))?;
        let task = tokio::spawn(accept_loop(listener, serve));
        Ok(Self { addr, task })
    }

    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `f.debug_struct(name)` with the listening address as `addr`, for the servers' `Debug`.
    pub(crate) fn debug_struct<'a, 'b>(
        &self,
        f: &'a mut Formatter<'b>,
        name: &str,
    ) -> DebugStruct<'a, 'b> {
        let mut d = f.debug_struct(name);
        d.field("addr", &self.addr);
        d
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

async fn accept_loop<S, F>(listener: TcpListener, mut serve: S)
where
    S: FnMut(TcpStream) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve(stream));
                }
                // E.g. too many open files: back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}
