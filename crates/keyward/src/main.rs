//! The `keyward` binary: the server, the emulator, the demo and the operator's commands.
//!
//! The layout follows the command line: [`commands`] holds the top-level parser and the binary's
//! own commands (the server, its host-side administration, the emulator, the demo); the
//! operator's commands come from `keyward-cli`. This file only sets up logging, parses and
//! reports the result.

mod commands;

use clap::Parser;

/// mimalloc instead of glibc's malloc: a request allocates and frees many small buffers (JSON,
/// headers, rows), and glibc's allocator was about a tenth of the server's CPU per issuance in a
/// profile; mimalloc's thread-local free lists make those calls cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYWARD_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(commands::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
