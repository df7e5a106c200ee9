//! Replay: one spooled batch at a time, back to the collector, paced and judged by the failover
//! policy.

use std::time::Instant;

use super::Worker;
use super::ahead::Held;
use super::policy::{self, Attempt, ReplayVerdict};
use crate::export::ExportOutcome;
use crate::record::LogEvent;
use crate::spool::Spool;

impl Worker {
    /// Replays one batch from the spool if there is a backlog and the collector may be tried,
    /// giving it until `deadline`, or the export timeout from when it leaves. Returns whether it
    /// did any work.
    pub(super) fn replay_one(&mut self, deadline: Option<Instant>) -> bool {
        let batch_size = self.batcher.max_size();
        let may = |w: &Self| {
            w.sinks.spool.as_ref().is_some_and(Spool::has_backlog)
                && w.policy.may_replay(Instant::now())
        };
        if !may(self) {
            return false;
        }
        if !self.flights.is_empty() {
            // The live batches in flight first: their outcome decides whether the collector is up.
            self.settle();
            if !may(self) {
                return false;
            }
        }
        let Some(spool) = self.sinks.spool.as_mut() else {
            return false;
        };
        let rb = match spool.next_batch(batch_size) {
            Ok(Some(rb)) => rb,
            Ok(None) => return false,
            Err(e) => {
                let msg = format!("could not read the spool {}: {e}", spool.path().display());
                self.policy.unreadable_spool(Instant::now());
                self.diag.report(&self.link, &msg);
                return false;
            }
        };
        let n = rb.events.len() as u64;
        if n == 0 {
            // Nothing to send (lines skipped as delivered live or unreadable, or the cursor is at a
            // span on its way live): no attempt, so nothing for the policy to learn. The cursor
            // moves if the batch passed any line.
            let moved = rb.moved();
            if let Some(spool) = self.sinks.spool.as_mut() {
                if moved {
                    if let Err(e) = spool.ack(&rb) {
                        let msg = format!("could not update the spool cursor: {e}");
                        self.diag.report(&self.link, &msg);
                    }
                } else {
                    spool.abandon(&rb);
                }
            }
            return moved;
        }
        let outcome = {
            let now = Instant::now();
            let deadline = self.policy.deadline(
                now,
                deadline.unwrap_or_else(|| policy::deadline_after(now, self.export_timeout)),
            );
            let Some(mut otlp) = self.sinks.otlp.take() else {
                return false;
            };
            let request = otlp.prepare(rb.events.iter().map(LogEvent::record));
            let flight = otlp.send(request, deadline);
            // Its records are on disk already: only whether it is retried matters meanwhile.
            let mut none = None;
            let mut held = Held {
                records: &[],
                span: &mut none,
                retrying: flight.retrying(),
            };
            let outcome = otlp.wait(flight, &mut || self.tick(true, Some(&mut held)));
            self.sinks.otlp = Some(otlp);
            outcome
        };
        let attempt = match &outcome {
            ExportOutcome::Delivered { .. } => Attempt::Delivered,
            ExportOutcome::Failed {
                permanent: true, ..
            } => Attempt::Refused,
            ExportOutcome::Failed { .. } => Attempt::Failed,
        };
        self.count_failed_attempt(&outcome, n);
        let verdict = self.policy.replay(Instant::now(), rb.id(), attempt);
        match (verdict, outcome) {
            (ReplayVerdict::Ack, ExportOutcome::Delivered { rejected }) => {
                self.delivered(n, rejected, true);
            }
            (ReplayVerdict::Poison, ExportOutcome::Failed { reason, .. }) => {
                self.export_failed(n, &format!("spooled batch refused for good: {reason}"));
            }
            (_, outcome) => {
                // Kept for a later attempt (the policy keeps only failed batches).
                if let ExportOutcome::Failed {
                    reason,
                    permanent: true,
                } = outcome
                {
                    let msg = format!(
                        "collector refused a spooled batch ({reason}); replay paused until a live batch is accepted"
                    );
                    self.diag.report(&self.link, &msg);
                }
                if let Some(spool) = self.sinks.spool.as_mut() {
                    spool.abandon(&rb);
                }
                return true;
            }
        }
        if let Some(spool) = self.sinks.spool.as_mut()
            && let Err(e) = spool.ack(&rb)
        {
            let msg = format!("could not update the spool cursor: {e}");
            self.diag.report(&self.link, &msg);
        }
        true
    }
}
