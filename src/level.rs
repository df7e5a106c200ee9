//! Level filtering and its runtime control.
//!
//! The filter is a default level (`LOG_LEVEL`) plus per-target directives in `env_logger` syntax
//! (`RUST_LOG`, e.g. `info,my_crate::db=debug,hyper=off`), parsed and matched by `env_filter`.
//! `log::max_level` is kept at the widest level any directive enables, so a record no directive wants
//! costs one atomic load. [`Levels`] changes the filter at run time: validated, refused within a
//! cooldown, and audited with a WARN record (target `logging.audit`) through the pipeline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use log::LevelFilter;

use crate::clock::now_unix_nanos;
use crate::record::capture::current_trace_context;
use crate::record::{Attr, AttrValue, LogEvent, Severity};

/// Target of the audit records written for every level change.
pub const AUDIT_TARGET: &str = "logging.audit";

/// One filter directive: records of `target` (and its sub-modules) are kept up to `level`; `target:
/// None` is the default for every other target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The target prefix (module path or explicit target), or `None` for the default.
    pub target: Option<String>,
    /// The most verbose level kept.
    pub level: LevelFilter,
}

impl std::fmt::Display for Directive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = self.level.as_str().to_ascii_lowercase();
        match &self.target {
            None => write!(f, "{level}"),
            Some(t) => write!(f, "{t}={level}"),
        }
    }
}

/// Formats directives back into `env_logger` syntax.
pub fn format_directives(directives: &[Directive]) -> String {
    directives
        .iter()
        .map(Directive::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `env_logger` directives (`info,my_crate::db=debug,hyper=off`), strictly: `env_filter`
/// validates the whole spec, and a message filter (`/regex`) is refused.
pub(crate) fn parse_directives(spec: &str) -> Result<Vec<Directive>, String> {
    if spec.contains('/') {
        return Err(format!(
            "{spec:?}: message filters ('/regex') are not supported"
        ));
    }
    env_filter::Builder::new()
        .try_parse(spec)
        .map_err(|e| format!("{spec:?}: {e}"))?;
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let directive = match part.split_once('=') {
            Some((target, level)) => Directive {
                target: Some(target.trim().to_owned()),
                level: if level.trim().is_empty() {
                    LevelFilter::Trace
                } else {
                    level
                        .trim()
                        .parse()
                        .map_err(|_| format!("{part:?}: invalid level"))?
                },
            },
            None => match part.parse::<LevelFilter>() {
                Ok(level) => Directive {
                    target: None,
                    level,
                },
                Err(_) => Directive {
                    target: Some(part.to_owned()),
                    level: LevelFilter::Trace,
                },
            },
        };
        out.push(directive);
    }
    Ok(out)
}

/// A compiled filter: the default, the per-target directives, and `env_filter` to match them.
pub(crate) struct LevelState {
    directives: Vec<Directive>,
    filter: Option<env_filter::Filter>,
    max: LevelFilter,
}

impl LevelState {
    /// `directives`: at most one without a target (the default); later directives for the same
    /// target replace earlier ones.
    pub(crate) fn new(default: LevelFilter, targets: &[Directive]) -> LevelState {
        let mut directives = vec![Directive {
            target: None,
            level: default,
        }];
        for d in targets {
            match directives.iter_mut().find(|e| e.target == d.target) {
                Some(e) => e.level = d.level,
                None => directives.push(d.clone()),
            }
        }
        let max = directives
            .iter()
            .map(|d| d.level)
            .max()
            .unwrap_or(LevelFilter::Off);
        let filter = (directives.len() > 1).then(|| {
            let mut b = env_filter::Builder::new();
            for d in &directives {
                b.filter(d.target.as_deref(), d.level);
            }
            b.build()
        });
        LevelState {
            directives,
            filter,
            max,
        }
    }

    fn default_level(&self) -> LevelFilter {
        self.directives
            .iter()
            .find(|d| d.target.is_none())
            .map_or(LevelFilter::Off, |d| d.level)
    }

    /// The level that applies to `target` (the longest matching directive, else the default).
    fn level_for(&self, target: &str) -> LevelFilter {
        self.directives
            .iter()
            .filter_map(|d| d.target.as_deref().map(|t| (t, d.level)))
            .filter(|(t, _)| target.starts_with(t))
            .max_by_key(|(t, _)| t.len())
            .map_or(self.default_level(), |(_, l)| l)
    }
}

/// The filter shared by the logger and the [`Levels`] handles.
pub(crate) struct LevelControl {
    /// The widest level any directive keeps, and [`FILTERED`] when `state` has a per-target filter
    /// (without one, the level decides alone and the hot path does not load `state`): one load
    /// tells both, and a change never shows one without the other.
    max: AtomicUsize,
    state: ArcSwap<LevelState>,
    last_change: Mutex<Option<Instant>>,
    cooldown: Duration,
}

/// In [`LevelControl::max`]: the state has a per-target filter.
const FILTERED: usize = 1 << 8;

/// [`LevelControl::max`] for `state`.
fn packed(state: &LevelState) -> usize {
    state.max as usize | if state.filter.is_some() { FILTERED } else { 0 }
}

impl LevelControl {
    pub(crate) fn new(state: LevelState, cooldown: Duration) -> Self {
        LevelControl {
            max: AtomicUsize::new(packed(&state)),
            state: ArcSwap::from_pointee(state),
            last_change: Mutex::new(None),
            cooldown,
        }
    }

    /// The widest level any directive keeps.
    pub(crate) fn max(&self) -> LevelFilter {
        level_from_usize(self.max.load(Ordering::Relaxed) & !FILTERED)
    }

    /// Whether a record of `level` and `target` passes the filter.
    #[inline]
    pub(crate) fn enabled(&self, level: log::Level, target: &str) -> bool {
        let max = self.max.load(Ordering::Relaxed);
        if level as usize > max & !FILTERED {
            return false;
        }
        if max & FILTERED == 0 {
            return true;
        }
        let state = self.state.load();
        match &state.filter {
            None => true,
            Some(f) => f.enabled(&log::Metadata::builder().level(level).target(target).build()),
        }
    }

    pub(crate) fn directives(&self) -> Vec<Directive> {
        self.state.load().directives.clone()
    }
}

fn level_from_usize(n: usize) -> LevelFilter {
    match n {
        0 => LevelFilter::Off,
        1 => LevelFilter::Error,
        2 => LevelFilter::Warn,
        3 => LevelFilter::Info,
        4 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Why a level change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LevelError {
    /// The level is not one of the accepted names.
    #[error("invalid level {value:?}: expected one of off, error, warn, info, debug, trace")]
    InvalidLevel {
        /// The value given.
        value: String,
    },
    /// The directives could not be parsed.
    #[error("invalid directives {0}; expected env_logger syntax such as info,my_crate::db=debug")]
    InvalidDirectives(String),
    /// The target is empty or malformed.
    #[error(
        "invalid target {value:?}: expected a module path or target name, or \"*\" for the default"
    )]
    InvalidTarget {
        /// The value given.
        value: String,
    },
    /// A change was made less than the cooldown ago.
    #[error(
        "level change refused: the last change was less than {cooldown:?} ago; retry in {retry_in:?}"
    )]
    Cooldown {
        /// The configured cooldown.
        cooldown: Duration,
        /// How long until a change is accepted.
        retry_in: Duration,
    },
    /// The pipeline has shut down.
    #[error("the pipeline has shut down")]
    ShutDown,
}

/// What a level change did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LevelChange {
    /// The target changed (`None`: the default level, or the whole set for `set_directives`).
    pub target: Option<String>,
    /// The new directives, in `env_logger` syntax.
    pub directives: String,
    /// The directives before the change.
    pub previous: String,
}

/// A cloneable handle to change the level filter at run time, from [`Guard::levels`](crate::Guard::levels).
///
/// Every change is validated, refused within the cooldown (`LOG_LEVEL_COOLDOWN`, default 5 s) after
/// the previous one, applied to the next record (moving `log::max_level` when the logger is the
/// installed one), and audited: a WARN record with target `logging.audit` and attributes `target`,
/// `level`, `actor`, `previous` goes through the pipeline like any other.
#[derive(Clone)]
pub struct Levels {
    pub(crate) shared: Arc<crate::pipeline::Shared>,
}

impl std::fmt::Debug for Levels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Levels")
            .field("directives", &self.to_string())
            .finish()
    }
}

impl std::fmt::Display for Levels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_directives(&self.get()))
    }
}

impl Levels {
    /// The current directives; the first, without a target, is the default level.
    pub fn get(&self) -> Vec<Directive> {
        self.shared.levels.directives()
    }

    /// Sets the level of `target` (`"*"` or `""`: the default level) to `level` (`off`, `error`,
    /// `warn`, `info`, `debug`, `trace`, any case), on behalf of `actor` (who asked, for the audit).
    pub fn set(&self, target: &str, level: &str, actor: &str) -> Result<LevelChange, LevelError> {
        let level_filter =
            crate::config::env::parse_level(level).ok_or_else(|| LevelError::InvalidLevel {
                value: level.to_owned(),
            })?;
        let target = target.trim();
        let target = match target {
            "" | "*" => None,
            t if t.contains([',', '=', '/', ' ']) => {
                return Err(LevelError::InvalidTarget {
                    value: t.to_owned(),
                });
            }
            t => Some(t.to_owned()),
        };
        self.apply(actor, target.clone(), level_filter.as_str(), |current| {
            let mut targets: Vec<Directive> = current
                .iter()
                .filter(|d| d.target.is_some())
                .cloned()
                .collect();
            let default = match &target {
                None => level_filter,
                Some(_) => {
                    targets.push(Directive {
                        target: target.clone(),
                        level: level_filter,
                    });
                    current
                        .iter()
                        .find(|d| d.target.is_none())
                        .map_or(LevelFilter::Info, |d| d.level)
                }
            };
            LevelState::new(default, &targets)
        })
    }

    /// Replaces every directive with `spec` (`env_logger` syntax; a spec without a bare level keeps
    /// the current default), on behalf of `actor`.
    pub fn set_directives(&self, spec: &str, actor: &str) -> Result<LevelChange, LevelError> {
        let parsed = parse_directives(spec).map_err(LevelError::InvalidDirectives)?;
        self.apply(actor, None, spec, |current| {
            let default = parsed
                .iter()
                .rev()
                .find(|d| d.target.is_none())
                .map(|d| d.level)
                .or_else(|| current.iter().find(|d| d.target.is_none()).map(|d| d.level))
                .unwrap_or(LevelFilter::Info);
            let targets: Vec<Directive> = parsed
                .iter()
                .filter(|d| d.target.is_some())
                .cloned()
                .collect();
            LevelState::new(default, &targets)
        })
    }

    fn apply(
        &self,
        actor: &str,
        target: Option<String>,
        level_text: &str,
        next: impl FnOnce(&[Directive]) -> LevelState,
    ) -> Result<LevelChange, LevelError> {
        let shared = &self.shared;
        if shared.is_closed() {
            return Err(LevelError::ShutDown);
        }
        let control = &shared.levels;
        let mut last = control
            .last_change
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(t) = *last {
            let since = now.duration_since(t);
            if since < control.cooldown {
                return Err(LevelError::Cooldown {
                    cooldown: control.cooldown,
                    retry_in: control.cooldown - since,
                });
            }
        }
        let before = control.state.load_full();
        let previous_for_target = match &target {
            Some(t) => before.level_for(t),
            None => before.default_level(),
        };
        let state = next(&before.directives);
        let change = LevelChange {
            target: target.clone(),
            directives: format_directives(&state.directives),
            previous: format_directives(&before.directives),
        };
        let max = state.max;
        let packed = packed(&state);
        control.state.store(Arc::new(state));
        control.max.store(packed, Ordering::Relaxed);
        if shared.is_installed() {
            log::set_max_level(max);
        }
        *last = Some(now);
        drop(last);
        let time = now_unix_nanos();
        let attr = |k: &'static str, v: String| Attr {
            key: k.into(),
            value: AttrValue::Str(v.into()),
        };
        shared.push_internal(LogEvent {
            time_unix_nano: time,
            observed_time_unix_nano: time,
            severity: Severity::Warn,
            body: "log level changed".into(),
            target: AUDIT_TARGET.into(),
            module_path: None,
            file: None,
            line: None,
            trace: current_trace_context(),
            attributes: vec![
                attr("target", target.unwrap_or_else(|| "*".to_owned())),
                attr("level", level_text.to_ascii_lowercase()),
                attr("actor", actor.to_owned()),
                attr(
                    "previous",
                    previous_for_target.as_str().to_ascii_lowercase(),
                ),
                attr("directives", change.directives.clone()),
            ],
            dropped_attributes: 0,
        });
        Ok(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_parse_strictly_and_print_back() {
        let d = parse_directives("info,my_crate::db=debug,hyper=off,noisy").unwrap();
        assert_eq!(
            format_directives(&d),
            "info,my_crate::db=debug,hyper=off,noisy=trace"
        );
        for bad in ["my_crate=loud", "a=b=c", "info/regex"] {
            assert!(parse_directives(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_longest_matching_target_wins_and_max_is_the_widest() {
        let s = LevelState::new(
            LevelFilter::Warn,
            &parse_directives("my_crate=info,my_crate::db=trace,hyper=off").unwrap(),
        );
        let c = LevelControl::new(s, Duration::ZERO);
        assert_eq!(c.max(), LevelFilter::Trace);
        assert!(c.enabled(log::Level::Trace, "my_crate::db::pool"));
        assert!(c.enabled(log::Level::Info, "my_crate::api"));
        assert!(!c.enabled(log::Level::Debug, "my_crate::api"));
        assert!(!c.enabled(log::Level::Error, "hyper::client"));
        assert!(c.enabled(log::Level::Warn, "other"));
        assert!(!c.enabled(log::Level::Info, "other"));
    }

    #[test]
    fn only_a_default_needs_no_filter() {
        let c = LevelControl::new(LevelState::new(LevelFilter::Info, &[]), Duration::ZERO);
        assert!(c.state.load().filter.is_none());
        assert!(c.enabled(log::Level::Info, "x"));
        assert!(!c.enabled(log::Level::Debug, "x"));
    }
}
