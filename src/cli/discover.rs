//! Which config file a command reads: `--config PATH`, else `$TRIBUTARY_CONFIG`, else
//! `./feeds.toml`, else `/etc/tributary/feeds.toml`. Every command that takes a config
//! asks [`find`]; `check` says which one it read and why.
//!
//! A path given by the flag or the environment is used as given: when it names no
//! file the command fails naming it, rather than silently reading another file.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "TRIBUTARY_CONFIG";
/// Looked for in the working directory.
pub const CWD_CONFIG: &str = "feeds.toml";
/// Where the Debian package installs the config.
pub const SYSTEM_CONFIG: &str = "/etc/tributary/feeds.toml";

/// Why a config file was picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    Flag,
    Env,
    Cwd,
    System,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Why::Flag => "given with --config",
            Why::Env => "named by $TRIBUTARY_CONFIG",
            Why::Cwd => "found in the working directory",
            Why::System => "the system-wide config",
        })
    }
}

/// The config file a command reads, and why that one.
#[derive(Clone, Debug)]
pub struct Found {
    pub path: PathBuf,
    pub why: Why,
}

/// No config file in any of the places looked.
#[derive(Debug)]
pub struct NotFound;

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no config file: looked for --config PATH (not given), ${CONFIG_ENV} (not set), \
             ./{CWD_CONFIG} (not there) and {SYSTEM_CONFIG} (not there); \
             write one (`tributary add URL` or `import-opml FILE` starts ./{CWD_CONFIG}) or pass --config PATH"
        )
    }
}

/// The config file to read, from the `--config` flag's value.
pub fn find(flag: Option<&Path>) -> Result<Found, NotFound> {
    find_in(
        flag,
        std::env::var_os(CONFIG_ENV),
        Path::new(CWD_CONFIG),
        Path::new(SYSTEM_CONFIG),
    )
}

/// The config file a command that may create it writes (`add`, `import-opml`): the one
/// [`find`] picks, else `./feeds.toml`, which is then created.
pub fn find_or_new(flag: Option<&Path>) -> Found {
    find(flag).unwrap_or_else(|NotFound| Found {
        path: PathBuf::from(CWD_CONFIG),
        why: Why::Cwd,
    })
}

fn find_in(
    flag: Option<&Path>,
    env: Option<OsString>,
    cwd: &Path,
    system: &Path,
) -> Result<Found, NotFound> {
    let found = |path: PathBuf, why| Ok(Found { path, why });
    if let Some(path) = flag {
        return found(path.to_owned(), Why::Flag);
    }
    if let Some(path) = env.filter(|p| !p.is_empty()) {
        return found(PathBuf::from(path), Why::Env);
    }
    if cwd.exists() {
        return found(cwd.to_owned(), Why::Cwd);
    }
    if system.exists() {
        return found(system.to_owned(), Why::System);
    }
    Err(NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_place_that_answers_wins() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("feeds.toml");
        let system = dir.path().join("etc.toml");
        let missing = dir.path().join("missing.toml");
        let at = |flag: Option<&Path>, env: Option<&str>| {
            find_in(flag, env.map(OsString::from), &cwd, &system)
                .map(|found| (found.path, found.why))
        };
        // Nothing anywhere.
        assert!(at(None, None).is_err());
        assert!(at(None, Some("")).is_err(), "an empty variable is unset");
        std::fs::write(&system, "").unwrap();
        assert_eq!(at(None, None).unwrap(), (system.clone(), Why::System));
        std::fs::write(&cwd, "").unwrap();
        assert_eq!(at(None, None).unwrap(), (cwd.clone(), Why::Cwd));
        // The flag and the variable are taken as given, even when missing.
        assert_eq!(
            at(None, Some("/x/env.toml")).unwrap(),
            (PathBuf::from("/x/env.toml"), Why::Env)
        );
        assert_eq!(
            at(Some(&missing), Some("/x/env.toml")).unwrap(),
            (missing.clone(), Why::Flag)
        );
    }

    #[test]
    fn not_found_names_every_place() {
        let message = NotFound.to_string();
        for place in [
            "--config",
            "$TRIBUTARY_CONFIG",
            "./feeds.toml",
            SYSTEM_CONFIG,
        ] {
            assert!(message.contains(place), "{message}");
        }
    }
}
