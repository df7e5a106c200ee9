//! OTLP/HTTP (protobuf and JSON) and mutual TLS against the in-process collector, which serves
//! gRPC and OTLP/HTTP on one port; proxies through a forward proxy on loopback.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Answer, Collector, builder, span_context, string};
use log::Log as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use otel_log_bridge::{Logger, Protocol};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(20);
const HTTP: [Protocol; 2] = [Protocol::HttpProtobuf, Protocol::HttpJson];

/// Batches leave on `flush` only (the schedule delay is long), so request counts do not depend
/// on how soon the worker runs.
fn http_builder(collector: &Collector, protocol: Protocol) -> otel_log_bridge::Builder {
    builder(&collector.endpoint_for(protocol))
        .protocol(protocol)
        .schedule_delay(Duration::from_secs(30))
}

fn info(logger: &Logger, i: usize) {
    logger.log(
        &log::Record::builder()
            .args(format_args!("record {i}"))
            .level(log::Level::Info)
            .target("app")
            .key_values(&[("seq", i as u64)])
            .build(),
    );
}

#[test]
fn every_field_arrives_over_http_protobuf_and_http_json() {
    for protocol in HTTP {
        let collector = Collector::start();
        let (logger, guard) = http_builder(&collector, protocol).build().unwrap();
        {
            let _cx = opentelemetry::Context::new()
                .with_remote_span_context(span_context())
                .attach();
            let kvs: &[(&str, log::kv::Value<'_>)] = &[
                ("amount", 150.5f64.into()),
                ("user_id", (-42i64).into()),
                ("currency", "EUR".into()),
                ("ok", true.into()),
            ];
            logger.log(
                &log::Record::builder()
                    .args(format_args!("Transaction \"processed\"\n"))
                    .level(log::Level::Warn)
                    .target("payment.service")
                    .file_static(Some("tests/http.rs"))
                    .line(Some(77))
                    .key_values(&kvs)
                    .build(),
            );
        }
        guard.flush(WAIT).unwrap();
        let records = collector.records();
        assert_eq!(
            records.len(),
            1,
            "{protocol}: {:?}",
            guard.last_export_error()
        );
        let r = &records[0];
        assert_eq!(r.scope, "payment.service", "{protocol}");
        assert_eq!(r.body(), "Transaction \"processed\"\n", "{protocol}");
        assert_eq!(r.record.severity_number, 13, "{protocol}");
        assert_eq!(r.record.severity_text, "WARN", "{protocol}");
        assert!(r.record.time_unix_nano > 0, "{protocol}");
        assert_eq!(
            r.attr("amount"),
            Some(Value::DoubleValue(150.5)),
            "{protocol}"
        );
        assert_eq!(r.attr("user_id"), Some(Value::IntValue(-42)), "{protocol}");
        assert_eq!(r.attr("currency"), string("EUR"), "{protocol}");
        assert_eq!(r.attr("ok"), Some(Value::BoolValue(true)), "{protocol}");
        assert_eq!(
            r.attr("code.line.number"),
            Some(Value::IntValue(77)),
            "{protocol}"
        );
        common::assert_in_span(r);
        assert_eq!(r.resource_attr("service.name"), string("test-service"));
        let content_type = collector.headers()[0]
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let expected = match protocol {
            Protocol::HttpJson => "application/json",
            _ => "application/x-protobuf",
        };
        assert_eq!(content_type.as_deref(), Some(expected));
        let s = guard.stats();
        assert_eq!((s.exported, s.dropped.total()), (1, 0), "{protocol}");
    }
}

#[test]
fn retryable_statuses_are_retried_and_retry_after_is_honoured() {
    for protocol in HTTP {
        // The wait the server asks for, far above the first backoff (100 ms at most).
        let collector = Collector::start();
        collector.script(vec![Answer::Http {
            status: 503,
            retry_after: Some("2".into()),
        }]);
        let (logger, guard) = http_builder(&collector, protocol).build().unwrap();
        let started = Instant::now();
        info(&logger, 0);
        guard.flush(WAIT).unwrap();
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "{protocol}: retried after {:?}",
            started.elapsed()
        );
        assert_eq!((collector.requests(), collector.records().len()), (2, 1));

        // Each retryable status, with an HTTP date or nothing: retried until delivered.
        let collector = Collector::start();
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        collector.script(vec![
            Answer::Http {
                status: 429,
                retry_after: Some(date),
            },
            Answer::Http {
                status: 502,
                retry_after: None,
            },
            Answer::Http {
                status: 504,
                retry_after: Some("0".into()),
            },
        ]);
        let (logger, guard) = http_builder(&collector, protocol).build().unwrap();
        for i in 0..5 {
            info(&logger, i);
        }
        guard.flush(WAIT).unwrap();
        assert_eq!(collector.records().len(), 5, "{protocol}");
        assert_eq!(collector.requests(), 4, "{protocol}");
        let s = guard.stats();
        assert_eq!((s.exported, s.export_errors, s.dropped.total()), (5, 3, 0));
    }
}

#[test]
fn a_retry_after_beyond_the_export_timeout_gives_up_at_once() {
    let collector = Collector::start();
    collector.script(vec![Answer::Http {
        status: 503,
        retry_after: Some("3600".into()),
    }]);
    let (logger, guard) = http_builder(&collector, Protocol::HttpProtobuf)
        .export_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = Instant::now();
    info(&logger, 0);
    guard.flush(WAIT).unwrap();
    // Not after waiting out the export timeout: at once (the bound is far above any machine's
    // delay, far below the 60 s a wait would take).
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(collector.requests(), 1);
    assert_eq!(guard.stats().dropped.export_failed, 1);
    let error = guard.last_export_error().unwrap_or_default();
    assert!(error.contains("503"), "{error}");
}

#[test]
fn other_statuses_are_permanent_and_the_server_text_is_kept() {
    for protocol in HTTP {
        for status in [400, 401, 403, 404, 413, 500] {
            let collector = Collector::start();
            collector.script(vec![Answer::Http {
                status,
                retry_after: Some("0".into()),
            }]);
            let (logger, guard) = http_builder(&collector, protocol).build().unwrap();
            for i in 0..3 {
                info(&logger, i);
            }
            guard.flush(WAIT).unwrap();
            assert_eq!(
                collector.requests(),
                1,
                "{protocol} {status} must not be retried"
            );
            let s = guard.stats();
            assert_eq!(
                (s.exported, s.dropped.export_failed, s.export_errors),
                (0, 3, 1),
                "{protocol} {status}"
            );
            let error = guard.last_export_error().unwrap_or_default();
            assert!(
                error.contains("permanent")
                    && error.contains(&status.to_string())
                    && error.contains("scripted failure"),
                "{protocol} {status}: {error}"
            );
        }
    }
}

#[test]
fn the_collector_scripts_serve_both_transports_unavailable_with_retry_info_is_503_retry_after() {
    // The gRPC failures the failover tests script reach HTTP clients as the matching status:
    // UNAVAILABLE with a RetryInfo of 300 ms is a 503 with `Retry-After: 1` (whole seconds).
    let collector = Collector::start();
    collector.script(vec![Answer::Fail {
        code: Code::Unavailable,
        retry_after: Some(Duration::from_millis(300)),
    }]);
    let (logger, guard) = http_builder(&collector, Protocol::HttpJson)
        .build()
        .unwrap();
    let started = Instant::now();
    info(&logger, 0);
    guard.flush(WAIT).unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((collector.requests(), collector.records().len()), (2, 1));
}

#[test]
fn a_redirect_is_not_followed_and_says_where_it_pointed() {
    let collector = Collector::start();
    collector.script(vec![Answer::Http {
        status: 308,
        retry_after: None,
    }]);
    let (logger, guard) = http_builder(&collector, Protocol::HttpProtobuf)
        .header("api-key", "s3cr3t")
        .build()
        .unwrap();
    info(&logger, 0);
    guard.flush(WAIT).unwrap();
    assert_eq!(collector.requests(), 1, "not followed");
    assert_eq!(guard.stats().dropped.export_failed, 1);
    let error = guard.last_export_error().unwrap_or_default();
    assert!(
        error.contains("308")
            && error.contains("permanent")
            && error.contains("redirected to \"http://127.0.0.1:1/elsewhere\""),
        "{error}"
    );
}

#[test]
fn partial_success_is_counted_in_both_encodings() {
    for protocol in HTTP {
        let collector = Collector::start();
        collector.script(vec![Answer::PartialReject(2)]);
        let (logger, guard) = http_builder(&collector, protocol).build().unwrap();
        for i in 0..5 {
            info(&logger, i);
        }
        guard.flush(WAIT).unwrap();
        assert_eq!(collector.requests(), 1, "{protocol}");
        let s = guard.stats();
        assert_eq!((s.exported, s.dropped.rejected), (3, 2), "{protocol}");
    }
}

#[test]
fn headers_and_gzip_reach_the_collector() {
    for protocol in HTTP {
        let collector = Collector::start();
        let (logger, guard) = http_builder(&collector, protocol)
            .header("authorization", "Bearer s3cr3t")
            .header("x-tenant", "payments")
            .compression(otel_log_bridge::Compression::Gzip)
            .build()
            .unwrap();
        for i in 0..200 {
            info(&logger, i);
        }
        guard.flush(WAIT).unwrap();
        assert_eq!(collector.records().len(), 200, "{protocol}");
        let h = &collector.headers()[0];
        assert_eq!(h.get("authorization").unwrap(), "Bearer s3cr3t");
        assert_eq!(h.get("x-tenant").unwrap(), "payments");
        assert_eq!(h.get("content-encoding").unwrap(), "gzip");
    }
}

#[test]
fn a_hanging_answer_times_out_and_the_batch_is_sent_again() {
    let collector = Collector::start();
    collector.script(vec![Answer::Delay(Duration::from_secs(30))]);
    let (logger, guard) = http_builder(&collector, Protocol::HttpProtobuf)
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    info(&logger, 0);
    guard.flush(WAIT).unwrap();
    assert_eq!(collector.requests(), 2);
    assert_eq!(guard.stats().exported, 1);
    assert_eq!(guard.stats().export_errors, 1);
}

#[test]
fn connections_are_reused_between_batches() {
    let proxy = ForwardProxy::start();
    let collector = Collector::start();
    let (logger, guard) = http_builder(&collector, Protocol::HttpProtobuf)
        .proxy(proxy.url())
        .max_export_batch_size(10)
        .build()
        .unwrap();
    for round in 0..5 {
        for i in 0..10 {
            info(&logger, round * 10 + i);
        }
        guard.flush(WAIT).unwrap();
    }
    assert_eq!(collector.records().len(), 50);
    assert!(collector.requests() >= 5);
    // Through the proxy, each connection is one tunnel: at most the two batches in flight.
    assert!(
        (1..=2).contains(&proxy.connections()),
        "{} connections for {} requests",
        proxy.connections(),
        collector.requests()
    );
}

#[test]
fn requests_go_through_the_proxy_unless_the_host_is_in_no_proxy() {
    let proxy = ForwardProxy::start();
    let collector = Collector::start();
    let (logger, guard) = http_builder(&collector, Protocol::HttpJson)
        .proxy(proxy.url())
        .build()
        .unwrap();
    info(&logger, 0);
    guard.flush(WAIT).unwrap();
    drop(guard);
    assert_eq!(collector.records().len(), 1);
    assert_eq!(proxy.connections(), 1, "sent through the proxy");

    let (logger, guard) = http_builder(&collector, Protocol::HttpJson)
        .proxy(proxy.url())
        .no_proxy("localhost,127.0.0.0/8")
        .build()
        .unwrap();
    info(&logger, 1);
    guard.flush(WAIT).unwrap();
    drop(guard);
    assert_eq!(collector.records().len(), 2);
    assert_eq!(
        proxy.connections(),
        1,
        "sent directly: the host is in no_proxy"
    );
}

fn self_signed(names: &[&str]) -> rcgen::CertifiedKey<rcgen::KeyPair> {
    rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .unwrap()
}

#[test]
fn mutual_tls_over_grpc_and_http_with_the_client_identity_and_refused_without_it() {
    let server = self_signed(&["127.0.0.1", "localhost"]);
    let client = self_signed(&["otel-log-bridge-client"]);
    let collector = Collector::start_mtls(
        tonic::transport::Identity::from_pem(server.cert.pem(), server.signing_key.serialize_pem()),
        tonic::transport::Certificate::from_pem(client.cert.pem()),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let cert = dir.path().join("client.pem");
    let key = dir.path().join("client-key.pem");
    std::fs::write(&ca, server.cert.pem()).unwrap();
    std::fs::write(&cert, client.cert.pem()).unwrap();
    std::fs::write(&key, client.signing_key.serialize_pem()).unwrap();
    let base = format!("https://{}", collector.addr);
    let mut delivered = 0;
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson] {
        let endpoint = common::endpoint_for(&base, protocol);
        let (logger, guard) = builder(&endpoint)
            .protocol(protocol)
            .certificate(&ca)
            .client_certificate(&cert)
            .client_key(&key)
            .build()
            .unwrap();
        info(&logger, 1);
        guard.flush(WAIT).unwrap();
        delivered += 1;
        assert_eq!(
            collector.records().len(),
            delivered,
            "{protocol}: {:?}",
            guard.last_export_error()
        );
        drop(guard);

        // Without a client certificate the handshake is refused: nothing is delivered.
        let (logger, guard) = builder(&endpoint)
            .protocol(protocol)
            .certificate(&ca)
            .export_timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        info(&logger, 2);
        guard.flush(WAIT).unwrap();
        assert_eq!(collector.records().len(), delivered, "{protocol}");
        assert_eq!(guard.stats().dropped.export_failed, 1, "{protocol}");
    }
    // A missing key file is an error at start naming the setting and the path.
    let err = builder(&base)
        .protocol(Protocol::HttpProtobuf)
        .client_certificate(&cert)
        .client_key(dir.path().join("missing-key.pem"))
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("client_key") && err.contains("missing-key.pem"),
        "{err}"
    );
}

/// A forward proxy on 127.0.0.1: reads a request head, connects to the host its absolute URI
/// names, and relays both ways from there; counts the connections it relayed.
struct ForwardProxy {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl ForwardProxy {
    fn start() -> ForwardProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        runtime.spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let _ = relay(conn, count).await;
                });
            }
        });
        ForwardProxy {
            addr,
            connections,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn relay(mut client: tokio::net::TcpStream, count: Arc<AtomicUsize>) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let target = text.split_whitespace().nth(1).unwrap_or("").to_owned();
    let host = target
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("")
        .to_owned();
    let mut upstream = tokio::net::TcpStream::connect(host).await?;
    count.fetch_add(1, Ordering::SeqCst);
    upstream.write_all(&head).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
