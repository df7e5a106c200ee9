//! The declarative configuration file (TOML): the same settings as the environment, written down as
//! one graph (sinks, levels and directives, queue, files and spool, admin), like the `dictConfig`
//! of the design this crate comes from. Its path comes from `LOG_CONFIG` or
//! [`Builder::config_file`](crate::Builder::config_file). Precedence: code > environment > file >
//! defaults. Unknown keys and invalid values are errors naming the file and the key; reading the same
//! file twice gives the same settings. `examples/otel-log-bridge.toml` documents every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::env::{EnvSettings, octal_mode, parse_level};
use super::{Compression, Headers, Mode, valid_header};
use crate::Error;

/// Where the path of the configuration file comes from.
pub const LOG_CONFIG: &str = "LOG_CONFIG";
/// Address of the admin server when the file's `[admin]` section gives none: loopback only.
#[cfg(feature = "admin")]
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:4320";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Document {
    service_name: Option<String>,
    mode: Option<String>,
    stdout: Option<StdoutSetting>,
    stdout_format: Option<String>,
    panic_hook: Option<bool>,
    code_location: Option<bool>,
    span_fields: Option<bool>,
    redact_keys: Option<Vec<String>>,
    baggage_keys: Option<Vec<String>>,
    resource: Option<BTreeMap<String, String>>,
    levels: Option<Levels>,
    otlp: Option<Otlp>,
    queue: Option<Queue>,
    files: Option<Files>,
    admin: Option<Admin>,
}

/// `stdout = true | false | "stdout" | "stderr"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum StdoutSetting {
    On(bool),
    Named(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Levels {
    default: Option<String>,
    directives: Option<String>,
    cooldown_ms: Option<u64>,
    otlp: Option<String>,
    file: Option<String>,
    stdout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Otlp {
    endpoint: Option<String>,
    timeout_ms: Option<u64>,
    compression: Option<String>,
    certificate: Option<PathBuf>,
    protocol: Option<String>,
    client_certificate: Option<PathBuf>,
    client_key: Option<PathBuf>,
    insecure: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Queue {
    max_size: Option<u64>,
    batch_size: Option<u64>,
    schedule_delay_ms: Option<u64>,
    export_timeout_ms: Option<u64>,
    high_watermark_percent: Option<u64>,
    shutdown_timeout_ms: Option<u64>,
    full: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Files {
    dir: Option<PathBuf>,
    name: Option<String>,
    max_bytes: Option<u64>,
    backups: Option<u64>,
    rotate: Option<String>,
    max_age: Option<String>,
    compress: Option<String>,
    file_mode: Option<String>,
    dir_mode: Option<String>,
    spool_max_bytes: Option<u64>,
    spool_max_delay_ms: Option<u64>,
    spool_fsync: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Admin {
    listen: Option<String>,
    token: String,
}

/// Settings read from a file, in the same shape as the environment's, plus the admin server.
pub(crate) struct FileSettings {
    pub settings: EnvSettings,
    #[cfg(feature = "admin")]
    pub admin: Option<(std::net::SocketAddr, super::Secret)>,
}

struct Ctx<'a> {
    path: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> Error {
        Error::ConfigFile {
            path: self.path.to_path_buf(),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn range(&self, key: &str, v: Option<u64>, lo: u64, hi: u64) -> Result<Option<u64>, Error> {
        match v {
            Some(n) if !(lo..=hi).contains(&n) => {
                Err(self.err(key, format!("{n}; expected {lo} to {hi}")))
            }
            other => Ok(other),
        }
    }

    fn millis(&self, key: &str, v: Option<u64>) -> Result<Option<Duration>, Error> {
        Ok(self
            .range(key, v, 0, 86_400_000)?
            .map(Duration::from_millis))
    }

    fn count(&self, key: &str, v: Option<u64>) -> Result<Option<usize>, Error> {
        Ok(self.range(key, v, 1, 1 << 28)?.map(|n| n as usize))
    }
}

/// Reads and validates the file at `path`.
pub(crate) fn load(path: &Path) -> Result<FileSettings, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigFile {
        path: path.to_path_buf(),
        key: String::new(),
        message: format!("cannot read it: {e}"),
    })?;
    parse(path, &text)
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<FileSettings, Error> {
    let c = Ctx { path };
    let doc: Document = toml::from_str(text).map_err(|e| {
        // Only the message and the position: the error's own display quotes the line, which
        // may hold a secret (a header value, the admin token).
        let (key, at) = e
            .span()
            .map(|s| {
                let line = text.get(..s.start).unwrap_or(text).matches('\n').count() + 1;
                // The key of that line (what stands before `=`) when it looks like a key, never
                // its value (a continuation line of a multi-line string is not a key).
                let line_text = text.lines().nth(line - 1).unwrap_or("");
                let key = line_text
                    .split_once('=')
                    .map(|(k, _)| k.trim().trim_matches('"'))
                    .filter(|k| {
                        !k.is_empty()
                            && k.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "_-. ".contains(c))
                    })
                    .unwrap_or_default()
                    .to_owned();
                (key, format!(" (line {line})"))
            })
            .unwrap_or_default();
        // serde's messages quote the offending value ("invalid type: string \"...\", expected
        // u64"): keep only what was expected.
        let message = e.message().trim();
        let quotes_a_value =
            message.starts_with("invalid type") || message.starts_with("invalid value");
        let message = match message.split_once(", expected ") {
            Some((_, expected)) if quotes_a_value => format!("invalid value; expected {expected}"),
            _ if quotes_a_value => "invalid value".to_owned(),
            _ => message.to_owned(),
        };
        c.err(&key, format!("{message}{at}"))
    })?;
    let mut s = EnvSettings {
        service_name: doc.service_name,
        panic_hook: doc.panic_hook,
        code_location: doc.code_location,
        span_fields: doc.span_fields,
        redact_keys: doc.redact_keys,
        baggage_keys: doc.baggage_keys,
        resource_attributes: doc.resource.unwrap_or_default().into_iter().collect(),
        ..EnvSettings::default()
    };
    s.stdout = match doc.stdout {
        None => None,
        Some(StdoutSetting::On(on)) => Some(if on {
            super::Console::Stdout
        } else {
            super::Console::Off
        }),
        Some(StdoutSetting::Named(v)) => Some(
            v.parse::<super::Console>()
                .map_err(|e| c.err("stdout", format!("{v:?}; expected {}", e.expected())))?,
        ),
    };
    if let Some(v) = doc.stdout_format {
        s.stdout_format =
            Some(v.parse::<super::ConsoleFormat>().map_err(|e| {
                c.err("stdout_format", format!("{v:?}; expected {}", e.expected()))
            })?);
    }
    if let Some(m) = doc.mode {
        s.mode = Some(
            m.parse::<Mode>()
                .map_err(|e| c.err("mode", format!("{m:?}; expected {}", e.expected())))?,
        );
    }
    if let Some(l) = doc.levels {
        if let Some(v) = l.default {
            s.level = Some(parse_level(&v).ok_or_else(|| {
                c.err(
                    "levels.default",
                    format!("{v:?}; expected one of off, error, warn, info, debug, trace"),
                )
            })?);
        }
        if let Some(v) = l.directives {
            s.directives = Some(super::directives::parse_directives(&v).map_err(|e| {
                c.err(
                    "levels.directives",
                    format!("{e}; expected env_logger syntax"),
                )
            })?);
        }
        s.level_cooldown = c.millis("levels.cooldown_ms", l.cooldown_ms)?;
        for (key, v, slot) in [
            ("levels.otlp", l.otlp, &mut s.sink_levels.otlp),
            ("levels.file", l.file, &mut s.sink_levels.file),
            ("levels.stdout", l.stdout, &mut s.sink_levels.console),
        ] {
            if let Some(v) = v {
                *slot = Some(
                    super::directives::parse_directives(&v)
                        .map_err(|e| c.err(key, format!("{e}; expected env_logger syntax")))?,
                );
            }
        }
    }
    if let Some(o) = doc.otlp {
        if let Some(e) = o.endpoint {
            s.endpoint = Some(("config file key otlp.endpoint", e));
        }
        s.request_timeout = c.millis("otlp.timeout_ms", o.timeout_ms)?;
        if let Some(v) = o.compression {
            s.compression = Some(v.parse::<Compression>().map_err(|e| {
                c.err(
                    "otlp.compression",
                    format!("{v:?}; expected {}", e.expected()),
                )
            })?);
        }
        let pem = |setting, path: Option<PathBuf>| {
            path.map(|path| super::transport::PemFile { setting, path })
        };
        s.transport.certificate = pem("config file key otlp.certificate", o.certificate);
        s.transport.client_certificate = pem(
            "config file key otlp.client_certificate",
            o.client_certificate,
        );
        s.transport.client_key = pem("config file key otlp.client_key", o.client_key);
        s.transport.insecure = o.insecure;
        if let Some(v) = o.protocol {
            s.transport.protocol = Some(v.parse::<super::Protocol>().map_err(|e| {
                c.err("otlp.protocol", format!("{v:?}; expected {}", e.expected()))
            })?);
        }
        if let Some(h) = o.headers {
            for (k, v) in &h {
                if !valid_header(k, v) {
                    return Err(c.err(
                        &format!("otlp.headers.{k}"),
                        "value not shown; expected a lowercase ASCII key and a printable ASCII value",
                    ));
                }
            }
            s.headers = Some(Headers(h.into_iter().collect()));
        }
    }
    if let Some(q) = doc.queue {
        s.max_queue_size = c.count("queue.max_size", q.max_size)?;
        s.max_export_batch_size = c.count("queue.batch_size", q.batch_size)?;
        s.schedule_delay = c.millis("queue.schedule_delay_ms", q.schedule_delay_ms)?;
        s.export_timeout = c.millis("queue.export_timeout_ms", q.export_timeout_ms)?;
        s.high_watermark_percent = c
            .range(
                "queue.high_watermark_percent",
                q.high_watermark_percent,
                1,
                100,
            )?
            .map(|n| n as u8);
        s.shutdown_timeout = c.millis("queue.shutdown_timeout_ms", q.shutdown_timeout_ms)?;
        if let Some(v) = q.full {
            s.queue_full =
                Some(v.parse::<super::QueueFull>().map_err(|e| {
                    c.err("queue.full", format!("{v:?}; expected {}", e.expected()))
                })?);
        }
    }
    if let Some(f) = doc.files {
        s.log_dir = f.dir;
        if let Some(n) = f.name {
            if !super::env::valid_file_name(&n) {
                return Err(c.err("files.name", format!("{n:?}; expected a plain file name")));
            }
            s.file_name = Some(n);
        }
        s.file_max_bytes = c.range("files.max_bytes", f.max_bytes, 1024, 1 << 40)?;
        s.file_backups = c
            .range("files.backups", f.backups, 0, 1000)?
            .map(|n| n as usize);
        if let Some(v) = f.rotate {
            s.file_rotation =
                Some(v.parse::<super::FileRotation>().map_err(|e| {
                    c.err("files.rotate", format!("{v:?}; expected {}", e.expected()))
                })?);
        }
        if let Some(v) = f.compress {
            s.file_compress = Some(v.parse::<Compression>().map_err(|e| {
                c.err(
                    "files.compress",
                    format!("{v:?}; expected {}", e.expected()),
                )
            })?);
        }
        if let Some(v) = f.max_age {
            s.file_max_age = Some(super::env::max_age("LOG_CONFIG", &v).map_err(|_| {
                c.err(
                    "files.max_age",
                    format!("{v:?}; expected a duration of a minute or more, such as \"7d\""),
                )
            })?);
        }
        for (key, v, slot) in [
            ("files.file_mode", f.file_mode, &mut s.file_mode),
            ("files.dir_mode", f.dir_mode, &mut s.dir_mode),
        ] {
            if let Some(v) = v {
                *slot = Some(octal_mode("LOG_CONFIG", &v).map_err(|_| {
                    c.err(key, format!("{v:?}; expected octal permissions such as \"0600\", owner read and write"))
                })?);
            }
        }
        s.spool_max_bytes = c.range("files.spool_max_bytes", f.spool_max_bytes, 1024, 1 << 40)?;
        s.spool_max_delay = c
            .range("files.spool_max_delay_ms", f.spool_max_delay_ms, 1, 60_000)?
            .map(Duration::from_millis);
        if let Some(v) = f.spool_fsync {
            s.spool_fsync = Some(v.parse::<super::SpoolFsync>().map_err(|e| {
                c.err(
                    "files.spool_fsync",
                    format!("{v:?}; expected {}", e.expected()),
                )
            })?);
        }
    }
    #[cfg(feature = "admin")]
    let admin = match doc.admin {
        Some(a) => Some((
            {
                let listen = a.listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN);
                listen.parse().map_err(|e| {
                    c.err(
                        "admin.listen",
                        format!("{listen:?}: {e}; expected an address such as 127.0.0.1:4320"),
                    )
                })?
            },
            super::Secret(a.token),
        )),
        None => None,
    };
    #[cfg(not(feature = "admin"))]
    if doc.admin.is_some() {
        return Err(c.err(
            "admin",
            "the admin server needs the crate's `admin` feature",
        ));
    }
    Ok(FileSettings {
        settings: s,
        #[cfg(feature = "admin")]
        admin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<FileSettings, Error> {
        parse(Path::new("/etc/app/logging.toml"), text)
    }

    #[test]
    fn the_example_file_documents_every_key_and_parses() {
        let text = include_str!("../../examples/otel-log-bridge.toml");
        let f = parse_str(text).unwrap();
        let s = &f.settings;
        assert_eq!(s.service_name.as_deref(), Some("payments"));
        assert_eq!(s.mode, Some(Mode::Failover));
        assert_eq!(s.max_queue_size, Some(16384));
        assert_eq!(s.file_mode, Some(0o600));
        assert!(s.directives.is_some() && s.level.is_some());
        // Every key of the schema appears in the example (uncommented or commented out).
        for key in [
            "service_name",
            "mode",
            "stdout",
            "stdout_format",
            "panic_hook",
            "code_location",
            "span_fields",
            "redact_keys",
            "baggage_keys",
            "[resource]",
            "[levels]",
            "default",
            "directives",
            "cooldown_ms",
            "otlp",
            "file",
            "[otlp]",
            "endpoint",
            "timeout_ms",
            "compression",
            "certificate",
            "protocol",
            "client_certificate",
            "client_key",
            "insecure",
            "[otlp.headers]",
            "[queue]",
            "max_size",
            "batch_size",
            "schedule_delay_ms",
            "export_timeout_ms",
            "high_watermark_percent",
            "shutdown_timeout_ms",
            "[files]",
            "dir",
            "name",
            "max_bytes",
            "backups",
            "file_mode",
            "dir_mode",
            "spool_max_bytes",
            "spool_max_delay_ms",
            "spool_fsync",
            "full",
            "rotate",
            "max_age",
            "compress",
            "[admin]",
            "listen",
            "token",
        ] {
            assert!(text.contains(key), "the example does not document {key}");
        }
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        for (text, key) in [
            ("mode = \"sometimes\"", "mode"),
            ("stdout = \"sideways\"", "stdout"),
            ("stdout_format = \"html\"", "stdout_format"),
            ("[levels]\ndefault = \"LOUD\"", "levels.default"),
            ("[levels]\ndirectives = \"a=b=c\"", "levels.directives"),
            ("[queue]\nmax_size = 0", "queue.max_size"),
            (
                "[queue]\nhigh_watermark_percent = 101",
                "queue.high_watermark_percent",
            ),
            ("[files]\nfile_mode = \"0400\"", "files.file_mode"),
            ("[files]\nspool_fsync = \"often\"", "files.spool_fsync"),
            (
                "[files]\nspool_max_delay_ms = 0",
                "files.spool_max_delay_ms",
            ),
            ("[queue]\nfull = \"block\"", "queue.full"),
            ("[otlp]\ncompression = \"zstd\"", "otlp.compression"),
            ("[otlp]\nprotocol = \"http\"", "otlp.protocol"),
            (
                "[otlp.headers]\n\"Bad Key\" = \"s3cr3t\"",
                "otlp.headers.Bad Key",
            ),
            ("unknown_key = 1", "unknown field"),
            ("[queue]\nmax_size = \"big\"", "max_size"),
            (
                "[otlp]\nheaders = \"authorization=Bearer s3cr3t\"",
                "headers",
            ),
        ] {
            let err = parse_str(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains("/etc/app/logging.toml") && err.contains(key),
                "{text}: {err}"
            );
            assert!(!err.contains("s3cr3t"), "{err}");
        }
    }

    #[test]
    fn stdout_is_a_boolean_or_the_stream() {
        use super::super::{Console, ConsoleFormat};
        for (text, console) in [
            ("stdout = true", Console::Stdout),
            ("stdout = false", Console::Off),
            ("stdout = \"stderr\"", Console::Stderr),
        ] {
            assert_eq!(parse_str(text).unwrap().settings.stdout, Some(console));
        }
        let f = parse_str("stdout_format = \"text\"").unwrap();
        assert_eq!(f.settings.stdout_format, Some(ConsoleFormat::Text));
    }

    #[test]
    fn reading_twice_gives_the_same_settings() {
        let text = include_str!("../../examples/otel-log-bridge.toml");
        assert_eq!(
            parse_str(text).unwrap().settings,
            parse_str(text).unwrap().settings
        );
    }
}
