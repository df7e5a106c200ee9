//! The spool written ahead of exports: spans landing delivered or not, in and out of order, across
//! a restart, and the fsync bookkeeping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tests::{config, event, replay_all, seqs};
use super::*;
use crate::record::LogEvent;

fn events(range: std::ops::Range<i64>) -> Vec<LogEvent> {
    range.map(event).collect()
}

fn ahead(spool: &mut Spool, batch: &[LogEvent]) -> Span {
    spool
        .append_lines(batch.len(), Append::Ahead, |buf, service| {
            for e in batch {
                crate::export::file::format::encode(&e.record(), service, None, buf);
            }
        })
        .unwrap()
        .unwrap()
}

#[test]
fn delivered_spans_leave_no_backlog_and_nothing_to_replay_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), 4096, 1 << 20);
    let counters = Arc::new(Counters::default());
    {
        let mut spool = Spool::open(&cfg, "svc", counters.clone()).unwrap();
        for i in 0..40 {
            let span = ahead(&mut spool, &events(i * 10..i * 10 + 10));
            assert!(!spool.has_backlog(), "a span on its way is not backlog");
            assert_eq!(spool.land(span, true), Landed::Kept);
            assert!(!spool.has_backlog());
        }
        assert!(
            segment_files(tmp.path(), "app.log").is_empty(),
            "closed segments the cursor passed are deleted"
        );
        assert!(spool.next_batch(100).unwrap().is_none());
        spool.maintain(Instant::now(), true);
    }
    let mut spool = Spool::open(&cfg, "svc", counters.clone()).unwrap();
    assert!(
        !spool.has_backlog(),
        "the cursor in the active segment survived"
    );
    assert_eq!(replay_all(&mut spool, 100), Vec::<i64>::new());
    assert_eq!(
        counters.snapshot(0, 0).spooled,
        0,
        "nothing was left for replay"
    );
}

#[test]
fn undelivered_spans_are_replayed_and_delivered_ones_skipped_even_out_of_order() {
    let tmp = tempfile::tempdir().unwrap();
    let counters = Arc::new(Counters::default());
    let mut spool = Spool::open(
        &config(tmp.path(), 1 << 20, 1 << 22),
        "svc",
        counters.clone(),
    )
    .unwrap();
    let a = ahead(&mut spool, &events(0..10));
    let b = ahead(&mut spool, &events(10..20));
    let c = ahead(&mut spool, &events(20..30));
    let d = ahead(&mut spool, &events(30..40));
    spool.land(d, true);
    spool.land(b, false);
    assert!(spool.has_backlog());
    spool.land(a, true);
    // `c` is on its way: replay stops before it.
    let batch = spool.next_batch(100).unwrap().unwrap();
    assert_eq!(seqs(&batch.events), (10..20).collect::<Vec<_>>());
    spool.ack(&batch).unwrap();
    spool.land(c, false);
    assert_eq!(replay_all(&mut spool, 100), (20..30).collect::<Vec<_>>());
    assert!(!spool.has_backlog());
    assert_eq!(
        counters.snapshot(0, 0).spooled,
        20,
        "only the undelivered are spooled"
    );
}

#[test]
fn a_crash_resends_only_what_the_collector_did_not_acknowledge() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), 1 << 20, 1 << 22);
    {
        let mut spool = Spool::open(&cfg, "svc", Arc::new(Counters::default())).unwrap();
        let a = ahead(&mut spool, &events(0..10));
        let b = ahead(&mut spool, &events(10..20));
        let _c = ahead(&mut spool, &events(20..30));
        let d = ahead(&mut spool, &events(30..40));
        spool.land(d, true);
        spool.land(b, true);
        spool.land(a, false);
        spool.maintain(Instant::now(), true);
        // Dropped with `c` in flight: a crash.
    }
    let mut spool = Spool::open(&cfg, "svc", Arc::new(Counters::default())).unwrap();
    assert_eq!(
        replay_all(&mut spool, 7),
        (0..10).chain(20..30).collect::<Vec<_>>(),
        "delivered spans, ahead of the cursor, were persisted with it"
    );
}

#[test]
fn a_segment_holding_a_span_on_its_way_is_not_deleted_to_make_room() {
    let tmp = tempfile::tempdir().unwrap();
    let counters = Arc::new(Counters::default());
    let mut spool =
        Spool::open(&config(tmp.path(), 4096, 3 * 4096), "svc", counters.clone()).unwrap();
    let first = ahead(&mut spool, &events(0..20));
    for i in 1..60 {
        spool.append(&events(i * 20..i * 20 + 20)).unwrap();
    }
    let s = counters.snapshot(0, 0);
    assert!(s.dropped.spool_full > 0, "the spool stayed in its bound");
    assert_eq!(
        spool.land(first, true),
        Landed::Kept,
        "its segment is still there"
    );
}

#[test]
fn a_removed_active_file_makes_spans_on_their_way_land_as_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let counters = Arc::new(Counters::default());
    let mut spool = Spool::open(
        &config(tmp.path(), 1 << 20, 1 << 22),
        "svc",
        counters.clone(),
    )
    .unwrap();
    let delivered = ahead(&mut spool, &events(0..10));
    spool.land(delivered, true);
    let a = ahead(&mut spool, &events(10..20));
    spool.append(&events(20..25)).unwrap();
    std::fs::remove_file(tmp.path().join("app.log")).unwrap();
    spool.append(&events(25..30)).unwrap();
    assert_eq!(
        spool.land(a, false),
        Landed::Gone,
        "to be written again by the worker"
    );
    assert_eq!(
        counters.snapshot(0, 0).dropped.io_error,
        5,
        "only the backlog written there: not what was delivered, nor what is on its way"
    );
    assert_eq!(replay_all(&mut spool, 100), (25..30).collect::<Vec<_>>());
}

#[test]
fn syncs_are_due_at_the_interval_only_when_something_is_unsynced() {
    let tmp = tempfile::tempdir().unwrap();
    for (policy, due_after_append) in [
        (SpoolFsync::Off, false),
        (SpoolFsync::Always, false),
        (SpoolFsync::Every(Duration::from_millis(250)), true),
    ] {
        let dir = tmp.path().join(policy.to_string());
        let mut cfg = config(&dir, 1 << 20, 1 << 22);
        cfg.spool_fsync = policy;
        let mut spool = Spool::open(&cfg, "svc", Arc::new(Counters::default())).unwrap();
        assert_eq!(spool.due(), None, "{policy}: nothing written yet");
        let span = ahead(&mut spool, &events(0..3));
        assert_eq!(spool.due().is_some(), due_after_append, "{policy}");
        spool.land(span, true);
        let moved = Instant::now();
        let due = spool.due().expect("the moved cursor is to be written");
        assert!(
            due <= moved + Duration::from_millis(100),
            "{policy}: within the spool delay"
        );
        spool.maintain(moved, false);
        assert!(spool.due().is_some(), "{policy}: not before it is due");
        spool.maintain(moved, true);
        assert_eq!(spool.due(), None, "{policy}: all written and synced");
        assert!(spool.take_sync_error().is_none(), "{policy}");
    }
}

#[test]
fn acknowledged_spans_of_a_file_made_again_are_not_applied_to_its_new_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), 1 << 20, 1 << 22);
    {
        let mut spool = Spool::open(&cfg, "svc", Arc::new(Counters::default())).unwrap();
        let waiting = ahead(&mut spool, &events(0..10));
        let delivered = ahead(&mut spool, &events(10..20));
        spool.land(waiting, false);
        spool.land(delivered, true);
        spool.maintain(Instant::now(), true);
        // A crash; then the active file is replaced by an empty one before the next start.
    }
    std::fs::remove_file(tmp.path().join("app.log")).unwrap();
    std::fs::write(tmp.path().join("app.log"), b"").unwrap();
    let mut spool = Spool::open(&cfg, "svc", Arc::new(Counters::default())).unwrap();
    spool.append(&events(20..60)).unwrap();
    assert_eq!(
        replay_all(&mut spool, 100),
        (20..60).collect::<Vec<_>>(),
        "no new line is taken for one the collector acknowledged in the old file"
    );
}
