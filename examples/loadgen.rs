//! Load generator: emits `--count` records from `--threads` threads, optionally at `--rate` records per
//! second in total, each thread inside an active span context, then shuts down (flush) and prints
//! exactly one JSON summary line on stdout. Configuration comes from the environment only.
//!
//! ```sh
//! cargo run --release --example loadgen -- --count N [--threads T] [--rate PER_SEC] \
//!     [--trace-id HEX32] [--span-id HEX16] [--stack ours|official|log4rs] [--api log|tracing]
//! ```
//!
//! Summary line (a public contract: fields are only ever added):
//! `{"emitted":N,"emit_seconds":S,"ns_per_call":X,"p99_ns":P,"max_ns":M,"exported":E,
//!   "dropped":{"queue_full":..,...},"shutdown_seconds":D,"threads":T, ...,"cpu_ns_per_call":C,
//!   "peak_rss_bytes":B,"stack":"ours","api":"log"}`
//! `ns_per_call` is `emit_seconds / emitted`; `p99_ns` and `max_ns` come from every 8th call, timed
//! on its own. `cpu_ns_per_call` is the CPU time the emitting threads used, per call (it includes
//! the timing of every 8th call). Exit code 0 when it ran; 2 with the error on stderr for bad arguments or configuration.
//!
//! `--stack official` runs the same workload through the official stack (`opentelemetry-appender-log`
//! -> SDK batch processor -> `opentelemetry-otlp`), for side-by-side measurements; it counts nothing
//! itself, so its line has `"exported":null,"dropped":null` and the collector tells what arrived.
//! `--stack log4rs` writes the same records as JSON lines with log4rs's rolling file appender into
//! `LOG_DIR` (rotating at `LOG_FILE_MAX_BYTES`, 5 backups), to compare with `LOG_MODE=file-only`; its
//! line says how many lines the files hold in `written`.
//!
//! `--api tracing` emits the same record content through `tracing::info!` instead of `log::info!`:
//! with `--stack ours` into this crate's `tracing` layer (build with `--features tracing`), with
//! `--stack official` into `opentelemetry-appender-tracing` and the same SDK pipeline.

use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};

const USAGE: &str = "usage: loadgen --count N [--threads T] [--rate PER_SEC] [--trace-id HEX32] [--span-id HEX16] [--stack ours|official|log4rs] [--api log|tracing]";
const SAMPLE_EVERY: u64 = 8;

struct Args {
    count: u64,
    threads: u64,
    rate: Option<f64>,
    trace_id: TraceId,
    span_id: SpanId,
    stack: &'static str,
    /// `log` or `tracing`: which API the records go through.
    api: &'static str,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        count: 0,
        threads: 1,
        rate: None,
        trace_id: TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736")
            .map_err(|e| e.to_string())?,
        span_id: SpanId::from_hex("00f067aa0ba902b7").map_err(|e| e.to_string())?,
        stack: "ours",
        api: "log",
    };
    let mut count = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--count" => {
                count = Some(
                    value()?
                        .parse::<u64>()
                        .map_err(|e| format!("--count: {e}"))?,
                )
            }
            "--threads" => {
                args.threads = value()?
                    .parse::<u64>()
                    .map_err(|e| format!("--threads: {e}"))?;
                if args.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            "--rate" => {
                let rate = value()?
                    .parse::<f64>()
                    .map_err(|e| format!("--rate: {e}"))?;
                if !(rate > 0.0 && rate.is_finite()) {
                    return Err("--rate must be a positive number of records per second".into());
                }
                args.rate = Some(rate);
            }
            "--trace-id" => {
                let v = value()?;
                args.trace_id = TraceId::from_hex(&v)
                    .ok()
                    .filter(|t| *t != TraceId::INVALID && v.len() == 32)
                    .ok_or(format!(
                        "--trace-id: {v:?} is not 32 hex digits (not all zero)"
                    ))?;
            }
            "--span-id" => {
                let v = value()?;
                args.span_id = SpanId::from_hex(&v)
                    .ok()
                    .filter(|s| *s != SpanId::INVALID && v.len() == 16)
                    .ok_or(format!(
                        "--span-id: {v:?} is not 16 hex digits (not all zero)"
                    ))?;
            }
            "--stack" => {
                args.stack = match value()?.as_str() {
                    "ours" => "ours",
                    "official" => "official",
                    "log4rs" => "log4rs",
                    other => {
                        return Err(format!(
                            "--stack: {other:?}; expected ours, official or log4rs"
                        ));
                    }
                }
            }
            "--api" => {
                args.api = match value()?.as_str() {
                    "log" => "log",
                    "tracing" => "tracing",
                    other => {
                        return Err(format!("--api: {other:?}; expected log or tracing"));
                    }
                };
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    args.count = count.ok_or_else(|| format!("--count is required\n{USAGE}"))?;
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let tracing_api = args.api == "tracing";
    let installed = match (args.stack, tracing_api) {
        ("official", _) => official::Stack::install(tracing_api).map(Stack::Official),
        ("log4rs", false) => log4rs_stack::install().map(Stack::Log4rs),
        ("log4rs", true) => Err("--api tracing: not with --stack log4rs".into()),
        (_, false) => otel_log_bridge::try_init()
            .map(Stack::Ours)
            .map_err(|e| e.into()),
        (_, true) => install_tracing_layer().map(Stack::Ours),
    };
    let stack = match installed {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let span = SpanContext::new(
        args.trace_id,
        args.span_id,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let threads = args.threads;
    let per_thread_rate = args.rate.map(|r| r / threads as f64);
    let barrier = Arc::new(Barrier::new(threads as usize + 1));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let barrier = barrier.clone();
            let span = span.clone();
            let count = args.count;
            std::thread::spawn(move || {
                emit(
                    t,
                    threads,
                    count,
                    per_thread_rate,
                    span,
                    &barrier,
                    tracing_api,
                )
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut samples: Vec<u64> = Vec::new();
    let mut cpu = Duration::ZERO;
    for w in workers {
        let (s, c) = w.join().unwrap_or_default();
        samples.extend(s);
        cpu += c;
    }
    let emit_seconds = started.elapsed().as_secs_f64();

    let shutdown_started = Instant::now();
    // What only some stacks can tell: ours counts everything, log4rs's files hold what it wrote,
    // the official stack counts nothing (the collector tells what arrived).
    let mut exported = serde_json::Value::Null;
    let mut dropped = serde_json::Value::Null;
    let mut counts = serde_json::Map::new();
    let mut log4rs_dir = None;
    let stack_name = match stack {
        Stack::Ours(guard) => {
            let timeout = guard.shutdown_timeout();
            let report = guard.shutdown(timeout);
            let s = report.stats;
            let mut by_reason = serde_json::Map::new();
            for reason in otel_log_bridge::DropReason::ALL {
                by_reason.insert(reason.as_str().into(), s.dropped.get(reason).into());
            }
            exported = s.exported.into();
            dropped = by_reason.into();
            for (k, v) in [
                ("enqueued", s.enqueued),
                ("export_errors", s.export_errors),
                ("undelivered", report.undelivered),
                ("spooled", s.spooled),
                ("replayed", s.replayed),
                ("written", s.written),
                ("rotations", s.rotations),
                ("spool_bytes", s.spool_bytes),
                ("corrupt_skipped", s.corrupt_skipped),
            ] {
                counts.insert(k.into(), v.into());
            }
            "ours"
        }
        Stack::Official(official) => {
            official.shutdown();
            "official"
        }
        Stack::Log4rs(dir) => {
            log::logger().flush();
            log4rs_dir = Some(dir);
            "log4rs"
        }
    };
    let shutdown_seconds = shutdown_started.elapsed().as_secs_f64();
    if let Some(dir) = log4rs_dir {
        counts.insert("written".into(), log4rs_stack::lines(&dir).into());
    }

    // Sorts the samples: the last one is then the largest.
    let p99 = measure::percentile(&mut samples, 0.99);
    let per_call = |total: f64| {
        if args.count > 0 {
            total / args.count as f64
        } else {
            0.0
        }
    };
    let mut line = serde_json::Map::new();
    line.insert("emitted".into(), args.count.into());
    line.insert("emit_seconds".into(), emit_seconds.into());
    line.insert("ns_per_call".into(), per_call(emit_seconds * 1e9).into());
    line.insert("p99_ns".into(), p99.into());
    line.insert("max_ns".into(), samples.last().copied().unwrap_or(0).into());
    line.insert("exported".into(), exported);
    line.insert("dropped".into(), dropped);
    line.insert("shutdown_seconds".into(), shutdown_seconds.into());
    line.insert("threads".into(), threads.into());
    line.extend(counts);
    line.insert(
        "cpu_ns_per_call".into(),
        per_call(cpu.as_secs_f64() * 1e9).into(),
    );
    line.insert("peak_rss_bytes".into(), measure::peak_rss_bytes().into());
    line.insert("stack".into(), stack_name.into());
    line.insert("api".into(), args.api.into());
    println!("{}", serde_json::Value::Object(line));
    ExitCode::SUCCESS
}

/// This crate's `tracing` layer as the global subscriber.
#[cfg(feature = "tracing")]
fn install_tracing_layer() -> Result<otel_log_bridge::Guard, Box<dyn std::error::Error>> {
    use tracing_subscriber::prelude::*;
    let (layer, guard) = otel_log_bridge::builder().build_layer()?;
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))?;
    Ok(guard)
}

#[cfg(not(feature = "tracing"))]
fn install_tracing_layer() -> Result<otel_log_bridge::Guard, Box<dyn std::error::Error>> {
    Err("--api tracing: build with --features tracing".into())
}

enum Stack {
    Ours(otel_log_bridge::Guard),
    Official(official::Stack),
    /// log4rs, writing into this directory.
    Log4rs(std::path::PathBuf),
}

/// log4rs's rolling JSON file appender, as its documentation configures it in code.
mod log4rs_stack {
    use std::path::{Path, PathBuf};

    use log4rs::append::rolling_file::RollingFileAppender;
    use log4rs::append::rolling_file::policy::compound::CompoundPolicy;
    use log4rs::append::rolling_file::policy::compound::roll::fixed_window::FixedWindowRoller;
    use log4rs::append::rolling_file::policy::compound::trigger::size::SizeTrigger;
    use log4rs::config::{Appender, Config, Root};
    use log4rs::encode::json::JsonEncoder;

    /// Our defaults (see the README's configuration table) of `LOG_DIR`, `LOG_FILE_MAX_BYTES` and
    /// `LOG_FILE_BACKUPS`.
    const DEFAULT_LOG_DIR: &str = "./logs";
    const DEFAULT_FILE_MAX_BYTES: u64 = 10_000_000;
    const DEFAULT_FILE_BACKUPS: u32 = 5;

    /// Installs log4rs writing `LOG_DIR/app.log`, rotating at `LOG_FILE_MAX_BYTES` into
    /// `app.log.1` .. `app.log.5`, with our defaults for both.
    pub fn install() -> Result<PathBuf, Box<dyn std::error::Error>> {
        let dir = std::env::var_os("LOG_DIR")
            .map_or_else(|| PathBuf::from(DEFAULT_LOG_DIR), PathBuf::from);
        let max_bytes = match std::env::var("LOG_FILE_MAX_BYTES") {
            Ok(v) => v
                .parse::<u64>()
                .map_err(|e| format!("LOG_FILE_MAX_BYTES: {e}"))?,
            Err(_) => DEFAULT_FILE_MAX_BYTES,
        };
        let pattern = format!("{}/app.log.{{}}", dir.display());
        let roller = FixedWindowRoller::builder().build(&pattern, DEFAULT_FILE_BACKUPS)?;
        let policy = CompoundPolicy::new(Box::new(SizeTrigger::new(max_bytes)), Box::new(roller));
        let appender = RollingFileAppender::builder()
            .encoder(Box::new(JsonEncoder::new()))
            .build(dir.join("app.log"), Box::new(policy))?;
        let config = Config::builder()
            .appender(Appender::builder().build("file", Box::new(appender)))
            .build(
                Root::builder()
                    .appender("file")
                    .build(log::LevelFilter::Info),
            )?;
        log4rs::init_config(config)?;
        Ok(dir)
    }

    /// Lines in the files log4rs wrote into `dir`.
    pub fn lines(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("app.log"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .map(|b| b.iter().filter(|c| **c == b'\n').count() as u64)
            .sum()
    }
}

/// The official stack for side-by-side runs: `opentelemetry-appender-log` -> SDK `BatchLogProcessor`
/// -> `opentelemetry-otlp` exporter (tonic, or HTTP as `OTEL_EXPORTER_OTLP_PROTOCOL` says),
/// configured from the same `OTEL_*` variables (the SDK reads `OTEL_BLRP_*` and the exporter
/// `OTEL_EXPORTER_OTLP_*` itself).
mod official {
    pub struct Stack {
        provider: opentelemetry_sdk::logs::SdkLoggerProvider,
        // The tonic exporter needs a tokio runtime; the official stack does not bring its own.
        _runtime: tokio::runtime::Runtime,
    }

    impl Stack {
        /// Installs the stack for `log` records, or for `tracing` events with `tracing_api`.
        pub fn install(tracing_api: bool) -> Result<Stack, Box<dyn std::error::Error>> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let provider = {
                let _entered = runtime.enter();
                let exporter = exporter()?;
                opentelemetry_sdk::logs::SdkLoggerProvider::builder()
                    .with_batch_exporter(exporter)
                    .build()
            };
            if tracing_api {
                use tracing_subscriber::prelude::*;
                let bridge = opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(
                    &provider,
                );
                tracing::subscriber::set_global_default(
                    tracing_subscriber::registry().with(bridge),
                )?;
            } else {
                let bridge = opentelemetry_appender_log::OpenTelemetryLogBridge::new(&provider);
                log::set_boxed_logger(Box::new(bridge))?;
                log::set_max_level(log::LevelFilter::Info);
            }
            Ok(Stack {
                provider,
                _runtime: runtime,
            })
        }

        pub fn shutdown(self) {
            let _ = self.provider.shutdown();
        }
    }

    /// The exporter `OTEL_EXPORTER_OTLP_(LOGS_)PROTOCOL` asks for: tonic for `grpc` (the default
    /// here, as for ours), the blocking reqwest client (the official default for HTTP) otherwise.
    fn exporter() -> Result<opentelemetry_otlp::LogExporter, Box<dyn std::error::Error>> {
        use opentelemetry_otlp::WithExportConfig as _;
        let protocol = [
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|p| !p.is_empty()))
        .unwrap_or_else(|| "grpc".to_owned());
        // reqwest is built here without a default TLS provider (this crate gives its own client
        // one explicitly); the official exporter's client takes the process default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = |p| {
            opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_protocol(p)
                .build()
        };
        Ok(match protocol.as_str() {
            "grpc" => opentelemetry_otlp::LogExporter::builder()
                .with_tonic()
                .build()?,
            "http/protobuf" => http(opentelemetry_otlp::Protocol::HttpBinary)?,
            "http/json" => http(opentelemetry_otlp::Protocol::HttpJson)?,
            other => return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL: {other:?}; expected grpc, http/protobuf or http/json"
            )
            .into()),
        })
    }
}

/// Emits this thread's share (`i = t, t + threads, ...`); returns sampled call latencies in ns.
fn emit(
    t: u64,
    threads: u64,
    count: u64,
    rate: Option<f64>,
    span: SpanContext,
    barrier: &Barrier,
    tracing_api: bool,
) -> (Vec<u64>, Duration) {
    let _cx = opentelemetry::Context::new()
        .with_remote_span_context(span)
        .attach();
    let mut samples = Vec::with_capacity((count / threads / SAMPLE_EVERY + 1) as usize);
    barrier.wait();
    let start = Instant::now();
    let cpu_start = measure::thread_cpu();
    let mut k = 0u64;
    let mut i = t;
    while i < count {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(k as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let record = || {
            if tracing_api {
                tracing::info!(target: "payment.service", amount = 150.0, user_id = 42, currency = "EUR", seq = i, "Transaction processed {}", i);
            } else {
                log::info!(target: "payment.service", amount = 150.0, user_id = 42, currency = "EUR", seq = i; "Transaction processed {}", i);
            }
        };
        if k.is_multiple_of(SAMPLE_EVERY) {
            let t0 = Instant::now();
            record();
            samples.push(t0.elapsed().as_nanos() as u64);
        } else {
            record();
        }
        k += 1;
        i += threads;
    }
    (samples, measure::thread_cpu().saturating_sub(cpu_start))
}

/// What the summary line measures besides time: CPU time, percentiles, peak memory.
mod measure;
