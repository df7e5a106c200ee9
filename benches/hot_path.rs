//! Calling-thread cost of a record, ours against the official stack (`opentelemetry-appender-log` ->
//! SDK `BatchLogProcessor` -> `opentelemetry-otlp` tonic exporter) in the same run, plus the encoders.
//!
//! `cargo bench --bench hot_path`. Both stacks export to the same in-process collector on 127.0.0.1;
//! each sample logs into queues large enough to hold it, and the queues are flushed between samples
//! (untimed), so the figures are the enqueue path with the queue not full.
//!
//! The enqueue benches measure the calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), what the
//! targets are stated in: on a small machine the worker and the collector run at the same time and
//! would otherwise add their time slices to the caller's wall-clock figure. `loadgen`'s
//! `ns_per_call` is the wall-clock view.
//!
//! `ours/*` log into a warm queue: before the samples, one whole lap of the queue is logged and
//! exported (untimed), so its memory is paged in, as a service's queue is after its first lap.
//! `ours/loadgen_record_first_lap` logs into a queue just made (each sample its own pipeline), the
//! page faults of a first lap included.

#[path = "../tests/common/mod.rs"]
mod common;

use common::measure;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry::trace::TraceContextExt as _;
use otel_log_bridge::bench_support;

const QUEUE: usize = 1 << 21;

fn span() -> opentelemetry::ContextGuard {
    opentelemetry::Context::new()
        .with_remote_span_context(common::span_context())
        .attach()
}

/// Logs loadgen's record (`i` as the sequence number) through `logger`.
fn loadgen_record(logger: &dyn log::Log, i: u64) {
    let kvs: [(&str, log::kv::Value<'_>); 4] = [
        ("amount", 150.0f64.into()),
        ("user_id", 42i64.into()),
        ("currency", "EUR".into()),
        ("seq", i.into()),
    ];
    logger.log(
        &log::Record::builder()
            .args(format_args!("Transaction processed {i}"))
            .level(log::Level::Info)
            .target("payment.service")
            .module_path_static(Some("loadgen"))
            .file_static(Some("examples/loadgen.rs"))
            .line(Some(42))
            .key_values(&kvs)
            .build(),
    );
}

/// A struct of five fields, logged as a structured value (`order:serde = order`).
#[derive(serde::Serialize)]
struct Order {
    id: u64,
    customer: &'static str,
    items: [&'static str; 2],
    total: f64,
    paid: bool,
}

/// Logs a record carrying an [`Order`] (`i` as its id) through `logger`.
fn struct_record(logger: &dyn log::Log, i: u64) {
    let order = Order {
        id: i,
        customer: "bob",
        items: ["book", "pen"],
        total: 12.5,
        paid: true,
    };
    let kvs: [(&str, log::kv::Value<'_>); 1] = [("order", log::kv::Value::from_serde(&order))];
    logger.log(
        &log::Record::builder()
            .args(format_args!("order placed"))
            .level(log::Level::Info)
            .target("payment.service")
            .module_path_static(Some("loadgen"))
            .key_values(&kvs)
            .build(),
    );
}

fn static_record(logger: &dyn log::Log, level: log::Level) {
    logger.log(
        &log::Record::builder()
            .args(format_args!("Transaction processed"))
            .level(level)
            .target("payment.service")
            .module_path_static(Some("loadgen"))
            .build(),
    );
}

/// The official stack, set up as its documentation shows, with a queue as large as ours, exporting
/// to `collector`; with the runtime its exporter needs.
fn official_provider(
    collector: &common::Collector,
) -> (
    tokio::runtime::Runtime,
    opentelemetry_sdk::logs::SdkLoggerProvider,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let provider = {
        let _entered = rt.enter();
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::LogExporter::builder()
            .with_tonic()
            .with_endpoint(collector.endpoint())
            .build()
            .unwrap();
        let processor = opentelemetry_sdk::logs::BatchLogProcessor::builder(exporter)
            .with_batch_config(
                opentelemetry_sdk::logs::BatchConfigBuilder::default()
                    .with_max_queue_size(QUEUE)
                    .build(),
            )
            .build();
        opentelemetry_sdk::logs::SdkLoggerProvider::builder()
            .with_log_processor(processor)
            .build()
    };
    (rt, provider)
}

/// loadgen's record as a `tracing` event: the message and four fields.
#[cfg(feature = "tracing")]
fn tracing_event(i: u64) {
    tracing::info!(
        target: "payment.service",
        amount = 150.0,
        user_id = 42i64,
        currency = "EUR",
        seq = i,
        "Transaction processed {i}"
    );
}

/// A `tracing` event with four fields inside a span: through our layer, and through
/// `opentelemetry-appender-tracing` into the SDK's batch processor, each the only layer of its
/// subscriber, in the same run.
#[cfg(feature = "tracing")]
fn tracing_events(c: &mut Criterion) {
    use tracing_subscriber::prelude::*;
    let collector = common::Collector::start_discarding();
    let (layer, guard) = otel_log_bridge::builder()
        .read_env(false)
        .mode(otel_log_bridge::Mode::OtlpOnly)
        .endpoint(collector.endpoint())
        .level(log::LevelFilter::Info)
        .max_queue_size(QUEUE)
        .build_layer()
        .unwrap();
    let ours = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    // The official stack has a collector of its own, which counts what it delivers.
    let official_collector = common::Collector::start_discarding();
    let (_rt, provider) = official_provider(&official_collector);
    let official =
        tracing::Dispatch::new(tracing_subscriber::registry().with(
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&provider),
        ));
    let _cx = span();
    let in_span = |dispatch: &tracing::Dispatch, f: &mut dyn FnMut()| {
        tracing::dispatcher::with_default(dispatch, || {
            let span = tracing::info_span!("checkout", order = 7);
            let _entered = span.enter();
            f()
        })
    };
    // One lap of our queue, untimed, as for the `log` rows.
    in_span(&ours, &mut || {
        for i in 0..QUEUE as u64 {
            tracing_event(i);
            if i % (QUEUE as u64 / 4) == 0 {
                guard.flush(Duration::from_secs(60)).unwrap();
            }
        }
    });
    guard.flush(Duration::from_secs(60)).unwrap();
    let mut g = c.benchmark_group("hot_path");
    g.throughput(Throughput::Elements(1));
    // Each sample logs inside the span, then flushes.
    let rows: [(&str, &tracing::Dispatch, &dyn Fn()); 2] = [
        ("ours/tracing_event_4_fields_in_span", &ours, &|| {
            guard.flush(Duration::from_secs(60)).unwrap()
        }),
        (
            "official/tracing_event_4_fields_in_span",
            &official,
            &|| {
                provider.force_flush().expect("the official stack's flush");
            },
        ),
    ];
    // The CPU time of the whole process but the two collectors.
    let pipelines_cpu = || {
        measure::process_cpu()
            .saturating_sub(collector.cpu())
            .saturating_sub(official_collector.cpu())
    };
    // Logs `n` events inside the span, timed on the calling thread, then flushes (untimed there,
    // counted in the whole).
    let official_logged = std::cell::Cell::new(0u64);
    let log_n = |dispatch: &tracing::Dispatch, flush: &dyn Fn(), n: u64| {
        if std::ptr::eq(dispatch, &official) {
            official_logged.set(official_logged.get() + n);
        }
        let start = pipelines_cpu();
        let mut caller = Duration::ZERO;
        in_span(dispatch, &mut || {
            caller = measure::thread_cpu_of(|| {
                for i in 0..n {
                    tracing_event(i);
                }
            });
        });
        flush();
        Cost {
            caller,
            whole: pipelines_cpu().saturating_sub(start),
        }
    };
    for (name, dispatch, flush) in rows {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| log_n(dispatch, flush, iters).caller)
        });
    }
    // The capture alone: no queue, no worker beside it (nothing to flush).
    let capture_only =
        tracing::Dispatch::new(tracing_subscriber::registry().with(bench_support::CaptureLayer));
    g.bench_function("ours/tracing_event_4_fields_capture_only", |b| {
        b.iter_custom(|iters| log_n(&capture_only, &|| {}, iters).caller)
    });
    g.finish();
    if paired_wanted() {
        paired(
            "tracing_event_4_fields_in_span",
            &mut |n| log_n(rows[0].1, rows[0].2, n),
            &mut |n| log_n(rows[1].1, rows[1].2, n),
        );
    }
    report_official(
        "tracing",
        &provider,
        official_logged.get(),
        &official_collector,
    );
    let s = guard.stats();
    assert_eq!(
        s.dropped.total(),
        0,
        "the queue must not have been full: {s:?}"
    );
    drop(guard);
    let _ = provider.shutdown();
}

/// Prints how many of the `logged` records (warm-up included) the official stack delivered to
/// its `collector`: its batch processor drops records when its queue is full, and a dropped
/// record costs its caller less than one sent on.
fn report_official(
    api: &str,
    provider: &opentelemetry_sdk::logs::SdkLoggerProvider,
    logged: u64,
    collector: &common::Collector,
) {
    if logged == 0 {
        return;
    }
    provider.force_flush().expect("the official stack's flush");
    let delivered = collector.discarded() as u64;
    println!(
        "hot_path/official ({api} rows): delivered {delivered} of the {logged} records logged \
         ({} dropped at its queue)",
        logged.saturating_sub(delivered)
    );
}

/// Whether the paired rounds run: with no filter, or one naming `paired`.
fn paired_wanted() -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| f.contains("paired"))
}

/// What logging some records cost.
#[derive(Debug, Clone, Copy)]
struct Cost {
    /// The calling thread's CPU time.
    caller: Duration,
    /// The CPU time of the whole process but the collectors, from the first record until the
    /// pipeline had delivered the last one: the caller and the pipeline's own threads.
    whole: Duration,
}

/// The two stacks measured in alternating rounds of the same number of records, so that a machine
/// that speeds up or slows down during the run (shared VMs do) affects both alike: prints, for the
/// calling thread and for the whole process but the collectors, each stack's median cost per
/// record and the median, lowest and highest of the rounds' ratios. `ours` and `official` log `n`
/// records and flush.
fn paired(name: &str, ours: &mut dyn FnMut(u64) -> Cost, official: &mut dyn FnMut(u64) -> Cost) {
    const ROUNDS: usize = 21;
    const PER_ROUND: u64 = 100_000;
    // One untimed round each first.
    ours(PER_ROUND);
    official(PER_ROUND);
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        // Which goes first alternates too.
        rounds.push(if round % 2 == 0 {
            let x = ours(PER_ROUND);
            (x, official(PER_ROUND))
        } else {
            let y = official(PER_ROUND);
            (ours(PER_ROUND), y)
        });
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let per_record = |d: Duration| d.as_nanos() as f64 / PER_ROUND as f64;
    for (what, part) in [
        (
            "calling thread",
            (|c: &Cost| c.caller) as fn(&Cost) -> Duration,
        ),
        ("whole process but the collectors", |c: &Cost| c.whole),
    ] {
        let mut a: Vec<f64> = rounds.iter().map(|(x, _)| per_record(part(x))).collect();
        let mut b: Vec<f64> = rounds.iter().map(|(_, y)| per_record(part(y))).collect();
        let mut ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| y / x).collect();
        let (ours_ns, official_ns, ratio) = (median(&mut a), median(&mut b), median(&mut ratios));
        println!(
            "hot_path/paired/{name} ({what}): ours {ours_ns:.0} ns, official {official_ns:.0} ns, \
             official/ours {ratio:.2}x (rounds {:.2}x to {:.2}x, {ROUNDS} rounds of {PER_ROUND})",
            ratios[0],
            ratios[ROUNDS - 1],
        );
    }
}

#[cfg(not(feature = "tracing"))]
fn tracing_events(_: &mut Criterion) {
    eprintln!("hot_path: the tracing rows need --features tracing");
}

fn hot_path(c: &mut Criterion) {
    let collector = common::Collector::start_discarding();
    let (ours, guard) = otel_log_bridge::builder()
        .read_env(false)
        .mode(otel_log_bridge::Mode::OtlpOnly)
        .endpoint(collector.endpoint())
        .level(log::LevelFilter::Info)
        .max_queue_size(QUEUE)
        .build()
        .unwrap();
    // Installed as well, for the disabled record through the `log` macros.
    let _installed = otel_log_bridge::builder()
        .read_env(false)
        .mode(otel_log_bridge::Mode::OtlpOnly)
        .endpoint(collector.endpoint())
        .level(log::LevelFilter::Info)
        .try_init()
        .unwrap();

    // The official stack has a collector of its own, which counts what it delivers.
    let official_collector = common::Collector::start_discarding();
    let (_rt, provider) = official_provider(&official_collector);
    let official = opentelemetry_appender_log::OpenTelemetryLogBridge::new(&provider);
    let official_logged = std::cell::Cell::new(0u64);

    let _cx = span();
    // One lap of the queue, untimed: its memory is in place for the samples.
    for i in 0..QUEUE as u64 {
        loadgen_record(&ours, i);
        if i % (QUEUE as u64 / 4) == 0 {
            guard.flush(Duration::from_secs(60)).unwrap();
        }
    }
    guard.flush(Duration::from_secs(60)).unwrap();
    let mut g = c.benchmark_group("hot_path");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ours/disabled_macro", |b| {
        b.iter(|| {
            log::debug!(target: "payment.service", amount = 150.0, user_id = 42; "Transaction processed {}", black_box(7))
        })
    });
    g.bench_function("ours/disabled", |b| {
        b.iter(|| static_record(black_box(&ours), log::Level::Debug))
    });
    let flush_ours = || guard.flush(Duration::from_secs(60)).unwrap();
    g.bench_function("ours/static_message", |b| {
        b.iter_custom(|iters| {
            let elapsed = measure::thread_cpu_of(|| {
                for _ in 0..iters {
                    static_record(&ours, log::Level::Info);
                }
            });
            flush_ours();
            elapsed
        })
    });
    g.bench_function("ours/loadgen_record", |b| {
        b.iter_custom(|iters| {
            let elapsed = measure::thread_cpu_of(|| {
                for i in 0..iters {
                    loadgen_record(&ours, i);
                }
            });
            flush_ours();
            elapsed
        })
    });
    // The same record in `durable` mode: the calling thread's work is the same, the worker writes
    // every batch to the spool before it sends it.
    let spool_dir = tempfile::tempdir().unwrap();
    let (durable, durable_guard) = otel_log_bridge::builder()
        .read_env(false)
        .mode(otel_log_bridge::Mode::Durable)
        .log_dir(spool_dir.path())
        .endpoint(collector.endpoint())
        .level(log::LevelFilter::Info)
        .max_queue_size(QUEUE)
        .build()
        .unwrap();
    for i in 0..QUEUE as u64 {
        loadgen_record(&durable, i);
        if i % (QUEUE as u64 / 4) == 0 {
            durable_guard.flush(Duration::from_secs(60)).unwrap();
        }
    }
    durable_guard.flush(Duration::from_secs(60)).unwrap();
    g.bench_function("ours/loadgen_record_durable", |b| {
        b.iter_custom(|iters| {
            let elapsed = measure::thread_cpu_of(|| {
                for i in 0..iters {
                    loadgen_record(&durable, i);
                }
            });
            durable_guard.flush(Duration::from_secs(60)).unwrap();
            elapsed
        })
    });
    g.bench_function("ours/loadgen_record_first_lap", |b| {
        b.iter_custom(|iters| {
            let (fresh, fresh_guard) = otel_log_bridge::builder()
                .read_env(false)
                .mode(otel_log_bridge::Mode::OtlpOnly)
                .endpoint(collector.endpoint())
                .level(log::LevelFilter::Info)
                .max_queue_size(QUEUE)
                .build()
                .unwrap();
            let elapsed = measure::thread_cpu_of(|| {
                for i in 0..iters {
                    loadgen_record(&fresh, i);
                }
            });
            let s = fresh_guard.shutdown(Duration::from_secs(60)).stats;
            assert_eq!(s.dropped.total(), 0, "{s:?}");
            elapsed
        })
    });
    let ours = std::sync::Arc::new(ours);
    g.bench_function("ours/loadgen_record_2_threads", |b| {
        // Each of two threads logs `iters` records at once; the time per call per thread, which
        // must not exceed the one-thread figure if producers share no lock.
        b.iter_custom(|iters| {
            let threads: Vec<_> = (0..2)
                .map(|t| {
                    let ours = ours.clone();
                    std::thread::spawn(move || {
                        let _cx = span();
                        measure::thread_cpu_of(|| {
                            for i in 0..iters {
                                loadgen_record(&*ours, t * iters + i);
                            }
                        })
                    })
                })
                .collect();
            let total: Duration = threads.into_iter().map(|t| t.join().unwrap()).sum();
            flush_ours();
            total / 2
        })
    });
    g.bench_function("official/loadgen_record", |b| {
        b.iter_custom(|iters| {
            official_logged.set(official_logged.get() + iters);
            let elapsed = measure::thread_cpu_of(|| {
                for i in 0..iters {
                    loadgen_record(&official, i);
                }
            });
            provider.force_flush().expect("the official stack's flush");
            elapsed
        })
    });
    g.bench_function("ours/struct_5_fields", |b| {
        b.iter_custom(|iters| {
            let elapsed = measure::thread_cpu_of(|| {
                for i in 0..iters {
                    struct_record(&ours, i);
                }
            });
            flush_ours();
            elapsed
        })
    });
    // The official appender with its `with-serde` feature maps the struct to a map as well.
    g.bench_function("official/struct_5_fields", |b| {
        b.iter_custom(|iters| {
            official_logged.set(official_logged.get() + iters);
            let elapsed = measure::thread_cpu_of(|| {
                for i in 0..iters {
                    struct_record(&official, i);
                }
            });
            provider.force_flush().expect("the official stack's flush");
            elapsed
        })
    });
    g.finish();
    report_official("log", &provider, official_logged.get(), &official_collector);
    let s = guard.stats();
    assert_eq!(
        s.dropped.total(),
        0,
        "the queue must not have been full: {s:?}"
    );
    drop(guard);
    let _ = provider.shutdown();
}

fn queue_full(c: &mut Criterion) {
    // A one-record queue whose worker hangs on a collector that never answers: every record after
    // the first is refused at the queue.
    let hole = common::BlackHole::start();
    let (ours, guard) = otel_log_bridge::builder()
        .read_env(false)
        .mode(otel_log_bridge::Mode::OtlpOnly)
        .endpoint(hole.endpoint())
        .max_queue_size(1)
        .max_export_batch_size(1)
        .export_timeout(Duration::from_secs(3600))
        .request_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let _cx = span();
    c.bench_function("hot_path/ours/queue_full", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            loadgen_record(&ours, i)
        })
    });
    let _ = guard.shutdown(Duration::from_millis(10));
}

fn encoders(c: &mut Criterion) {
    let _cx = span();
    let kvs: [(&str, log::kv::Value<'_>); 4] = [
        ("amount", 150.0f64.into()),
        ("user_id", 42i64.into()),
        ("currency", "EUR".into()),
        ("seq", 7u64.into()),
    ];
    let event = bench_support::capture(
        &log::Record::builder()
            .args(format_args!("Transaction processed {}", 7))
            .level(log::Level::Info)
            .target("payment.service")
            .key_values(&kvs)
            .build(),
    );
    let mut out = Vec::with_capacity(1024);
    c.bench_function("encode/json_line", |b| {
        b.iter(|| {
            out.clear();
            bench_support::encode_json(black_box(&event), &mut out);
        })
    });
    let mut g = c.benchmark_group("encode/otlp_request");
    for n in [1usize, 64, 512] {
        let batch = bench_support::batch(&vec![event.clone(); n]);
        let mut encoder = bench_support::OtlpEncoder::default();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &batch, |b, batch| {
            b.iter(|| encoder.encode(black_box(batch)))
        });
    }
    g.finish();
    // The baseline the direct writer replaced, and the http/json encoding, for the batch size of a
    // full export.
    let batch = bench_support::batch(&vec![event.clone(); 512]);
    let mut encoder = bench_support::OtlpEncoder::default();
    let mut g = c.benchmark_group("encode/otlp_request_prost");
    g.throughput(Throughput::Elements(512));
    g.bench_function("512", |b| {
        b.iter(|| encoder.encode_prost(black_box(&batch)))
    });
    g.finish();
    let mut g = c.benchmark_group("encode/otlp_request_json");
    g.throughput(Throughput::Elements(512));
    g.bench_function("512", |b| b.iter(|| encoder.encode_json(black_box(&batch))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = hot_path, tracing_events, queue_full, encoders
}
criterion_main!(benches);
