//! The plain rotating log of `tee` and `file-only` modes: `name`, and rotated files `name.1` ...
//! `name.N` (`LOG_FILE_ROTATE=size`) or named with their UTC period, `name.2026-12-03` or
//! `name.2026-12-03T14` (`daily`, `hourly`; a second file of one period `name.2026-12-03.1`).
//!
//! Retention, at each rotation and at start: at most `backups` rotated files (the oldest removed
//! first, by modification time, in the time policies), and none older than `max_age`.
//!
//! Invariants: the active file never exceeds `max_bytes` by more than one record (a file is rotated
//! before a record that would cross the limit, unless the file is empty); at most `backups` rotated
//! files exist (`name.1` newest); a record is written whole into one file or not at all.
//!
//! Rotation from outside (logrotate) is followed: before each write, the file at the active path
//! is compared with the one open (device and inode). Moved or removed (`create` mode): a new file is
//! opened at the path; the lines written before that are in the moved file, whole. Truncated
//! (`copytruncate`): the size counts from the new end, and since the file is opened for appending,
//! the next line goes there, leaving no hole of NUL bytes.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::compress::{Compressor, remove_interrupted, with_suffix};
use super::fs::{create_dir, open_append, with_path};
use crate::config::{Compression, FileConfig, FileRotation};

/// The number of the UTC hour or day `t` falls in (0 for the size policy: one period).
fn period_of(rotation: FileRotation, t: SystemTime) -> u64 {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    match rotation {
        FileRotation::Hourly => secs / 3600,
        FileRotation::Daily => secs / 86_400,
        _ => 0,
    }
}

/// The name of a period: `2026-12-03` (daily) or `2026-12-03T14` (hourly).
fn label(rotation: FileRotation, period: u64) -> String {
    let (secs, len) = match rotation {
        FileRotation::Hourly => (period * 3600, 13),
        _ => (period * 86_400, 10),
    };
    let text =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string();
    text.get(..len).unwrap_or(&text).to_owned()
}

pub(crate) struct RotatingFile {
    dir: PathBuf,
    name: String,
    max_bytes: u64,
    backups: usize,
    file_mode: u32,
    dir_mode: u32,
    file: File,
    size: u64,
    /// Rotations (ours, and followed ones) not yet taken by [`take_rotations`](Self::take_rotations).
    rotations: u64,
    rotation: FileRotation,
    max_age: Option<Duration>,
    /// The period the active file's lines belong to (time policies).
    period: u64,
    /// The clock (injected by tests).
    now: fn() -> SystemTime,
    compress: Compression,
    compressor: Compressor,
}

impl RotatingFile {
    /// Opens (creating if needed) the directory and the active file; errors name the path.
    pub(crate) fn open(config: &FileConfig) -> io::Result<Self> {
        Self::open_with_clock(config, SystemTime::now)
    }

    /// [`open`](Self::open) with the clock `now`.
    fn open_with_clock(config: &FileConfig, now: fn() -> SystemTime) -> io::Result<Self> {
        create_dir(&config.dir, config.dir_mode)
            .map_err(|e| with_path(e, "cannot create log directory", &config.dir))?;
        let path = config.dir.join(&config.name);
        let file = open_append(&path, config.file_mode)
            .map_err(|e| with_path(e, "cannot open log file", &path))?;
        let meta = file.metadata()?;
        let size = meta.len();
        // A file left by an earlier run belongs to the period it was last written in.
        let written = match meta.modified() {
            Ok(t) if size > 0 => t,
            _ => now(),
        };
        let f = RotatingFile {
            dir: config.dir.clone(),
            name: config.name.clone(),
            max_bytes: config.max_bytes,
            backups: config.backups,
            file_mode: config.file_mode,
            dir_mode: config.dir_mode,
            file,
            size,
            rotations: 0,
            rotation: config.rotation,
            max_age: config.max_age,
            period: period_of(config.rotation, written),
            now,
            compress: config.compress,
            compressor: Compressor::default(),
        };
        remove_interrupted(&config.dir, &config.name);
        f.prune();
        Ok(f)
    }

    fn path(&self, n: usize) -> PathBuf {
        if n == 0 {
            self.dir.join(&self.name)
        } else {
            self.dir.join(format!("{}.{n}", self.name))
        }
    }

    /// Writes `lines` (whole JSON lines, each ending in `\n`), rotating between lines as needed.
    pub(crate) fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        self.follow_external_rotation()?;
        if self.rotation != FileRotation::Size {
            let period = period_of(self.rotation, (self.now)());
            if period != self.period {
                if self.size > 0 {
                    self.rotate()?;
                }
                self.period = period;
            }
        }
        if self.size + lines.len() as u64 <= self.max_bytes {
            // The common case: no rotation in this write, no need to find the lines.
            return self.write_chunk(lines);
        }
        let mut start = 0;
        let mut pos = 0;
        let mut pending = 0u64;
        while pos < lines.len() {
            let end = lines[pos..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(lines.len(), |i| pos + i + 1);
            let len = (end - pos) as u64;
            if self.size + pending > 0 && self.size + pending + len > self.max_bytes {
                self.write_chunk(&lines[start..pos])?;
                self.rotate()?;
                start = pos;
                pending = 0;
            }
            pending += len;
            pos = end;
        }
        self.write_chunk(&lines[start..])
    }

    /// Follows a rotation made by another program (see the module's documentation).
    fn follow_external_rotation(&mut self) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt as _;
        let path = self.path(0);
        match fs::metadata(&path) {
            Ok(on_disk) => {
                let open = self.file.metadata()?;
                if (on_disk.dev(), on_disk.ino()) == (open.dev(), open.ino()) {
                    self.size = self.size.min(on_disk.len());
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_dir(&self.dir, self.dir_mode)
                    .map_err(|e| with_path(e, "cannot create log directory", &self.dir))?;
            }
            Err(e) => return Err(with_path(e, "cannot read", &path)),
        }
        self.file = open_append(&path, self.file_mode)
            .map_err(|e| with_path(e, "cannot open log file", &path))?;
        self.size = self.file.metadata()?.len();
        self.rotations += 1;
        Ok(())
    }

    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.file.write_all(chunk)?;
        self.size += chunk.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        // No rotated file may move while it is being compressed.
        self.compressor.wait();
        let gz = |p: PathBuf| with_suffix(&p, ".gz");
        let rotated = if self.backups == 0 {
            fs::remove_file(self.path(0)).or_else(ignore_missing)?;
            None
        } else if self.rotation != FileRotation::Size {
            let target = self
                .dir
                .join(self.free_name(&label(self.rotation, self.period)));
            fs::rename(self.path(0), &target)?;
            Some(target)
        } else {
            fs::remove_file(self.path(self.backups)).or_else(ignore_missing)?;
            fs::remove_file(gz(self.path(self.backups))).or_else(ignore_missing)?;
            for n in (1..self.backups).rev() {
                fs::rename(self.path(n), self.path(n + 1)).or_else(ignore_missing)?;
                fs::rename(gz(self.path(n)), gz(self.path(n + 1))).or_else(ignore_missing)?;
            }
            fs::rename(self.path(0), self.path(1))?;
            Some(self.path(1))
        };
        if let (Some(path), Compression::Gzip) = (rotated, self.compress) {
            self.compressor.start(path);
        }
        self.file = open_append(&self.path(0), self.file_mode)?;
        self.size = 0;
        self.rotations += 1;
        self.prune();
        Ok(())
    }

    /// `name.<period>`, or `name.<period>.<n>` with the first `n` free.
    fn free_name(&self, period: &str) -> String {
        let taken = |n: &str| {
            let p = self.dir.join(n);
            p.exists() || with_suffix(&p, ".gz").exists()
        };
        let base = format!("{}.{period}", self.name);
        if !taken(&base) {
            return base;
        }
        (1..)
            .map(|n| format!("{base}.{n}"))
            .find(|n| !taken(n))
            .unwrap_or(base)
    }

    /// Removes rotated files past `backups` (time policies; the size policy's numbering keeps
    /// that bound itself) or older than `max_age`. Best effort: a file that cannot be removed or
    /// read is left for the next time.
    fn prune(&self) {
        let now = (self.now)();
        let mut rotated: Vec<(SystemTime, String)> = files_of(&self.dir, &self.name)
            .into_iter()
            .filter(|n| {
                n.strip_prefix(self.name.as_str())
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .filter_map(|n| {
                let modified = fs::metadata(self.dir.join(&n)).ok()?.modified().ok()?;
                Some((modified, n))
            })
            .collect();
        // Newest first.
        rotated.sort_by(|a, b| b.cmp(a));
        let keep = match self.rotation {
            FileRotation::Size => usize::MAX,
            _ => self.backups,
        };
        for (i, (modified, name)) in rotated.iter().enumerate() {
            let too_old = self
                .max_age
                .is_some_and(|age| now.duration_since(*modified).is_ok_and(|d| d > age));
            if i >= keep || too_old {
                let _ = fs::remove_file(self.dir.join(name));
            }
        }
    }

    /// Rotations since the last call.
    pub(crate) fn take_rotations(&mut self) -> u64 {
        std::mem::take(&mut self.rotations)
    }

    /// The directory's path, for messages.
    pub(crate) fn active_path(&self) -> PathBuf {
        self.path(0)
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// The files in `dir` named `name` or `name.*`, sorted.
pub(crate) fn files_of(dir: &std::path::Path, name: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n == name || n.starts_with(&format!("{name}.")))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;

    fn config(dir: &Path, max: u64, backups: usize) -> FileConfig {
        FileConfig {
            dir: dir.to_path_buf(),
            name: "app.log".into(),
            max_bytes: max,
            backups,
            rotation: FileRotation::Size,
            max_age: None,
            compress: Compression::None,
            file_mode: 0o600,
            dir_mode: 0o700,
            spool_max_bytes: 1 << 30,
            spool_max_delay: std::time::Duration::from_millis(100),
            spool_fsync: crate::config::SpoolFsync::Off,
        }
    }

    #[test]
    fn rotates_before_crossing_the_limit_and_keeps_n_backups() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested/logs");
        let mut f = RotatingFile::open(&config(&dir, 100, 2)).unwrap();
        for i in 0..20 {
            f.write_lines(format!("{{\"line\":{i:04},\"pad\":\"0123456789\"}}\n").as_bytes())
                .unwrap();
        }
        assert_eq!(
            files_of(&dir, "app.log"),
            ["app.log", "app.log.1", "app.log.2"]
        );
        for name in files_of(&dir, "app.log") {
            let text = fs::read_to_string(dir.join(&name)).unwrap();
            assert!(text.len() <= 100, "{name}: {}", text.len());
            assert!(text.ends_with('\n'));
        }
        let active = fs::read_to_string(dir.join("app.log")).unwrap();
        assert!(active.contains("\"line\":0019"));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("app.log")), 0o600);
        assert_eq!(mode(&dir.join("app.log.2")), 0o600);
    }

    #[test]
    fn a_file_moved_removed_or_truncated_from_outside_is_followed_without_losing_a_line() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("logs");
        let mut f = RotatingFile::open(&config(&dir, 1 << 20, 2)).unwrap();
        let line = |i: usize| format!("{{\"line\":{i}}}\n");
        f.write_lines(line(1).as_bytes()).unwrap();
        // logrotate `create`: moved away, a new empty file made at the path.
        fs::rename(dir.join("app.log"), dir.join("app.log-20261203")).unwrap();
        fs::write(dir.join("app.log"), "").unwrap();
        f.write_lines(line(2).as_bytes()).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("app.log-20261203")).unwrap(),
            line(1)
        );
        assert_eq!(fs::read_to_string(dir.join("app.log")).unwrap(), line(2));
        // Removed, with its directory: both made again.
        fs::remove_dir_all(&dir).unwrap();
        f.write_lines(line(3).as_bytes()).unwrap();
        assert_eq!(fs::read_to_string(dir.join("app.log")).unwrap(), line(3));
        // logrotate `copytruncate`: the next line starts the file, no NUL bytes before it.
        f.write_lines(line(4).as_bytes()).unwrap();
        fs::File::options()
            .write(true)
            .open(dir.join("app.log"))
            .unwrap()
            .set_len(0)
            .unwrap();
        f.write_lines(line(5).as_bytes()).unwrap();
        assert_eq!(fs::read_to_string(dir.join("app.log")).unwrap(), line(5));
        // Sizes count from there: rotation still at the limit.
        assert_eq!(f.size, line(5).len() as u64);
        // The move and the removal were rotations; the truncation was not.
        assert_eq!(f.take_rotations(), 2);
        assert_eq!(f.take_rotations(), 0);
    }

    #[test]
    fn a_record_larger_than_the_limit_is_written_whole_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let mut f = RotatingFile::open(&config(tmp.path(), 10, 5)).unwrap();
        f.write_lines(b"{\"a\":1}\n{\"big\":\"0123456789012345\"}\n{\"b\":2}\n")
            .unwrap();
        assert_eq!(
            fs::read_to_string(tmp.path().join("app.log")).unwrap(),
            "{\"b\":2}\n"
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("app.log.1")).unwrap(),
            "{\"big\":\"0123456789012345\"}\n"
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("app.log.2")).unwrap(),
            "{\"a\":1}\n"
        );
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let blocker = tmp.path().join("not-a-dir");
        fs::write(&blocker, b"x").unwrap();
        let err = RotatingFile::open(&config(&blocker.join("logs"), 100, 1))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not-a-dir"), "{err}");
    }

    thread_local! {
        /// The injected clock of this test thread, seconds since the epoch.
        static NOW: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    fn clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW.with(std::cell::Cell::get))
    }

    fn set_clock(rfc3339: &str) {
        let t = humantime::parse_rfc3339(rfc3339).unwrap();
        NOW.with(|n| n.set(t.duration_since(UNIX_EPOCH).unwrap().as_secs()));
    }

    fn rotated(dir: &Path) -> Vec<String> {
        files_of(dir, "app.log")
            .into_iter()
            .filter(|n| n != "app.log")
            .collect()
    }

    #[test]
    fn daily_and_hourly_files_are_named_with_their_period_and_capped_by_size() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = config(tmp.path(), 40, 10);
        c.rotation = FileRotation::Daily;
        set_clock("2026-12-03T10:00:00Z");
        let mut f = RotatingFile::open_with_clock(&c, clock).unwrap();
        f.write_lines(b"{\"day\":3,\"n\":1}\n").unwrap();
        // Past the size cap within the day: a second file of that day.
        f.write_lines(b"{\"day\":3,\"n\":2,\"pad\":\"xxxxxxxxxx\"}\n")
            .unwrap();
        set_clock("2026-12-04T00:00:01Z");
        f.write_lines(b"{\"day\":4}\n").unwrap();
        assert_eq!(
            rotated(tmp.path()),
            ["app.log.2026-12-03", "app.log.2026-12-03.1"]
        );
        let read = |n: &str| fs::read_to_string(tmp.path().join(n)).unwrap();
        assert_eq!(read("app.log.2026-12-03"), "{\"day\":3,\"n\":1}\n");
        assert!(read("app.log.2026-12-03.1").contains("\"n\":2"));
        assert_eq!(read("app.log"), "{\"day\":4}\n");
        // A day with nothing logged makes no file; rotations are counted.
        set_clock("2026-12-06T09:00:00Z");
        f.write_lines(b"{\"day\":6}\n").unwrap();
        assert!(rotated(tmp.path()).contains(&"app.log.2026-12-04".to_owned()));
        assert_eq!(f.take_rotations(), 3);

        let tmp = tempfile::tempdir().unwrap();
        let mut c = config(tmp.path(), 1 << 20, 10);
        c.rotation = FileRotation::Hourly;
        set_clock("2026-12-03T14:59:59Z");
        let mut f = RotatingFile::open_with_clock(&c, clock).unwrap();
        f.write_lines(b"{\"h\":14}\n").unwrap();
        set_clock("2026-12-03T15:00:00Z");
        f.write_lines(b"{\"h\":15}\n").unwrap();
        assert_eq!(rotated(tmp.path()), ["app.log.2026-12-03T14"]);
    }

    #[test]
    fn retention_keeps_the_newest_backups_and_nothing_older_than_max_age() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = config(tmp.path(), 1 << 20, 2);
        c.rotation = FileRotation::Daily;
        set_clock("2026-12-01T12:00:00Z");
        let mut f = RotatingFile::open_with_clock(&c, clock).unwrap();
        for day in 1..=5 {
            set_clock(&format!("2026-12-0{day}T12:00:00Z"));
            f.write_lines(format!("{{\"day\":{day}}}\n").as_bytes())
                .unwrap();
            // Modification times a day apart, as days of logging would leave them.
            let t = clock();
            File::options()
                .write(true)
                .open(tmp.path().join("app.log"))
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        assert_eq!(
            rotated(tmp.path()),
            ["app.log.2026-12-03", "app.log.2026-12-04"]
        );

        // By age: at a start a week later, every rotated file is past 3 days.
        let mut c = c.clone();
        c.max_age = Some(Duration::from_secs(3 * 86_400));
        c.backups = 100;
        set_clock("2026-12-12T00:00:00Z");
        let _f = RotatingFile::open_with_clock(&c, clock).unwrap();
        assert_eq!(rotated(tmp.path()), Vec::<String>::new());
        // The size policy keeps its numbering and bound, and applies the age too.
        let tmp = tempfile::tempdir().unwrap();
        let mut c = config(tmp.path(), 10, 5);
        c.max_age = Some(Duration::from_secs(3600));
        set_clock("2026-12-03T10:00:00Z");
        let mut f = RotatingFile::open_with_clock(&c, clock).unwrap();
        f.write_lines(b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        assert_eq!(rotated(tmp.path()), ["app.log.1"]);
        set_clock("2099-01-01T00:00:00Z");
        f.write_lines(b"{\"c\":3}\n").unwrap();
        assert_eq!(
            rotated(tmp.path()),
            Vec::<String>::new(),
            "older than an hour"
        );
    }

    fn gunzip(path: &Path) -> String {
        use std::io::Read as _;
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn rotated_files_are_compressed_off_the_writing_thread_and_counted_by_retention() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = config(tmp.path(), 30, 2);
        c.compress = Compression::Gzip;
        let mut f = RotatingFile::open(&c).unwrap();
        for i in 0..4 {
            f.write_lines(format!("{{\"n\":{i},\"pad\":\"0123456789\"}}\n").as_bytes())
                .unwrap();
        }
        drop(f); // waits for the compression in progress
        // Two backups kept, compressed, newest first; the active file stays plain.
        assert_eq!(rotated(tmp.path()), ["app.log.1.gz", "app.log.2.gz"]);
        assert!(gunzip(&tmp.path().join("app.log.1.gz")).contains("\"n\":2"));
        assert!(gunzip(&tmp.path().join("app.log.2.gz")).contains("\"n\":1"));
        assert!(
            fs::read_to_string(tmp.path().join("app.log"))
                .unwrap()
                .contains("\"n\":3")
        );

        let tmp = tempfile::tempdir().unwrap();
        let mut c = config(tmp.path(), 1 << 20, 1);
        c.rotation = FileRotation::Daily;
        c.compress = Compression::Gzip;
        set_clock("2026-12-03T10:00:00Z");
        let mut f = RotatingFile::open_with_clock(&c, clock).unwrap();
        for day in 3..=5 {
            set_clock(&format!("2026-12-0{day}T10:00:00Z"));
            f.write_lines(format!("{{\"day\":{day}}}\n").as_bytes())
                .unwrap();
            f.compressor.wait();
            // Times a day apart, as retention reads them.
            for n in rotated(tmp.path()) {
                let day = n[16..18].parse::<u64>().unwrap();
                let t = UNIX_EPOCH + Duration::from_secs(1_764_720_000 + day * 86_400);
                File::options()
                    .write(true)
                    .open(tmp.path().join(n))
                    .unwrap()
                    .set_modified(t)
                    .unwrap();
            }
        }
        drop(f);
        assert_eq!(rotated(tmp.path()), ["app.log.2026-12-04.gz"]);
        assert_eq!(
            gunzip(&tmp.path().join("app.log.2026-12-04.gz")),
            "{\"day\":4}\n"
        );
    }
}
