//! Durability against real collectors and files: `durable` mode's write-ahead, a retried batch
//! written to the spool and counted once, and `LOG_QUEUE_FULL=block:<ms>`.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Answer, BlackHole, Collector, closed_endpoint, seqs, wait_for};
use otel_log_bridge::{Logger, Mode, QueueFull, SpoolFsync};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);

fn spooling(mode: Mode, endpoint: &str, dir: &Path) -> otel_log_bridge::Builder {
    common::builder(endpoint)
        .mode(mode)
        .log_dir(dir)
        .max_export_batch_size(100)
        .schedule_delay(Duration::from_millis(20))
}

fn log_seq(logger: &Logger, level: log::Level, i: usize) {
    let kvs: [(&str, log::kv::Value<'_>); 1] = [("seq", (i as u64).into())];
    log::Log::log(
        logger,
        &log::Record::builder()
            .args(format_args!("record {i}"))
            .level(level)
            .target("app")
            .key_values(&kvs)
            .build(),
    );
}

/// How many times each seq arrived.
fn counts(seqs: &[i64]) -> HashMap<i64, usize> {
    let mut counts = HashMap::new();
    for s in seqs {
        *counts.entry(*s).or_default() += 1;
    }
    counts
}

fn assert_each_once(got: &[i64], n: usize) {
    let c = counts(got);
    for i in 0..n as i64 {
        assert_eq!(c.get(&i), Some(&1), "record {i}: {:?} times", c.get(&i));
    }
}

fn spool_lines(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("app.log"))
        .filter(|e| !e.file_name().to_string_lossy().contains("cursor"))
        .map(|e| {
            std::fs::read(e.path())
                .map(|b| b.iter().filter(|c| **c == b'\n').count())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn durable_mode_writes_every_record_ahead_and_delivers_each_once() {
    for fsync in [SpoolFsync::Off, SpoolFsync::Always] {
        let tmp = tempfile::tempdir().unwrap();
        let collector = Collector::start();
        let (logger, guard) = spooling(Mode::Durable, &collector.endpoint(), tmp.path())
            .spool_fsync(fsync)
            .file_max_bytes(64 << 20)
            .build()
            .unwrap();
        for i in 0..3000 {
            log_seq(&logger, log::Level::Info, i);
        }
        guard.flush(WAIT).unwrap();
        let s = guard.stats();
        assert_each_once(&seqs(&collector.records()), 3000);
        assert_eq!(s.exported, 3000, "{fsync}: {s:?}");
        assert_eq!(
            (s.spooled, s.replayed, s.spool_bytes),
            (0, 0, 0),
            "{fsync}: {s:?}"
        );
        assert_eq!(
            spool_lines(tmp.path()),
            3000,
            "{fsync}: each record written ahead"
        );
    }
}

#[test]
fn durable_mode_through_an_outage_replays_only_what_was_not_delivered() {
    let tmp = tempfile::tempdir().unwrap();
    let endpoint = closed_endpoint();
    let (logger, guard) = spooling(Mode::Durable, &endpoint, tmp.path())
        .build()
        .unwrap();
    for i in 0..1000 {
        log_seq(&logger, log::Level::Info, i);
    }
    guard.flush(WAIT).unwrap();
    let collector = Collector::start_at(&endpoint);
    for i in 1000..2000 {
        log_seq(&logger, log::Level::Info, i);
    }
    wait_for(WAIT, "every record delivered", || {
        let s = guard.stats();
        s.exported + s.replayed >= 2000 && s.spool_bytes == 0
    });
    let s = guard.stats();
    assert_each_once(&seqs(&collector.records()), 2000);
    assert_eq!(s.exported + s.replayed, 2000, "{s:?}");
    assert!(
        s.replayed >= 1000,
        "the outage's records came from the spool: {s:?}"
    );
    assert_eq!(s.spooled, s.replayed, "{s:?}");
    assert_eq!(s.dropped.total(), 0, "{s:?}");
}

#[test]
fn a_batch_retried_then_delivered_was_spooled_first_and_counts_once() {
    let tmp = tempfile::tempdir().unwrap();
    let collector = Collector::start();
    let unavailable = Answer::Fail {
        code: Code::Unavailable,
        retry_after: None,
    };
    collector.script(vec![unavailable.clone(), unavailable.clone(), unavailable]);
    let (logger, guard) = spooling(Mode::Failover, &collector.endpoint(), tmp.path())
        .build()
        .unwrap();
    for i in 0..100 {
        log_seq(&logger, log::Level::Info, i);
    }
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert!(s.export_errors >= 3, "{s:?}");
    assert_each_once(&seqs(&collector.records()), 100);
    assert_eq!(s.exported, 100, "{s:?}");
    assert_eq!((s.spooled, s.replayed, s.spool_bytes), (0, 0, 0), "{s:?}");
    assert_eq!(
        spool_lines(tmp.path()),
        100,
        "the batch reached the spool while its retries ran"
    );
}

#[test]
fn a_caller_meeting_a_full_queue_waits_for_room_and_nothing_is_dropped() {
    let collector = Collector::start();
    let (logger, guard) = common::builder(&collector.endpoint())
        .max_queue_size(16)
        .max_export_batch_size(8)
        .queue_full(QueueFull::Block(WAIT))
        .build()
        .unwrap();
    let logger = &logger;
    std::thread::scope(|s| {
        for t in 0..2 {
            s.spawn(move || {
                for i in 0..2500 {
                    // WARN is never shed at the watermark: only a full queue stops it.
                    log_seq(logger, log::Level::Warn, t * 2500 + i);
                }
            });
        }
    });
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!(s.dropped.total(), 0, "{s:?}");
    assert_each_once(&seqs(&collector.records()), 5000);
}

#[test]
fn with_a_hung_collector_a_blocked_caller_waits_its_bound_then_drops_and_counts() {
    let hole = BlackHole::start();
    let (logger, guard) = common::builder(&hole.endpoint())
        .max_queue_size(16)
        .max_export_batch_size(8)
        .queue_full(QueueFull::Block(Duration::from_millis(50)))
        .build()
        .unwrap();
    let start = Instant::now();
    for i in 0..60 {
        log_seq(&logger, log::Level::Warn, i);
    }
    let elapsed = start.elapsed();
    let s = guard.stats();
    assert!(s.dropped.queue_full > 0, "{s:?}");
    assert!(
        elapsed >= Duration::from_millis(50),
        "a refused record waited for room first ({elapsed:?})"
    );
    assert_eq!(s.enqueued + s.dropped.total(), 60, "{s:?}");
    drop(guard);
    hole.stop();
}
