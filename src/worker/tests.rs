use std::time::Duration;

use crate::Mode;
use crate::record::queued::Queued;

/// Logs `n` records through `logger` (target `t`, message `m{i}`).
fn log_n(logger: &crate::Logger, n: usize) {
    use log::Log as _;
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
        .mode(Mode::FileOnly)
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
