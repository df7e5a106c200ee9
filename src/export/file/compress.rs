//! gzip compression of rotated files (`LOG_FILE_COMPRESS=gzip`), on a thread of its own: the
//! worker keeps writing while a rotated file is compressed, and never waits for it except at the
//! next rotation (the names of rotated files must not move under a compression) and at shutdown.
//!
//! Crash safety: `name.1` is compressed into `name.1.gz.tmp`, synced, renamed to `name.1.gz` (one
//! atomic step), then `name.1` is removed. A crash at any point leaves the uncompressed file whole
//! (and maybe a `.gz.tmp`, removed at the next start), never a torn `.gz`.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// Suffix of a compression in progress.
const TMP: &str = ".gz.tmp";

/// The compression of at most one rotated file at a time.
#[derive(Default)]
pub(crate) struct Compressor {
    running: Option<JoinHandle<()>>,
}

impl Compressor {
    /// Waits for the compression in progress, if any.
    pub(crate) fn wait(&mut self) {
        if let Some(t) = self.running.take() {
            let _ = t.join();
        }
    }

    /// Compresses `path` into `path.gz` in the background (after the one in progress). If no
    /// thread can be started, the file stays as it is.
    pub(crate) fn start(&mut self, path: PathBuf) {
        self.wait();
        self.running = std::thread::Builder::new()
            .name("otel-log-bridge-gzip".into())
            .spawn(move || {
                crate::internal::mark_internal_thread();
                let _ = gzip(&path);
            })
            .ok();
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        self.wait();
    }
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Compresses `path` into `path.gz` (through `path.gz.tmp`), then removes `path`. On an error,
/// `path` is left as it was and the temporary file removed.
pub(crate) fn gzip(path: &Path) -> io::Result<()> {
    let tmp = with_suffix(path, TMP);
    let written = (|| {
        let mut input = File::open(path)?;
        let out = File::create(&tmp)?;
        let mut encoder =
            flate2::write::GzEncoder::new(BufWriter::new(out), flate2::Compression::default());
        io::copy(&mut input, &mut encoder)?;
        let out = encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
        // The original's time, which retention goes by, and its permissions.
        let meta = input.metadata()?;
        out.set_modified(meta.modified()?)?;
        out.sync_all()?;
        fs::set_permissions(&tmp, meta.permissions())?;
        fs::rename(&tmp, with_suffix(path, ".gz"))
    })();
    match written {
        Ok(()) => fs::remove_file(path),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Removes what a compression interrupted by a crash left (`*.gz.tmp` of `name`'s files in `dir`).
pub(crate) fn remove_interrupted(dir: &Path, name: &str) {
    for f in super::rotate::files_of(dir, name) {
        if f.ends_with(TMP) {
            let _ = fs::remove_file(dir.join(f));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn a_file_is_replaced_by_its_gzip_and_a_failure_leaves_it_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("app.log.1");
        fs::write(&path, "{\"a\":1}\n".repeat(1000)).unwrap();
        gzip(&path).unwrap();
        assert!(!path.exists());
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(with_suffix(&path, ".gz")).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{\"a\":1}\n".repeat(1000));
        // A file that cannot be read: nothing is made, nothing is lost.
        assert!(gzip(&tmp.path().join("missing")).is_err());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
        // What a crash mid-compression leaves: the temporary file goes, the file stays.
        fs::write(tmp.path().join("app.log.2"), "x\n").unwrap();
        fs::write(tmp.path().join("app.log.2.gz.tmp"), "torn").unwrap();
        remove_interrupted(tmp.path(), "app.log");
        assert!(!tmp.path().join("app.log.2.gz.tmp").exists());
        assert_eq!(
            fs::read_to_string(tmp.path().join("app.log.2")).unwrap(),
            "x\n"
        );
    }
}
