use super::*;
use crate::config::Builder;
use crate::config::env::{
    EnvSettings, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
};
use std::collections::HashMap;

fn settings(vars: &[(&str, &str)]) -> Result<EnvSettings, Error> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    crate::config::env::from_lookup(|k| map.get(k).cloned())
}

fn transport(vars: &[(&str, &str)]) -> Result<Transport, Error> {
    Builder::new()
        .config_with(settings(vars)?)
        .map(|c| c.transport)
}

#[test]
fn endpoints_resolve_per_protocol_as_the_specification_says() {
    let grpc = "grpc";
    let proto = "http/protobuf";
    let json = "http/json";
    type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let table: &[Row<'_>] = &[
        (grpc, &[], "http://localhost:4317"),
        (proto, &[], "http://localhost:4318/v1/logs"),
        (json, &[], "http://localhost:4318/v1/logs"),
        (
            grpc,
            &[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4317")],
            "http://c:4317",
        ),
        (
            proto,
            &[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4318")],
            "http://c:4318/v1/logs",
        ),
        (
            proto,
            &[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4318/")],
            "http://c:4318/v1/logs",
        ),
        (
            json,
            &[(OTEL_EXPORTER_OTLP_ENDPOINT, "https://gw.example/otlp")],
            "https://gw.example/otlp/v1/logs",
        ),
        (
            proto,
            &[
                (OTEL_EXPORTER_OTLP_ENDPOINT, "http://base:4318"),
                (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://logs:9000/custom"),
            ],
            "http://logs:9000/custom",
        ),
        (
            grpc,
            &[(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "c:4317")],
            "https://c:4317",
        ),
        (
            grpc,
            &[
                (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "c:4317"),
                (OTEL_EXPORTER_OTLP_INSECURE, "true"),
            ],
            "http://c:4317",
        ),
        (
            grpc,
            &[
                (OTEL_EXPORTER_OTLP_ENDPOINT, "https://c:4317"),
                (OTEL_EXPORTER_OTLP_LOGS_INSECURE, "true"),
            ],
            "https://c:4317",
        ),
    ];
    for (protocol, vars, expected) in table {
        let mut vars = vars.to_vec();
        vars.push((OTEL_EXPORTER_OTLP_PROTOCOL, protocol));
        let t = transport(&vars).unwrap_or_else(|e| panic!("{vars:?}: {e}"));
        assert_eq!(t.endpoint, *expected, "{vars:?}");
        assert_eq!(t.protocol.to_string(), *protocol);
    }
}

#[test]
fn the_logs_protocol_wins_and_the_builder_wins_over_both() {
    let vars = [
        (OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
        (OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, "http/json"),
    ];
    assert_eq!(transport(&vars).unwrap().protocol, Protocol::HttpJson);
    let t = Builder::new()
        .protocol(Protocol::HttpProtobuf)
        .endpoint("http://in-code:4318/v1/logs")
        .config_with(settings(&vars).unwrap())
        .unwrap()
        .transport;
    assert_eq!(t.protocol, Protocol::HttpProtobuf);
    assert_eq!(t.endpoint, "http://in-code:4318/v1/logs", "used as is");
}

#[test]
fn invalid_values_name_the_variable_the_value_and_what_is_accepted() {
    let table = [
        (
            OTEL_EXPORTER_OTLP_PROTOCOL,
            "http",
            "grpc, http/protobuf, http/json",
        ),
        (
            OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
            "HTTP/2",
            "grpc, http/protobuf, http/json",
        ),
    ];
    for (var, value, accepted) in table {
        let e = settings(&[(var, value)]).unwrap_err().to_string();
        assert!(
            e.contains(var) && e.contains(value) && e.contains(accepted),
            "{var}={value}: {e}"
        );
    }
    let e = transport(&[
        (OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf"),
        (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "collector:4318/v1/logs"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)
            && e.contains("expected http://host:port/path"),
        "{e}"
    );
}

#[test]
fn a_client_certificate_needs_its_key_and_files_are_named_by_their_variable() {
    let e = transport(&[(OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, "/etc/client.pem")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE) && e.contains("without a key"),
        "{e}"
    );
    let e = transport(&[(OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY, "/etc/key.pem")])
        .unwrap_err()
        .to_string();
    assert!(e.contains(OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY), "{e}");
    let t = transport(&[
        (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, "/etc/all.pem"),
        (OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE, "/etc/logs.pem"),
        (OTEL_EXPORTER_OTLP_CLIENT_KEY, "/etc/key.pem"),
    ])
    .unwrap();
    let (cert, key) = t.identity.unwrap();
    assert_eq!(cert.setting, OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE);
    assert_eq!(cert.path, PathBuf::from("/etc/logs.pem"));
    assert_eq!(key.setting, OTEL_EXPORTER_OTLP_CLIENT_KEY);
}

#[test]
fn a_missing_or_non_pem_file_is_an_error_naming_the_setting_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = PemFile {
        setting: OTEL_EXPORTER_OTLP_CLIENT_KEY,
        path: dir.path().join("nope.pem"),
    };
    let e = missing.read().unwrap_err().to_string();
    assert!(
        e.contains(OTEL_EXPORTER_OTLP_CLIENT_KEY) && e.contains("nope.pem"),
        "{e}"
    );
    let text = dir.path().join("text.pem");
    std::fs::write(&text, "not a certificate").unwrap();
    let e = PemFile {
        setting: OTEL_EXPORTER_OTLP_CERTIFICATE,
        path: text,
    }
    .read()
    .unwrap_err()
    .to_string();
    assert!(e.contains("text.pem") && e.contains("PEM"), "{e}");
}

#[test]
fn proxies_lowercase_first_as_curl_does() {
    let s = settings(&[
        ("HTTP_PROXY", "http://upper:1"),
        ("http_proxy", "http://lower:2"),
        ("HTTPS_PROXY", "http://secure:3"),
        ("NO_PROXY", "localhost,.internal"),
    ])
    .unwrap();
    let p = s.transport.proxies;
    assert_eq!(p.http, Some(("http_proxy", "http://lower:2".to_owned())));
    assert_eq!(p.https, Some((HTTPS_PROXY, "http://secure:3".to_owned())));
    assert_eq!(p.no_proxy.as_deref(), Some("localhost,.internal"));
    // Under CGI the uppercase one may be a request header ("httpoxy"): not taken.
    let s = settings(&[
        ("HTTP_PROXY", "http://from-a-header:1"),
        ("REQUEST_METHOD", "GET"),
    ])
    .unwrap();
    assert_eq!(s.transport.proxies.http, None);
}

#[test]
fn specification_booleans_are_true_only_for_true() {
    for (value, expected) in [
        ("true", Some(true)),
        ("TRUE", Some(true)),
        (" True ", Some(true)),
        ("false", Some(false)),
        ("1", Some(false)),
        ("yes", Some(false)),
        ("maybe", Some(false)),
    ] {
        let s = settings(&[
            (OTEL_SDK_DISABLED, value),
            (OTEL_EXPORTER_OTLP_INSECURE, value),
        ])
        .unwrap();
        assert_eq!(s.transport.sdk_disabled, expected, "{value:?}");
        assert_eq!(s.transport.insecure, expected, "{value:?}");
    }
}
