//! The bounds a client cannot push the emulator past: sizes, sessions, connections, timeouts.

use std::time::Duration;

/// ACR's documented maximum layer size (200 GiB).
pub const ACR_MAX_LAYER_SIZE: u64 = 200 * 1024 * 1024 * 1024;

/// Resource limits of a running emulator; every field has a default (see [`Limits::default`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest blob an upload may reach; more is refused with `413 SIZE_INVALID`
    /// (default: ACR's 200 GiB layer limit).
    pub max_blob_size: u64,
    /// Memory mode only: the bytes of stored blobs, manifests and open uploads together
    /// (default 2 GiB); an upload past it is refused with `413 SIZE_INVALID`.
    pub memory_budget: u64,
    /// Upload sessions open at once (default 1024); more are refused with `429 TOOMANYREQUESTS`.
    pub max_upload_sessions: usize,
    /// An upload session untouched for this long is discarded (default 10 minutes).
    pub upload_idle_timeout: Duration,
    /// A connection that has not sent a request's headers within this time is closed
    /// (default 10 s); also bounds a TLS handshake.
    pub header_read_timeout: Duration,
    /// Connections served at once per listener (default 512); more wait in the backlog.
    pub max_connections: usize,
    /// Requests kept by [`crate::Emulator::request_log`] (the newest; 0 keeps none; default 10,000).
    pub request_log_capacity: usize,
    /// After answering a request whose body it did not need (a 401, a 416), the emulator reads
    /// and discards up to this many bytes of it so the connection stays usable (default
    /// 64 MiB); a longer body closes the connection with `Connection: close`.
    pub drain_limit: u64,
    /// Time allowed for that drain (default 30 s).
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blob_size: ACR_MAX_LAYER_SIZE,
            memory_budget: 2 * 1024 * 1024 * 1024,
            max_upload_sessions: 1024,
            upload_idle_timeout: Duration::from_secs(600),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
            request_log_capacity: 10_000,
            drain_limit: 64 * 1024 * 1024,
            drain_timeout: Duration::from_secs(30),
        }
    }
}
