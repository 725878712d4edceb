//! Timestamps: 100 ns resolution, strictly increasing, RFC 3339 with 7 fractional digits and .NET ticks.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Difference between .NET ticks (since 0001-01-01) and Unix time, in 100 ns units.
const DOTNET_EPOCH_OFFSET: i64 = 621_355_968_000_000_000;

/// A point in time in 100 ns units since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Timestamp(pub(crate) i64);

impl Timestamp {
    /// RFC 3339 UTC with 7 fractional digits, e.g. `2024-01-24T06:16:12.6787894Z`.
    pub(crate) fn rfc3339(self) -> String {
        let secs = self.0.div_euclid(10_000_000);
        let frac = self.0.rem_euclid(10_000_000);
        match chrono::DateTime::from_timestamp(secs, 0) {
            Some(dt) => format!("{}.{frac:07}Z", dt.format("%Y-%m-%dT%H:%M:%S")),
            None => "1970-01-01T00:00:00.0000000Z".to_owned(),
        }
    }

    /// .NET ticks (100 ns since 0001-01-01), as used in ACR's opaque paging cursors.
    pub(crate) fn dotnet_ticks(self) -> i64 {
        self.0 + DOTNET_EPOCH_OFFSET
    }

    /// The inverse of [`Timestamp::dotnet_ticks`].
    #[cfg(test)]
    pub(crate) fn from_dotnet_ticks(ticks: i64) -> Self {
        Timestamp(ticks - DOTNET_EPOCH_OFFSET)
    }
}

/// Hands out strictly increasing timestamps.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    last: Mutex<i64>,
}

impl Clock {
    /// A clock that never returns a value at or below `floor`.
    pub(crate) fn starting_after(floor: Timestamp) -> Self {
        Clock {
            last: Mutex::new(floor.0),
        }
    }

    /// The current time, strictly later than every value returned before.
    pub(crate) fn now(&self) -> Timestamp {
        let now = chrono::Utc::now();
        let wall = now.timestamp() * 10_000_000 + i64::from(now.timestamp_subsec_nanos() / 100);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let next = if wall > *last { wall } else { *last + 1 };
        *last = next;
        Timestamp(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_match_acr_cursor_example() {
        // From docs/wire-facts.md#value-formats: ticks 639039224611470601 <-> 2026-01-13T17:34:21.1470601Z.
        let ts = Timestamp::from_dotnet_ticks(639_039_224_611_470_601);
        assert_eq!(ts.rfc3339(), "2026-01-13T17:34:21.1470601Z");
        assert_eq!(ts.dotnet_ticks(), 639_039_224_611_470_601);
    }

    #[test]
    fn clock_is_strictly_increasing() {
        let clock = Clock::default();
        let mut prev = clock.now();
        for _ in 0..1000 {
            let next = clock.now();
            assert!(next > prev);
            prev = next;
        }
    }

    #[test]
    fn seven_fraction_digits() {
        let s = Timestamp(1).rfc3339();
        assert_eq!(s, "1970-01-01T00:00:00.0000001Z");
    }
}
