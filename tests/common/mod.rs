//! A real OTLP logs collector for the tests: `opentelemetry-proto`'s generated tonic server on
//! 127.0.0.1 with TCP_NODELAY, on its own thread and runtime, with scripted failures. The same port
//! serves OTLP/HTTP at `/v1/logs` (HTTP/1.1 and HTTP/2; protobuf or JSON, gzip), with the same
//! records and script: [`Collector::endpoint_for`] gives the URL for a protocol.
#![allow(dead_code)]

/// The CPU clocks and other measurements the examples share (the benchmarks use them from here).
#[path = "../../examples/measure/mod.rs"]
pub mod measure;

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use otel_log_bridge::Protocol;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One record as the collector received it, with its scope name and resource.
#[derive(Debug, Clone)]
pub struct Received {
    pub scope: String,
    pub resource: Resource,
    pub record: LogRecord,
    /// When its request reached the collector.
    pub at: Instant,
}

impl Received {
    pub fn attr(&self, key: &str) -> Option<any_value::Value> {
        self.record
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
    }

    pub fn resource_attr(&self, key: &str) -> Option<any_value::Value> {
        self.resource
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
    }

    pub fn body(&self) -> String {
        match self.record.body.clone() {
            Some(AnyValue {
                value: Some(any_value::Value::StringValue(s)),
            }) => s,
            other => panic!("body is not a string: {other:?}"),
        }
    }
}

/// What the collector answers to the next requests.
#[derive(Debug, Clone)]
pub enum Answer {
    Accept,
    /// Fail with `code`, carrying a RetryInfo with this delay when `Some`.
    Fail {
        code: Code,
        retry_after: Option<Duration>,
    },
    /// Accept, but report `n` records of the request as rejected.
    PartialReject(i64),
    /// Accept, after this long (a slow collector); a client that gives up first cancels it.
    Delay(Duration),
    /// OTLP/HTTP only: answer with this status and, when `Some`, this `Retry-After` header (over
    /// gRPC: UNAVAILABLE).
    Http {
        status: u16,
        retry_after: Option<String>,
    },
}

/// Why the collector refused a request, in terms both transports can answer with.
struct Refusal {
    code: Code,
    retry_after: Option<Duration>,
    /// The status and `Retry-After` to answer over HTTP, if scripted as such.
    http: Option<(u16, Option<String>)>,
}

impl Refusal {
    /// The HTTP status for a gRPC code, as the OTLP specification pairs them.
    fn http_status(&self) -> u16 {
        if let Some((status, _)) = self.http {
            return status;
        }
        match self.code {
            Code::ResourceExhausted => 429,
            Code::Unavailable | Code::Aborted | Code::Cancelled | Code::DataLoss => 503,
            Code::OutOfRange => 503,
            Code::DeadlineExceeded => 504,
            Code::Unauthenticated => 401,
            Code::PermissionDenied => 403,
            Code::Internal | Code::Unknown => 500,
            _ => 400,
        }
    }

    fn retry_after_header(&self) -> Option<String> {
        match &self.http {
            Some((_, header)) => header.clone(),
            None => self.retry_after.map(|d| d.as_secs_f64().ceil().to_string()),
        }
    }
}

#[derive(Default)]
struct State {
    records: Vec<Received>,
    requests: usize,
    /// Headers of every request, in order.
    headers: Vec<tonic::metadata::MetadataMap>,
    /// Scripted answers for the next requests, in order; `Accept` once empty.
    script: Vec<Answer>,
    /// Accept records without keeping them (benchmarks: no memory growth, less CPU).
    discard: bool,
    /// How many records were accepted and not kept.
    discarded: usize,
    /// Each collector thread's CPU time as of the last request it discarded (what the benchmarks
    /// subtract from the process's CPU time).
    cpu: std::collections::HashMap<std::thread::ThreadId, Duration>,
}

#[derive(Clone, Default)]
struct Shared(Arc<(Mutex<State>, Condvar)>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Shared {
    /// Takes the next scripted answer and applies it to `req`: what both transports do.
    async fn handle(
        &self,
        headers: tonic::metadata::MetadataMap,
        req: ExportLogsServiceRequest,
    ) -> Result<ExportLogsServiceResponse, Refusal> {
        let answer = {
            let mut state = self.lock();
            state.requests += 1;
            state.headers.push(headers);
            if state.script.is_empty() {
                Answer::Accept
            } else {
                state.script.remove(0)
            }
        };
        if let Answer::Delay(d) = answer {
            tokio::time::sleep(d).await;
        }
        let mut state = self.lock();
        let mut rejected = 0;
        match answer {
            Answer::Fail { code, retry_after } => {
                self.0.1.notify_all();
                return Err(Refusal {
                    code,
                    retry_after,
                    http: None,
                });
            }
            Answer::Http {
                status,
                retry_after,
            } => {
                self.0.1.notify_all();
                return Err(Refusal {
                    code: Code::Unavailable,
                    retry_after: None,
                    http: Some((status, retry_after)),
                });
            }
            Answer::PartialReject(n) => rejected = n,
            Answer::Accept | Answer::Delay(_) => {}
        }
        if state.discard {
            state.discarded += req
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum::<usize>();
            state
                .cpu
                .insert(std::thread::current().id(), measure::thread_cpu());
            return Ok(ExportLogsServiceResponse::default());
        }
        let at = Instant::now();
        for rl in req.resource_logs {
            let resource = rl.resource.unwrap_or_default();
            for sl in rl.scope_logs {
                let scope = sl.scope.map(|s| s.name).unwrap_or_default();
                for record in sl.log_records {
                    state.records.push(Received {
                        scope: scope.clone(),
                        resource: resource.clone(),
                        record,
                        at,
                    });
                }
            }
        }
        self.0.1.notify_all();
        Ok(ExportLogsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: "scripted partial success".into(),
            }),
        })
    }
}

#[tonic::async_trait]
impl LogsService for Shared {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let headers = request.metadata().clone();
        match self.handle(headers, request.into_inner()).await {
            Ok(response) => Ok(Response::new(response)),
            Err(refusal) => Err(match refusal.retry_after {
                Some(d) => Status::with_error_details(
                    refusal.code,
                    "scripted failure",
                    ErrorDetails::with_retry_info(Some(d)),
                ),
                None => Status::new(refusal.code, "scripted failure"),
            }),
        }
    }
}

/// OTLP/HTTP at `/v1/logs`: the body decoded per its content type and encoding, answered in the
/// same encoding (a refusal as a `google.rpc.Status`).
async fn http_export(
    shared: Shared,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use prost::Message;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let body = if gzip {
        use std::io::Read;
        let mut out = Vec::new();
        if let Err(e) = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out) {
            return (StatusCode::BAD_REQUEST, format!("bad gzip: {e}")).into_response();
        }
        bytes::Bytes::from(out)
    } else {
        body
    };
    let request = if json {
        serde_json::from_slice::<ExportLogsServiceRequest>(&body).map_err(|e| e.to_string())
    } else {
        ExportLogsServiceRequest::decode(&body[..]).map_err(|e| e.to_string())
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("undecodable: {e}")).into_response(),
    };
    let content_type = if json {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    let metadata = tonic::metadata::MetadataMap::from_headers(headers);
    match shared.handle(metadata, request).await {
        Ok(response) => {
            let body = if json {
                serde_json::to_vec(&response).unwrap()
            } else {
                response.encode_to_vec()
            };
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Err(refusal) => {
            let status = tonic_types::Status {
                code: refusal.code as i32,
                message: "scripted failure".into(),
                details: vec![],
            };
            let body = if json {
                serde_json::json!({"code": status.code, "message": status.message})
                    .to_string()
                    .into_bytes()
            } else {
                status.encode_to_vec()
            };
            let mut response = (
                StatusCode::from_u16(refusal.http_status()).unwrap(),
                [(header::CONTENT_TYPE, content_type)],
                body,
            )
                .into_response();
            if (300..400).contains(&refusal.http_status()) {
                response.headers_mut().insert(
                    header::LOCATION,
                    "http://127.0.0.1:1/elsewhere".parse().unwrap(),
                );
            }
            if let Some(after) = refusal.retry_after_header() {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, after.parse().unwrap());
            }
            response
        }
    }
}

pub struct Collector {
    pub addr: SocketAddr,
    shared: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    /// Starts a collector on 127.0.0.1 on a free port.
    pub fn start() -> Collector {
        Self::start_on("127.0.0.1:0".parse().unwrap())
    }

    /// Starts a collector on `addr` (to come back on the port of one that was stopped).
    pub fn start_on(addr: SocketAddr) -> Collector {
        Self::start_with(addr, None)
    }

    /// Starts a collector at `endpoint` (`http://host:port`, e.g. from [`closed_endpoint`]).
    pub fn start_at(endpoint: &str) -> Collector {
        Self::start_on(endpoint.trim_start_matches("http://").parse().unwrap())
    }

    /// Starts a collector serving TLS with `identity` (certificate and key, PEM).
    pub fn start_tls(identity: tonic::transport::Identity) -> Collector {
        Self::start_with("127.0.0.1:0".parse().unwrap(), Some((identity, None)))
    }

    /// Starts a collector serving TLS with `identity` that requires a client certificate signed by
    /// `client_ca` (mutual TLS).
    pub fn start_mtls(
        identity: tonic::transport::Identity,
        client_ca: tonic::transport::Certificate,
    ) -> Collector {
        Self::start_with(
            "127.0.0.1:0".parse().unwrap(),
            Some((identity, Some(client_ca))),
        )
    }

    fn start_with(
        addr: SocketAddr,
        tls: Option<(
            tonic::transport::Identity,
            Option<tonic::transport::Certificate>,
        )>,
    ) -> Collector {
        let shared = Shared::default();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("collector runtime");
            rt.block_on(async move {
                let incoming = TcpIncoming::bind(addr)
                    .expect("bind collector")
                    .with_nodelay(Some(true));
                addr_tx
                    .send(incoming.local_addr().expect("local addr"))
                    .unwrap();
                let (stop_all, mut stop_serve) = tokio::sync::watch::channel(false);
                let mut stop_force = stop_all.subscribe();
                let mut server = tonic::transport::Server::builder().accept_http1(true);
                if let Some((identity, client_ca)) = tls {
                    let mut config = tonic::transport::ServerTlsConfig::new().identity(identity);
                    if let Some(ca) = client_ca {
                        config = config.client_ca_root(ca);
                    }
                    server = server.tls_config(config).expect("server TLS");
                }
                let http = service.clone();
                let router = tonic::service::Routes::new(
                    LogsServiceServer::new(service)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .into_axum_router()
                .route(
                    "/v1/logs",
                    axum::routing::post(move |headers, body| {
                        http_export(http.clone(), headers, body)
                    }),
                );
                let serve = server
                    .add_routes(tonic::service::Routes::from(router))
                    .serve_with_incoming_shutdown(incoming, async move {
                        let _ = stop_serve.changed().await;
                    });
                // A graceful shutdown waits for clients to acknowledge it; an idle client may not
                // answer, so after a short grace the server is dropped and its connections with it.
                let force = async move {
                    let _ = stop_force.changed().await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                };
                tokio::spawn(async move {
                    let _ = stopped.await;
                    let _ = stop_all.send(true);
                });
                tokio::select! {
                    result = serve => result.expect("collector server"),
                    () = force => {}
                }
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("collector started");
        Collector {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The endpoint for `protocol`: the server for gRPC, the logs URL for HTTP.
    pub fn endpoint_for(&self, protocol: Protocol) -> String {
        endpoint_for(&self.endpoint(), protocol)
    }

    /// Answers the next requests as scripted, then accepts.
    pub fn script(&self, answers: Vec<Answer>) {
        self.shared.lock().script = answers;
    }

    /// Starts a collector that accepts records without keeping them.
    pub fn start_discarding() -> Collector {
        let c = Self::start();
        c.shared.lock().discard = true;
        c
    }

    /// How many records a discarding collector has accepted.
    pub fn discarded(&self) -> usize {
        self.shared.lock().discarded
    }

    /// The CPU time a discarding collector's threads had used when they finished their latest
    /// request, summed: the collector's share of the process's CPU time, up to the replies.
    pub fn cpu(&self) -> Duration {
        self.shared.lock().cpu.values().sum()
    }

    pub fn records(&self) -> Vec<Received> {
        self.shared.lock().records.clone()
    }

    /// Forgets the records received so far.
    pub fn clear(&self) {
        self.shared.lock().records.clear();
    }

    pub fn requests(&self) -> usize {
        self.shared.lock().requests
    }

    /// The headers of every request so far.
    pub fn headers(&self) -> Vec<tonic::metadata::MetadataMap> {
        self.shared.lock().headers.clone()
    }

    /// Waits until `cond` holds over the received records and the request count, or panics at the
    /// deadline with what was received.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        cond: impl Fn(&[Received], usize) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if cond(&state.records, state.requests) {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}: {} records in {} requests",
                    state.records.len(),
                    state.requests
                );
            }
            state = self
                .shared
                .0
                .1
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub fn wait_for_records(&self, n: usize, timeout: Duration) {
        self.wait_until(timeout, &format!("{n} records"), |r, _| r.len() >= n);
    }

    /// Stops the server and waits for it to be gone (the port is then free); returns everything it
    /// received, including what arrived while it was stopping.
    pub fn stop(mut self) -> Vec<Received> {
        self.stop_inner();
        self.records()
    }

    fn stop_inner(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Waits until `cond` holds, polling with a short backoff, or panics at the deadline.
pub fn wait_for(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::park_timeout(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// `endpoint` (`http://host:port`) as `protocol` uses it: as is for gRPC, with `/v1/logs` for HTTP.
pub fn endpoint_for(endpoint: &str, protocol: Protocol) -> String {
    if protocol.is_http() {
        format!("{endpoint}/v1/logs")
    } else {
        endpoint.to_owned()
    }
}

/// A builder for tests of the OTLP path: no environment, `otlp-only`, pointed at `endpoint`, short
/// delays.
pub fn builder(endpoint: &str) -> otel_log_bridge::Builder {
    otel_log_bridge::builder()
        .read_env(false)
        .mode(otel_log_bridge::Mode::OtlpOnly)
        .endpoint(endpoint)
        .service_name("test-service")
        .schedule_delay(Duration::from_millis(50))
        .export_timeout(Duration::from_secs(10))
        .level(log::LevelFilter::Trace)
}

pub fn string(v: &str) -> Option<any_value::Value> {
    Some(any_value::Value::StringValue(v.to_owned()))
}

/// A TCP listener on 127.0.0.1 that accepts connections and never answers: a hung collector.
pub struct BlackHole {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlackHole {
    pub fn start() -> BlackHole {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("black hole runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let mut held = Vec::new();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => match accepted {
                            Ok((conn, _)) => held.push(conn),
                            Err(_) => break,
                        },
                    }
                }
                // Dropping the listener and every held connection closes them.
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("black hole started");
        BlackHole {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes the listener and every connection; the port is then free.
    pub fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The `seq` attribute of every received record.
pub fn seqs(records: &[Received]) -> Vec<i64> {
    records.iter().filter_map(seq).collect()
}

/// The `seq` attribute of a received record.
pub fn seq(record: &Received) -> Option<i64> {
    match record.attr("seq") {
        Some(any_value::Value::IntValue(i)) => Some(i),
        _ => None,
    }
}

/// A port on 127.0.0.1 that nobody listens on.
pub fn closed_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// The span context loadgen uses: trace 4bf92f35..., span 00f067aa..., sampled, remote.
pub fn span_context() -> opentelemetry::trace::SpanContext {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    )
}

/// Asserts that `r` carries the trace and span ids of [`span_context`].
pub fn assert_in_span(r: &Received) {
    assert_eq!(
        r.record.trace_id,
        span_context().trace_id().to_bytes().to_vec()
    );
    assert_eq!(
        r.record.span_id,
        span_context().span_id().to_bytes().to_vec()
    );
}

/// An error with an optional source, for cause chains: `Failure("outer", Some(&INNER))`.
#[derive(Debug)]
pub struct Failure(pub &'static str, pub Option<&'static Failure>);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.map(|e| e as _)
    }
}
