//! Local files, failover, spool and replay, against a real in-process collector and real files in
//! temporary directories.

mod common;

use std::collections::HashMap;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{BlackHole, Collector, closed_endpoint, seqs, wait_for};
use log::Log as _;
use otel_log_bridge::{Logger, Mode, Protocol};

const WAIT: Duration = Duration::from_secs(30);

fn failover(endpoint: &str, dir: &Path) -> otel_log_bridge::Builder {
    failover_via(Protocol::Grpc, endpoint, dir)
}

/// [`failover`] over `protocol`; `base` is the collector's `http://host:port`.
fn failover_via(protocol: Protocol, base: &str, dir: &Path) -> otel_log_bridge::Builder {
    otel_log_bridge::builder()
        .read_env(false)
        .mode(Mode::Failover)
        .protocol(protocol)
        .endpoint(common::endpoint_for(base, protocol))
        .log_dir(dir)
        .service_name("files-test")
        .level(log::LevelFilter::Trace)
        .schedule_delay(Duration::from_millis(20))
        .max_export_batch_size(100)
        .export_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_millis(500))
}

fn tee(endpoint: &str, dir: &Path) -> (Logger, otel_log_bridge::Guard) {
    failover(endpoint, dir).mode(Mode::Tee).build().unwrap()
}

fn info(logger: &Logger, i: usize) {
    let kvs: [(&str, log::kv::Value<'_>); 1] = [("seq", (i as u64).into())];
    logger.log(
        &log::Record::builder()
            .args(format_args!("record {i}"))
            .level(log::Level::Info)
            .target("app")
            .key_values(&kvs)
            .build(),
    );
}

/// Emits `range` at a steady `per_sec` (load shaping, not synchronisation).
fn emit_steady(logger: &Logger, range: std::ops::Range<usize>, per_sec: u64) {
    let start = std::time::Instant::now();
    for (k, i) in range.enumerate() {
        if k % 50 == 0 {
            let due = start + Duration::from_micros(k as u64 * 1_000_000 / per_sec);
            std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        }
        info(logger, i);
    }
}

fn spool_segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("app.log.spool.0")
        })
        .collect();
    v.sort();
    v
}

fn spool_is_empty(dir: &Path) -> bool {
    spool_segments(dir).is_empty()
        && std::fs::metadata(dir.join("app.log"))
            .map(|m| m.len())
            .unwrap_or(0)
            == 0
}

/// Every seq in `0..n` at least once; returns how many came more than once.
fn check_all_delivered(seqs: &[i64], n: usize) -> usize {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for s in seqs {
        *counts.entry(*s).or_default() += 1;
    }
    let missing: Vec<usize> = (0..n)
        .filter(|i| !counts.contains_key(&(*i as i64)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} records lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    counts.values().map(|c| c - 1).sum()
}

#[test]
fn a_collector_down_for_a_window_loses_nothing_and_the_spool_empties() {
    down_for_a_window(Protocol::Grpc);
}

#[test]
fn over_http_a_collector_down_for_a_window_loses_nothing_and_the_spool_empties() {
    down_for_a_window(Protocol::HttpProtobuf);
}

fn down_for_a_window(protocol: Protocol) {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start();
    let addr = collector.addr;
    let (logger, guard) = failover_via(protocol, &collector.endpoint(), tmp.path())
        .build()
        .unwrap();
    // A steady 5,000 records/s; the collector goes away after the first 1,000 and is back for the
    // last 1,000.
    emit_steady(&logger, 0..1000, 5000);
    collector.wait_for_records(1000, WAIT);
    let mut received = collector.stop();
    emit_steady(&logger, 1000..3000, 5000);
    wait_for(WAIT, "records to be spooled", || {
        guard.stats().spooled >= 2000
    });
    assert!(!spool_is_empty(tmp.path()));
    let collector = Collector::start_on(addr);
    emit_steady(&logger, 3000..4000, 5000);
    wait_for(WAIT, "the spool to be replayed", || {
        let s = guard.stats();
        s.queue_depth == 0
            && s.in_flight == 0
            && s.spool_bytes == 0
            && s.exported + s.replayed >= 4000
    });
    received.extend(collector.records());
    let duplicates = check_all_delivered(&seqs(&received), 4000);
    assert!(
        duplicates <= 2 * 100,
        "{duplicates} duplicates: more than one batch per outage boundary"
    );
    assert!(spool_is_empty(tmp.path()));
    let s = guard.stats();
    assert_eq!(s.dropped.total(), 0, "{s:?}");
    assert_eq!(s.enqueued, s.exported + s.spooled, "{s:?}");
    assert_eq!(s.spooled, s.replayed, "{s:?}");
}

#[test]
fn a_collector_that_never_answers_slows_nobody_and_loses_nothing() {
    never_answers(Protocol::Grpc);
}

#[test]
fn over_http_a_collector_that_never_answers_slows_nobody_and_loses_nothing() {
    never_answers(Protocol::HttpJson);
}

fn never_answers(protocol: Protocol) {
    let tmp = tempfile::tempdir().unwrap();
    let hole = BlackHole::start();
    let addr = hole.addr;
    let (logger, guard) = failover_via(protocol, &hole.endpoint(), tmp.path())
        .max_queue_size(300)
        .build()
        .unwrap();
    // 10,000 records at 5,000/s through a queue of 300: while the worker waits on the hung collector
    // it spills the queue to disk, so no caller is ever refused. Each group of 50 waits (bounded)
    // for the queue to be at the spill threshold (150) or below: the spill is the only way the
    // queue drains while the collector hangs, and the test must not depend on how soon the worker
    // is scheduled (a few milliseconds on a loaded machine would let 50 records pass the 80%
    // watermark).
    let start = std::time::Instant::now();
    for group in (0..10_000usize).step_by(50) {
        let due = start + Duration::from_micros(group as u64 * 200);
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        wait_for(WAIT, "the worker to spill the queue", || {
            guard.stats().queue_depth <= 150
        });
        for i in group..group + 50 {
            info(&logger, i);
        }
    }
    let s = guard.stats();
    assert_eq!(
        (s.dropped.queue_full, s.dropped.shed),
        (0, 0),
        "the callers were refused: {s:?}"
    );
    wait_for(WAIT, "everything to be spooled", || {
        let s = guard.stats();
        s.queue_depth == 0 && s.in_flight == 0 && s.spooled == 10_000
    });
    hole.stop();
    let collector = Collector::start_on(addr);
    collector.wait_until(WAIT, "10,000 distinct records", |r, _| {
        seqs(r)
            .into_iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
            >= 10_000
    });
    wait_for(WAIT, "the spool to empty", || {
        guard.stats().spool_bytes == 0
    });
    check_all_delivered(&seqs(&collector.records()), 10_000);
    assert_eq!(guard.stats().dropped.total(), 0);
}

#[test]
fn a_spool_left_by_one_process_is_shipped_by_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let (logger, guard) = failover(&closed_endpoint(), tmp.path()).build().unwrap();
    for i in 0..300 {
        info(&logger, i);
    }
    let report = guard.shutdown(Duration::from_secs(10));
    assert!(report.completed);
    assert_eq!(
        (report.stats.spooled, report.undelivered),
        (300, 0),
        "{report:?}"
    );
    assert!(!spool_is_empty(tmp.path()));

    let collector = Collector::start();
    let (_logger, guard) = failover(&collector.endpoint(), tmp.path()).build().unwrap();
    collector.wait_for_records(300, WAIT);
    wait_for(WAIT, "the spool to empty", || spool_is_empty(tmp.path()));
    check_all_delivered(&seqs(&collector.records()), 300);
    assert_eq!(guard.stats().replayed, 300);
    let stdout = guard.shutdown(WAIT);
    assert_eq!(stdout.undelivered, 0);
}

#[test]
fn two_pipelines_on_one_spool_directory_the_second_gets_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (_l, _g) = failover(&closed_endpoint(), tmp.path()).build().unwrap();
    let err = failover(&closed_endpoint(), tmp.path())
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("in use by another process")
            && err.contains(&tmp.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn an_unusable_log_directory_is_an_error_at_start_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    for mode in [Mode::Failover, Mode::Tee, Mode::FileOnly] {
        let err = failover(&closed_endpoint(), &file.join("logs"))
            .mode(mode)
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("a-file"), "{mode:?}: {err}");
    }
}

/// Child half of the crash test: spools records, says so, then waits to be killed.
#[test]
#[ignore = "run by kill_9_mid_spool_then_the_next_process_replays_everything_before_the_torn_tail"]
fn spool_writer_child() {
    let Ok(dir) = std::env::var("OLB_SPOOL_DIR") else {
        return;
    };
    let protocol = std::env::var("OLB_PROTOCOL")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(Protocol::Grpc);
    let (logger, guard) = failover_via(protocol, &closed_endpoint(), Path::new(&dir))
        .build()
        .unwrap();
    for i in 0..500 {
        info(&logger, i);
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().spooled, 500);
    println!("SPOOLED 500");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::park();
    }
}

/// Runs the ignored child test `name` of this binary with its spool in `dir`; returns the child and
/// its stdout's lines.
fn spawn_child(
    mut command: Command,
    name: &str,
    dir: &Path,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    let mut child = command
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OLB_SPOOL_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

#[test]
fn kill_9_mid_spool_then_the_next_process_replays_everything_before_the_torn_tail() {
    kill_9_mid_spool(Protocol::Grpc);
}

#[test]
fn over_http_kill_9_mid_spool_then_the_next_process_replays_everything_before_the_torn_tail() {
    kill_9_mid_spool(Protocol::HttpProtobuf);
}

fn kill_9_mid_spool(protocol: Protocol) {
    let tmp = tempfile::tempdir().unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.env("OLB_PROTOCOL", protocol.to_string());
    let (mut child, mut lines) = spawn_child(command, "spool_writer_child", tmp.path());
    let ready = lines
        .by_ref()
        .take(50)
        .map_while(Result::ok)
        .any(|l| l.contains("SPOOLED 500"));
    assert!(ready, "the child did not spool");
    // The record it was writing when killed: a line cut short.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(tmp.path().join("app.log"))
        .unwrap();
    f.write_all(br#"{"timestamp":"2026-11-25T00:00:00Z","severity_text":"IN"#)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let collector = Collector::start();
    let (_logger, guard) = failover_via(protocol, &collector.endpoint(), tmp.path())
        .build()
        .unwrap();
    collector.wait_for_records(500, WAIT);
    wait_for(WAIT, "the spool to empty", || spool_is_empty(tmp.path()));
    check_all_delivered(&seqs(&collector.records()), 500);
    let s = guard.stats();
    assert_eq!((s.replayed, s.corrupt_skipped), (500, 1), "{s:?}");
}

fn read_lines(dir: &Path) -> (Vec<String>, Vec<(String, usize)>) {
    let mut lines = Vec::new();
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name == "app.log" || name.starts_with("app.log.")) || name.ends_with(".lock") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{name} ends mid-line"
        );
        sizes.push((name, text.len()));
        lines.extend(text.lines().map(str::to_owned));
    }
    (lines, sizes)
}

#[test]
fn rotation_under_two_writing_threads_splits_and_loses_no_record() {
    for (backups, expect_all) in [(100, true), (3, false)] {
        let tmp = tempfile::tempdir().unwrap();
        let (logger, guard) = failover(&closed_endpoint(), tmp.path())
            .mode(Mode::FileOnly)
            .file_max_bytes(20_000)
            .file_backups(backups)
            .max_queue_size(10_000)
            .build()
            .unwrap();
        let logger = Arc::new(logger);
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let logger = logger.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        info(&logger, t * 2000 + i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let report = guard.shutdown(WAIT);
        assert_eq!(
            (report.stats.written, report.undelivered),
            (4000, 0),
            "{report:?}"
        );
        let (lines, sizes) = read_lines(tmp.path());
        // Each rotation made one more file, at most `backups` of them kept.
        assert!(
            report.stats.rotations as usize >= sizes.len() - 1,
            "{report:?}"
        );
        assert!(
            sizes.len() <= backups + 1,
            "{} files for {backups} backups",
            sizes.len()
        );
        let longest = lines.iter().map(|l| l.len() + 1).max().unwrap();
        for (name, size) in &sizes {
            assert!(*size <= 20_000 + longest, "{name} is {size} bytes");
        }
        let mut seen = Vec::new();
        for l in &lines {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert_eq!(v["service.name"], "files-test");
            seen.push(v["seq"].as_i64().unwrap());
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "a record was written twice");
        if expect_all {
            check_all_delivered(&seen, 4000);
        }
    }
}

#[test]
fn tee_sends_every_record_to_both_the_collector_and_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start();
    let (logger, guard) = tee(&collector.endpoint(), tmp.path());
    for i in 0..250 {
        info(&logger, i);
    }
    let report = guard.shutdown(WAIT);
    assert_eq!((report.stats.exported, report.stats.written), (250, 250));
    check_all_delivered(&seqs(&collector.records()), 250);
    let (lines, _) = read_lines(tmp.path());
    assert_eq!(lines.len(), 250);
    assert!(
        !tmp.path().join("app.log.lock").exists(),
        "tee keeps a plain log, no spool"
    );
}

fn quickstart() -> PathBuf {
    // target/debug/deps/files-HASH -> target/debug/examples/quickstart
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("quickstart")
}

#[test]
fn quickstart_without_a_collector_saves_its_records_and_ships_them_on_the_next_run() {
    let bin = quickstart();
    if !bin.exists() {
        // `cargo test` builds the examples; a filtered run of this binary alone may not have. Built
        // for the same target as this test (`--target` puts it under target/<triple>/), with the
        // same RUSTFLAGS (inherited), so a sanitizer build runs a sanitized example.
        let profile_dir = bin.parent().unwrap().parent().unwrap();
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--example", "quickstart"]);
        // target/debug, or target/<triple>/debug with `--target`: the target directory's root
        // holds CACHEDIR.TAG (a triple's directory has one too, so look above it).
        let above = profile_dir.parent().unwrap();
        if above
            .parent()
            .is_some_and(|p| p.join("CACHEDIR.TAG").exists())
        {
            cargo.arg("--target").arg(above.file_name().unwrap());
        }
        let status = cargo.status().unwrap();
        assert!(status.success());
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = |endpoint: &str| {
        let out = Command::new(&bin)
            .current_dir(tmp.path())
            .env_clear()
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run(&closed_endpoint());
    assert!(
        first.contains("6 records were saved to ./logs/app.log"),
        "{first}"
    );
    let json_lines = first.lines().filter(|l| l.starts_with('{')).count();
    assert_eq!(json_lines, 6, "the records also go to stdout: {first}");
    let saved = std::fs::read_to_string(tmp.path().join("logs/app.log")).unwrap();
    assert_eq!(saved.lines().count(), 6);

    let collector = Collector::start();
    let second = run(&collector.endpoint());
    assert!(
        second.contains("6 records spooled by an earlier run were delivered"),
        "{second}"
    );
    assert_eq!(collector.records().len(), 12);
    assert!(spool_is_empty(&tmp.path().join("logs")));
}

#[test]
fn permanent_refusals_in_failover_spool_and_pause_instead_of_dropping() {
    permanent_refusals(Protocol::Grpc);
}

#[test]
fn over_http_permanent_refusals_in_failover_spool_and_pause_instead_of_dropping() {
    permanent_refusals(Protocol::HttpJson);
}

/// The scripted codes reach HTTP as 401 and 400: permanent there too.
fn permanent_refusals(protocol: Protocol) {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start();
    collector.script(vec![
        // The live batch: an expired token, say. Spooled, the collector taken as down.
        common::Answer::Fail {
            code: tonic::Code::Unauthenticated,
            retry_after: None,
        },
        // The spooled batch at the first probe: refused for good. Replay pauses; nothing dropped.
        common::Answer::Fail {
            code: tonic::Code::InvalidArgument,
            retry_after: None,
        },
    ]);
    let (logger, guard) = failover_via(protocol, &collector.endpoint(), tmp.path())
        .build()
        .unwrap();
    for i in 0..10 {
        info(&logger, i);
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(
        (guard.stats().spooled, guard.stats().dropped.export_failed),
        (10, 0)
    );
    wait_for(WAIT, "the refused replay", || collector.requests() >= 2);
    // Live records get through once the collector accepts again; then the spool follows.
    let mut i = 10;
    wait_for(WAIT, "everything delivered", || {
        info(&logger, i);
        i += 1;
        let s = guard.stats();
        s.spool_bytes == 0 && s.replayed == 10
    });
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!(s.dropped.total(), 0, "{s:?}");
    check_all_delivered(&seqs(&collector.records()), i);
}

#[test]
fn secret_attributes_are_redacted_in_files_and_export_and_injection_stays_one_record() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start();
    let (logger, guard) = tee(&collector.endpoint(), tmp.path());
    let kvs: [(&str, log::kv::Value<'_>); 3] = [
        ("db_password", "hunter2".into()),
        ("Authorization", "Bearer abc".into()),
        ("user_id", 42i64.into()),
    ];
    logger.log(
        &log::Record::builder()
            .args(format_args!(
                "login\n{{\"timestamp\":\"fake\",\"message\":\"injected\"}}"
            ))
            .level(log::Level::Info)
            .target("app")
            .key_values(&kvs)
            .build(),
    );
    let report = guard.shutdown(WAIT);
    assert_eq!((report.stats.exported, report.stats.written), (1, 1));
    let (lines, _) = read_lines(tmp.path());
    assert_eq!(lines.len(), 1, "one record, one line: {lines:?}");
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["db_password"], otel_log_bridge::REDACTED);
    assert_eq!(v["Authorization"], otel_log_bridge::REDACTED);
    assert_eq!(v["user_id"], 42);
    assert!(!lines[0].contains("hunter2") && !lines[0].contains("Bearer abc"));
    let r = &collector.records()[0];
    assert_eq!(
        r.attr("db_password"),
        common::string(otel_log_bridge::REDACTED)
    );
    assert_eq!(
        r.attr("user_id"),
        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(42))
    );
}

#[test]
fn a_flapping_collector_loses_nothing_and_every_record_is_accounted_for() {
    // 5,000 records/s for 3 s, while the collector goes down and up every 250 ms.
    flapping(15_000, 5000, Duration::from_millis(250), Protocol::Grpc);
}

#[test]
fn over_http_a_flapping_collector_loses_nothing_and_every_record_is_accounted_for() {
    flapping(
        15_000,
        5000,
        Duration::from_millis(250),
        Protocol::HttpProtobuf,
    );
}

#[test]
fn a_collector_flapping_every_second_for_20_s_under_load_loses_nothing() {
    flapping(100_000, 5000, Duration::from_secs(1), Protocol::Grpc);
}

/// Emits `n` records at `rate` per second while the collector goes down and up every `period`;
/// then every record is delivered, by our count exactly once, and duplicates stay within the
/// batches in flight (two) per outage boundary.
fn flapping(n: usize, rate: u64, period: Duration, protocol: Protocol) {
    let tmp = tempfile::tempdir().unwrap();
    let first = Collector::start();
    let addr = first.addr;
    let (logger, guard) = failover_via(protocol, &first.endpoint(), tmp.path())
        .build()
        .unwrap();
    let logger = Arc::new(logger);
    let producer = {
        let logger = logger.clone();
        std::thread::spawn(move || emit_steady(&logger, 0..n, rate))
    };
    let mut received = Vec::new();
    let mut collector = Some(first);
    let mut boundaries = 0;
    while !producer.is_finished() {
        std::thread::park_timeout(period);
        match collector.take() {
            Some(up) => received.extend(up.stop()),
            None => collector = Some(Collector::start_on(addr)),
        }
        boundaries += 1;
    }
    producer.join().unwrap();
    let collector = collector.unwrap_or_else(|| Collector::start_on(addr));
    guard.flush(WAIT).unwrap();
    wait_for(WAIT, "the spool to be replayed", || {
        let s = guard.stats();
        s.queue_depth == 0 && s.in_flight == 0 && s.spool_bytes == 0
    });
    received.extend(collector.records());
    let duplicates = check_all_delivered(&seqs(&received), n);
    let s = guard.stats();
    assert_eq!(s.dropped.total(), 0, "{s:?}");
    assert_eq!(s.enqueued, n as u64);
    assert_eq!(
        s.exported + s.replayed,
        n as u64,
        "every record delivered once by our count: {s:?}"
    );
    // At most the batches in flight at an outage boundary (two) come twice (batches of 100).
    assert!(
        duplicates <= boundaries * 2 * 100,
        "{duplicates} duplicates over {boundaries} boundaries"
    );
}

#[test]
fn a_spool_directory_removed_while_running_is_made_again_and_the_loss_is_counted() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    let endpoint = closed_endpoint();
    let (logger, guard) = failover(&endpoint, &dir).build().unwrap();
    for i in 0..100 {
        info(&logger, i);
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().spooled, 100);
    // An over-eager cleanup removes the whole directory, spool included.
    std::fs::remove_dir_all(&dir).unwrap();
    for i in 100..150 {
        info(&logger, i);
    }
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!(
        (s.spooled, s.dropped.io_error),
        (150, 100),
        "the loss is counted: {s:?}"
    );
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(
        dir.join("app.log.spool.cursor").exists(),
        "marked as a spool again"
    );
    // The collector comes: what survived is delivered.
    let collector = Collector::start_at(&endpoint);
    wait_for(WAIT, "the spool to be replayed", || {
        guard.stats().replayed == 50
    });
    let mut got = seqs(&collector.records());
    got.sort();
    assert_eq!(got, (100..150).collect::<Vec<_>>());
}

/// Child half of the crash loop: spools records from `OLB_START` on (or, with `OLB_ENDPOINT`,
/// exports them while it replays what earlier children spooled), saying after each flush how far it
/// is sure they are delivered or on disk, until it is killed.
#[test]
#[ignore = "run by fifty_kill_9_at_random_moments_lose_nothing_that_reached_the_spool"]
fn spool_writer_loop_child() {
    let (Ok(dir), Ok(start)) = (std::env::var("OLB_SPOOL_DIR"), std::env::var("OLB_START")) else {
        return;
    };
    let start: usize = start.parse().unwrap();
    let endpoint = std::env::var("OLB_ENDPOINT").unwrap_or_else(|_| closed_endpoint());
    let (logger, guard) = failover(&endpoint, Path::new(&dir))
        .export_timeout(Duration::from_millis(50))
        .file_max_bytes(4096)
        .build()
        .unwrap();
    let mut next = start;
    loop {
        for _ in 0..37 {
            info(&logger, next);
            next += 1;
        }
        guard.flush(WAIT).unwrap();
        println!("SPOOLED {next}");
        std::io::stdout().flush().unwrap();
    }
}

#[test]
fn fifty_kill_9_at_random_moments_lose_nothing_that_reached_the_spool() {
    let tmp = tempfile::tempdir().unwrap();
    // Every third child finds the collector up: it is killed while it replays.
    let live = Collector::start();
    let mut confirmed: Vec<std::ops::Range<usize>> = Vec::new();
    let mut next = 0usize;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for round in 0..50 {
        let mut command = Command::new(std::env::current_exe().unwrap());
        if round % 3 == 2 {
            command.env("OLB_ENDPOINT", live.endpoint());
        }
        command.env("OLB_START", next.to_string());
        let (mut child, mut lines) = spawn_child(command, "spool_writer_loop_child", tmp.path());
        // Let it confirm between 1 and 4 flushes, then kill it while it writes the next ones.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let flushes = 1 + (rng % 4) as usize;
        let mut sure = next;
        let mut seen = 0;
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("SPOOLED ") {
                sure = n.trim().parse().unwrap();
                seen += 1;
                if seen == flushes {
                    break;
                }
            }
        }
        // A random moment within its next few writes (timing, not synchronisation).
        std::thread::sleep(Duration::from_micros(rng % 3000));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(seen > 0, "the child never spooled");
        confirmed.push(next..sure);
        next = sure + 1000; // later children use fresh numbers
    }
    let collector = Collector::start();
    let (_logger, guard) = failover(&collector.endpoint(), tmp.path()).build().unwrap();
    wait_for(WAIT, "the whole spool to be replayed", || {
        spool_is_empty(tmp.path())
    });
    let mut got: std::collections::HashSet<i64> = seqs(&collector.records()).into_iter().collect();
    let during = live.stop();
    assert!(!during.is_empty(), "some children exported and replayed");
    got.extend(seqs(&during));
    for range in &confirmed {
        for i in range.clone() {
            assert!(
                got.contains(&(i as i64)),
                "record {i} reached the spool but was not delivered"
            );
        }
    }
    // Torn tails are counted, and nothing stopped the replay.
    let s = guard.stats();
    eprintln!("after 50 kills: {s:?}");
    assert_eq!(s.dropped.total(), 0, "{s:?}");
}

#[test]
fn a_slow_collector_neither_blocks_callers_nor_loses_or_doubles_records() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start();
    // Three answers come after 2 s, longer than the 300 ms a request may take.
    collector.script(vec![common::Answer::Delay(Duration::from_secs(2)); 3]);
    let (logger, guard) = failover(&collector.endpoint(), tmp.path())
        .request_timeout(Duration::from_millis(300))
        .export_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for i in 0..200 {
        info(&logger, i);
    }
    let s = guard.stats();
    assert_eq!(s.dropped.total(), 0, "callers are never refused: {s:?}");
    guard.flush(WAIT).unwrap();
    wait_for(WAIT, "everything delivered", || {
        let s = guard.stats();
        s.exported + s.replayed == 200 && s.spool_bytes == 0
    });
    let s = guard.stats();
    assert!(s.export_errors >= 3, "{s:?}");
    assert_eq!(s.dropped.total(), 0, "{s:?}");
    let mut got = seqs(&collector.records());
    got.sort();
    assert_eq!(
        got,
        (0..200).collect::<Vec<_>>(),
        "each record exactly once: the slow answers were cancelled"
    );
}

#[test]
fn a_spool_active_file_removed_alone_is_made_again() {
    let tmp = tempfile::tempdir().unwrap();
    let endpoint = closed_endpoint();
    let (logger, guard) = failover(&endpoint, tmp.path()).build().unwrap();
    for i in 0..10 {
        info(&logger, i);
    }
    guard.flush(WAIT).unwrap();
    std::fs::remove_file(tmp.path().join("app.log")).unwrap();
    for i in 10..20 {
        info(&logger, i);
    }
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!((s.spooled, s.dropped.io_error), (20, 10), "{s:?}");
    assert!(tmp.path().join("app.log").exists());
}

/// Writes 100 MiB in ten-byte pieces: formatting it costs time and memory unless it is stopped.
struct Chatty;

impl std::fmt::Display for Chatty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for _ in 0..10 * 1024 * 1024 {
            f.write_str("0123456789")?;
        }
        Ok(())
    }
}

#[test]
fn a_100_mib_message_and_huge_values_are_each_one_valid_bounded_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (logger, guard) = otel_log_bridge::builder()
        .read_env(false)
        .mode(Mode::FileOnly)
        .log_dir(tmp.path())
        .build()
        .unwrap();
    let big = "a\n{\"fake\":1}\n".repeat(100 * 1024 * 1024 / 13);
    let emit = |args: std::fmt::Arguments<'_>, kvs: &[(&str, log::kv::Value<'_>)]| {
        logger.log(
            &log::Record::builder()
                .args(args)
                .level(log::Level::Error)
                .target("huge")
                .key_values(&kvs)
                .build(),
        );
    };
    emit(format_args!("{big}"), &[]);
    emit(format_args!("{Chatty}"), &[]);
    emit(
        format_args!("value"),
        &[("debug", log::kv::Value::from_display(&Chatty))],
    );
    // 10,000 attributes, one named like a field, control characters in the message and a value.
    let keys: Vec<String> = (0..10_000).map(|i| format!("key{i}")).collect();
    let mut kvs: Vec<(&str, log::kv::Value<'_>)> = vec![("message", "\u{1b}[31m\r\n\0".into())];
    kvs.extend(
        keys.iter()
            .map(|k| (k.as_str(), log::kv::Value::from(1i64))),
    );
    emit(format_args!("line\n{{\"fake\":1}}\r\u{2028}end"), &kvs);
    drop(big);
    guard.flush(Duration::from_secs(30)).unwrap();
    let text = std::fs::read_to_string(tmp.path().join("app.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "one line per record");
    let field = |line: &str, key: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        v[key].as_str().unwrap_or_default().to_owned()
    };
    let one = field(lines[0], "message");
    assert!(one.len() <= 1024 * 1024 + 64, "{}", one.len());
    let cut = 100 * 1024 * 1024 / 13 * 13 - 1024 * 1024;
    assert!(
        one.ends_with(&format!("…[truncated {cut} bytes]")),
        "{}",
        &one[one.len() - 40..]
    );
    let two = field(lines[1], "message");
    assert!(two.len() <= 1024 * 1024 + 64, "{}", two.len());
    assert!(two.contains("…[truncated over "), "stopped early");
    let three = field(lines[2], "debug");
    assert!(three.len() <= 64 * 1024 + 64, "{}", three.len());
    assert!(
        three.contains("…[truncated over "),
        "stopped early: {}",
        &three[three.len().saturating_sub(60)..]
    );
    let four: serde_json::Value = serde_json::from_str(lines[3]).expect("valid JSON");
    assert_eq!(four["message"], "line\n{\"fake\":1}\r\u{2028}end");
    assert_eq!(four["attributes"]["message"], "\u{1b}[31m\r\n\0");
    assert_eq!(four["key126"], 1);
    assert!(
        four.get("key127").is_none(),
        "128 kept, with the nested one"
    );
    assert_eq!(four["dropped_attributes_count"], 10_001 - 128);
    assert_eq!(guard.stats().written, 4);
}

/// A file-only pipeline in `dir` with a queue of `capacity` records and batches of one.
fn file_only(dir: &Path, capacity: usize) -> (Arc<Logger>, otel_log_bridge::Guard) {
    let (logger, guard) = otel_log_bridge::builder()
        .read_env(false)
        .mode(Mode::FileOnly)
        .log_dir(dir)
        .max_queue_size(capacity)
        .max_export_batch_size(1)
        .schedule_delay(Duration::from_millis(5))
        .build()
        .unwrap();
    (Arc::new(logger), guard)
}

/// `threads` threads each log `per_thread` WARN records (never shed) through `logger`, counting
/// every call, until `stop` (if given) is set.
fn hammer(
    logger: &Arc<Logger>,
    threads: usize,
    per_thread: usize,
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Vec<std::thread::JoinHandle<usize>> {
    (0..threads)
        .map(|t| {
            let logger = logger.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut calls = 0;
                for i in 0..per_thread {
                    if stop
                        .as_ref()
                        .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
                    {
                        break;
                    }
                    logger.log(
                        &log::Record::builder()
                            .args(format_args!("t{t} r{i}"))
                            .level(log::Level::Warn)
                            .target("app")
                            .build(),
                    );
                    calls += 1;
                }
                calls
            })
        })
        .collect()
}

#[test]
fn a_one_record_queue_with_two_producers_writes_every_record_it_accepts() {
    // With one slot, the old queue's "free for the next push" and "holds a record" were the same
    // sequence value: a producer could overwrite the record the worker was reading, a record could
    // be popped twice, or the queue wedged with every later record refused as full.
    let tmp = tempfile::tempdir().unwrap();
    let (logger, guard) = file_only(tmp.path(), 1);
    let calls: usize = hammer(&logger, 2, 20_000, None)
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!(calls, 40_000);
    assert_eq!(s.enqueued + s.dropped.queue_full, 40_000, "{s:?}");
    assert_eq!(s.written, s.enqueued, "{s:?}");
    let lines = std::fs::read_to_string(tmp.path().join("app.log")).unwrap();
    let distinct: std::collections::HashSet<&str> = lines.lines().collect();
    assert_eq!(distinct.len() as u64, s.written, "each record once");
    // Not wedged: a record logged now is written.
    logger.log(
        &log::Record::builder()
            .args(format_args!("after"))
            .level(log::Level::Warn)
            .target("app")
            .build(),
    );
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().written, s.written + 1);
}

#[test]
fn each_output_keeps_to_its_own_threshold_and_counts_what_it_leaves_out() {
    let collector = Collector::start();
    let tmp = tempfile::tempdir().unwrap();
    let (logger, guard) = failover(&collector.endpoint(), tmp.path())
        .mode(Mode::Tee)
        .level(log::LevelFilter::Info)
        .otlp_level("warn,app::audit=info")
        .file_level("debug")
        .level_change_cooldown(Duration::ZERO)
        .build()
        .unwrap();
    // Captured for the widest threshold (the file's), below the global level.
    assert_eq!(logger.max_level(), log::LevelFilter::Debug);
    for (level, target, body) in [
        (log::Level::Trace, "app", "trace"),
        (log::Level::Debug, "app", "debug"),
        (log::Level::Info, "app", "info"),
        (log::Level::Info, "app::audit", "audit info"),
        (log::Level::Warn, "app", "warn"),
    ] {
        logger.log(
            &log::Record::builder()
                .args(format_args!("{body}"))
                .level(level)
                .target(target)
                .build(),
        );
    }
    // At run time (applying to what the worker takes from then on): the exporter down to debug,
    // the file back to the global filter (info).
    guard.flush(WAIT).unwrap();
    let levels = guard.levels();
    use otel_log_bridge::Output;
    levels
        .set_output(Output::Otlp, Some("debug"), "test")
        .unwrap();
    levels.set_output(Output::File, None, "test").unwrap();
    assert_eq!(logger.max_level(), log::LevelFilter::Debug);
    logger.log(
        &log::Record::builder()
            .args(format_args!("late debug"))
            .level(log::Level::Debug)
            .target("app")
            .build(),
    );
    let report = guard.shutdown(WAIT);
    let not_audit = |b: &String| b != "log level changed";
    let mut sent: Vec<String> = collector
        .records()
        .iter()
        .map(|r| r.body())
        .filter(not_audit)
        .collect();
    // (Records of one target share a scope: compared as a set.)
    sent.sort();
    assert_eq!(sent, ["audit info", "late debug", "warn"]);
    let (lines, _) = read_lines(tmp.path());
    let written: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let written: Vec<&String> = written.iter().filter(|b| not_audit(b)).collect();
    assert_eq!(written, ["debug", "info", "audit info", "warn"]);
    let o = report.stats.outputs;
    let filtered = (o.otlp.filtered, o.file.filtered, o.console.filtered);
    assert_eq!(filtered, (2, 1, 0), "{report:?}");
    // What each output took: the exporter 3 records and 2 audits, the file 4 and 2 audits.
    assert_eq!((o.otlp.written, o.file.written), (5, 6), "{report:?}");
    assert_eq!((o.otlp.failed, o.file.failed), (0, 0), "{report:?}");
    // Trace is below every threshold; the two audit records are captured like any other.
    assert_eq!(report.stats.enqueued, 4 + 1 + 2);
    assert_eq!(report.stats.exported, 3 + 2);
}
