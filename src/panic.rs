//! The opt-in panic hook: a panic becomes a FATAL record (severity 21) with the active trace context,
//! flushed through the pipeline with a short bounded wait, before the previously installed hook runs.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::clock::now_unix_nanos;
use crate::internal::{capture_depth, on_internal_thread};
use crate::pipeline::Shared;
use crate::record::capture::current_trace_context;
use crate::record::{Attr, AttrValue, LogEvent, Severity};

/// Target (scope name) of panic records.
pub const PANIC_TARGET: &str = "panic";
/// Longest wait for the panic record to be exported (or spooled) before the process goes on dying.
const PANIC_FLUSH: Duration = Duration::from_secs(2);

/// Installs the hook for `shared`'s pipeline, chaining the hook installed before it.
pub(crate) fn install(shared: &Arc<Shared>) {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A panic inside the capture of a record (a `Display` that panics) is handled there.
        if !on_internal_thread()
            && capture_depth() == 0
            && let Some(shared) = weak.upgrade()
            && !shared.is_closed()
        {
            shared.push_internal(panic_event(info));
            let _ = shared.flush(shared.flush_timeout.min(PANIC_FLUSH));
        }
        previous(info);
    }));
}

fn panic_event(info: &std::panic::PanicHookInfo<'_>) -> LogEvent {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned());
    let thread = std::thread::current();
    let thread_name = thread.name().unwrap_or("<unnamed>").to_owned();
    let str_attr = |k: &'static str, v: String| Attr {
        key: k.into(),
        value: AttrValue::Str(v.into()),
    };
    let mut attributes = vec![
        str_attr("exception.type", "panic".to_owned()),
        str_attr("exception.message", message.clone()),
        str_attr("thread.name", thread_name),
    ];
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        attributes.push(str_attr("exception.stacktrace", backtrace.to_string()));
    }
    let now = now_unix_nanos();
    LogEvent {
        time_unix_nano: now,
        observed_time_unix_nano: now,
        severity: Severity::Fatal,
        body: format!("panic: {message}").into(),
        target: PANIC_TARGET.into(),
        module_path: None,
        file: info.location().map(|l| l.file().to_owned().into()),
        line: info.location().map(|l| l.line()),
        trace: current_trace_context(),
        attributes,
        dropped_attributes: 0,
        event_name: None,
        body_value: None,
    }
}
