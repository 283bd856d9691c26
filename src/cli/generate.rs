//! The hidden `generate`: man pages and shell completions, written from the clap
//! definitions of [`super::Cli`].

use super::{Cli, Generated};
use anyhow::Context;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

pub(super) fn generate(what: Generated) -> anyhow::Result<()> {
    let (Generated::Man { out } | Generated::Completions { out }) = &what;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut command = Cli::command();
    match what {
        Generated::Man { out } => {
            let mut written = vec![write_man(&out, "tributary", command.clone())?];
            for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
                let name = format!("tributary-{}", sub.get_name());
                written.push(write_man(&out, &name, sub.clone().name(name.clone()))?);
            }
            for path in written {
                println!("{}", path.display());
            }
        }
        Generated::Completions { out } => {
            use clap_complete::Shell;
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let path = clap_complete::generate_to(shell, &mut command, "tributary", &out)
                    .with_context(|| format!("writing {shell} completions"))?;
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}

fn write_man(dir: &Path, name: &str, command: clap::Command) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
