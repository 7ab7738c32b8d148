//! `vigil check config|rules`: promtool-compatible checks with exit codes
//! 0 (all good), 1 (a file is invalid).

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum CheckCommand {
    /// Check that configuration files are valid (and the rule files they name).
    Config {
        /// Configuration files to check.
        #[arg(required = true)]
        files: Vec<String>,
    },
}

/// Runs a check command and returns the process exit code.
pub fn run(cmd: CheckCommand) -> i32 {
    match cmd {
        CheckCommand::Config { files } => check_configs(&files),
    }
}

fn check_configs(files: &[String]) -> i32 {
    let mut failed = false;
    for f in files {
        match vigil_config::check_config(f) {
            Ok(summary) => {
                println!("{summary}");
                println!();
            }
            Err(e) => {
                eprintln!("Checking {f}");
                eprintln!("  FAILED: {e}");
                eprintln!();
                failed = true;
            }
        }
    }
    i32::from(failed)
}
