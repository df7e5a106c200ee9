//! Counters that tell the operator what happened to every record. Never logs through `log`.
//!
//! Producers touch these only on the rare paths (a drop); the hot path's only shared write is the
//! queue's own position counter, from which `enqueued` is derived.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a record was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The queue was full.
    QueueFull,
    /// The queue was above its high watermark and the record was DEBUG, INFO or TRACE.
    Shed,
    /// The export failed after its retries, timed out, or met a permanent error.
    ExportFailed,
    /// The collector answered with a partial success and rejected the record.
    Rejected,
    /// Logged after shutdown began, or still queued when the shutdown timeout passed.
    Shutdown,
    /// Logged from inside the formatting of another record, more than one level deep.
    Reentrant,
    /// Undelivered records removed from the spool to keep it within its size limit.
    SpoolFull,
    /// A local file (spool or rotating log) could not be written.
    IoError,
    /// A queued record could not be read back (a defect of this crate, never expected): it is
    /// counted here and never as exported.
    Unreadable,
}

impl DropReason {
    /// Every reason, in the order of [`Dropped`]'s fields.
    pub const ALL: [DropReason; 9] = [
        DropReason::QueueFull,
        DropReason::Shed,
        DropReason::ExportFailed,
        DropReason::Rejected,
        DropReason::Shutdown,
        DropReason::Reentrant,
        DropReason::SpoolFull,
        DropReason::IoError,
        DropReason::Unreadable,
    ];

    /// The reason's name as used in `loadgen`'s JSON line and the README.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Shed => "shed",
            DropReason::ExportFailed => "export_failed",
            DropReason::Rejected => "rejected",
            DropReason::Shutdown => "shutdown",
            DropReason::Reentrant => "reentrant",
            DropReason::SpoolFull => "spool_full",
            DropReason::IoError => "io_error",
            DropReason::Unreadable => "unreadable",
        }
    }
}

/// Records dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dropped {
    /// See [`DropReason::QueueFull`].
    pub queue_full: u64,
    /// See [`DropReason::Shed`].
    pub shed: u64,
    /// See [`DropReason::ExportFailed`].
    pub export_failed: u64,
    /// See [`DropReason::Rejected`].
    pub rejected: u64,
    /// See [`DropReason::Shutdown`].
    pub shutdown: u64,
    /// See [`DropReason::Reentrant`].
    pub reentrant: u64,
    /// See [`DropReason::SpoolFull`].
    pub spool_full: u64,
    /// See [`DropReason::IoError`].
    pub io_error: u64,
    /// See [`DropReason::Unreadable`].
    pub unreadable: u64,
}

impl Dropped {
    /// The count for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::QueueFull => self.queue_full,
            DropReason::Shed => self.shed,
            DropReason::ExportFailed => self.export_failed,
            DropReason::Rejected => self.rejected,
            DropReason::Shutdown => self.shutdown,
            DropReason::Reentrant => self.reentrant,
            DropReason::SpoolFull => self.spool_full,
            DropReason::IoError => self.io_error,
            DropReason::Unreadable => self.unreadable,
        }
    }

    /// All drops together.
    pub fn total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.get(*r)).sum()
    }
}

/// A snapshot of the pipeline's counters, from [`Guard::stats`](crate::Guard::stats).
///
/// Accounting identity: every record that passed the level filter is exactly one of exported,
/// dropped (by reason), queued (`queue_depth`) or being exported (`in_flight`). Records refused at the
/// queue (`queue_full`, `shed`, `reentrant`, refusals after shutdown) never count as `enqueued`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records accepted into the queue.
    pub enqueued: u64,
    /// Records the collector acknowledged.
    pub exported: u64,
    /// Records dropped, by reason.
    pub dropped: Dropped,
    /// Records in the queue now.
    pub queue_depth: u64,
    /// Records taken from the queue by the worker and not yet exported or dropped.
    pub in_flight: u64,
    /// Export attempts (RPCs) that failed, retried or not.
    pub export_errors: u64,
    /// Records whose message `Display` panicked; they are kept with a marker body.
    pub format_panics: u64,
    /// Records written to the spool (failover mode) because OTLP could not deliver them.
    pub spooled: u64,
    /// Records from the spool that the collector acknowledged.
    pub replayed: u64,
    /// Bytes in the spool's files now.
    pub spool_bytes: u64,
    /// Spool lines that could not be read back (torn by a crash, or corrupt), skipped.
    pub corrupt_skipped: u64,
    /// Records written to the rotating file (`tee` and `file-only` modes).
    pub written: u64,
    /// Per output: written, left out by its own threshold, failed.
    pub outputs: PerOutput,
    /// Times the rotating file was rotated: by size, or by another program (logrotate) moving or
    /// removing it.
    pub rotations: u64,
}

/// What one output did with the records it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutputCounts {
    /// Records it took: delivered to the collector (live or replayed), or written as lines.
    pub written: u64,
    /// Records it left out as below its own threshold (`LOG_OTLP_LEVEL`, ...).
    pub filtered: u64,
    /// Records an attempt could not deliver or write (then spooled, retried or dropped, as the
    /// mode says).
    pub failed: u64,
}

/// [`OutputCounts`] of each output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PerOutput {
    /// The OTLP exporter (live batches and replay).
    pub otlp: OutputCounts,
    /// The rotating log.
    pub file: OutputCounts,
    /// The console.
    pub console: OutputCounts,
}

impl PerOutput {
    /// The counts of `output`.
    pub fn get(&self, output: Output) -> OutputCounts {
        match output {
            Output::Otlp => self.otlp,
            Output::File => self.file,
            Output::Console => self.console,
        }
    }
}

/// An output of the pipeline that can have a threshold of its own ([`Levels::set_output`](crate::Levels::set_output)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Output {
    /// The OTLP exporter (and, in `failover`, the spool).
    Otlp = 0,
    /// The rotating log (`tee`, `file-only`).
    File = 1,
    /// The console (`LOG_STDOUT`).
    Console = 2,
}

impl Output {
    /// Its name: `otlp`, `file` or `stdout` (as in `LOG_STDOUT_LEVEL`).
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Otlp => "otlp",
            Output::File => "file",
            Output::Console => "stdout",
        }
    }

    /// The output named `otlp`, `file` or `stdout` (also `console`).
    pub fn from_name(name: &str) -> Option<Output> {
        match name.trim().to_ascii_lowercase().as_str() {
            "otlp" => Some(Output::Otlp),
            "file" => Some(Output::File),
            "stdout" | "console" => Some(Output::Console),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Per output: written, filtered, failed.
    outputs: [[AtomicU64; 3]; 3],
    exported: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
    export_errors: AtomicU64,
    format_panics: AtomicU64,
    in_flight: AtomicU64,
    spooled: AtomicU64,
    replayed: AtomicU64,
    spool_bytes: AtomicU64,
    corrupt: AtomicU64,
    written: AtomicU64,
    rotations: AtomicU64,
}

impl Counters {
    pub(crate) fn add_exported(&self, n: u64) {
        self.exported.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_dropped(&self, reason: DropReason, n: u64) {
        let i = DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.dropped[i].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_export_error(&self) {
        self.export_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_in_flight(&self, n: u64) {
        self.in_flight.store(n, Ordering::Relaxed);
    }

    pub(crate) fn add_spooled(&self, n: u64) {
        self.spooled.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_replayed(&self, n: u64) {
        self.replayed.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set_spool_bytes(&self, n: u64) {
        self.spool_bytes.store(n, Ordering::Relaxed);
    }

    pub(crate) fn add_corrupt(&self, n: u64) {
        self.corrupt.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_written(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_filtered(&self, output: Output, n: u64) {
        self.add_output(output, 1, n);
    }

    /// Records `output` took.
    pub(crate) fn add_output_written(&self, output: Output, n: u64) {
        self.add_output(output, 0, n);
    }

    /// Records an attempt of `output` could not deliver or write.
    pub(crate) fn add_output_failed(&self, output: Output, n: u64) {
        self.add_output(output, 2, n);
    }

    fn add_output(&self, output: Output, what: usize, n: u64) {
        if n > 0 {
            self.outputs[output as usize][what].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_rotations(&self, n: u64) {
        if n > 0 {
            self.rotations.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_format_panic(&self) {
        self.format_panics.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, enqueued: u64, queue_depth: u64) -> Stats {
        let d = |r: DropReason| {
            let i = DropReason::ALL.iter().position(|x| *x == r).unwrap_or(0);
            self.dropped[i].load(Ordering::Relaxed)
        };
        Stats {
            enqueued,
            exported: self.exported.load(Ordering::Relaxed),
            dropped: Dropped {
                queue_full: d(DropReason::QueueFull),
                shed: d(DropReason::Shed),
                export_failed: d(DropReason::ExportFailed),
                rejected: d(DropReason::Rejected),
                shutdown: d(DropReason::Shutdown),
                reentrant: d(DropReason::Reentrant),
                spool_full: d(DropReason::SpoolFull),
                io_error: d(DropReason::IoError),
                unreadable: d(DropReason::Unreadable),
            },
            queue_depth,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            export_errors: self.export_errors.load(Ordering::Relaxed),
            format_panics: self.format_panics.load(Ordering::Relaxed),
            spooled: self.spooled.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            spool_bytes: self.spool_bytes.load(Ordering::Relaxed),
            corrupt_skipped: self.corrupt.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            rotations: self.rotations.load(Ordering::Relaxed),
            outputs: {
                let counts = |o: usize| {
                    let [w, f, x] = &self.outputs[o];
                    OutputCounts {
                        written: w.load(Ordering::Relaxed),
                        filtered: f.load(Ordering::Relaxed),
                        failed: x.load(Ordering::Relaxed),
                    }
                };
                PerOutput {
                    otlp: counts(0),
                    file: counts(1),
                    console: counts(2),
                }
            },
        }
    }
}
