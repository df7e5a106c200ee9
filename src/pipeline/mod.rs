//! A running pipeline: [`Shared`], what the logger, the guard, the level handle, the panic hook and
//! the admin server hold of it (the worker's [`Link`], the level filter, and the control channel),
//! and [`Pipeline`], which owns the worker thread.
//!
//! ```text
//! app threads: capture -> Link::push (never blocks; refused -> counted)
//!                                 |                      control: Flush / Shutdown (+ unpark)
//!                                 v                                 |
//! worker thread: pop -> batch (size | delay) -> sinks (OTLP, local outputs, spool)
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::Error;
use crate::config::Config;
use crate::internal::on_internal_thread;
use crate::level::{Audit, LevelControl, LevelHost};
use crate::queue::QueueError;
use crate::record::LogEvent;
use crate::record::queued::Queued;
use crate::stats::{Counters, Stats};
use crate::worker::link::Link;
use crate::worker::policy::deadline_after;
use crate::worker::sinks::Sinks;
use crate::worker::{self, Control};

/// What the logger, the guard and the handles share.
pub(crate) struct Shared {
    /// The worker's side: queue, doorbell, counters, last error.
    pub link: Arc<Link>,
    /// Whether records keep their file, line and module.
    pub code_location: bool,
    /// Which Baggage entries records copy.
    pub baggage: crate::record::capture::Baggage,
    pub levels: Arc<LevelControl>,
    /// Whether this pipeline's logger is the one installed with `log::set_logger`.
    installed: AtomicBool,
    /// Whether a `tracing` layer of this pipeline was built.
    #[cfg(feature = "tracing")]
    tracing_layer: AtomicBool,
    /// To the worker; taken at shutdown.
    control: Mutex<Option<mpsc::Sender<Control>>>,
    /// Bound on `log::logger().flush()` (`LOG_SHUTDOWN_TIMEOUT`).
    pub flush_timeout: Duration,
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

    /// Notes that a `tracing` layer of this pipeline was built.
    #[cfg(feature = "tracing")]
    pub(crate) fn set_tracing_layer(&self) {
        self.tracing_layer.store(true, Ordering::Relaxed);
    }

    /// Queues a record made by the bridge itself (audit, panic), bypassing shedding.
    pub(crate) fn push_internal(&self, event: LogEvent) -> bool {
        self.link.push(Queued::of(&event.record()), false)
    }

    /// Whether shutdown began.
    pub(crate) fn is_closed(&self) -> bool {
        self.link.queue.is_closed()
    }

    pub(crate) fn stats(&self) -> Stats {
        self.link.stats()
    }

    fn send(&self, msg: Control) -> Result<(), Error> {
        let sent = match self.control.lock() {
            Ok(guard) => guard.as_ref().map(|tx| tx.send(msg).is_ok()),
            Err(poisoned) => poisoned
                .into_inner()
                .as_ref()
                .map(|tx| tx.send(msg).is_ok()),
        };
        self.link.wake();
        match sent {
            Some(true) => Ok(()),
            _ => Err(Error::ShutDown),
        }
    }

    /// Exports everything enqueued so far; waits at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), Error> {
        if on_internal_thread() {
            return Ok(());
        }
        if self.is_closed() {
            return Err(Error::ShutDown);
        }
        let (done, wait) = mpsc::sync_channel(1);
        self.send(Control::Flush {
            deadline: deadline_after(std::time::Instant::now(), timeout),
            done,
        })?;
        wait.recv_timeout(timeout)
            .map_err(|_| Error::FlushTimeout(timeout))
    }

    /// Stops accepting records, flushes within `timeout`, stops the worker. Returns whether the
    /// worker finished in time.
    fn shutdown(&self, timeout: Duration) -> bool {
        self.link.begin_shutdown(timeout);
        let (done, wait) = mpsc::sync_channel(1);
        let sent = self.send(Control::Shutdown {
            deadline: deadline_after(std::time::Instant::now(), timeout),
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

    fn max_changed(&self, max: log::LevelFilter) {
        if self.is_installed() {
            log::set_max_level(max);
        }
        #[cfg(feature = "tracing")]
        if self.tracing_layer.load(Ordering::Relaxed) {
            // `tracing` caches each call site's interest and the widest level of all layers: ask
            // again. `log` records reaching `tracing` (its `tracing-log` bridge) are first held to
            // `log::max_level`: raised to what `tracing` now wants, never lowered (another logger
            // may want more).
            tracing_core::callsite::rebuild_interest_cache();
            let wanted = tracing_core::LevelFilter::current()
                .into_level()
                .map_or(log::LevelFilter::Off, |l| {
                    crate::record::capture::from_tracing::log_level(&l).to_level_filter()
                });
            if !self.is_installed() && wanted > log::max_level() {
                log::set_max_level(wanted);
            }
        }
    }

    fn audit(&self, change: &Audit) {
        use crate::record::{Attr, AttrValue, Severity};
        let time = crate::clock::now_unix_nanos();
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
            trace: crate::record::capture::current_trace_context(),
            attributes: vec![
                attr("target", &change.target),
                attr("level", &change.level),
                attr("actor", &change.actor),
                attr("previous", &change.previous),
                attr("directives", &change.directives),
            ],
            dropped_attributes: 0,
            event_name: None,
            body_value: None,
        });
    }
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
        levels: Arc<LevelControl>,
        counters: Arc<Counters>,
        sinks: Sinks,
    ) -> Result<Self, Error> {
        let (tx, rx) = mpsc::channel();
        let batch_size = config.effective_batch_size();
        let link = Link::new(
            config.max_queue_size,
            config.high_watermark(),
            batch_size,
            counters,
            match config.queue_full {
                crate::config::QueueFull::Block(wait) => Some(wait),
                _ => None,
            },
        )
        .map_err(|e| match e {
            QueueError::Alloc { capacity, bytes } => Error::QueueAlloc { capacity, bytes },
            QueueError::Capacity { capacity } => Error::InvalidConfig {
                setting: "OTEL_BLRP_MAX_QUEUE_SIZE",
                reason: format!("{capacity}: expected 1 to {}", crate::queue::MAX_CAPACITY),
            },
        })?;
        let link = Arc::new(link);
        let shared = Arc::new(Shared {
            link: link.clone(),
            code_location: config.code_location,
            baggage: crate::record::capture::Baggage::of(&config.baggage_keys),
            levels,
            installed: AtomicBool::new(false),
            #[cfg(feature = "tracing")]
            tracing_layer: AtomicBool::new(false),
            control: Mutex::new(Some(tx)),
            flush_timeout: config.shutdown_timeout,
        });
        let settings = worker::Settings {
            batch_size,
            schedule_delay: config.schedule_delay,
            export_timeout: config.export_timeout,
            durable: config.mode == crate::config::Mode::Durable,
            spool_max_delay: config.files.spool_max_delay,
        };
        let handle = std::thread::Builder::new()
            .name("otel-log-bridge".into())
            .spawn(move || worker::run(link, sinks, rx, settings))
            .map_err(Error::Worker)?;
        shared.link.set_worker(handle.thread().clone());
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
