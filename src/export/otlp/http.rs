//! The OTLP/HTTP transport on reqwest (rustls with ring, as tonic's): one POST per attempt of the
//! request encoded beforehand (protobuf or OTLP JSON), gzip-compressed once on the worker thread
//! when asked; the answer's status is classified by [`retry::classify_http`], its body read in the
//! request's encoding (partial success, `google.rpc.Status`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message as _;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::retry::{self, Retry};
use super::{Attempt, MAX_CONNECT_TIMEOUT};
use crate::Error;
use crate::config::transport::{PemFile, Transport};
use crate::config::{Compression, Config, Protocol};

/// Longest server error text kept for `last_export_error`.
const MAX_ERROR_TEXT: usize = 512;
/// Most bytes of an answer's body read.
const MAX_BODY: usize = 64 * 1024;
/// How long an idle connection is kept for the next batch.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// A client of the collector's `/v1/logs`; cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub(crate) struct HttpSender {
    client: reqwest::Client,
    url: reqwest::Url,
    /// Content type and the configured headers (secrets: never printed).
    headers: HeaderMap,
    json: bool,
    gzip: bool,
}

impl HttpSender {
    pub(crate) fn new(config: &Config) -> Result<Self, Error> {
        let t = &config.transport;
        let url = reqwest::Url::parse(&t.endpoint).map_err(|e| Error::InvalidConfig {
            setting: "endpoint",
            reason: format!("{:?} is not a usable URL: {e}", t.endpoint),
        })?;
        let json = t.protocol == Protocol::HttpJson;
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers.0 {
            let (Ok(key), Ok(value)) = (HeaderName::try_from(k.as_str()), HeaderValue::try_from(v))
            else {
                return Err(Error::InvalidConfig {
                    setting: "headers (OTEL_EXPORTER_OTLP_HEADERS)",
                    reason: format!("header {k:?} (value not shown) is not a valid HTTP header"),
                });
            };
            headers.insert(key, value);
        }
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(if json {
                "application/json"
            } else {
                "application/x-protobuf"
            }),
        );
        let gzip = config.compression == Compression::Gzip;
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let mut builder = reqwest::Client::builder()
            // Proxies come from the configuration only (`config::transport` reads the variables).
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .connect_timeout(config.request_timeout.min(MAX_CONNECT_TIMEOUT))
            .pool_idle_timeout(POOL_IDLE)
            .user_agent(concat!("otel-log-bridge/", env!("CARGO_PKG_VERSION")))
            .tls_backend_preconfigured(tls_config(t)?);
        let no_proxy = t
            .proxies
            .no_proxy
            .as_deref()
            .and_then(reqwest::NoProxy::from_string);
        let proxy = |make: fn(&str) -> reqwest::Result<reqwest::Proxy>,
                     (setting, url): &(&'static str, String)| {
            make(url)
                .map(|p| p.no_proxy(no_proxy.clone()))
                .map_err(|e| Error::InvalidConfig {
                    setting,
                    reason: format!(
                        "{url:?} is not a usable proxy ({e}); expected a proxy URL such as http://proxy.example:3128"
                    ),
                })
        };
        if let Some(p) = &t.proxies.http {
            builder = builder.proxy(proxy(|u| reqwest::Proxy::http(u), p)?);
        }
        if let Some(p) = &t.proxies.https {
            builder = builder.proxy(proxy(|u| reqwest::Proxy::https(u), p)?);
        }
        let client = builder.build().map_err(|e| Error::InvalidConfig {
            setting: "endpoint",
            reason: format!("cannot make an HTTP client for {:?}: {e}", t.endpoint),
        })?;
        Ok(HttpSender {
            client,
            url,
            headers,
            json,
            gzip,
        })
    }

    /// The body to send for an encoded request: compressed if so configured (once, here on the
    /// worker thread, not on every attempt).
    pub(crate) fn body(&self, encoded: Bytes) -> Bytes {
        if !self.gzip {
            return encoded;
        }
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(encoded.len() / 4 + 64),
            flate2::Compression::fast(),
        );
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(&encoded);
        gz.finish().map(Bytes::from).unwrap_or(encoded)
    }

    /// One POST of `body`, bounded by `timeout`.
    pub(crate) async fn attempt(&mut self, body: Bytes, timeout: Duration) -> Attempt {
        let sent = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                // No answer: the request may not have reached the collector.
                let what = if e.is_timeout() {
                    "export attempt timed out"
                } else {
                    "collector not reachable"
                };
                return Attempt::Failed {
                    retry: Retry::Retryable,
                    reason: format!("{what}: {}", error_chain(&e)),
                };
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // The status decides; the body only adds to it (an unreadable one reads as empty: an
        // accepted batch is not sent again because its answer's body broke off).
        let body = read_bounded(response).await;
        if status.is_success() {
            return Attempt::Delivered {
                rejected: rejected(&body, self.json),
            };
        }
        let retry = retry::classify_http(status.as_u16(), retry_after);
        let kind = if retry == Retry::Permanent {
            "permanent error "
        } else {
            ""
        };
        let text = match (status.is_redirection(), location) {
            // Redirects are not followed: they would resend the headers (API keys) elsewhere.
            (true, Some(to)) => format!("redirected to {to:?}; set the endpoint to the final URL"),
            _ => error_text(&body),
        };
        Attempt::Failed {
            retry,
            reason: format!("{kind}HTTP {status}: {text}"),
        }
    }
}

/// The answer's body, up to [`MAX_BODY`] bytes (all it is read for is a count or a message);
/// empty if it cannot be read.
async fn read_bounded(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < MAX_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(_) => return Vec::new(),
        }
    }
    body
}

/// Records the collector refused of a delivered request (partial success), read from the body in
/// the request's encoding; an empty or unreadable body rejected none.
pub(crate) fn rejected(body: &[u8], json: bool) -> u64 {
    if json {
        // Read as a JSON value: the proto3 JSON mapping allows an int64 as a number or a string
        // (collectors send strings), which the typed reader does not take.
        let value = serde_json::from_slice::<serde_json::Value>(body).ok();
        let count = value
            .as_ref()
            .and_then(|v| v.get("partialSuccess"))
            .and_then(|p| p.get("rejectedLogRecords"));
        return match count {
            Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
            Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0),
            _ => 0,
        };
    }
    ExportLogsServiceResponse::decode(body)
        .ok()
        .and_then(|r| r.partial_success)
        .map_or(0, |p| u64::try_from(p.rejected_log_records).unwrap_or(0))
}

/// The server's explanation of a refusal: the message of a `google.rpc.Status` (protobuf or JSON),
/// else the body as text, cut to a bounded length.
pub(crate) fn error_text(body: &[u8]) -> String {
    if body.is_empty() {
        return "(no body)".to_owned();
    }
    let from_json = || {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()?
            .get("message")?
            .as_str()
            .map(str::to_owned)
    };
    // A protobuf Status starts with its code (field 1) or its message (field 2); text does not
    // start with those control bytes.
    let from_protobuf = || {
        matches!(body[0], 0x08 | 0x12)
            .then(|| tonic_types::Status::decode(body).ok())
            .flatten()
            .map(|s| s.message)
            .filter(|m| !m.is_empty())
    };
    let text = from_json()
        .or_else(from_protobuf)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// `e` and its sources, joined by ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The TLS settings of the client: the system's roots plus the configured CA, and the client's
/// identity for mutual TLS; HTTP/2 or HTTP/1.1 as the server prefers.
fn tls_config(t: &Transport) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore::empty();
    // Roots the platform cannot parse are skipped, as tonic's native roots do.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = &t.certificate {
        for cert in certificates(ca)? {
            roots
                .add(cert)
                .map_err(|e| invalid_pem(ca, &e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidConfig {
            setting: "endpoint",
            reason: format!("TLS: {e}"),
        })?
        .with_root_certificates(roots);
    let mut config = match &t.identity {
        Some((cert, key)) => {
            let chain = certificates(cert)?;
            let key_bytes = key.read()?;
            let private = PrivateKeyDer::from_pem_slice(&key_bytes)
                .map_err(|e| invalid_pem(key, &format!("no private key in it ({e})")))?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| invalid_pem(cert, &format!("unusable with its key ({e})")))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn certificates(file: &PemFile) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bytes = file.read()?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid_pem(file, &e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid_pem(file, "no certificate in it"));
    }
    Ok(certs)
}

fn invalid_pem(file: &PemFile, why: &str) -> Error {
    Error::InvalidConfig {
        setting: file.setting,
        reason: format!("{}: {why}; expected a PEM file", file.path.display()),
    }
}

#[cfg(test)]
mod tests;
