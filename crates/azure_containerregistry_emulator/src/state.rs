//! Shared state of both listeners.

use crate::auth::tokens::TokenKeys;
use crate::sessions::Sessions;
use crate::storage::Store;
use crate::{AuthMode, EmulatorUser, Limits, RequestRecord};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    /// `http://127.0.0.1:port`.
    pub endpoint: String,
    /// Base URL of the storage listener.
    pub storage_endpoint: String,
    /// `host:port` of the endpoint.
    pub service: String,
    /// JWT issuer.
    pub issuer: String,
    /// Auth configuration.
    pub auth: AuthMode,
    /// Username/password logins.
    pub users: Vec<EmulatorUser>,
    /// Answer blob GETs with 307 to storage.
    pub redirect_blobs: bool,
    /// Access token lifetime.
    pub access_lifetime: Duration,
    /// Refresh token lifetime.
    pub refresh_lifetime: Duration,
    /// Metadata and blobs.
    pub store: Store,
    /// Open uploads by id.
    pub uploads: Sessions,
    /// Token signing key.
    pub keys: TokenKeys,
    /// The newest requests seen on both listeners.
    pub log: Mutex<VecDeque<RequestRecord>>,
    /// Resource limits.
    pub limits: Limits,
    /// Key for the storage URLs' `sig`.
    pub sas_key: [u8; 32],
}
