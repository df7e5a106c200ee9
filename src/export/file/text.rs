//! The console's text format, for people (`LOG_STDOUT_FORMAT=text`): one line per record,
//!
//! ```text
//! 2026-06-19T08:14:22.105Z  INFO payment.service: Transaction processed amount=150.0 user_id=42 trace_id=4bf9...
//! ```
//!
//! time (UTC, milliseconds), level (right-aligned, coloured when asked), target, message, then the
//! attributes as `key=value` and the trace context. A record is always one line: control
//! characters in the message, keys and values are escaped (`\n`, `\u{1b}`); a string value with
//! spaces, quotes, `=` or escapes is quoted; structures and bytes are inline JSON (as in the JSON
//! lines). Secret values are masked as everywhere else.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use super::format::attribute_value;
use crate::record::{Record, Severity, Value};
use crate::redact::Redactor;

/// Whether console text is coloured: only the text format, only on a terminal, never with
/// `NO_COLOR`.
pub(crate) fn colour(text: bool, no_color: bool, is_terminal: bool) -> bool {
    text && !no_color && is_terminal
}

/// The ANSI colour of a level.
fn ansi(severity: Severity) -> &'static str {
    match severity {
        Severity::Trace => "\x1b[35m",
        Severity::Debug => "\x1b[34m",
        Severity::Info => "\x1b[32m",
        Severity::Warn => "\x1b[33m",
        Severity::Error => "\x1b[31m",
        Severity::Fatal => "\x1b[1;31m",
    }
}

/// Appends `s`, its control characters escaped.
fn escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
}

/// Appends a string value: as it is when it reads unambiguously, else quoted and escaped.
fn string_value(out: &mut String, s: &str) {
    let plain = !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\'));
    if plain {
        out.push_str(s);
    } else {
        let _ = write!(out, "{s:?}");
    }
}

fn hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// Appends the text line of `r` (ending in `\n`), coloured by level with `colour`.
pub(crate) fn encode(r: &Record<'_>, redactor: &Redactor, colour: bool, out: &mut String) {
    let time = UNIX_EPOCH + Duration::from_nanos(r.time);
    let _ = write!(out, "{}", humantime::format_rfc3339_millis(time));
    let level = r.severity.text();
    if colour {
        let _ = write!(
            out,
            " {:>pad$}{}{level}\x1b[0m ",
            "",
            ansi(r.severity),
            pad = 5 - level.len()
        );
    } else {
        let _ = write!(out, " {level:>5} ");
    }
    escaped(out, r.target);
    out.push_str(": ");
    match r.body_value {
        Some(v) => json(out, v, redactor),
        None => escaped(out, r.body),
    }
    if let Some(name) = r.event_name {
        out.push_str(" event_name=");
        string_value(out, name);
    }
    for (key, v) in r.attributes.iter() {
        out.push(' ');
        escaped(out, key.name);
        out.push('=');
        match redactor.mask(key, v) {
            Value::Str(s) => string_value(out, s),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Double(d) => {
                let _ = write!(out, "{d:?}");
            }
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            v => json(out, v, redactor),
        }
    }
    if let Some(t) = &r.trace {
        out.push_str(" trace_id=");
        hex(out, &t.trace_id);
        out.push_str(" span_id=");
        hex(out, &t.span_id);
    }
    out.push('\n');
}

/// A structured value, null or bytes as inline JSON (which escapes every control character).
fn json(out: &mut String, v: Value<'_>, redactor: &Redactor) {
    let mut buf = Vec::new();
    attribute_value(&mut buf, v, Some(redactor));
    out.push_str(&String::from_utf8_lossy(&buf));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Attr, AttrValue, LogEvent, TraceContext};

    fn event() -> LogEvent {
        LogEvent {
            time_unix_nano: 1_781_857_262_105_000_000,
            observed_time_unix_nano: 1_781_857_262_105_000_000,
            severity: Severity::Info,
            body: "Transaction processed".into(),
            target: "payment.service".into(),
            module_path: Some("pay".into()),
            file: Some("src/pay.rs".into()),
            line: Some(3),
            trace: Some(TraceContext {
                trace_id: [0x4b; 16],
                span_id: [0x0f; 8],
                flags: 1,
            }),
            attributes: vec![
                Attr {
                    key: "amount".into(),
                    value: AttrValue::Double(150.0),
                },
                Attr {
                    key: "user_id".into(),
                    value: AttrValue::Int(42),
                },
            ],
            dropped_attributes: 0,
            event_name: None,
            body_value: None,
        }
    }

    fn line(e: &LogEvent, colour: bool) -> String {
        let mut out = String::new();
        encode(&e.record(), &Redactor::new(["secret"]), colour, &mut out);
        out
    }

    #[test]
    fn a_record_is_one_line_of_time_level_target_message_fields_and_trace() {
        assert_eq!(
            line(&event(), false),
            format!(
                "2026-06-19T08:21:02.105Z  INFO payment.service: Transaction processed amount=150.0 user_id=42 trace_id={} span_id={}\n",
                "4b".repeat(16),
                "0f".repeat(8)
            )
        );
        let mut e = event();
        e.severity = Severity::Error;
        e.trace = None;
        assert_eq!(
            line(&e, true),
            "2026-06-19T08:21:02.105Z \x1b[31mERROR\x1b[0m payment.service: Transaction processed amount=150.0 user_id=42\n"
        );
        e.severity = Severity::Warn;
        assert!(
            line(&e, true).starts_with("2026-06-19T08:21:02.105Z  \x1b[33mWARN\x1b[0m payment")
        );
    }

    #[test]
    fn control_characters_never_break_the_line_and_odd_values_are_quoted() {
        let mut e = event();
        e.trace = None;
        e.body = "two\nlines\x1b[2J".into();
        e.target = "t\r".into();
        e.attributes = vec![
            Attr {
                key: "note".into(),
                value: AttrValue::Str("a b=\"c\"\n".into()),
            },
            Attr {
                key: "k\n".into(),
                value: AttrValue::Str("".into()),
            },
            Attr {
                key: "db_secret".into(),
                value: AttrValue::Str("hunter2".into()),
            },
            Attr {
                key: "order".into(),
                value: AttrValue::Map(vec![("id".into(), AttrValue::Str("x\ny".into()))].into()),
            },
        ];
        let l = line(&e, false);
        assert_eq!(l.matches('\n').count(), 1, "{l:?}");
        assert!(!l.contains('\x1b') && !l.contains('\r'), "{l:?}");
        assert!(l.contains(r#"t\r: two\nlines\u{1b}[2J note="a b=\"c\"\n" k\n="" db_secret=[REDACTED] order={"id":"x\ny"}"#), "{l:?}");
    }

    #[test]
    fn colour_only_for_text_on_a_terminal_without_no_color() {
        assert!(colour(true, false, true));
        assert!(!colour(true, true, true));
        assert!(!colour(true, false, false));
        assert!(!colour(false, false, true));
    }
}
