//! The counter-based clock: reading it ([`now`]) and anchoring it to the system clock
//! ([`calibrate`], through the pure [`Calibration`]).

use std::sync::Mutex;

use crate::clock::anchor::{Anchor, Reading};

/// The longest a time is extrapolated from its anchor: older anchors are not used (the system
/// clock is read), so that the rate's error and the system clock's changes since count for little.
pub(super) const MAX_EXTRAPOLATION_NS: u64 = 2_000_000_000;

/// The shortest span over which a rate is measured (and so the time between two anchors).
const MIN_SPAN_NS: u64 = 100_000_000;

/// How far two successive rates may differ (parts per million) for a first anchor to be taken
/// from the second: a step of the system clock, or a counter that is not steady, makes them differ
/// more.
const MAX_RATE_CHANGE_PPM: u64 = 100;

/// How far the published anchor's time may be from the system clock's at a new sample for the
/// next anchor to continue it; beyond, the anchor is withdrawn (a step of the system clock, a
/// change of its rate) and calibration starts again.
const MAX_ERROR_NS: u64 = 20_000;

/// Over how long a new anchor absorbs the published one's difference from the system clock: as
/// long as an anchor is used, so that the difference shrinks whenever the next anchor comes.
const SLEW_NS: i128 = MAX_EXTRAPOLATION_NS as i128;

/// How often the kernel's clocksource is looked at again.
const SOURCE_CHECK_NS: u64 = 10_000_000_000;

/// The most ticks a sample's two counter readings may lie apart (the thread was not preempted
/// between them): about 3 us at 3 GHz, so a sample's error is at most half that.
const MAX_SAMPLE_TICKS: u64 = 10_000;

static CALIBRATION: Mutex<State> = Mutex::new(State {
    calibration: Calibration::new(),
    source: None,
});

/// What the worker that calibrates keeps between turns.
struct State {
    calibration: Calibration,
    /// Whether the kernel kept time with the counter, and when that was looked at (system clock,
    /// ns).
    source: Option<(bool, u64)>,
}

/// The time-stamp counter.
#[inline(always)]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` reads a CPU register into the result and touches no memory; every x86-64 CPU
    // has it. (Where a thread asked the kernel to trap it, `PR_SET_TSC`, it traps as the system
    // clock's own `rdtsc` in the vDSO does: no memory is involved either way.)
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The process's anchor.
#[cfg(not(all(test, olb_loom)))]
#[inline(always)]
fn anchor() -> Option<&'static Anchor> {
    static ANCHOR: Anchor = Anchor::new();
    Some(&ANCHOR)
}

/// None under loom, whose atomics cannot be made in a `static` (its model checks [`Anchor`]).
#[cfg(all(test, olb_loom))]
fn anchor() -> Option<&'static Anchor> {
    None
}

/// Now, from the counter and the latest anchor; `None` (read the system clock) without a usable
/// anchor.
#[inline]
pub(super) fn now() -> Option<u64> {
    let anchor = anchor()?;
    // A read that overlapped a write (every 100 ms at most, a few ns long) is tried once more.
    let reading = anchor.read().or_else(|| anchor.read())?;
    extrapolate(reading, rdtsc())
}

/// The time at counter reading `tsc` from `anchor`, if it is at most [`MAX_EXTRAPOLATION_NS`]
/// after it. A reading before the anchor's (taken on another CPU, or read ahead of the anchor by
/// the processor) is a huge number of ticks after it: `None`, as for a stale anchor.
#[inline]
fn extrapolate(anchor: Reading, tsc: u64) -> Option<u64> {
    let ns = (u128::from(tsc.wrapping_sub(anchor.tsc)) * u128::from(anchor.rate)) >> 32;
    if ns > u128::from(MAX_EXTRAPOLATION_NS) {
        return None;
    }
    // `ns` fits: it is at most the bound.
    anchor.ns.checked_add(ns as u64)
}

/// Takes a new anchor if the last sample is [`MIN_SPAN_NS`] old or more; withdraws it where the
/// kernel no longer keeps time with the counter (looked at every [`SOURCE_CHECK_NS`]: where it
/// does not, a call costs a lock and a reading of the system clock).
pub(super) fn calibrate() {
    // Another pipeline's worker is at it.
    let Ok(mut state) = CALIBRATION.try_lock() else {
        return;
    };
    let Some(anchor) = anchor() else {
        return;
    };
    let now = crate::clock::system_now_unix_nanos();
    let keeps_time = match state.source {
        Some((keeps, at)) if now.wrapping_sub(at) < SOURCE_CHECK_NS => keeps,
        _ => {
            let keeps = counter_keeps_time();
            state.source = Some((keeps, now));
            keeps
        }
    };
    if !keeps_time {
        // The next anchor, if the kernel comes back to the counter, starts afresh.
        state.calibration = Calibration::new();
        anchor.withdraw();
        return;
    }
    let Some(sample) = sample() else {
        return;
    };
    match state.calibration.step(sample) {
        Step::Wait => {}
        Step::Publish(reading) => anchor.write(reading),
        Step::Withdraw => {
            anchor.withdraw();
        }
    }
}

/// A counter reading and the system clock at it, from the tightest of three sandwiches of two
/// counter readings; `None` if the thread was preempted in each.
fn sample() -> Option<Sample> {
    (0..3)
        .filter_map(|_| {
            let before = rdtsc();
            let ns = crate::clock::system_now_unix_nanos();
            let after = rdtsc();
            let ticks = after.wrapping_sub(before);
            (ticks <= MAX_SAMPLE_TICKS).then(|| {
                let sample = Sample {
                    tsc: before.wrapping_add(ticks / 2),
                    ns,
                };
                (ticks, sample)
            })
        })
        .min_by_key(|&(ticks, _)| ticks)
        .map(|(_, sample)| sample)
}

/// Whether the kernel keeps time with the counter: it found it steady and in step across CPUs,
/// and its own `clock_gettime` reads it too.
fn counter_keeps_time() -> bool {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .is_ok_and(|s| s.trim() == "tsc")
}

/// A counter reading and the system clock then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    tsc: u64,
    ns: u64,
}

/// What to do with the anchor after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Too soon after the last sample: nothing.
    Wait,
    /// Publish this anchor.
    Publish(Reading),
    /// Readers must not use the anchor: the counter or the system clock went back, or the rate
    /// changed.
    Withdraw,
}

/// The calibration's decisions from successive samples, at least [`MIN_SPAN_NS`] apart: the rate
/// is measured over each span. A first anchor is taken when two successive rates agree within
/// [`MAX_RATE_CHANGE_PPM`] (the system clock's time at the sample, the latest rate). Each next one
/// continues the published one: its time at the sample is the published one's there, and its rate
/// the latest, corrected to absorb the published one's difference from the system clock over
/// [`SLEW_NS`]. So the time never steps between anchors, back or forward; a difference beyond
/// [`MAX_ERROR_NS`] withdraws the anchor instead.
#[derive(Debug)]
struct Calibration {
    last: Option<Sample>,
    /// The rate measured over the span ending at `last`.
    rate: Option<u64>,
    /// The anchor published last, unless withdrawn since.
    published: Option<Reading>,
}

impl Calibration {
    const fn new() -> Self {
        Calibration {
            last: None,
            rate: None,
            published: None,
        }
    }

    fn step(&mut self, now: Sample) -> Step {
        let Some(last) = self.last else {
            self.last = Some(now);
            return Step::Wait;
        };
        let (Some(ticks), Some(ns)) = (now.tsc.checked_sub(last.tsc), now.ns.checked_sub(last.ns))
        else {
            return self.restart(now);
        };
        if ns < MIN_SPAN_NS {
            return Step::Wait;
        }
        let Ok(rate) = u64::try_from((u128::from(ns) << 32) / u128::from(ticks.max(1))) else {
            return self.restart(now);
        };
        self.last = Some(now);
        let before = self.rate.replace(rate);
        // An anchor readers no longer use (more than `MAX_EXTRAPOLATION_NS` old: they read the
        // system clock) is not continued: the next starts from the system clock, as they do.
        let next = match self.published.and_then(|p| extrapolate(p, now.tsc)) {
            Some(at) => {
                // The system clock's difference from the published time at this sample.
                let error = i128::from(now.ns) - i128::from(at);
                if error.unsigned_abs() > u128::from(MAX_ERROR_NS) {
                    return self.restart(now);
                }
                // The published time at this sample, and a rate that makes up the difference
                // over the next `SLEW_NS` (by at most 10 ppm: always positive).
                let slewed = i128::from(rate) + i128::from(rate) * error / SLEW_NS;
                let Ok(rate) = u64::try_from(slewed) else {
                    return self.restart(now);
                };
                Reading {
                    tsc: now.tsc,
                    ns: at,
                    rate,
                }
            }
            None => {
                let agrees = before.is_some_and(|before| {
                    u128::from(before.abs_diff(rate)) * 1_000_000
                        <= u128::from(before) * u128::from(MAX_RATE_CHANGE_PPM)
                });
                if !agrees {
                    return Step::Withdraw;
                }
                Reading {
                    tsc: now.tsc,
                    ns: now.ns,
                    rate,
                }
            }
        };
        self.published = Some(next);
        Step::Publish(next)
    }

    /// Starts measuring again from `now`.
    fn restart(&mut self, now: Sample) -> Step {
        *self = Calibration {
            last: Some(now),
            rate: None,
            published: None,
        };
        Step::Withdraw
    }
}

#[cfg(all(test, not(olb_loom)))]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// 3 ticks per nanosecond: a rate of a third of a nanosecond per tick.
    const GHZ3: u64 = (1 << 32) / 3;

    fn at(tsc: u64, ns: u64) -> Sample {
        Sample { tsc, ns }
    }

    const MS: u64 = 1_000_000;
    const T0: u64 = 1_700_000_000_000_000_000;

    /// A calibration fed samples at 3 GHz, `(ms of counter, ns of system clock since T0)` each.
    fn fed(samples: &[(u64, u64)]) -> (Calibration, Vec<Step>) {
        let mut c = Calibration::new();
        let steps = samples
            .iter()
            .map(|&(ms, ns)| c.step(at(3 * ms * MS, T0 + ns)))
            .collect();
        (c, steps)
    }

    #[test]
    fn calibration_decisions() {
        let first = |ms: u64, ns: u64| {
            Step::Publish(Reading {
                tsc: 3 * ms * MS,
                ns: T0 + ns,
                rate: GHZ3,
            })
        };
        // (sample, expected step), in order, on one calibration.
        let rows: &[((u64, u64), Step)] = &[
            ((0, 0), Step::Wait),
            ((50, 50 * MS), Step::Wait), // too soon to measure
            // First rate: nothing to agree with yet.
            ((100, 100 * MS), Step::Withdraw),
            // The same rate: a first anchor, the system clock's time at this sample.
            ((200, 200 * MS), first(200, 200 * MS)),
            // The system clock stepped 5 ms forward: far from the anchor's time, withdrawn.
            ((300, 305 * MS), Step::Withdraw),
            // Measuring again from the step: a first rate, then one that agrees.
            ((400, 405 * MS), Step::Withdraw),
            ((500, 505 * MS), first(500, 505 * MS)),
            // The system clock went back: start again.
            ((600, 300 * MS), Step::Withdraw),
            ((700, 400 * MS), Step::Withdraw),
            ((800, 500 * MS), first(800, 500 * MS)),
        ];
        let mut c = Calibration::new();
        for (i, &((ms, ns), expected)) in rows.iter().enumerate() {
            assert_eq!(c.step(at(3 * ms * MS, T0 + ns)), expected, "row {i}");
        }
        // The counter went back (another CPU, or a new machine): start again.
        assert_eq!(c.step(at(3 * 800 * MS - 1, T0 + 600 * MS)), Step::Withdraw);
        assert_eq!(c.published, None);
    }

    /// A first anchor needs two rates within 100 ppm of each other.
    #[test]
    fn a_first_anchor_needs_two_rates_that_agree() {
        for (extra_ns, published) in [(0, true), (9_000, true), (11_000, false)] {
            let (_, steps) = fed(&[(0, 0), (100, 100 * MS), (200, 200 * MS + extra_ns)]);
            assert_eq!(
                matches!(steps[2], Step::Publish(_)),
                published,
                "{extra_ns}: {steps:?}"
            );
        }
    }

    /// Each next anchor continues the published one where it is taken (no step, back or
    /// forward), absorbing the system clock's difference over the next 2 s; too large a
    /// difference withdraws it.
    #[test]
    fn a_next_anchor_continues_the_last_and_absorbs_the_difference() {
        let (mut c, steps) = fed(&[(0, 0), (100, 100 * MS), (200, 200 * MS)]);
        let Step::Publish(first) = steps[2] else {
            panic!("{steps:?}")
        };
        // From here the system clock runs 100 ppm faster (an NTP correction): 10 us ahead of
        // the anchor's time 100 ms later.
        let sample = at(3 * 300 * MS, T0 + 300 * MS + 10_000);
        let Step::Publish(next) = c.step(sample) else {
            panic!("not published")
        };
        let there = extrapolate(first, sample.tsc).unwrap();
        assert!(next.ns.abs_diff(there) <= 1, "{} {there}: a step", next.ns);
        assert!(next.ns < sample.ns, "the 10 us are not made up at once");
        // 1.9 s later, at that rate, the difference is made up but for 5% of it (over 2 s).
        let later = at(sample.tsc + 5_700 * MS, sample.ns + 1_900 * MS + 190_000);
        let made_up = extrapolate(next, later.tsc).unwrap();
        assert!(made_up.abs_diff(later.ns) < 1_000, "{made_up} {}", later.ns);
        // 30 us apart: withdrawn, and the next anchor waits for two rates again.
        let far = at(later.tsc, later.ns + 30_000);
        assert_eq!(c.step(far), Step::Withdraw);
        assert_eq!(
            c.step(at(far.tsc + 300 * MS, far.ns + 100 * MS)),
            Step::Withdraw
        );
        assert!(matches!(
            c.step(at(far.tsc + 600 * MS, far.ns + 200 * MS)),
            Step::Publish(_)
        ));
    }

    /// An anchor no reader uses any more (older than the extrapolation's bound) is not continued:
    /// the next starts from the system clock, which the readers went back to.
    #[test]
    fn a_stale_anchor_is_not_continued() {
        let (mut c, steps) = fed(&[(0, 0), (100, 100 * MS), (200, 200 * MS)]);
        assert!(matches!(steps[2], Step::Publish(_)), "{steps:?}");
        // 3 s later, 50 us off the old anchor's rate: continuing would withdraw it.
        let late = at(3 * 3_200 * MS, T0 + 3_200 * MS + 50_000);
        assert_eq!(
            c.step(late),
            Step::Publish(Reading {
                tsc: late.tsc,
                ns: late.ns,
                rate: ((3_000 * MS + 50_000) << 32) / (3 * 3_000 * MS),
            })
        );
    }

    #[test]
    fn extrapolation_is_bounded() {
        let anchor = Reading {
            tsc: 1_000_000,
            ns: 5_000_000_000,
            rate: GHZ3,
        };
        assert_eq!(extrapolate(anchor, 1_000_000), Some(5_000_000_000));
        assert_eq!(extrapolate(anchor, 1_000_300), Some(5_000_000_099));
        // A reading slightly before the anchor's (another CPU): the system clock.
        assert_eq!(extrapolate(anchor, 999_700), None);
        let limit = 3 * MAX_EXTRAPOLATION_NS;
        assert!(extrapolate(anchor, 1_000_000 + limit - 3).is_some());
        assert_eq!(extrapolate(anchor, 1_000_000 + limit + 6), None);
        assert_eq!(extrapolate(anchor, 0u64.wrapping_sub(limit + 6)), None);
    }

    /// Where the kernel keeps time with the counter, the clock is anchored within a deadline and
    /// then agrees with the system clock; elsewhere it is the system clock.
    #[test]
    fn the_counter_clock_agrees_with_the_system_clock() {
        if !counter_keeps_time() {
            assert_eq!(now(), None);
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while now().is_none() {
            assert!(Instant::now() < deadline, "no anchor within 10 s");
            calibrate();
            std::thread::sleep(Duration::from_millis(20));
        }
        // Within 1 ms: the rate's error over at most 2 s, and a preemption between the readings.
        for _ in 0..1_000 {
            let before = crate::clock::system_now_unix_nanos();
            let t = now().expect("the anchor is fresh: the counter's time");
            let after = crate::clock::system_now_unix_nanos();
            assert!(
                before.saturating_sub(1_000_000) <= t && t <= after + 1_000_000,
                "{before} {t} {after}"
            );
        }
    }
}
