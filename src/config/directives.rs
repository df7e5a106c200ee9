//! Filter directives in `env_logger` syntax (`info,my_crate::db=debug,hyper=off`): parsed strictly
//! (validated by `env_filter`) and printed back. What they mean at run time is the level module's.

use log::LevelFilter;

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
}
