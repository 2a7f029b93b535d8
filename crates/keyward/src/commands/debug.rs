//! `keyward debug panic`: a deliberate panic, hidden from `--help`, so that any build of the
//! binary can be checked to still name Keyward's own files and lines in a panic's backtrace
//! (`bench/binary.sh` runs it on the release binary, whose debug information is compressed).
//!
//! It is a subcommand, not an environment variable read on some other path, so it can only
//! ever be triggered by someone who types it; it touches no state and panics before doing
//! anything else.

use clap::{Args, Subcommand};

/// `keyward debug …` (hidden).
#[derive(Debug, Args)]
pub struct DebugArgs {
    #[command(subcommand)]
    command: DebugCommand,
}

#[derive(Debug, Subcommand)]
enum DebugCommand {
    /// Panic on purpose (exit code 101), to check that backtraces name files and lines.
    Panic,
}

/// Runs a `keyward debug` subcommand.
pub fn run(args: DebugArgs) -> anyhow::Result<()> {
    match args.command {
        DebugCommand::Panic => deliberate_panic(),
    }
}

/// Not inlined, so the backtrace has a frame of its own for this file and line.
#[inline(never)]
fn deliberate_panic() -> ! {
    panic!("deliberate panic from `keyward debug panic` (a check that backtraces name files and lines)")
}
