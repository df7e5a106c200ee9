//! OTLP/gRPC exporter on tonic, sending requests built from `opentelemetry-proto`'s messages.
//!
//! It owns a tokio runtime with one I/O thread of its own, so it never needs, touches or blocks the
//! host program's runtime (there may be none), and the connection keeps answering (HTTP/2 pings,
//! GOAWAY) between batches. A batch is converted and encoded on the worker thread ([`prepare`]),
//! then sent on the I/O thread ([`send`]) while the worker goes on with the next batch; [`wait`]
//! collects the outcome. One batch is one `Export` RPC, retried with exponential backoff and jitter
//! on the retryable codes until the batch's deadline; a retry resends the same encoded bytes.
//!
//! [`prepare`]: OtlpExporter::prepare
//! [`send`]: OtlpExporter::send
//! [`wait`]: OtlpExporter::wait

pub(crate) mod convert;
pub(crate) mod retry;

use std::time::{Duration, Instant};

use bytes::{BufMut as _, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message as _;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic_types::StatusExt as _;

use crate::Error;
use crate::config::{Compression, Config};
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
/// The OTLP logs service's one method.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

pub(crate) struct OtlpExporter {
    /// Taken only in drop, and shut down in the background there so dropping never blocks or
    /// panics, whatever runtime context the drop happens in.
    runtime: Option<tokio::runtime::Runtime>,
    /// The runtime's handle: what exports are spawned and waited on with (it is a multi-thread
    /// runtime, so its own threads drive I/O and timers).
    handle: tokio::runtime::Handle,
    client: tonic::client::Grpc<Channel>,
    /// Headers of every request (secrets: never printed).
    metadata: MetadataMap,
    encoder: convert::RequestEncoder,
    request_timeout: Duration,
    counters: std::sync::Arc<Counters>,
    jitter: Jitter,
}

/// An export under way on the I/O thread.
pub(crate) struct InFlight(tokio::task::JoinHandle<ExportOutcome>);

/// Sends a request encoded beforehand as it is, and reads the answer with prost.
#[derive(Debug, Clone, Copy, Default)]
struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = ExportLogsServiceResponse;
    type Encoder = PreEncoded;
    type Decoder = PreEncoded;

    fn encoder(&mut self) -> PreEncoded {
        PreEncoded
    }

    fn decoder(&mut self) -> PreEncoded {
        PreEncoded
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for PreEncoded {
    type Item = ExportLogsServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportLogsServiceResponse>, tonic::Status> {
        ExportLogsServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("undecodable export response: {e}")))
    }
}

impl OtlpExporter {
    /// `redactor` masks secret values (the pipeline's, so both share its verdicts per key).
    pub(crate) fn new(
        config: &Config,
        counters: std::sync::Arc<Counters>,
        redactor: Redactor,
    ) -> Result<Self, Error> {
        let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|e| Error::InvalidConfig {
                setting: "endpoint",
                reason: format!("{:?} is not a usable gRPC endpoint: {e}", config.endpoint),
            })?
            .connect_timeout(config.request_timeout.min(MAX_CONNECT_TIMEOUT))
            .tcp_nodelay(true);
        if config.endpoint.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(path) = &config.certificate {
                let pem = std::fs::read(path).map_err(|e| Error::InvalidConfig {
                    setting: "certificate (OTEL_EXPORTER_OTLP_CERTIFICATE)",
                    reason: format!("cannot read {}: {e}; expected a PEM file", path.display()),
                })?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| Error::InvalidConfig {
                setting: "endpoint",
                reason: format!("TLS for {:?}: {e}", config.endpoint),
            })?;
        } else if let Some(warning) = plaintext_warning(&config.endpoint) {
            eprintln!("otel-log-bridge: warning: {warning}");
        }
        let mut metadata = MetadataMap::new();
        for (k, v) in &config.headers.0 {
            let key = MetadataKey::from_bytes(k.as_bytes());
            let value = MetadataValue::try_from(v.as_str());
            match (key, value) {
                (Ok(key), Ok(value)) => {
                    metadata.insert(key, value);
                }
                _ => {
                    return Err(Error::InvalidConfig {
                        setting: "headers (OTEL_EXPORTER_OTLP_HEADERS)",
                        reason: format!(
                            "header {k:?} (value not shown) is not valid gRPC metadata"
                        ),
                    });
                }
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otel-log-bridge-io")
            .on_thread_start(crate::internal::mark_internal_thread)
            .enable_all()
            .build()
            .map_err(Error::Worker)?;
        let channel = {
            let _entered = runtime.enter();
            endpoint.connect_lazy()
        };
        let mut client = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
        if config.compression == Compression::Gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        Ok(OtlpExporter {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            client,
            metadata,
            encoder: convert::RequestEncoder::new(
                convert::resource(&config.service_name, &config.resource_attributes),
                redactor,
            ),
            request_timeout: config.request_timeout,
            counters,
            jitter: Jitter::new(),
        })
    }

    /// Converts and encodes `batch`, masking secret values: CPU work on the calling thread, no I/O.
    pub(crate) fn prepare<'r>(&mut self, batch: impl IntoIterator<Item = Record<'r>>) -> Bytes {
        self.encoder.encode(batch)
    }

    /// Starts sending `request` (from [`prepare`](Self::prepare)) on the I/O thread, retrying until
    /// `deadline`.
    pub(crate) fn send(&mut self, request: Bytes, deadline: Instant) -> InFlight {
        let mut client = self.client.clone();
        let metadata = self.metadata.clone();
        let request_timeout = self.request_timeout;
        let counters = self.counters.clone();
        let mut jitter = self.jitter.fork();
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
                let mut rpc = tonic::Request::new(request.clone());
                *rpc.metadata_mut() = metadata.clone();
                rpc.set_timeout(per_try);
                let call = async {
                    client.ready().await.map_err(|e| {
                        tonic::Status::unavailable(format!("collector not reachable: {e}"))
                    })?;
                    let path = tonic::codegen::http::uri::PathAndQuery::from_static(EXPORT_PATH);
                    client.unary(rpc, path, PreEncoded).await
                };
                let status = match tokio::time::timeout(per_try, call).await {
                    Ok(Ok(response)) => {
                        let rejected = response
                            .into_inner()
                            .partial_success
                            .map(|p| u64::try_from(p.rejected_log_records).unwrap_or(0))
                            .unwrap_or(0);
                        return ExportOutcome::Delivered { rejected };
                    }
                    Ok(Err(status)) => status,
                    Err(_) => tonic::Status::deadline_exceeded("export attempt timed out"),
                };
                counters.add_export_error();
                let retry_delay = status.get_details_retry_info().and_then(|r| r.retry_delay);
                let transport = std::error::Error::source(&status).is_some();
                let wait = match retry::classify(status.code(), retry_delay, transport) {
                    Retry::Permanent => {
                        return ExportOutcome::Failed {
                            reason: format!(
                                "permanent error {:?}: {}",
                                status.code(),
                                status.message()
                            ),
                            permanent: true,
                        };
                    }
                    Retry::Retryable => {
                        retry::backoff(attempt, INITIAL_BACKOFF, MAX_BACKOFF, jitter.next())
                    }
                    Retry::Throttled(delay) => delay,
                };
                if Instant::now() + wait >= deadline {
                    return ExportOutcome::Failed {
                        reason: format!(
                            "gave up after {} attempts, last {:?}: {}",
                            attempt + 1,
                            status.code(),
                            status.message()
                        ),
                        permanent: false,
                    };
                }
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        };
        InFlight(self.handle.spawn(work))
    }

    /// Waits for `flight`'s outcome, calling `idle` every few milliseconds meanwhile; when `idle`
    /// returns `true` the export is abandoned at once (a retryable failure).
    pub(crate) fn wait(
        &mut self,
        flight: InFlight,
        idle: &mut dyn FnMut() -> bool,
    ) -> ExportOutcome {
        let InFlight(mut handle) = flight;
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

impl OtlpExporter {
    /// Exports `batch` and waits for the outcome: [`prepare`](Self::prepare), [`send`](Self::send)
    /// and [`wait`](Self::wait) in one.
    pub(crate) fn export<'r>(
        &mut self,
        batch: impl IntoIterator<Item = Record<'r>>,
        deadline: Instant,
        idle: &mut dyn FnMut() -> bool,
    ) -> ExportOutcome {
        let request = self.prepare(batch);
        let flight = self.send(request, deadline);
        self.wait(flight, idle)
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
    use super::plaintext_warning;

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
