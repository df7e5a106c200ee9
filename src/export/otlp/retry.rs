//! Retry classification of gRPC status codes and HTTP statuses (OTLP specification), `Retry-After`,
//! and backoff. Pure functions.

use std::time::Duration;

use tonic::Code;

/// How to treat a failed export RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Try again after the usual exponential backoff.
    Retryable,
    /// The server is throttling: try again after at least this long.
    Throttled(Duration),
    /// Do not retry.
    Permanent,
}

/// Classifies a failed RPC. `retry_delay` is the delay of a `google.rpc.RetryInfo` detail, if the
/// status carried one: RESOURCE_EXHAUSTED is retryable only then, and its delay is honoured.
/// `transport`: the status was made on this side from a transport failure (the connection broke, no
/// answer came), not sent by the collector; whatever its code (tonic says UNKNOWN "transport error"),
/// the request may not have reached the collector, so it is retryable.
pub(crate) fn classify(code: Code, retry_delay: Option<Duration>, transport: bool) -> Retry {
    if transport {
        return retry_delay.map_or(Retry::Retryable, Retry::Throttled);
    }
    match code {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => match retry_delay {
            Some(d) => Retry::Throttled(d),
            None => Retry::Retryable,
        },
        Code::ResourceExhausted => match retry_delay {
            Some(d) => Retry::Throttled(d),
            None => Retry::Permanent,
        },
        _ => Retry::Permanent,
    }
}

/// Classifies an HTTP answer that is not a success: 429, 502, 503 and 504 are retryable, after
/// `retry_after` when the server sent one; every other status is permanent.
pub(crate) fn classify_http(status: u16, retry_after: Option<Duration>) -> Retry {
    match status {
        429 | 502 | 503 | 504 => retry_after.map_or(Retry::Retryable, Retry::Throttled),
        _ => Retry::Permanent,
    }
}

/// A `Retry-After` value: whole seconds, or an HTTP date (a past date is no wait). `None` when it is
/// neither.
/// A longer wait is taken as this long (past any export timeout, which is at most a day).
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    const LONGEST: Duration = Duration::from_secs(86_400);
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(LONGEST));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(LONGEST),
    )
}

/// Exponential backoff with full jitter: attempt 0 waits up to `initial`, doubling up to `max`.
pub(crate) fn backoff(attempt: u32, initial: Duration, max: Duration, random: u64) -> Duration {
    let ceiling = initial
        .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
        .min(max);
    let nanos = ceiling.as_nanos().max(1) as u64;
    // Between half the ceiling and the ceiling, so a retry never comes back instantly.
    Duration::from_nanos(nanos / 2 + random % (nanos / 2 + 1))
}

/// A small xorshift generator for jitter; quality is irrelevant, independence across processes is not.
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new() -> Self {
        let seed = crate::clock::now_unix_nanos() ^ (std::process::id() as u64).rotate_left(32);
        Jitter(seed | 1)
    }

    /// A generator seeded from this one, for a task of its own: its seed is this one's next value,
    /// scrambled, so the two sequences are not the same one shifted.
    pub(crate) fn fork(&mut self) -> Jitter {
        Jitter(self.next().wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table_follows_the_otlp_specification() {
        let d = Duration::from_millis(250);
        let table = [
            (Code::Ok, Retry::Permanent, Retry::Permanent),
            (Code::Cancelled, Retry::Retryable, Retry::Throttled(d)),
            (Code::Unknown, Retry::Permanent, Retry::Permanent),
            (Code::InvalidArgument, Retry::Permanent, Retry::Permanent),
            (
                Code::DeadlineExceeded,
                Retry::Retryable,
                Retry::Throttled(d),
            ),
            (Code::NotFound, Retry::Permanent, Retry::Permanent),
            (Code::AlreadyExists, Retry::Permanent, Retry::Permanent),
            (Code::PermissionDenied, Retry::Permanent, Retry::Permanent),
            (
                Code::ResourceExhausted,
                Retry::Permanent,
                Retry::Throttled(d),
            ),
            (Code::FailedPrecondition, Retry::Permanent, Retry::Permanent),
            (Code::Aborted, Retry::Retryable, Retry::Throttled(d)),
            (Code::OutOfRange, Retry::Retryable, Retry::Throttled(d)),
            (Code::Unimplemented, Retry::Permanent, Retry::Permanent),
            (Code::Internal, Retry::Permanent, Retry::Permanent),
            (Code::Unavailable, Retry::Retryable, Retry::Throttled(d)),
            (Code::DataLoss, Retry::Retryable, Retry::Throttled(d)),
            (Code::Unauthenticated, Retry::Permanent, Retry::Permanent),
        ];
        for (code, without, with) in table {
            assert_eq!(
                classify(code, None, false),
                without,
                "{code:?} without RetryInfo"
            );
            assert_eq!(
                classify(code, Some(d), false),
                with,
                "{code:?} with RetryInfo"
            );
            assert_eq!(
                classify(code, None, true),
                Retry::Retryable,
                "{code:?} from a transport failure"
            );
        }
    }

    #[test]
    fn http_classification_follows_the_otlp_specification() {
        let d = Duration::from_secs(2);
        for status in [429, 502, 503, 504] {
            assert_eq!(classify_http(status, None), Retry::Retryable, "{status}");
            assert_eq!(
                classify_http(status, Some(d)),
                Retry::Throttled(d),
                "{status}"
            );
        }
        for status in [300, 400, 401, 403, 404, 405, 413, 415, 500, 501, 505] {
            assert_eq!(classify_http(status, None), Retry::Permanent, "{status}");
            assert_eq!(classify_http(status, Some(d)), Retry::Permanent, "{status}");
        }
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 21 Oct 2015 07:28:00
        let table = [
            ("0", Some(Duration::ZERO)),
            (" 120 ", Some(Duration::from_secs(120))),
            (
                "Wed, 21 Oct 2015 07:28:30 GMT",
                Some(Duration::from_secs(30)),
            ),
            ("Wed, 21 Oct 2015 07:27:00 GMT", Some(Duration::ZERO)),
            ("99999999999999999999", None),
            ("18446744073709551615", Some(Duration::from_secs(86_400))),
            ("-1", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, expected) in table {
            assert_eq!(parse_retry_after(value, now), expected, "{value:?}");
        }
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        let mut j = Jitter::new();
        for attempt in 0..40 {
            let ceiling = (initial * 2u32.pow(attempt.min(20))).min(max);
            let b = backoff(attempt, initial, max, j.next());
            assert!(b <= ceiling && b >= ceiling / 2, "attempt {attempt}: {b:?}");
        }
        let a = backoff(3, initial, max, 1);
        let b = backoff(3, initial, max, 7_777_777);
        assert_ne!(a, b, "jitter must vary the delay");
    }
}
