//! The `tributary` command: `run` the daemon, `check` a config, `poll` once,
//! `inspect` one feed or page, `add` a source to the config, list the `sources` and
//! their status, `import-opml` and `export-opml`; a hidden `generate` writes the man
//! pages and shell completions.

mod discover;
mod edit;
mod generate;
mod inspect;
mod manage;
mod migrate;
mod reset;
mod run;
mod shared;
mod sources;

use crate::config::{self, Config};
use crate::store::StoreError;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use url::Url;

/// sysexits.h EX_CONFIG: the configuration is wrong; restarting will not help.
const EXIT_CONFIG: u8 = 78;
/// sysexits.h EX_IOERR: the store could not be read or written.
const EXIT_STORE_IO: u8 = 74;
/// sysexits.h EX_UNAVAILABLE: another process (a running daemon) holds the store.
const EXIT_STORE_BUSY: u8 = 69;

/// The examples of `--help`.
const EXAMPLES: &str = "Every command that reads a config takes --config PATH; without it the \
config is $TRIBUTARY_CONFIG, else ./feeds.toml, else /etc/tributary/feeds.toml \
(`tributary check` says which it read).\n\nExamples:\n  tributary check --config /etc/tributary/feeds.toml\n  \
tributary run --config /etc/tributary/feeds.toml\n  tributary add https://example.org/ --tag news\n  \
tributary sources\n  \
tributary disable https://example.org/rss.xml --dry-run\n  tributary reset https://example.org/rss.xml\n  \
tributary import-opml subscriptions.opml\n  tributary export-opml > feeds.opml";

const EXIT_CODES: &str = "\
Exit status:
  0   success
  1   any other failure (the message says what)
  2   bad usage: unknown command or option
  69  the store is in use by another process (is the daemon running?)
  74  the store could not be read or written
  78  the config file is missing or invalid (every mistake is listed)";

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "A feed aggregator daemon: polls RSS, Atom and JSON Feed sources and republishes the merged river of news",
    long_about = "A feed aggregator daemon: polls the RSS, Atom and JSON Feed sources listed in feeds.toml, \
keeps their items in one store, and republishes the merged river of news over HTTP \
(RSS 2.0, Atom, JSON Feed, an HTML page and OPML).",
    after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}")
)]
pub struct Cli {
    /// Log level: error, warn, info, debug or trace [default: $RUST_LOG, else info].
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<tracing::level_filters::LevelFilter>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start-up: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Check the config and print a summary; exit 78 when it is invalid.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Poll every source once now, store what they hold, print a summary and exit
    /// (the daemon must not be running on the same store).
    Poll {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Fetch (or read) one feed and print it as the daemon would store it. A web page
    /// is searched for the feed it advertises; with --item, --title and --link its
    /// items are read with those CSS selectors, as a kind = "html" source would.
    Inspect {
        /// A feed or page file, or an http(s) URL.
        file_or_url: String,
        /// Print one JSON object instead of a summary.
        #[arg(long)]
        json: bool,
        /// Read dates that name no zone in this IANA time zone, as the source's
        /// `timezone` would.
        #[arg(long, default_value = "UTC")]
        timezone: chrono_tz::Tz,
        /// The address a page file was saved from: relative links resolve against it
        /// (the links of a file without it cannot be made http(s) links).
        #[arg(long, requires = "item")]
        base_url: Option<Url>,
        #[command(flatten)]
        selectors: SelectorArgs,
    },
    /// Fetch a feed (or the feed a web page advertises), check that it reads, and
    /// append it to the config as a [[source]], keeping the file's comments. A
    /// running daemon picks it up on its next reload.
    Add {
        /// The feed's or the site's http(s) URL.
        url: String,
        /// The source's display name (default: the feed's own title).
        #[arg(long)]
        name: Option<String>,
        /// A tag for every item of the source; repeat for more.
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        dry_run: DryRun,
    },
    /// Print each source's status: ok, failing, backing off or gone, its last success
    /// and error, next poll and items stored.
    ///
    /// Asks the running daemon (at the config's [server] admin_listen address, else
    /// listen); when none answers, reads the store directly.
    Sources {
        #[command(flatten)]
        config: ConfigArg,
        /// Print the JSON of /sources.json instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Append the feeds of an OPML subscription list to the config, keeping its
    /// comments and layout.
    ///
    /// Feeds already configured are skipped; folders and OPML categories become
    /// tags. A running daemon picks the new sources up on its next reload.
    ImportOpml {
        /// The OPML file (as exported by most feed readers).
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        dry_run: DryRun,
    },
    /// Print the configured sources as an OPML 2.0 subscription list.
    ExportOpml {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Remove a source's [[source]] table from the config, keeping every other line
    /// and comment. Its stored items age out by retention.
    Remove {
        /// The source's URL as written in the config, or its id (as `tributary
        /// sources` and /opml show it).
        source: String,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        dry_run: DryRun,
    },
    /// Set `enabled = false` on a source: it stays in the config but is not polled.
    Disable {
        /// The source's URL as written in the config, or its id.
        source: String,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        dry_run: DryRun,
    },
    /// Poll a disabled source again (drops its `enabled = false`).
    Enable {
        /// The source's URL as written in the config, or its id.
        source: String,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        dry_run: DryRun,
    },
    /// Print the effective config as TOML, every default filled in and secrets
    /// shown as "<redacted>".
    Config {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Forget a source's failures, backoff and 410 Gone, so it is polled at once.
    ///
    /// Asks the running daemon ([server] admin_listen, else listen when that is a
    /// loopback address); when none answers, writes the store directly.
    Reset {
        /// The source's URL as written in the config, or its id.
        source: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Copy every item, tombstone and source state of one store into another (empty)
    /// one: the embedded store into PostgreSQL, or back. Stop the daemons first.
    MigrateStore {
        /// The store to read: sled:PATH, postgres://... or postgres:CONNINFO.
        from: migrate::StoreSpec,
        /// The store to write, named the same way; it must hold no items.
        to: migrate::StoreSpec,
        /// A file whose first line is the PostgreSQL password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Write the man pages or shell completions, generated from these definitions.
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: Generated,
    },
}

#[derive(Subcommand)]
pub enum Generated {
    /// tributary.1 and one page per command (tributary-run.1, ...).
    Man {
        /// The directory to write them to (created when missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Completions for bash (tributary.bash), zsh (_tributary) and fish
    /// (tributary.fish).
    Completions {
        /// The directory to write them to (created when missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// The `[source.selectors]` of a kind = "html" source, on the command line.
#[derive(clap::Args)]
pub struct SelectorArgs {
    /// CSS selector of one element per news item.
    #[arg(long, requires_all = ["title", "link"])]
    item: Option<String>,
    /// CSS selector of the headline, inside an item.
    #[arg(long, requires = "item")]
    title: Option<String>,
    /// CSS selector of the element carrying the link, inside an item.
    #[arg(long, requires = "item")]
    link: Option<String>,
    /// The attribute holding the link.
    #[arg(long, requires = "item", default_value = crate::ingest::scrape::DEFAULT_LINK_ATTRIBUTE)]
    link_attribute: String,
    /// CSS selector of the element carrying the date, inside an item.
    #[arg(long, requires = "item")]
    date: Option<String>,
    /// chrono strftime format of the date, e.g. "%H:%M %d.%m.%Y", read in --timezone.
    #[arg(long, requires = "date")]
    date_format: Option<String>,
    /// Read the date from this attribute of the date element instead of its text.
    #[arg(long, requires = "date")]
    date_attribute: Option<String>,
    /// CSS selector of the element whose HTML becomes the summary.
    #[arg(long, requires = "item")]
    summary: Option<String>,
}

impl SelectorArgs {
    fn rules(&self) -> anyhow::Result<Option<crate::ingest::scrape::Rules>> {
        let (Some(item), Some(title), Some(link)) = (&self.item, &self.title, &self.link) else {
            return Ok(None);
        };
        let text = crate::ingest::scrape::RulesText {
            item: item.clone(),
            title: title.clone(),
            link: link.clone(),
            link_attribute: Some(self.link_attribute.clone()),
            date: self.date.clone(),
            date_attribute: self.date_attribute.clone(),
            date_format: self.date_format.clone(),
            summary: self.summary.clone(),
        };
        Ok(Some(crate::ingest::scrape::Rules::new(text)?))
    }
}

#[derive(clap::Args)]
pub struct ConfigArg {
    /// The config file [default: $TRIBUTARY_CONFIG, else ./feeds.toml, else
    /// /etc/tributary/feeds.toml].
    #[arg(long = "config", value_name = "PATH")]
    path: Option<PathBuf>,
}

impl ConfigArg {
    /// The config file the command reads ([`discover::find`]); the error, when there
    /// is none, is printed and becomes the config exit code.
    fn find(&self) -> Result<discover::Found, ExitCode> {
        discover::find(self.path.as_deref()).map_err(|err| {
            eprintln!("tributary: {err}");
            ExitCode::from(EXIT_CONFIG)
        })
    }

    /// The checked config the command reads.
    fn load(&self) -> Result<Config, ExitCode> {
        load_config(&self.find()?.path)
    }

    /// The checked config of a command that may create the file: with none anywhere,
    /// an empty `./feeds.toml` ([`discover::find_or_new`]).
    fn load_or_new(&self) -> Result<Config, ExitCode> {
        let found = discover::find_or_new(self.path.as_deref());
        if found.path.exists() {
            load_config(&found.path)
        } else {
            Ok(config::parse(&found.path, "", None).expect("an empty config is valid"))
        }
    }
}

/// `--dry-run` of the commands that edit the config.
#[derive(clap::Args, Clone, Copy)]
pub struct DryRun {
    /// Print the change as a unified diff of the config file and write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Runs one command to its end; the exit code says how it went.
pub fn dispatch(command: Command) -> ExitCode {
    if !matches!(command, Command::Run { .. }) {
        crate::sys::stop_quietly_on_closed_pipe();
    }
    match command {
        Command::Run { config } => with_path(&config, run::run),
        Command::Check { config } => match config.find() {
            Ok(found) => run::check(&found),
            Err(code) => code,
        },
        Command::Poll { config } => with(&config, run::poll_once),
        Command::Inspect {
            file_or_url,
            json,
            timezone,
            base_url,
            selectors,
        } => report(selectors.rules().and_then(|rules| match rules {
            Some(rules) => inspect::inspect_page(&file_or_url, json, timezone, rules, base_url),
            None => inspect::inspect(&file_or_url, json, timezone),
        })),
        Command::Add {
            url,
            name,
            tags,
            config,
            dry_run,
        } => match config.load_or_new() {
            Ok(loaded) => report(edit::add(&loaded, &url, name, tags, dry_run.dry_run)),
            Err(code) => code,
        },
        Command::Sources { config, json } => {
            with(&config, |config| sources::sources(&config, json))
        }
        Command::ImportOpml {
            file,
            config,
            dry_run,
        } => {
            let found = discover::find_or_new(config.path.as_deref());
            report(edit::import_opml(&file, &found.path, dry_run.dry_run))
        }
        Command::ExportOpml { config } => with(&config, |config| {
            print!("{}", edit::export_opml(&config));
            Ok(())
        }),
        Command::Remove {
            source,
            config,
            dry_run,
        } => with_path(&config, |path| {
            report(manage::remove(path, &source, dry_run.dry_run))
        }),
        Command::Disable {
            source,
            config,
            dry_run,
        } => with_path(&config, |path| {
            report(manage::set_enabled(path, &source, false, dry_run.dry_run))
        }),
        Command::Enable {
            source,
            config,
            dry_run,
        } => with_path(&config, |path| {
            report(manage::set_enabled(path, &source, true, dry_run.dry_run))
        }),
        Command::Config { config } => with(&config, |config| {
            print!("{}", manage::effective(&config));
            Ok(())
        }),
        Command::Reset { source, config } => with(&config, |config| reset::reset(&config, &source)),
        Command::MigrateStore {
            from,
            to,
            password_file,
        } => report(migrate::migrate(&from, &to, password_file)),
        Command::Generate { what } => report(generate::generate(what)),
    }
}

/// Runs `command` on the path of the config [`ConfigArg::find`] picks.
fn with_path(config: &ConfigArg, command: impl FnOnce(&Path) -> ExitCode) -> ExitCode {
    match config.find() {
        Ok(found) => command(&found.path),
        Err(code) => code,
    }
}

/// Runs `command` on the checked config [`ConfigArg::load`] reads, and reports.
fn with(config: &ConfigArg, command: impl FnOnce(Config) -> anyhow::Result<()>) -> ExitCode {
    match config.load() {
        Ok(config) => report(command(config)),
        Err(code) => code,
    }
}

fn load_config(path: &Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|err| {
        eprintln!("{err}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Prints an error's whole chain on one line and picks the exit code.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tributary: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

/// The sysexits code of a failure: the store's errors have their own, so systemd
/// (`RestartPreventExitStatus=`) and scripts can tell them apart.
fn exit_code(err: &anyhow::Error) -> u8 {
    match err
        .chain()
        .find_map(|cause| cause.downcast_ref::<StoreError>())
    {
        Some(StoreError::Locked { .. }) => EXIT_STORE_BUSY,
        Some(_) => EXIT_STORE_IO,
        None if err
            .chain()
            .any(|cause| cause.downcast_ref::<config::ConfigError>().is_some()) =>
        {
            EXIT_CONFIG
        }
        None => 1,
    }
}
