use super::*;
use crate::export::file::fs::open_append;
use crate::record::LogEvent;
use crate::record::{Attr, AttrValue, Severity};
use std::borrow::Cow;

pub(super) fn config(dir: &Path, segment: u64, total: u64) -> FileConfig {
    FileConfig {
        dir: dir.to_path_buf(),
        name: "app.log".into(),
        max_bytes: segment,
        backups: 5,
        rotation: crate::config::FileRotation::Size,
        max_age: None,
        compress: crate::config::Compression::None,
        file_mode: 0o600,
        dir_mode: 0o700,
        spool_max_bytes: total,
        spool_max_delay: std::time::Duration::from_millis(100),
        spool_fsync: crate::config::SpoolFsync::Off,
    }
}

pub(super) fn event(i: i64) -> LogEvent {
    LogEvent {
        time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
        observed_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
        severity: Severity::Info,
        body: Cow::Owned(format!("record {i}")),
        target: "app".into(),
        module_path: None,
        file: None,
        line: None,
        trace: None,
        attributes: vec![Attr {
            key: "seq".into(),
            value: AttrValue::Int(i),
        }],
        dropped_attributes: 0,
        event_name: None,
        body_value: None,
    }
}

pub(super) fn seqs(events: &[LogEvent]) -> Vec<i64> {
    events
        .iter()
        .map(|e| match e.attributes[0].value {
            AttrValue::Int(i) => i,
            _ => -1,
        })
        .collect()
}

/// Replays everything, acknowledging each batch; returns the seqs in order.
pub(super) fn replay_all(spool: &mut Spool, max: usize) -> Vec<i64> {
    let mut out = Vec::new();
    while let Some(b) = spool.next_batch(max).unwrap() {
        out.extend(seqs(&b.events));
        spool.ack(&b).unwrap();
        if !spool.has_backlog() {
            break;
        }
    }
    out
}

#[test]
fn appended_records_replay_in_order_across_segments_and_segments_are_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let counters = Arc::new(Counters::default());
    let mut spool =
        Spool::open(&config(tmp.path(), 2048, 1 << 20), "svc", counters.clone()).unwrap();
    for chunk in (0..100).collect::<Vec<_>>().chunks(10) {
        let batch: Vec<_> = chunk.iter().map(|i| event(*i)).collect();
        spool.append(&batch).unwrap();
    }
    assert!(
        segment_files(tmp.path(), "app.log").len() > 2,
        "small segments rotate"
    );
    assert_eq!(replay_all(&mut spool, 7), (0..100).collect::<Vec<_>>());
    assert!(!spool.has_backlog());
    assert!(segment_files(tmp.path(), "app.log").is_empty());
    let s = counters.snapshot(0, 0);
    assert_eq!((s.spooled, s.spool_bytes, s.corrupt_skipped), (100, 0, 0));
}

#[test]
fn the_cursor_survives_a_restart_and_nothing_acknowledged_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), 1 << 20, 1 << 22);
    {
        let mut spool = Spool::open(&cfg, "svc", Arc::new(Counters::default())).unwrap();
        spool
            .append(&(0..50).map(event).collect::<Vec<_>>())
            .unwrap();
        let b = spool.next_batch(20).unwrap().unwrap();
        assert_eq!(seqs(&b.events), (0..20).collect::<Vec<_>>());
        spool.ack(&b).unwrap();
        // Read but never acknowledged: must come back after the restart.
        let b = spool.next_batch(20).unwrap().unwrap();
        assert_eq!(seqs(&b.events), (20..40).collect::<Vec<_>>());
    }
    let mut spool = Spool::open(&cfg, "svc", Arc::new(Counters::default())).unwrap();
    spool
        .append(&(50..60).map(event).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(replay_all(&mut spool, 1000), (20..60).collect::<Vec<_>>());
}

#[test]
fn a_torn_tail_and_a_corrupt_line_are_skipped_counted_and_do_not_stop_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), 1 << 20, 1 << 22);
    {
        let mut spool = Spool::open(&cfg, "svc", Arc::new(Counters::default())).unwrap();
        spool
            .append(&(0..3).map(event).collect::<Vec<_>>())
            .unwrap();
        let mut f = open_append(&tmp.path().join("app.log"), 0o600).unwrap();
        f.write_all(b"not json at all\n").unwrap();
        drop(f);
        spool
            .append(&(3..5).map(event).collect::<Vec<_>>())
            .unwrap();
        let mut f = open_append(&tmp.path().join("app.log"), 0o600).unwrap();
        f.write_all(b"{\"timestamp\":\"2026-01-01T00:00:00Z\",\"sev")
            .unwrap();
    }
    let counters = Arc::new(Counters::default());
    let mut spool = Spool::open(&cfg, "svc", counters.clone()).unwrap();
    spool.append(&[event(5)]).unwrap();
    assert_eq!(replay_all(&mut spool, 2), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(counters.snapshot(0, 0).corrupt_skipped, 2);
}

#[test]
fn past_its_size_limit_the_oldest_records_are_dropped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let counters = Arc::new(Counters::default());
    let mut spool =
        Spool::open(&config(tmp.path(), 4096, 3 * 4096), "svc", counters.clone()).unwrap();
    for i in 0..400 {
        spool.append(&[event(i)]).unwrap();
        assert!(counters.snapshot(0, 0).spool_bytes <= 3 * 4096 + 1024);
    }
    let replayed = replay_all(&mut spool, 1000);
    let s = counters.snapshot(0, 0);
    assert!(s.dropped.spool_full > 0);
    assert_eq!(
        replayed.len() as u64 + s.dropped.spool_full,
        400,
        "every record replayed or counted"
    );
    assert_eq!(replayed.last(), Some(&399), "the newest survive");
}

#[test]
fn a_second_owner_of_the_same_spool_gets_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), 4096, 1 << 20);
    let _first = Spool::open(&cfg, "svc", Arc::new(Counters::default())).unwrap();
    let err = Spool::open(&cfg, "svc", Arc::new(Counters::default()))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("in use by another process") && err.contains("app.log.lock"),
        "{err}"
    );
}

#[test]
fn a_plain_log_left_by_another_mode_is_set_aside_not_replayed() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("app.log"), "{\"not\":\"spooled\"}\n").unwrap();
    let mut spool = Spool::open(
        &config(tmp.path(), 4096, 1 << 20),
        "svc",
        Arc::new(Counters::default()),
    )
    .unwrap();
    assert!(!spool.has_backlog());
    assert!(spool.next_batch(10).unwrap().is_none());
    let aside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("app.log.not-spooled.")
        })
        .collect();
    assert_eq!(aside.len(), 1);
}

#[test]
fn a_failed_write_leaves_no_torn_line_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let counters = Arc::new(Counters::default());
    let mut spool = Spool::open(
        &config(tmp.path(), 1 << 20, 1 << 22),
        "svc",
        counters.clone(),
    )
    .unwrap();
    spool.append(&[event(0)]).unwrap();
    // Simulate a failed write: swap the active file for a read-only handle.
    let good = std::mem::replace(
        &mut spool.active,
        File::open(tmp.path().join("app.log")).unwrap(),
    );
    assert!(spool.append(&[event(1), event(2)]).is_err());
    spool.active = good;
    spool.append(&[event(3)]).unwrap();
    assert_eq!(replay_all(&mut spool, 10), vec![0, 3]);
    assert_eq!(counters.snapshot(0, 0).corrupt_skipped, 0);
}

#[test]
fn a_segment_removed_mid_replay_counts_what_was_not_replayed_as_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let counters = Arc::new(Counters::default());
    let mut spool =
        Spool::open(&config(tmp.path(), 4096, 1 << 20), "svc", counters.clone()).unwrap();
    for chunk in (0..100).collect::<Vec<_>>().chunks(10) {
        let batch: Vec<_> = chunk.iter().map(|i| event(*i)).collect();
        spool.append(&batch).unwrap();
    }
    let b = spool.next_batch(3).unwrap().unwrap();
    assert_eq!(seqs(&b.events), vec![0, 1, 2]);
    spool.ack(&b).unwrap();
    let written = spool.closed.front().and_then(|s| s.records).unwrap();
    assert!(written > 3, "the first segment holds more than the batch");
    // Removed from under the spool with the cursor inside it.
    fs::remove_file(spool.segment_path(spool.acks.cursor().0)).unwrap();
    let rest = replay_all(&mut spool, 1000);
    let lost = counters.snapshot(0, 0).dropped.io_error;
    assert_eq!(lost, written - 3, "what was not replayed of it is lost");
    assert_eq!(rest.first(), Some(&(written as i64)));
    assert_eq!(
        3 + rest.len() as u64 + lost,
        100,
        "every record replayed or counted"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Item {
        Valid(i64),
        /// Arbitrary bytes ending in a newline: one or more unreadable lines.
        Garbage(Vec<u8>),
    }

    fn item() -> impl Strategy<Value = Item> {
        prop_oneof![
            3 => (0i64..1_000_000).prop_map(Item::Valid),
            1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(|mut v| {
                v.push(b'\n');
                Item::Garbage(v)
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_bytes_never_panic_nor_stop_the_replay(
            items in prop::collection::vec(item(), 0..60),
            torn_tail in prop::collection::vec(any::<u8>(), 0..50),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let cfg = config(tmp.path(), 2048, 1 << 22);
            let mut bytes = Vec::new();
            let mut valid = Vec::new();
            let mut garbage_lines = 0u64;
            for it in &items {
                match it {
                    Item::Valid(i) => {
                        crate::export::file::format::encode(&event(*i).record(), "svc", None, &mut bytes);
                        valid.push(*i);
                    }
                    Item::Garbage(g) => {
                        garbage_lines += g.iter().filter(|b| **b == b'\n').count() as u64;
                        bytes.extend_from_slice(g);
                    }
                }
            }
            let torn: Vec<u8> = torn_tail.into_iter().filter(|b| *b != b'\n').collect();
            bytes.extend_from_slice(&torn);
            // A leftover active segment of an earlier spool (its cursor file marks it as ours).
            std::fs::write(tmp.path().join("app.log.spool.cursor"), "0 0\n").unwrap();
            std::fs::write(tmp.path().join("app.log"), &bytes).unwrap();
            let counters = Arc::new(Counters::default());
            let mut spool = Spool::open(&cfg, "svc", counters.clone()).unwrap();
            let replayed = replay_all(&mut spool, 7);
            prop_assert_eq!(replayed, valid);
            // Garbage lines may decode by chance only if they are valid records: never for these.
            let corrupt = counters.snapshot(0, 0).corrupt_skipped;
            prop_assert_eq!(corrupt, garbage_lines + u64::from(!torn.is_empty()));
            prop_assert!(!spool.has_backlog());
        }
    }
}
