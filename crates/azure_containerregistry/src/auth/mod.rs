//! ACR authentication: challenge → Microsoft Entra token → `/oauth2/exchange` (refresh token)
//! → `/oauth2/token` (access token per scope), or anonymous access (`grant_type=password`).
//!
//! Refresh tokens are cached until their `exp` (less a margin); access tokens are cached per
//! scope and attached before the registry asks, so a warm client makes no 401 round trip.
//! Concurrent requests for the same scope share one token fetch.

mod authenticator;
pub mod challenge;
pub(crate) mod jwt;
pub mod scope;

pub(crate) use authenticator::{default_service, Authenticator, Login};
pub use challenge::Challenge;
