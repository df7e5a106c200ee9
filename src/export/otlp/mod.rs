//! OTLP exporter: gRPC on tonic ([`grpc`]) or HTTP on reqwest ([`http`]), sending requests built
//! from `opentelemetry-proto`'s messages.
//!
//! It owns a tokio runtime with one I/O thread of its own, so it never needs, touches or blocks the
//! host program's runtime (there may be none), and connections keep answering (HTTP/2 pings,
//! GOAWAY) between batches. A batch is converted and encoded on the worker thread ([`prepare`]),
//! then sent on the I/O thread ([`send`]) while the worker goes on with the next batch; [`wait`]
//! collects the outcome. One batch is one request, retried with exponential backoff and jitter
//! (or after the server's `RetryInfo` / `Retry-After`) on the retryable answers until the batch's
//! deadline; a retry resends the same encoded bytes.
//!
//! [`prepare`]: OtlpExporter::prepare
//! [`send`]: OtlpExporter::send
//! [`wait`]: OtlpExporter::wait

pub(crate) mod convert;
mod grpc;
mod http;
pub(crate) mod retry;
mod wire;

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::Error;
use crate::config::{Config, Protocol};
use crate::export::ExportOutcome;
use crate::record::Record;
use crate::redact::Redactor;
use crate::stats::Counters;
use retry::{Jitter, Retry};

const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often `idle` is called while an export waits.
const IDLE_TICK: Duration = Duration::from_millis(5);

/// What one attempt to send a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Acknowledged; `rejected` records were refused (partial success).
    Delivered { rejected: u64 },
    /// Not acknowledged: how to go on, and why (for `last_export_error`).
    Failed { retry: Retry, reason: String },
}

/// The transport of one exporter; cheap to clone into each export's task.
#[derive(Clone)]
enum Sender {
    Grpc(grpc::GrpcSender),
    Http(http::HttpSender),
}

impl Sender {
    async fn attempt(&mut self, request: Bytes, timeout: Duration) -> Attempt {
        match self {
            Sender::Grpc(s) => s.attempt(request, timeout).await,
            Sender::Http(s) => s.attempt(request, timeout).await,
        }
    }
}

pub(crate) struct OtlpExporter {
    /// Taken only in drop, and shut down in the background there so dropping never blocks or
    /// panics, whatever runtime context the drop happens in.
    runtime: Option<tokio::runtime::Runtime>,
    /// The runtime's handle: what exports are spawned and waited on with (it is a multi-thread
    /// runtime, so its own threads drive I/O and timers).
    handle: tokio::runtime::Handle,
    sender: Sender,
    protocol: Protocol,
    encoder: convert::RequestEncoder,
    request_timeout: Duration,
    counters: std::sync::Arc<Counters>,
    jitter: Jitter,
}

/// An export under way on the I/O thread.
pub(crate) struct InFlight {
    task: tokio::task::JoinHandle<ExportOutcome>,
    retrying: Retrying,
}

/// Set by an export's task when one of its attempts failed and it will be retried: the worker
/// reads it while the export is still under way.
#[derive(Clone, Default)]
pub(crate) struct Retrying(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Retrying {
    /// Whether an attempt failed.
    pub(crate) fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl InFlight {
    /// What tells whether one of its attempts failed.
    pub(crate) fn retrying(&self) -> Retrying {
        self.retrying.clone()
    }

    /// Whether one of its attempts failed (it is being retried, or gave up).
    pub(crate) fn failed_once(&self) -> bool {
        self.retrying.get()
    }
}

impl OtlpExporter {
    /// `redactor` masks secret values (the pipeline's, so both share its verdicts per key).
    pub(crate) fn new(
        config: &Config,
        counters: std::sync::Arc<Counters>,
        redactor: Redactor,
    ) -> Result<Self, Error> {
        let endpoint = &config.transport.endpoint;
        for warning in [
            plaintext_warning(endpoint),
            protocol_warning(config.transport.protocol, endpoint),
        ]
        .into_iter()
        .flatten()
        {
            eprintln!("otel-log-bridge: warning: {warning}");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otel-log-bridge-io")
            .on_thread_start(crate::internal::mark_internal_thread)
            .enable_all()
            .build()
            .map_err(Error::Worker)?;
        let protocol = config.transport.protocol;
        let sender = match protocol {
            Protocol::Grpc => Sender::Grpc(grpc::GrpcSender::new(config, &runtime)?),
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                Sender::Http(http::HttpSender::new(config)?)
            }
        };
        Ok(OtlpExporter {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            sender,
            protocol,
            encoder: convert::RequestEncoder::new(
                convert::resource(&config.service_name, &config.resource_attributes),
                redactor,
            ),
            request_timeout: config.request_timeout,
            counters,
            jitter: Jitter::new(),
        })
    }

    /// Converts and encodes `batch` in the protocol's encoding (compressed for HTTP if so
    /// configured), masking secret values: CPU work on the calling thread, no I/O.
    pub(crate) fn prepare<'r>(&mut self, batch: impl IntoIterator<Item = Record<'r>>) -> Bytes {
        match (&self.sender, self.protocol) {
            (Sender::Http(http), Protocol::HttpJson) => http.body(self.encoder.encode_json(batch)),
            (Sender::Http(http), _) => http.body(self.encoder.encode(batch)),
            (Sender::Grpc(_), _) => self.encoder.encode(batch),
        }
    }

    /// Starts sending `request` (from [`prepare`](Self::prepare)) on the I/O thread, retrying until
    /// `deadline`.
    pub(crate) fn send(&mut self, request: Bytes, deadline: Instant) -> InFlight {
        let mut sender = self.sender.clone();
        let request_timeout = self.request_timeout;
        let counters = self.counters.clone();
        let mut jitter = self.jitter.fork();
        let retrying = Retrying::default();
        let failed = retrying.clone();
        let work = async move {
            let mut attempt = 0u32;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    return ExportOutcome::Failed {
                        reason: "export timeout passed".into(),
                        permanent: false,
                    };
                }
                let per_try = request_timeout.min(deadline - now);
                let outcome =
                    tokio::time::timeout(per_try, sender.attempt(request.clone(), per_try))
                        .await
                        .unwrap_or_else(|_| Attempt::Failed {
                            retry: Retry::Retryable,
                            reason: "export attempt timed out".into(),
                        });
                let (retry, reason) = match outcome {
                    Attempt::Delivered { rejected } => {
                        return ExportOutcome::Delivered { rejected };
                    }
                    Attempt::Failed { retry, reason } => (retry, reason),
                };
                counters.add_export_error();
                failed.set();
                let backoff = retry::backoff(attempt, INITIAL_BACKOFF, MAX_BACKOFF, jitter.next());
                let wait = match retry {
                    Retry::Permanent => {
                        return ExportOutcome::Failed {
                            reason,
                            permanent: true,
                        };
                    }
                    Retry::Retryable => backoff,
                    // At least the server's delay, and never a resend at once (`Retry-After: 0`).
                    Retry::Throttled(delay) => delay.max(backoff),
                };
                if wait >= deadline.saturating_duration_since(Instant::now()) {
                    return ExportOutcome::Failed {
                        reason: format!("gave up after {} attempts, last {reason}", attempt + 1),
                        permanent: false,
                    };
                }
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        };
        InFlight {
            task: self.handle.spawn(work),
            retrying,
        }
    }

    /// Waits for `flight`'s outcome, calling `idle` every few milliseconds meanwhile; when `idle`
    /// returns `true` the export is abandoned at once (a retryable failure).
    pub(crate) fn wait(
        &mut self,
        flight: InFlight,
        idle: &mut dyn FnMut() -> bool,
    ) -> ExportOutcome {
        let mut handle = flight.task;
        self.handle.block_on(async {
            loop {
                tokio::select! {
                    outcome = &mut handle => {
                        return outcome.unwrap_or_else(|e| ExportOutcome::Failed {
                            reason: format!("export task failed: {e}"),
                            permanent: false,
                        });
                    }
                    () = tokio::time::sleep(IDLE_TICK) => {
                        if idle() {
                            handle.abort();
                            return ExportOutcome::Failed {
                                reason: "export abandoned: shutting down".into(),
                                permanent: false,
                            };
                        }
                    }
                }
            }
        })
    }
}

/// The warning printed once at start for a plaintext endpoint off this machine, if any.
fn plaintext_warning(endpoint: &str) -> Option<String> {
    (endpoint.starts_with("http://") && !is_loopback(endpoint)).then(|| {
        format!("records go to {endpoint} over plaintext http; use https:// to encrypt them")
    })
}

/// The warning printed once at start when the endpoint looks made for the other protocol (an HTTP
/// URL without a path or on gRPC's port 4317, a gRPC one with `/v1/logs` or on HTTP's port 4318):
/// every batch would be refused, and a refusal is permanent.
fn protocol_warning(protocol: Protocol, endpoint: &str) -> Option<String> {
    let uri = endpoint.parse::<tonic::transport::Uri>().ok()?;
    let path = uri.path().trim_end_matches('/');
    let port = uri.port_u16();
    let looks_grpc = path.is_empty() || port == Some(4317);
    let looks_http = path.ends_with("/v1/logs") || port == Some(4318);
    let other = match protocol {
        Protocol::Grpc if looks_http => "OTLP/HTTP (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)",
        Protocol::HttpProtobuf | Protocol::HttpJson if looks_grpc => {
            "OTLP/gRPC (OTEL_EXPORTER_OTLP_PROTOCOL=grpc); an HTTP endpoint is the full URL, e.g. http://host:4318/v1/logs"
        }
        _ => return None,
    };
    Some(format!(
        "records go to {endpoint} over {protocol}, but that endpoint looks like one for {other}"
    ))
}

/// Whether the endpoint's host is a loopback name or address.
fn is_loopback(endpoint: &str) -> bool {
    let host = endpoint
        .parse::<tonic::transport::Uri>()
        .ok()
        .and_then(|u| u.host().map(|h| h.trim_matches(['[', ']']).to_owned()));
    match host.as_deref() {
        Some("localhost") => true,
        Some(h) => h
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

impl Drop for OtlpExporter {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Protocol, plaintext_warning, protocol_warning};

    #[test]
    fn an_endpoint_made_for_the_other_protocol_is_warned_about() {
        let table = [
            (Protocol::Grpc, "http://localhost:4317", false),
            (Protocol::Grpc, "https://collector.example", false),
            (Protocol::Grpc, "http://localhost:4318", true),
            (Protocol::Grpc, "http://c:9000/v1/logs", true),
            (
                Protocol::HttpProtobuf,
                "http://localhost:4318/v1/logs",
                false,
            ),
            (Protocol::HttpJson, "https://gw.example/otlp/v1/logs", false),
            (Protocol::HttpProtobuf, "http://c:4317/v1/logs", true),
            (Protocol::HttpJson, "http://c:4318", true),
            (Protocol::HttpProtobuf, "http://c:4318/", true),
        ];
        for (protocol, endpoint, warned) in table {
            let w = protocol_warning(protocol, endpoint);
            assert_eq!(w.is_some(), warned, "{protocol} {endpoint}: {w:?}");
            if let Some(w) = w {
                assert!(w.contains(endpoint), "{w}");
            }
        }
    }

    #[test]
    fn plaintext_off_this_machine_is_warned_about_and_loopback_or_tls_is_not() {
        for quiet in [
            "http://localhost:4317",
            "http://127.0.0.1:4317",
            "http://127.8.9.10:4317",
            "http://[::1]:4317",
            "https://collector.example:4317",
        ] {
            assert_eq!(plaintext_warning(quiet), None, "{quiet}");
        }
        for loud in [
            "http://collector.example:4317",
            "http://10.0.0.7:4317",
            "http://[2001:db8::1]:4317",
        ] {
            let w = plaintext_warning(loud).unwrap_or_default();
            assert!(w.contains(loud) && w.contains("https://"), "{loud}: {w}");
        }
    }
}
