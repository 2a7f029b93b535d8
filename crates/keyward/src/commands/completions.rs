//! `keyward completions SHELL` and `keyward man`: generated from the same clap definition as the
//! commands themselves (clap_complete, clap_mangen), so they never drift from `--help`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use clap_complete::Shell;

/// `keyward completions …`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

/// `keyward man …`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command (keyward.1, keyward-people.1, …) into this directory instead of
    /// printing keyward.1 to standard output.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` for the command tree `cmd`.
pub fn completions(args: CompletionsArgs, mut cmd: clap::Command) -> anyhow::Result<()> {
    let name = cmd.get_name().to_owned();
    clap_complete::generate(args.shell, &mut cmd, name, &mut std::io::stdout());
    Ok(())
}

/// Prints the top-level man page, or writes every command's page into `--out`.
pub fn man(args: ManArgs, cmd: clap::Command) -> anyhow::Result<()> {
    match args.out {
        None => {
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
            eprintln!(
                "man pages written to {} (view one with `man -l {}/keyward.1`)",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(())
}
