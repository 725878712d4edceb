//! What every public operation shares: its tracing span (named `Client.method`, as in the other
//! Azure SDKs) and the caller's `Context` for the requests it sends.

use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use azure_core::http::Context;
use futures::future::BoxFuture;
use tracing::Instrument;

/// The operation in progress on this task: the caller's context, and the pipeline error that
/// the generated client could not carry (it only knows `reqwest` errors).
struct Call {
    context: Context<'static>,
    error: Mutex<Option<azure_core::Error>>,
}

tokio::task_local! {
    static CALL: Call;
}

/// The context of the operation running on this task (empty outside one).
pub(crate) fn current_context() -> Context<'static> {
    CALL.try_with(|call| call.context.clone())
        .unwrap_or_default()
}

/// Keeps `error` for the operation running on this task, which returns it in place of the
/// generated client's reading of it. `Err(error)` back when no operation runs here.
pub(crate) fn keep_error(error: azure_core::Error) -> Result<(), azure_core::Error> {
    let mut error = Some(error);
    let kept = CALL.try_with(|call| {
        if let Some(e) = error.take() {
            *call.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    });
    match (kept, error) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(e)) => Err(e),
        (Err(_), None) => Ok(()),
    }
}

/// Runs one public operation in a span named after it (`ContainerRegistryClient.list_repository_names`),
/// recording the repository, the outcome (HTTP status of a failure) and the duration; its
/// requests carry `context`. Never records secrets.
macro_rules! traced {
    ($name:literal, $repository:expr, $context:expr, $future:expr) => {
        $crate::operation::run(
            tracing::info_span!(
                $name,
                repository = %$repository,
                status = tracing::field::Empty,
                duration_ms = tracing::field::Empty,
            ),
            &$crate::operation::CallContext::call_context($context),
            $future,
        )
    };
}
pub(crate) use traced;

/// What a call's context comes from: its options (`None` for none) or a context itself.
pub(crate) trait CallContext {
    /// The context of the call.
    fn call_context(&self) -> Context<'static>;
}

impl CallContext for Context<'_> {
    fn call_context(&self) -> Context<'static> {
        self.to_owned()
    }
}

impl<O: CallOptions> CallContext for Option<O> {
    fn call_context(&self) -> Context<'static> {
        context_of(self)
    }
}

/// The body of [`traced!`].
pub(crate) fn run<'a, T, F>(
    span: tracing::Span,
    context: &Context<'_>,
    future: F,
) -> BoxFuture<'a, azure_core::Result<T>>
where
    F: Future<Output = azure_core::Result<T>> + Send + 'a,
    T: Send + 'a,
{
    let call = Call {
        context: context.to_owned(),
        error: Mutex::new(None),
    };
    Box::pin(CALL.scope(call, async move {
        let started = Instant::now();
        let result = future.instrument(span.clone()).await;
        let result = result.map_err(|error| {
            CALL.try_with(|call| call.error.lock().unwrap_or_else(|p| p.into_inner()).take())
                .ok()
                .flatten()
                .unwrap_or(error)
        });
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
    }))
}

/// Options that carry the `Context` of a call.
pub(crate) trait CallOptions {
    /// The call's context.
    fn context(&self) -> Context<'static>;
}

/// The context of a call's options (an empty one without options).
pub(crate) fn context_of<O: CallOptions>(options: &Option<O>) -> Context<'static> {
    options
        .as_ref()
        .map(CallOptions::context)
        .unwrap_or_default()
}

/// Implements [`CallOptions`] for options with `method_options: ClientMethodOptions`.
macro_rules! call_options {
    ($($name:ident),+) => {
        $(impl $crate::operation::CallOptions for $name<'_> {
            fn context(&self) -> azure_core::http::Context<'static> {
                self.method_options.context.to_owned()
            }
        })+
    };
}
pub(crate) use call_options;

/// Declares options structs whose only field is `method_options` (the call's context).
macro_rules! context_options {
    ($($(#[$doc:meta])* $name:ident;)+) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Debug, Default)]
            pub struct $name<'a> {
                /// The context of the requests.
                pub method_options: azure_core::http::ClientMethodOptions<'a>,
            }
        )+
        $crate::operation::call_options!($($name),+);
    };
}
pub(crate) use context_options;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_kept_error_replaces_the_generated_clients_reading() {
        let context = Context::new();
        let result: azure_core::Result<()> = traced!("Test.op", "repo", &context, async {
            keep_error(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "the real cause",
            ))
            .expect("inside an operation");
            Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "synthetic",
            ))
        })
        .await;
        let error = result.expect_err("fails");
        assert!(error.to_string().contains("the real cause"), "{error}");
        let outside = keep_error(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Other,
            "x",
        ));
        assert!(outside.is_err());
    }
}
