//! Level filtering and its runtime control.
//!
//! The filter is a default level (`LOG_LEVEL`) plus per-target directives in `env_logger` syntax
//! (`RUST_LOG`, e.g. `info,my_crate::db=debug,hyper=off`), parsed and matched by `env_filter`.
//! `log::max_level` is kept at the widest level any directive enables, so a record no directive wants
//! costs one atomic load. [`Levels`] changes the filter at run time: validated, refused within a
//! cooldown, and audited with a WARN record (target `logging.audit`) through the pipeline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use log::LevelFilter;

use crate::config::directives::{Directive, format_directives, parse_directives};

mod outputs;

pub(crate) use outputs::{Threshold, thresholds};

/// Target of the audit records written for every level change.
pub const AUDIT_TARGET: &str = "logging.audit";

/// What a level change needs from the pipeline it belongs to.
pub(crate) trait LevelHost: Send + Sync {
    /// Whether the pipeline has shut down (changes are then refused).
    fn is_closed(&self) -> bool;
    /// The widest level the filter keeps is now `max`: the host moves `log::max_level` when its
    /// logger is the installed one, and has `tracing` ask its layer again when it has one.
    fn max_changed(&self, max: LevelFilter);
    /// Queues the audit record of a change (the host builds the record: a WARN record with target
    /// [`AUDIT_TARGET`], body `log level changed` and the attributes of `change` in field order).
    fn audit(&self, change: &Audit);
}

/// The attributes of the audit record of one level change, as written.
pub(crate) struct Audit {
    /// The target changed; `*` for the default level or the whole set.
    pub target: String,
    /// The new level (lowercase), or the directives given to `set_directives`.
    pub level: String,
    /// Who asked.
    pub actor: String,
    /// The level of `target` before the change (lowercase).
    pub previous: String,
    /// The directives after the change.
    pub directives: String,
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

    /// Whether a record of `level` and `target` passes these directives.
    pub(crate) fn enabled(&self, level: log::Level, target: &str) -> bool {
        if level > self.max {
            return false;
        }
        match &self.filter {
            None => true,
            Some(f) => f.enabled(&log::Metadata::builder().level(level).target(target).build()),
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
    /// The outputs' own thresholds: with any, the capture filter keeps what any output wants.
    pub(crate) outputs: outputs::Outputs,
}

/// In [`LevelControl::max`]: the state has a per-target filter.
const FILTERED: usize = 1 << 8;

/// [`LevelControl::max`] for `state` (the global filter) and the outputs' own thresholds.
fn packed(state: &LevelState, outputs: &outputs::Outputs) -> usize {
    match outputs.max(state) {
        // The union is checked filter by filter.
        Some(max) => max as usize | FILTERED,
        None => state.max as usize | if state.filter.is_some() { FILTERED } else { 0 },
    }
}

impl LevelControl {
    pub(crate) fn new(state: LevelState, cooldown: Duration) -> Self {
        Self::with_outputs(state, cooldown, outputs::Outputs::default())
    }

    /// A filter that also keeps what the outputs' own thresholds want.
    pub(crate) fn with_outputs(
        state: LevelState,
        cooldown: Duration,
        outputs: outputs::Outputs,
    ) -> Self {
        LevelControl {
            max: AtomicUsize::new(packed(&state, &outputs)),
            state: ArcSwap::from_pointee(state),
            last_change: Mutex::new(None),
            cooldown,
            outputs,
        }
    }

    /// Stores the widest level after a change of `state` or of an output's threshold; returns it.
    fn repack(&self, state: &LevelState) -> LevelFilter {
        let packed = packed(state, &self.outputs);
        self.max.store(packed, Ordering::Relaxed);
        level_from_usize(packed & !FILTERED)
    }

    /// Whether a record passes the global filter (`LOG_LEVEL`, `RUST_LOG` and runtime changes):
    /// what an output without a threshold of its own keeps.
    pub(crate) fn global_enabled(&self, level: log::Level, target: &str) -> bool {
        self.state.load().enabled(level, target)
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
        self.outputs.enabled(&state, level, target)
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
    /// The output is not one this pipeline's mode has (the rotating log in `otlp-only`, say).
    #[error("this pipeline has no {0} output (its mode and LOG_STDOUT decide which it has)")]
    NoSuchOutput(&'static str),
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
/// `level`, `actor`, `previous`, `directives` goes through the pipeline like any other.
#[derive(Clone)]
pub struct Levels {
    control: Arc<LevelControl>,
    host: Arc<dyn LevelHost>,
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
    /// The handle of `control`, which belongs to the pipeline `host`.
    pub(crate) fn new(control: Arc<LevelControl>, host: Arc<dyn LevelHost>) -> Levels {
        Levels { control, host }
    }

    /// The handle of a pipeline that was never started: `off`, and every change refused.
    pub(crate) fn disabled() -> Levels {
        struct Disabled;
        impl LevelHost for Disabled {
            fn is_closed(&self) -> bool {
                true
            }
            fn max_changed(&self, _: LevelFilter) {}
            fn audit(&self, _: &Audit) {}
        }
        let state = LevelState::new(LevelFilter::Off, &[]);
        Levels::new(
            Arc::new(LevelControl::new(state, Duration::ZERO)),
            Arc::new(Disabled),
        )
    }

    /// The current directives; the first, without a target, is the default level.
    pub fn get(&self) -> Vec<Directive> {
        self.control.directives()
    }

    /// Sets the level of `target` (`"*"` or `""`: the default level) to `level`, on behalf of
    /// `actor` (who asked, for the audit). A level given as text parses with `str::parse`
    /// (`"debug".parse::<log::LevelFilter>()`, any case).
    pub fn set(
        &self,
        target: &str,
        level: LevelFilter,
        actor: &str,
    ) -> Result<LevelChange, LevelError> {
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
        self.apply(actor, target.clone(), level.as_str(), |current| {
            let mut targets: Vec<Directive> = current
                .iter()
                .filter(|d| d.target.is_some())
                .cloned()
                .collect();
            let default = match &target {
                None => level,
                Some(_) => {
                    targets.push(Directive {
                        target: target.clone(),
                        level,
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

    /// Refuses a change after shutdown or within the cooldown; else the lock on the time of the
    /// last change (held while the change is made) and the time now.
    fn admit_change(&self) -> Result<(MutexGuard<'_, Option<Instant>>, Instant), LevelError> {
        if self.host.is_closed() {
            return Err(LevelError::ShutDown);
        }
        let control = &*self.control;
        let last = control
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
        Ok((last, now))
    }

    fn apply(
        &self,
        actor: &str,
        target: Option<String>,
        level_text: &str,
        next: impl FnOnce(&[Directive]) -> LevelState,
    ) -> Result<LevelChange, LevelError> {
        let host = &*self.host;
        let control = &*self.control;
        let (mut last, now) = self.admit_change()?;
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
        let state = Arc::new(state);
        control.state.store(state.clone());
        host.max_changed(control.repack(&state));
        *last = Some(now);
        drop(last);
        host.audit(&Audit {
            target: target.unwrap_or_else(|| "*".to_owned()),
            level: level_text.to_ascii_lowercase(),
            actor: actor.to_owned(),
            previous: previous_for_target.as_str().to_ascii_lowercase(),
            directives: change.directives.clone(),
        });
        Ok(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A host that keeps the audits it is given.
    #[derive(Default)]
    struct Host {
        closed: std::sync::atomic::AtomicBool,
        audits: Mutex<Vec<[String; 5]>>,
    }

    impl LevelHost for Host {
        fn is_closed(&self) -> bool {
            self.closed.load(Ordering::Relaxed)
        }
        fn max_changed(&self, _: LevelFilter) {}
        fn audit(&self, a: &Audit) {
            self.audits.lock().unwrap().push([
                a.target.clone(),
                a.level.clone(),
                a.actor.clone(),
                a.previous.clone(),
                a.directives.clone(),
            ]);
        }
    }

    #[test]
    fn a_change_is_audited_through_the_host_and_refused_once_it_is_closed() {
        let host = Arc::new(Host::default());
        let control = Arc::new(LevelControl::new(
            LevelState::new(LevelFilter::Info, &[]),
            Duration::ZERO,
        ));
        let levels = Levels::new(control.clone(), host.clone());
        levels.set("app::db", LevelFilter::Debug, "alice").unwrap();
        assert!(control.enabled(log::Level::Debug, "app::db"));
        levels.set_directives("WARN,x=off", "bob").unwrap();
        assert_eq!(
            *host.audits.lock().unwrap(),
            [
                ["app::db", "debug", "alice", "info", "info,app::db=debug"].map(String::from),
                ["*", "warn,x=off", "bob", "info", "warn,x=off"].map(String::from),
            ]
        );
        assert_eq!(
            levels.set("a=b", LevelFilter::Off, "carol"),
            Err(LevelError::InvalidTarget {
                value: "a=b".into()
            })
        );
        levels.set("", LevelFilter::Off, "carol").unwrap();
        assert!(!control.enabled(log::Level::Error, "other"));
        host.closed.store(true, Ordering::Relaxed);
        assert_eq!(
            levels.set("*", LevelFilter::Trace, "carol"),
            Err(LevelError::ShutDown)
        );
        assert_eq!(host.audits.lock().unwrap().len(), 3);
    }

    #[test]
    fn only_a_default_needs_no_filter() {
        let c = LevelControl::new(LevelState::new(LevelFilter::Info, &[]), Duration::ZERO);
        assert!(c.state.load().filter.is_none());
        assert!(c.enabled(log::Level::Info, "x"));
        assert!(!c.enabled(log::Level::Debug, "x"));
    }
}
