//! Local files: the JSON lines format and (next) the rotating file sink, stdout sink and spool.

// The sinks that use the format are the next step; until then only its tests call it.
#[allow(dead_code)]
pub(crate) mod format;
