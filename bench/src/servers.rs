//! Servers in child processes of this binary, so that their CPU time is not the client's: the
//! emulator (`--serve-emulator`) and the WAN shaping proxy (`--serve-shaper`).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};

/// Time limit for a server process to print its endpoint.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A server in a child process (this binary with `--serve-…`). Killed on drop; it also exits
/// when our end of its stdin closes.
pub struct ServerProcess {
    child: Child,
    endpoint: String,
}

impl ServerProcess {
    /// Starts `acr_bench ARGS…` and waits for the endpoint it prints.
    fn start(args: &[String]) -> Result<Self> {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawning the server process {args:?}"))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let r = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(r);
        });
        let mut server = ServerProcess {
            child,
            endpoint: String::new(),
        };
        let line = rx
            .recv_timeout(START_TIMEOUT)
            .context("the server process did not print its endpoint in time")?
            .context("reading the server endpoint")?;
        let endpoint = line.trim().to_string();
        ensure!(
            endpoint.starts_with("http://"),
            "server process printed {endpoint:?}"
        );
        server.endpoint = endpoint;
        Ok(server)
    }

    /// The emulator, in memory, on a free port.
    pub fn emulator() -> Result<Self> {
        Self::start(&["--serve-emulator".into()])
    }

    /// The WAN shaping proxy in front of `upstream`.
    pub fn shaper(upstream: &str, rtt: Duration, bytes_per_sec: u64) -> Result<Self> {
        Self::start(&[
            "--serve-shaper".into(),
            upstream.into(),
            rtt.as_micros().to_string(),
            bytes_per_sec.to_string(),
        ])
    }

    /// Its base URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Its process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `serve` on a runtime until the parent closes our stdin (or dies).
fn serve_until_stdin_closes<F, Fut>(serve: F) -> Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve())
}

async fn wait_for_stdin_close() -> Result<()> {
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    Ok(())
}

/// `acr_bench --serve-emulator`: an in-memory emulator on a free port; prints the endpoint and
/// serves until stdin closes.
pub fn serve_emulator() -> Result<()> {
    use azure_containerregistry_emulator::{Emulator, EmulatorOptions};
    serve_until_stdin_closes(|| async {
        let emu = Emulator::start(EmulatorOptions {
            port: 0,
            ..EmulatorOptions::default()
        })
        .await?;
        println!("{}", emu.endpoint());
        wait_for_stdin_close().await?;
        emu.shutdown().await;
        Ok(())
    })
}

/// `acr_bench --serve-shaper UPSTREAM RTT_US BYTES_PER_SEC`: the shaping proxy on a free port;
/// prints its endpoint and serves until stdin closes.
pub fn serve_shaper(args: &[String]) -> Result<()> {
    let [upstream, rtt_us, rate] = args else {
        anyhow::bail!("usage: acr_bench --serve-shaper UPSTREAM RTT_US BYTES_PER_SEC");
    };
    let options = acr_test_support::ShapingOptions {
        rtt: Duration::from_micros(rtt_us.parse().context("RTT_US")?),
        bytes_per_sec: rate.parse().context("BYTES_PER_SEC")?,
        ..Default::default()
    };
    serve_until_stdin_closes(|| async {
        let proxy = acr_test_support::ShapingProxy::start(upstream, options).await?;
        println!("{}", proxy.endpoint());
        wait_for_stdin_close().await?;
        Ok(())
    })
}
