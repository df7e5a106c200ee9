//! A minimal OTLP/gRPC logs collector for trying the examples and measuring end to end: it counts
//! what it receives, answers every export with success, and sets TCP_NODELAY on its sockets.
//!
//! ```sh
//! cargo run --release --example collector -- [--listen 127.0.0.1:4317] [--exit-after N] [--idle-exit MS] [--print]
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
        let req = request.into_inner();
        let mut n = 0;
        for rl in &req.resource_logs {
            for sl in &rl.scope_logs {
                n += sl.log_records.len() as u64;
                if self.0.print.load(Ordering::Relaxed) {
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
        self.0.records.fetch_add(n, Ordering::Relaxed);
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = "127.0.0.1:4317".parse()?;
    let mut exit_after: Option<u64> = None;
    let mut idle_exit: Option<Duration> = None;
    let counter = Arc::new(Counter::default());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?.parse()?,
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
        eprintln!("collector: listening on {}", incoming.local_addr()?);
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
        tonic::transport::Server::builder()
            .add_service(
                LogsServiceServer::new(Sink(counter.clone()))
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .serve_with_incoming_shutdown(incoming, async move {
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
            })
            .await?;
        println!(
            "{{\"received\":{},\"requests\":{}}}",
            counter.records.load(Ordering::Relaxed),
            counter.requests.load(Ordering::Relaxed)
        );
        Ok(())
    })
}
