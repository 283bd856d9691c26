//! The `tributary` binary and its commands, run as a process: `check`, `inspect`,
//! `run`, exit codes and logging ([`basics`]); `inspect` and `add` on web pages
//! ([`pages`]); `sources`, `import-opml` / `export-opml` and `generate` ([`commands`]).

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod basics;
mod commands;
mod config_file;
mod pages;
mod secrets;
