//! What every public operation shares: its tracing span and the reading of a 404 on delete.

use std::future::Future;
use std::time::Instant;

use azure_core::http::StatusCode;
use futures::future::BoxFuture;
use tracing::Instrument;

/// Runs one public operation in an `acr.operation` span that records the operation, the
/// repository, the outcome (HTTP status of a failure) and the duration. Never records secrets.
pub(crate) fn traced<'a, T, F>(
    operation: &'static str,
    repository: &str,
    future: F,
) -> BoxFuture<'a, azure_core::Result<T>>
where
    F: Future<Output = azure_core::Result<T>> + Send + 'a,
    T: Send + 'a,
{
    let span = tracing::info_span!(
        "acr.operation",
        operation,
        repository,
        status = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    Box::pin(async move {
        let started = Instant::now();
        let result = future.instrument(span.clone()).await;
        let elapsed = started.elapsed().as_millis() as u64;
        span.record("duration_ms", elapsed);
        match &result {
            Ok(_) => {
                span.record("status", "ok");
            }
            Err(error) => {
                let status = error
                    .http_status()
                    .map(|s| u16::from(s).to_string())
                    .unwrap_or_else(|| "error".into());
                span.record("status", status.as_str());
                span.in_scope(
                    || tracing::debug!(error = %error, elapsed_ms = elapsed, "operation failed"),
                );
            }
        }
        result
    })
}

/// Treats 404 (the thing is already gone) as success, for deletes.
pub(crate) fn ok_if_not_found(result: azure_core::Result<()>) -> azure_core::Result<()> {
    match result {
        Err(error) if error.http_status() == Some(StatusCode::NotFound) => {
            tracing::debug!(
                code = crate::error_code(&error),
                "already gone; delete succeeds"
            );
            Ok(())
        }
        other => other,
    }
}
