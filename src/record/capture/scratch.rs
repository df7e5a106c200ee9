//! Per-thread scratch buffers and bounded formatting: what capture writes through before a record
//! is copied into its slot.

use std::cell::RefCell;
use std::fmt::Write as _;

thread_local! {
    /// Where a message or a `Display` value is formatted before it is copied into the record.
    pub(super) static FORMAT_BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
    /// Where a record's variable part is written before it is copied into the record.
    pub(super) static PAYLOAD_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A scratch buffer grown past this by a huge message is released rather than kept.
const MAX_KEPT_BUFFER: usize = 64 * 1024;

/// How much output past the limit is still counted before formatting is stopped: a `Display` that
/// writes in many small pieces costs bounded time, while one huge piece is counted exactly at once.
const MAX_COUNTED_CUT: usize = 16 * 1024 * 1024;

/// Text a bounded formatting appends to: a `String`, or a record's variable part (`Vec<u8>`), which
/// is only ever given whole `&str`s, so what is appended is UTF-8.
pub(super) trait Text {
    fn text_len(&self) -> usize;
    fn push_text(&mut self, s: &str);
}

impl Text for String {
    fn text_len(&self) -> usize {
        self.len()
    }
    fn push_text(&mut self, s: &str) {
        self.push_str(s)
    }
}

impl Text for Vec<u8> {
    fn text_len(&self) -> usize {
        self.len()
    }
    fn push_text(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes())
    }
}

/// Writes at most `limit` bytes (whole characters) into `buf` past its first `base` bytes,
/// counting what it leaves out; stops the formatting (with an error) at the next piece once more
/// than [`MAX_COUNTED_CUT`] bytes were left out.
struct Bounded<'a, B: Text> {
    buf: &'a mut B,
    /// Bytes that may still be written: 0 once something was cut.
    room: usize,
    cut: usize,
    stopped: bool,
}

impl<'a, B: Text> Bounded<'a, B> {
    fn new(buf: &'a mut B, base: usize, limit: usize) -> Self {
        let written = buf.text_len().saturating_sub(base);
        Bounded {
            room: limit.saturating_sub(written),
            buf,
            cut: 0,
            stopped: false,
        }
    }

    /// A piece that does not fit, or any piece once one did not: what fits of it (whole
    /// characters) is written, the rest counted.
    #[cold]
    fn cut(&mut self, s: &str) -> std::fmt::Result {
        if self.cut > MAX_COUNTED_CUT {
            self.stopped = true;
            return Err(std::fmt::Error);
        }
        let mut end = self.room.min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.buf.push_text(&s[..end]);
        self.room = 0;
        self.cut += s.len() - end;
        Ok(())
    }
}

impl<B: Text> std::fmt::Write for Bounded<'_, B> {
    #[inline]
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if s.len() > self.room || self.cut != 0 {
            return self.cut(s);
        }
        self.room -= s.len();
        self.buf.push_text(s);
        Ok(())
    }
}

/// Appends whole `&str`s to a [`Text`] (the cut mark).
struct Append<'a, B: Text>(&'a mut B);

impl<B: Text> std::fmt::Write for Append<'_, B> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.push_text(s);
        Ok(())
    }
}

/// Formats `args` into `buf`, which holds at most `limit` bytes afterwards (those it had count),
/// marking a cut.
pub(super) fn write_bounded(buf: &mut String, args: &std::fmt::Arguments<'_>, limit: usize) {
    write_bounded_after(buf, 0, args, limit)
}

/// Formats `args` at the end of `buf`, at most `limit` bytes past its first `base`, marking a cut.
pub(super) fn write_bounded_after<B: Text>(
    buf: &mut B,
    base: usize,
    args: &std::fmt::Arguments<'_>,
    limit: usize,
) {
    let mut w = Bounded::new(buf, base, limit);
    // A `Display` returning `Err` leaves what was written so far; keep it.
    let _ = w.write_fmt(*args);
    let (cut, stopped) = (w.cut, w.stopped);
    let mut mark = Append(buf);
    if stopped {
        let _ = write!(mark, "…[truncated over {cut} bytes]");
    } else if cut > 0 {
        let _ = write!(mark, "…[truncated {cut} bytes]");
    }
}

/// A buffer that can be emptied and reused.
pub(super) trait Scratch: Default {
    fn capacity(&self) -> usize;
    fn clear(&mut self);
}

impl Scratch for String {
    fn capacity(&self) -> usize {
        String::capacity(self)
    }
    fn clear(&mut self) {
        String::clear(self)
    }
}

impl Scratch for Vec<u8> {
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
    fn clear(&mut self) {
        Vec::clear(self)
    }
}

/// Runs `f` with this thread's buffer `key`, emptied (a fresh one if a `Display` that logs has it
/// busy); a buffer grown large by a huge record is released afterwards.
pub(super) fn with_buffer<B: Scratch + 'static, R>(
    key: &'static std::thread::LocalKey<RefCell<B>>,
    mut f: impl FnMut(&mut B) -> R,
) -> R {
    let kept = key.try_with(|b| {
        let mut b = b.try_borrow_mut().ok()?;
        if b.capacity() > MAX_KEPT_BUFFER {
            // Left large by a `Display` that panicked mid-format.
            *b = B::default();
        }
        b.clear();
        let r = f(&mut b);
        if b.capacity() > MAX_KEPT_BUFFER {
            *b = B::default();
        }
        Some(r)
    });
    match kept {
        Ok(Some(r)) => r,
        // The thread's buffer is busy (a `Display` that logs) or gone: `f` did not run; a fresh one.
        _ => f(&mut B::default()),
    }
}

/// [`with_buffer`] of the formatting buffer.
pub(super) fn with_scratch<R>(f: impl FnMut(&mut String) -> R) -> R {
    with_buffer(&FORMAT_BUFFER, f)
}
