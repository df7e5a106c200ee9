//! `kill -9` at random moments, with the collector up, down and flapping, in `failover` and
//! `durable`: a child logs at a steady rate and writes, about every millisecond, the last
//! sequence number whose `log()` call returned; after the kill, a new pipeline on the same spool
//! replays it to a collector. Each run asserts what the README promises a crash loses (measured
//! against the child's own progress) and how many records can come twice.

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Collector, closed_endpoint, seq, seqs, wait_for};
use otel_log_bridge::Mode;

/// Records per second the child logs.
const RATE: u64 = 20_000;
/// The batch size (the default), the unit of the duplicate bound.
const BATCH: usize = 512;
/// Time given to the machine's scheduling on top of each promised bound: the child's threads and
/// the test's collector share two cores, and a loss window is measured from progress lines the
/// logging thread wrote.
const SCHEDULING: Duration = Duration::from_millis(150);
const WAIT: Duration = Duration::from_secs(60);

fn mode_of(name: &str) -> Mode {
    match name {
        "durable" => Mode::Durable,
        _ => Mode::Failover,
    }
}

fn pipeline(mode: Mode, endpoint: &str, dir: &Path) -> otel_log_bridge::Builder {
    otel_log_bridge::builder()
        .read_env(false)
        .mode(mode)
        .endpoint(endpoint)
        .log_dir(dir)
        .service_name("crash-test")
        .level(log::LevelFilter::Info)
}

/// Child: logs `seq` = 0, 1, ... at [`RATE`] until killed, writing `SEQ NANOS` lines (the last
/// seq whose `log()` returned, and the time since start) to `OLB_PROGRESS` about every ms.
#[test]
#[ignore = "run by the crash tests"]
fn crash_child() {
    let (Ok(dir), Ok(progress), Ok(endpoint), Ok(mode)) = (
        std::env::var("OLB_DIR"),
        std::env::var("OLB_PROGRESS"),
        std::env::var("OLB_ENDPOINT"),
        std::env::var("OLB_MODE"),
    ) else {
        return;
    };
    let (logger, _guard) = pipeline(mode_of(&mode), &endpoint, Path::new(&dir))
        .build()
        .unwrap();
    let mut out = std::fs::File::create(progress).unwrap();
    println!("READY");
    std::io::stdout().flush().unwrap();
    let start = Instant::now();
    let mut last_note = start;
    for i in 0u64.. {
        let kvs: [(&str, log::kv::Value<'_>); 1] = [("seq", i.into())];
        log::Log::log(
            &logger,
            &log::Record::builder()
                .args(format_args!("record {i}"))
                .level(log::Level::Info)
                .target("app")
                .key_values(&kvs)
                .build(),
        );
        if i % 16 == 15 {
            let now = Instant::now();
            if now - last_note >= Duration::from_millis(1) {
                last_note = now;
                let line = format!("{i} {}\n", (now - start).as_nanos());
                out.write_all(line.as_bytes()).unwrap();
            }
            // Load shaping, not synchronisation: keep to the rate.
            let due = start + Duration::from_micros((i + 1) * 1_000_000 / RATE);
            std::thread::sleep(due.saturating_duration_since(now));
        }
    }
}

/// What the collector does while the child runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Collecting {
    Up,
    Down,
    /// Up and down every 300 ms.
    Flapping,
}

/// The collector as the child sees it: one that stays up, none, or one that comes and goes.
struct Upstream {
    endpoint: String,
    stop: Arc<AtomicBool>,
    /// Up/down transitions so far.
    boundaries: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<Vec<(i64, Instant)>>>,
}

impl Upstream {
    fn start(how: Collecting) -> Upstream {
        let endpoint = closed_endpoint();
        let stop = Arc::new(AtomicBool::new(false));
        let boundaries = Arc::new(AtomicUsize::new(0));
        let thread = (how != Collecting::Down).then(|| {
            let (endpoint, stop, boundaries) = (endpoint.clone(), stop.clone(), boundaries.clone());
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let collector = Collector::start_at(&endpoint);
                    // Fault injection on a schedule: the phases are timing, not synchronisation.
                    let until = Instant::now() + Duration::from_millis(300);
                    while how == Collecting::Up || Instant::now() < until {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    got.extend(
                        collector
                            .stop()
                            .iter()
                            .filter_map(|r| Some((seq(r)?, r.at))),
                    );
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    boundaries.fetch_add(2, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(300));
                }
                got
            })
        });
        Upstream {
            endpoint,
            stop,
            boundaries,
            thread,
        }
    }

    /// Stops it; what it received (`seq` and arrival), and how many times it came or went.
    fn finish(mut self) -> (Vec<(i64, Instant)>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        let got = self
            .thread
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        (got, self.boundaries.load(Ordering::Relaxed))
    }
}

/// The child's progress: `(seq, nanos since its start)`, in order; a line torn by the kill is
/// left out.
fn progress(path: &Path) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(' ')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

/// What one crash lost and doubled.
#[derive(Debug)]
struct Outcome {
    logged: u64,
    lost: u64,
    /// From the oldest lost record's logging to the last progress line.
    loss_window: Duration,
    duplicates: u64,
    /// Duplicates whose first copy reached the collector more than the spool delay (and the
    /// scheduling allowance) before the kill: the crash does not explain them.
    duplicates_before_window: u64,
}

fn crash_once(mode: Mode, how: Collecting, rng: &mut u64) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let progress_path = tmp.path().join("progress");
    let spool_dir = tmp.path().join("spool");
    let upstream = Upstream::start(how);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--ignored", "--nocapture"])
        .env("OLB_DIR", &spool_dir)
        .env("OLB_PROGRESS", &progress_path)
        .env("OLB_ENDPOINT", &upstream.endpoint)
        .env("OLB_MODE", mode.as_str())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it once it has logged a random number of records: 0.1 to 1.5 s of logging.
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let target = RATE / 10 + *rng % (RATE * 14 / 10);
    wait_for(WAIT, "the child to log enough", || {
        progress_path.exists()
            && progress(&progress_path)
                .last()
                .is_some_and(|(seq, _)| *seq >= target)
    });
    let killed = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    let (before, boundaries) = upstream.finish();
    let steps = progress(&progress_path);
    let &(last_seq, last_t) = steps.last().unwrap();

    // The next start replays the spool to a collector that is up.
    let collector = Collector::start();
    let (_logger, guard) = pipeline(mode, &collector.endpoint(), &spool_dir)
        .build()
        .unwrap();
    wait_for(WAIT, "the spool to be replayed", || {
        guard.stats().spool_bytes == 0
    });
    guard.shutdown(Duration::from_secs(5));
    let after = seqs(&collector.stop());

    // Per seq: copies received, and when the first one arrived (before the kill).
    let mut counts: HashMap<i64, (u64, Option<Instant>)> = HashMap::new();
    for (s, at) in before {
        let e = counts.entry(s).or_default();
        e.0 += 1;
        e.1 = Some(e.1.map_or(at, |first| first.min(at)));
    }
    for s in after {
        counts.entry(s).or_default().0 += 1;
    }
    let lost: Vec<u64> = (0..=last_seq)
        .filter(|s| !counts.contains_key(&(*s as i64)))
        .collect();
    // A record was logged after the last progress line before it.
    let logged_after = |s: u64| {
        let i = steps.partition_point(|(seq, _)| *seq < s);
        if i == 0 { 0 } else { steps[i - 1].1 }
    };
    let loss_window = lost.first().map_or(Duration::ZERO, |s| {
        Duration::from_nanos(last_t - logged_after(*s))
    });
    // A delivery moves the spool's cursor, written within the spool delay: a crash sends again
    // what reached the collector in that time before it (or was in flight).
    let spool_delay = match mode {
        Mode::Durable => Duration::from_millis(10),
        _ => Duration::from_millis(100),
    };
    let window_start = killed.checked_sub(spool_delay + SCHEDULING);
    let duplicates: u64 = counts.values().map(|(c, _)| c - 1).sum();
    let duplicates_before_window: u64 = counts
        .values()
        .filter(|(_, first)| match (first, window_start) {
            (Some(first), Some(start)) => *first < start,
            _ => false,
        })
        .map(|(c, _)| c - 1)
        .sum();
    let outcome = Outcome {
        logged: last_seq + 1,
        lost: lost.len() as u64,
        loss_window,
        duplicates,
        duplicates_before_window,
    };
    eprintln!(
        "{mode}, collector {how:?}: {} logged before the kill, {} lost (logged in its last {:?}), {} duplicates ({} first received before the last {:?}), {boundaries} collector boundaries",
        outcome.logged,
        outcome.lost,
        outcome.loss_window,
        outcome.duplicates,
        outcome.duplicates_before_window,
        spool_delay + SCHEDULING
    );
    let promised = match (mode, how) {
        (Mode::Durable, _) => Duration::from_millis(10),
        (_, Collecting::Down) => Duration::from_millis(100),
        // While the collector answers, records wait in the queue for the schedule delay.
        _ => Duration::from_secs(1),
    };
    assert!(
        outcome.loss_window <= promised + SCHEDULING,
        "{mode}, collector {how:?}: lost records logged {:?} before the kill (promised {promised:?}): {outcome:?}",
        outcome.loss_window
    );
    // Every duplicate is one the crash explains (its first copy reached the collector in the
    // spool delay before the kill, or after it: in flight), or one of two batches in flight at
    // each collector boundary, or the one replayed batch whose cursor was not yet written.
    let duplicate_bound = ((2 * boundaries + 1) * BATCH) as u64;
    assert!(
        outcome.duplicates_before_window <= duplicate_bound,
        "{mode}, collector {how:?}: {} duplicates first received before the last {:?} (bound {duplicate_bound}): {outcome:?}",
        outcome.duplicates_before_window,
        spool_delay + SCHEDULING
    );
    outcome
}

fn crash_runs(mode: Mode, seed: u64) {
    let mut rng = seed;
    for how in [Collecting::Up, Collecting::Down, Collecting::Flapping] {
        for _ in 0..2 {
            crash_once(mode, how, &mut rng);
        }
    }
}

/// The kill moments' seed: `OLB_CRASH_SEED` to replay a run, else a new one each run (printed).
fn seed(mode: Mode) -> u64 {
    let seed = std::env::var("OLB_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            t.as_nanos() as u64 | 1
        });
    eprintln!("{mode}: OLB_CRASH_SEED={seed}");
    seed
}

#[test]
fn kill_9_in_failover_loses_at_most_the_promised_window() {
    crash_runs(Mode::Failover, seed(Mode::Failover));
}

#[test]
fn kill_9_in_durable_loses_at_most_the_spool_delay() {
    crash_runs(Mode::Durable, seed(Mode::Durable));
}
