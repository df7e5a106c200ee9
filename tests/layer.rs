//! `tracing` events and OpenTelemetry SDK records on the pipeline, checked at the in-process
//! collector: typed fields, span context from `tracing-opentelemetry` spans, span fields, level
//! directives, `log` records through `tracing-log` and through the logger beside the layer, and the
//! SDK processor through an outage and back. Subscribers are scoped to each test (`with_default`).

mod common;

use std::time::{Duration, SystemTime};

use common::{Collector, Failure, Received, builder, closed_endpoint, string};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use otel_log_bridge::Mode;
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(20);

fn by_body<'a>(records: &'a [Received], body: &str) -> &'a Received {
    records
        .iter()
        .find(|r| r.record.body.as_ref().and_then(|b| b.value.as_ref()) == string(body).as_ref())
        .unwrap_or_else(|| panic!("no record {body:?} in {records:#?}"))
}

#[test]
fn an_event_keeps_its_typed_fields_and_the_trace_of_its_tracing_opentelemetry_span() {
    static ROOT: Failure = Failure("connection refused", None);
    static OUTER: Failure = Failure("charge failed", Some(&ROOT));
    let collector = Collector::start();
    let (layer, guard) = builder(&collector.endpoint()).build_layer().unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    let subscriber = tracing_subscriber::registry().with(otel).with(layer);
    let trace_id = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("checkout", order = 7);
        let _entered = span.enter();
        let err: &(dyn std::error::Error + 'static) = &OUTER;
        tracing::warn!(
            user_id = 42u64,
            amount = 150.0,
            ok = true,
            currency = "EUR",
            big = u128::MAX,
            err,
            addr = %"127.0.0.1:80",
            list = ?[1, 2],
            "Transaction {}",
            "processed"
        );
        tracing::info!(name: "order.placed", "placed");
        opentelemetry::Context::current()
            .span()
            .span_context()
            .trace_id()
    });
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    assert_eq!(records.len(), 2, "{records:#?}");
    let r = by_body(&records, "Transaction processed");
    assert_eq!(r.scope, "layer");
    assert_eq!(r.record.severity_number, 13);
    assert_eq!(r.record.severity_text, "WARN");
    assert_eq!(r.attr("user_id"), Some(Value::IntValue(42)));
    assert_eq!(r.attr("amount"), Some(Value::DoubleValue(150.0)));
    assert_eq!(r.attr("ok"), Some(Value::BoolValue(true)));
    assert_eq!(r.attr("currency"), string("EUR"));
    assert_eq!(r.attr("big"), string(&u128::MAX.to_string()));
    assert_eq!(r.attr("err"), string("charge failed: connection refused"));
    assert_eq!(
        r.attr("exception.message"),
        string("charge failed: connection refused")
    );
    assert_eq!(r.attr("addr"), string("127.0.0.1:80"));
    assert_eq!(r.attr("list"), string("[1, 2]"));
    assert_eq!(r.attr("message"), None, "the message is the body");
    assert_eq!(r.attr("code.file.path"), string(file!()));
    assert!(matches!(r.attr("code.line.number"), Some(Value::IntValue(n)) if n > 0));
    assert_eq!(r.attr("code.function.name"), string(module_path!()));
    // The span's trace and span ids, from the OpenTelemetry context the span activated.
    assert_ne!(trace_id, opentelemetry::trace::TraceId::INVALID);
    assert_eq!(r.record.trace_id, trace_id.to_bytes().to_vec());
    assert_eq!(r.record.span_id.len(), 8);
    assert_eq!(r.attr("order"), None, "span fields are off by default");
    // A name given at the call site is the event name; the default one is not.
    assert_eq!(
        by_body(&records, "placed").record.event_name,
        "order.placed"
    );
    assert_eq!(r.record.event_name, "");
}

#[test]
fn event_name_and_exception_message_fields_keep_their_meaning_on_every_event_of_a_callsite() {
    static CAUSE: Failure = Failure("connection refused", None);
    let collector = Collector::start();
    let (layer, guard) = builder(&collector.endpoint()).build_layer().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let err: &(dyn std::error::Error + 'static) = &CAUSE;
        // Twice: the first event makes its callsite's entry in this thread's cache, the second
        // reads it.
        for n in 0..2i64 {
            tracing::info!(
                event.name = "order.paid",
                exception.message = "own text",
                err,
                n,
                "paid {n}"
            );
        }
    });
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    assert_eq!(records.len(), 2, "{records:#?}");
    for (n, body) in [(0, "paid 0"), (1, "paid 1")] {
        let r = by_body(&records, body);
        assert_eq!(r.record.event_name, "order.paid", "{r:#?}");
        assert_eq!(
            r.attr("event.name"),
            None,
            "the event name is not an attribute"
        );
        assert_eq!(
            r.attr("exception.message"),
            string("own text"),
            "its own wins"
        );
        let keys = r.record.attributes.iter().map(|kv| kv.key.as_str());
        assert_eq!(keys.filter(|k| *k == "exception.message").count(), 1);
        assert_eq!(r.attr("err"), string("connection refused"));
        assert_eq!(r.attr("n"), Some(Value::IntValue(n)));
    }
}

#[test]
fn span_fields_are_added_when_asked_the_events_own_and_the_inner_spans_winning() {
    let collector = Collector::start();
    let (layer, guard) = builder(&collector.endpoint())
        .span_fields(true)
        .build_layer()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let outer = tracing::info_span!("request", request_id = "r-1", user = 7, tenant = 3);
        let _o = outer.enter();
        let inner = tracing::info_span!("db", user = 8, rows = tracing::field::Empty);
        let _i = inner.enter();
        inner.record("rows", 12);
        tracing::info!(tenant = "mine", "query done");
    });
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    let r = by_body(&records, "query done");
    assert_eq!(r.attr("tenant"), string("mine"), "the event's own wins");
    assert_eq!(
        r.attr("user"),
        Some(Value::IntValue(8)),
        "the inner span wins"
    );
    assert_eq!(r.attr("rows"), Some(Value::IntValue(12)), "recorded later");
    assert_eq!(r.attr("request_id"), string("r-1"));
    let keys: Vec<_> = r
        .record
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(keys.iter().filter(|k| **k == "user").count(), 1, "{keys:?}");
}

/// Two pipelines' layers on one registry: each adds the fields of the spans its own directives
/// keep, not those of a span only the other keeps.
#[test]
fn each_pipeline_adds_only_the_fields_of_spans_it_keeps() {
    let (wide, narrow) = (Collector::start(), Collector::start());
    let (wide_layer, wide_guard) = builder(&wide.endpoint())
        .level(log::LevelFilter::Debug)
        .span_fields(true)
        .build_layer()
        .unwrap();
    let (narrow_layer, narrow_guard) = builder(&narrow.endpoint())
        .level(log::LevelFilter::Warn)
        .span_fields(true)
        .build_layer()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(wide_layer)
        .with(narrow_layer);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::debug_span!("step", step_id = "s-1");
        let _s = span.enter();
        tracing::error!("failed");
    });
    wide_guard.flush(WAIT).unwrap();
    narrow_guard.flush(WAIT).unwrap();
    let wide = wide.records();
    assert_eq!(by_body(&wide, "failed").attr("step_id"), string("s-1"));
    let narrow = narrow.records();
    assert_eq!(by_body(&narrow, "failed").attr("step_id"), None);
}

#[test]
fn level_directives_and_runtime_changes_apply_to_events_and_internal_targets_never_enter() {
    let collector = Collector::start();
    let (layer, guard) = builder(&collector.endpoint())
        .level(log::LevelFilter::Info)
        .directives("noisy=error")
        .level_change_cooldown(Duration::ZERO)
        .build_layer()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    // The same call sites before and after a change: `tracing` caches what the layer wants of each.
    let at_debug = |body: &str| tracing::debug!("{body}");
    let at_info = |body: &str| tracing::info!("{body}");
    tracing::subscriber::with_default(subscriber, || {
        at_debug("hidden debug before");
        at_info("kept info before");
        tracing::debug!("hidden debug");
        tracing::warn!(target: "noisy", "hidden warn");
        tracing::error!(target: "noisy", "kept error");
        // The transport's own targets: never queued (no feedback), whatever the level.
        tracing::error!(target: "h2::proto", "transport");
        tracing::error!(target: "hyper", "transport");
        tracing::info!("kept info");
        guard
            .levels()
            .set("*", log::LevelFilter::Debug, "test")
            .unwrap();
        tracing::debug!("kept debug");
        at_debug("kept debug after");
        guard
            .levels()
            .set("*", log::LevelFilter::Warn, "test")
            .unwrap();
        at_info("hidden info after");
        at_debug("hidden debug after");
    });
    guard.flush(WAIT).unwrap();
    let mut bodies: Vec<String> = collector
        .records()
        .iter()
        .map(Received::body)
        .filter(|b| b != "log level changed")
        .collect();
    // In any order: batches may be in flight side by side.
    bodies.sort();
    assert_eq!(
        bodies,
        [
            "kept debug",
            "kept debug after",
            "kept error",
            "kept info",
            "kept info before",
        ]
    );
}

/// Asking whether a `log` record would be kept (`log_enabled!` through `tracing-log`) and getting
/// no must not hide the next event from the pipeline: `tracing-subscriber` keeps a per-layer
/// filter's "no" until an event consumes it, and an event of a call site `tracing` no longer asks
/// about would read it.
#[test]
fn a_record_the_pipeline_would_not_keep_asked_about_does_not_hide_the_next_event() {
    let collector = Collector::start();
    let (layer, guard) = builder(&collector.endpoint())
        .level(log::LevelFilter::Info)
        .directives("chatty=debug")
        .build_layer()
        .unwrap();
    let tracer = tracing_log::LogTracer::new();
    let question = log::Metadata::builder()
        .level(log::Level::Debug)
        .target("quiet")
        .build();
    let emit = |body: &str| tracing::info!("{body}");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        emit("first");
        let _ = log::Log::enabled(&tracer, &question);
        emit("after the question");
        // The layer asks the directives itself: with each `log` record's own target.
        for (target, body) in [("quiet", "quiet debug"), ("chatty", "chatty debug")] {
            log::Log::log(
                &tracer,
                &log::Record::builder()
                    .args(format_args!("{body}"))
                    .level(log::Level::Debug)
                    .target(target)
                    .build(),
            );
        }
    });
    guard.flush(WAIT).unwrap();
    let mut bodies: Vec<String> = collector.records().iter().map(Received::body).collect();
    bodies.sort();
    assert_eq!(bodies, ["after the question", "chatty debug", "first"]);
}

/// A layer of the application's, without a filter, that counts every event it is given.
struct CountsEverything(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl<S: tracing_core::Subscriber> tracing_subscriber::Layer<S> for CountsEverything {
    fn on_event(&self, _: &tracing_core::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Beside a layer that wants every event (so `tracing` asks about each), the pipeline still
/// keeps only what its directives keep, and never the transport's own targets.
#[test]
fn beside_a_layer_that_wants_everything_the_directives_and_internal_targets_still_apply() {
    let collector = Collector::start();
    let (layer, guard) = builder(&collector.endpoint())
        .level(log::LevelFilter::Info)
        .directives("noisy=error")
        .build_layer()
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(CountsEverything(seen.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!("hidden debug");
        tracing::warn!(target: "noisy", "hidden warn");
        tracing::error!(target: "h2::proto", "transport");
        tracing::error!(target: "tonic::transport", "transport");
        tracing::info!("kept info");
    });
    guard.flush(WAIT).unwrap();
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::Relaxed),
        5,
        "the other layer got them all"
    );
    let bodies: Vec<String> = collector.records().iter().map(Received::body).collect();
    assert_eq!(bodies, ["kept info"]);
}

#[test]
fn log_records_through_tracing_log_and_through_the_logger_beside_the_layer_share_the_pipeline() {
    let collector = Collector::start();
    let (layer, guard) = builder(&collector.endpoint()).build_layer().unwrap();
    let logger = guard.logger().unwrap();
    let tracer = tracing_log::LogTracer::new();
    let kvs: [(&str, log::kv::Value<'_>); 1] = [("rows", log::kv::Value::from(3i64))];
    let log_one = |to: &dyn log::Log, body: &str| {
        to.log(
            &log::Record::builder()
                .args(format_args!("{body}"))
                .level(log::Level::Info)
                .target("legacy::db")
                .module_path_static(Some("legacy::db"))
                .file_static(Some("src/db.rs"))
                .line(Some(12))
                .key_values(&kvs)
                .build(),
        )
    };
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // `tracing-log`'s bridge, as `tracing_subscriber`'s `init()` installs it.
        log_one(&tracer, "through tracing-log");
        // The logger sharing the layer's pipeline, as an application installs it by hand.
        log_one(&logger, "through the logger");
        tracing::info!("through tracing");
    });
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    assert_eq!(records.len(), 3, "each record exactly once: {records:#?}");
    for body in ["through tracing-log", "through the logger"] {
        let r = by_body(&records, body);
        assert_eq!(r.scope, "legacy::db");
        assert_eq!(r.attr("code.file.path"), string("src/db.rs"));
        assert_eq!(r.attr("code.line.number"), Some(Value::IntValue(12)));
        assert!(r.attr("log.target").is_none() && r.attr("log.file").is_none());
    }
    // `tracing-log` does not carry key-values; the logger does.
    assert_eq!(
        by_body(&records, "through the logger").attr("rows"),
        Some(Value::IntValue(3))
    );
    assert_eq!(guard.stats().enqueued, 3);
}

/// Emits one record with every field an SDK record has through `logger`.
fn emit_rich_sdk_record(provider: &opentelemetry_sdk::logs::SdkLoggerProvider, at: SystemTime) {
    use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
    let scope = opentelemetry::InstrumentationScope::builder("billing")
        .with_version("1.2.3")
        .build();
    let logger = provider.logger_with_scope(scope);
    let mut r = logger.create_log_record();
    let mut body = std::collections::HashMap::new();
    body.insert("order".into(), AnyValue::Int(7));
    body.insert(
        "items".into(),
        AnyValue::ListAny(Box::new(vec![AnyValue::from("a"), AnyValue::from(2.5)])),
    );
    r.set_body(AnyValue::Map(Box::new(body)));
    r.set_event_name("invoice.sent");
    r.set_severity_number(opentelemetry::logs::Severity::Warn);
    r.set_severity_text("WARN");
    r.set_timestamp(at);
    r.set_observed_timestamp(at + Duration::from_millis(5));
    let sc = common::span_context();
    r.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
    r.add_attribute("customer", "c-9");
    r.add_attribute("total", 99.5);
    logger.emit(r);
}

fn check_rich_sdk_record(r: &Received, at: SystemTime) {
    let nanos = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64;
    assert_eq!(r.scope, "billing");
    assert_eq!(r.record.event_name, "invoice.sent");
    assert_eq!(r.record.severity_number, 13);
    assert_eq!(r.record.time_unix_nano, nanos(at));
    assert_eq!(
        r.record.observed_time_unix_nano,
        nanos(at + Duration::from_millis(5))
    );
    common::assert_in_span(r);
    assert_eq!(r.attr("customer"), string("c-9"));
    assert_eq!(r.attr("total"), Some(Value::DoubleValue(99.5)));
    let Some(Value::KvlistValue(body)) = r.record.body.clone().and_then(|b| b.value) else {
        panic!("the body is a map: {r:?}")
    };
    let field = |k: &str| {
        body.values
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
    };
    assert_eq!(field("order"), Some(Value::IntValue(7)));
    let Some(Value::ArrayValue(items)) = field("items") else {
        panic!("items is an array: {body:?}")
    };
    let items: Vec<_> = items.values.into_iter().map(|v| v.value).collect();
    assert_eq!(
        items,
        [
            Some(Value::StringValue("a".into())),
            Some(Value::DoubleValue(2.5))
        ]
    );
}

#[test]
fn the_sdk_processor_carries_every_field_and_spools_through_an_outage_then_replays() {
    let collector = Collector::start();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    // Collector up: exported live, with every field.
    let (processor, guard) = builder(&collector.endpoint())
        .build_sdk_processor()
        .unwrap();
    let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_log_processor(processor)
        .build();
    emit_rich_sdk_record(&provider, at);
    // Through `opentelemetry-appender-tracing` too, as an application on the SDK has it.
    let bridge = opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&provider);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(bridge), || {
        tracing::error!(user_id = 42, "through the appender");
    });
    provider.force_flush().unwrap();
    let records = collector.records();
    assert_eq!(records.len(), 2, "{records:#?}");
    check_rich_sdk_record(&records[0], at);
    let appended = by_body(&records, "through the appender");
    assert_eq!(appended.record.severity_number, 17);
    assert_eq!(appended.attr("user_id"), Some(Value::IntValue(42)));
    drop(provider);
    drop(guard);
    collector.clear();

    // Collector down: spooled; the next pipeline replays it with the same content.
    let spool = tempfile::tempdir().unwrap();
    let failover = |endpoint: &str| {
        builder(endpoint)
            .mode(Mode::Failover)
            .log_dir(spool.path())
            .request_timeout(Duration::from_millis(500))
            .export_timeout(Duration::from_secs(2))
    };
    let (processor, guard) = failover(&closed_endpoint()).build_sdk_processor().unwrap();
    let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_log_processor(processor)
        .build();
    emit_rich_sdk_record(&provider, at);
    let report = guard.shutdown(WAIT);
    assert_eq!(report.stats.spooled, 1, "{report:?}");
    drop(provider);
    let (_processor, guard) = failover(&collector.endpoint())
        .build_sdk_processor()
        .unwrap();
    collector.wait_for_records(1, WAIT);
    check_rich_sdk_record(&collector.records()[0], at);
    common::wait_for(WAIT, "the replay to be counted", || {
        guard.stats().replayed == 1
    });
}

/// A field whose `Debug` panics.
struct Panics;

impl std::fmt::Debug for Panics {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("broken Debug")
    }
}

/// A value whose `Debug` emits an event (inside the span being recorded).
struct Emits;

impl std::fmt::Debug for Emits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        tracing::info!("from a Debug");
        f.write_str("emits")
    }
}

#[test]
fn a_panicking_field_is_left_out_and_a_debug_that_emits_while_a_span_is_recorded_does_not_hang() {
    let collector = Collector::start();
    let (layer, guard) = builder(&collector.endpoint())
        .span_fields(true)
        .build_layer()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(bad = ?Panics, good = 1, "still the body");
        // A message that is not text is still the body.
        tracing::info!(message = 5u64, n = 2);
        let span = tracing::info_span!("work", state = tracing::field::Empty);
        let _entered = span.enter();
        span.record("state", tracing::field::debug(&Emits));
        tracing::info!("after");
    });
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    let r = by_body(&records, "still the body");
    assert_eq!(r.record.dropped_attributes_count, 1);
    assert_eq!(r.attr("good"), Some(Value::IntValue(1)));
    by_body(&records, "from a Debug");
    assert_eq!(by_body(&records, "5").attr("n"), Some(Value::IntValue(2)));
    assert_eq!(by_body(&records, "after").attr("state"), string("emits"));
}

#[test]
fn the_message_is_the_body_wherever_it_comes_whole_or_cut_and_a_panic_in_it_is_marked() {
    let collector = Collector::start();
    let (layer, guard) = builder(&collector.endpoint()).build_layer().unwrap();
    // 300 bytes: its length takes two bytes in front of it, written after the text.
    let long = "é".repeat(150);
    let huge = "x".repeat(1024 * 1024 + 10);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(n = 1, "{long}");
        // A message met after another field.
        tracing::info!(n = 2, message = "second");
        tracing::info!(n = 3, "{huge}");
        tracing::info!(n = 4, "{:?}", Panics);
        // Named, so the name is written before the message.
        tracing::info!(name: "order.placed", n = 5, "named {}", 5);
        // Two messages (the formatted one first): the last is the body.
        tracing::info!(n = 6, message = "explicit", "formatted {}", 6);
        // More fields than a callsite keeps the key ids of (8): the rest are looked up.
        tracing::info!(
            n = 7,
            a = 1,
            b = "two",
            c = 3.0,
            d = true,
            e = 5u64,
            f = 6,
            g = "seven",
            h = 8,
            i = 9,
            "many"
        );
    });
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    assert_eq!(records.len(), 7, "{records:#?}");
    let n = |r: &Received| match r.attr("n") {
        Some(Value::IntValue(n)) => n,
        other => panic!("{other:?}"),
    };
    let body = |i: i64| records.iter().find(|r| n(r) == i).unwrap().body();
    assert_eq!(body(1), long);
    assert_eq!(body(2), "second");
    let cut = body(3);
    assert!(cut.starts_with(&huge[..1024 * 1024]), "{}", cut.len());
    assert!(
        cut.ends_with("…[truncated 10 bytes]"),
        "{}",
        &cut[1024 * 1024..]
    );
    assert_eq!(
        body(4),
        "<otel-log-bridge: formatting the message panicked>"
    );
    assert_eq!(body(5), "named 5");
    let named = records.iter().find(|r| n(r) == 5).unwrap();
    assert_eq!(named.record.event_name, "order.placed");
    assert_eq!(body(6), "explicit");
    let many = records.iter().find(|r| n(r) == 7).unwrap();
    let keys: Vec<&str> = many
        .record
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(
        keys[..10],
        ["n", "a", "b", "c", "d", "e", "f", "g", "h", "i"]
    );
    assert_eq!(many.attr("b"), string("two"));
    assert_eq!(many.attr("c"), Some(Value::DoubleValue(3.0)));
    assert_eq!(many.attr("d"), Some(Value::BoolValue(true)));
    assert_eq!(many.attr("i"), Some(Value::IntValue(9)));
    assert_eq!(guard.stats().format_panics, 1);
}

#[test]
fn an_event_built_with_another_callsites_values_keeps_their_names() {
    use tracing::Callsite as _;
    let collector = Collector::start();
    let (layer, guard) = builder(&collector.endpoint()).build_layer().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let a = tracing::callsite!(
            name: "a",
            kind: tracing::metadata::Kind::EVENT,
            level: tracing::Level::INFO,
            fields: first, second
        );
        let b = tracing::callsite!(
            name: "b",
            kind: tracing::metadata::Kind::EVENT,
            level: tracing::Level::INFO,
            fields: message, other
        );
        let fields = b.metadata().fields();
        let (message, other) = (
            fields.field("message").unwrap(),
            fields.field("other").unwrap(),
        );
        let values = [
            (&message, Some(&"values of b" as &dyn tracing::Value)),
            (&other, Some(&7i64 as &dyn tracing::Value)),
        ];
        // As the macros do: asked first, then dispatched.
        if tracing::dispatcher::get_default(|d| d.enabled(a.metadata())) {
            tracing::Event::dispatch(a.metadata(), &fields.value_set(&values));
        }
    });
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    let r = by_body(&records, "values of b");
    assert_eq!(r.attr("other"), Some(Value::IntValue(7)));
    assert_eq!(r.attr("second"), None);
}
