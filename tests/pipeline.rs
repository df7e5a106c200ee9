//! End-to-end tests of the pipeline against a real in-process OTLP/gRPC collector.

mod common;

use std::time::{Duration, Instant};

use common::{Answer, Collector, builder, closed_endpoint, span_context, string, wait_for};
use log::Log as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use otel_log_bridge::Logger;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(20);

/// Logs one record through `logger` (not the global logger), with key-values.
fn emit(
    logger: &Logger,
    level: log::Level,
    target: &str,
    msg: std::fmt::Arguments<'_>,
    kvs: &[(&str, log::kv::Value<'_>)],
) {
    logger.log(
        &log::Record::builder()
            .args(msg)
            .level(level)
            .target(target)
            .module_path_static(Some("pipeline_test::handler"))
            .file_static(Some("tests/pipeline.rs"))
            .line(Some(4242))
            .key_values(&kvs)
            .build(),
    );
}

fn info(logger: &Logger, i: usize) {
    emit(
        logger,
        log::Level::Info,
        "app",
        format_args!("record {i}"),
        &[("seq", (i as u64).into())],
    );
}

#[test]
fn records_carry_time_severity_body_typed_attributes_location_and_trace_context() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint())
        .resource_attribute("deployment.environment", "test")
        .build()
        .unwrap();
    let before = unix_nanos() as u64;
    {
        let _cx = opentelemetry::Context::new()
            .with_remote_span_context(span_context())
            .attach();
        emit(
            &logger,
            log::Level::Info,
            "payment.service",
            format_args!("Transaction processed"),
            &[
                ("amount", 150.0f64.into()),
                ("user_id", 42i64.into()),
                ("currency", "EUR".into()),
                ("ok", true.into()),
                ("big", u64::MAX.into()),
            ],
        );
    }
    let n = 7;
    emit(
        &logger,
        log::Level::Error,
        "other",
        format_args!("failed {n} times"),
        &[],
    );
    guard.flush(WAIT).unwrap();
    let after = unix_nanos() as u64;
    let records = collector.records();
    assert_eq!(records.len(), 2);
    let r = records
        .iter()
        .find(|r| r.scope == "payment.service")
        .expect("scope = target");
    assert_eq!(r.body(), "Transaction processed");
    assert_eq!(
        (r.record.severity_number, r.record.severity_text.as_str()),
        (9, "INFO")
    );
    // Give or take the records' clock's difference from the system clock (see below).
    assert!(
        (before - CLOCKS_APART..=after + CLOCKS_APART).contains(&r.record.time_unix_nano),
        "timestamp set"
    );
    assert_eq!(r.record.observed_time_unix_nano, r.record.time_unix_nano);
    assert_eq!(r.attr("amount"), Some(Value::DoubleValue(150.0)));
    assert_eq!(r.attr("user_id"), Some(Value::IntValue(42)));
    assert_eq!(r.attr("currency"), string("EUR"));
    assert_eq!(r.attr("ok"), Some(Value::BoolValue(true)));
    assert_eq!(r.attr("big"), string(&u64::MAX.to_string()));
    assert_eq!(r.attr("code.file.path"), string("tests/pipeline.rs"));
    assert_eq!(r.attr("code.line.number"), Some(Value::IntValue(4242)));
    assert_eq!(
        r.attr("code.function.name"),
        string("pipeline_test::handler")
    );
    common::assert_in_span(r);
    assert_eq!(r.record.flags, 1);
    assert_eq!(r.resource_attr("service.name"), string("test-service"));
    assert_eq!(r.resource_attr("deployment.environment"), string("test"));
    let e = records.iter().find(|r| r.scope == "other").unwrap();
    assert_eq!(e.body(), "failed 7 times");
    assert_eq!(
        (e.record.severity_number, e.record.severity_text.as_str()),
        (17, "ERROR")
    );
    assert!(
        e.record.trace_id.is_empty() && e.record.span_id.is_empty(),
        "no span: fields left empty"
    );
    let stats = guard.stats();
    assert_eq!(
        (stats.enqueued, stats.exported, stats.dropped.total()),
        (2, 2, 0)
    );
}

#[test]
fn a_tracing_opentelemetry_span_is_the_active_context() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint()).build().unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let expected = tracing::subscriber::with_default(subscriber, || {
        let _span = tracing::info_span!("handle_request").entered();
        info(&logger, 0);
        opentelemetry::Context::map_current(|cx| cx.span().span_context().clone())
    });
    assert!(expected.is_valid());
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    assert_eq!(
        records[0].record.trace_id,
        expected.trace_id().to_bytes().to_vec()
    );
    assert_eq!(
        records[0].record.span_id,
        expected.span_id().to_bytes().to_vec()
    );
}

#[test]
fn log_flush_drains_the_queue_before_the_schedule() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint())
        .schedule_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    for i in 0..100 {
        info(&logger, i);
    }
    logger.flush();
    assert_eq!(
        collector.records().len(),
        100,
        "flush() returned before the records were exported"
    );
    assert_eq!(guard.stats().exported, 100);
}

#[test]
fn batches_are_cut_at_the_batch_size() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint())
        .schedule_delay(Duration::from_secs(3600))
        .max_export_batch_size(10)
        .build()
        .unwrap();
    for i in 0..30 {
        info(&logger, i);
    }
    // No flush, no delay: only full batches wake the worker.
    collector.wait_for_records(30, WAIT);
    assert_eq!(collector.requests(), 3);
    drop(guard);
}

#[test]
fn shutdown_exports_what_is_queued_and_reports_nothing_undelivered() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint())
        .schedule_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    for i in 0..1000 {
        info(&logger, i);
    }
    let report = guard.shutdown(WAIT);
    assert!(report.completed);
    assert_eq!(report.undelivered, 0);
    assert_eq!(report.stats.exported, 1000);
    assert_eq!(collector.records().len(), 1000);
    // After shutdown records are refused and counted, not queued.
    info(&logger, 1000);
    let mut seqs = common::seqs(&collector.records());
    seqs.sort();
    assert_eq!(seqs, (0..1000).collect::<Vec<_>>());
}

#[test]
fn records_logged_after_shutdown_are_counted_as_dropped() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint()).build().unwrap();
    info(&logger, 0);
    let report = guard.shutdown(WAIT);
    assert!(report.completed);
    assert_eq!(report.stats.dropped.shutdown, 0);
    info(&logger, 1);
    info(&logger, 2);
    // Once the guard is gone no public handle reads the counters: that the two records after
    // shutdown count as `dropped.shutdown` (and not as enqueued) is asserted by the unit test
    // `records_logged_after_shutdown_are_counted_as_dropped` in src/lib.rs.
    let s = report.stats;
    assert_eq!((s.enqueued, s.exported), (1, 1));
    assert_eq!(collector.records().len(), 1);
}

#[test]
fn without_a_collector_shutdown_is_bounded_and_reports_the_undelivered() {
    let (logger, guard) = builder(&closed_endpoint())
        .export_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    for i in 0..10 {
        info(&logger, i);
    }
    let started = Instant::now();
    let report = guard.shutdown(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(report.completed);
    assert_eq!(report.undelivered, 10);
    assert_eq!(report.stats.dropped.export_failed, 10);
    assert!(report.stats.export_errors >= 1);
}

#[test]
fn above_the_watermark_info_is_shed_and_warn_kept_and_a_full_queue_drops() {
    // The worker takes the first batch and hangs on a collector that never answers, so the queue
    // mostly fills. How many more records the worker takes before it is stuck (up to two more
    // batches) and when depends on how fast it is, so the figures are stated for whatever it holds;
    // the exact shedding figures are checked against the queue alone (src/tests.rs).
    let hole = common::BlackHole::start();
    let (logger, guard) = builder(&hole.endpoint())
        .max_queue_size(100)
        .max_export_batch_size(10)
        .high_watermark_percent(50)
        .schedule_delay(Duration::from_secs(3600))
        .export_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for i in 0..10 {
        info(&logger, i);
    }
    wait_for(WAIT, "the worker to take the first batch", || {
        guard.stats().queue_depth == 0
    });
    for i in 0..60 {
        info(&logger, i);
    }
    for i in 0..60 {
        emit(
            &logger,
            log::Level::Warn,
            "app",
            format_args!("warn {i}"),
            &[],
        );
    }
    // The worker publishes what it holds after taking a batch: wait until a batch it is taking
    // (on a slow machine, right now) is published, then read the figures.
    wait_for(WAIT, "the worker to publish what it holds", || {
        let s = guard.stats();
        s.enqueued == s.queue_depth + s.in_flight
    });
    let s = guard.stats();
    // Besides the first batch, the worker took up to two more (one in flight beside the first,
    // one waiting for room), whenever it got to them; every record is accounted for at the queue.
    let held = s.in_flight;
    assert!([10, 20, 30].contains(&held), "{s:?}");
    assert_eq!(s.enqueued, s.queue_depth + held, "{s:?}");
    assert_eq!(
        s.enqueued + s.dropped.shed + s.dropped.queue_full,
        130,
        "{s:?}"
    );
    // Only INFO is shed (at most the 10 the watermark leaves no room for); WARN is refused only
    // when the queue is full: then 100 were queued beside the (at least) 10 the worker held, and
    // the worker may have taken more since (so the queue need not be full at this snapshot).
    assert!(s.dropped.shed <= 10, "{s:?}");
    assert!(s.dropped.queue_full == 0 || s.enqueued >= 100 + 10, "{s:?}");
    let queued = s.queue_depth;
    let report = guard.shutdown(Duration::from_millis(300));
    // Every record is accounted for: exported + dropped by reason + queued + in flight = emitted.
    let s = report.stats;
    // The hanging exports are abandoned before the deadline, so shutdown completes in time.
    assert!(report.completed, "{report:?}");
    assert_eq!((s.in_flight, s.queue_depth), (0, 0), "{s:?}");
    // Between the snapshot and the shutdown the worker may have taken more batches from the queue
    // (it runs when it gets a core): the abandoned batches are what it held by then, the rest was
    // still queued at the deadline; together, exactly what was queued or held at the snapshot.
    assert!(
        [10, 20, 30].contains(&s.dropped.export_failed) && s.dropped.export_failed >= held,
        "the abandoned batches: {s:?}"
    );
    assert_eq!(
        s.dropped.export_failed + s.dropped.shutdown,
        queued + held,
        "abandoned in flight or still queued at the deadline: {s:?}"
    );
    assert_eq!(
        s.exported + s.dropped.total() + s.queue_depth + s.in_flight,
        130,
        "{s:?}"
    );
    assert_eq!(report.undelivered, 130);
}

#[test]
fn retryable_codes_are_retried_until_delivered() {
    let collector = Collector::start();
    collector.script(vec![
        Answer::Fail {
            code: Code::Unavailable,
            retry_after: None,
        },
        Answer::Fail {
            code: Code::DeadlineExceeded,
            retry_after: None,
        },
    ]);
    let (logger, guard) = builder(&collector.endpoint()).build().unwrap();
    for i in 0..5 {
        info(&logger, i);
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(collector.records().len(), 5);
    assert_eq!(collector.requests(), 3);
    let s = guard.stats();
    assert_eq!((s.exported, s.export_errors, s.dropped.total()), (5, 2, 0));
}

#[test]
fn permanent_codes_and_resource_exhausted_without_retry_info_are_not_retried() {
    for code in [
        Code::ResourceExhausted,
        Code::InvalidArgument,
        Code::Unauthenticated,
    ] {
        let collector = Collector::start();
        collector.script(vec![Answer::Fail {
            code,
            retry_after: None,
        }]);
        let (logger, guard) = builder(&collector.endpoint()).build().unwrap();
        for i in 0..3 {
            info(&logger, i);
        }
        guard.flush(WAIT).unwrap();
        assert_eq!(collector.requests(), 1, "{code:?} must not be retried");
        let s = guard.stats();
        assert_eq!(
            (s.exported, s.dropped.export_failed, s.export_errors),
            (0, 3, 1),
            "{code:?}"
        );
        assert!(
            guard.last_export_error().unwrap().contains("permanent"),
            "{code:?}"
        );
    }
}

#[test]
fn resource_exhausted_with_retry_info_waits_the_given_delay() {
    let collector = Collector::start();
    let delay = Duration::from_millis(400);
    collector.script(vec![Answer::Fail {
        code: Code::ResourceExhausted,
        retry_after: Some(delay),
    }]);
    let (logger, guard) = builder(&collector.endpoint()).build().unwrap();
    info(&logger, 0);
    let started = Instant::now();
    guard.flush(WAIT).unwrap();
    assert!(
        started.elapsed() >= delay,
        "retried after {:?}",
        started.elapsed()
    );
    assert_eq!(collector.requests(), 2);
    assert_eq!(collector.records().len(), 1);
}

#[test]
fn partial_success_is_counted_and_not_retried() {
    let collector = Collector::start();
    collector.script(vec![Answer::PartialReject(2)]);
    let (logger, guard) = builder(&collector.endpoint()).build().unwrap();
    for i in 0..5 {
        info(&logger, i);
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(collector.requests(), 1);
    let s = guard.stats();
    assert_eq!((s.exported, s.dropped.rejected), (3, 2));
}

#[test]
fn transport_and_opentelemetry_targets_are_never_queued() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint()).build().unwrap();
    for target in [
        "h2::codec",
        "hyper",
        "hyper_util::client::legacy",
        "tonic::transport",
        "tower::buffer",
        "opentelemetry_sdk",
        "otel_log_bridge::worker",
    ] {
        emit(
            &logger,
            log::Level::Trace,
            target,
            format_args!("internal"),
            &[],
        );
        assert!(
            !logger.enabled(
                &log::Metadata::builder()
                    .level(log::Level::Error)
                    .target(target)
                    .build()
            )
        );
    }
    emit(
        &logger,
        log::Level::Trace,
        "app",
        format_args!("app record"),
        &[],
    );
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].body(), "app record");
    assert_eq!(guard.stats().enqueued, 1);
}

#[test]
fn level_filter_applies_in_log_itself() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint())
        .level(log::LevelFilter::Warn)
        .build()
        .unwrap();
    emit(
        &logger,
        log::Level::Info,
        "app",
        format_args!("too verbose"),
        &[],
    );
    emit(&logger, log::Level::Warn, "app", format_args!("kept"), &[]);
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].body(), "kept");
}

/// A value whose `Display` logs through the same logger, `depth` levels deep.
struct LogsWhileFormatted<'a> {
    logger: &'a Logger,
    depth: usize,
}

impl std::fmt::Display for LogsWhileFormatted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.depth > 0 {
            let inner = LogsWhileFormatted {
                logger: self.logger,
                depth: self.depth - 1,
            };
            emit(
                self.logger,
                log::Level::Info,
                "nested",
                format_args!("inner {inner}"),
                &[],
            );
        }
        write!(f, "depth {}", self.depth)
    }
}

struct PanicsWhenFormatted;

impl std::fmt::Display for PanicsWhenFormatted {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("Display failed")
    }
}

#[test]
fn a_display_that_logs_or_panics_neither_deadlocks_nor_escapes() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint()).build().unwrap();
    let one = LogsWhileFormatted {
        logger: &logger,
        depth: 1,
    };
    emit(
        &logger,
        log::Level::Info,
        "outer",
        format_args!("outer {one}"),
        &[],
    );
    let three = LogsWhileFormatted {
        logger: &logger,
        depth: 3,
    };
    emit(
        &logger,
        log::Level::Info,
        "outer",
        format_args!("outer {three}"),
        &[],
    );
    let panicking = PanicsWhenFormatted;
    emit(
        &logger,
        log::Level::Warn,
        "outer",
        format_args!("value {panicking}"),
        &[],
    );
    guard.flush(WAIT).unwrap();
    let bodies: Vec<String> = collector.records().iter().map(|r| r.body()).collect();
    assert!(bodies.contains(&"outer depth 1".to_string()), "{bodies:?}");
    assert!(bodies.contains(&"inner depth 0".to_string()), "{bodies:?}");
    assert!(bodies.contains(&"outer depth 3".to_string()), "{bodies:?}");
    assert!(bodies.contains(&"inner depth 2".to_string()), "{bodies:?}");
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("formatting the message panicked")),
        "{bodies:?}"
    );
    let s = guard.stats();
    assert_eq!(
        s.dropped.reentrant, 1,
        "the third level is dropped and counted: {s:?}"
    );
    assert_eq!(s.format_panics, 1);
    assert_eq!(bodies.len(), 5);
}

fn log_and_shut_down_inside_a_runtime() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint()).build().unwrap();
    for i in 0..10 {
        info(&logger, i);
    }
    let report = guard.shutdown(WAIT);
    assert!(report.completed);
    assert_eq!(collector.records().len(), 10);
}

#[tokio::test(flavor = "current_thread")]
async fn works_and_shuts_down_inside_a_current_thread_runtime() {
    log_and_shut_down_inside_a_runtime();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_and_shuts_down_inside_a_multi_thread_runtime() {
    log_and_shut_down_inside_a_runtime();
}

#[test]
fn build_is_created_and_dropped_inside_block_on() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let collector = Collector::start();
        let (logger, guard) = builder(&collector.endpoint()).build().unwrap();
        info(&logger, 0);
        drop(guard); // the guard's drop flushes from inside block_on
        assert_eq!(collector.records().len(), 1);
    });
}

#[test]
fn a_bad_endpoint_is_an_error_not_a_panic() {
    // Without a scheme: an error over HTTP; over gRPC the specification reads it as https://
    // (http:// with OTEL_EXPORTER_OTLP_INSECURE=true).
    let err = builder("localhost:4317")
        .protocol(otel_log_bridge::Protocol::HttpProtobuf)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("localhost:4317") && err.contains("http://host:port"),
        "{err}"
    );
    let err = builder("grpc://localhost:4317")
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("grpc://localhost:4317") && err.contains("http://host:port"),
        "{err}"
    );
    let (_, guard) = builder("localhost:4317").build().unwrap();
    assert_eq!(guard.endpoint(), "https://localhost:4317");
}

#[test]
fn many_threads_lose_nothing_when_the_queue_is_large_enough() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint())
        .max_queue_size(50_000)
        .build()
        .unwrap();
    let logger = std::sync::Arc::new(logger);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let logger = logger.clone();
            std::thread::spawn(move || {
                for i in 0..5000 {
                    info(&logger, t * 5000 + i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = guard.shutdown(WAIT);
    assert_eq!(report.undelivered, 0, "{report:?}");
    let mut seqs = common::seqs(&collector.records());
    seqs.sort();
    assert_eq!(seqs, (0..20_000).collect::<Vec<_>>());
}

#[test]
fn a_runtime_level_change_applies_to_the_next_record_and_is_audited() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint())
        .level(log::LevelFilter::Info)
        .level_change_cooldown(Duration::ZERO)
        .build()
        .unwrap();
    let levels = guard.levels();
    assert_eq!(levels.to_string(), "info");
    emit(
        &logger,
        log::Level::Debug,
        "app::db",
        format_args!("before"),
        &[],
    );
    let change = levels
        .set("app::db", log::LevelFilter::Debug, "alice")
        .unwrap();
    assert_eq!(
        (change.previous.as_str(), change.directives.as_str()),
        ("info", "info,app::db=debug")
    );
    emit(
        &logger,
        log::Level::Debug,
        "app::db",
        format_args!("after"),
        &[],
    );
    emit(
        &logger,
        log::Level::Debug,
        "app::api",
        format_args!("other target"),
        &[],
    );
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    let bodies: Vec<String> = records.iter().map(|r| r.body()).collect();
    assert_eq!(bodies, ["log level changed", "after"], "{bodies:?}");
    let audit = &records[0];
    assert_eq!(audit.scope, otel_log_bridge::AUDIT_TARGET);
    assert_eq!(
        (
            audit.record.severity_number,
            audit.record.severity_text.as_str()
        ),
        (13, "WARN")
    );
    assert_eq!(audit.attr("target"), string("app::db"));
    assert_eq!(audit.attr("level"), string("debug"));
    assert_eq!(audit.attr("actor"), string("alice"));
    assert_eq!(audit.attr("previous"), string("info"));

    // The default level, then the whole set at once.
    levels.set("*", log::LevelFilter::Warn, "bob").unwrap();
    assert_eq!(levels.to_string(), "warn,app::db=debug");
    levels.set_directives("error,app=trace", "carol").unwrap();
    assert_eq!(levels.to_string(), "error,app=trace");
    assert_eq!(logger.max_level(), log::LevelFilter::Trace);
}

#[test]
fn level_changes_are_validated_and_refused_within_the_cooldown() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint())
        .level(log::LevelFilter::Info)
        .directives("trace,app::db=warn")
        .level_change_cooldown(Duration::from_secs(3600))
        .build()
        .unwrap();
    let levels = guard.levels();
    assert_eq!(levels.to_string(), "info,app::db=warn");
    // A level is a `LevelFilter` now: a name that is none ("LOUD", "") cannot reach `set` (the
    // admin API's parsing refuses it, tests/admin.rs).
    for (target, level) in [
        ("a,b", log::LevelFilter::Info),
        ("a=b", log::LevelFilter::Info),
    ] {
        let err = levels.set(target, level, "mallory").unwrap_err();
        assert!(
            matches!(err, otel_log_bridge::LevelError::InvalidTarget { .. }),
            "{target} {level}: {err}"
        );
    }
    assert!(levels.set_directives("app=loud", "mallory").is_err());
    levels
        .set("app::db", log::LevelFilter::Trace, "alice")
        .unwrap();
    let err = levels
        .set("app::db", log::LevelFilter::Info, "bob")
        .unwrap_err();
    assert!(
        matches!(err, otel_log_bridge::LevelError::Cooldown { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("retry in"), "{err}");
    assert_eq!(
        levels.to_string(),
        "info,app::db=trace",
        "a refused change changes nothing"
    );
    emit(
        &logger,
        log::Level::Trace,
        "app::db::pool",
        format_args!("kept"),
        &[],
    );
    emit(
        &logger,
        log::Level::Debug,
        "app::api",
        format_args!("dropped"),
        &[],
    );
    guard.flush(WAIT).unwrap();
    let audits = collector
        .records()
        .iter()
        .filter(|r| r.scope == otel_log_bridge::AUDIT_TARGET)
        .count();
    assert_eq!(audits, 1, "only the accepted change is audited");
    assert!(collector.records().iter().any(|r| r.body() == "kept"));
    assert!(!collector.records().iter().any(|r| r.body() == "dropped"));
}

#[test]
fn headers_reach_the_collector_and_gzip_is_accepted() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint())
        .header("authorization", "Bearer s3cr3t")
        .header("x-tenant", "payments")
        .compression(otel_log_bridge::Compression::Gzip)
        .build()
        .unwrap();
    for i in 0..200 {
        info(&logger, i);
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(collector.records().len(), 200);
    let headers = collector.headers();
    let h = &headers[0];
    assert_eq!(h.get("authorization").unwrap(), "Bearer s3cr3t");
    assert_eq!(h.get("x-tenant").unwrap(), "payments");
    assert_eq!(
        h.get("grpc-encoding").map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
    assert!(!format!("{guard:?}").contains("s3cr3t"));
}

#[test]
fn an_invalid_header_is_an_error_that_does_not_show_its_value() {
    let err = builder("http://127.0.0.1:1")
        .header("Bad Key", "s3cr3t")
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("Bad Key") && !err.contains("s3cr3t"), "{err}");
}

#[test]
fn https_verifies_the_collector_with_the_configured_ca_and_refuses_an_unknown_one() {
    let key =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert_pem = key.cert.pem();
    let identity = tonic::transport::Identity::from_pem(&cert_pem, key.signing_key.serialize_pem());
    let collector = Collector::start_tls(identity);
    let endpoint = format!("https://{}", collector.addr);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert_pem).unwrap();

    // Trusted through the configured CA: delivered over TLS.
    let (logger, guard) = builder(&endpoint).certificate(&ca).build().unwrap();
    info(&logger, 1);
    guard.flush(WAIT).unwrap();
    assert_eq!(
        collector.records().len(),
        1,
        "{:?}",
        guard.last_export_error()
    );
    drop(guard);

    // Without it, the self-signed certificate is not trusted: nothing is delivered.
    let (logger, guard) = builder(&endpoint)
        .export_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    info(&logger, 2);
    guard.flush(WAIT).unwrap();
    assert_eq!(collector.records().len(), 1);
    assert_eq!(guard.stats().dropped.export_failed, 1);

    // A missing CA file is an error at start naming the path.
    let err = builder(&endpoint)
        .certificate(dir.path().join("missing.pem"))
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.pem"), "{err}");
}

#[test]
fn without_code_location_records_keep_everything_else_and_no_code_attributes() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().unwrap();
    let (logger, guard) = builder(&collector.endpoint())
        .code_location(false)
        .mode(otel_log_bridge::Mode::Tee)
        .log_dir(dir.path())
        .build()
        .unwrap();
    emit(
        &logger,
        log::Level::Warn,
        "payment.service",
        format_args!("declined"),
        &[("user_id", 42i64.into())],
    );
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        (r.scope.as_str(), r.body().as_str()),
        ("payment.service", "declined")
    );
    let keys: Vec<&str> = r
        .record
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(keys, ["user_id"]);
    drop(guard);
    let text = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["message"], "declined");
    assert_eq!(line["user_id"], 42);
    assert!(!text.contains("code."), "{text}");
}

#[test]
fn huge_records_are_truncated_visibly_and_large_batches_split_under_the_grpc_limit() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint())
        .schedule_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    // 40 records of 300 KiB: 12 MiB in one batch would exceed the 4 MiB a gRPC server accepts.
    let chunk = "x".repeat(300 * 1024);
    for i in 0..40 {
        emit(
            &logger,
            log::Level::Info,
            "big",
            format_args!("{i} {chunk}"),
            &[],
        );
    }
    // A 2 MiB message and 200 attributes.
    let huge = "é".repeat(1024 * 1024);
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let kvs: Vec<(&str, log::kv::Value<'_>)> =
        keys.iter().map(|k| (k.as_str(), 1i64.into())).collect();
    emit(
        &logger,
        log::Level::Warn,
        "huge",
        format_args!("{huge}"),
        &kvs,
    );
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    assert_eq!(records.len(), 41, "{:?}", guard.last_export_error());
    assert!(collector.requests() >= 4, "split into several requests");
    let h = records.iter().find(|r| r.scope == "huge").unwrap();
    let body = h.body();
    assert!(body.len() <= 1024 * 1024 + 64, "{}", body.len());
    assert!(
        body.ends_with("bytes]") && body.contains("…[truncated "),
        "marked"
    );
    let kept = h
        .record
        .attributes
        .iter()
        .filter(|a| !a.key.starts_with("code."))
        .count();
    assert_eq!(kept, 128);
    assert_eq!(h.record.dropped_attributes_count, 72);
    assert_eq!(guard.stats().dropped.total(), 0);
}

#[test]
fn each_batch_gets_the_whole_export_timeout_from_when_it_leaves() {
    // Every answer takes 700 ms against a 1 s export timeout. Batches leave two at a time, so the
    // third waits about 700 ms for the first before it leaves: with its timeout counted from when
    // it was assembled it would fail.
    let collector = Collector::start();
    collector.script(vec![Answer::Delay(Duration::from_millis(700)); 6]);
    let (logger, guard) = builder(&collector.endpoint())
        .max_export_batch_size(10)
        .export_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    for i in 0..60 {
        info(&logger, i);
    }
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!((s.exported, s.dropped.total()), (60, 0), "{s:?}");
    assert_eq!(collector.records().len(), 60);
}

/// Span `n` of the span-context tests: trace id `[7; 16]`, span id `n + 1`.
fn numbered_span(n: u64) -> opentelemetry::trace::SpanContext {
    opentelemetry::trace::SpanContext::new(
        opentelemetry::trace::TraceId::from_bytes([7; 16]),
        opentelemetry::trace::SpanId::from_bytes((n + 1).to_be_bytes()),
        opentelemetry::trace::TraceFlags::SAMPLED,
        true,
        Default::default(),
    )
}

/// A `Display` that, while the record holding it is formatted, logs a record in another span
/// ([`numbered_span`] `self.1`).
struct LogsInAnotherSpan<'a>(&'a Logger, u64);

impl std::fmt::Display for LogsInAnotherSpan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _cx = opentelemetry::Context::new()
            .with_remote_span_context(numbered_span(self.1))
            .attach();
        emit(
            self.0,
            log::Level::Warn,
            "app",
            format_args!("nested span={}", self.1),
            &[],
        );
        write!(f, "outer")
    }
}

#[test]
fn every_record_keeps_its_own_span_context_across_threads_spans_nesting_and_pipelines() {
    // Queued records refer to their thread's previous span context when it is the same, and give
    // their time relative to the thread's previous record. Threads change spans, log from a
    // `Display`, log to two pipelines in turn, exit and are replaced (their numbers reused): every
    // record must still arrive with the span its body names, and at the time it was logged.
    let (a, b) = (Collector::start(), Collector::start());
    let (logger_a, guard_a) = builder(&a.endpoint()).build().unwrap();
    let (logger_b, guard_b) = builder(&b.endpoint()).build().unwrap();
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 600;
    let mut expected = (0, 0);
    for round in 0..3u64 {
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (logger_a, logger_b) = (&logger_a, &logger_b);
                s.spawn(move || {
                    for i in 0..PER_THREAD {
                        // A new span every 5 records; none at all for every 7th record.
                        let n = (round * THREADS + t) * 1000 + i / 5;
                        let _cx = (i % 7 != 3).then(|| {
                            opentelemetry::Context::new()
                                .with_remote_span_context(numbered_span(n))
                                .attach()
                        });
                        let shown = if i % 7 == 3 { u64::MAX } else { n };
                        let logger = if i % 11 == 5 { logger_b } else { logger_a };
                        let kvs = [
                            ("thread", (round * THREADS + t).into()),
                            ("i", i.into()),
                            ("before", unix_nanos().into()),
                        ];
                        if i % 13 == 0 {
                            emit(
                                logger,
                                log::Level::Info,
                                "app",
                                format_args!(
                                    "span={shown} {}",
                                    LogsInAnotherSpan(logger, 900_000 + n)
                                ),
                                &kvs,
                            );
                        } else {
                            emit(
                                logger,
                                log::Level::Info,
                                "app",
                                format_args!("span={shown}"),
                                &kvs,
                            );
                        }
                    }
                });
            }
        });
        for i in 0..PER_THREAD {
            let n = 1 + u64::from(i % 13 == 0);
            if i % 11 == 5 {
                expected.1 += THREADS * n;
            } else {
                expected.0 += THREADS * n;
            }
        }
    }
    // (thread, i) -> (time given before the call, time of the record)
    let mut times = std::collections::BTreeMap::new();
    for (collector, guard, want) in [(&a, &guard_a, expected.0), (&b, &guard_b, expected.1)] {
        guard.flush(WAIT).unwrap();
        collector.wait_for_records(want as usize, WAIT);
        let records = collector.records();
        assert_eq!(records.len() as u64, want);
        for r in &records {
            let int = |key: &str| match r.attr(key) {
                Some(Value::IntValue(v)) => Some(v),
                _ => None,
            };
            if let (Some(thread), Some(i), Some(before)) = (int("thread"), int("i"), int("before"))
            {
                times.insert((thread, i), (before as u64, r.record.time_unix_nano));
            }
            let body = r.body();
            let shown: u64 = body
                .split_whitespace()
                .find_map(|w| w.strip_prefix("span="))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{body}"));
            if shown == u64::MAX {
                assert!(
                    r.record.span_id.is_empty(),
                    "{body}: {:?}",
                    r.record.span_id
                );
            } else {
                assert_eq!(r.record.trace_id, vec![7; 16], "{body}");
                assert_eq!(
                    r.record.span_id,
                    (shown + 1).to_be_bytes().to_vec(),
                    "{body}"
                );
            }
        }
    }
    assert_eq!(guard_a.stats().dropped.total(), 0);
    assert_eq!(guard_b.stats().dropped.total(), 0);
    // Each record's time lies between the system clock read before its call and the one before
    // the thread's next call, give or take the records' clock's difference from the system clock.
    assert_eq!(times.len() as u64, 3 * THREADS * PER_THREAD);
    let all: Vec<_> = times.into_iter().collect();
    for pair in all.windows(2) {
        let (((thread, i), (before, time)), ((next_thread, _), (next_before, _))) =
            (pair[0], pair[1]);
        assert!(
            before <= time + CLOCKS_APART,
            "thread {thread} record {i}: {time} < {before}"
        );
        if thread == next_thread {
            assert!(
                time <= next_before + CLOCKS_APART,
                "thread {thread} record {i}: {time} > {next_before}"
            );
        }
    }
}

/// How far a record's time may be from the system clock read next to its call: read from the
/// TSC, an anchor found more than 20 us off is withdrawn (see the README's record fields).
const CLOCKS_APART: u64 = 20_000;

fn unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}
