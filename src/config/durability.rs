//! The durability settings that are a name or a number: [`SpoolFsync`] (`LOG_SPOOL_FSYNC`) and
//! [`QueueFull`] (`LOG_QUEUE_FULL`), parsed with `FromStr`.

use std::str::FromStr;
use std::time::Duration;

use super::enums::ParseEnumError;

/// Longest interval `LOG_SPOOL_FSYNC` accepts, in milliseconds (a day).
const MAX_FSYNC_MS: u64 = 86_400_000;
/// Longest wait `LOG_QUEUE_FULL=block:<ms>` accepts, in milliseconds.
const MAX_BLOCK_MS: u64 = 60_000;

/// When the spool's writes are forced to disk (`fsync`), `LOG_SPOOL_FSYNC`.
///
/// Whatever the setting, a record written to the spool survives a crash of the process (it is in
/// the page cache); this decides what survives a power loss or a kernel crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpoolFsync {
    /// Never by this crate (the kernel writes back on its own schedule, typically within 30 s).
    Off,
    /// Data, cursor and directory entries synced at most this long after they were written.
    Every(Duration),
    /// Data synced after each append, the cursor and directory entries after each change.
    Always,
}

impl SpoolFsync {
    /// The default of a mode: `off` in `failover`, every second in `durable`.
    pub(crate) fn default_for(durable: bool) -> SpoolFsync {
        if durable {
            SpoolFsync::Every(Duration::from_secs(1))
        } else {
            SpoolFsync::Off
        }
    }
}

impl FromStr for SpoolFsync {
    type Err = ParseEnumError;

    /// Parses `off`, `always`, or an interval in milliseconds (`1` to `86400000`).
    fn from_str(s: &str) -> Result<SpoolFsync, ParseEnumError> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "off" => Ok(SpoolFsync::Off),
            "always" => Ok(SpoolFsync::Always),
            _ => t
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=MAX_FSYNC_MS).contains(ms))
                .map(|ms| SpoolFsync::Every(Duration::from_millis(ms)))
                .ok_or_else(|| ParseEnumError {
                    what: "spool fsync policy",
                    value: s.to_owned(),
                    expected: "off, always, or an interval in milliseconds (1 to 86400000)",
                }),
        }
    }
}

/// The spelling `LOG_SPOOL_FSYNC` takes: `off`, `always` or the interval in milliseconds.
impl std::fmt::Display for SpoolFsync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpoolFsync::Off => f.write_str("off"),
            SpoolFsync::Always => f.write_str("always"),
            SpoolFsync::Every(d) => write!(f, "{}", d.as_millis()),
        }
    }
}

/// What a thread that logs does when its record meets a full queue, `LOG_QUEUE_FULL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueueFull {
    /// Drop the record and count it (`queue_full`): the caller never waits.
    #[default]
    Drop,
    /// Wait at most this long for room (woken by the worker as it takes records), then drop and
    /// count. Shedding of TRACE/DEBUG/INFO at the high watermark is unchanged, and the crate's own
    /// threads never wait.
    Block(Duration),
}

impl FromStr for QueueFull {
    type Err = ParseEnumError;

    /// Parses `drop` or `block:<ms>` (`1` to `60000` milliseconds).
    fn from_str(s: &str) -> Result<QueueFull, ParseEnumError> {
        let t = s.trim().to_ascii_lowercase();
        if t == "drop" {
            return Ok(QueueFull::Drop);
        }
        t.strip_prefix("block:")
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .filter(|ms| (1..=MAX_BLOCK_MS).contains(ms))
            .map(|ms| QueueFull::Block(Duration::from_millis(ms)))
            .ok_or_else(|| ParseEnumError {
                what: "queue-full policy",
                value: s.to_owned(),
                expected: "drop, or block:<ms> with 1 to 60000 milliseconds",
            })
    }
}

/// The spelling `LOG_QUEUE_FULL` takes: `drop` or `block:<ms>`.
impl std::fmt::Display for QueueFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueFull::Drop => f.write_str("drop"),
            QueueFull::Block(d) => write!(f, "block:{}", d.as_millis()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_bad_ones_say_what_is_accepted() {
        for (text, want) in [
            ("off", SpoolFsync::Off),
            ("Always", SpoolFsync::Always),
            (" 250 ", SpoolFsync::Every(Duration::from_millis(250))),
        ] {
            let got: SpoolFsync = text.parse().unwrap();
            assert_eq!(got, want);
            assert_eq!(got.to_string().parse::<SpoolFsync>(), Ok(want));
        }
        for bad in ["0", "-5", "sometimes", "1s", "86400001"] {
            let e = bad.parse::<SpoolFsync>().unwrap_err();
            assert!(e.to_string().contains("off, always"), "{e}");
        }
        for (text, want) in [
            ("drop", QueueFull::Drop),
            ("BLOCK:5", QueueFull::Block(Duration::from_millis(5))),
        ] {
            let got: QueueFull = text.parse().unwrap();
            assert_eq!(got, want);
            assert_eq!(got.to_string().parse::<QueueFull>(), Ok(want));
        }
        for bad in ["block", "block:", "block:0", "block:60001", "wait:5", ""] {
            let e = bad.parse::<QueueFull>().unwrap_err();
            assert!(e.to_string().contains("block:<ms>"), "{bad}: {e}");
        }
    }
}
