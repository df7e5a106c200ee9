//! The only place a `log::Record` is read, on the calling thread: it becomes the record's queued
//! form (see `compact`), which the worker reads in place.
//!
//! - one clock read gives both `time_unix_nano` and `observed_time_unix_nano`;
//! - nothing is allocated for a typical record: the message is formatted into a per-thread buffer
//!   and copied into the record (a static message is not even copied), targets and keys are
//!   interned ids;
//! - key-values keep their types (i64/u64 -> int, u64 above `i64::MAX` -> string, f64 -> double, bool,
//!   str -> string, anything else -> its `Display`);
//! - the active OpenTelemetry span context is read without cloning the current `Context`;
//! - a `Display` impl that panics while the message is formatted does not unwind out of `log()`:
//!   the body becomes a marker text and the record is still kept.

use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use log::kv::{self, VisitSource, VisitValue};
use opentelemetry::trace::TraceContextExt as _;

use crate::compact::{Has, Stamp, TraceField, Writer};
use crate::event::{Severity, TraceContext};

/// Body used when formatting the message panicked.
pub(crate) const FORMAT_PANIC_BODY: &str = "<otel-log-bridge: formatting the message panicked>";

/// Nanoseconds since the Unix epoch, 0 if the clock is before it.
#[cfg(target_os = "linux")]
#[inline]
pub(crate) fn now_unix_nanos() -> u64 {
    // What `SystemTime::now` reads, without its conversions.
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 {
        return portable_now_unix_nanos();
    }
    u64::try_from(ts.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(ts.tv_nsec).unwrap_or(0))
}

/// Nanoseconds since the Unix epoch, 0 if the clock is before it.
#[cfg(not(target_os = "linux"))]
pub(crate) fn now_unix_nanos() -> u64 {
    portable_now_unix_nanos()
}

fn portable_now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The span context active on this thread, if a valid one is.
pub(crate) fn current_trace_context() -> Option<TraceContext> {
    // `map_current` panics when OpenTelemetry's thread-local is gone (a record logged from another
    // thread-local's destructor): then there is no context to read.
    catch_unwind(read_trace_context).ok().flatten()
}

fn read_trace_context() -> Option<TraceContext> {
    opentelemetry::Context::map_current(|cx| {
        if !cx.has_active_span() {
            return None;
        }
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| TraceContext {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8(),
        })
    })
}

/// What a captured record says of its thread (its span context and time, for a pipeline): what
/// the thread remembers once the record is in the queue ([`Carried::sent`]). A record that is not
/// queued changes nothing: the worker still knows what the thread sent before.
#[must_use = "call `sent` after a successful push"]
pub(crate) struct Carried(Option<Last>);

/// A thread's last queued record that named its number: for which pipeline, its span context and
/// its time.
#[derive(Clone, Copy)]
struct Last {
    pipeline: u64,
    trace: Option<TraceContext>,
    time: u64,
}

impl Carried {
    /// The record is in the queue: the thread's next records for that pipeline may refer to its
    /// span context and time. (Between the capture and this call no other code runs on the
    /// thread, so its state is reachable here whenever the capture could read it.)
    pub(crate) fn sent(self) {
        if let Some(last) = self.0 {
            let _ = SENT.try_with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    s.last = Some(last);
                }
            });
        }
    }
}

/// A number for each thread that logs, unique among live threads and reused after a thread exits:
/// the worker keeps the last span context and time of each by number.
struct ThreadNumber(u32);

/// The next number never handed out, and numbers given back by exited threads.
static NEXT_THREAD: AtomicU32 = AtomicU32::new(0);
static FREE_THREADS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Threads numbered; a thread past it always sends its span context and time in full.
const MAX_THREADS: u32 = 1 << 16;

impl ThreadNumber {
    fn take() -> Option<ThreadNumber> {
        let reused = FREE_THREADS.lock().ok().and_then(|mut f| f.pop());
        let n = reused.or_else(|| {
            NEXT_THREAD
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < MAX_THREADS).then_some(n + 1)
                })
                .ok()
        })?;
        Some(ThreadNumber(n))
    }
}

impl Drop for ThreadNumber {
    fn drop(&mut self) {
        // Every record of this thread was pushed before: a thread given the number later pushes
        // after them, and its first record carries its span context and time in full.
        if let Ok(mut f) = FREE_THREADS.lock() {
            f.push(self.0);
        }
    }
}

/// This thread's number, and what its last queued record that named it said.
struct Sent {
    number: Option<ThreadNumber>,
    /// No number was left for this thread.
    unnumbered: bool,
    last: Option<Last>,
}

thread_local! {
    static SENT: std::cell::RefCell<Sent> = const {
        std::cell::RefCell::new(Sent {
            number: None,
            unnumbered: false,
            last: None,
        })
    };
}

/// How the record gives its thread, `trace` and time `now`: by reference to the thread's previous
/// record when `pipeline` (the queue's id; `None` for a nested record) already has it.
fn stamp<'t>(
    trace: Option<&'t TraceContext>,
    now: u64,
    pipeline: Option<u64>,
) -> (Stamp<'t>, Carried) {
    let Some(pipeline) = pipeline else {
        return (Stamp::alone(trace), Carried(None));
    };
    let numbered = SENT.try_with(|s| {
        let mut s = s.try_borrow_mut().ok()?;
        if s.number.is_none() && !s.unnumbered {
            s.number = ThreadNumber::take();
            // Numbers run out only past `MAX_THREADS` live threads: then don't ask again.
            s.unnumbered = s.number.is_none();
        }
        let n = s.number.as_ref()?.0;
        let last = s.last.filter(|l| l.pipeline == pipeline);
        let trace_field = match (trace, last) {
            (Some(_), Some(l)) if l.trace.as_ref() == trace => TraceField::Same,
            (Some(t), _) => TraceField::Full(t),
            (None, _) => TraceField::None,
        };
        let stamp = Stamp {
            thread: Some(n),
            trace: trace_field,
            // Shorter than the whole time (8 bytes) below 2^49 ns, about six days.
            delta: last
                .and_then(|l| now.checked_sub(l.time))
                .filter(|d| *d < 1 << 49),
        };
        Some((
            stamp,
            Carried(Some(Last {
                pipeline,
                trace: trace.copied(),
                time: now,
            })),
        ))
    });
    numbered
        .ok()
        .flatten()
        .unwrap_or((Stamp::alone(trace), Carried(None)))
}

/// Captures `record` into its queued form in `w` (a new writer), ready to be written into a queue
/// slot; says whether formatting the message panicked, and what to remember once the record is in
/// the queue of pipeline `pipeline` (`None`: refer to no earlier record). Never panics on account
/// of the record's contents. Without `code_location`, the file, line and module are left out.
pub(crate) fn capture_into(
    record: &log::Record<'_>,
    w: &mut Writer,
    pipeline: Option<u64>,
    code_location: bool,
) -> (bool, Carried) {
    let now = now_unix_nanos();
    let trace = current_trace_context();
    let (module, file, line) = if code_location {
        (record.module_path(), record.file(), record.line())
    } else {
        (None, None, None)
    };
    let (stamp, carried) = stamp(trace.as_ref(), now, pipeline);
    w.header(
        Severity::from(record.level()),
        now,
        now,
        Has {
            module: module.is_some(),
            file: file.is_some(),
            line: line.is_some(),
        },
        stamp,
    );
    let module_static = record.module_path_static();
    match module_static {
        Some(m) if m == record.target() => w.name_static(m),
        _ => w.name(record.target()),
    }
    match (module_static, module) {
        (Some(m), Some(_)) => w.name_static(m),
        (_, Some(m)) => w.name(m),
        (_, None) => {}
    }
    match (record.file_static(), file) {
        (Some(f), Some(_)) => w.name_static(f),
        (_, Some(f)) => w.name(f),
        (_, None) => {}
    }
    if let Some(l) = line {
        w.varint(u64::from(l));
    }
    let format_panicked = write_body(w, record.args());
    let mut attrs = AttrWriter {
        w,
        kept: 0,
        dropped: 0,
        bytes: 0,
    };
    // A visitor that never fails; a panicking `Display` or an error from a broken `Source` only
    // ends the visit early (a pair is written whole or not at all).
    let _ = catch_unwind(AssertUnwindSafe(|| record.key_values().visit(&mut attrs)));
    let dropped = attrs.dropped;
    w.end(dropped);
    (format_panicked, carried)
}

/// [`capture_into`] a new writer, referring to no earlier record.
#[cfg(any(test, feature = "bench-internals"))]
pub(crate) fn capture(record: &log::Record<'_>) -> (Writer, bool) {
    let mut w = Writer::new();
    let (panicked, Carried(_)) = capture_into(record, &mut w, None, true);
    (w, panicked)
}

/// [`capture`], read back into an event (tests).
#[cfg(test)]
pub(crate) fn capture_event(record: &log::Record<'_>) -> (crate::event::LogEvent, bool) {
    let (w, panicked) = capture(record);
    (crate::compact::decode(&w.finish()), panicked)
}

thread_local! {
    static FORMAT_BUFFER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// A scratch buffer grown past this by a huge message is released rather than kept.
const MAX_KEPT_BUFFER: usize = 64 * 1024;
/// Longest message kept, in bytes; a longer one is cut at a character boundary and marked.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest string attribute value kept, in bytes; longer ones are cut and marked.
pub(crate) const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most attributes kept per record; the rest are counted in `dropped_attributes_count`.
pub(crate) const MAX_ATTRIBUTES: usize = 128;
/// Most bytes of attribute keys and string values kept per record; past it, attributes are counted
/// as dropped, so a record stays far below what one export request can carry.
pub(crate) const MAX_ATTRIBUTE_BYTES: usize = 256 * 1024;

/// How much output past the limit is still counted before formatting is stopped: a `Display` that
/// writes in many small pieces costs bounded time, while one huge piece is counted exactly at once.
const MAX_COUNTED_CUT: usize = 16 * 1024 * 1024;

/// Writes at most `limit` bytes (whole characters) into `buf`, counting what it leaves out; stops
/// the formatting (with an error) at the next piece once more than [`MAX_COUNTED_CUT`] bytes were
/// left out.
struct Bounded<'a> {
    buf: &'a mut String,
    limit: usize,
    cut: usize,
    stopped: bool,
}

impl std::fmt::Write for Bounded<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.cut > MAX_COUNTED_CUT {
            self.stopped = true;
            return Err(std::fmt::Error);
        }
        let room = self.limit.saturating_sub(self.buf.len());
        if s.len() <= room && self.cut == 0 {
            self.buf.push_str(s);
        } else {
            let mut end = room.min(s.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            if self.cut == 0 {
                self.buf.push_str(&s[..end]);
                self.cut += s.len() - end;
            } else {
                self.cut += s.len();
            }
        }
        Ok(())
    }
}

/// Formats `args` into `buf`, at most `limit` bytes, marking a cut.
fn write_bounded(buf: &mut String, args: &std::fmt::Arguments<'_>, limit: usize) {
    let mut w = Bounded {
        buf,
        limit,
        cut: 0,
        stopped: false,
    };
    // A `Display` returning `Err` leaves what was written so far; keep it.
    let _ = w.write_fmt(*args);
    if w.stopped {
        let cut = w.cut;
        let _ = write!(w.buf, "…[truncated over {cut} bytes]");
    } else if w.cut > 0 {
        let cut = w.cut;
        let _ = write!(w.buf, "…[truncated {cut} bytes]");
    }
}

/// Runs `f` with this thread's scratch buffer, emptied (a fresh one if a `Display` that logs has it
/// busy); a buffer grown large by a huge message is released afterwards.
fn with_scratch<R>(f: impl FnOnce(&mut String) -> R) -> R {
    let mut f = Some(f);
    let kept = FORMAT_BUFFER.try_with(|b| {
        let mut b = b.try_borrow_mut().ok()?;
        if b.capacity() > MAX_KEPT_BUFFER {
            // Left large by a `Display` that panicked mid-format.
            *b = String::new();
        }
        b.clear();
        let r = (f.take()?)(&mut b);
        if b.capacity() > MAX_KEPT_BUFFER {
            *b = String::new();
        }
        Some(r)
    });
    match (kept, f) {
        (Ok(Some(r)), _) => r,
        (_, Some(f)) => f(&mut String::new()),
        (_, None) => unreachable!("the closure ran only if it returned"),
    }
}

/// Writes the message: a static one by address, else formatted (bounded) and copied. Returns
/// whether formatting panicked (the body is then a marker text).
fn write_body(w: &mut Writer, args: &std::fmt::Arguments<'_>) -> bool {
    if let Some(s) = args.as_str() {
        w.body_static(s);
        return false;
    }
    let formatted = catch_unwind(AssertUnwindSafe(|| {
        with_scratch(|buf| {
            write_bounded(buf, args, MAX_BODY_BYTES);
            // Written only once formatting is done, so a panic leaves nothing half-written.
            w.body_text(buf);
        })
    }));
    match formatted {
        Ok(()) => false,
        Err(_) => {
            w.body_static(FORMAT_PANIC_BODY);
            true
        }
    }
}

/// Writes attributes: how many are kept, how many were left out, and the string bytes kept.
struct AttrWriter<'a> {
    w: &'a mut Writer,
    kept: usize,
    dropped: u32,
    bytes: usize,
}

impl AttrWriter<'_> {
    fn drop_one(&mut self) {
        self.dropped = self.dropped.saturating_add(1);
    }

    /// Takes `n` bytes (key and string value) from the record's budget, if they fit.
    fn fits(&mut self, n: usize) -> bool {
        if self.bytes + n > MAX_ATTRIBUTE_BYTES {
            return false;
        }
        self.bytes += n;
        true
    }

    /// A string value, bounded, if the record's string budget has room for it.
    fn string(&mut self, key: &str, value: &str) {
        if value.len() > MAX_VALUE_BYTES {
            return with_scratch(|buf| {
                write_bounded(buf, &format_args!("{value}"), MAX_VALUE_BYTES);
                self.keep(key, buf)
            });
        }
        self.keep(key, value);
    }

    /// A string value already bounded, if the record's string budget has room for it.
    fn keep(&mut self, key: &str, value: &str) {
        if !self.fits(key.len() + value.len()) {
            return self.drop_one();
        }
        self.kept += 1;
        self.w.key(key);
        self.w.str_value(value);
    }

    /// Any other value as its `Display`, bounded as it is formatted.
    fn display(&mut self, key: &str, value: &dyn std::fmt::Display) {
        // Formatted first: a panic leaves nothing written.
        with_scratch(|buf| {
            write_bounded(buf, &format_args!("{value}"), MAX_VALUE_BYTES);
            self.keep(key, buf)
        })
    }
}

impl<'kvs> VisitSource<'kvs> for AttrWriter<'_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        if self.kept >= MAX_ATTRIBUTES {
            self.drop_one();
            return Ok(());
        }
        let mut typed = ValueWriter {
            a: self,
            key: key.as_str(),
            done: false,
        };
        let visited = value.visit(&mut typed).is_ok() && typed.done;
        if !visited {
            self.display(key.as_str(), &value);
        }
        Ok(())
    }
}

/// Writes one key-value pair with the value's own type.
struct ValueWriter<'a, 'b, 'k> {
    a: &'a mut AttrWriter<'b>,
    key: &'k str,
    done: bool,
}

impl ValueWriter<'_, '_, '_> {
    fn scalar(&mut self, write: impl FnOnce(&mut Writer)) {
        self.done = true;
        if !self.a.fits(self.key.len()) {
            return self.a.drop_one();
        }
        self.a.kept += 1;
        self.a.w.key(self.key);
        write(self.a.w);
    }

    fn string(&mut self, s: &str) {
        self.a.string(self.key, s);
        self.done = true;
    }

    /// An integer that fits `i64` as an int, else as its decimal string.
    fn integer<T: TryInto<i64> + std::fmt::Display + Copy>(&mut self, value: T) {
        match value.try_into() {
            Ok(v) => self.scalar(|w| w.int(v)),
            Err(_) => {
                self.a.display(self.key, &value);
                self.done = true;
            }
        }
    }
}

impl<'v> VisitValue<'v> for ValueWriter<'_, '_, '_> {
    fn visit_any(&mut self, value: kv::Value<'_>) -> Result<(), kv::Error> {
        self.a.display(self.key, &value);
        self.done = true;
        Ok(())
    }
    fn visit_null(&mut self) -> Result<(), kv::Error> {
        self.string("null");
        Ok(())
    }
    fn visit_u64(&mut self, value: u64) -> Result<(), kv::Error> {
        self.integer(value);
        Ok(())
    }
    fn visit_i64(&mut self, value: i64) -> Result<(), kv::Error> {
        self.scalar(|w| w.int(value));
        Ok(())
    }
    fn visit_u128(&mut self, value: u128) -> Result<(), kv::Error> {
        self.integer(value);
        Ok(())
    }
    fn visit_i128(&mut self, value: i128) -> Result<(), kv::Error> {
        self.integer(value);
        Ok(())
    }
    fn visit_f64(&mut self, value: f64) -> Result<(), kv::Error> {
        self.scalar(|w| w.double(value));
        Ok(())
    }
    fn visit_bool(&mut self, value: bool) -> Result<(), kv::Error> {
        self.scalar(|w| w.bool(value));
        Ok(())
    }
    fn visit_str(&mut self, value: &str) -> Result<(), kv::Error> {
        self.string(value);
        Ok(())
    }
    fn visit_char(&mut self, value: char) -> Result<(), kv::Error> {
        let mut buf = [0u8; 4];
        self.string(value.encode_utf8(&mut buf));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AttrValue, LogEvent};
    use std::borrow::Cow;

    fn capture_of(record: &log::Record<'_>) -> LogEvent {
        capture_event(record).0
    }

    #[test]
    fn static_message_is_borrowed_and_types_are_kept() {
        let kvs: [(&str, kv::Value<'_>); 6] = [
            ("amount", kv::Value::from(150.0f64)),
            ("user_id", kv::Value::from(42i64)),
            ("big", kv::Value::from(u64::MAX)),
            ("ok", kv::Value::from(true)),
            ("currency", kv::Value::from("EUR")),
            ("small", kv::Value::from(7u64)),
        ];
        let record = log::Record::builder()
            .args(format_args!("Transaction processed"))
            .level(log::Level::Warn)
            .target("payment.service")
            .module_path_static(Some("my_app::pay"))
            .file_static(Some("src/pay.rs"))
            .line(Some(12))
            .key_values(&kvs)
            .build();
        let e = capture_of(&record);
        assert!(matches!(e.body, Cow::Borrowed("Transaction processed")));
        assert_eq!(e.severity, Severity::Warn);
        assert_eq!(e.severity.number(), 13);
        assert_eq!(e.target, "payment.service");
        assert_eq!(e.module_path.as_deref(), Some("my_app::pay"));
        assert_eq!(e.file.as_deref(), Some("src/pay.rs"));
        assert_eq!(e.line, Some(12));
        assert!(e.time_unix_nano > 1_600_000_000_000_000_000);
        assert_eq!(e.time_unix_nano, e.observed_time_unix_nano);
        assert_eq!(e.trace, None);
        let values: Vec<_> = e
            .attributes
            .iter()
            .map(|a| (&*a.key, a.value.clone()))
            .collect();
        assert_eq!(
            values,
            vec![
                ("amount", AttrValue::Double(150.0)),
                ("user_id", AttrValue::Int(42)),
                ("big", AttrValue::Str(u64::MAX.to_string().into())),
                ("ok", AttrValue::Bool(true)),
                ("currency", AttrValue::Str("EUR".into())),
                ("small", AttrValue::Int(7)),
            ]
        );
    }

    #[test]
    fn severity_mapping_follows_the_data_model() {
        let expected = [
            (log::Level::Trace, 1, "TRACE"),
            (log::Level::Debug, 5, "DEBUG"),
            (log::Level::Info, 9, "INFO"),
            (log::Level::Warn, 13, "WARN"),
            (log::Level::Error, 17, "ERROR"),
        ];
        for (level, number, text) in expected {
            let s = Severity::from(level);
            assert_eq!((s.number(), s.text()), (number, text));
        }
        assert_eq!(
            (Severity::Fatal.number(), Severity::Fatal.text()),
            (21, "FATAL")
        );
    }

    struct Panics;
    impl std::fmt::Display for Panics {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("broken Display")
        }
    }

    #[test]
    fn a_refused_record_leaves_the_thread_referring_to_what_the_worker_knows() {
        // Its span context and its time.
        use crate::compact::Threads;
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
        };
        let in_span = |n: u8| {
            opentelemetry::Context::new()
                .with_remote_span_context(SpanContext::new(
                    TraceId::from_bytes([9; 16]),
                    SpanId::from_bytes([n; 8]),
                    TraceFlags::SAMPLED,
                    true,
                    TraceState::default(),
                ))
                .attach()
        };
        let pipeline = Some(u64::MAX - 11);
        let mut worker = Threads::default();
        // Captures a record in span `n`; "pushes" it (the worker resolves it) or refuses it.
        let mut log = |n: u8, queued: bool| {
            let _cx = in_span(n);
            let mut w = Writer::new();
            let before = now_unix_nanos();
            let (_, carried) = capture_into(
                &log::Record::builder()
                    .args(format_args!("in {n}"))
                    .level(log::Level::Info)
                    .target("t")
                    .build(),
                &mut w,
                pipeline,
                true,
            );
            let after = now_unix_nanos();
            let q = w.finish_queued();
            let reference = q.refers_to_thread_trace();
            if queued {
                carried.sent();
                let e = crate::compact::decode(&q.resolve(&mut worker));
                assert_eq!(e.trace.map(|t| t.span_id), Some([n; 8]), "{n}");
                // The time, relative to the thread's last queued record, comes back whole.
                assert!((before..=after).contains(&e.time_unix_nano), "{n}");
            } else {
                drop(carried);
            }
            reference
        };
        assert!(!log(1, true));
        assert!(log(1, true));
        // Span 2 refused twice: carried in full each time, never remembered.
        assert!(!log(2, false));
        assert!(!log(2, false));
        // Span 1 again: still by reference (the worker knows it), and resolved to span 1.
        assert!(log(1, true));
        assert!(!log(2, true));
        assert!(log(2, true));
    }

    #[test]
    fn a_panicking_display_does_not_unwind_out_of_capture() {
        let value = Panics;
        let (e, panicked) = capture_event(
            &log::Record::builder()
                .args(format_args!("value: {value}"))
                .level(log::Level::Info)
                .target("t")
                .build(),
        );
        assert!(panicked);
        assert_eq!(e.body, FORMAT_PANIC_BODY);
    }

    #[test]
    fn attribute_bytes_per_record_are_bounded_and_the_rest_counted() {
        let big = "v".repeat(60 * 1024);
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        let kvs: Vec<(&str, kv::Value<'_>)> = keys
            .iter()
            .map(|k| (k.as_str(), kv::Value::from(big.as_str())))
            .collect();
        let e = capture_of(
            &log::Record::builder()
                .args(format_args!("x"))
                .level(log::Level::Info)
                .target("t")
                .key_values(&kvs)
                .build(),
        );
        assert_eq!(e.attributes.len(), 4, "4 x 60 KiB fit in 256 KiB");
        assert_eq!(e.dropped_attributes, 6);
    }

    #[test]
    fn a_display_only_value_becomes_its_string() {
        let kvs: [(&str, kv::Value<'_>); 1] = [("addr", kv::Value::from_display(&"127.0.0.1:80"))];
        let record = log::Record::builder()
            .args(format_args!("x"))
            .level(log::Level::Info)
            .target("t")
            .key_values(&kvs)
            .build();
        let e = capture_of(&record);
        assert_eq!(e.attributes[0].value, AttrValue::Str("127.0.0.1:80".into()));
    }
}
