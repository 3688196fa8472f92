//! The `pagesim` binary: parses the command line and hands over to the
//! library; prints the report, or the error with its exit code (1 runtime
//! failure, 2 usage or input error).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = pagesim::cli::Cli::parse();
    match pagesim::run(cli) {
        Ok(text) => {
            // A closed pipe (`pagesim | head`) is not an error worth a panic.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pagesim: error: {e}");
            ExitCode::from(e.exit_kind() as u8)
        }
    }
}
