//! [`Builder`]: settings given in code, merged over the environment and the configuration file
//! into a validated [`Config`].

use std::path::PathBuf;
use std::time::Duration;

use super::transport::EndpointKind;
use super::*;
use crate::Error;

/// Configures and starts a pipeline; every setting overrides its environment variable.
///
/// ```no_run
/// # fn main() -> Result<(), otel_log_bridge::Error> {
/// let guard = otel_log_bridge::builder()
///     .service_name("payments")
///     .endpoint("http://collector:4317")
///     .level(log::LevelFilter::Debug)
///     .try_init()?;
/// log::info!(amount = 150.0; "Transaction processed");
/// drop(guard); // bounded flush and shutdown
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Builder {
    read_env: Option<bool>,
    service_name: Option<String>,
    resource_attributes: Vec<(String, String)>,
    endpoint: Option<String>,
    headers: Headers,
    compression: Option<Compression>,
    certificate: Option<PathBuf>,
    protocol: Option<Protocol>,
    client_certificate: Option<PathBuf>,
    client_key: Option<PathBuf>,
    proxy: Option<String>,
    no_proxy: Option<String>,
    request_timeout: Option<Duration>,
    max_queue_size: Option<usize>,
    max_export_batch_size: Option<usize>,
    schedule_delay: Option<Duration>,
    export_timeout: Option<Duration>,
    level: Option<log::LevelFilter>,
    high_watermark_percent: Option<u8>,
    shutdown_timeout: Option<Duration>,
    mode: Option<Mode>,
    log_dir: Option<PathBuf>,
    file_name: Option<String>,
    file_max_bytes: Option<u64>,
    file_backups: Option<usize>,
    file_rotation: Option<super::FileRotation>,
    file_max_age: Option<Duration>,
    file_compression: Option<super::Compression>,
    file_mode: Option<u32>,
    dir_mode: Option<u32>,
    stdout: Option<super::Console>,
    stdout_format: Option<super::ConsoleFormat>,
    spool_max_bytes: Option<u64>,
    spool_max_delay: Option<Duration>,
    spool_fsync: Option<super::SpoolFsync>,
    queue_full: Option<super::QueueFull>,
    directives: Option<String>,
    /// The outputs' own thresholds (OTLP, file, console), as given.
    sink_levels: [Option<String>; 3],
    level_cooldown: Option<Duration>,
    panic_hook: Option<bool>,
    code_location: Option<bool>,
    span_fields: Option<bool>,
    redact_keys: Option<Vec<String>>,
    baggage_keys: Option<Vec<String>>,
    config_file: Option<PathBuf>,
    #[cfg(feature = "admin")]
    pub(crate) admin: Option<(std::net::SocketAddr, Secret)>,
}

mod outputs;

impl Builder {
    /// A builder reading the environment for every setting left unset (see the README's table).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to read the environment at all (default `true`). With `false` only the builder's
    /// settings and the defaults apply: useful for tests and for programs that configure in code.
    pub fn read_env(mut self, yes: bool) -> Self {
        self.read_env = Some(yes);
        self
    }

    /// `service.name` of the resource (`OTEL_SERVICE_NAME`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Takes the attributes of the resource a service already built for its tracer provider, so
    /// that its traces and logs describe the same service: its `service.name` (unless
    /// [`service_name`](Self::service_name) sets one) and every other attribute, as
    /// [`resource_attribute`](Self::resource_attribute) would add it (values as text). Feature `sdk`.
    #[cfg(feature = "sdk")]
    pub fn resource(mut self, resource: &opentelemetry_sdk::Resource) -> Self {
        for (key, value) in resource.iter() {
            if key.as_str() == "service.name" {
                if self.service_name.is_none() {
                    self.service_name = Some(value.as_str().into_owned());
                }
                continue;
            }
            self.resource_attributes
                .push((key.as_str().to_owned(), value.as_str().into_owned()));
        }
        self
    }

    /// Adds a resource attribute; added after `OTEL_RESOURCE_ATTRIBUTES`, so it wins on a equal key.
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.resource_attributes.push((key.into(), value.into()));
        self
    }

    /// The transport and encoding (`OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`; default [`Protocol::Grpc`]).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// The collector endpoint, used as is (as `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`): for gRPC
    /// `http(s)://host:port`, for HTTP the full URL, e.g. `https://otlp.example/v1/logs`. Without it,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL to which HTTP appends `/v1/logs`; the defaults are
    /// `http://localhost:4317` (gRPC) and `http://localhost:4318/v1/logs` (HTTP).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Adds a header to every export request (after `OTEL_EXPORTER_OTLP_HEADERS`, replacing an equal
    /// key), e.g. `("authorization", "Bearer ...")`. Keys are lowercase ASCII; values are never
    /// written to files or diagnostics.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.0.push((key.into(), value.into()));
        self
    }

    /// Compression of export requests (`OTEL_EXPORTER_OTLP_COMPRESSION`, default none).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// PEM file of the CA that signs the collector's certificate, for `https://` endpoints
    /// (`OTEL_EXPORTER_OTLP_CERTIFICATE`); without it the system's roots are used.
    pub fn certificate(mut self, pem_path: impl Into<PathBuf>) -> Self {
        self.certificate = Some(pem_path.into());
        self
    }

    /// PEM file of this client's certificate, for collectors that require mutual TLS
    /// (`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`); needs [`client_key`](Self::client_key) too.
    pub fn client_certificate(mut self, pem_path: impl Into<PathBuf>) -> Self {
        self.client_certificate = Some(pem_path.into());
        self
    }

    /// PEM file of this client's private key (`OTEL_EXPORTER_OTLP_CLIENT_KEY`).
    pub fn client_key(mut self, pem_path: impl Into<PathBuf>) -> Self {
        self.client_key = Some(pem_path.into());
        self
    }

    /// Sends OTLP/HTTP requests through this proxy, e.g. `http://proxy.internal:3128`, instead of
    /// `HTTPS_PROXY` / `HTTP_PROXY`; hosts in `NO_PROXY` are still reached directly. gRPC always
    /// connects directly.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(url.into());
        self
    }

    /// Hosts OTLP/HTTP reaches without the proxy, instead of `NO_PROXY`: comma-separated names,
    /// domains (`.example.com`), IP addresses or CIDR ranges, or `*`.
    pub fn no_proxy(mut self, hosts: impl Into<String>) -> Self {
        self.no_proxy = Some(hosts.into());
        self
    }

    /// Timeout of one export request (`OTEL_EXPORTER_OTLP_TIMEOUT`).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Queue capacity in records (`OTEL_BLRP_MAX_QUEUE_SIZE`).
    pub fn max_queue_size(mut self, records: usize) -> Self {
        self.max_queue_size = Some(records);
        self
    }

    /// Records per export batch (`OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`); at most the queue size.
    pub fn max_export_batch_size(mut self, records: usize) -> Self {
        self.max_export_batch_size = Some(records);
        self
    }

    /// Longest wait before a partial batch is exported (`OTEL_BLRP_SCHEDULE_DELAY`).
    pub fn schedule_delay(mut self, delay: Duration) -> Self {
        self.schedule_delay = Some(delay);
        self
    }

    /// Bound on one batch's export including retries (`OTEL_BLRP_EXPORT_TIMEOUT`).
    pub fn export_timeout(mut self, timeout: Duration) -> Self {
        self.export_timeout = Some(timeout);
        self
    }

    /// The most verbose level kept (`LOG_LEVEL`).
    pub fn level(mut self, level: log::LevelFilter) -> Self {
        self.level = Some(level);
        self
    }

    /// Queue fill, in percent (1 to 100), above which TRACE/DEBUG/INFO records are shed while WARN
    /// and ERROR still enter (`LOG_QUEUE_HIGH_WATERMARK`).
    pub fn high_watermark_percent(mut self, percent: u8) -> Self {
        self.high_watermark_percent = Some(percent);
        self
    }

    /// Bound on the flush when the guard is dropped and on `log::logger().flush()`
    /// (`LOG_SHUTDOWN_TIMEOUT`).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Where records go (`LOG_MODE`); see [`Mode`].
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Per-target directives in `env_logger` syntax (`RUST_LOG`), e.g.
    /// `"info,my_crate::db=debug,hyper=off"`. A bare level in them is the default level unless
    /// [`Builder::level`] or `LOG_LEVEL` sets it.
    pub fn directives(mut self, spec: impl Into<String>) -> Self {
        self.directives = Some(spec.into());
        self
    }

    /// Least time between two runtime level changes (`LOG_LEVEL_COOLDOWN`, default 5 s).
    pub fn level_change_cooldown(mut self, cooldown: Duration) -> Self {
        self.level_cooldown = Some(cooldown);
        self
    }

    /// Records every panic as a FATAL record (severity 21) with its message, location, thread and
    /// (when `RUST_BACKTRACE` enables it) backtrace, waits up to 2 s for it to be exported or spooled,
    /// then runs the panic hook installed before (`LOG_PANIC_HOOK`, default off).
    pub fn panic_hook(mut self, on: bool) -> Self {
        self.panic_hook = Some(on);
        self
    }

    /// Keeps each record's code location: its file, line and module, exported and written to JSON
    /// lines as `code.file.path`, `code.line.number` and `code.function.name` (`LOG_CODE_LOCATION`,
    /// default on). Off, records are smaller in the queue, on the wire and in files, and a
    /// collector spends less decoding them.
    pub fn code_location(mut self, on: bool) -> Self {
        self.code_location = Some(on);
        self
    }

    /// Adds the fields of the current `tracing` span and of its parents to each event the
    /// `tracing` layer (`Builder::build_layer`, cargo feature `tracing`) captures (`LOG_SPAN_FIELDS`, default off). The event's
    /// own fields win over a span's, an inner span's over an outer one's.
    pub fn span_fields(mut self, on: bool) -> Self {
        self.span_fields = Some(on);
        self
    }

    /// Serves the admin gRPC API (`proto/admin.proto`: SetLevel, GetLevels, GetStats) on `listen`
    /// (use `127.0.0.1:PORT`; port 0 picks a free one, see `Guard::admin_addr`), requiring the header
    /// `authorization: Bearer <token>` on every call. Feature `admin`.
    #[cfg(feature = "admin")]
    pub fn admin_server(mut self, listen: std::net::SocketAddr, token: impl Into<String>) -> Self {
        self.admin = Some((listen, Secret(token.into())));
        self
    }

    /// Words that mark an attribute key as secret (case-insensitive substring): its value becomes
    /// `[REDACTED]` before export, spool, files and stdout (`LOG_REDACT_KEYS`; default
    /// [`DEFAULT_REDACT_KEYS`](crate::DEFAULT_REDACT_KEYS); an empty list turns it off).
    pub fn redact_keys<S: Into<String>>(mut self, words: impl IntoIterator<Item = S>) -> Self {
        self.redact_keys = Some(words.into_iter().map(Into::into).collect());
        self
    }

    /// Keys of the active OpenTelemetry Baggage (`opentelemetry::Context::current()`, read when a
    /// record is logged, like the span) copied into each record as string attributes, never over
    /// the record's own key-values; `"*"` copies every entry (`LOG_BAGGAGE_KEYS`, default none).
    pub fn baggage_keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.baggage_keys = Some(keys.into_iter().map(Into::into).collect());
        self
    }

    /// Reads settings from a TOML file (overriding `LOG_CONFIG`): they apply where neither code nor
    /// the environment set a value. See `examples/otel-log-bridge.toml` for every key.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Resolves the settings: builder, then environment, then defaults; validated.
    pub(crate) fn config(&self) -> Result<Config, Error> {
        let read_env = self.read_env.unwrap_or(true);
        let env = if read_env {
            env::from_process()?
        } else {
            env::EnvSettings::default()
        };
        let path = self.config_file.clone().or_else(|| {
            read_env
                .then(|| std::env::var_os(file::LOG_CONFIG))
                .flatten()
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        });
        match path {
            Some(path) => {
                let from_file = file::load(&path)?;
                #[cfg(feature = "admin")]
                if self.admin.is_none() && from_file.admin.is_some() {
                    let mut with_admin = self.clone();
                    with_admin.admin = from_file.admin;
                    return with_admin.config_with(env.or(from_file.settings));
                }
                self.config_with(env.or(from_file.settings))
            }
            None => self.config_with(env),
        }
    }

    pub(crate) fn config_with(&self, env: env::EnvSettings) -> Result<Config, Error> {
        let mut resource_attributes = env.resource_attributes;
        resource_attributes.extend(self.resource_attributes.iter().cloned());
        let service_name = self
            .service_name
            .clone()
            .or(env.service_name)
            .or_else(|| {
                resource_attributes
                    .iter()
                    .rev()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(env::default_service_name);
        let ts = env.transport;
        let protocol = self.protocol.or(ts.protocol).unwrap_or_default();
        let given = match (&self.endpoint, env.endpoint) {
            (Some(e), _) => Some(("Builder::endpoint", EndpointKind::Logs, e.clone())),
            (None, Some((var, e))) if var == env::OTEL_EXPORTER_OTLP_ENDPOINT => {
                Some((var, EndpointKind::Base, e))
            }
            (None, Some((var, e))) => Some((var, EndpointKind::Logs, e)),
            (None, None) => None,
        };
        let pem = |setting, path: &Option<PathBuf>| {
            path.clone()
                .map(|path| transport::PemFile { setting, path })
        };
        let code_proxy = self.proxy.clone().map(|url| ("Builder::proxy", url));
        let transport = transport::Transport {
            protocol,
            endpoint: transport::resolve_endpoint(protocol, given, ts.insecure.unwrap_or(false))?,
            certificate: pem("Builder::certificate", &self.certificate).or(ts.certificate),
            identity: transport::identity(
                pem("Builder::client_certificate", &self.client_certificate)
                    .or(ts.client_certificate),
                pem("Builder::client_key", &self.client_key).or(ts.client_key),
            )?,
            proxies: transport::Proxies {
                http: code_proxy.clone().or(ts.proxies.http),
                https: code_proxy.or(ts.proxies.https),
                no_proxy: self.no_proxy.clone().or(ts.proxies.no_proxy),
            },
            sdk_disabled: ts.sdk_disabled.unwrap_or(false),
        };
        let directives = match &self.directives {
            Some(spec) => {
                directives::parse_directives(spec).map_err(|reason| Error::InvalidConfig {
                    setting: "Builder::directives",
                    reason: format!(
                        "{reason}; expected env_logger syntax such as info,my_crate::db=debug"
                    ),
                })?
            }
            None => env.directives.unwrap_or_default(),
        };
        let mut sink_levels = env.sink_levels;
        for (spec, slot, setting) in [
            (
                &self.sink_levels[0],
                &mut sink_levels.otlp,
                "Builder::otlp_level",
            ),
            (
                &self.sink_levels[1],
                &mut sink_levels.file,
                "Builder::file_level",
            ),
            (
                &self.sink_levels[2],
                &mut sink_levels.console,
                "Builder::stdout_level",
            ),
        ] {
            if let Some(spec) = spec {
                *slot = Some(directives::parse_directives(spec).map_err(|reason| {
                    Error::InvalidConfig {
                        setting,
                        reason: format!(
                            "{reason}; expected env_logger syntax such as warn,my_crate::db=debug"
                        ),
                    }
                })?);
            }
        }
        let bare_level = env::bare_level(&directives);
        // Code's own directives outrank the environment; the environment's bare level is already
        // ranked by `EnvSettings::or` when a file is read.
        let (builder_bare, env_bare) = if self.directives.is_some() {
            (bare_level, None)
        } else {
            (None, bare_level)
        };
        let directives: Vec<_> = directives
            .into_iter()
            .filter(|d| d.target.is_some())
            .collect();
        let mut headers = env.headers.unwrap_or_default().0;
        for (k, v) in &self.headers.0 {
            if !valid_header(k, v) {
                return Err(Error::InvalidConfig {
                    setting: "Builder::header",
                    reason: format!(
                        "header {k:?} (value not shown); expected a lowercase ASCII key and a printable ASCII value"
                    ),
                });
            }
            headers.retain(|(ek, _)| ek != k);
            headers.push((k.clone(), v.clone()));
        }
        let mode = self.mode.or(env.mode).unwrap_or_default();
        let config = Config {
            service_name,
            resource_attributes,
            transport,
            headers: Headers(headers),
            compression: self.compression.or(env.compression).unwrap_or_default(),
            request_timeout: self
                .request_timeout
                .or(env.request_timeout)
                .unwrap_or(env::DEFAULT_REQUEST_TIMEOUT),
            max_queue_size: self
                .max_queue_size
                .or(env.max_queue_size)
                .unwrap_or(env::DEFAULT_MAX_QUEUE_SIZE),
            max_export_batch_size: self
                .max_export_batch_size
                .or(env.max_export_batch_size)
                .unwrap_or(env::DEFAULT_MAX_EXPORT_BATCH_SIZE),
            schedule_delay: self
                .schedule_delay
                .or(env.schedule_delay)
                .unwrap_or(env::DEFAULT_SCHEDULE_DELAY),
            export_timeout: self
                .export_timeout
                .or(env.export_timeout)
                .unwrap_or(env::DEFAULT_EXPORT_TIMEOUT),
            level: self
                .level
                .or(builder_bare)
                .or(env.level)
                .or(env_bare)
                .unwrap_or(env::DEFAULT_LEVEL),
            high_watermark_percent: self
                .high_watermark_percent
                .or(env.high_watermark_percent)
                .unwrap_or(env::DEFAULT_HIGH_WATERMARK_PERCENT),
            shutdown_timeout: self
                .shutdown_timeout
                .or(env.shutdown_timeout)
                .unwrap_or(env::DEFAULT_SHUTDOWN_TIMEOUT),
            mode,
            queue_full: self.queue_full.or(env.queue_full).unwrap_or_default(),
            files: FileConfig {
                dir: self
                    .log_dir
                    .clone()
                    .or(env.log_dir)
                    .unwrap_or_else(|| PathBuf::from(env::DEFAULT_LOG_DIR)),
                name: self
                    .file_name
                    .clone()
                    .or(env.file_name)
                    .unwrap_or_else(|| env::DEFAULT_FILE_NAME.to_owned()),
                max_bytes: self
                    .file_max_bytes
                    .or(env.file_max_bytes)
                    .unwrap_or(env::DEFAULT_FILE_MAX_BYTES),
                backups: self
                    .file_backups
                    .or(env.file_backups)
                    .unwrap_or(env::DEFAULT_FILE_BACKUPS),
                rotation: self.file_rotation.or(env.file_rotation).unwrap_or_default(),
                max_age: self.file_max_age.or(env.file_max_age),
                compress: self
                    .file_compression
                    .or(env.file_compress)
                    .unwrap_or_default(),
                file_mode: self
                    .file_mode
                    .or(env.file_mode)
                    .unwrap_or(env::DEFAULT_FILE_MODE),
                dir_mode: self
                    .dir_mode
                    .or(env.dir_mode)
                    .unwrap_or(env::DEFAULT_DIR_MODE),
                spool_max_bytes: self
                    .spool_max_bytes
                    .or(env.spool_max_bytes)
                    .unwrap_or(env::DEFAULT_SPOOL_MAX_BYTES),
                spool_max_delay: self.spool_max_delay.or(env.spool_max_delay).unwrap_or(
                    if mode == Mode::Durable {
                        env::DEFAULT_DURABLE_MAX_DELAY
                    } else {
                        env::DEFAULT_SPOOL_MAX_DELAY
                    },
                ),
                spool_fsync: self
                    .spool_fsync
                    .or(env.spool_fsync)
                    .unwrap_or(super::SpoolFsync::default_for(mode == Mode::Durable)),
            },
            stdout: self.stdout.or(env.stdout).unwrap_or_default(),
            stdout_format: self.stdout_format.or(env.stdout_format).unwrap_or_default(),
            no_color: env.no_color.unwrap_or(false),
            directives,
            sink_levels,
            level_cooldown: self
                .level_cooldown
                .or(env.level_cooldown)
                .unwrap_or(env::DEFAULT_LEVEL_COOLDOWN),
            panic_hook: self.panic_hook.or(env.panic_hook).unwrap_or(false),
            code_location: self.code_location.or(env.code_location).unwrap_or(true),
            span_fields: self.span_fields.or(env.span_fields).unwrap_or(false),
            redact_keys: self
                .redact_keys
                .clone()
                .or(env.redact_keys)
                .unwrap_or_else(|| {
                    crate::redact::DEFAULT_REDACT_KEYS
                        .iter()
                        .map(|w| (*w).to_owned())
                        .collect()
                }),
            baggage_keys: self
                .baggage_keys
                .clone()
                .or(env.baggage_keys)
                .unwrap_or_default(),
            #[cfg(feature = "admin")]
            admin: self.admin.clone(),
        };
        config.validate()?;
        #[cfg(feature = "admin")]
        if let Some((_, token)) = &config.admin
            && token.0.trim().len() < 16
        {
            return Err(Error::InvalidConfig {
                setting: "Builder::admin_server",
                reason: "the token is shorter than 16 characters (not shown); expected a long random secret".to_owned(),
            });
        }
        Ok(config)
    }
}
