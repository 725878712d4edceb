//! Shared state of both listeners.

use crate::auth::tokens::TokenKeys;
use crate::storage::blobs::UploadData;
use crate::storage::Store;
use crate::time::Timestamp;
use crate::{AuthMode, RequestRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An open blob upload.
#[derive(Debug)]
pub(crate) struct UploadSession {
    /// Repository it belongs to.
    pub repo: String,
    /// Bytes received.
    pub offset: u64,
    /// Running sha256 of the bytes received.
    pub hasher: sha2::Sha256,
    /// The bytes (None once committed or discarded).
    pub data: Option<UploadData>,
    /// Start time.
    pub started: Timestamp,
    /// Incremented on every step so `_state` changes.
    pub step: u64,
}

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
    /// Answer blob GETs with 307 to storage.
    pub redirect_blobs: bool,
    /// Access token lifetime.
    pub access_lifetime: Duration,
    /// Refresh token lifetime.
    pub refresh_lifetime: Duration,
    /// Metadata and blobs.
    pub store: Store,
    /// Open uploads by id.
    pub uploads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<UploadSession>>>>,
    /// Token signing key.
    pub keys: TokenKeys,
    /// Requests seen on both listeners.
    pub log: Mutex<Vec<RequestRecord>>,
    /// Key for the storage URLs' `sig`.
    pub sas_key: [u8; 32],
}
