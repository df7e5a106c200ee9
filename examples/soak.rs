//! Soak run (not a CI test): a steady load from several threads while the collector flaps, then a
//! summary of what arrived.
//!
//! ```sh
//! cargo run --release --example soak -- [--seconds 60] [--rate 50000] [--threads 4] [--flap-ms 1000] [--steady-seconds 5]
//! ```
//! The load runs `--steady-seconds` with the collector up first (the baseline), then for `--seconds`
//! an in-process collector on 127.0.0.1 goes down and comes back every `--flap-ms`; the pipeline runs
//! in failover mode with its spool in a temporary directory. At the end (collector up, spool
//! replayed) it prints one JSON line: emitted, delivered (distinct), duplicates, dropped by reason,
//! peak RSS, and the calling thread's p99 and max latency (every 8th call timed), overall and for
//! the baseline and the flapping phase apart (`p99_steady_ns`, `p99_fault_ns`, and their ratio).

#[path = "../tests/common/mod.rs"]
mod common;

use common::measure;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::Log as _;
use opentelemetry::trace::TraceContextExt as _;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let seconds = arg("--seconds", 60);
    let rate = arg("--rate", 50_000);
    let threads = arg("--threads", 4).max(1);
    let flap = Duration::from_millis(arg("--flap-ms", 1000));
    let steady = Duration::from_secs(arg("--steady-seconds", 5));
    let dir = tempfile::tempdir().expect("temp dir");
    let first = common::Collector::start();
    let addr = first.addr;
    let (logger, guard) = otel_log_bridge::builder()
        .read_env(false)
        .endpoint(first.endpoint())
        .log_dir(dir.path())
        .export_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_millis(500))
        .schedule_delay(Duration::from_millis(100))
        .build()
        .expect("pipeline");
    let logger = Arc::new(logger);
    let running = Arc::new(AtomicBool::new(true));
    let per_thread = rate / threads;
    let fault_start = Instant::now() + steady;
    let producers: Vec<_> = (0..threads)
        .map(|t| {
            let logger = logger.clone();
            let running = running.clone();
            std::thread::spawn(move || {
                let _cx = opentelemetry::Context::new()
                    .with_remote_span_context(common::span_context())
                    .attach();
                let start = Instant::now();
                let mut samples = Vec::new();
                let mut k = 0u64;
                while running.load(Ordering::Relaxed) {
                    let due = start + Duration::from_secs_f64(k as f64 / per_thread as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let seq = k * threads + t;
                    let kvs: [(&str, log::kv::Value<'_>); 2] =
                        [("seq", seq.into()), ("amount", 150.0f64.into())];
                    let t0 = Instant::now();
                    logger.log(
                        &log::Record::builder()
                            .args(format_args!("Transaction processed {seq}"))
                            .level(log::Level::Info)
                            .target("payment.service")
                            .key_values(&kvs)
                            .build(),
                    );
                    if k.is_multiple_of(8) {
                        samples.push((t0 >= fault_start, t0.elapsed().as_nanos() as u64));
                    }
                    k += 1;
                }
                (k, samples)
            })
        })
        .collect();
    let mut received = Vec::new();
    let mut collector = Some(first);
    std::thread::sleep(fault_start.saturating_duration_since(Instant::now()));
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        std::thread::sleep(flap);
        match collector.take() {
            Some(c) => received.extend(c.stop()),
            None => collector = Some(common::Collector::start_on(addr)),
        }
    }
    running.store(false, Ordering::Relaxed);
    let mut emitted = 0;
    let mut samples = Vec::new();
    for p in producers {
        let (k, s) = p.join().expect("producer");
        emitted += k;
        samples.extend(s);
    }
    let collector = collector.unwrap_or_else(|| common::Collector::start_on(addr));
    let _ = guard.flush(Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let s = guard.stats();
        if s.queue_depth == 0 && s.in_flight == 0 && s.spool_bytes == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    received.extend(collector.stop());
    let mut counts: HashMap<i64, u64> = HashMap::new();
    for s in common::seqs(&received) {
        *counts.entry(s).or_default() += 1;
    }
    let duplicates: u64 = counts.values().map(|c| c - 1).sum();
    let p99 = |mut v: Vec<u64>| {
        v.sort_unstable();
        let p99 = v
            .get((v.len() as f64 * 0.99) as usize)
            .or(v.last())
            .copied()
            .unwrap_or(0);
        (p99, v.last().copied().unwrap_or(0))
    };
    let (p99_steady, _) = p99(samples.iter().filter(|s| !s.0).map(|s| s.1).collect());
    let (p99_fault, _) = p99(samples.iter().filter(|s| s.0).map(|s| s.1).collect());
    let (p99_all, max) = p99(samples.iter().map(|s| s.1).collect());
    let stats = guard.stats();
    let mut dropped = serde_json::Map::new();
    for r in otel_log_bridge::DropReason::ALL {
        dropped.insert(r.as_str().into(), stats.dropped.get(r).into());
    }
    let rss = measure::peak_rss_bytes();
    println!(
        "{}",
        serde_json::json!({
            "seconds": seconds, "rate": rate, "threads": threads, "flap_ms": flap.as_millis() as u64,
            "emitted": emitted, "delivered": counts.len(), "duplicates": duplicates,
            "lost": emitted.saturating_sub(counts.len() as u64),
            "dropped": dropped, "spooled": stats.spooled, "replayed": stats.replayed,
            "peak_rss_bytes": rss, "p99_ns": p99_all, "max_ns": max,
            "steady_seconds": steady.as_secs(), "p99_steady_ns": p99_steady, "p99_fault_ns": p99_fault,
            "p99_fault_over_steady": (p99_fault as f64 / p99_steady.max(1) as f64 * 100.0).round() / 100.0,
        })
    );
}
