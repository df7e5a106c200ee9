//! The builder's settings of the local outputs: the directory and the rotating log, the console,
//! the spool's bound, and each output's own threshold.

use std::path::PathBuf;
use std::time::Duration;

use super::Builder;

impl Builder {
    /// Directory of the rotating file or the spool (`LOG_DIR`, default `./logs`); created at start
    /// if missing. An unwritable directory is an error at start, naming the path.
    pub fn log_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.log_dir = Some(dir.into());
        self
    }

    /// Name of the active file in the log directory (`LOG_FILE_NAME`, default `app.log`).
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = Some(name.into());
        self
    }

    /// Size at which the file is rotated, also the spool's segment size (`LOG_FILE_MAX_BYTES`).
    pub fn file_max_bytes(mut self, bytes: u64) -> Self {
        self.file_max_bytes = Some(bytes);
        self
    }

    /// Rotated files kept in `tee` and `file-only` modes (`LOG_FILE_BACKUPS`).
    pub fn file_backups(mut self, backups: usize) -> Self {
        self.file_backups = Some(backups);
        self
    }

    /// When the rotating log starts a new file: at the size cap only, or also every UTC hour or
    /// day, rotated files then named with their period (`LOG_FILE_ROTATE`, default size).
    pub fn file_rotation(mut self, rotation: super::super::FileRotation) -> Self {
        self.file_rotation = Some(rotation);
        self
    }

    /// Removes rotated files older than `age` (by modification time) at each rotation and at
    /// start (`LOG_FILE_MAX_AGE`, e.g. `7d`; default none: only `LOG_FILE_BACKUPS` bounds them).
    pub fn file_max_age(mut self, age: Duration) -> Self {
        self.file_max_age = Some(age);
        self
    }

    /// Compresses each rotated file of the rotating log with gzip (`name.1.gz`), on a thread of
    /// its own, never on a calling thread (`LOG_FILE_COMPRESS`, default none). The spool's segments
    /// are never compressed.
    pub fn file_compression(mut self, compression: super::super::Compression) -> Self {
        self.file_compression = Some(compression);
        self
    }

    /// Permission bits of created files, e.g. `0o640` (`LOG_FILE_MODE`, default `0o600`).
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.file_mode = Some(mode);
        self
    }

    /// Permission bits of created directories, e.g. `0o750` (`LOG_DIR_MODE`, default `0o700`).
    pub fn dir_mode(mut self, mode: u32) -> Self {
        self.dir_mode = Some(mode);
        self
    }

    /// Writes every record to stdout as well (`LOG_STDOUT=true`, default off); see
    /// [`console`](Self::console) for stderr.
    pub fn stdout(mut self, on: bool) -> Self {
        self.stdout = Some(if on {
            super::super::Console::Stdout
        } else {
            super::super::Console::Off
        });
        self
    }

    /// Where the console copy of every record goes: nowhere, stdout or stderr (`LOG_STDOUT`,
    /// default off).
    pub fn console(mut self, console: super::super::Console) -> Self {
        self.stdout = Some(console);
        self
    }

    /// How console lines look: JSON lines as in the files, or one line of text per record for
    /// people (`LOG_STDOUT_FORMAT`, default JSON). Text is coloured by level only when the stream
    /// is a terminal and `NO_COLOR` is unset.
    pub fn console_format(mut self, format: super::super::ConsoleFormat) -> Self {
        self.stdout_format = Some(format);
        self
    }

    /// Bound on the spool's total size (`LOG_SPOOL_MAX_BYTES`, default 256 MiB); past it the oldest
    /// undelivered records are dropped and counted as `spool_full`.
    pub fn spool_max_bytes(mut self, bytes: u64) -> Self {
        self.spool_max_bytes = Some(bytes);
        self
    }

    /// `failover` and `durable`: the longest a record waits before it is written to the spool
    /// (`LOG_SPOOL_MAX_DELAY`; default 100 ms in `failover`, where it applies once an export
    /// failed and until the collector answers again, and 10 ms in `durable`, where it always
    /// does). A crash loses at most what was logged in this last interval. 1 ms to 60 s.
    pub fn spool_max_delay(mut self, delay: Duration) -> Self {
        self.spool_max_delay = Some(delay);
        self
    }

    /// When spool writes are synced to disk (`LOG_SPOOL_FSYNC`; default `off` in `failover`, every
    /// second in `durable`): what a power loss can take.
    pub fn spool_fsync(mut self, policy: super::super::SpoolFsync) -> Self {
        self.spool_fsync = Some(policy);
        self
    }

    /// What a thread that logs does when its record meets a full queue (`LOG_QUEUE_FULL`;
    /// default drop and count): [`QueueFull::Block`](super::super::QueueFull::Block) waits at most
    /// that long for room.
    pub fn queue_full(mut self, policy: super::super::QueueFull) -> Self {
        self.queue_full = Some(policy);
        self
    }

    /// The exporter's own threshold in `RUST_LOG` syntax, e.g. `warn` or `info,my_crate=debug`
    /// (`LOG_OTLP_LEVEL`; default none: the global filter). In `failover` the spool takes what the
    /// exporter would have sent. Records are captured for the widest of the outputs' thresholds.
    pub fn otlp_level(mut self, spec: impl Into<String>) -> Self {
        self.sink_levels[0] = Some(spec.into());
        self
    }

    /// The rotating log's own threshold in `RUST_LOG` syntax (`LOG_FILE_LEVEL`; default none: the
    /// global filter).
    pub fn file_level(mut self, spec: impl Into<String>) -> Self {
        self.sink_levels[1] = Some(spec.into());
        self
    }

    /// The console's own threshold in `RUST_LOG` syntax (`LOG_STDOUT_LEVEL`; default none: the
    /// global filter).
    pub fn stdout_level(mut self, spec: impl Into<String>) -> Self {
        self.sink_levels[2] = Some(spec.into());
        self
    }
}
