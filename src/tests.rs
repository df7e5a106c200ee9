//! Tests of the whole pipeline that need its private parts.
use std::time::Duration;

use log::Log as _;

use crate::record::queued::Queued;

/// A file-only pipeline writing to `dir`, reading nothing from the environment.
fn file_only(dir: &std::path::Path) -> crate::Builder {
    crate::builder()
        .read_env(false)
        .mode(crate::Mode::FileOnly)
        .log_dir(dir)
}

/// The counters of records logged once the guard is gone, which no public handle reads
/// (tests/pipeline.rs checks the rest of this against a collector).
#[test]
fn records_logged_after_shutdown_are_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (logger, guard) = file_only(dir.path()).build().unwrap();
    let info = |i: u32| {
        logger.log(
            &log::Record::builder()
                .level(log::Level::Info)
                .target("app")
                .args(format_args!("record {i}"))
                .build(),
        )
    };
    info(0);
    let report = guard.shutdown(Duration::from_secs(20));
    assert!(report.completed);
    let s = report.stats;
    assert_eq!((s.enqueued, s.written, s.dropped.shutdown), (1, 1, 0));
    info(1);
    info(2);
    let s = logger.shared.stats();
    assert_eq!((s.enqueued, s.written, s.dropped.shutdown), (1, 1, 2));
}

/// Logs `n` records through `logger` (target `t`, message `m{i}`).
fn log_n(logger: &crate::Logger, n: usize) {
    for i in 0..n {
        logger.log(
            &log::Record::builder()
                .args(format_args!("m{i}"))
                .level(log::Level::Info)
                .target("t")
                .build(),
        );
    }
}

#[test]
fn an_unreadable_record_is_counted_under_its_reason_and_never_as_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (logger, guard) = file_only(dir.path()).build().unwrap();
    log_n(&logger, 3);
    assert!(logger.shared.link.push(Queued::unreadable(), false));
    log_n(&logger, 2);
    guard.flush(Duration::from_secs(10)).unwrap();
    let s = guard.stats();
    assert_eq!(s.enqueued, 6, "{s:?}");
    assert_eq!(s.dropped.unreadable, 1, "{s:?}");
    assert_eq!(s.written, 5, "{s:?}");
    let lines = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
    assert_eq!(lines.lines().count(), 5);
    assert!(!lines.contains("unreadable"));
}

#[test]
fn records_logged_while_shutdown_runs_are_written_or_counted() {
    // A push that raced the shutdown used to be published after the worker's last drain: neither
    // written nor counted. Now every call ends written or counted as dropped.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let (logger, guard) = file_only(dir.path())
        .max_queue_size(64)
        .max_export_batch_size(1)
        .schedule_delay(Duration::from_millis(5))
        .build()
        .unwrap();
    let logger = Arc::new(logger);
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..2)
        .map(|t| {
            let (logger, stop) = (logger.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut calls = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    logger.log(
                        &log::Record::builder()
                            .args(format_args!("t{t} r{calls}"))
                            .level(log::Level::Warn)
                            .target("app")
                            .build(),
                    );
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while logger.shared.stats().written < 1000 {
        assert!(std::time::Instant::now() < deadline, "nothing written");
        std::thread::yield_now();
    }
    let report = guard.shutdown(Duration::from_secs(30));
    assert!(report.completed);
    // The producers go on past the shutdown (refused as `shutdown`), then stop.
    let at_shutdown = report.stats.dropped.shutdown;
    while logger.shared.stats().dropped.shutdown < at_shutdown + 100 {
        assert!(std::time::Instant::now() < deadline, "nothing refused");
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let calls: u64 = producers.into_iter().map(|p| p.join().unwrap()).sum();
    let lines = std::fs::read_to_string(dir.path().join("app.log"))
        .unwrap()
        .lines()
        .count() as u64;
    let s = logger.shared.stats();
    assert_eq!(s.written, lines, "{s:?}");
    assert_eq!(
        calls,
        lines + s.dropped.total(),
        "every call written ({lines}) or counted as dropped: {s:?}"
    );
}

#[test]
fn a_queue_too_large_to_allocate_is_an_error_not_an_abort() {
    // The largest queue the configuration accepts: 2^28 records of 128 bytes, 32 GiB. Where the
    // system refuses it, building fails with an error naming the setting; where it grants it (its
    // memory untouched), the pipeline works. Either way the process lives on.
    let dir = tempfile::tempdir().unwrap();
    match file_only(dir.path()).max_queue_size(1 << 28).build() {
        Err(e @ crate::Error::QueueAlloc { .. }) => {
            assert!(e.to_string().contains("OTEL_BLRP_MAX_QUEUE_SIZE"), "{e}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok((logger, guard)) => {
            log_n(&logger, 1);
            guard.flush(Duration::from_secs(10)).unwrap();
            assert_eq!(guard.stats().written, 1);
        }
    }
}

#[test]
fn above_the_watermark_info_is_shed_warn_kept_and_a_full_queue_refuses() {
    // The queue alone (no worker takes anything): exact figures.
    use crate::record::LogEvent;
    let counters = std::sync::Arc::new(crate::stats::Counters::default());
    let link = crate::worker::link::Link::new(100, 50, 10, counters, None).unwrap();
    let sample = sample_queued();
    let record = |severity| {
        let mut e = LogEvent::from(&sample.record().unwrap());
        e.severity = severity;
        Queued::of(&e.record())
    };
    for _ in 0..60 {
        link.push(record(crate::Severity::Info), true);
    }
    for _ in 0..60 {
        link.push(record(crate::Severity::Warn), false);
    }
    let s = link.stats();
    assert_eq!(s.dropped.shed, 10, "{s:?}");
    assert_eq!(s.dropped.queue_full, 10, "{s:?}");
    assert_eq!((s.enqueued, s.queue_depth), (100, 100), "{s:?}");
    link.begin_shutdown(Duration::from_secs(1));
    assert!(!link.push(record(crate::Severity::Error), false));
    assert_eq!(link.stats().dropped.shutdown, 1);
}

/// A readable queued record.
fn sample_queued() -> Queued {
    use crate::record::{LogEvent, Severity};
    Queued::of(
        &LogEvent {
            time_unix_nano: 1,
            observed_time_unix_nano: 1,
            severity: Severity::Info,
            body: "b".into(),
            target: "t".into(),
            module_path: None,
            file: None,
            line: None,
            trace: None,
            attributes: Vec::new(),
            dropped_attributes: 0,
            event_name: None,
            body_value: None,
        }
        .record(),
    )
}
