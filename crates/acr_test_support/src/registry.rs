//! A throwaway instance of Debian's `docker-registry` (CNCF distribution 2.8) on loopback.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::util::free_port;

/// Where Debian's `docker-registry` package installs the binary. The environment variable
/// `ACR_TEST_DOCKER_REGISTRY` overrides it.
pub const DOCKER_REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Total time allowed for the registry to answer `GET /v2/` after spawning.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause between readiness probes.
const READY_POLL: Duration = Duration::from_millis(20);
/// Upper bound on readiness probes (20 s / 20 ms, plus slack for slow probes).
const READY_MAX_ATTEMPTS: u32 = 1_000;
/// Attempts with a fresh port when the registry loses the race for its port.
const PORT_ATTEMPTS: u32 = 3;

/// Token authentication for [`DockerRegistry`]: distribution's `auth.token` section. Clients
/// get `401` with `WWW-Authenticate: Bearer realm=…,service=…,scope=…` and must present a JWT
/// signed by a key whose certificate chains to `root_cert_bundle_pem` and whose `iss` is
/// `issuer` and `aud` is `service`.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    /// The token endpoint advertised in the challenge, e.g. `http://127.0.0.1:1234/oauth2/token`.
    pub realm: String,
    /// The service name advertised in the challenge and required as the token audience.
    pub service: String,
    /// The required `iss` claim of tokens.
    pub issuer: String,
    /// PEM certificate(s) trusted to sign tokens.
    pub root_cert_bundle_pem: String,
}

/// HTTP Basic authentication for [`DockerRegistry`]: distribution's `auth.htpasswd` section.
/// Clients get `401` with `WWW-Authenticate: Basic realm=…` and send a username and password
/// on every request.
#[derive(Debug, Clone)]
pub struct HtpasswdAuth {
    /// The realm named in the challenge.
    pub realm: String,
    /// `(username, bcrypt hash of the password)` pairs (`$2b$…`/`$2y$…`).
    pub users: Vec<(String, String)>,
}

/// How to start a [`DockerRegistry`].
#[derive(Debug, Clone)]
pub struct DockerRegistryOptions {
    /// Require bearer tokens (`auth.token`); `None` (the default) allows anonymous push and pull.
    pub token_auth: Option<TokenAuth>,
    /// Require HTTP Basic (`auth.htpasswd`); ignored with `token_auth`.
    pub htpasswd: Option<HtpasswdAuth>,
    /// Storage root; `None` (the default) uses a fresh temporary directory removed on drop.
    /// A given directory is left in place.
    pub data_dir: Option<PathBuf>,
    /// `storage.delete.enabled` (default `true`): allow deleting blobs and manifests.
    pub delete_enabled: bool,
}

impl Default for DockerRegistryOptions {
    fn default() -> Self {
        Self {
            token_auth: None,
            htpasswd: None,
            data_dir: None,
            delete_enabled: true,
        }
    }
}

/// A running `docker-registry serve` on `127.0.0.1:<free port>`, with a temporary config, log
/// file and (by default) data directory. The process is killed and reaped on drop.
///
/// The config uses relative `Location` headers (`http.relativeurls: true`, as ACR does), no
/// storage redirects, an in-memory blob descriptor cache, log level `warn`, no access log.
///
/// The API is synchronous, so it works from sync tests and from async ones (starting blocks the
/// calling thread for the startup time, typically well under a second).
#[derive(Debug)]
pub struct DockerRegistry {
    child: Child,
    addr: SocketAddr,
    // Holds config.yml, registry.log, rootcert.pem and (by default) data/; removed on drop.
    dir: tempfile::TempDir,
    log_path: PathBuf,
    data_dir: PathBuf,
}

impl DockerRegistry {
    /// Starts a registry with [`DockerRegistryOptions::default`]: anonymous access, deletes
    /// enabled, temporary storage.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(DockerRegistryOptions::default())
    }

    /// Starts a registry with the given options and waits (at most ~20 s) until `GET /v2/`
    /// answers. Errors include the registry's log.
    ///
    /// If the binary is missing, the error says how to install it.
    pub fn start_with(options: DockerRegistryOptions) -> anyhow::Result<Self> {
        let bin = std::env::var_os("ACR_TEST_DOCKER_REGISTRY")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DOCKER_REGISTRY_BIN));
        Self::start_bin(&bin, &options)
    }

    fn start_bin(bin: &Path, options: &DockerRegistryOptions) -> anyhow::Result<Self> {
        if !bin.is_file() {
            bail!(
                "{} not found: install it with `apt-get install docker-registry` \
                 (or run `cargo xtask test`, which installs it)",
                bin.display()
            );
        }
        let mut last_err = None;
        for _ in 0..PORT_ATTEMPTS {
            match Self::try_start(bin, options) {
                Ok(r) => return Ok(r),
                Err(StartError::PortTaken(e)) => last_err = Some(e),
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        Err(last_err
            .unwrap_or_else(|| anyhow::anyhow!("docker-registry did not start"))
            .context(format!(
                "docker-registry could not bind a free port in {PORT_ATTEMPTS} attempts"
            )))
    }

    fn try_start(bin: &Path, options: &DockerRegistryOptions) -> Result<Self, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("acr-docker-registry-")
            .tempdir()
            .context("creating a temporary directory for docker-registry")?;
        let port = free_port();
        if port == 0 {
            return Err(anyhow::anyhow!("cannot bind any port on 127.0.0.1").into());
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let data_dir = match &options.data_dir {
            Some(d) => d.clone(),
            None => dir.path().join("data"),
        };
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;

        let auth = match (&options.token_auth, &options.htpasswd) {
            (None, Some(h)) => {
                let file = dir.path().join("htpasswd");
                let lines: String = h
                    .users
                    .iter()
                    .map(|(u, hash)| format!("{u}:{hash}\n"))
                    .collect();
                std::fs::write(&file, lines)
                    .with_context(|| format!("writing {}", file.display()))?;
                format!(
                    "auth:\n  htpasswd:\n    realm: {}\n    path: {}\n",
                    yaml_str(&h.realm),
                    yaml_str(&file.to_string_lossy()),
                )
            }
            (None, None) => String::new(),
            (Some(t), _) => {
                let cert = dir.path().join("rootcert.pem");
                std::fs::write(&cert, &t.root_cert_bundle_pem)
                    .with_context(|| format!("writing {}", cert.display()))?;
                format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    yaml_str(&t.realm),
                    yaml_str(&t.service),
                    yaml_str(&t.issuer),
                    yaml_str(&cert.to_string_lossy()),
                )
            }
        };
        let config = format!(
            "version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: {delete}
  cache:
    blobdescriptor: inmemory
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: acr-test-support-local-only
  relativeurls: true
{auth}",
            root = yaml_str(&data_dir.to_string_lossy()),
            delete = options.delete_enabled,
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)
            .with_context(|| format!("writing {}", config_path.display()))?;

        let log_path = dir.path().join("registry.log");
        let log = File::create(&log_path).context("creating the registry log file")?;
        let log2 = log.try_clone().context("cloning the registry log handle")?;
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .with_context(|| format!("spawning {} serve", bin.display()))?;

        let mut reg = DockerRegistry {
            child,
            addr,
            dir,
            log_path,
            data_dir,
        };
        reg.wait_ready()?;
        Ok(reg)
    }

    fn wait_ready(&mut self) -> Result<(), StartError> {
        let start = Instant::now();
        let mut last_probe = String::from("no probe yet");
        for _ in 0..READY_MAX_ATTEMPTS {
            if let Some(status) = self
                .child
                .try_wait()
                .context("checking the docker-registry process")?
            {
                let log = self.log();
                let msg = anyhow::anyhow!(
                    "docker-registry exited during startup ({status}); its log:\n{log}"
                );
                return Err(if log.contains("address already in use") {
                    StartError::PortTaken(msg)
                } else {
                    StartError::Other(msg)
                });
            }
            match probe(self.addr) {
                Ok(code) if code == 200 || code == 401 => return Ok(()),
                Ok(code) => last_probe = format!("GET /v2/ answered {code}"),
                Err(e) => last_probe = format!("GET /v2/ failed: {e}"),
            }
            if start.elapsed() > READY_TIMEOUT {
                break;
            }
            std::thread::sleep(READY_POLL);
        }
        // Drop kills the process.
        Err(StartError::Other(anyhow::anyhow!(
            "docker-registry at {} not ready after {:?} (last: {last_probe}); its log:\n{}",
            self.addr,
            start.elapsed(),
            self.log()
        )))
    }

    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address (always on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The registry's log so far (stdout and stderr). Empty if it cannot be read.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The storage root directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The generated `config.yml`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// The process id of the running registry.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        // SIGKILL and reap, so no zombie or orphan survives the test. Errors mean it has
        // already exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum StartError {
    /// The registry could not bind its port (someone took it after `free_port`): retry.
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for StartError {
    fn from(e: anyhow::Error) -> Self {
        StartError::Other(e)
    }
}

/// One `GET /v2/` over a fresh connection; returns the status code.
fn probe(addr: SocketAddr) -> std::io::Result<u16> {
    let timeout = Duration::from_millis(500);
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    // Enough bytes for "HTTP/1.1 200"; bounded by the buffer size and the read timeout.
    while n < 12 {
        let m = s.read(&mut buf[n..])?;
        if m == 0 {
            break;
        }
        n += m;
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split(' ')
        .nth(1)
        .and_then(|c| c.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP response: {head:?}"),
            )
        })
}

/// A YAML double-quoted scalar.
fn yaml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn available() -> bool {
        if Path::new(DOCKER_REGISTRY_BIN).is_file() {
            return true;
        }
        crate::skip_or_fail("docker-registry test", "docker-registry");
        false
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn starts_answers_and_stops() {
        if !available() {
            return;
        }
        let reg = DockerRegistry::start().unwrap();
        assert!(reg.endpoint().starts_with("http://127.0.0.1:"));
        assert_eq!(reg.endpoint(), format!("http://{}", reg.addr()));
        let resp = get(reg.addr(), "/v2/");
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        let resp = get(reg.addr(), "/v2/nope/tags/list");
        assert!(resp.contains("NAME_UNKNOWN"), "{resp}");
        let pid = reg.pid();
        let config = std::fs::read_to_string(reg.config_path()).unwrap();
        assert!(config.contains("relativeurls: true"));
        assert!(config.contains("enabled: true"));
        let dir = reg.dir.path().to_path_buf();
        drop(reg);
        // Killed and reaped: no such process any more, temp dir gone.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        assert!(!dir.exists());
    }

    #[test]
    fn token_auth_challenges() {
        if !available() {
            return;
        }
        let pem = rcgen::generate_simple_self_signed(vec!["issuer.example".to_string()])
            .unwrap()
            .cert
            .pem();
        let reg = DockerRegistry::start_with(DockerRegistryOptions {
            token_auth: Some(TokenAuth {
                realm: "http://127.0.0.1:9/oauth2/token".into(),
                service: "svc.example".into(),
                issuer: "issuer.example".into(),
                root_cert_bundle_pem: pem,
            }),
            ..Default::default()
        })
        .unwrap();
        let resp = get(reg.addr(), "/v2/");
        assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
        assert!(
            resp.contains(
                r#"Bearer realm="http://127.0.0.1:9/oauth2/token",service="svc.example""#
            ),
            "{resp}"
        );
    }

    #[test]
    fn missing_binary_error_says_how_to_install() {
        let e = DockerRegistry::start_bin(
            Path::new("/nonexistent/docker-registry"),
            &DockerRegistryOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("install it with `apt-get install docker-registry` (or run `cargo xtask test`, which installs it)"),
            "{e}"
        );
    }

    #[test]
    fn keeps_given_data_dir() {
        if !available() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let reg = DockerRegistry::start_with(DockerRegistryOptions {
            data_dir: Some(d.path().join("store")),
            delete_enabled: false,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(reg.data_dir(), d.path().join("store"));
        let config = std::fs::read_to_string(reg.config_path()).unwrap();
        assert!(config.contains("enabled: false"), "{config}");
        drop(reg);
        assert!(d.path().join("store").is_dir());
    }

    #[test]
    fn yaml_quoting() {
        assert_eq!(yaml_str(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
