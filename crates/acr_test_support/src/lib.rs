//! Test support shared by the workspace's tests.
//!
//! - [`DockerRegistry`]: starts Debian's `docker-registry` (CNCF distribution 2.8) on a free
//!   loopback port with a throwaway config and data directory, and stops it on drop.
//! - [`FaultProxy`]: a loopback HTTP/1.1 reverse proxy that injects faults (cut connections,
//!   delays, canned statuses, truncated or corrupted bodies, lying headers) into chosen requests.
//! - [`run_example`]: runs one of a crate's example binaries against its in-process emulator.
//! - [`ShapingProxy`]: a loopback TCP proxy that emulates a WAN link (a fixed delay in each
//!   direction, a bandwidth cap per connection) for benchmarks.
//! - [`HostileServer`]: a hand-written loopback HTTP/1.1 server that records every request and
//!   answers as a test says, including answers no honest registry gives (endless, trickling or
//!   stalling bodies, silence).
//! - [`Seeder`]: pushes images to a registry over plain HTTP (OCI distribution API, no SDK),
//!   answering token challenges itself.
//! - [`TestCredential`]: an `azure_core` `TokenCredential` that returns a fixed token.
//! - Small helpers: [`bounded`], [`free_port`], [`random_bytes`], [`sha256_digest`],
//!   [`sha256_hex`], [`require_real`], [`python`].
#![deny(missing_docs)]

mod credential;
mod examples;
mod hostile;
mod loopback;
mod proxy;
mod registry;
mod seed;
mod shaping;
mod util;

pub use credential::{TestCredential, AAD_TOKEN};
pub use examples::{example_path, run_example, ExampleRun};
pub use hostile::{jwt, token_flow, HostileServer, Received, Reply, ReplyBody};
pub use proxy::{Fault, FaultProxy, Match, ProxyRequestRecord, Rule};
pub use registry::{
    DockerRegistry, DockerRegistryOptions, HtpasswdAuth, TokenAuth, DOCKER_REGISTRY_BIN,
};
pub use seed::{
    challenge_params, image_config, image_manifest, PushedImage, SeedError, Seeder, OCI_CONFIG,
    OCI_LAYER_TAR, OCI_MANIFEST,
};
pub use shaping::{ShapingOptions, ShapingProxy};
pub use util::{
    bounded, free_port, python, random_bytes, random_bytes_seeded, require_real, sha256_digest,
    sha256_hex, skip_or_fail,
};
