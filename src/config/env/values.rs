//! Readers of single values: levels, numbers, sizes, durations, permissions, booleans, lists; each
//! error names the variable, the value and what is accepted.

use std::str::FromStr;
use std::time::Duration;

use super::{BOOL, BYTES, COUNT, MILLIS, OCTAL_MODE};
use crate::Error;
use crate::config::ParseEnumError;
use crate::config::directives::{Directive, parse_directives};

/// Parses a level name, case-insensitively (`warning` is accepted for `warn`).
pub(crate) fn parse_level(v: &str) -> Option<log::LevelFilter> {
    match v.trim().to_ascii_lowercase().as_str() {
        "off" => Some(log::LevelFilter::Off),
        "error" => Some(log::LevelFilter::Error),
        "warn" | "warning" => Some(log::LevelFilter::Warn),
        "info" => Some(log::LevelFilter::Info),
        "debug" => Some(log::LevelFilter::Debug),
        "trace" => Some(log::LevelFilter::Trace),
        _ => None,
    }
}

/// Whether `name` can be a file name inside the log directory.
pub(crate) fn valid_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// `a,b,c`; `none` (any case) for no redaction.
pub(crate) fn parse_redact_keys(v: &str) -> Vec<String> {
    if v.trim().eq_ignore_ascii_case("none") {
        return Vec::new();
    }
    v.split(',')
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

pub(super) fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

pub(super) fn boolean(var: &'static str, v: &str) -> Result<bool, Error> {
    parse_bool(v).ok_or_else(|| Error::InvalidEnv {
        var,
        value: v.to_owned(),
        expected: BOOL,
    })
}

pub(super) fn bytes(var: &'static str, v: &str) -> Result<u64, Error> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (1024..=1 << 40).contains(n))
        .ok_or_else(|| Error::InvalidEnv {
            var,
            value: v.to_owned(),
            expected: BYTES,
        })
}

/// Octal permission bits; the owner must keep read and write.
pub(crate) fn octal_mode(var: &'static str, v: &str) -> Result<u32, Error> {
    u32::from_str_radix(v.trim().trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777 && m & 0o600 == 0o600)
        .ok_or_else(|| Error::InvalidEnv {
            var,
            value: v.to_owned(),
            expected: OCTAL_MODE,
        })
}

/// Directives in `RUST_LOG` syntax, an error naming `var` otherwise.
pub(crate) fn directives_of(var: &'static str, v: &str) -> Result<Vec<Directive>, Error> {
    parse_directives(v).map_err(|_| Error::InvalidEnv {
        var,
        value: v.to_owned(),
        expected: "env_logger directives such as info,my_crate::db=debug,hyper=off (levels off, error, warn, info, debug, trace; no /regex)",
    })
}

/// A file age such as `7d`, `12h` or `30m` (humantime), at least one minute.
pub(crate) fn max_age(var: &'static str, v: &str) -> Result<Duration, Error> {
    humantime::parse_duration(v.trim())
        .ok()
        .filter(|d| *d >= Duration::from_secs(60))
        .ok_or_else(|| Error::InvalidEnv {
            var,
            value: v.to_owned(),
            expected: "a duration of a minute or more, such as 7d, 12h or 90m",
        })
}

/// Milliseconds from 1 to 60000: a spool delay.
pub(crate) fn max_delay(var: &'static str, v: &str) -> Result<Duration, Error> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|ms| (1..=60_000).contains(ms))
        .map(Duration::from_millis)
        .ok_or_else(|| Error::InvalidEnv {
            var,
            value: v.to_owned(),
            expected: "a whole number of milliseconds, 1 to 60000",
        })
}

pub(super) fn millis(var: &'static str, v: &str) -> Result<Duration, Error> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|ms| *ms <= 86_400_000)
        .map(Duration::from_millis)
        .ok_or_else(|| Error::InvalidEnv {
            var,
            value: v.to_owned(),
            expected: MILLIS,
        })
}

pub(super) fn count(var: &'static str, v: &str) -> Result<usize, Error> {
    v.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=1 << 28).contains(n))
        .ok_or_else(|| Error::InvalidEnv {
            var,
            value: v.to_owned(),
            expected: COUNT,
        })
}

/// `k=v,k2=v2` with percent-decoded values; `None` when a pair has no `=` or an empty key.
pub(super) fn parse_resource_attributes(v: &str) -> Option<Vec<(String, String)>> {
    v.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (k, val) = pair.split_once('=')?;
            let k = k.trim();
            if k.is_empty() {
                return None;
            }
            Some((k.to_owned(), percent_decode(val.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One of a setting's names (`FromStr` with [`ParseEnumError`]): an error names the variable,
/// the value and what is accepted.
pub(super) fn named<T: FromStr<Err = ParseEnumError>>(
    var: &'static str,
    v: &str,
) -> Result<T, Error> {
    v.parse::<T>().map_err(|e| Error::InvalidEnv {
        var,
        value: v.to_owned(),
        expected: e.expected(),
    })
}
