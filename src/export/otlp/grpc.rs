//! The OTLP/gRPC transport on tonic: one `Export` call per attempt, sending the request encoded
//! beforehand as it is, and reading the answer with prost.

use std::time::Duration;

use bytes::{BufMut as _, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message as _;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_types::StatusExt as _;

use super::retry::{self, Retry};
use super::{Attempt, MAX_CONNECT_TIMEOUT};
use crate::Error;
use crate::config::{Compression, Config};

/// The OTLP logs service's one method.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// A client of the collector's logs service; cheap to clone (the channel is shared).
#[derive(Clone)]
pub(crate) struct GrpcSender {
    client: tonic::client::Grpc<Channel>,
    /// Headers of every request (secrets: never printed).
    metadata: MetadataMap,
}

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

impl GrpcSender {
    /// A lazily connecting client of `config`'s endpoint; made inside `runtime`, whose I/O thread
    /// drives the connection.
    pub(crate) fn new(config: &Config, runtime: &tokio::runtime::Runtime) -> Result<Self, Error> {
        let t = &config.transport;
        let mut endpoint = Endpoint::from_shared(t.endpoint.clone())
            .map_err(|e| Error::InvalidConfig {
                setting: "endpoint",
                reason: format!("{:?} is not a usable gRPC endpoint: {e}", t.endpoint),
            })?
            .connect_timeout(config.request_timeout.min(MAX_CONNECT_TIMEOUT))
            .tcp_nodelay(true);
        if t.endpoint.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &t.certificate {
                tls = tls.ca_certificate(Certificate::from_pem(ca.read()?));
            }
            if let Some((cert, key)) = &t.identity {
                tls = tls.identity(Identity::from_pem(cert.read()?, key.read()?));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| Error::InvalidConfig {
                setting: "endpoint",
                reason: format!("TLS for {:?}: {e}", t.endpoint),
            })?;
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
        let channel = {
            let _entered = runtime.enter();
            endpoint.connect_lazy()
        };
        let mut client = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
        if config.compression == Compression::Gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        Ok(GrpcSender { client, metadata })
    }

    /// One `Export` call with `request`, bounded by `timeout`.
    pub(crate) async fn attempt(&mut self, request: Bytes, timeout: Duration) -> Attempt {
        let mut rpc = tonic::Request::new(request);
        *rpc.metadata_mut() = self.metadata.clone();
        rpc.set_timeout(timeout);
        let client = &mut self.client;
        let call = async {
            client
                .ready()
                .await
                .map_err(|e| tonic::Status::unavailable(format!("collector not reachable: {e}")))?;
            let path = tonic::codegen::http::uri::PathAndQuery::from_static(EXPORT_PATH);
            client.unary(rpc, path, PreEncoded).await
        };
        let status = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(response)) => {
                let rejected = response
                    .into_inner()
                    .partial_success
                    .map(|p| u64::try_from(p.rejected_log_records).unwrap_or(0))
                    .unwrap_or(0);
                return Attempt::Delivered { rejected };
            }
            Ok(Err(status)) => status,
            Err(_) => tonic::Status::deadline_exceeded("export attempt timed out"),
        };
        let retry_delay = status.get_details_retry_info().and_then(|r| r.retry_delay);
        let transport = std::error::Error::source(&status).is_some();
        let retry = retry::classify(status.code(), retry_delay, transport);
        let kind = if retry == Retry::Permanent {
            "permanent error "
        } else {
            ""
        };
        Attempt::Failed {
            retry,
            reason: format!("{kind}{:?}: {}", status.code(), status.message()),
        }
    }
}
