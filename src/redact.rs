//! Redaction of secrets in attribute values: an attribute whose key contains one of the configured
//! words (case-insensitive) has its value replaced by `[REDACTED]` before it is exported, spooled,
//! written to a file or printed. Applied on the worker thread, so it costs the callers nothing.

use crate::event::{AttrValue, LogEvent};

/// What a redacted value becomes.
pub const REDACTED: &str = "[REDACTED]";

/// Words that mark an attribute key as secret, by default (`LOG_REDACT_KEYS`).
pub const DEFAULT_REDACT_KEYS: [&str; 8] = [
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
];

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Redactor {
    /// Lowercase words; empty: redaction off.
    words: Vec<String>,
}

impl Redactor {
    pub(crate) fn new<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> Self {
        Redactor {
            words: words
                .into_iter()
                .map(|w| w.as_ref().trim().to_ascii_lowercase())
                .filter(|w| !w.is_empty())
                .collect(),
        }
    }

    fn is_secret(&self, key: &str) -> bool {
        let key = key.as_bytes();
        self.words.iter().any(|w| {
            let w = w.as_bytes();
            w.len() <= key.len()
                && key
                    .windows(w.len())
                    .any(|window| window.eq_ignore_ascii_case(w))
        })
    }

    pub(crate) fn apply(&self, event: &mut LogEvent) {
        for a in &mut event.attributes {
            if self.is_secret(&a.key) {
                a.value = AttrValue::Str(REDACTED.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attr, Severity};

    #[test]
    fn secret_keys_are_masked_case_insensitively_and_others_kept() {
        let mut e = LogEvent {
            time_unix_nano: 0,
            observed_time_unix_nano: 0,
            severity: Severity::Info,
            body: "login".into(),
            target: "t".into(),
            module_path: None,
            file: None,
            line: None,
            trace: None,
            attributes: vec![
                Attr {
                    key: "db_Password".into(),
                    value: AttrValue::Str("hunter2".into()),
                },
                Attr {
                    key: "Authorization".into(),
                    value: AttrValue::Str("Bearer x".into()),
                },
                Attr {
                    key: "api_key".into(),
                    value: AttrValue::Int(1234),
                },
                Attr {
                    key: "user_id".into(),
                    value: AttrValue::Int(42),
                },
            ],
            dropped_attributes: 0,
        };
        Redactor::new(DEFAULT_REDACT_KEYS).apply(&mut e);
        let values: Vec<_> = e.attributes.iter().map(|a| a.value.clone()).collect();
        assert_eq!(
            values,
            [
                AttrValue::Str(REDACTED.into()),
                AttrValue::Str(REDACTED.into()),
                AttrValue::Str(REDACTED.into()),
                AttrValue::Int(42)
            ]
        );
        let mut kept = e.clone();
        kept.attributes[3].value = AttrValue::Str("x".into());
        Redactor::new(Vec::<String>::new()).apply(&mut kept);
        assert_eq!(kept.attributes[3].value, AttrValue::Str("x".into()));
    }
}
