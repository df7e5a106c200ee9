//! What a record carries beyond its message: errors with their cause chain, event names, Baggage
//! entries, and the resource that describes the process, checked at the in-process collector (each
//! protocol) and in the files (the tee log, the spool and its replay).

mod common;

use std::time::Duration;

use common::{Collector, Failure, Received, builder, closed_endpoint, string};
use log::Log as _;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use otel_log_bridge::{Logger, Mode, Protocol};

const WAIT: Duration = Duration::from_secs(20);

fn log_with(logger: &Logger, kvs: &[(&str, log::kv::Value<'_>)]) {
    logger.log(
        &log::Record::builder()
            .args(format_args!("payment failed"))
            .level(log::Level::Error)
            .target("payment.service")
            .key_values(&kvs)
            .build(),
    );
}

#[test]
fn an_error_keeps_its_cause_chain_and_fills_exception_message() {
    static ROOT: Failure = Failure("connection refused", None);
    static OUTER: Failure = Failure("card network unreachable", Some(&ROOT));
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint()).build().unwrap();
    log_with(&logger, &[("err", log::kv::Value::from_dyn_error(&OUTER))]);
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    let chain = "card network unreachable: connection refused";
    assert_eq!(records[0].attr("err"), string(chain));
    assert_eq!(records[0].attr("exception.message"), string(chain));
}

#[test]
fn baggage_entries_are_copied_without_overwriting_the_records_own() {
    let collector = Collector::start();
    let (logger, guard) = builder(&collector.endpoint())
        .baggage_keys(["request.id", "tenant"])
        .build()
        .unwrap();
    let (all_logger, all_guard) = builder(&collector.endpoint())
        .service_name("all")
        .baggage_keys(["*"])
        .build()
        .unwrap();
    {
        let _cx = opentelemetry::Context::new()
            .with_baggage([
                opentelemetry::KeyValue::new("request.id", "req-7"),
                opentelemetry::KeyValue::new("tenant", "from-baggage"),
                opentelemetry::KeyValue::new("other", "x"),
            ])
            .attach();
        log_with(&logger, &[("tenant", "own".into())]);
        log_with(&all_logger, &[]);
    }
    // Outside the context: nothing to copy.
    log_with(&logger, &[]);
    guard.flush(WAIT).unwrap();
    all_guard.flush(WAIT).unwrap();
    let records = collector.records();
    assert_eq!(records.len(), 3);
    let by = |service: &str| {
        records
            .iter()
            .filter(|r| r.resource_attr("service.name") == string(service))
            .collect::<Vec<_>>()
    };
    let keyed = by("test-service");
    assert_eq!(keyed[0].attr("request.id"), string("req-7"));
    assert_eq!(
        keyed[0].attr("tenant"),
        string("own"),
        "the record's own wins"
    );
    assert_eq!(keyed[0].attr("other"), None, "not asked for");
    assert_eq!(keyed[1].attr("request.id"), None);
    let all = by("all");
    assert_eq!(all[0].attr("other"), string("x"));
    assert_eq!(all[0].attr("tenant"), string("from-baggage"));
}

#[test]
fn the_resource_describes_the_process_and_each_attribute_can_be_overridden() {
    let collector = Collector::start();
    let (logger, guard) = otel_log_bridge::builder()
        .read_env(false)
        .mode(otel_log_bridge::Mode::OtlpOnly)
        .endpoint(collector.endpoint())
        .resource_attribute("host.name", "given-host")
        .build()
        .unwrap();
    log_with(&logger, &[]);
    guard.flush(WAIT).unwrap();
    let r = &collector.records()[0];
    let exe = std::env::current_exe().unwrap();
    let exe = exe.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        r.resource_attr("service.name"),
        string(&format!("unknown_service:{exe}"))
    );
    assert_eq!(r.resource_attr("process.executable.name"), string(exe));
    assert_eq!(
        r.resource_attr("process.pid"),
        Some(Value::IntValue(std::process::id().into()))
    );
    assert_eq!(r.resource_attr("host.name"), string("given-host"));
    for key in [
        "service.instance.id",
        "process.runtime.name",
        "process.runtime.version",
        "os.type",
        "telemetry.sdk.name",
    ] {
        assert!(r.resource_attr(key).is_some(), "{key}");
    }
}

#[cfg(feature = "sdk")]
#[test]
fn an_sdk_resource_gives_the_service_its_traces_have() {
    let collector = Collector::start();
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name("checkout")
        .with_attribute(opentelemetry::KeyValue::new(
            "deployment.environment",
            "prod",
        ))
        .build();
    let (logger, guard) = otel_log_bridge::builder()
        .read_env(false)
        .mode(otel_log_bridge::Mode::OtlpOnly)
        .endpoint(collector.endpoint())
        .resource(&resource)
        .build()
        .unwrap();
    log_with(&logger, &[]);
    guard.flush(WAIT).unwrap();
    let r = &collector.records()[0];
    assert_eq!(r.resource_attr("service.name"), string("checkout"));
    assert_eq!(r.resource_attr("deployment.environment"), string("prod"));
}

const CHAIN: &str = "card network unreachable: connection refused";

#[derive(serde::Serialize)]
struct Order {
    id: u64,
    items: Vec<&'static str>,
    raw: Raw,
}

/// A byte string, as `serde_bytes` writes one.
struct Raw(&'static [u8]);

impl serde::Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// One record with an event name, an error with a cause, a double, a structure and a Baggage
/// entry.
fn log_rich(logger: &Logger) {
    let order = Order {
        id: 7,
        items: vec!["a", "b"],
        raw: Raw(b"\x00\xff"),
    };
    static ROOT: Failure = Failure("connection refused", None);
    static OUTER: Failure = Failure("card network unreachable", Some(&ROOT));
    let _cx = opentelemetry::Context::new()
        .with_baggage([opentelemetry::KeyValue::new("request.id", "req-7")])
        .attach();
    log_with(
        logger,
        &[
            ("event.name", "payment.failed".into()),
            ("err", log::kv::Value::from_dyn_error(&OUTER)),
            ("amount", 150.5.into()),
            ("order", log::kv::Value::from_serde(&order)),
        ],
    );
}

fn check_received(r: &Received) {
    assert_eq!(r.record.event_name, "payment.failed");
    assert_eq!(
        r.attr("event.name"),
        None,
        "the event name is not an attribute"
    );
    assert_eq!(r.attr("err"), string(CHAIN));
    assert_eq!(r.attr("exception.message"), string(CHAIN));
    assert_eq!(r.attr("request.id"), string("req-7"));
    assert_eq!(r.attr("amount"), Some(Value::DoubleValue(150.5)));
    let Some(Value::KvlistValue(order)) = r.attr("order") else {
        panic!("{r:?}")
    };
    let entry = |i: usize| {
        let kv = &order.values[i];
        (kv.key.as_str(), kv.value.clone().and_then(|v| v.value))
    };
    assert_eq!(entry(0), ("id", Some(Value::IntValue(7))));
    let Some(Value::ArrayValue(items)) = entry(1).1 else {
        panic!("{order:?}")
    };
    let items: Vec<_> = items.values.into_iter().map(|v| v.value).collect();
    assert_eq!(items, [string("a"), string("b")]);
    assert_eq!(entry(2), ("raw", Some(Value::BytesValue(vec![0, 255]))));
}

/// The order after a JSON line: bytes are carried as base64 text.
fn check_replayed(r: &Received) {
    let Some(Value::KvlistValue(order)) = r.attr("order") else {
        panic!("{r:?}")
    };
    assert_eq!(order.values.len(), 3);
    assert_eq!(
        order.values[2].value.clone().and_then(|v| v.value),
        string("AP8=")
    );
}

/// The lines of the files in `dir` (the log or the spool), locks and the spool's cursor left out.
fn lines_in(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|e| e == "lock" || e == "cursor")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        lines.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
    }
    lines
}

fn check_line(line: &serde_json::Value) {
    assert_eq!(line["event_name"], "payment.failed", "{line}");
    assert_eq!(line.get("event.name"), None, "{line}");
    assert_eq!(line["err"], CHAIN, "{line}");
    assert_eq!(line["exception.message"], CHAIN, "{line}");
    assert_eq!(line["request.id"], "req-7", "{line}");
    assert_eq!(line["amount"], 150.5, "{line}");
    assert_eq!(
        line["order"],
        serde_json::json!({"id": 7, "items": ["a", "b"], "raw": "AP8="}),
        "{line}"
    );
}

#[test]
fn the_same_content_reaches_each_protocol_the_log_file_and_the_spool_and_comes_back_from_it() {
    let collector = Collector::start();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson] {
        let (logger, guard) = builder(&collector.endpoint_for(protocol))
            .protocol(protocol)
            .baggage_keys(["request.id"])
            .build()
            .unwrap();
        log_rich(&logger);
        guard.flush(WAIT).unwrap();
        let records = collector.records();
        assert_eq!(records.len(), 1, "{protocol:?}");
        check_received(&records[0]);
        collector.clear();
    }

    // The tee log.
    let tee = tempfile::tempdir().unwrap();
    let (logger, guard) = builder(&collector.endpoint())
        .mode(Mode::Tee)
        .log_dir(tee.path())
        .baggage_keys(["request.id"])
        .build()
        .unwrap();
    log_rich(&logger);
    let report = guard.shutdown(WAIT);
    assert_eq!(report.stats.written, 1, "{report:?}");
    let lines = lines_in(tee.path());
    assert_eq!(lines.len(), 1);
    check_line(&lines[0]);
    collector.clear();

    // The spool, then its replay by the next pipeline.
    let spool = tempfile::tempdir().unwrap();
    let failover = |endpoint: &str| {
        builder(endpoint)
            .mode(Mode::Failover)
            .log_dir(spool.path())
            .baggage_keys(["request.id"])
            .request_timeout(Duration::from_millis(500))
            .export_timeout(Duration::from_secs(2))
    };
    let (logger, guard) = failover(&closed_endpoint()).build().unwrap();
    log_rich(&logger);
    let report = guard.shutdown(WAIT);
    assert_eq!(report.stats.spooled, 1, "{report:?}");
    let lines = lines_in(spool.path());
    assert_eq!(lines.len(), 1);
    check_line(&lines[0]);
    let (_logger, guard) = failover(&collector.endpoint()).build().unwrap();
    collector.wait_for_records(1, WAIT);
    let replayed = &collector.records()[0];
    assert_eq!(replayed.record.event_name, "payment.failed");
    assert_eq!(replayed.attr("err"), string(CHAIN));
    assert_eq!(replayed.attr("request.id"), string("req-7"));
    check_replayed(replayed);
    common::wait_for(WAIT, "the replay to be counted", || {
        guard.stats().replayed == 1
    });
}
