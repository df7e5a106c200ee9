//! How records reach the collector: the protocol, the endpoint as the specification resolves it for
//! that protocol, the TLS files (CA, client certificate and key) and the proxies. Read from the
//! environment through the lookup [`env`](super::env) hands in, from the file and from the builder.

use std::path::PathBuf;

use crate::Error;
use crate::config::enums::Protocol;

/// Protocol of the logs exporter; wins over [`OTEL_EXPORTER_OTLP_PROTOCOL`].
pub const OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL";
/// Protocol of every exporter: `grpc`, `http/protobuf` or `http/json`.
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// Default endpoint over gRPC.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Default endpoint over HTTP (the full URL of the logs path).
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/logs";
/// The path appended to [`OTEL_EXPORTER_OTLP_ENDPOINT`](super::env::OTEL_EXPORTER_OTLP_ENDPOINT)
/// over HTTP.
pub const HTTP_LOGS_PATH: &str = "v1/logs";
/// PEM file of the client's certificate (mutual TLS); wins over
/// [`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`].
pub const OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE: &str =
    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE";
/// PEM file of the client's certificate, all signals.
pub const OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
/// PEM file of the client's private key (mutual TLS); wins over [`OTEL_EXPORTER_OTLP_CLIENT_KEY`].
pub const OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY";
/// PEM file of the client's private key, all signals.
pub const OTEL_EXPORTER_OTLP_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";
/// PEM file of the CA that signs the collector's certificate; wins over
/// [`OTEL_EXPORTER_OTLP_CERTIFICATE`].
pub const OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE";
/// PEM file of the CA, all signals.
pub const OTEL_EXPORTER_OTLP_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
/// gRPC only, for an endpoint without a scheme: `true` connects in plaintext, `false` (default)
/// with TLS. Wins over [`OTEL_EXPORTER_OTLP_INSECURE`].
pub const OTEL_EXPORTER_OTLP_LOGS_INSECURE: &str = "OTEL_EXPORTER_OTLP_LOGS_INSECURE";
/// As [`OTEL_EXPORTER_OTLP_LOGS_INSECURE`], all signals.
pub const OTEL_EXPORTER_OTLP_INSECURE: &str = "OTEL_EXPORTER_OTLP_INSECURE";
/// Proxy for `https://` endpoints over HTTP (also `https_proxy`, which wins, as in curl).
pub const HTTPS_PROXY: &str = "HTTPS_PROXY";
/// Proxy for `http://` endpoints over HTTP (also `http_proxy`, which wins, as in curl).
pub const HTTP_PROXY: &str = "HTTP_PROXY";
/// Hosts reached without a proxy: comma-separated names, domains (`.example.com`), IP addresses or
/// CIDR ranges, or `*` (also `no_proxy`, which wins).
pub const NO_PROXY: &str = "NO_PROXY";
/// `true`: `try_init` installs nothing and every `log` call costs one level check.
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";

/// A PEM file named by a setting: read at start, and an unreadable one is an error naming both.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PemFile {
    /// The setting the path came from (variable, builder method or file key).
    pub setting: &'static str,
    pub path: PathBuf,
}

impl PemFile {
    /// The file's bytes; an error names the setting, the path and what is expected.
    pub(crate) fn read(&self) -> Result<Vec<u8>, Error> {
        let bytes = std::fs::read(&self.path).map_err(|e| Error::InvalidConfig {
            setting: self.setting,
            reason: format!(
                "cannot read {}: {e}; expected a PEM file",
                self.path.display()
            ),
        })?;
        if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            return Err(Error::InvalidConfig {
                setting: self.setting,
                reason: format!(
                    "{} holds no PEM block; expected a PEM file (-----BEGIN ...)",
                    self.path.display()
                ),
            });
        }
        Ok(bytes)
    }
}

/// The proxies of the HTTP transport (gRPC connects directly), each with the setting it came from:
/// a proxy URL is checked when the HTTP client is made, so a bad one does not stop a gRPC exporter.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Proxies {
    pub http: Option<(&'static str, String)>,
    pub https: Option<(&'static str, String)>,
    pub no_proxy: Option<String>,
}

/// Transport settings as one source (environment, file) gives them; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TransportSettings {
    pub protocol: Option<Protocol>,
    pub certificate: Option<PemFile>,
    pub client_certificate: Option<PemFile>,
    pub client_key: Option<PemFile>,
    pub insecure: Option<bool>,
    pub proxies: Proxies,
    pub sdk_disabled: Option<bool>,
}

impl TransportSettings {
    /// These settings, with `lower`'s where these have none.
    pub(crate) fn or(self, lower: TransportSettings) -> TransportSettings {
        TransportSettings {
            protocol: self.protocol.or(lower.protocol),
            certificate: self.certificate.or(lower.certificate),
            client_certificate: self.client_certificate.or(lower.client_certificate),
            client_key: self.client_key.or(lower.client_key),
            insecure: self.insecure.or(lower.insecure),
            proxies: Proxies {
                http: self.proxies.http.or(lower.proxies.http),
                https: self.proxies.https.or(lower.proxies.https),
                no_proxy: self.proxies.no_proxy.or(lower.proxies.no_proxy),
            },
            sdk_disabled: self.sdk_disabled.or(lower.sdk_disabled),
        }
    }

    /// Reads the variables through `get` (empty values already count as unset). The two booleans
    /// are the specification's: `true` in any case is true, anything else false (with a warning on
    /// stderr when it is not `false`).
    pub(crate) fn from_lookup(
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TransportSettings, Error> {
        let first =
            |vars: [&'static str; 2]| vars.into_iter().find_map(|var| get(var).map(|v| (var, v)));
        let protocol = match first([
            OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
            OTEL_EXPORTER_OTLP_PROTOCOL,
        ]) {
            Some((var, v)) => Some(v.parse::<Protocol>().map_err(|e| Error::InvalidEnv {
                var,
                value: v.clone(),
                expected: e.expected(),
            })?),
            None => None,
        };
        let pem = |vars| {
            first(vars).map(|(setting, v)| PemFile {
                setting,
                path: v.into(),
            })
        };
        let insecure = first([
            OTEL_EXPORTER_OTLP_LOGS_INSECURE,
            OTEL_EXPORTER_OTLP_INSECURE,
        ])
        .map(|(var, v)| otel_boolean(var, &v));
        let proxy =
            |vars: [&'static str; 2]| first(vars).map(|(var, v)| (var, v.trim().to_owned()));
        // Under CGI, HTTP_PROXY can be a request's `Proxy:` header ("httpoxy"): not taken then.
        let http_proxy = if get("REQUEST_METHOD").is_some() {
            get("http_proxy").map(|v| ("http_proxy", v.trim().to_owned()))
        } else {
            proxy(["http_proxy", HTTP_PROXY])
        };
        let sdk_disabled = get(OTEL_SDK_DISABLED).map(|v| otel_boolean(OTEL_SDK_DISABLED, &v));
        Ok(TransportSettings {
            protocol,
            certificate: pem([
                OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE,
                OTEL_EXPORTER_OTLP_CERTIFICATE,
            ]),
            client_certificate: pem([
                OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE,
                OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
            ]),
            client_key: pem([
                OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY,
                OTEL_EXPORTER_OTLP_CLIENT_KEY,
            ]),
            insecure,
            proxies: Proxies {
                http: http_proxy,
                https: proxy(["https_proxy", HTTPS_PROXY]),
                no_proxy: first(["no_proxy", NO_PROXY]).map(|(_, v)| v),
            },
            sdk_disabled,
        })
    }
}

/// A boolean as the OpenTelemetry specification reads one: `true` in any case is true; anything
/// else is false, and a value other than `false` is warned about on stderr.
fn otel_boolean(var: &str, value: &str) -> bool {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        return true;
    }
    if !value.eq_ignore_ascii_case("false") {
        eprintln!("otel-log-bridge: warning: {var}={value:?} is not true or false; read as false");
    }
    false
}

/// The resolved transport of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Transport {
    pub protocol: Protocol,
    /// The URL requests go to: for gRPC the server's, for HTTP the full URL of the logs path.
    pub endpoint: String,
    /// CA of the collector's certificate; the system's roots when `None`.
    pub certificate: Option<PemFile>,
    /// Client certificate and key for mutual TLS.
    pub identity: Option<(PemFile, PemFile)>,
    pub proxies: Proxies,
    /// `OTEL_SDK_DISABLED=true`: `try_init` installs nothing.
    pub sdk_disabled: bool,
}

/// Where an endpoint came from, which decides how it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndpointKind {
    /// The logs endpoint (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, the builder, the file): used as is.
    Logs,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: a base URL, to which HTTP appends `v1/logs`.
    Base,
}

/// The endpoint for `protocol` per the OTLP exporter specification: a base endpoint gets
/// `/v1/logs` over HTTP; a gRPC endpoint without a scheme is `https://` unless `insecure`. `None`
/// gives the protocol's default. Errors name `setting` and the value.
pub(crate) fn resolve_endpoint(
    protocol: Protocol,
    given: Option<(&'static str, EndpointKind, String)>,
    insecure: bool,
) -> Result<String, Error> {
    let Some((setting, kind, raw)) = given else {
        return Ok(match protocol {
            Protocol::Grpc => DEFAULT_GRPC_ENDPOINT,
            Protocol::HttpProtobuf | Protocol::HttpJson => DEFAULT_HTTP_ENDPOINT,
        }
        .to_owned());
    };
    let raw = raw.trim();
    let has_scheme = raw.starts_with("http://") || raw.starts_with("https://");
    let endpoint = match protocol {
        Protocol::Grpc if !has_scheme && !raw.contains("://") => {
            let scheme = if insecure { "http" } else { "https" };
            format!("{scheme}://{raw}")
        }
        Protocol::Grpc => raw.to_owned(),
        Protocol::HttpProtobuf | Protocol::HttpJson => match kind {
            EndpointKind::Logs => raw.to_owned(),
            EndpointKind::Base if raw.ends_with('/') => format!("{raw}{HTTP_LOGS_PATH}"),
            EndpointKind::Base => format!("{raw}/{HTTP_LOGS_PATH}"),
        },
    };
    validate_endpoint(protocol, setting, &endpoint)?;
    Ok(endpoint)
}

fn validate_endpoint(
    protocol: Protocol,
    setting: &'static str,
    endpoint: &str,
) -> Result<(), Error> {
    let expected = match protocol {
        Protocol::Grpc => "expected http://host:port or https://host:port",
        Protocol::HttpProtobuf | Protocol::HttpJson => {
            "expected http://host:port/path or https://host:port/path"
        }
    };
    let invalid = |reason: &str| Error::InvalidConfig {
        setting,
        reason: format!("{endpoint:?} {reason}; {expected}"),
    };
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .ok_or_else(|| invalid("has no http:// or https:// scheme"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.starts_with(':') {
        return Err(invalid("has no host"));
    }
    endpoint
        .parse::<tonic::transport::Uri>()
        .map_err(|e| invalid(&format!("is not a valid URI ({e})")))?;
    reqwest::Url::parse(endpoint).map_err(|e| invalid(&format!("is not a valid URL ({e})")))?;
    Ok(())
}

/// Both halves of a client identity or neither: one without the other is an error naming it.
pub(crate) fn identity(
    certificate: Option<PemFile>,
    key: Option<PemFile>,
) -> Result<Option<(PemFile, PemFile)>, Error> {
    match (certificate, key) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        (Some(c), None) => Err(Error::InvalidConfig {
            setting: c.setting,
            reason: format!(
                "{} is a client certificate without a key; expected OTEL_EXPORTER_OTLP_CLIENT_KEY (or the builder's client_key) as well",
                c.path.display()
            ),
        }),
        (None, Some(k)) => Err(Error::InvalidConfig {
            setting: k.setting,
            reason: format!(
                "{} is a client key without a certificate; expected OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE (or the builder's client_certificate) as well",
                k.path.display()
            ),
        }),
    }
}

#[cfg(test)]
mod tests;
