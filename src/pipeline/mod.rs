//! The bounded, non-blocking processor: queue (data) + control channel, one worker thread.
//!
//! ```text
//! app threads: capture -> Queue::try_push (never blocks; refused -> counted)
//!                                 |                      control: Flush / Shutdown (+ unpark)
//!                                 v                                 |
//! worker thread: pop -> Batcher (size | delay) -> OtlpExporter (prepare, send, wait)
//! ```

pub(crate) mod batch;
pub(crate) mod queue;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::Error;
use crate::compact::{Compact, Queued, Threads};
use crate::config::Config;
use crate::event::LogEvent;
use crate::level::{Audit, LevelControl, LevelHost, LevelState};
use crate::stats::DropReason;
use crate::stats::{Counters, Stats};
use queue::Queue;

#[allow(unused_imports)]
pub(crate) use worker::{MAX_BATCH_BYTES, Sinks, in_worker, mark_internal_thread};

/// What the worker is asked to do besides its batching.
pub(crate) enum Control {
    /// Export everything enqueued before the request, then answer.
    Flush {
        deadline: Instant,
        done: mpsc::SyncSender<()>,
    },
    /// Flush, then stop; records left when the deadline passes are counted as dropped.
    Shutdown {
        deadline: Instant,
        done: mpsc::SyncSender<()>,
    },
}

/// The next pipeline id: unique in the process, so a thread's records for one pipeline never
/// refer to what it sent another.
static NEXT_PIPELINE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// State shared by the logger, the guard and the worker.
pub(crate) struct Shared {
    pub queue: Queue<Queued>,
    /// Unique in the process: what a thread's records refer to earlier ones by.
    pub id: u64,
    /// Whether records keep their file, line and module.
    pub code_location: bool,
    pub counters: Arc<Counters>,
    pub levels: Arc<LevelControl>,
    closed: AtomicBool,
    installed: AtomicBool,
    worker_sleeping: AtomicBool,
    worker: OnceLock<Thread>,
    control: Mutex<Option<mpsc::Sender<Control>>>,
    pub batch_size: usize,
    pub flush_timeout: Duration,
    pub last_error: Mutex<Option<String>>,
    redactor: crate::redact::Redactor,
    /// Set at shutdown: exports still waiting at this instant are abandoned, so what they carry can
    /// still be spooled before the shutdown deadline.
    abort_exports_at: Mutex<Option<Instant>>,
}

impl Shared {
    /// The widest level the filter keeps.
    pub(crate) fn level(&self) -> log::LevelFilter {
        self.levels.max()
    }

    /// Whether this pipeline's logger is the one installed with `log::set_logger`.
    pub(crate) fn is_installed(&self) -> bool {
        self.installed.load(Ordering::Relaxed)
    }

    pub(crate) fn set_installed(&self) {
        self.installed.store(true, Ordering::Relaxed);
    }

    /// Queues a record made by the bridge itself (audit, panic), bypassing filters and shedding.
    pub(crate) fn push_internal(&self, event: LogEvent) -> bool {
        if self.is_closed() {
            self.counters.add_dropped(DropReason::Shutdown, 1);
            return false;
        }
        match self
            .queue
            .try_push(crate::compact::encode_queued(&event), false)
        {
            Ok(len) => {
                self.pushed(len);
                true
            }
            Err(_) => {
                self.counters.add_dropped(DropReason::QueueFull, 1);
                false
            }
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Wakes the worker if it sleeps and a full batch is waiting. Called after a successful push.
    ///
    /// Checked when the queue reaches a full batch, and then every 64th record: the fence is not
    /// free, and above a full batch the worker is almost always awake. (A push's length is a
    /// snapshot, so one push may see the queue jump past the exact batch size; the next 64th
    /// record catches that. The worker also wakes on its schedule.)
    #[inline]
    pub(crate) fn pushed(&self, queue_len: usize) {
        if queue_len >= self.batch_size
            && (queue_len == self.batch_size || queue_len.is_multiple_of(64))
            && {
                // Pairs with the worker's fence after it announces its sleep: either it sees this
                // record, or this sees it sleeping.
                std::sync::atomic::fence(Ordering::SeqCst);
                self.worker_sleeping.load(Ordering::SeqCst)
            }
            && self.worker_sleeping.swap(false, Ordering::SeqCst)
        {
            self.wake();
        }
    }

    fn wake(&self) {
        if let Some(t) = self.worker.get() {
            t.unpark();
        }
    }

    /// Takes the oldest queued record, in full: `threads` is the worker's, which every record taken
    /// goes through.
    pub(crate) fn pop(&self, threads: &mut Threads) -> Option<Compact> {
        Some(self.queue.pop()?.resolve(threads))
    }

    /// The masking of secret attribute values.
    pub(crate) fn redactor(&self) -> &crate::redact::Redactor {
        &self.redactor
    }

    /// Whether an export waiting now should be abandoned (shutdown is near its deadline).
    pub(crate) fn abort_exports(&self) -> bool {
        let at = match self.abort_exports_at.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        };
        at.is_some_and(|t| Instant::now() >= t)
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters
            .snapshot(self.queue.pushed() as u64, self.queue.len() as u64)
    }

    fn send(&self, msg: Control) -> Result<(), Error> {
        let sent = match self.control.lock() {
            Ok(guard) => guard.as_ref().map(|tx| tx.send(msg).is_ok()),
            Err(poisoned) => poisoned
                .into_inner()
                .as_ref()
                .map(|tx| tx.send(msg).is_ok()),
        };
        self.wake();
        match sent {
            Some(true) => Ok(()),
            _ => Err(Error::ShutDown),
        }
    }

    /// Exports everything enqueued so far; waits at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), Error> {
        if in_worker() {
            return Ok(());
        }
        if self.is_closed() {
            return Err(Error::ShutDown);
        }
        let (done, wait) = mpsc::sync_channel(1);
        self.send(Control::Flush {
            deadline: deadline_after(timeout),
            done,
        })?;
        wait.recv_timeout(timeout)
            .map_err(|_| Error::FlushTimeout(timeout))
    }

    /// Stops accepting records, flushes within `timeout`, stops the worker. Returns whether the worker
    /// finished in time.
    fn shutdown(&self, timeout: Duration) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        // Leave the last quarter of the timeout (at most 500 ms) for spooling what is in flight.
        let abort_at = deadline_after(timeout - (timeout / 4).min(Duration::from_millis(500)));
        match self.abort_exports_at.lock() {
            Ok(mut g) => *g = Some(abort_at),
            Err(p) => *p.into_inner() = Some(abort_at),
        }
        let (done, wait) = mpsc::sync_channel(1);
        let sent = self.send(Control::Shutdown {
            deadline: deadline_after(timeout),
            done,
        });
        let finished = sent.is_ok()
            && wait
                .recv_timeout(timeout.saturating_add(Duration::from_millis(200)))
                .is_ok();
        // Dropping the sender lets a worker that missed the message see the channel closed.
        match self.control.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        finished
    }
}

/// What a runtime level change ([`crate::Levels`]) needs from its pipeline: its state, and the
/// audit record queued like any other.
impl LevelHost for Shared {
    fn is_closed(&self) -> bool {
        Shared::is_closed(self)
    }

    fn is_installed(&self) -> bool {
        Shared::is_installed(self)
    }

    fn audit(&self, change: &Audit) {
        use crate::event::{Attr, AttrValue, Severity};
        let time = crate::capture::now_unix_nanos();
        let attr = |k: &'static str, v: &str| Attr {
            key: k.into(),
            value: AttrValue::Str(v.into()),
        };
        self.push_internal(LogEvent {
            time_unix_nano: time,
            observed_time_unix_nano: time,
            severity: Severity::Warn,
            body: "log level changed".into(),
            target: crate::level::AUDIT_TARGET.into(),
            module_path: None,
            file: None,
            line: None,
            trace: crate::capture::current_trace_context(),
            attributes: vec![
                attr("target", &change.target),
                attr("level", &change.level),
                attr("actor", &change.actor),
                attr("previous", &change.previous),
                attr("directives", &change.directives),
            ],
            dropped_attributes: 0,
        });
    }
}

/// `now + d`, saturating far in the future instead of overflowing.
pub(crate) fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// A running pipeline: what the guard holds.
pub(crate) struct Pipeline {
    pub shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the worker thread sending batches to `sinks`.
    pub(crate) fn start(
        config: &Config,
        counters: Arc<Counters>,
        sinks: Sinks,
        redactor: crate::redact::Redactor,
    ) -> Result<Self, Error> {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            queue: Queue::new(config.max_queue_size, config.high_watermark()),
            id: NEXT_PIPELINE.fetch_add(1, Ordering::Relaxed),
            code_location: config.code_location,
            counters,
            levels: Arc::new(LevelControl::new(
                LevelState::new(config.level, &config.directives),
                config.level_cooldown,
            )),
            closed: AtomicBool::new(false),
            installed: AtomicBool::new(false),
            worker_sleeping: AtomicBool::new(false),
            worker: OnceLock::new(),
            control: Mutex::new(Some(tx)),
            batch_size: config.effective_batch_size(),
            flush_timeout: config.shutdown_timeout,
            last_error: Mutex::new(None),
            redactor,
            abort_exports_at: Mutex::new(None),
        });
        let settings = worker::Settings {
            batch_size: config.effective_batch_size(),
            schedule_delay: config.schedule_delay,
            export_timeout: config.export_timeout,
        };
        let worker_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("otel-log-bridge".into())
            .spawn(move || worker::run(worker_shared, sinks, rx, settings))
            .map_err(Error::Worker)?;
        let _ = shared.worker.set(handle.thread().clone());
        Ok(Pipeline {
            shared,
            worker: Some(handle),
        })
    }

    /// Whether [`Pipeline::shutdown`] already ran.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.worker.is_none()
    }

    /// Flushes within `timeout` and stops the worker; joins it if it finished in time.
    pub(crate) fn shutdown(&mut self, timeout: Duration) -> bool {
        let Some(handle) = self.worker.take() else {
            return true;
        };
        let finished = self.shared.shutdown(timeout);
        if finished {
            let _ = handle.join();
        }
        finished
    }
}
