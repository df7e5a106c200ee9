//! Redaction of secrets in attribute values: an attribute whose key contains one of the configured
//! words (case-insensitive) has its value replaced by `[REDACTED]` before it is exported, spooled,
//! written to a file or printed. Applied on the worker thread, so it costs the callers nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::record::names::MAX_STRINGS;
#[cfg(test)]
use crate::record::{AttrValue, LogEvent};
use crate::record::{Key, Value};

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

#[derive(Debug, Clone)]
pub(crate) struct Redactor {
    /// Lowercase words; empty: redaction off.
    words: Vec<String>,
    /// Bytes (either case) that begin a word: only there can a word match.
    starts: [bool; 256],
    /// The shortest word's length: shorter keys are never secret.
    shortest: usize,
    /// The verdict on each interned key, by id (0: not asked yet, 1: no, 2: yes): interned keys are
    /// the common case, each decided once. Shared by clones, which have the same words.
    verdicts: Arc<[AtomicU8]>,
}

impl Redactor {
    pub(crate) fn new<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> Self {
        let words: Vec<String> = words
            .into_iter()
            .map(|w| w.as_ref().trim().to_ascii_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        let mut starts = [false; 256];
        for w in &words {
            let b = w.as_bytes()[0];
            starts[usize::from(b.to_ascii_lowercase())] = true;
            starts[usize::from(b.to_ascii_uppercase())] = true;
        }
        let shortest = words.iter().map(String::len).min().unwrap_or(usize::MAX);
        Redactor {
            words,
            starts,
            shortest,
            verdicts: (0..MAX_STRINGS).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    /// [`is_secret`](Self::is_secret) for a key read from a queued record: an interned key is
    /// decided once.
    #[inline]
    pub(crate) fn is_secret_key(&self, key: Key<'_>) -> bool {
        let k = key.name;
        match key.id {
            Some(id) => match self.verdicts.get(usize::from(id)) {
                Some(v) => match v.load(Ordering::Relaxed) {
                    1 => false,
                    2 => true,
                    _ => {
                        let secret = self.is_secret(k);
                        v.store(if secret { 2 } else { 1 }, Ordering::Relaxed);
                        secret
                    }
                },
                None => self.is_secret(k),
            },
            None => self.is_secret(k),
        }
    }

    /// `value`, or [`REDACTED`] when `key` is secret: what is exported, spooled and written.
    #[inline]
    pub(crate) fn mask<'v>(&self, key: Key<'_>, value: Value<'v>) -> Value<'v> {
        if self.is_secret_key(key) {
            Value::Str(REDACTED)
        } else {
            value
        }
    }

    /// Whether `key` contains one of the words, ignoring ASCII case. Runs on the worker for every
    /// attribute whose key is not interned (and once per interned key), so it tries the words only
    /// where a key byte can begin one.
    pub(crate) fn is_secret(&self, key: &str) -> bool {
        let key = key.as_bytes();
        if key.len() < self.shortest {
            return false;
        }
        (0..=key.len() - self.shortest).any(|i| {
            self.starts[usize::from(key[i])]
                && self.words.iter().any(|w| {
                    let w = w.as_bytes();
                    key.len() - i >= w.len() && key[i..i + w.len()].eq_ignore_ascii_case(w)
                })
        })
    }

    /// Masks the secret values of `event` (tests: the worker masks records as it reads them).
    #[cfg(test)]
    pub(crate) fn apply(&self, event: &mut LogEvent) {
        for a in &mut event.attributes {
            if self.is_secret(&a.key) {
                a.value = AttrValue::Str(REDACTED.into());
            } else {
                self.apply_value(&mut a.value);
            }
        }
    }

    /// Masks the values of secret keys inside the maps of `v` (tests).
    #[cfg(test)]
    fn apply_value(&self, v: &mut AttrValue) {
        match v {
            AttrValue::Array(a) => a.iter_mut().for_each(|v| self.apply_value(v)),
            AttrValue::Map(m) => {
                for (k, v) in m.iter_mut() {
                    if self.is_secret(k) {
                        *v = AttrValue::Str(REDACTED.into());
                    } else {
                        self.apply_value(v);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Attr, Severity, names};

    #[test]
    fn interned_keys_get_the_same_verdict_every_time_and_clones_share_it() {
        let r = Redactor::new(DEFAULT_REDACT_KEYS);
        let secret = names::id("db_password").unwrap();
        let plain = names::id("user_name").unwrap();
        let clone = r.clone();
        for _ in 0..3 {
            assert!(r.is_secret_key(Key {
                name: "db_password",
                id: Some(secret)
            }));
            assert!(clone.is_secret_key(Key {
                name: "db_password",
                id: Some(secret)
            }));
            assert!(!r.is_secret_key(Key {
                name: "user_name",
                id: Some(plain)
            }));
        }
        assert!(r.is_secret_key(Key::plain("X-Api_Key")));
        assert!(!r.is_secret_key(Key::plain("monkey")));
        // Another redactor decides by its own words.
        let none = Redactor::new::<&str>([]);
        assert!(!none.is_secret_key(Key {
            name: "db_password",
            id: Some(secret)
        }));
    }

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
            event_name: None,
            body_value: None,
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

    #[test]
    fn the_fast_match_agrees_with_a_plain_substring_search() {
        let r = Redactor::new(DEFAULT_REDACT_KEYS);
        let naive = |key: &str| {
            let key = key.to_ascii_lowercase();
            DEFAULT_REDACT_KEYS.iter().any(|w| key.contains(w))
        };
        for key in [
            "",
            "t",
            "token",
            "TOKEN",
            "xtoken",
            "tokenx",
            "toke",
            "my_api_KEY",
            "api-key",
            "cookies",
            "set_Cookie",
            "pass",
            "passwd",
            "PassWord1",
            "order_id",
            "secre",
            "ssecret",
            "apikey",
            "authorizatio",
            "x_authorization_y",
            "é_token",
            "ünicode",
        ] {
            assert_eq!(r.is_secret(key), naive(key), "{key:?}");
        }
        assert!(!Redactor::new::<&str>([]).is_secret("password"));
    }
}
