//! Process-global behaviour (the installed `log` logger, environment variables), each case in a child
//! process of its own: this binary re-executes itself with `OLB_GLOBAL_CASE` naming the case.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Answer, Collector, span_context, wait_for};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

const CASE_VAR: &str = "OLB_GLOBAL_CASE";
const WAIT: Duration = Duration::from_secs(20);

type Case = (&'static str, fn(), &'static [(&'static str, &'static str)]);

const CASES: &[Case] = &[
    (
        "second_try_init_is_an_error_not_a_panic",
        second_try_init_is_an_error_not_a_panic,
        &[],
    ),
    (
        "invalid_log_level_names_the_variable",
        invalid_env_is_an_error,
        &[("LOG_LEVEL", "LOUD")],
    ),
    (
        "invalid_queue_size_names_the_variable",
        invalid_env_is_an_error,
        &[("OTEL_BLRP_MAX_QUEUE_SIZE", "-1")],
    ),
    (
        "batch_larger_than_queue_is_an_error",
        invalid_env_is_an_error,
        &[
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "200"),
        ],
    ),
    (
        "invalid_endpoint_names_the_variable",
        invalid_env_is_an_error,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "collector:4318/v1/logs"),
        ],
    ),
    (
        "invalid_protocol_names_the_variable",
        invalid_env_is_an_error,
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http")],
    ),
    (
        "sdk_disabled_installs_nothing_and_says_so",
        sdk_disabled_installs_nothing_and_says_so,
        &[("OTEL_SDK_DISABLED", "true"), ("LOG_MODE", "failover")],
    ),
    (
        "env_selects_http_json_and_appends_the_logs_path",
        env_selects_http_json_and_appends_the_logs_path,
        &[("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/json")],
    ),
    (
        "env_configures_resource_level_and_endpoint",
        env_configures_resource_level_and_endpoint,
        &[
            ("OTEL_SERVICE_NAME", "svc-from-env"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=loses,team=payments",
            ),
            ("LOG_LEVEL", "warn"),
        ],
    ),
    (
        "log_macros_reach_the_collector",
        log_macros_reach_the_collector,
        &[],
    ),
    (
        "no_feedback_from_transport_records_at_trace",
        no_feedback_from_transport_records_at_trace,
        &[],
    ),
    (
        "shutdown_from_inside_block_on",
        shutdown_from_inside_block_on,
        &[],
    ),
    (
        "plain_main_without_any_runtime",
        plain_main_without_any_runtime,
        &[],
    ),
    (
        "rust_log_directives_and_runtime_changes_move_max_level",
        rust_log_directives_and_runtime_changes_move_max_level,
        &[
            ("RUST_LOG", "warn,global::db=debug"),
            ("LOG_LEVEL_COOLDOWN", "0"),
        ],
    ),
    (
        "a_panic_in_a_thread_is_one_fatal_record_with_its_location",
        a_panic_in_a_thread_is_one_fatal_record_with_its_location,
        &[("LOG_PANIC_HOOK", "true")],
    ),
    (
        "log_config_file_applies_under_the_environment",
        log_config_file_applies_under_the_environment,
        &[("LOG_LEVEL", "error")],
    ),
    (
        "file_permissions_do_not_depend_on_the_umask",
        file_permissions_do_not_depend_on_the_umask,
        &[],
    ),
    (
        "logging_from_inside_the_panic_hook_neither_deadlocks_nor_loses",
        logging_from_inside_the_panic_hook_neither_deadlocks_nor_loses,
        &[("LOG_PANIC_HOOK", "true")],
    ),
    (
        "spool_survives_a_full_disk_and_a_read_only_dir",
        spool_survives_a_full_disk_and_a_read_only_dir,
        &[],
    ),
    (
        "invalid_rust_log_names_the_variable",
        invalid_env_is_an_error,
        &[("RUST_LOG", "info,my_crate=LOUD")],
    ),
    (
        "console_text_on_stderr_is_one_line_per_record_coloured_only_on_a_terminal",
        console_text_on_stderr_is_one_line_per_record_coloured_only_on_a_terminal,
        &[],
    ),
    #[cfg(feature = "tracing")]
    (
        "tracing_and_log_share_one_pipeline_and_a_level_change_reaches_both",
        tracing_and_log_share_one_pipeline_and_a_level_change_reaches_both,
        &[],
    ),
];

fn main() {
    if let Ok(case) = std::env::var(CASE_VAR) {
        let (_, run, _) = CASES
            .iter()
            .find(|(name, _, _)| *name == case)
            .expect("known case");
        run();
        return;
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let exe = std::env::current_exe().expect("current exe");
    let (mut passed, mut failed, mut filtered) = (0, 0, 0);
    for (name, _, envs) in CASES {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            filtered += 1;
            continue;
        }
        let mut cmd = Command::new(&exe);
        for (key, _) in std::env::vars() {
            if key.starts_with("OTEL_") || key.starts_with("LOG_") || key == "RUST_LOG" {
                cmd.env_remove(key);
            }
        }
        let log_dir = tempfile::tempdir().expect("temp dir");
        cmd.env(CASE_VAR, name)
            .env("LOG_DIR", log_dir.path())
            .envs(envs.iter().copied());
        let (ok, output) = run_child(cmd, Duration::from_secs(60));
        if ok {
            passed += 1;
            println!("test {name} ... ok");
        } else {
            failed += 1;
            println!("test {name} ... FAILED\n{output}");
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; {filtered} filtered out\n",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    if failed > 0 {
        std::process::exit(101);
    }
}

/// Runs `cmd`, killing it after `timeout`; returns success and its output.
fn run_child(mut cmd: Command, timeout: Duration) -> (bool, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait child") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::park_timeout(Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("child output");
    let text = format!(
        "{}{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        if status.is_none() {
            "\n(killed: timed out)"
        } else {
            ""
        }
    );
    (status.is_some_and(|s| s.success()), text)
}

fn test_builder(collector: &Collector) -> otel_log_bridge::Builder {
    otel_log_bridge::builder()
        .endpoint(collector.endpoint())
        .schedule_delay(Duration::from_millis(50))
}

fn second_try_init_is_an_error_not_a_panic() {
    let collector = Collector::start();
    let guard = test_builder(&collector)
        .level(log::LevelFilter::Debug)
        .try_init()
        .unwrap();
    assert_eq!(log::max_level(), log::LevelFilter::Debug);
    let second = test_builder(&collector)
        .level(log::LevelFilter::Trace)
        .try_init();
    assert!(
        matches!(second, Err(otel_log_bridge::Error::AlreadyInitialized)),
        "{second:?}"
    );
    let third = otel_log_bridge::try_init();
    assert!(
        matches!(third, Err(otel_log_bridge::Error::AlreadyInitialized)),
        "{third:?}"
    );
    assert_eq!(
        log::max_level(),
        log::LevelFilter::Debug,
        "a failed init leaves the level alone"
    );
    log::debug!("still the first logger");
    log::logger().flush();
    assert_eq!(collector.records().len(), 1);
    drop(guard);
}

fn invalid_env_is_an_error() {
    let vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            (k.starts_with("OTEL_") || k.starts_with("LOG_") || k == "RUST_LOG") && k != "LOG_DIR"
        })
        .collect();
    let err = otel_log_bridge::try_init()
        .expect_err("invalid environment must fail")
        .to_string();
    println!("{err}");
    let (last_var, last_value) = vars.iter().max_by_key(|(k, _)| k.len()).unwrap();
    assert!(
        err.contains(last_var.as_str()),
        "error must name the variable: {err}"
    );
    assert!(
        err.contains(last_value.as_str()),
        "error must quote the value: {err}"
    );
    assert!(
        err.contains("expected"),
        "error must say what is accepted: {err}"
    );
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

fn sdk_disabled_installs_nothing_and_says_so() {
    let log_dir = std::env::var("LOG_DIR").unwrap();
    let before = threads();
    let guard = otel_log_bridge::try_init().expect("disabled is not an error");
    assert_eq!(
        log::max_level(),
        log::LevelFilter::Off,
        "one level check per call"
    );
    log::error!("goes nowhere");
    assert_eq!(threads(), before, "no thread started");
    assert_eq!(
        std::fs::read_dir(&log_dir).unwrap().count(),
        0,
        "nothing written in {log_dir}"
    );
    assert_eq!(guard.stats().enqueued, 0);
    guard.flush(Duration::from_millis(10)).unwrap();
    assert!(
        guard
            .levels()
            .set("*", log::LevelFilter::Debug, "test")
            .is_err()
    );
    drop(guard);
}

/// Reached through `OTEL_EXPORTER_OTLP_ENDPOINT`, which this case sets to the collector's base URL
/// in a grandchild process (the variable must be set before the process starts).
fn env_selects_http_json_and_appends_the_logs_path() {
    if std::env::var("OLB_BASE").is_err() {
        let collector = Collector::start();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env("OLB_BASE", "1")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint());
        let (ok, output) = run_child(cmd, Duration::from_secs(30));
        assert!(ok, "{output}");
        collector.wait_for_records(1, WAIT);
        let headers = collector.headers();
        assert_eq!(
            headers[0].get("content-type").map(|v| v.to_str().unwrap()),
            Some("application/json")
        );
        return;
    }
    let guard = otel_log_bridge::builder()
        .schedule_delay(Duration::from_millis(50))
        .try_init()
        .unwrap();
    assert!(
        guard.endpoint().ends_with("/v1/logs"),
        "{}",
        guard.endpoint()
    );
    log::info!("over http/json");
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().exported, 1, "{:?}", guard.last_export_error());
}

fn env_configures_resource_level_and_endpoint() {
    let collector = Collector::start();
    // SAFETY: no other thread reads the environment at this point (the collector's thread does not).
    unsafe { std::env::set_var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", collector.endpoint()) };
    let guard = otel_log_bridge::builder()
        .schedule_delay(Duration::from_millis(50))
        .try_init()
        .unwrap();
    assert_eq!(log::max_level(), log::LevelFilter::Warn);
    log::info!("filtered by LOG_LEVEL=warn");
    log::warn!("kept");
    log::logger().flush();
    let records = collector.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].body(), "kept");
    assert_eq!(
        records[0].resource_attr("service.name"),
        common::string("svc-from-env")
    );
    assert_eq!(records[0].resource_attr("team"), common::string("payments"));
    drop(guard);
}

fn log_macros_reach_the_collector() {
    let collector = Collector::start();
    let guard = test_builder(&collector).try_init().unwrap();
    {
        let _cx = opentelemetry::Context::new()
            .with_remote_span_context(span_context())
            .attach();
        log::info!(target: "payment.service", amount = 150.0, user_id = 42, currency = "EUR"; "Transaction processed");
    }
    log::warn!("outside any span");
    log::logger().flush();
    let records = collector.records();
    assert_eq!(records.len(), 2);
    let r = &records[0];
    assert_eq!(r.scope, "payment.service");
    assert_eq!(r.body(), "Transaction processed");
    assert_eq!(r.attr("amount"), Some(Value::DoubleValue(150.0)));
    assert_eq!(r.attr("user_id"), Some(Value::IntValue(42)));
    assert_eq!(r.attr("currency"), common::string("EUR"));
    assert_eq!(r.attr("code.file.path"), common::string("tests/global.rs"));
    assert_eq!(r.attr("code.function.name"), common::string("global"));
    assert!(matches!(r.attr("code.line.number"), Some(Value::IntValue(n)) if n > 0));
    common::assert_in_span(r);
    assert_eq!(
        records[1].scope, "global",
        "default target is the module path"
    );
    assert!(records[1].record.trace_id.is_empty());
    let report = guard.shutdown(WAIT);
    assert_eq!(report.undelivered, 0);
}

fn no_feedback_from_transport_records_at_trace() {
    // `tracing`'s "log" feature is on in the dev-dependencies, so h2, hyper, tower and tonic emit
    // their tracing events as `log` records into the installed logger, at TRACE.
    let collector = Collector::start();
    collector.script(vec![
        Answer::Fail {
            code: tonic::Code::Unavailable,
            retry_after: None,
        },
        Answer::Fail {
            code: tonic::Code::Unavailable,
            retry_after: None,
        },
        Answer::Fail {
            code: tonic::Code::Unavailable,
            retry_after: None,
        },
    ]);
    let guard = test_builder(&collector)
        .level(log::LevelFilter::Trace)
        .try_init()
        .unwrap();
    log::info!(target: "app", "the only application record");
    log::logger().flush();
    // The collector failed three times and then accepted exactly one record.
    collector.wait_until(WAIT, "four requests", |_, requests| requests >= 4);
    log::logger().flush();
    let records = collector.records();
    let scopes: Vec<String> = records.iter().take(5).map(|r| r.scope.clone()).collect();
    assert_eq!(records.len(), 1, "fed back: {scopes:?}...");
    let stats = guard.stats();
    assert_eq!(stats.enqueued, 1, "{stats:?}");
    assert_eq!(stats.export_errors, 3, "{stats:?}");
}

fn shutdown_from_inside_block_on() {
    let collector = Collector::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let guard = test_builder(&collector).try_init().unwrap();
        for i in 0..100 {
            log::info!(seq = i; "inside block_on {i}");
        }
        let report = guard.shutdown(WAIT);
        assert!(report.completed);
        assert_eq!(report.undelivered, 0);
    });
    assert_eq!(collector.records().len(), 100);
}

fn plain_main_without_any_runtime() {
    let collector = Collector::start();
    let guard = test_builder(&collector).try_init().unwrap();
    log::error!(code = 500; "no runtime anywhere in the caller");
    drop(guard);
    assert_eq!(collector.records().len(), 1);
    // After the guard is gone the logger refuses records instead of panicking.
    log::error!("after shutdown");
    log::logger().flush();
}

mod db {
    pub fn query() {
        log::debug!("db query");
        log::trace!("db trace");
    }
}

fn rust_log_directives_and_runtime_changes_move_max_level() {
    let collector = Collector::start();
    // SAFETY: no other thread reads the environment at this point.
    unsafe { std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()) };
    let guard = otel_log_bridge::builder()
        .schedule_delay(Duration::from_millis(50))
        .try_init()
        .unwrap();
    assert_eq!(
        log::max_level(),
        log::LevelFilter::Debug,
        "the widest directive"
    );
    log::info!("filtered: default is warn");
    db::query();
    let levels = guard.levels();
    levels.set("*", log::LevelFilter::Trace, "test").unwrap();
    assert_eq!(log::max_level(), log::LevelFilter::Trace);
    log::trace!("now kept");
    levels.set_directives("error", "test").unwrap();
    assert_eq!(log::max_level(), log::LevelFilter::Error);
    log::logger().flush();
    // The collector groups records by scope, so compare without order.
    let mut bodies: Vec<String> = collector.records().iter().map(|r| r.body()).collect();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            "db query",
            "log level changed",
            "log level changed",
            "now kept"
        ],
        "{bodies:?}"
    );
    drop(guard);
}

fn a_panic_in_a_thread_is_one_fatal_record_with_its_location() {
    let collector = Collector::start();
    let guard = test_builder(&collector).try_init().unwrap();
    static PANIC_LINE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let worker = std::thread::Builder::new()
        .name("payment-worker".into())
        .spawn(|| {
            let _cx = opentelemetry::Context::new()
                .with_remote_span_context(span_context())
                .attach();
            PANIC_LINE.store(line!() + 1, std::sync::atomic::Ordering::SeqCst);
            panic!("card processor exploded: {}", 42);
        })
        .unwrap();
    assert!(worker.join().is_err());
    // The hook flushed before the thread died: the record is there without any flush here.
    let records = collector.records();
    let fatal: Vec<_> = records
        .iter()
        .filter(|r| r.record.severity_number == 21)
        .collect();
    assert_eq!(fatal.len(), 1, "{records:?}");
    let r = fatal[0];
    assert_eq!(r.record.severity_text, "FATAL");
    assert_eq!(r.scope, otel_log_bridge::PANIC_TARGET);
    assert_eq!(r.body(), "panic: card processor exploded: 42");
    assert_eq!(r.attr("code.file.path"), common::string("tests/global.rs"));
    let line = PANIC_LINE.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        r.attr("code.line.number"),
        Some(Value::IntValue(line.into()))
    );
    assert_eq!(r.attr("thread.name"), common::string("payment-worker"));
    assert_eq!(
        r.record.trace_id,
        span_context().trace_id().to_bytes().to_vec()
    );
    drop(guard);
}

/// A `Display` that logs when it is formatted.
struct LogsWhenShown;

impl std::fmt::Display for LogsWhenShown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        log::warn!(target: "panic_test", "logged while the panic message is formatted");
        f.write_str("shown")
    }
}

fn logging_from_inside_the_panic_hook_neither_deadlocks_nor_loses() {
    // A hook installed before ours logs too: ours runs it after its own record and flush.
    std::panic::set_hook(Box::new(|info| {
        log::error!(target: "panic_test", "the previous hook saw a panic");
        eprintln!("{info}");
    }));
    let collector = Collector::start();
    let guard = test_builder(&collector).try_init().unwrap();
    let worker = std::thread::spawn(|| panic!("message with a {}", LogsWhenShown));
    assert!(worker.join().is_err());
    guard.flush(WAIT).unwrap();
    let records = collector.records();
    let bodies: Vec<String> = records.iter().map(|r| r.body()).collect();
    assert!(
        bodies.contains(&"panic: message with a shown".to_owned()),
        "{bodies:?}"
    );
    assert!(
        bodies.contains(&"logged while the panic message is formatted".to_owned()),
        "{bodies:?}"
    );
    assert!(
        bodies.contains(&"the previous hook saw a panic".to_owned()),
        "{bodies:?}"
    );
    assert_eq!(guard.stats().dropped.total(), 0);
    drop(guard);
}

fn log_config_file_applies_under_the_environment() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logging.toml");
    std::fs::write(
        &path,
        format!(
            "service_name = \"svc-from-file\"\nmode = \"otlp-only\"\n[levels]\ndefault = \"trace\"\n[otlp]\nendpoint = \"{}\"\n[queue]\nschedule_delay_ms = 20\n",
            collector.endpoint()
        ),
    )
    .unwrap();
    // SAFETY: no other thread reads the environment at this point.
    unsafe { std::env::set_var("LOG_CONFIG", &path) };
    let guard = otel_log_bridge::try_init().unwrap();
    assert_eq!(
        guard.mode(),
        otel_log_bridge::Mode::OtlpOnly,
        "from the file"
    );
    assert_eq!(
        log::max_level(),
        log::LevelFilter::Error,
        "LOG_LEVEL=error beats the file's trace"
    );
    log::warn!("filtered");
    log::error!("kept");
    log::logger().flush();
    let records = collector.records();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].resource_attr("service.name"),
        common::string("svc-from-file")
    );
    drop(guard);
}

fn file_permissions_do_not_depend_on_the_umask() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for (umask, file_mode, dir_mode) in [(0o000, None, None), (0o077, Some(0o640), Some(0o750))] {
        // SAFETY: umask is process-wide; this child process runs one case at a time.
        unsafe { libc::umask(umask) };
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new").join("logs");
        let mut b = otel_log_bridge::builder()
            .read_env(false)
            .mode(otel_log_bridge::Mode::FileOnly)
            .log_dir(&dir);
        if let (Some(f), Some(d)) = (file_mode, dir_mode) {
            b = b.file_mode(f).dir_mode(d);
        }
        let (logger, guard) = b.build().unwrap();
        log::Log::log(
            &logger,
            &log::Record::builder()
                .args(format_args!("x"))
                .level(log::Level::Error)
                .target("t")
                .build(),
        );
        drop(guard);
        assert_eq!(mode(&dir), dir_mode.unwrap_or(0o700), "umask {umask:o}");
        assert_eq!(
            mode(&dir.join("app.log")),
            file_mode.unwrap_or(0o600),
            "umask {umask:o}"
        );
    }
}

/// Mounts a `bytes`-sized tmpfs on `dir` in a mount namespace of this (single-threaded) child
/// process alone: with `CAP_SYS_ADMIN`, or else in a new user namespace.
fn private_tmpfs(dir: &std::path::Path, bytes: usize) {
    use std::ffi::CString;
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    // SAFETY: plain syscalls on this process; no other thread exists yet in this child.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            assert_eq!(
                libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS),
                0,
                "this test needs CAP_SYS_ADMIN or unprivileged user namespaces to mount a small tmpfs: {}",
                std::io::Error::last_os_error()
            );
            std::fs::write("/proc/self/setgroups", "deny").unwrap();
            std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).unwrap();
            std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")).unwrap();
        }
        let root = CString::new("/").unwrap();
        assert_eq!(
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null()
            ),
            0,
            "make mounts private: {}",
            std::io::Error::last_os_error()
        );
        let target = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        let fstype = CString::new("tmpfs").unwrap();
        let options = CString::new(format!("size={bytes},mode=0700")).unwrap();
        assert_eq!(
            libc::mount(
                fstype.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                options.as_ptr().cast()
            ),
            0,
            "mount a tmpfs on {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
}

/// Clears this thread's effective capabilities (and so those of threads it starts later), so permission bits bind it even as root.
fn drop_effective_capabilities() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a version-3 header and two data words, as the ABI requires.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        data[0].effective = 0;
        data[1].effective = 0;
        assert_eq!(
            libc::syscall(libc::SYS_capset, &header, data.as_ptr()),
            0,
            "capset: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Failover with the collector down on a 256 KiB tmpfs: a full disk, then a read-only directory.
/// Each loses what cannot be written, counted as `io_error` with a diagnostic, never a panic; each
/// recovers when fixed, and at the end the collector gets every record that was not counted lost.
fn spool_survives_a_full_disk_and_a_read_only_dir() {
    use std::os::unix::fs::PermissionsExt as _;
    let mnt = std::path::PathBuf::from(std::env::var("LOG_DIR").unwrap()).join("small");
    std::fs::create_dir(&mnt).unwrap();
    private_tmpfs(&mnt, 256 * 1024);
    // Capabilities are per thread and inherited: dropped before any thread starts.
    drop_effective_capabilities();
    let dir = mnt.join("logs");
    let endpoint = common::closed_endpoint();
    let (logger, guard) = common::builder(&endpoint)
        .mode(otel_log_bridge::Mode::Failover)
        .log_dir(&dir)
        .file_max_bytes(16 * 1024)
        .build()
        .unwrap();
    let mut seq = 0i64;
    let mut emit = |n: usize| {
        for _ in 0..n {
            log::Log::log(
                &logger,
                &log::Record::builder()
                    .args(format_args!("record {seq} for the spool"))
                    .level(log::Level::Warn)
                    .target("disk")
                    .key_values(&[("seq", seq)])
                    .build(),
            );
            seq += 1;
        }
        log::Log::flush(&logger);
    };
    let spooled = |guard: &otel_log_bridge::Guard| guard.stats().spooled;

    // The disk fills up: a filler takes every free byte.
    emit(100);
    wait_for(WAIT, "first records spooled", || spooled(&guard) >= 100);
    let filler = mnt.join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
    }
    emit(200);
    wait_for(WAIT, "loss on a full disk counted", || {
        guard.stats().dropped.io_error > 0
    });
    let error = guard.last_export_error().unwrap_or_default();
    assert!(
        error.contains("No space left on device"),
        "diagnostic: {error}"
    );
    // Fixed: space again, spooling goes on.
    std::fs::remove_file(&filler).unwrap();
    let before = spooled(&guard);
    emit(100);
    wait_for(WAIT, "spooling resumed after the disk was freed", || {
        spooled(&guard) >= before + 100
    });

    // The directory becomes read-only: a new segment cannot be made once the active one is full.
    let lost_before = guard.stats().dropped.io_error;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    emit(400);
    wait_for(WAIT, "loss in a read-only directory counted", || {
        guard.stats().dropped.io_error > lost_before
    });
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let before = spooled(&guard);
    emit(100);
    wait_for(
        WAIT,
        "spooling resumed after the directory was writable",
        || spooled(&guard) >= before + 100,
    );

    // The collector comes back: everything not counted lost is replayed, once.
    let emitted = seq as u64;
    let collector = Collector::start_at(&endpoint);
    wait_for(Duration::from_secs(30), "spool replayed", || {
        let s = guard.stats();
        s.replayed + s.exported + s.dropped.total() >= emitted
    });
    let stats = guard.stats();
    let mut seqs = common::seqs(&collector.stop());
    seqs.sort_unstable();
    let received = seqs.len() as u64;
    seqs.dedup();
    assert_eq!(seqs.len() as u64, received, "no duplicates");
    assert_eq!(
        received + stats.dropped.io_error,
        emitted,
        "emitted = delivered + io_error: {stats:?}"
    );
    assert_eq!(stats.dropped.total(), stats.dropped.io_error, "{stats:?}");
    drop(guard);
}

/// The layer as the global subscriber with `tracing-subscriber`'s `init()` (which routes `log`
/// records into `tracing`): `log` and `tracing` records arrive once each; a runtime level change
/// reaches call sites `tracing` had already judged (its interest and max level are recomputed) and
/// `log` records (`log::max_level` raised); the transport's own events at TRACE never come back.
#[cfg(feature = "tracing")]
fn tracing_and_log_share_one_pipeline_and_a_level_change_reaches_both() {
    use tracing_subscriber::prelude::*;
    let collector = Collector::start();
    let (layer, guard) = common::builder(&collector.endpoint())
        .level(log::LevelFilter::Info)
        .level_change_cooldown(Duration::ZERO)
        .build_layer()
        .unwrap();
    tracing_subscriber::registry().with(layer).init();
    let emit = |phase: &str| {
        tracing::debug!("tracing debug {phase}");
        log::debug!("log debug {phase}");
        tracing::info!("tracing info {phase}");
        log::info!("log info {phase}");
    };
    emit("before");
    assert_eq!(
        tracing::level_filters::LevelFilter::current(),
        tracing::Level::INFO
    );
    guard
        .levels()
        .set("*", log::LevelFilter::Trace, "test")
        .unwrap();
    assert_eq!(log::max_level(), log::LevelFilter::Trace);
    emit("after");
    guard.flush(WAIT).unwrap();
    // What the transport logs at TRACE while exporting would arrive with the next batch.
    log::info!("last");
    guard.flush(WAIT).unwrap();
    // The audit record has its own scope, so its own place in a request.
    let bodies: Vec<String> = collector.records().iter().map(|r| r.body()).collect();
    assert_eq!(
        bodies.iter().filter(|b| *b == "log level changed").count(),
        1
    );
    let bodies: Vec<&String> = bodies
        .iter()
        .filter(|b| *b != "log level changed")
        .collect();
    assert_eq!(
        bodies,
        [
            "tracing info before",
            "log info before",
            "tracing debug after",
            "log debug after",
            "tracing info after",
            "log info after",
            "last",
        ]
    );
}

/// `LOG_STDOUT=stderr`, `LOG_STDOUT_FORMAT=text`: a grandchild logs two records; its stderr is a
/// pipe (no colour), a pseudo-terminal (colour), and a pseudo-terminal with `NO_COLOR` (none).
fn console_text_on_stderr_is_one_line_per_record_coloured_only_on_a_terminal() {
    if std::env::var("OLB_CONSOLE_CHILD").is_ok() {
        let guard = otel_log_bridge::builder()
            .mode(otel_log_bridge::Mode::FileOnly)
            .try_init()
            .unwrap();
        log::info!(user_id = 42, note = "a b"; "two\nlines");
        log::error!("failed");
        drop(guard);
        return;
    }
    let grandchild = |no_color: bool| {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env("OLB_CONSOLE_CHILD", "1")
            .env("LOG_STDOUT", "stderr")
            .env("LOG_STDOUT_FORMAT", "text")
            .env_remove("NO_COLOR")
            .stdout(Stdio::null());
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        cmd
    };
    // A pipe: plain text, one line per record, on stderr.
    let out = grandchild(false).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert!(
        lines[0].ends_with(r#"  INFO global: two\nlines user_id=42 note="a b""#),
        "{text:?}"
    );
    assert!(lines[1].ends_with(" ERROR global: failed"), "{text:?}");
    assert!(!text.contains('\x1b'), "{text:?}");
    // The console's own threshold.
    let out = grandchild(false)
        .env("LOG_STDOUT_LEVEL", "error")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stderr).unwrap();
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(text.ends_with(" ERROR global: failed\n"), "{text:?}");
    // A terminal: the level coloured, unless NO_COLOR.
    assert!(on_a_terminal(grandchild(false)).contains("\x1b[32mINFO\x1b[0m"));
    assert!(!on_a_terminal(grandchild(true)).contains('\x1b'));
}

/// Runs `cmd` with its stderr on a new pseudo-terminal; returns what it wrote there.
fn on_a_terminal(mut cmd: Command) -> String {
    use std::io::Read as _;
    use std::os::fd::{FromRawFd as _, OwnedFd};
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new descriptors into the two integers; the null pointers ask for
    // no name, default settings and size.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned by nothing else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut child = cmd.stderr(Stdio::from(slave)).spawn().unwrap();
    // Our copy of the slave went into the command, which is dropped with the spawn: reading the
    // master ends (EIO) once the grandchild exits.
    drop(cmd);
    let mut master = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert!(child.wait().unwrap().success());
    String::from_utf8_lossy(&out).into_owned()
}
