//! Where the worker sends batches:
//!
//! - the OTLP exporter (every mode but `file-only`);
//! - local outputs of JSON lines, each behind [`LineSink`] (the rotating file in `tee` and
//!   `file-only`, stdout with `LOG_STDOUT`): every live batch goes to each, its lines encoded once;
//!   each has a [`Role`] saying what its writes mean for the counters. A new local output is a new
//!   `LineSink`;
//! - the spool (`failover`): what OTLP could not take, replayed later.

use std::io::{self, IsTerminal as _, Write as _};

use crate::config::{self, ConsoleFormat, Mode};
use crate::export::file::rotate::RotatingFile;
use crate::export::file::{format, text};
use crate::export::otlp::OtlpExporter;
use crate::level::Threshold;
use crate::record::Record;
use crate::redact::Redactor;
use crate::spool::Spool;

/// A local destination of JSON lines.
pub(crate) trait LineSink: Send {
    /// Writes whole JSON lines (each ends in `\n`).
    fn write_lines(&mut self, lines: &[u8]) -> io::Result<()>;
    /// Where the lines go, for diagnostics.
    fn describe(&self) -> String;
    /// Rotations since the last call (a rotating file's; none for a stream).
    fn take_rotations(&mut self) -> u64 {
        0
    }
}

impl LineSink for RotatingFile {
    fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        RotatingFile::write_lines(self, lines)
    }
    fn describe(&self) -> String {
        self.active_path().display().to_string()
    }
    fn take_rotations(&mut self) -> u64 {
        RotatingFile::take_rotations(self)
    }
}

/// The process's standard output (`LOG_STDOUT=true`), for containers.
pub(crate) struct Stdout;

impl LineSink for Stdout {
    fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(lines).and_then(|()| out.flush())
    }
    fn describe(&self) -> String {
        "stdout".to_owned()
    }
}

/// The process's standard error (`LOG_STDOUT=stderr`).
pub(crate) struct Stderr;

impl LineSink for Stderr {
    fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        let mut out = io::stderr().lock();
        out.write_all(lines).and_then(|()| out.flush())
    }
    fn describe(&self) -> String {
        "stderr".to_owned()
    }
}

/// How a local output's lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lines {
    /// JSON lines (files, the spool, the console by default).
    Json,
    /// Text for people (the console with `LOG_STDOUT_FORMAT=text`), coloured or not.
    Text { colour: bool },
}

/// What a local output's writes mean for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A copy of what goes elsewhere (stdout): nothing is counted.
    Copy,
    /// A copy whose lines count as `written` (the rotating file in `tee`); a failed write is
    /// reported, not counted as a drop (OTLP still has the records).
    CountedCopy,
    /// Where records go (the rotating file in `file-only`): lines count as `written`, and a failed
    /// write loses them (`io_error`).
    Destination,
}

/// A local output, its role, its line format and its threshold.
pub(crate) struct Local {
    pub sink: Box<dyn LineSink>,
    pub role: Role,
    pub lines: Lines,
    pub filter: Threshold,
}

/// Whether the output of `filter` takes `r`.
pub(crate) fn wants(filter: &Threshold, r: &Record<'_>) -> bool {
    filter.wants(r.severity.log_level(), r.target)
}

/// The console output as configured (`LOG_STDOUT`, `LOG_STDOUT_FORMAT`, `NO_COLOR`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Console {
    pub to: config::Console,
    pub format: ConsoleFormat,
    pub no_color: bool,
}

/// Everything the worker writes to.
pub(crate) struct Sinks {
    pub otlp: Option<OtlpExporter>,
    pub locals: Vec<Local>,
    pub spool: Option<Spool>,
    /// The exporter's threshold (and the spool's).
    pub otlp_filter: Threshold,
    pub service_name: String,
    /// Masks secret values in every output.
    pub redactor: Redactor,
}

impl Sinks {
    /// The outputs of `mode`.
    pub(crate) fn new(
        mode: Mode,
        (otlp, file, spool): (Option<OtlpExporter>, Option<RotatingFile>, Option<Spool>),
        console: Console,
        [otlp_t, file_t, console_t]: [Threshold; 3],
        service_name: String,
        redactor: Redactor,
    ) -> Self {
        let mut locals = Vec::new();
        let text = console.format == ConsoleFormat::Text;
        let lines = |is_terminal| match text {
            false => Lines::Json,
            true => Lines::Text {
                colour: text::colour(text, console.no_color, is_terminal),
            },
        };
        match console.to {
            config::Console::Stdout => locals.push(Local {
                sink: Box::new(Stdout),
                role: Role::Copy,
                lines: lines(io::stdout().is_terminal()),
                filter: console_t.clone(),
            }),
            config::Console::Stderr => locals.push(Local {
                sink: Box::new(Stderr),
                role: Role::Copy,
                lines: lines(io::stderr().is_terminal()),
                filter: console_t,
            }),
            _ => {}
        }
        if let Some(file) = file {
            let role = match mode {
                Mode::FileOnly => Role::Destination,
                _ => Role::CountedCopy,
            };
            locals.push(Local {
                sink: Box::new(file),
                role,
                lines: Lines::Json,
                filter: file_t,
            });
        }
        Sinks {
            otlp: if mode.uses_otlp() { otlp } else { None },
            locals,
            spool: if mode.spools() { spool } else { None },
            otlp_filter: otlp_t,
            service_name,
            redactor,
        }
    }

    /// Whether a local output is where records go (no exporter).
    pub(crate) fn has_destination(&self) -> bool {
        self.locals.iter().any(|l| l.role == Role::Destination)
    }
}

/// Appends `records` as JSON lines to `out`, secret values masked.
/// Appends the text lines of `records` (the console's `text` format) to `out`.
pub(crate) fn encode_text<'r>(
    records: impl IntoIterator<Item = Record<'r>>,
    redactor: &Redactor,
    colour: bool,
    out: &mut String,
) {
    for r in records {
        text::encode(&r, redactor, colour, out);
    }
}

pub(crate) fn encode_lines<'r>(
    records: impl IntoIterator<Item = Record<'r>>,
    service_name: &str,
    redactor: &Redactor,
    out: &mut Vec<u8>,
) {
    for r in records {
        format::encode(&r, service_name, Some(redactor), out);
    }
}
