//! The only module that reads the process environment. Variable names are constants with their
//! defaults beside them. An empty value counts as unset (OpenTelemetry convention).

use std::time::Duration;

use crate::Error;

/// Service name for the resource (`service.name`).
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// Default `service.name` when neither `OTEL_SERVICE_NAME` nor the resource attributes set it.
pub const DEFAULT_SERVICE_NAME: &str = "unknown_service";
/// Extra resource attributes, `key=value,key2=value2` (values percent-decoded).
pub const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// Logs endpoint; wins over [`OTEL_EXPORTER_OTLP_ENDPOINT`].
pub const OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
/// Endpoint for all signals.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Default collector endpoint (OTLP/gRPC).
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4317";
/// Timeout of one export RPC in milliseconds; wins over [`OTEL_EXPORTER_OTLP_TIMEOUT`].
pub const OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT";
/// Timeout of one export RPC in milliseconds, all signals.
pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// Default timeout of one export RPC.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(10_000);
/// Queue capacity in records.
pub const OTEL_BLRP_MAX_QUEUE_SIZE: &str = "OTEL_BLRP_MAX_QUEUE_SIZE";
/// Default queue capacity.
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 2048;
/// Records per export batch.
pub const OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE";
/// Default records per export batch.
pub const DEFAULT_MAX_EXPORT_BATCH_SIZE: usize = 512;
/// Longest wait before a partial batch is exported, in milliseconds.
pub const OTEL_BLRP_SCHEDULE_DELAY: &str = "OTEL_BLRP_SCHEDULE_DELAY";
/// Default schedule delay.
pub const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_millis(1000);
/// Bound on one batch's export including its retries, in milliseconds.
pub const OTEL_BLRP_EXPORT_TIMEOUT: &str = "OTEL_BLRP_EXPORT_TIMEOUT";
/// Default export timeout.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_millis(30_000);
/// Default level: off, error, warn, info, debug, trace.
pub const LOG_LEVEL: &str = "LOG_LEVEL";
/// Default for [`LOG_LEVEL`].
pub const DEFAULT_LEVEL: log::LevelFilter = log::LevelFilter::Info;
/// Queue fill, in percent of its capacity, above which DEBUG/INFO/TRACE records are shed.
pub const LOG_QUEUE_HIGH_WATERMARK: &str = "LOG_QUEUE_HIGH_WATERMARK";
/// Default for [`LOG_QUEUE_HIGH_WATERMARK`].
pub const DEFAULT_HIGH_WATERMARK_PERCENT: u8 = 80;
/// Bound on the flush at shutdown (guard drop) and on `log::logger().flush()`, in milliseconds.
pub const LOG_SHUTDOWN_TIMEOUT: &str = "LOG_SHUTDOWN_TIMEOUT";
/// Default for [`LOG_SHUTDOWN_TIMEOUT`].
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(5000);

const LEVELS: &str = "one of off, error, warn, info, debug, trace (any case)";
const MILLIS: &str = "a whole number of milliseconds, 0 to 86400000";
const COUNT: &str = "a whole number from 1 to 268435456";
const PERCENT: &str = "a whole number from 1 to 100";

/// Settings as found in the environment; `None` where a variable is unset or empty.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct EnvSettings {
    pub service_name: Option<String>,
    pub resource_attributes: Vec<(String, String)>,
    pub endpoint: Option<(&'static str, String)>,
    pub request_timeout: Option<Duration>,
    pub max_queue_size: Option<usize>,
    pub max_export_batch_size: Option<usize>,
    pub schedule_delay: Option<Duration>,
    pub export_timeout: Option<Duration>,
    pub level: Option<log::LevelFilter>,
    pub high_watermark_percent: Option<u8>,
    pub shutdown_timeout: Option<Duration>,
}

/// Reads the process environment.
pub(crate) fn from_process() -> Result<EnvSettings, Error> {
    from_lookup(|name| std::env::var(name).ok())
}

/// Reads the settings through `get`, strictly: any value that cannot be used is an error naming the
/// variable, the value and what is accepted.
pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<EnvSettings, Error> {
    let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
    let endpoint = get(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)
        .map(|v| (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, v))
        .or_else(|| get(OTEL_EXPORTER_OTLP_ENDPOINT).map(|v| (OTEL_EXPORTER_OTLP_ENDPOINT, v)));
    let request_timeout = match get(OTEL_EXPORTER_OTLP_LOGS_TIMEOUT) {
        Some(v) => Some(millis(OTEL_EXPORTER_OTLP_LOGS_TIMEOUT, &v)?),
        None => get(OTEL_EXPORTER_OTLP_TIMEOUT)
            .map(|v| millis(OTEL_EXPORTER_OTLP_TIMEOUT, &v))
            .transpose()?,
    };
    let resource_attributes = match get(OTEL_RESOURCE_ATTRIBUTES) {
        Some(v) => parse_resource_attributes(&v).ok_or_else(|| Error::InvalidEnv {
            var: OTEL_RESOURCE_ATTRIBUTES,
            value: v.clone(),
            expected: "comma-separated key=value pairs with non-empty keys (values percent-encoded)",
        })?,
        None => Vec::new(),
    };
    Ok(EnvSettings {
        service_name: get(OTEL_SERVICE_NAME).map(|v| v.trim().to_owned()),
        resource_attributes,
        endpoint,
        request_timeout,
        max_queue_size: get(OTEL_BLRP_MAX_QUEUE_SIZE)
            .map(|v| count(OTEL_BLRP_MAX_QUEUE_SIZE, &v))
            .transpose()?,
        max_export_batch_size: get(OTEL_BLRP_MAX_EXPORT_BATCH_SIZE)
            .map(|v| count(OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, &v))
            .transpose()?,
        schedule_delay: get(OTEL_BLRP_SCHEDULE_DELAY)
            .map(|v| millis(OTEL_BLRP_SCHEDULE_DELAY, &v))
            .transpose()?,
        export_timeout: get(OTEL_BLRP_EXPORT_TIMEOUT)
            .map(|v| millis(OTEL_BLRP_EXPORT_TIMEOUT, &v))
            .transpose()?,
        level: get(LOG_LEVEL)
            .map(|v| {
                parse_level(&v).ok_or(Error::InvalidEnv {
                    var: LOG_LEVEL,
                    value: v.clone(),
                    expected: LEVELS,
                })
            })
            .transpose()?,
        high_watermark_percent: get(LOG_QUEUE_HIGH_WATERMARK)
            .map(|v| {
                v.trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|p| (1..=100).contains(p))
                    .ok_or(Error::InvalidEnv {
                        var: LOG_QUEUE_HIGH_WATERMARK,
                        value: v.clone(),
                        expected: PERCENT,
                    })
            })
            .transpose()?,
        shutdown_timeout: get(LOG_SHUTDOWN_TIMEOUT)
            .map(|v| millis(LOG_SHUTDOWN_TIMEOUT, &v))
            .transpose()?,
    })
}

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

fn millis(var: &'static str, v: &str) -> Result<Duration, Error> {
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

fn count(var: &'static str, v: &str) -> Result<usize, Error> {
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
fn parse_resource_attributes(v: &str) -> Option<Vec<(String, String)>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<EnvSettings, Error> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_gives_no_overrides() {
        assert_eq!(env(&[]).unwrap(), EnvSettings::default());
    }

    #[test]
    fn valid_values_are_read() {
        let s = env(&[
            (OTEL_SERVICE_NAME, "payments"),
            (
                OTEL_RESOURCE_ATTRIBUTES,
                "deployment.environment=prod, team=a%20b,",
            ),
            (OTEL_EXPORTER_OTLP_ENDPOINT, "http://general:4317"),
            (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://logs:4317"),
            (OTEL_EXPORTER_OTLP_TIMEOUT, "2500"),
            (OTEL_BLRP_MAX_QUEUE_SIZE, "4096"),
            (OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, "256"),
            (OTEL_BLRP_SCHEDULE_DELAY, "200"),
            (OTEL_BLRP_EXPORT_TIMEOUT, "1000"),
            (LOG_LEVEL, "DEBUG"),
            (LOG_QUEUE_HIGH_WATERMARK, "90"),
            (LOG_SHUTDOWN_TIMEOUT, "750"),
        ])
        .unwrap();
        assert_eq!(s.service_name.as_deref(), Some("payments"));
        assert_eq!(
            s.resource_attributes,
            vec![
                ("deployment.environment".into(), "prod".into()),
                ("team".into(), "a b".into())
            ]
        );
        assert_eq!(
            s.endpoint,
            Some((OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://logs:4317".into()))
        );
        assert_eq!(s.request_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(s.max_queue_size, Some(4096));
        assert_eq!(s.max_export_batch_size, Some(256));
        assert_eq!(s.schedule_delay, Some(Duration::from_millis(200)));
        assert_eq!(s.export_timeout, Some(Duration::from_millis(1000)));
        assert_eq!(s.level, Some(log::LevelFilter::Debug));
        assert_eq!(s.high_watermark_percent, Some(90));
        assert_eq!(s.shutdown_timeout, Some(Duration::from_millis(750)));
    }

    #[test]
    fn general_endpoint_is_used_without_the_logs_one_and_empty_means_unset() {
        let s = env(&[
            (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, ""),
            (OTEL_EXPORTER_OTLP_ENDPOINT, "http://general:4317"),
            (LOG_LEVEL, "  "),
        ])
        .unwrap();
        assert_eq!(
            s.endpoint,
            Some((OTEL_EXPORTER_OTLP_ENDPOINT, "http://general:4317".into()))
        );
        assert_eq!(s.level, None);
    }

    #[test]
    fn invalid_values_name_the_variable_the_value_and_what_is_accepted() {
        let cases = [
            (LOG_LEVEL, "LOUD", "off, error, warn"),
            (OTEL_BLRP_MAX_QUEUE_SIZE, "-1", "whole number"),
            (OTEL_BLRP_MAX_QUEUE_SIZE, "0", "whole number"),
            (OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, "many", "whole number"),
            (OTEL_BLRP_SCHEDULE_DELAY, "1s", "milliseconds"),
            (OTEL_BLRP_EXPORT_TIMEOUT, "-5", "milliseconds"),
            (OTEL_EXPORTER_OTLP_TIMEOUT, "x", "milliseconds"),
            (LOG_QUEUE_HIGH_WATERMARK, "0", "1 to 100"),
            (LOG_QUEUE_HIGH_WATERMARK, "101", "1 to 100"),
            (LOG_SHUTDOWN_TIMEOUT, "soon", "milliseconds"),
            (OTEL_RESOURCE_ATTRIBUTES, "novalue", "key=value"),
        ];
        for (var, value, accepted) in cases {
            let err = env(&[(var, value)]).expect_err(var).to_string();
            assert!(err.contains(var), "{err}");
            assert!(err.contains(value), "{err}");
            assert!(err.contains(accepted), "{err}");
        }
    }
}
