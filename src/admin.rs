//! The admin gRPC API (`proto/admin.proto`, feature `admin`): runtime level control and counters,
//! served on its own thread and runtime, on 127.0.0.1 unless told otherwise, behind a bearer token.
//!
//! Requests without `authorization: Bearer <token>`, or with a wrong token, get UNAUTHENTICATED and
//! change nothing. `SetLevel` parses its level here and goes through [`Levels`]: the same
//! validation (INVALID_ARGUMENT), cooldown (FAILED_PRECONDITION) and audit record as a change made
//! in code.

use std::net::SocketAddr;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::config::directives::format_directives;
use crate::level::{LevelError, Levels};
use crate::pipeline::Shared;
use crate::stats::{DropReason, Output};

/// The code generated from `proto/admin.proto`: messages, the `admin_client` and `admin_server`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("otel_log_bridge.admin.v1");
}

use proto::admin_server::{Admin, AdminServer};

struct Service {
    levels: Levels,
    shared: Arc<Shared>,
}

fn level_status(e: LevelError) -> Status {
    match e {
        LevelError::Cooldown { .. } => Status::failed_precondition(e.to_string()),
        LevelError::ShutDown => Status::unavailable(e.to_string()),
        _ => Status::invalid_argument(e.to_string()),
    }
}

/// A level named in a request: `off`, `error`, `warn`, `info`, `debug`, `trace`, any case.
fn parse_level(level: &str) -> Result<log::LevelFilter, Status> {
    crate::config::env::parse_level(level).ok_or_else(|| {
        Status::invalid_argument(format!(
            "invalid level {level:?}: expected one of off, error, warn, info, debug, trace"
        ))
    })
}

#[tonic::async_trait]
impl Admin for Service {
    async fn set_level(
        &self,
        request: Request<proto::SetLevelRequest>,
    ) -> Result<Response<proto::SetLevelResponse>, Status> {
        let r = request.into_inner();
        let actor = if r.actor.trim().is_empty() {
            "admin-api"
        } else {
            r.actor.trim()
        };
        let output = r.output.trim();
        let change = if !output.is_empty() {
            let output = Output::from_name(output).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "invalid output {output:?}: expected otlp, file or stdout"
                ))
            })?;
            let spec = Some(r.directives.trim()).filter(|s| !s.is_empty());
            self.levels.set_output(output, spec, actor)
        } else if r.directives.trim().is_empty() {
            self.levels.set(&r.target, parse_level(&r.level)?, actor)
        } else {
            self.levels.set_directives(&r.directives, actor)
        }
        .map_err(level_status)?;
        Ok(Response::new(proto::SetLevelResponse {
            directives: change.directives,
            previous: change.previous,
        }))
    }

    async fn get_levels(
        &self,
        _: Request<proto::GetLevelsRequest>,
    ) -> Result<Response<proto::GetLevelsResponse>, Status> {
        let items = self.levels.get();
        Ok(Response::new(proto::GetLevelsResponse {
            directives: format_directives(&items),
            items: items
                .into_iter()
                .map(|d| proto::Directive {
                    target: d.target.unwrap_or_default(),
                    level: d.level.as_str().to_ascii_lowercase(),
                })
                .collect(),
            outputs: [Output::Otlp, Output::File, Output::Console]
                .into_iter()
                .filter_map(|o| {
                    let d = self.levels.output(o)?;
                    Some((o.as_str().to_owned(), format_directives(&d)))
                })
                .collect(),
        }))
    }

    async fn get_stats(
        &self,
        _: Request<proto::GetStatsRequest>,
    ) -> Result<Response<proto::GetStatsResponse>, Status> {
        let s = self.shared.stats();
        Ok(Response::new(proto::GetStatsResponse {
            enqueued: s.enqueued,
            exported: s.exported,
            dropped: DropReason::ALL
                .iter()
                .map(|r| (r.as_str().to_owned(), s.dropped.get(*r)))
                .collect(),
            queue_depth: s.queue_depth,
            in_flight: s.in_flight,
            export_errors: s.export_errors,
            spooled: s.spooled,
            replayed: s.replayed,
            spool_bytes: s.spool_bytes,
            corrupt_skipped: s.corrupt_skipped,
            written: s.written,
            format_panics: s.format_panics,
            rotations: s.rotations,
            filtered: per_output(&s, |c| c.filtered),
            output_written: per_output(&s, |c| c.written),
            output_failed: per_output(&s, |c| c.failed),
        }))
    }
}

/// One count of each output, by its name.
fn per_output(
    s: &crate::Stats,
    count: impl Fn(crate::OutputCounts) -> u64,
) -> std::collections::HashMap<String, u64> {
    [Output::Otlp, Output::File, Output::Console]
        .into_iter()
        .map(|o| (o.as_str().to_owned(), count(s.outputs.get(o))))
        .collect()
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A running admin server; stopped when dropped.
pub(crate) struct AdminServerHandle {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AdminServerHandle {
    /// Binds `addr` now (so a bad address is an error at start) and serves on a thread of its own.
    pub(crate) fn start(
        addr: SocketAddr,
        token: String,
        levels: Levels,
        shared: Arc<Shared>,
    ) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr).map_err(|e| {
            std::io::Error::new(e.kind(), format!("admin server cannot bind {addr}: {e}"))
        })?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = Service { levels, shared };
        let expected = format!("Bearer {token}").into_bytes();
        let thread = std::thread::Builder::new()
            .name("otel-log-bridge-admin".into())
            .spawn(move || {
                crate::internal::mark_internal_thread();
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    eprintln!("otel-log-bridge: admin server: could not start its runtime");
                    return;
                };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        eprintln!("otel-log-bridge: admin server: could not use its listener");
                        return;
                    };
                    let incoming = tonic::transport::server::TcpIncoming::from(listener)
                        .with_nodelay(Some(true));
                    let auth = move |request: Request<()>| -> Result<Request<()>, Status> {
                        let given = request
                            .metadata()
                            .get("authorization")
                            .map(|v| v.as_bytes());
                        match given {
                            Some(g) if constant_time_eq(g, &expected) => Ok(request),
                            _ => Err(Status::unauthenticated("a valid bearer token is required")),
                        }
                    };
                    let served = tonic::transport::Server::builder()
                        .add_service(AdminServer::with_interceptor(service, auth))
                        .serve_with_incoming_shutdown(incoming, async {
                            let _ = stopped.await;
                        })
                        .await;
                    if let Err(e) = served {
                        eprintln!("otel-log-bridge: admin server stopped: {e}");
                    }
                });
            })?;
        Ok(AdminServerHandle {
            addr: bound,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for AdminServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Not joined: a client that never closes its connection must not hold up the shutdown.
        drop(self.thread.take());
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"Bearer a", b"Bearer a"));
        assert!(!constant_time_eq(b"Bearer a", b"Bearer b"));
        assert!(!constant_time_eq(b"Bearer a", b"Bearer ab"));
    }
}
