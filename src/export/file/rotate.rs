//! The plain rotating log of `tee` and `file-only` modes: `name`, `name.1` ... `name.N`.
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
#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;

use super::fs::{create_dir, open_append, with_path};
use crate::config::FileConfig;

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
}

impl RotatingFile {
    /// Opens (creating if needed) the directory and the active file; errors name the path.
    pub(crate) fn open(config: &FileConfig) -> io::Result<Self> {
        create_dir(&config.dir, config.dir_mode)
            .map_err(|e| with_path(e, "cannot create log directory", &config.dir))?;
        let path = config.dir.join(&config.name);
        let file = open_append(&path, config.file_mode)
            .map_err(|e| with_path(e, "cannot open log file", &path))?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            dir: config.dir.clone(),
            name: config.name.clone(),
            max_bytes: config.max_bytes,
            backups: config.backups,
            file_mode: config.file_mode,
            dir_mode: config.dir_mode,
            file,
            size,
            rotations: 0,
        })
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
        if self.backups == 0 {
            fs::remove_file(self.path(0)).or_else(ignore_missing)?;
        } else {
            fs::remove_file(self.path(self.backups)).or_else(ignore_missing)?;
            for n in (1..self.backups).rev() {
                fs::rename(self.path(n), self.path(n + 1)).or_else(ignore_missing)?;
            }
            fs::rename(self.path(0), self.path(1))?;
        }
        self.file = open_append(&self.path(0), self.file_mode)?;
        self.size = 0;
        self.rotations += 1;
        Ok(())
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

/// Whether `dir` holds a file the rotating log owns (for tests and diagnostics).
#[cfg(test)]
pub(crate) fn files_of(dir: &Path, name: &str) -> Vec<String> {
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

    fn config(dir: &Path, max: u64, backups: usize) -> FileConfig {
        FileConfig {
            dir: dir.to_path_buf(),
            name: "app.log".into(),
            max_bytes: max,
            backups,
            file_mode: 0o600,
            dir_mode: 0o700,
            spool_max_bytes: 1 << 30,
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
}
