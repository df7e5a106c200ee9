//! A minimal OTLP logs collector for trying the examples and measuring end to end: OTLP/gRPC on
//! `--listen` (default 127.0.0.1:4317) and OTLP/HTTP at `/v1/logs` on `--http-listen` (default
//! 127.0.0.1:4318; protobuf or JSON, gzip or not). It counts what it receives, answers every export
//! with success, and sets TCP_NODELAY on its sockets.
//!
//! ```sh
//! cargo run --release --example collector -- [--listen 127.0.0.1:4317] [--http-listen 127.0.0.1:4318] [--exit-after N] [--idle-exit MS] [--print]
//! ```
//! Every second with new data it writes `received N records in M requests` to stderr; `--print`
//! also writes each record's severity, scope and body; `--exit-after N` exits once N records arrived;
//! `--idle-exit MS` exits once records have arrived and none came for MS milliseconds. On exit it
//! prints one JSON line on stdout: `{"received":N,"requests":M}`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

#[derive(Default)]
struct Counter {
    records: AtomicU64,
    requests: AtomicU64,
    print: AtomicBool,
}

struct Sink(Arc<Counter>);

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.0.count(&request.into_inner());
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

/// OTLP/HTTP: the body decoded per its content type and encoding; success in the same encoding.
async fn http_export(
    counter: Arc<Counter>,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse as _;
    use prost::Message as _;
    let json = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let mut plain = Vec::new();
    let body: &[u8] = if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"gzip")
    {
        use std::io::Read as _;
        if let Err(e) = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain) {
            return (StatusCode::BAD_REQUEST, format!("bad gzip body: {e}")).into_response();
        }
        &plain
    } else {
        &body
    };
    let request = if json {
        serde_json::from_slice::<ExportLogsServiceRequest>(body).map_err(|e| e.to_string())
    } else {
        ExportLogsServiceRequest::decode(body).map_err(|e| e.to_string())
    };
    match request {
        Ok(request) => {
            counter.count(&request);
            let response = ExportLogsServiceResponse::default();
            if json {
                let body = serde_json::to_vec(&response).unwrap_or_default();
                ([(header::CONTENT_TYPE, "application/json")], body).into_response()
            } else {
                let body = response.encode_to_vec();
                ([(header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
            }
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("undecodable request: {e}")).into_response(),
    }
}

impl Counter {
    fn count(&self, req: &ExportLogsServiceRequest) {
        let mut n = 0;
        for rl in &req.resource_logs {
            for sl in &rl.scope_logs {
                n += sl.log_records.len() as u64;
                if self.print.load(Ordering::Relaxed) {
                    let scope = sl.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("");
                    for r in &sl.log_records {
                        let body = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                            Some(Value::StringValue(s)) => s.as_str(),
                            _ => "",
                        };
                        eprintln!("{} {scope}: {body}", r.severity_text);
                    }
                }
            }
        }
        self.records.fetch_add(n, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = "127.0.0.1:4317".parse()?;
    let mut http_listen: SocketAddr = "127.0.0.1:4318".parse()?;
    let mut exit_after: Option<u64> = None;
    let mut idle_exit: Option<Duration> = None;
    let counter = Arc::new(Counter::default());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?.parse()?,
            "--http-listen" => {
                http_listen = args
                    .next()
                    .ok_or("--http-listen needs an address")?
                    .parse()?
            }
            "--exit-after" => {
                exit_after = Some(args.next().ok_or("--exit-after needs a count")?.parse()?)
            }
            "--idle-exit" => {
                let ms: u64 = args
                    .next()
                    .ok_or("--idle-exit needs milliseconds")?
                    .parse()?;
                idle_exit = Some(Duration::from_millis(ms));
            }
            "--print" => counter.print.store(true, Ordering::Relaxed),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let incoming = TcpIncoming::bind(listen)?.with_nodelay(Some(true));
        let http_incoming = TcpIncoming::bind(http_listen)?.with_nodelay(Some(true));
        eprintln!(
            "collector: listening on {} (OTLP/gRPC) and http://{}/v1/logs (OTLP/HTTP)",
            incoming.local_addr()?,
            http_incoming.local_addr()?
        );
        let reporter = counter.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let n = reporter.records.load(Ordering::Relaxed);
                if n != last {
                    last = n;
                    eprintln!(
                        "collector: received {n} records in {} requests",
                        reporter.requests.load(Ordering::Relaxed)
                    );
                }
            }
        });
        let done = counter.clone();
        let stop = async move {
            let mut last = (0, std::time::Instant::now());
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let n = done.records.load(Ordering::Relaxed);
                if n != last.0 {
                    last = (n, std::time::Instant::now());
                }
                let idle = idle_exit.is_some_and(|d| n > 0 && last.1.elapsed() >= d);
                if idle || exit_after.is_some_and(|want| n >= want) {
                    eprintln!("collector: received {n} records");
                    break;
                }
            }
        };
        let grpc = tonic::transport::Server::builder()
            .add_service(
                LogsServiceServer::new(Sink(counter.clone()))
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .serve_with_incoming(incoming);
        let http_counter = counter.clone();
        let router = axum::Router::new().route(
            "/v1/logs",
            axum::routing::post(move |headers, body| {
                http_export(http_counter.clone(), headers, body)
            }),
        );
        let http = tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(tonic::service::Routes::from(router))
            .serve_with_incoming(http_incoming);
        tokio::select! {
            r = grpc => r?,
            r = http => r?,
            () = stop => {}
        }
        println!(
            "{{\"received\":{},\"requests\":{}}}",
            counter.records.load(Ordering::Relaxed),
            counter.requests.load(Ordering::Relaxed)
        );
        Ok(())
    })
}
