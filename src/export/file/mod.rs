//! Local files: the JSON lines format, the rotating log of `tee` / `file-only` modes, and the
//! file-system helpers the spool shares.

pub(crate) mod compress;
pub(crate) mod format;
pub(crate) mod fs;
pub(crate) mod rotate;
pub(crate) mod text;
