//! Building and installing a pipeline: [`Builder::build`] and [`Builder::try_init`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(feature = "admin")]
use crate::admin;
use crate::config::{Builder, Mode};
use crate::export::file::rotate::RotatingFile;
use crate::export::otlp::OtlpExporter;
use crate::guard::Guard;
use crate::logger::Logger;
use crate::pipeline::Pipeline;
use crate::spool::Spool;
use crate::stats::Counters;
use crate::worker::sinks::Sinks;
use crate::{Error, panic, redact};

/// Whether this crate's logger was installed in this process.
static INSTALLED: AtomicBool = AtomicBool::new(false);

impl Builder {
    /// Starts the pipeline and returns its logger, not installed, with its guard: for composing with
    /// other loggers, and for tests.
    ///
    /// `OTEL_SDK_DISABLED` does not apply here: it is about what [`try_init`](Self::try_init)
    /// installs, and a logger built here is installed by its caller.
    pub fn build(self) -> Result<(Logger, Guard), Error> {
        let config = self.config()?;
        self.build_from(config)
    }

    pub(crate) fn build_from(
        &self,
        config: crate::config::Config,
    ) -> Result<(Logger, Guard), Error> {
        let counters = Arc::new(Counters::default());
        let redactor = redact::Redactor::new(&config.redact_keys);
        let otlp = if config.mode.uses_otlp() {
            Some(OtlpExporter::new(
                &config,
                counters.clone(),
                redactor.clone(),
            )?)
        } else {
            None
        };
        let (file, spool, local_path) = match config.mode {
            Mode::Tee | Mode::FileOnly => {
                let file = RotatingFile::open(&config.files).map_err(Error::Files)?;
                let path = file.active_path();
                (Some(file), None, Some(path))
            }
            Mode::Failover | Mode::Durable => {
                let spool = Spool::open(&config.files, &config.service_name, counters.clone())
                    .map_err(Error::Files)?;
                let path = spool.path();
                (None, Some(spool), Some(path))
            }
            _ => (None, None, None),
        };
        let (levels, thresholds) = crate::level::thresholds(&config);
        let sinks = Sinks::new(
            config.mode,
            (otlp, file, spool),
            crate::worker::sinks::Console {
                to: config.stdout,
                format: config.stdout_format,
                no_color: config.no_color,
            },
            thresholds,
            config.service_name.clone(),
            redactor,
        );
        let pipeline = Pipeline::start(&config, levels, counters, sinks)?;
        let shared = pipeline.shared.clone();
        let logger = Logger {
            shared: shared.clone(),
        };
        // The guard exists before anything else can fail, so its drop stops the worker (and frees
        // the spool's lock) on every error path below.
        #[cfg_attr(not(feature = "admin"), allow(unused_mut))]
        let mut guard = Guard {
            pipeline: Some(pipeline),
            shutdown_timeout: config.shutdown_timeout,
            endpoint: config.transport.endpoint.clone(),
            mode: config.mode,
            local_path,
            #[cfg(feature = "admin")]
            admin: None,
        };
        #[cfg(feature = "admin")]
        if let Some((addr, token)) = &config.admin {
            guard.admin = Some(
                admin::AdminServerHandle::start(
                    *addr,
                    token.0.trim().to_owned(),
                    guard.levels(),
                    shared.clone(),
                )
                .map_err(Error::Admin)?,
            );
        }
        if config.panic_hook {
            panic::install(&shared);
        }
        Ok((logger, guard))
    }

    /// Starts the pipeline and installs it as the `log` logger; see [`try_init`].
    pub fn try_init(self) -> Result<Guard, Error> {
        // Checked first so that a second call reports the real problem rather than, say, the spool
        // lock the first pipeline holds.
        if INSTALLED.load(Ordering::SeqCst) {
            return Err(Error::AlreadyInitialized);
        }
        let config = self.config()?;
        if config.transport.sdk_disabled {
            // Said once: nothing else is ever written by a disabled pipeline.
            eprintln!(
                "otel-log-bridge: OTEL_SDK_DISABLED=true: no logger installed, nothing exported or written"
            );
            return Ok(Guard::disabled(config.shutdown_timeout));
        }
        let (logger, guard) = self.build_from(config)?;
        let level = logger.max_level();
        let shared = logger.shared.clone();
        log::set_boxed_logger(Box::new(logger)).map_err(|_| Error::AlreadyInitialized)?;
        INSTALLED.store(true, Ordering::SeqCst);
        shared.set_installed();
        log::set_max_level(level);
        Ok(guard)
    }
}
