use super::*;

/// One step of a scenario: at `ms` after the start, do `action`, then expect the verdict and what
/// the policy then allows.
struct Row {
    ms: u64,
    action: Action,
    /// `Debug` of the verdict (`-` for a check without action).
    verdict: &'static str,
    may_try: bool,
    may_replay: bool,
}

#[derive(Clone, Copy)]
enum Action {
    Check,
    Live(Attempt),
    Replay(BatchId, Attempt),
    UnreadableSpool,
}

use Action::*;
use Attempt::*;

const A: BatchId = (1, 0);
const B: BatchId = (1, 4096);

fn row(ms: u64, action: Action, verdict: &'static str, may_try: bool, may_replay: bool) -> Row {
    Row {
        ms,
        action,
        verdict,
        may_try,
        may_replay,
    }
}

fn run(name: &str, rows: &[Row]) -> Failover {
    let t0 = Instant::now();
    let mut f = Failover::default();
    for (i, r) in rows.iter().enumerate() {
        let now = t0 + Duration::from_millis(r.ms);
        let verdict = match r.action {
            Check => "-".to_owned(),
            Live(a) => format!("{:?}", f.live(now, a)),
            Replay(id, a) => format!("{:?}", f.replay(now, id, a)),
            UnreadableSpool => {
                f.unreadable_spool(now);
                "-".to_owned()
            }
        };
        let got = (verdict.as_str(), f.may_try(now), f.may_replay(now));
        assert_eq!(
            got,
            (r.verdict, r.may_try, r.may_replay),
            "{name}, row {i} (at {} ms): {f:?}",
            r.ms
        );
    }
    f
}

#[test]
fn an_outage_is_probed_with_a_doubling_backoff_and_ends_with_a_delivery() {
    run(
        "outage",
        &[
            row(0, Check, "-", true, true),
            row(0, Live(Failed), "Spool", false, false),
            row(249, Check, "-", false, false),
            row(250, Check, "-", true, true),
            row(250, Live(Failed), "Spool", false, false),
            row(749, Check, "-", false, false),
            row(750, Replay(A, Failed), "Keep", false, false),
            row(1749, Check, "-", false, false),
            row(1750, Live(Delivered), "Delivered", true, true),
            row(1750, Replay(A, Delivered), "Ack", true, true),
        ],
    );
}

#[test]
fn the_backoff_doubles_up_to_its_cap() {
    let t0 = Instant::now();
    let mut f = Failover::default();
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..8 {
        assert_eq!(f.live(now, Failed), LiveVerdict::Spool);
        let Health::Down { next_probe, .. } = f.health() else {
            panic!("down after a failure");
        };
        waits.push((next_probe - now).as_millis());
        now = next_probe;
    }
    assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
    // A delivery starts the backoff again.
    assert_eq!(f.live(now, Delivered), LiveVerdict::Delivered);
    f.live(now, Failed);
    assert_eq!(
        f.health(),
        Health::Down {
            next_probe: now + PROBE_INITIAL,
            backoff: PROBE_INITIAL
        }
    );
}

#[test]
fn a_permanent_refusal_of_a_live_batch_spools_it_and_takes_the_collector_as_down() {
    run(
        "live refusal",
        &[
            row(0, Live(Refused), "Spool", false, false),
            row(250, Live(Delivered), "Delivered", true, true),
        ],
    );
}

#[test]
fn a_spooled_batch_refused_twice_around_live_deliveries_is_poison() {
    run(
        "poison",
        &[
            row(0, Replay(A, Refused), "Keep", true, false),
            // Live batches still go; replay waits for one of them to be accepted.
            row(10, Check, "-", true, false),
            row(20, Live(Delivered), "Delivered", true, true),
            row(30, Replay(A, Refused), "Poison", true, true),
            // The next batch is judged afresh.
            row(40, Replay(B, Delivered), "Ack", true, true),
        ],
    );
}

#[test]
fn another_batch_refused_after_a_refusal_is_kept_not_poison() {
    run(
        "not the same batch",
        &[
            row(0, Replay(A, Refused), "Keep", true, false),
            row(20, Live(Delivered), "Delivered", true, true),
            row(30, Replay(B, Refused), "Keep", true, false),
            row(40, Live(Delivered), "Delivered", true, true),
            row(50, Replay(B, Refused), "Poison", true, true),
        ],
    );
}

#[test]
fn without_live_records_a_paused_replay_tries_again_after_the_pause_and_drops_nothing() {
    let pause = REPLAY_PAUSE.as_millis() as u64;
    run(
        "idle application",
        &[
            row(0, Replay(A, Refused), "Keep", true, false),
            row(pause - 1, Check, "-", true, false),
            row(pause, Check, "-", true, true),
            // Refused again, but no live batch was accepted in between: not judged poison.
            row(pause, Replay(A, Refused), "Keep", true, false),
            row(2 * pause, Replay(A, Delivered), "Ack", true, true),
        ],
    );
}

#[test]
fn an_unreadable_spool_pauses_replay_until_a_live_success_or_the_pause() {
    let pause = REPLAY_PAUSE.as_millis() as u64;
    run(
        "unreadable, then live",
        &[
            row(0, UnreadableSpool, "-", true, false),
            row(5, Live(Delivered), "Delivered", true, true),
        ],
    );
    run(
        "unreadable, then time",
        &[
            row(0, UnreadableSpool, "-", true, false),
            row(pause, Check, "-", true, true),
        ],
    );
}

#[test]
fn probes_are_short_and_woken_for_only_with_a_spool_to_ship() {
    let t0 = Instant::now();
    let far = t0 + Duration::from_secs(30);
    let mut f = Failover::default();
    assert_eq!(f.deadline(t0, far), far);
    assert!(!f.probing());
    assert_eq!(f.probe_at(true), None);
    f.live(t0, Failed);
    assert!(f.probing());
    assert_eq!(f.deadline(t0, far), t0 + PROBE_TIMEOUT);
    assert_eq!(
        f.deadline(t0, t0 + Duration::from_secs(1)),
        t0 + Duration::from_secs(1)
    );
    assert_eq!(f.probe_at(false), None);
    assert_eq!(f.probe_at(true), Some(t0 + PROBE_INITIAL));
    // Paused replay: nothing to wake for.
    f.replay(t0, A, Refused);
    assert_eq!(f.probe_at(true), None);
}

#[test]
fn spilling_starts_below_the_watermark_and_never_below_a_batch() {
    for (capacity, watermark, batch, want) in [
        (16384, 13107, 512, 8192),
        (300, 240, 100, 150),
        (1000, 100, 10, 99),
        (100, 80, 512, 512),
        (1, 1, 1, 1),
        (2, 0, 1, 1),
    ] {
        assert_eq!(
            spill_threshold(capacity, watermark, batch),
            want,
            "{capacity} {watermark} {batch}"
        );
    }
}

#[test]
fn shutdown_leaves_a_quarter_of_its_timeout_at_most_half_a_second_for_spooling() {
    let t0 = Instant::now();
    for (timeout_ms, abort_ms) in [(5000, 4500), (1000, 750), (100, 75), (0, 0)] {
        assert_eq!(
            abort_exports_at(t0, Duration::from_millis(timeout_ms)),
            t0 + Duration::from_millis(abort_ms),
            "{timeout_ms}"
        );
    }
    assert!(abort_exports_at(t0, Duration::MAX) > t0 + Duration::from_secs(3600));
}

#[test]
fn records_are_spooled_promptly_from_a_failed_attempt_until_a_delivery() {
    // (step, spool promptly afterwards)
    let t0 = Instant::now();
    let mut f = Failover::default();
    type Step<'a> = (&'a str, &'a dyn Fn(&mut Failover), bool);
    let steps: [Step<'_>; 7] = [
        ("start", &|_| {}, false),
        (
            "an attempt failed, retries under way",
            &|f| f.attempt_failed(),
            true,
        ),
        (
            "the retry delivered",
            &|f| {
                f.live(t0, Delivered);
            },
            false,
        ),
        ("another attempt failed", &|f| f.attempt_failed(), true),
        (
            "its export gave up: down",
            &|f| {
                f.live(t0, Failed);
            },
            true,
        ),
        (
            "a replayed batch failed: still down",
            &|f| {
                f.replay(t0 + PROBE_INITIAL, A, Failed);
            },
            true,
        ),
        (
            "a replayed batch delivered: up",
            &|f| {
                f.replay(t0 + PROBE_MAX, A, Delivered);
            },
            false,
        ),
    ];
    for (name, step, prompt) in steps {
        step(&mut f);
        assert_eq!(f.spool_promptly(), prompt, "{name}: {f:?}");
    }
}
