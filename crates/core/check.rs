//! `vigil check config|rules` and `vigil test rules`: promtool-compatible
//! checks with promtool's exit codes (0 good, 1 invalid, 3 lint failures
//! with `--lint-fatal`).

use clap::Subcommand;
use std::path::PathBuf;
use vigil_rules::check::{check_rules, CheckRulesOptions};

#[derive(Subcommand, Debug)]
pub enum CheckCommand {
    /// Check that configuration files are valid (and the rule files they name).
    Config {
        /// Configuration files to check.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Check that rule files are valid (standard input when no file is given).
    Rules {
        /// Linting checks: "duplicate-rules" (default) or "none".
        #[arg(long, default_value = "duplicate-rules", value_parser = ["duplicate-rules", "none"])]
        lint: String,
        /// Make lint errors exit with code 3.
        #[arg(long = "lint-fatal")]
        lint_fatal: bool,
        /// Rule files to check.
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TestCommand {
    /// Unit-test rule files (the format of `promtool test rules`).
    Rules {
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs a check command and returns the process exit code.
pub fn run(cmd: CheckCommand) -> i32 {
    match cmd {
        CheckCommand::Config { files } => check_configs(&files),
        CheckCommand::Rules {
            lint,
            lint_fatal,
            files,
        } => check_rules(
            &files,
            &CheckRulesOptions {
                lint_duplicates: lint == "duplicate-rules",
                lint_fatal,
            },
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        ),
    }
}

/// Runs a test command and returns the process exit code.
pub fn run_test(cmd: TestCommand) -> i32 {
    match cmd {
        TestCommand::Rules { files } => vigil_rules::unittest::test_rules(
            &files,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        ),
    }
}

/// Checks each config file and, like promtool, the rule files it names.
fn check_configs(files: &[String]) -> i32 {
    let mut failed = false;
    for f in files {
        match vigil_config::check_config(f) {
            Ok(summary) => {
                println!("{summary}");
                println!();
                if !summary.rule_files.is_empty() {
                    let code = check_rules(
                        &summary.rule_files,
                        &CheckRulesOptions::default(),
                        &mut std::io::stdout(),
                        &mut std::io::stderr(),
                    );
                    failed |= code != 0;
                }
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
