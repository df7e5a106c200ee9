//! The counter-based clock: reading it ([`now`]) and anchoring it to the system clock
//! ([`calibrate`], through the pure [`Calibration`]).

use std::sync::Mutex;

use super::anchor::{Anchor, Reading};

/// The longest a time is extrapolated from its anchor: older anchors are not used (the system
/// clock is read), so that the rate's error and the system clock's changes since count for little.
pub(super) const MAX_EXTRAPOLATION_NS: u64 = 2_000_000_000;

/// The shortest span over which a rate is measured (and so the time between two anchors).
const MIN_SPAN_NS: u64 = 100_000_000;

/// How far two successive rates may differ (parts per million) for the second to be used: a step
/// of the system clock, or a counter that is not steady, makes them differ more.
const MAX_RATE_CHANGE_PPM: u64 = 100;

/// The most ticks a sample's two counter readings may lie apart (the thread was not preempted
/// between them): about 3 us at 3 GHz, so a sample's error is at most half that.
const MAX_SAMPLE_TICKS: u64 = 10_000;

static CALIBRATION: Mutex<Calibration> = Mutex::new(Calibration::new());

/// The time-stamp counter.
#[inline(always)]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` reads a CPU register into the result and touches no memory; every x86-64 CPU
    // has it. (A process that asked the kernel to fault it, `PR_SET_TSC`, gets a signal, not
    // undefined behaviour; `calibrate` does not anchor the clock in such a process.)
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
    extrapolate(anchor()?.read()?, rdtsc())
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

/// Takes a new anchor if the latest is [`MIN_SPAN_NS`] old or more; withdraws it where the
/// kernel no longer keeps time with the counter.
pub(super) fn calibrate() {
    // Another pipeline's worker is at it.
    let Ok(mut calibration) = CALIBRATION.try_lock() else {
        return;
    };
    let Some(sample) = sample() else {
        return;
    };
    let Some(anchor) = anchor() else {
        return;
    };
    match calibration.step(sample) {
        Step::Wait => {}
        Step::Publish(reading) if counter_keeps_time() => anchor.write(reading),
        Step::Publish(_) | Step::Withdraw => {
            anchor.withdraw();
        }
    }
}

/// A counter reading and the system clock at it, from a sandwich of two counter readings not far
/// apart; `None` if the thread was preempted in each of three tries.
fn sample() -> Option<Sample> {
    (0..3).find_map(|_| {
        let before = rdtsc();
        let ns = super::system_now_unix_nanos();
        let after = rdtsc();
        let ticks = after.wrapping_sub(before);
        (ticks <= MAX_SAMPLE_TICKS).then(|| Sample {
            tsc: before.wrapping_add(ticks / 2),
            ns,
        })
    })
}

/// Whether the kernel keeps time with the counter (so it found it steady and in step across
/// CPUs), and this process may read it.
fn counter_keeps_time() -> bool {
    let source =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    let mut tsc_mode: libc::c_int = 0;
    // SAFETY: `PR_GET_TSC` writes an int through the pointer given, which is a valid, exclusively
    // borrowed int for the call.
    let got = unsafe { libc::prctl(libc::PR_GET_TSC, &mut tsc_mode as *mut libc::c_int) };
    source.is_ok_and(|s| s.trim() == "tsc") && got == 0 && tsc_mode == libc::PR_TSC_ENABLE
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

/// The calibration's decisions from successive samples: a rate is measured over each span of at
/// least [`MIN_SPAN_NS`], and an anchor published when it agrees with the one before within
/// [`MAX_RATE_CHANGE_PPM`].
#[derive(Debug)]
struct Calibration {
    last: Option<Sample>,
    /// The rate measured over the span ending at `last`.
    rate: Option<u64>,
}

impl Calibration {
    const fn new() -> Self {
        Calibration {
            last: None,
            rate: None,
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
        let rate = (u128::from(ns) << 32) / u128::from(ticks.max(1));
        let Ok(rate) = u64::try_from(rate) else {
            return self.restart(now);
        };
        self.last = Some(now);
        let agrees = self.rate.replace(rate).is_some_and(|before| {
            u128::from(before.abs_diff(rate)) * 1_000_000
                <= u128::from(before) * u128::from(MAX_RATE_CHANGE_PPM)
        });
        if agrees {
            Step::Publish(Reading {
                tsc: now.tsc,
                ns: now.ns,
                rate,
            })
        } else {
            Step::Withdraw
        }
    }

    /// Starts measuring again from `now`.
    fn restart(&mut self, now: Sample) -> Step {
        *self = Calibration {
            last: Some(now),
            rate: None,
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

    #[test]
    fn calibration_decisions() {
        let ms = 1_000_000u64;
        let t0 = 1_700_000_000_000_000_000u64;
        // (sample: ticks, ns since the first; expected step), in order, on one calibration.
        let rows: &[(u64, u64, Step)] = &[
            (0, 0, Step::Wait),
            (3 * 50 * ms, 50 * ms, Step::Wait), // too soon to measure
            // First rate: nothing to agree with yet.
            (3 * 100 * ms, 100 * ms, Step::Withdraw),
            // Same rate: published, at this sample.
            (
                3 * 200 * ms,
                200 * ms,
                Step::Publish(Reading {
                    tsc: 3 * 200 * ms,
                    ns: t0 + 200 * ms,
                    rate: GHZ3,
                }),
            ),
            // The system clock stepped 5 ms forward: the rate disagrees, and the next one with it.
            (3 * 300 * ms, 305 * ms, Step::Withdraw),
            (3 * 400 * ms, 405 * ms, Step::Withdraw),
            // Steady again.
            (
                3 * 500 * ms,
                505 * ms,
                Step::Publish(Reading {
                    tsc: 3 * 500 * ms,
                    ns: t0 + 505 * ms,
                    rate: GHZ3,
                }),
            ),
            // The system clock went back: start again.
            (3 * 600 * ms, 300 * ms, Step::Withdraw),
            (3 * 700 * ms, 400 * ms, Step::Withdraw),
            (
                3 * 800 * ms,
                500 * ms,
                Step::Publish(Reading {
                    tsc: 3 * 800 * ms,
                    ns: t0 + 500 * ms,
                    rate: GHZ3,
                }),
            ),
        ];
        let mut c = Calibration::new();
        for (i, &(tsc, ns, expected)) in rows.iter().enumerate() {
            assert_eq!(c.step(at(tsc, t0 + ns)), expected, "row {i}");
        }
        // A rate within 100 ppm of the one before is used; one beyond is not.
        let mut c = Calibration::new();
        let mut tsc = 0;
        let mut ns = t0;
        c.step(at(tsc, ns));
        for (extra_ns, published) in [(0, false), (9_000, true), (0, true), (11_000, false)] {
            tsc += 300 * ms;
            ns += 100 * ms + extra_ns;
            let step = c.step(at(tsc, ns));
            assert_eq!(
                matches!(step, Step::Publish(_)),
                published,
                "{extra_ns}: {step:?}"
            );
        }
        // The counter went back (another CPU, or a new machine): start again.
        assert_eq!(c.step(at(tsc - 1, ns + 100 * ms)), Step::Withdraw);
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
            let before = super::super::system_now_unix_nanos();
            let t = super::super::now_unix_nanos();
            let after = super::super::system_now_unix_nanos();
            assert!(
                before.saturating_sub(1_000_000) <= t && t <= after + 1_000_000,
                "{before} {t} {after}"
            );
        }
    }
}
