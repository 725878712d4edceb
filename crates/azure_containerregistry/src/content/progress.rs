//! Progress reporting for blob transfers.

use std::fmt;
use std::sync::Arc;

/// A callback told how far a transfer is: `(bytes done, total bytes if known)`.
///
/// It is called from the task running the transfer, after each chunk; keep it quick.
///
/// ```
/// use azure_containerregistry::ProgressCallback;
/// let progress = ProgressCallback::new(|done, total| eprintln!("{done} of {total:?} bytes"));
/// # let _ = progress;
/// ```
#[derive(Clone)]
pub struct ProgressCallback(Arc<dyn Fn(u64, Option<u64>) + Send + Sync>);

impl ProgressCallback {
    /// Wraps a closure taking `(bytes done, total bytes if known)`.
    pub fn new(callback: impl Fn(u64, Option<u64>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(callback))
    }

    /// Reports progress.
    pub(crate) fn report(&self, done: u64, total: Option<u64>) {
        (self.0)(done, total)
    }
}

impl fmt::Debug for ProgressCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressCallback(..)")
    }
}

/// Calls an optional callback.
pub(crate) fn report(progress: &Option<ProgressCallback>, done: u64, total: Option<u64>) {
    if let Some(p) = progress {
        p.report(done, total);
    }
}
