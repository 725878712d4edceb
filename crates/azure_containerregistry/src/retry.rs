//! What is retried and how long to wait between the resumes of uploads and downloads. The
//! budget is called `max_retries` everywhere.

use std::time::Duration;

use azure_core::error::ErrorKind;
use rand::Rng;

/// The default retry budget of the client, of uploads and of downloads.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// The waits between the resumes of an upload or a download: exponential from
/// [`ContainerRegistryClientOptions::resume_delay`](crate::ContainerRegistryClientOptions::resume_delay),
/// with jitter, never more than [`MAX_RESUME_DELAY`]. (Requests themselves are retried by the
/// `azure_core` retry policy of `ClientOptions::retry`.)
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    pub(crate) initial_delay: Duration,
    pub(crate) max_delay: Duration,
}

/// The longest wait between two resumes.
pub(crate) const MAX_RESUME_DELAY: Duration = Duration::from_secs(60);

/// The spread of the jitter around the exponential delay.
const JITTER: std::ops::Range<f64> = 0.8..1.2;

impl Backoff {
    /// The delay before resume `n` (0-based): exponential with jitter; never more than
    /// `max_delay`.
    pub(crate) fn delay(&self, n: u32) -> Duration {
        self.initial_delay
            .saturating_mul(2u32.saturating_pow(n.min(16)))
            .mul_f64(rand::rng().random_range(JITTER))
            .min(self.max_delay)
    }
}

/// Statuses that may succeed when sent again: 408, 429, 500, 502, 503, 504.
pub(crate) fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Errors worth another attempt: transport failures and transient statuses.
pub(crate) fn is_retryable(e: &azure_core::Error) -> bool {
    match e.kind() {
        ErrorKind::Io | ErrorKind::Connection => true,
        ErrorKind::HttpResponse { status, .. } => is_transient_status(u16::from(*status)),
        _ => false,
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let text = value.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Some(Duration::from_secs_f64(seconds));
        }
    }
    let when =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc2822).ok()?;
    let now = time::OffsetDateTime::now_utc();
    Some(Duration::try_from(when - now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn delays_are_bounded() {
        let backoff = Backoff {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let d0 = backoff.delay(0);
        assert!(
            d0 >= Duration::from_millis(80) && d0 <= Duration::from_millis(120),
            "{d0:?}"
        );
        assert_eq!(backoff.delay(10), Duration::from_secs(1));
    }

    #[test]
    fn what_is_retried() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 409, 416, 501] {
            assert!(!is_transient_status(status), "{status}");
        }
        let io = azure_core::Error::with_message(ErrorKind::Io, "broken");
        assert!(is_retryable(&io));
        let data = azure_core::Error::with_message(ErrorKind::DataConversion, "bad");
        assert!(!is_retryable(&data));
    }
}
