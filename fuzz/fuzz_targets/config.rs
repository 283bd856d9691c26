//! Config text → checked config, exactly as `tributary check` reads `feeds.toml`
//! (`config::parse`), then the report it would print: every problem's message with
//! its line and column, which indexes into the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};

fuzz_target!(|data: &[u8]| {
    // `config::load` reads the file as UTF-8; anything else never reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match tributary::config::parse(
        Path::new("/etc/tributary/feeds.toml"),
        text,
        Some(PathBuf::from("/var/lib/tributary")),
    ) {
        Ok(config) => {
            // What `check` prints and the daemon derives at start.
            let _ = format!(
                "{} {} {}",
                config.store_path.display(),
                config.listen,
                config.publish.timezone.name()
            );
            let _ = config.shortest_interval();
            for source in &config.sources {
                let _ = source.fingerprint();
            }
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
