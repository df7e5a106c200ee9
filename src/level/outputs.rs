//! Each output's own threshold (`LOG_OTLP_LEVEL`, `LOG_FILE_LEVEL`, `LOG_STDOUT_LEVEL`), set at
//! start and changed at run time ([`Levels::set_output`]).
//!
//! An output without one follows the global filter. With any, the capture filter keeps what any
//! output of the mode wants (so `log::max_level` is the widest of them), and the worker leaves out,
//! for each output, what is below its own ([`Threshold`]). With none, nothing of this costs
//! anything: the capture filter is the global one and the worker does not look.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwapOption;
use log::LevelFilter;

use super::{Audit, LevelChange, LevelControl, LevelError, LevelState, Levels};
use crate::config::directives::{Directive, format_directives, parse_directives};
use crate::stats::Output;

/// The thresholds of the outputs a pipeline has.
#[derive(Default)]
pub(crate) struct Outputs {
    /// Which of OTLP, file and console the mode has.
    present: [bool; 3],
    /// Each one's own threshold; none: the global filter.
    own: [ArcSwapOption<LevelState>; 3],
    /// Whether a present output has one.
    any_own: AtomicBool,
}

impl Outputs {
    /// Whether an output has a threshold of its own.
    pub(crate) fn any_own(&self) -> bool {
        self.any_own.load(Ordering::Relaxed)
    }

    /// The widest level any present output keeps, `global` standing for those without a
    /// threshold; `None` when no output has one (the global filter alone decides).
    pub(super) fn max(&self, global: &LevelState) -> Option<LevelFilter> {
        if !self.any_own() {
            return None;
        }
        let max = (0..3)
            .filter(|i| self.present[*i])
            .map(|i| self.own[i].load().as_ref().map_or(global.max, |s| s.max))
            .max()
            .unwrap_or(LevelFilter::Off);
        Some(max)
    }

    /// Whether any present output takes a record (`global` for those without a threshold).
    pub(super) fn enabled(&self, global: &LevelState, level: log::Level, target: &str) -> bool {
        if !self.any_own() {
            return global.enabled(level, target);
        }
        (0..3)
            .filter(|i| self.present[*i])
            .any(|i| match &*self.own[i].load() {
                Some(own) => own.enabled(level, target),
                None => global.enabled(level, target),
            })
    }

    fn set(&self, output: Output, state: Option<LevelState>) {
        self.own[output as usize].store(state.map(Arc::new));
        let any = (0..3).any(|i| self.present[i] && self.own[i].load().is_some());
        self.any_own.store(any, Ordering::Relaxed);
    }

    fn directives(&self, output: Output) -> Option<Vec<Directive>> {
        self.own[output as usize]
            .load()
            .as_ref()
            .map(|s| s.directives.clone())
    }
}

/// An output's threshold state from its directives: a spec without a bare level takes `default`.
fn threshold_state(spec: &[Directive], default: LevelFilter) -> LevelState {
    let default = spec
        .iter()
        .rev()
        .find(|x| x.target.is_none())
        .map_or(default, |x| x.level);
    let targets: Vec<Directive> = spec
        .iter()
        .filter(|x| x.target.is_some())
        .cloned()
        .collect();
    LevelState::new(default, &targets)
}

/// The filter of a pipeline configured by `config`, and each output's threshold (OTLP, file,
/// console) for the worker.
pub(crate) fn thresholds(config: &crate::config::Config) -> (Arc<LevelControl>, [Threshold; 3]) {
    use crate::config::{Console, Mode};
    let s = &config.sink_levels;
    let outputs = Outputs {
        present: [
            config.mode.uses_otlp(),
            matches!(config.mode, Mode::Tee | Mode::FileOnly),
            config.stdout != Console::Off,
        ],
        ..Outputs::default()
    };
    for (output, spec) in [
        (Output::Otlp, &s.otlp),
        (Output::File, &s.file),
        (Output::Console, &s.console),
    ] {
        if let Some(spec) = spec {
            outputs.set(output, Some(threshold_state(spec, config.level)));
        }
    }
    let global = LevelState::new(config.level, &config.directives);
    let control = Arc::new(LevelControl::with_outputs(
        global,
        config.level_cooldown,
        outputs,
    ));
    let threshold = |output| Threshold {
        output,
        control: control.clone(),
    };
    let t = [
        threshold(Output::Otlp),
        threshold(Output::File),
        threshold(Output::Console),
    ];
    (control, t)
}

/// One output's threshold, for the worker.
#[derive(Clone)]
pub(crate) struct Threshold {
    output: Output,
    control: Arc<LevelControl>,
}

impl Threshold {
    /// The output.
    pub(crate) fn output(&self) -> Output {
        self.output
    }

    /// Whether outputs have thresholds of their own (else every output takes every record).
    pub(crate) fn active(&self) -> bool {
        self.control.outputs.any_own()
    }

    /// Whether the output takes a record of `level` and `target`.
    pub(crate) fn wants(&self, level: log::Level, target: &str) -> bool {
        match &*self.control.outputs.own[self.output as usize].load() {
            Some(own) => own.enabled(level, target),
            None => self.control.global_enabled(level, target),
        }
    }
}

impl Levels {
    /// The threshold of `output` of its own (`None`: it follows the global filter).
    pub fn output(&self, output: Output) -> Option<Vec<Directive>> {
        self.control.outputs.directives(output)
    }

    /// Sets the threshold of `output` to `spec` (`RUST_LOG` syntax; a spec without a bare level
    /// takes the global default level), or, with `None`, makes it follow the global filter again;
    /// on behalf of `actor`. Validated, refused within the cooldown like any change, and audited
    /// (target `output:otlp`, `output:file` or `output:stdout`).
    pub fn set_output(
        &self,
        output: Output,
        spec: Option<&str>,
        actor: &str,
    ) -> Result<LevelChange, LevelError> {
        if !self.control.outputs.present[output as usize] {
            return Err(LevelError::NoSuchOutput(output.as_str()));
        }
        let parsed = spec
            .map(|s| parse_directives(s).map_err(LevelError::InvalidDirectives))
            .transpose()?;
        let (mut last, now) = self.admit_change()?;
        let control = &*self.control;
        let shown =
            |d: Option<Vec<Directive>>| d.map_or("global".to_owned(), |d| format_directives(&d));
        let previous = shown(control.outputs.directives(output));
        let global = control.state.load_full();
        let state = parsed.map(|p| threshold_state(&p, global.default_level()));
        control.outputs.set(output, state);
        self.host.max_changed(control.repack(&global));
        *last = Some(now);
        drop(last);
        let directives = shown(control.outputs.directives(output));
        let target = format!("output:{}", output.as_str());
        self.host.audit(&Audit {
            target: target.clone(),
            level: spec.unwrap_or("global").to_ascii_lowercase(),
            actor: actor.to_owned(),
            previous: previous.clone(),
            directives: directives.clone(),
        });
        Ok(LevelChange {
            target: Some(target),
            directives,
            previous,
        })
    }
}
