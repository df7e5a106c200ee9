//! The admin gRPC API against a running pipeline: token checks, level changes (validated, cooldown,
//! audited) and counters. Feature `admin`.

mod common;

use std::time::Duration;

use common::{Collector, builder, string};
use otel_log_bridge::admin::proto::admin_client::AdminClient;
use otel_log_bridge::admin::proto::{GetLevelsRequest, GetStatsRequest, SetLevelRequest};
use tonic::Code;

const TOKEN: &str = "a-long-random-admin-token-0123456789";
const WAIT: Duration = Duration::from_secs(20);

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

fn set(target: &str, level: &str) -> SetLevelRequest {
    SetLevelRequest {
        target: target.into(),
        level: level.into(),
        actor: "ops-oncall".into(),
        directives: String::new(),
        output: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_the_token_and_changes_levels_like_the_handle() {
    let collector = Collector::start();
    let (_logger, guard) = builder(&collector.endpoint())
        .level(log::LevelFilter::Info)
        .level_change_cooldown(Duration::from_secs(3600))
        .admin_server("127.0.0.1:0".parse().unwrap(), TOKEN)
        .build()
        .unwrap();
    let addr = guard.admin_addr().unwrap();
    assert!(addr.ip().is_loopback());
    let mut client = AdminClient::connect(format!("http://{addr}"))
        .await
        .unwrap();

    for token in [None, Some("wrong-token"), Some(&TOKEN[1..])] {
        let err = client
            .set_level(with_token(set("app", "trace"), token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{token:?}");
        let err = client
            .get_stats(with_token(GetStatsRequest {}, token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{token:?}");
    }
    assert_eq!(
        guard.levels().to_string(),
        "info",
        "refused calls change nothing"
    );

    for level in ["LOUD", ""] {
        let err = client
            .set_level(with_token(set("app", level), Some(TOKEN)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{level:?}");
        assert!(err.message().contains("expected one of off"), "{err}");
    }

    let r = client
        .set_level(with_token(set("app::db", "debug"), Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.directives.as_str(), r.previous.as_str()),
        ("info,app::db=debug", "info")
    );
    assert_eq!(guard.levels().to_string(), "info,app::db=debug");

    let err = client
        .set_level(with_token(set("app::db", "trace"), Some(TOKEN)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "cooldown: {err}");

    let levels = client
        .get_levels(with_token(GetLevelsRequest {}, Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(levels.directives, "info,app::db=debug");
    assert_eq!(levels.items.len(), 2);

    guard.flush(WAIT).unwrap();
    let audit: Vec<_> = collector
        .records()
        .into_iter()
        .filter(|r| r.scope == otel_log_bridge::AUDIT_TARGET)
        .collect();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].attr("actor"), string("ops-oncall"));
    assert_eq!(audit[0].attr("level"), string("debug"));

    let stats = client
        .get_stats(with_token(GetStatsRequest {}, Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stats.enqueued, stats.exported), (1, 1));
    assert_eq!(stats.dropped.get("queue_full"), Some(&0));
    assert_eq!(stats.filtered.get("otlp"), Some(&0));
    assert_eq!(stats.output_written.get("otlp"), Some(&1));
    assert_eq!(stats.output_failed.get("stdout"), Some(&0));
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outputs_own_threshold_is_set_and_cleared_through_the_admin_api() {
    let collector = Collector::start();
    let (_logger, guard) = builder(&collector.endpoint())
        .level(log::LevelFilter::Info)
        .level_change_cooldown(Duration::ZERO)
        .admin_server("127.0.0.1:0".parse().unwrap(), TOKEN)
        .build()
        .unwrap();
    let addr = guard.admin_addr().unwrap();
    let mut client = AdminClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let output = |output: &str, spec: &str| SetLevelRequest {
        output: output.into(),
        directives: spec.into(),
        ..set("", "")
    };
    let err = client
        .set_level(with_token(output("printer", "warn"), Some(TOKEN)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let err = client
        .set_level(with_token(output("otlp", "x=loud"), Some(TOKEN)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    // `otlp-only` has no rotating log.
    let err = client
        .set_level(with_token(output("file", "debug"), Some(TOKEN)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("no file output"), "{err}");
    let r = client
        .set_level(with_token(output("otlp", "warn"), Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.directives.as_str(), r.previous.as_str()),
        ("warn", "global")
    );
    assert_eq!(
        guard
            .levels()
            .output(otel_log_bridge::Output::Otlp)
            .unwrap()
            .len(),
        1
    );
    let levels = client
        .get_levels(with_token(GetLevelsRequest {}, Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(levels.outputs.get("otlp").map(String::as_str), Some("warn"));
    let r = client
        .set_level(with_token(output("otlp", ""), Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.directives.as_str(), r.previous.as_str()),
        ("global", "warn")
    );
    assert_eq!(guard.levels().output(otel_log_bridge::Output::Otlp), None);
    drop(guard);
}

#[test]
fn a_short_token_or_a_busy_address_is_an_error_at_start() {
    let err = builder("http://127.0.0.1:1")
        .admin_server("127.0.0.1:0".parse().unwrap(), "short")
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("shorter than 16") && !err.contains("short\""),
        "{err}"
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = builder("http://127.0.0.1:1")
        .admin_server(taken.local_addr().unwrap(), TOKEN)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&taken.local_addr().unwrap().to_string()),
        "{err}"
    );
}

#[test]
fn a_failed_admin_start_leaves_no_pipeline_behind() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let failover = || {
        otel_log_bridge::builder()
            .read_env(false)
            .endpoint("http://127.0.0.1:1")
            .log_dir(dir.path())
    };
    assert!(
        failover()
            .admin_server(taken.local_addr().unwrap(), TOKEN)
            .build()
            .is_err()
    );
    // The first attempt's spool lock is gone: a retry without the admin server starts.
    let (_logger, guard) = failover().build().unwrap();
    drop(guard);
}
