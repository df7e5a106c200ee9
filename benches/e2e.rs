//! End-to-end comparison, ours against the official stack, in one run: `cargo bench --bench e2e`.
//!
//! Builds the `collector` and `loadgen` examples (release), then for each stack and queue setting
//! starts the collector on a free 127.0.0.1 port (TCP_NODELAY), runs `loadgen --count N` against it
//! and prints one table: ns per call, records delivered (counted by the collector), delivered
//! records/s end to end, dropped, peak RSS of the logging process, and our ratio to the official
//! stack. Ours runs a second time with `LOG_CODE_LOCATION=false`: the official bridge leaves the
//! code location out unless built with a feature, so that row's records carry the same attributes
//! as the official stack's, and cost the collector as much to decode. Then the same content over
//! OTLP/HTTP (`http/protobuf`, the official exporter with its default blocking reqwest client). Then a table for rotating JSON files: `LOG_MODE=file-only` against log4rs's rolling
//! file appender with its JSON encoder (`loadgen --stack log4rs`), both rotating at 100 MB, records
//! counted as lines in the files. Then `LOG_MODE=durable` (every record written to the spool before
//! it is sent) against `failover` and the official stack, with the logging process's CPU time.
//! `E2E_TABLES` picks tables (`grpc,http,files,durable`, the default: all).
//! `E2E_COUNT` sets N (default 1,000,000); `E2E_THREADS` the loadgen
//! threads (default 1); `E2E_REPEAT` how many times each row is run (default 3): the row shown is
//! the run with the median records/s. Before any row, ours and the official stack run once
//! unreported (OTLP, large queue), so that no row pays for memory the machine touches for the first
//! time (on a virtual machine, first-touch
//! page faults can cost as much as the logging itself).

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};

struct Run {
    label: String,
    ns_per_call: f64,
    delivered: u64,
    emitted: u64,
    seconds: f64,
    peak_rss: u64,
    /// CPU time (user and system) of the logging process.
    cpu_seconds: f64,
}

/// CPU time (user and system) of this process's children that ended and were waited for, from
/// `/proc/self/stat` (`cutime`, `cstime`, in the kernel's USER_HZ ticks: 100 per second on Linux).
fn children_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces: the 3rd field of
    // the file is the first here, so `cutime` (16th) and `cstime` (17th) are the 14th and 15th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(13) + ticks(14)) / 100.0
}

fn examples_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release").join("examples")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn json_line(text: &str) -> serde_json::Value {
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON line in: {text}"))
}

/// Runs `loadgen --count N --threads T --stack S` with `LOG_DIR` in a temporary directory and the
/// given environment; returns its summary line.
fn loadgen(stack: &str, count: u64, threads: u64, env: &[(&str, &str)]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let cpu_before = children_cpu_seconds();
    let out = Command::new(examples_dir().join("loadgen"))
        .args([
            "--count",
            &count.to_string(),
            "--threads",
            &threads.to_string(),
            "--stack",
            stack,
        ])
        .env("LOG_DIR", dir.path())
        .env("LOG_SHUTDOWN_TIMEOUT", "120000")
        .envs(env.iter().copied())
        .output()
        .expect("run loadgen");
    assert!(
        out.status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut summary = json_line(&String::from_utf8_lossy(&out.stdout));
    summary["process_cpu_seconds"] = (children_cpu_seconds() - cpu_before).into();
    summary
}

impl Run {
    /// A run from `loadgen`'s summary, with `delivered` counted elsewhere.
    fn of(label: &str, summary: &serde_json::Value, count: u64, delivered: u64) -> Run {
        let f = |k: &str| summary[k].as_f64().unwrap_or(0.0);
        Run {
            label: label.to_owned(),
            ns_per_call: f("ns_per_call"),
            delivered,
            emitted: count,
            seconds: f("emit_seconds") + f("shutdown_seconds"),
            peak_rss: summary["peak_rss_bytes"].as_u64().unwrap_or(0),
            cpu_seconds: f("process_cpu_seconds"),
        }
    }
}

/// `loadgen` against a collector process on loopback: records delivered are those it received.
/// Over OTLP/HTTP when `env` sets `OTEL_EXPORTER_OTLP_PROTOCOL` to an HTTP one (the collector serves
/// both, on two ports).
fn run(label: &str, stack: &str, count: u64, threads: u64, env: &[(&str, &str)]) -> Run {
    let (port, http_port) = (free_port(), free_port());
    let http = env
        .iter()
        .any(|(k, v)| *k == "OTEL_EXPORTER_OTLP_PROTOCOL" && v.starts_with("http/"));
    let endpoint = format!("http://127.0.0.1:{}", if http { http_port } else { port });
    let mut collector = Command::new(examples_dir().join("collector"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--http-listen",
            &format!("127.0.0.1:{http_port}"),
            "--idle-exit",
            "3000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the collector");
    // Ready once it says it listens.
    let mut stderr = BufReader::new(collector.stderr.take().unwrap()).lines();
    assert!(
        stderr.any(|l| l.is_ok_and(|l| l.contains("listening"))),
        "collector did not start"
    );
    std::thread::spawn(move || stderr.for_each(drop));
    let mut envs = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
    envs.extend_from_slice(env);
    let summary = loadgen(stack, count, threads, &envs);
    let collected = collector.wait_with_output().expect("collector output");
    let received = json_line(&String::from_utf8_lossy(&collected.stdout))["received"]
        .as_u64()
        .unwrap_or(0);
    Run::of(label, &summary, count, received)
}

/// `loadgen` writing files (rotating at 100 MB): records delivered are the lines written.
fn run_files(label: &str, stack: &str, count: u64, threads: u64, env: &[(&str, &str)]) -> Run {
    let mut envs = vec![("LOG_FILE_MAX_BYTES", "100000000")];
    envs.extend_from_slice(env);
    let summary = loadgen(stack, count, threads, &envs);
    let written = summary["written"].as_u64().unwrap_or(0);
    Run::of(label, &summary, count, written)
}

fn table(runs: &[Run]) {
    println!("| stack | ns per call | delivered | dropped | records/s delivered | peak RSS |");
    println!("|---|---|---|---|---|---|");
    for r in runs {
        println!(
            "| {} | {:.0} | {} | {} | {:.0} | {:.0} MiB |",
            r.label,
            r.ns_per_call,
            r.delivered,
            r.emitted.saturating_sub(r.delivered),
            r.delivered as f64 / r.seconds.max(1e-9),
            r.peak_rss as f64 / (1 << 20) as f64
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let count: u64 = std::env::var("E2E_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let threads: u64 = std::env::var("E2E_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--example",
            "collector",
            "--example",
            "loadgen",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build");
    assert!(built.success());
    let big = [
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "2097152"),
        ("LOG_MODE", "otlp-only"),
    ];
    let repeat: usize = std::env::var("E2E_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    // Warm-up, unreported.
    run("warm-up", "ours", count, threads, &big);
    run("warm-up", "official", count, threads, &big);
    let median = |mut runs: Vec<Run>| {
        runs.sort_by(|a, b| {
            (a.delivered as f64 / a.seconds).total_cmp(&(b.delivered as f64 / b.seconds))
        });
        let mid = runs.len() / 2;
        runs.swap_remove(mid)
    };
    let rows = |label: &str, stack: &str, env: &[(&str, &str)], runner: Runner| {
        median(
            (0..repeat)
                .map(|_| runner(label, stack, count, threads, env))
                .collect(),
        )
    };
    let tables = std::env::var("E2E_TABLES").unwrap_or_else(|_| "grpc,http,files,durable".into());
    if tables.contains("grpc") {
        grpc_table(count, threads, repeat, &rows);
    }
    if tables.contains("http") {
        http_table(count, threads, repeat, &rows);
    }
    if tables.contains("files") {
        files_table(count, threads, repeat, &rows);
    }
    if tables.contains("durable") {
        durable_table(count, threads, repeat, &rows);
    }
}

type Runner = fn(&str, &str, u64, u64, &[(&str, &str)]) -> Run;
/// Runs one row `repeat` times and keeps the median: label, stack, environment, runner.
type Rows<'a> = dyn Fn(&str, &str, &[(&str, &str)], Runner) -> Run + 'a;

/// The ratio of `a` to `b`: how many times cheaper per call, how many times the delivered
/// records/s.
fn ratio(a: &Run, b: &Run) -> (f64, f64) {
    (
        b.ns_per_call / a.ns_per_call.max(1e-9),
        (a.delivered as f64 / a.seconds) / (b.delivered as f64 / b.seconds).max(1e-9),
    )
}

fn grpc_table(count: u64, threads: u64, repeat: usize, rows: &Rows<'_>) {
    let big = [
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "2097152"),
        ("LOG_MODE", "otlp-only"),
    ];
    let default = [("LOG_MODE", "otlp-only")];
    // What the official bridge sends by default: no code location.
    let big_same = [
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "2097152"),
        ("LOG_MODE", "otlp-only"),
        ("LOG_CODE_LOCATION", "false"),
    ];
    let runs = [
        rows("ours, queue 2097152", "ours", &big, run),
        rows("official, queue 2097152", "official", &big, run),
        rows(
            "ours, queue 2097152, LOG_CODE_LOCATION=false",
            "ours",
            &big_same,
            run,
        ),
        rows("ours, default queue (16384)", "ours", &default, run),
        rows("official, default queue (2048)", "official", &default, run),
    ];
    println!(
        "\nloadgen --count {count} --threads {threads}, collector on 127.0.0.1 (same machine), median of {repeat} runs\n"
    );
    table(&runs);
    let (cost, speed) = ratio(&runs[0], &runs[1]);
    println!(
        "\nours vs official, large queue: {cost:.1}x cheaper per call, {speed:.1}x the delivered records/s"
    );
    let (cost, speed) = ratio(&runs[2], &runs[1]);
    println!(
        "ours without code location (the same attributes as the official stack's records) vs official, large queue: {cost:.1}x cheaper per call, {speed:.1}x the delivered records/s"
    );
}

fn http_table(count: u64, threads: u64, repeat: usize, rows: &Rows<'_>) {
    let same = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "2097152"),
        ("LOG_MODE", "otlp-only"),
        ("LOG_CODE_LOCATION", "false"),
    ];
    let runs = [
        rows(
            "ours, http/protobuf, queue 2097152, LOG_CODE_LOCATION=false",
            "ours",
            &same,
            run,
        ),
        rows(
            "official, http/protobuf (reqwest blocking), queue 2097152",
            "official",
            &same,
            run,
        ),
    ];
    println!(
        "\nOTLP/HTTP (http/protobuf), loadgen --count {count} --threads {threads}, collector on 127.0.0.1 (same machine), median of {repeat} runs\n"
    );
    table(&runs);
    let (cost, speed) = ratio(&runs[0], &runs[1]);
    println!(
        "\nours vs official over http/protobuf, same record content: {cost:.1}x cheaper per call, {speed:.1}x the delivered records/s"
    );
}

fn files_table(count: u64, threads: u64, repeat: usize, rows: &Rows<'_>) {
    let files = [
        rows(
            "ours, file-only, queue 2097152",
            "ours",
            &[
                ("LOG_MODE", "file-only"),
                ("OTEL_BLRP_MAX_QUEUE_SIZE", "2097152"),
            ],
            run_files,
        ),
        rows("log4rs, rolling JSON file", "log4rs", &[], run_files),
    ];
    println!(
        "\nrotating JSON files, loadgen --count {count} --threads {threads}, median of {repeat} runs\n"
    );
    table(&files);
    let (cost, speed) = ratio(&files[0], &files[1]);
    println!("\nours vs log4rs: {cost:.1}x cheaper per call, {speed:.1}x the records/s written");
}

fn durable_table(count: u64, threads: u64, repeat: usize, rows: &Rows<'_>) {
    let env = |mode| {
        [
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "2097152"),
            ("LOG_MODE", mode),
            ("LOG_CODE_LOCATION", "false"),
        ]
    };
    let runs = [
        rows(
            "ours, durable (fsync every 1000 ms), queue 2097152, LOG_CODE_LOCATION=false",
            "ours",
            &env("durable"),
            run,
        ),
        rows(
            "ours, failover, queue 2097152, LOG_CODE_LOCATION=false",
            "ours",
            &env("failover"),
            run,
        ),
        rows(
            "official, queue 2097152",
            "official",
            &env("otlp-only"),
            run,
        ),
    ];
    println!(
        "\nLOG_MODE=durable, loadgen --count {count} --threads {threads}, collector on 127.0.0.1 (same machine), median of {repeat} runs\n"
    );
    table(&runs);
    println!();
    for r in &runs {
        println!(
            "{}: {:.0} ns of the logging process's CPU per delivered record",
            r.label,
            r.cpu_seconds * 1e9 / r.delivered.max(1) as f64
        );
    }
    let (cost, speed) = ratio(&runs[0], &runs[2]);
    println!(
        "\nours durable vs official: {cost:.1}x cheaper per call, {speed:.1}x the delivered records/s"
    );
    let (cost, speed) = ratio(&runs[0], &runs[1]);
    println!(
        "ours durable vs ours failover: {cost:.2}x per call, {speed:.2}x the delivered records/s"
    );
}
