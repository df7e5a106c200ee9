//! Calls the admin gRPC API of a running otel-log-bridge (built with the `admin` feature and
//! `Builder::admin_server`).
//!
//! ```sh
//! cargo run --features admin --example admin -- --addr 127.0.0.1:4320 --token TOKEN get-levels
//! cargo run --features admin --example admin -- --addr 127.0.0.1:4320 --token TOKEN set-level my_crate::db debug --actor alice
//! cargo run --features admin --example admin -- --addr 127.0.0.1:4320 --token TOKEN set-directives "info,hyper=off" --actor alice
//! cargo run --features admin --example admin -- --addr 127.0.0.1:4320 --token TOKEN get-stats
//! ```
//! The token can also come from `LOG_ADMIN_TOKEN`.

use std::process::ExitCode;

use otel_log_bridge::admin::proto::admin_client::AdminClient;
use otel_log_bridge::admin::proto::{GetLevelsRequest, GetStatsRequest, SetLevelRequest};

const USAGE: &str = "usage: admin --addr HOST:PORT [--token TOKEN] (get-levels | get-stats | set-level TARGET LEVEL [--actor NAME] | set-directives SPEC [--actor NAME] | set-output otlp|file|stdout [SPEC] [--actor NAME])";

fn main() -> ExitCode {
    let mut addr = None;
    let mut token = std::env::var("LOG_ADMIN_TOKEN").ok();
    let mut actor = std::env::var("USER").unwrap_or_else(|_| "admin-cli".to_owned());
    let mut command = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next(),
            "--token" => token = args.next(),
            "--actor" => actor = args.next().unwrap_or(actor),
            _ => command.push(a),
        }
    }
    let (Some(addr), Some(token)) = (addr, token) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("admin: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(addr, token, actor, command)) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("admin: {e}");
            ExitCode::FAILURE
        }
    }
}

fn authorized<T>(message: T, token: &str) -> Result<tonic::Request<T>, Box<dyn std::error::Error>> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

async fn run(
    addr: String,
    token: String,
    actor: String,
    command: Vec<String>,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut client = AdminClient::connect(format!("http://{addr}")).await?;
    let words: Vec<&str> = command.iter().map(String::as_str).collect();
    Ok(match words.as_slice() {
        ["get-levels"] => {
            client
                .get_levels(authorized(GetLevelsRequest {}, &token)?)
                .await?
                .into_inner()
                .directives
        }
        ["get-stats"] => format!(
            "{:#?}",
            client
                .get_stats(authorized(GetStatsRequest {}, &token)?)
                .await?
                .into_inner()
        ),
        ["set-level", target, level] => {
            let r = client
                .set_level(authorized(
                    SetLevelRequest {
                        target: target.to_string(),
                        level: level.to_string(),
                        actor,
                        directives: String::new(),
                        output: String::new(),
                    },
                    &token,
                )?)
                .await?
                .into_inner();
            format!("{} (was {})", r.directives, r.previous)
        }
        ["set-directives", spec] => {
            let r = client
                .set_level(authorized(
                    SetLevelRequest {
                        target: String::new(),
                        level: String::new(),
                        actor,
                        directives: spec.to_string(),
                        output: String::new(),
                    },
                    &token,
                )?)
                .await?
                .into_inner();
            format!("{} (was {})", r.directives, r.previous)
        }
        ["set-output", output, spec @ ..] if spec.len() <= 1 => {
            let r = client
                .set_level(authorized(
                    SetLevelRequest {
                        target: String::new(),
                        level: String::new(),
                        actor,
                        directives: spec.first().map(|s| s.to_string()).unwrap_or_default(),
                        output: output.to_string(),
                    },
                    &token,
                )?)
                .await?
                .into_inner();
            format!("{} (was {})", r.directives, r.previous)
        }
        _ => return Err(USAGE.into()),
    })
}
