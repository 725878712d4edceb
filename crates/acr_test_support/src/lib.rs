//! Test support shared by the workspace's tests.
//!
//! - [`DockerRegistry`]: starts Debian's `docker-registry` (CNCF distribution 2.8) on a free
//!   loopback port with a throwaway config and data directory, and stops it on drop.
//! - [`FaultProxy`]: a loopback HTTP/1.1 reverse proxy that injects faults (cut connections,
//!   delays, canned statuses, truncated or corrupted bodies, lying headers) into chosen requests.
//! - [`run_example`]: runs one of a crate's example binaries against its in-process emulator.
//! - [`ShapingProxy`]: a loopback TCP proxy that emulates a WAN link (a fixed delay in each
//!   direction, a bandwidth cap per connection) for benchmarks.
//! - Small helpers: [`free_port`], [`random_bytes`], [`sha256_digest`], [`require_real`],
//!   [`python`].
#![deny(missing_docs)]

mod examples;
mod proxy;
mod registry;
mod shaping;
mod util;

pub use examples::{example_path, run_example, ExampleRun};
pub use proxy::{Fault, FaultProxy, Match, ProxyRequestRecord, Rule};
pub use registry::{DockerRegistry, DockerRegistryOptions, TokenAuth, DOCKER_REGISTRY_BIN};
pub use shaping::{ShapingOptions, ShapingProxy};
pub use util::{
    free_port, python, random_bytes, random_bytes_seeded, require_real, sha256_digest, skip_or_fail,
};
