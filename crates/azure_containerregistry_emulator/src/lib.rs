//! A local Azure Container Registry (ACR) emulator for tests and development.
//!
//! It serves the OCI distribution API (`/v2/…`), ACR's metadata API (`/acr/v1/…`) and ACR's token
//! endpoints (`/oauth2/exchange`, `/oauth2/token`) on `127.0.0.1`, plus a second "blob storage"
//! listener that blob downloads are redirected to (as ACR redirects to Azure Storage).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use azure_containerregistry_emulator::{Emulator, EmulatorOptions};
//! let emu = Emulator::start(EmulatorOptions::default()).await?;
//! println!("registry at {}", emu.endpoint());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod auth;
mod drain;
mod errors;
mod limits;
mod names;
mod paging;
mod private_file;
mod routes;
mod server;
mod sessions;
mod state;
mod storage;
mod time;
mod tls;
mod users;

pub use limits::{Limits, ACR_MAX_LAYER_SIZE};
pub use users::{EmulatorUser, RepositoryGrant, UserAccess};

use axum::Router;
use state::AppState;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How clients authenticate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// Anonymous pull and push, no challenges (like a fresh docker-registry).
    #[default]
    Open,
    /// ACR-style bearer tokens: 401 challenges, `/oauth2/exchange` and `/oauth2/token`.
    /// [`EmulatorOptions::users`] log in at `GET /oauth2/token` with HTTP Basic, alongside AAD
    /// tokens and anonymous pull.
    Token {
        /// Whether anonymous tokens (pull and catalog only) are issued.
        anonymous_pull: bool,
        /// AAD access tokens accepted by `/oauth2/exchange`.
        accepted_aad_tokens: Vec<String>,
    },
}

/// Where content and metadata are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StorageMode {
    /// In memory; gone on shutdown.
    #[default]
    Memory,
    /// In a directory (`blobs/sha256/<hex>`, metadata in the embedded database `metadata.redb`,
    /// one transaction per change; an old `metadata.json` is migrated once); survives restarts
    /// and crashes.
    Directory(PathBuf),
}

/// TLS for both listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsConfig {
    /// Generate (or reuse) a CA and a `localhost`/`127.0.0.1` leaf in `dir` (`ca.pem`, `tls-cert.pem`, `tls-key.pem`).
    SelfSigned {
        /// Directory for the generated files.
        dir: PathBuf,
    },
    /// Use a PEM certificate chain and PEM private key.
    Files {
        /// Certificate chain (PEM).
        cert: PathBuf,
        /// Private key (PEM).
        key: PathBuf,
    },
}

/// Configuration of [`Emulator::start`].
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Authentication mode.
    pub auth: AuthMode,
    /// Storage mode.
    pub storage: StorageMode,
    /// Address both listeners bind (default 127.0.0.1).
    pub bind: IpAddr,
    /// Registry port (0 = any free port).
    pub port: u16,
    /// Answer blob GETs with 307 to the storage listener.
    pub redirect_blobs: bool,
    /// Lifetime of access tokens.
    pub access_token_lifetime: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_token_lifetime: Duration,
    /// TLS; `None` serves plain http.
    pub tls: Option<TlsConfig>,
    /// Resource limits.
    pub limits: Limits,
    /// Admin users and repository-scoped tokens that log in with a username and password
    /// (`GET /oauth2/token` with HTTP Basic). They matter in [`AuthMode::Token`]; in
    /// [`AuthMode::Open`] nothing is checked anyway. Usernames must be unique and grants may
    /// name only the five registry (or scope-map) actions, or [`Emulator::start`] fails.
    ///
    /// ```
    /// use azure_containerregistry_emulator::{
    ///     AuthMode, EmulatorOptions, EmulatorUser, RepositoryGrant,
    /// };
    /// let options = EmulatorOptions {
    ///     auth: AuthMode::Token { anonymous_pull: false, accepted_aad_tokens: Vec::new() },
    ///     users: vec![
    ///         EmulatorUser::admin("admin", "admin-password"),
    ///         EmulatorUser::scoped("ci", "ci-password", vec![RepositoryGrant::new("app", ["pull"])]),
    ///         EmulatorUser::admin("old", "old-password").with_enabled(false),
    ///     ],
    ///     ..EmulatorOptions::default()
    /// };
    /// assert!(!format!("{options:?}").contains("admin-password"));
    /// ```
    pub users: Vec<EmulatorUser>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            auth: AuthMode::Open,
            storage: StorageMode::Memory,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            redirect_blobs: true,
            access_token_lifetime: Duration::from_secs(4500),
            refresh_token_lifetime: Duration::from_secs(11700),
            tls: None,
            limits: Limits::default(),
            users: Vec::new(),
        }
    }
}

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The registry endpoint.
    Registry,
    /// The blob storage endpoint.
    Storage,
}

/// One request seen by the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path and query as sent.
    pub path_and_query: String,
    /// Response status.
    pub status: u16,
    /// Whether the request carried an `Authorization` header.
    pub has_authorization: bool,
    /// Listener it arrived on.
    pub listener: Listener,
}

/// A running emulator; stops on [`Emulator::shutdown`] or when dropped.
#[derive(Debug)]
pub struct Emulator {
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    tls_ca_pem: Option<String>,
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key
}

/// Discards idle upload sessions until shutdown.
async fn sweep_sessions(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let every = state.uploads.sweep_interval();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => break,
        }
        state.uploads.sweep(&state.store.blobs).await;
    }
}

impl Emulator {
    /// Binds both listeners on [`EmulatorOptions::bind`] and starts serving.
    ///
    /// Fails with [`std::io::ErrorKind::InvalidInput`] when [`EmulatorOptions::users`] holds an
    /// empty or repeated username, or a grant with an unknown action or an empty repository.
    pub async fn start(options: EmulatorOptions) -> std::io::Result<Emulator> {
        users::validate(&options.users)?;
        let registry = TcpListener::bind((options.bind, options.port)).await?;
        let storage = TcpListener::bind((options.bind, 0)).await?;
        let (acceptor, tls_ca_pem) = match &options.tls {
            None => (None, None),
            Some(TlsConfig::SelfSigned { dir }) => {
                let (a, ca) = tls::self_signed(dir)?;
                (Some(a), Some(ca))
            }
            Some(TlsConfig::Files { cert, key }) => (Some(tls::from_files(cert, key)?), None),
        };
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let port = registry.local_addr()?.port();
        let storage_port = storage.local_addr()?.port();
        let host = match options.bind {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let dir = match &options.storage {
            StorageMode::Memory => None,
            StorageMode::Directory(d) => {
                tokio::fs::create_dir_all(d).await?;
                Some(d.clone())
            }
        };
        let store = storage::Store::open(dir.as_deref(), options.limits.memory_budget).await?;
        let keys = match &dir {
            Some(d) => auth::tokens::TokenKeys::load_or_generate(d)?,
            None => auth::tokens::TokenKeys::generate()?,
        };
        let state = Arc::new(AppState {
            endpoint: format!("{scheme}://{host}:{port}"),
            storage_endpoint: format!("{scheme}://{host}:{storage_port}"),
            service: format!("{host}:{port}"),
            issuer: "Azure Container Registry".to_owned(),
            auth: options.auth.clone(),
            users: options.users.clone(),
            redirect_blobs: options.redirect_blobs,
            access_lifetime: options.access_token_lifetime,
            refresh_lifetime: options.refresh_token_lifetime,
            store,
            uploads: sessions::Sessions::new(
                options.limits.max_upload_sessions,
                options.limits.upload_idle_timeout,
            ),
            keys,
            log: Mutex::new(VecDeque::new()),
            limits: options.limits.clone(),
            sas_key: random_key(),
        });
        let (tx, rx) = watch::channel(false);
        let registry_router = Router::new()
            .fallback(routes::registry_handler)
            .with_state(state.clone());
        let storage_router = Router::new()
            .fallback(routes::storage::storage_handler)
            .with_state(state.clone());
        let conn = server::ConnLimits {
            header_read_timeout: options.limits.header_read_timeout,
            max_connections: options.limits.max_connections,
        };
        let tasks = vec![
            tokio::spawn(server::serve(
                registry,
                registry_router,
                acceptor.clone(),
                rx.clone(),
                conn,
            )),
            tokio::spawn(server::serve(
                storage,
                storage_router,
                acceptor,
                rx.clone(),
                conn,
            )),
            tokio::spawn(sweep_sessions(state.clone(), rx)),
        ];
        Ok(Emulator {
            state,
            shutdown: tx,
            tasks,
            tls_ca_pem,
        })
    }

    /// Base URL of the registry, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn endpoint(&self) -> String {
        self.state.endpoint.clone()
    }

    /// Base URL of the blob storage listener that blob GETs redirect to.
    pub fn storage_endpoint(&self) -> String {
        self.state.storage_endpoint.clone()
    }

    /// The `service` of challenges and the `aud` of tokens: `host:port` of the endpoint.
    pub fn service(&self) -> String {
        self.state.service.clone()
    }

    /// The `iss` claim of issued tokens.
    pub fn issuer(&self) -> String {
        self.state.issuer.clone()
    }

    /// PEM certificate of the token signing key (for docker-registry's `rootcertbundle`).
    pub fn token_signing_cert_pem(&self) -> String {
        self.state.keys.cert_pem().to_owned()
    }

    /// PEM of the generated TLS CA ([`TlsConfig::SelfSigned`] only).
    pub fn tls_ca_cert_pem(&self) -> Option<String> {
        self.tls_ca_pem.clone()
    }

    /// The requests seen so far on both listeners, in order of completion: the newest
    /// [`Limits::request_log_capacity`], each path cut to 4 KiB.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Empties the request log.
    pub fn clear_request_log(&self) {
        self.state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Number of open upload sessions.
    pub fn open_upload_sessions(&self) -> usize {
        self.state.uploads.len()
    }

    /// Stops both listeners and closes open connections.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
