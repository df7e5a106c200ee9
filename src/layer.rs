//! The `tracing` side of the pipeline: a `tracing_subscriber::Layer` beside the `log::Log`, feeding
//! the same queue with the same guarantees.
//!
//! - [`LevelGate`] is the layer's own filter (a per-layer filter: other layers of the subscriber
//!   see what they want). It keeps out the transport's call sites and tells `tracing` every other
//!   call site is always of interest, so `tracing` asks nothing per event; its hint is the widest
//!   level kept, so `tracing` skips what no layer wants at the call site (a runtime level change
//!   has `tracing` ask again).
//! - [`EventLayer`] asks the level directives for each event and span (a `log` record's own level
//!   and target, for one `tracing-log` brought), never takes what the pipeline's own threads
//!   emit, captures each event it keeps on the calling thread and pushes it without waiting; with
//!   `LOG_SPAN_FIELDS`, it keeps each kept span's fields for the events inside it.

use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, Metadata, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

use crate::internal::{CaptureScope, capture_depth, is_internal_target, on_internal_thread};
use crate::pipeline::Shared;
use crate::record::Severity;
use crate::record::capture::from_tracing::{Settings, SpanFields, capture_event, log_level};
use crate::stats::DropReason;
use crate::{Builder, Error, Guard};

/// The layer [`Builder::build_layer`] returns: the [`EventLayer`] behind its [`LevelGate`], for a
/// subscriber `S` built on `tracing_subscriber::Registry`.
pub type TracingLayer<S> = Filtered<EventLayer, LevelGate, S>;

impl Builder {
    /// Starts the pipeline and returns it as a `tracing` layer, with its guard (cargo feature
    /// `tracing`):
    ///
    /// ```no_run
    /// use tracing_subscriber::prelude::*;
    ///
    /// let (layer, guard) = otel_log_bridge::builder().build_layer()?;
    /// tracing_subscriber::registry().with(layer).init();
    /// tracing::info!(user_id = 42, "signed in");
    /// # drop(guard);
    /// # Ok::<(), otel_log_bridge::Error>(())
    /// ```
    ///
    /// The layer filters with the pipeline's level directives (`RUST_LOG`, `LOG_LEVEL`, the
    /// [`Levels`](crate::Levels) handle, the admin API) on its own: the subscriber's other layers
    /// see what they want. `log` records reach it through `tracing-subscriber`'s `tracing-log`
    /// bridge, or, installed by hand, through [`Guard::logger`] on the same pipeline. Like
    /// [`build`](Self::build), `OTEL_SDK_DISABLED` does not apply: the caller installs the layer.
    pub fn build_layer<S>(self) -> Result<(TracingLayer<S>, Guard), Error>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let config = self.config()?;
        let span_fields = config.span_fields;
        let (logger, guard) = self.build_from(config)?;
        let shared = logger.shared;
        shared.set_tracing_layer();
        let layer = EventLayer {
            shared: shared.clone(),
            span_fields,
        };
        Ok((layer.with_filter(LevelGate { shared }), guard))
    }
}

/// The `tracing` level filter of a `log` one.
fn as_tracing(level: log::LevelFilter) -> tracing_core::LevelFilter {
    match level {
        log::LevelFilter::Off => tracing_core::LevelFilter::OFF,
        log::LevelFilter::Error => tracing_core::LevelFilter::ERROR,
        log::LevelFilter::Warn => tracing_core::LevelFilter::WARN,
        log::LevelFilter::Info => tracing_core::LevelFilter::INFO,
        log::LevelFilter::Debug => tracing_core::LevelFilter::DEBUG,
        log::LevelFilter::Trace => tracing_core::LevelFilter::TRACE,
    }
}

/// The filter of the pipeline's layer: its level directives, and never the pipeline's own threads
/// or the transport's targets (no feedback).
pub struct LevelGate {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LevelGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LevelGate")
            .field("level", &self.shared.level())
            .finish_non_exhaustive()
    }
}

impl<S> Filter<S> for LevelGate {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        // The directives and the thread are asked by the layer itself, for each event and span
        // ([`EventLayer::admits`]). A per-layer filter that says no leaves its "disabled" bit in
        // `tracing-subscriber`'s per-thread filter state until an event or span consumes it; with
        // no event after the question (`log_enabled!` through `tracing-log`, `tracing::enabled!`),
        // the next event of a call site that skips the question would read it and be lost.
        true
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        // `always`, so that `tracing` does not ask `enabled` for each event; the layer asks the
        // directives, which change at run time, itself. Never the transport's own targets.
        if is_internal_target(meta.target()) {
            Interest::never()
        } else {
            Interest::always()
        }
    }

    fn max_level_hint(&self) -> Option<tracing_core::LevelFilter> {
        Some(as_tracing(self.shared.level()))
    }
}

/// Captures the `tracing` events the pipeline's level directives keep into its queue.
pub struct EventLayer {
    shared: Arc<Shared>,
    /// `LOG_SPAN_FIELDS`: events carry their spans' fields.
    span_fields: bool,
}

impl std::fmt::Debug for EventLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLayer")
            .field("span_fields", &self.span_fields)
            .finish_non_exhaustive()
    }
}

impl EventLayer {
    /// Whether the pipeline's level directives keep what has `meta` (a `log` record's own, for
    /// one reaching `tracing` through `tracing-log`).
    #[inline]
    fn keeps_level(&self, meta: &Metadata<'_>) -> bool {
        self.shared
            .levels
            .enabled(log_level(meta.level()), meta.target())
    }

    /// [`keeps_level`](Self::keeps_level), on a thread that is not the pipeline's own.
    #[inline]
    fn admits_level(&self, meta: &Metadata<'_>) -> bool {
        self.keeps_level(meta) && !on_internal_thread()
    }

    /// [`admits_level`](Self::admits_level), and never the transport's own targets.
    fn admits(&self, meta: &Metadata<'_>) -> bool {
        self.admits_level(meta) && !is_internal_target(meta.target())
    }
}

impl<S> Layer<S> for EventLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !self.span_fields || capture_depth() > 0 || !self.admits(attrs.metadata()) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        // Formatted with no lock held (a `Debug` may emit an event reading this span), at capture
        // depth 1 like an event's fields.
        let mut fields = SpanFields::default();
        {
            let _scope = CaptureScope::enter();
            attrs.record(&mut fields);
        }
        // `replace`: another of our layers on the same registry may have stored its own.
        let _ = span.extensions_mut().replace(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if !self.span_fields || capture_depth() > 0 {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<SpanFields>().is_none() {
            // A span the pipeline does not keep.
            return;
        }
        // Formatted apart, with no lock held, then merged.
        let mut update = SpanFields::default();
        {
            let _scope = CaptureScope::enter();
            values.record(&mut update);
        }
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            fields.merge(update);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if capture_depth() >= 2 {
            // An event emitted while formatting an event emitted while formatting another: counted
            // if the pipeline would have kept it.
            let log_record = event.normalized_metadata();
            if self.admits(log_record.as_ref().unwrap_or(event.metadata())) {
                self.shared
                    .link
                    .counters
                    .add_dropped(DropReason::Reentrant, 1);
            }
            return;
        }
        let settings = Settings {
            code_location: self.shared.code_location,
            baggage: &self.shared.baggage,
        };
        // Pushed where it is made, inside the capture (a push never logs).
        let sheddable = Severity::from(event.metadata().level()) < Severity::Warn;
        let push = |queued| {
            self.shared.link.push(queued, sheddable);
        };
        // The internal targets are left out by the capture (it knows a callsite it has seen).
        let admit = |meta: &Metadata<'_>| self.admits_level(meta);
        let format_panicked = {
            let _scope = CaptureScope::enter();
            if self.span_fields {
                let mut spans = |each: &mut dyn FnMut(&'static str, crate::record::Value<'_>)| {
                    let Some(scope) = ctx.event_scope(event) else {
                        return;
                    };
                    // Another pipeline's layer on the same registry may have kept fields of a span
                    // this one's directives do not keep (the internal targets none keeps).
                    for span in scope.filter(|span| self.keeps_level(span.metadata())) {
                        if let Some(fields) = span.extensions().get::<SpanFields>() {
                            fields.each(each);
                        }
                    }
                };
                capture_event(event, &settings, Some(&mut spans), admit, push)
            } else {
                capture_event(event, &settings, None, admit, push)
            }
        };
        if format_panicked {
            self.shared.link.counters.add_format_panic();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracing_subscriber::prelude::*;

    use crate::Mode;
    use crate::internal::mark_internal_thread;

    /// A call site `tracing` has stopped asking the filter about (its interest is cached as
    /// "always") still keeps out what is logged on one of the pipeline's own threads.
    #[test]
    fn an_always_interested_call_site_still_keeps_out_the_pipelines_own_threads() {
        let dir = tempfile::tempdir().unwrap();
        let (layer, guard) = crate::builder()
            .read_env(false)
            .mode(Mode::FileOnly)
            .log_dir(dir.path())
            .level(log::LevelFilter::Info)
            .build_layer()
            .unwrap();
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        let emit = |body: &str| tracing::error!(target: "app", "{body}");
        tracing::dispatcher::with_default(&dispatch, || emit("from the application"));
        std::thread::scope(|s| {
            s.spawn(|| {
                mark_internal_thread();
                tracing::dispatcher::with_default(&dispatch, || emit("from a pipeline thread"));
            });
        });
        tracing::dispatcher::with_default(&dispatch, || emit("from the application again"));
        guard.flush(Duration::from_secs(30)).unwrap();
        let text: String = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
            .collect();
        assert_eq!(text.matches("from the application").count(), 2, "{text}");
        assert!(!text.contains("from a pipeline thread"), "{text}");
    }
}
