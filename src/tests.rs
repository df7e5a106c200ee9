//! Tests of the whole pipeline that need its private parts.
use std::time::Duration;

use log::Log as _;

use crate::record::queued::Queued;

/// The counters of records logged once the guard is gone, which no public handle reads
/// (tests/pipeline.rs checks the rest of this against a collector).
#[test]
fn records_logged_after_shutdown_are_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (logger, guard) = crate::builder()
        .read_env(false)
        .mode(crate::Mode::FileOnly)
        .log_dir(dir.path())
        .build()
        .unwrap();
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
    let (logger, guard) = crate::builder()
        .read_env(false)
        .mode(crate::Mode::FileOnly)
        .log_dir(dir.path())
        .build()
        .unwrap();
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
