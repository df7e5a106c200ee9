use super::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;

#[test]
fn partial_success_is_read_in_either_encoding() {
    let response = ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: 7,
            error_message: "too old".into(),
        }),
    };
    assert_eq!(rejected(&response.encode_to_vec(), false), 7);
    let json = serde_json::to_vec(&response).unwrap();
    assert_eq!(rejected(&json, true), 7);
    assert_eq!(
        rejected(br#"{"partialSuccess":{"rejectedLogRecords":"3"}}"#, true),
        3
    );
    for empty in [&b""[..], b"{}", b"garbage"] {
        assert_eq!(rejected(empty, true), 0);
        assert_eq!(rejected(empty, false), 0);
    }
}

#[test]
fn error_text_is_the_status_message_or_the_body() {
    let status = tonic_types::Status {
        code: 3,
        message: "bad attribute".into(),
        details: vec![],
    };
    assert_eq!(error_text(&status.encode_to_vec()), "bad attribute");
    assert_eq!(
        error_text(br#"{"code":3,"message":"bad json attribute"}"#),
        "bad json attribute"
    );
    assert_eq!(error_text(b" quota exceeded\n"), "quota exceeded");
    assert_eq!(error_text(b""), "(no body)");
    let long = "x".repeat(10_000);
    let cut = error_text(long.as_bytes());
    assert!(cut.len() < 600 && cut.ends_with("..."), "{}", cut.len());
}

#[test]
fn a_bad_proxy_url_is_an_error_naming_its_setting_over_http_only() {
    let mut config = crate::config::Builder::new()
        .read_env(false)
        .protocol(Protocol::HttpProtobuf)
        .proxy("http://[::1")
        .config_with(crate::config::env::EnvSettings::default())
        .unwrap();
    let e = HttpSender::new(&config).err().unwrap().to_string();
    assert!(
        e.contains("Builder::proxy") && e.contains("http://[::1"),
        "{e}"
    );
    config.transport.proxies.https = Some(("HTTPS_PROXY", "::".into()));
    config.transport.proxies.http = None;
    let e = HttpSender::new(&config).err().unwrap().to_string();
    assert!(
        e.contains("HTTPS_PROXY") && e.contains("expected a proxy URL"),
        "{e}"
    );
}

#[test]
fn gzip_bodies_decompress_to_the_request() {
    use std::io::Read as _;
    let config = crate::config::Builder::new()
        .read_env(false)
        .protocol(Protocol::HttpProtobuf)
        .compression(Compression::Gzip)
        .config_with(crate::config::env::EnvSettings::default())
        .unwrap();
    let sender = HttpSender::new(&config).unwrap();
    let request = Bytes::from(vec![7u8; 10_000]);
    let body = sender.body(request.clone());
    assert!(body.len() < request.len());
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, request);
}
