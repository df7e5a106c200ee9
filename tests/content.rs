//! What a record carries beyond its message: errors with their cause chain, Baggage entries, and
//! the resource that describes the process, checked at the in-process collector.

mod common;

use std::time::Duration;

use common::{Collector, builder, string};
use log::Log as _;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use otel_log_bridge::Logger;

const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug)]
struct Failure(&'static str, Option<&'static Failure>);

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
