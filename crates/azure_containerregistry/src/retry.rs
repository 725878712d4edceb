//! What is retried and how long to wait between attempts: the one policy behind the pipeline's
//! retries, the resumes of uploads and the resumes of downloads. The budget is called
//! `max_retries` everywhere.

use std::time::Duration;

use azure_core::error::ErrorKind;
use rand::Rng;
use reqwest::header::HeaderValue;

/// The default retry budget of the client, of uploads and of downloads.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// How transient failures (408, 429, 500, 502, 503, 504, connection errors) are retried, and
/// how long uploads and downloads wait before resuming.
#[derive(Clone, Debug)]
pub struct RetryOptions {
    /// Retries after the first attempt (default 3; 0 turns retries off).
    pub max_retries: u32,
    /// Delay before the first retry (default 800 ms); it doubles each time, with jitter.
    pub initial_delay: Duration,
    /// The longest delay between attempts, including a `Retry-After` (default 60 s).
    pub max_delay: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            initial_delay: Duration::from_millis(800),
            max_delay: Duration::from_secs(60),
        }
    }
}

/// The spread of the jitter around the exponential delay.
const JITTER: std::ops::Range<f64> = 0.8..1.2;

impl RetryOptions {
    /// The delay before retry `n` (0-based): the registry's `Retry-After` when given, else
    /// exponential with jitter; never more than `max_delay`.
    pub(crate) fn delay(&self, n: u32, retry_after: Option<&HeaderValue>) -> Duration {
        if let Some(delay) = retry_after.and_then(parse_retry_after) {
            return delay.min(self.max_delay);
        }
        self.exponential(n)
            .mul_f64(rand::rng().random_range(JITTER))
            .min(self.max_delay)
    }

    /// The longest [`delay`](Self::delay) before retry `n` can be without a `Retry-After`.
    pub(crate) fn longest_delay(&self, n: u32) -> Duration {
        self.exponential(n).mul_f64(JITTER.end).min(self.max_delay)
    }

    fn exponential(&self, n: u32) -> Duration {
        self.initial_delay
            .saturating_mul(2u32.saturating_pow(n.min(16)))
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
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
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
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("3")),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("0.5")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
        assert_eq!(parse_retry_after(&HeaderValue::from_static("-1")), None);
    }

    #[test]
    fn delays_are_bounded() {
        let retry = RetryOptions {
            max_retries: 3,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let d0 = retry.delay(0, None);
        assert!(
            d0 >= Duration::from_millis(80) && d0 <= Duration::from_millis(120),
            "{d0:?}"
        );
        assert!(d0 <= retry.longest_delay(0));
        assert_eq!(retry.delay(10, None), Duration::from_secs(1));
        assert_eq!(
            retry.delay(0, Some(&HeaderValue::from_static("120"))),
            Duration::from_secs(1)
        );
        assert_eq!(
            retry.delay(0, Some(&HeaderValue::from_static("0"))),
            Duration::ZERO
        );
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
