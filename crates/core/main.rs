//! The `vigil` binary: Prometheus's command line, the server's wiring and
//! lifecycle, and the tool subcommands (`check`, `promql`, `query`, `tsdb`).
//!
//! This is the only crate that knows every other crate and the only one that
//! uses `anyhow`. Libraries own behaviour; this file owns order: what starts
//! first, what stops last, and what the user sees when something fails.

mod check;
mod cli;
mod flags;
mod logging;
mod metrics;
mod server;
mod sources;
mod storage;
mod tsdb_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Prometheus release whose behaviour Vigil matches.
pub const PROMETHEUS_COMPAT_VERSION: &str = "2.53.0";

pub fn version_text() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (compatible with Prometheus 2.53)"
    )
}

#[derive(Parser, Debug)]
#[command(
    name = "vigil",
    version = version_text(),
    about = "Vigil: a Prometheus-compatible monitoring server. Without a subcommand, runs the server.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    server: flags::ServerFlags,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check configuration files (like `promtool check`).
    #[command(subcommand)]
    Check(check::CheckCommand),
    /// Unit-test rule files (like `promtool test rules`).
    #[command(subcommand)]
    Test(check::TestCommand),
    /// Evaluate a PromQL expression against a server or a data directory.
    Promql(cli::PromqlArgs),
    /// Query series, label names or label values from a server.
    Query(cli::QueryArgs),
    /// TSDB tools: backfill, list, analyze, dump, verify.
    #[command(subcommand)]
    Tsdb(tsdb_cmd::TsdbCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.is_some() {
        // Tools print to stdout: die quietly on a closed pipe (`| head`),
        // as other Unix tools do, instead of panicking in `print!`.
        // SAFETY: resetting a signal disposition before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        None => {
            logging::init(&cli.server.log_level, &cli.server.log_format);
            match server_main(cli.server) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(err = %format!("{e:#}"), "Vigil stopped with an error");
                    eprintln!("vigil: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Check(cmd)) => ExitCode::from(check::run(cmd) as u8),
        Some(Command::Test(cmd)) => ExitCode::from(check::run_test(cmd) as u8),
        Some(Command::Promql(args)) => {
            let code = cli::run_promql(
                &args,
                &open_local_engine,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            ExitCode::from(code as u8)
        }
        Some(Command::Tsdb(cmd)) => {
            logging::init("info", "logfmt");
            ExitCode::from(tsdb_cmd::run(cmd) as u8)
        }
        Some(Command::Query(args)) => {
            let code = cli::run_query(&args, &mut std::io::stdout(), &mut std::io::stderr());
            ExitCode::from(code as u8)
        }
    }
}

/// `vigil promql --data DIR`: an engine over a data directory, opened
/// read-only (no lock, nothing written), so a server may be running on it.
fn open_local_engine(
    dir: &std::path::Path,
) -> Result<std::sync::Arc<dyn vigil_web::QueryEngine>, String> {
    use std::sync::Arc;
    use vigil_promql::engine::{Engine, EngineOptions};
    let db = vigil_tsdb::db::ReadOnlyDb::open(dir).map_err(|e| e.to_string())?;
    Ok(Arc::new(vigil_web::PromqlEngine::new(
        Arc::new(Engine::new(EngineOptions::default())),
        Arc::new(db),
    )))
}

fn server_main(flags: flags::ServerFlags) -> anyhow::Result<()> {
    server::run(flags)
}
