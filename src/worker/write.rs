//! Taking records from the queue and writing them to the local outputs and the spool: the
//! worker's paths that cost no network time.

use std::time::{Duration, Instant};

use super::link::Link;
use super::policy;
use super::sinks::{Lines, Local, Role, encode_lines, encode_text, wants};
use crate::level::Threshold;
use crate::record::Record;
use crate::record::queued::Checked;
use crate::redact::Redactor;
use crate::spool::{Append, Span, Spool};
use crate::stats::DropReason;

/// Minimum interval between two diagnostics written to stderr.
const DIAGNOSTIC_INTERVAL: Duration = Duration::from_secs(30);

/// Takes the oldest queued record that can be read, read whole once; one that cannot be read is
/// counted ([`DropReason::Unreadable`]) and dropped, never exported.
pub(super) fn take(link: &Link) -> Option<Checked> {
    loop {
        match link.queue.pop()?.check() {
            Ok(checked) => return Some(checked),
            Err(_) => link.counters.add_dropped(DropReason::Unreadable, 1),
        }
    }
}

/// The records of a batch.
pub(super) fn records(batch: &[Checked]) -> impl Iterator<Item = Record<'_>> {
    batch.iter().map(Checked::record)
}

/// Errors for the guard (`last_export_error`) and, at most every [`DIAGNOSTIC_INTERVAL`], stderr.
#[derive(Default)]
pub(super) struct Diagnostics {
    last_printed: Option<Instant>,
}

impl Diagnostics {
    pub(super) fn report(&mut self, link: &Link, message: &str) {
        link.set_last_error(message);
        let now = Instant::now();
        if self
            .last_printed
            .is_none_or(|t| now.duration_since(t) >= DIAGNOSTIC_INTERVAL)
        {
            self.last_printed = Some(now);
            eprintln!("otel-log-bridge: {message}");
        }
    }
}

/// Writes `batch` to every local output, its lines encoded once into `lines`, and counts what each
/// output's role says.
pub(super) fn write_locals(
    link: &Link,
    locals: &mut [Local],
    batch: &[Checked],
    (service_name, redactor): (&str, &Redactor),
    lines: &mut Vec<u8>,
    diag: &mut Diagnostics,
) {
    if locals.is_empty() || batch.is_empty() {
        return;
    }
    // Without thresholds of their own, every output takes the whole batch: JSON encoded once.
    let filtering = locals.iter().any(|l| l.filter.active());
    lines.clear();
    if !filtering && locals.iter().any(|l| l.lines == Lines::Json) {
        encode_lines(records(batch), service_name, redactor, lines);
    }
    let mut own = Vec::new();
    let mut text = String::new();
    for local in locals {
        let filter = &local.filter;
        let taken = || records(batch).filter(|r| !filtering || wants(filter, r));
        let n = if filtering {
            let n = taken().count() as u64;
            link.counters
                .add_filtered(filter.output(), batch.len() as u64 - n);
            if n == 0 {
                continue;
            }
            n
        } else {
            batch.len() as u64
        };
        let written = match local.lines {
            Lines::Json if !filtering => local.sink.write_lines(lines),
            Lines::Json => {
                own.clear();
                encode_lines(taken(), service_name, redactor, &mut own);
                local.sink.write_lines(&own)
            }
            Lines::Text { colour } => {
                text.clear();
                encode_text(taken(), redactor, colour, &mut text);
                local.sink.write_lines(text.as_bytes())
            }
        };
        link.counters.add_rotations(local.sink.take_rotations());
        match &written {
            Ok(()) => link.counters.add_output_written(filter.output(), n),
            Err(_) => link.counters.add_output_failed(filter.output(), n),
        }
        match (written, local.role) {
            (_, Role::Copy) => {}
            (Ok(()), _) => link.counters.add_written(n),
            (Err(e), role) => {
                if role == Role::Destination {
                    link.counters.add_dropped(DropReason::IoError, n);
                }
                let msg = format!(
                    "could not write {n} records to {}: {e}",
                    local.sink.describe()
                );
                diag.report(link, &msg);
            }
        }
    }
}

/// Leaves out of `batch` the records below the exporter's own threshold (`filter`), counted: what
/// the exporter and, in `failover`, the spool would not take.
pub(super) fn keep_for_otlp(link: &Link, filter: &Threshold, batch: &mut Vec<Checked>) {
    if !filter.active() {
        return;
    }
    let before = batch.len();
    batch.retain(|c| wants(filter, &c.record()));
    link.counters
        .add_filtered(filter.output(), (before - batch.len()) as u64);
}

/// Appends `batch` to the spool, as `kind`. A failed write of the backlog loses it (`io_error`);
/// of records written ahead of their export, it loses nothing yet (they are still in memory).
/// Returns where they were written (`Ok(None)` for an empty batch).
pub(super) fn spool_records(
    link: &Link,
    spool: &mut Spool,
    batch: &[Checked],
    (redactor, kind): (&Redactor, Append),
    diag: &mut Diagnostics,
) -> Result<Option<Span>, ()> {
    let written = spool.append_lines(batch.len(), kind, |buf, service| {
        encode_lines(records(batch), service, redactor, buf);
    });
    written.map_err(|e| {
        let n = batch.len() as u64;
        if kind == Append::Backlog {
            link.counters.add_dropped(DropReason::IoError, n);
        }
        let msg = format!(
            "could not spool {n} records to {}: {e}",
            spool.path().display()
        );
        diag.report(link, &msg);
    })
}

/// Moves queued records to the local outputs and the spool (as backlog) while an export waits and
/// the queue is above the spill threshold, down to it (with `all`, the whole queue), at most
/// `max_batches` batches: memory absorbs bursts while the collector keeps up, the disk takes over
/// when it does not. Returns whether the queue is down to the threshold.
pub(super) fn spill(
    link: &Link,
    sinks: (&mut [Local], &mut Spool, &str, &Redactor),
    otlp_filter: &Threshold,
    (batch_size, all, max_batches): (usize, bool, usize),
    lines: &mut Vec<u8>,
    diag: &mut Diagnostics,
) -> bool {
    let (locals, spool, service_name, redactor) = sinks;
    let threshold = if all {
        0
    } else {
        policy::spill_threshold(
            link.queue.capacity(),
            link.queue.high_watermark(),
            batch_size,
        )
    };
    for _ in 0..max_batches {
        if link.queue.len() <= threshold {
            break;
        }
        let mut spilled = Vec::with_capacity(batch_size);
        while spilled.len() < batch_size {
            match take(link) {
                Some(q) => spilled.push(q),
                None => break,
            }
        }
        link.room_made();
        if spilled.is_empty() {
            break;
        }
        write_locals(
            link,
            locals,
            &spilled,
            (service_name, redactor),
            lines,
            diag,
        );
        keep_for_otlp(link, otlp_filter, &mut spilled);
        let kind = (redactor, Append::Backlog);
        if spool_records(link, spool, &spilled, kind, diag).is_err() {
            break;
        }
    }
    link.queue.len() <= threshold
}
