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

/// Progress reports that never go backwards (bytes resent after a failure are not counted
/// twice).
pub(crate) struct Progress<'a> {
    callback: &'a Option<ProgressCallback>,
    total: Option<u64>,
    reported: Option<u64>,
}

impl<'a> Progress<'a> {
    pub(crate) fn new(callback: &'a Option<ProgressCallback>, total: Option<u64>) -> Self {
        Self {
            callback,
            total,
            reported: None,
        }
    }

    pub(crate) fn at(&mut self, done: u64) {
        if let Some(callback) = self.callback {
            if self.reported.is_none_or(|r| done > r) {
                self.reported = Some(done);
                callback.report(done, self.total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_never_goes_back() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let callback = Some(ProgressCallback::new(move |done, total| {
            seen2.lock().unwrap().push((done, total))
        }));
        let mut p = Progress::new(&callback, Some(9));
        for done in [0, 4, 2, 4, 9] {
            p.at(done);
        }
        assert_eq!(
            *seen.lock().unwrap(),
            [(0, Some(9)), (4, Some(9)), (9, Some(9))]
        );
    }
}
