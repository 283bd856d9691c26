//! Secrets kept out of `feeds.toml`: `password_file = "name"` instead of `password`,
//! and a header's value as `{ file = "name" }` instead of a string. Each file holds
//! the secret alone; one final line break is dropped. A relative name is looked up
//! in `$CREDENTIALS_DIRECTORY` when systemd set it (`LoadCredential=`), else beside
//! the config file. The files are read whenever the config is (start, reload,
//! `check`), so a rotated secret takes effect on reload. A missing or unreadable
//! file is a config error naming the source; the secret itself is never shown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;
use url::Url;

use super::check::Checker;
use super::raw::RawSecret;

/// Where systemd puts the credentials of `LoadCredential=`.
pub const CREDENTIALS_ENV: &str = "CREDENTIALS_DIRECTORY";

impl Checker<'_> {
    /// A source's `headers`, each value read from its file when it names one.
    pub(super) fn header_values(
        &mut self,
        raw: BTreeMap<String, Spanned<RawSecret>>,
        url: &Url,
    ) -> BTreeMap<String, Spanned<String>> {
        let mut headers = BTreeMap::new();
        for (name, value) in raw {
            let span = value.span();
            let text = match value.into_inner() {
                RawSecret::Text(text) => Some(text),
                RawSecret::File(file) => {
                    self.secret_file(&Spanned::new(span.clone(), file.file), &name, url)
                }
            };
            if let Some(text) = text {
                headers.insert(name, Spanned::new(span, text));
            }
        }
        headers
    }

    /// A source's password: `password`, or the contents of `password_file`.
    pub(super) fn password(
        &mut self,
        password: Option<String>,
        file: Option<Spanned<String>>,
        url: &Url,
    ) -> Option<String> {
        match (password, file) {
            (password, None) => password,
            (None, Some(file)) => self.secret_file(&file, "password_file", url),
            (Some(_), Some(file)) => {
                self.report(
                    Some(file.span()),
                    "give `password` or `password_file`, not both".to_string(),
                );
                None
            }
        }
    }

    /// The secret in the file `name` (see the module's comment); `None`, with the
    /// problem reported, when it cannot be read.
    fn secret_file(&mut self, name: &Spanned<String>, what: &str, url: &Url) -> Option<String> {
        let path = secret_path(
            Path::new(name.as_ref().trim()),
            self.path,
            std::env::var_os(CREDENTIALS_ENV).map(PathBuf::from),
        );
        let source = super::shown_url(url.as_str(), &[]);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let text = text
                    .strip_suffix('\n')
                    .map(|t| t.strip_suffix('\r').unwrap_or(t))
                    .unwrap_or(&text);
                Some(text.to_string())
            }
            Err(err) => {
                self.report(
                    Some(name.span()),
                    format!(
                        "source {source}: cannot read the secret of `{what}` from {}: {err}",
                        path.display()
                    ),
                );
                None
            }
        }
    }
}

/// Where a secret file named `name` is: as written when absolute, else in the
/// credentials directory when there is one, else beside the config file.
fn secret_path(name: &Path, config: &Path, credentials: Option<PathBuf>) -> PathBuf {
    if name.is_absolute() {
        return name.to_owned();
    }
    match credentials.filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => dir.join(name),
        None => config.parent().unwrap_or(Path::new("")).join(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, parse};

    #[test]
    fn relative_names_are_in_the_credentials_directory_else_beside_the_config() {
        let config = Path::new("/etc/tributary/feeds.toml");
        let credentials = Some(PathBuf::from("/run/credentials/tributary.service"));
        assert_eq!(
            secret_path(Path::new("key"), config, credentials.clone()),
            Path::new("/run/credentials/tributary.service/key")
        );
        assert_eq!(
            secret_path(Path::new("key"), config, None),
            Path::new("/etc/tributary/key")
        );
        assert_eq!(
            secret_path(Path::new("/srv/key"), config, credentials),
            Path::new("/srv/key")
        );
        assert_eq!(
            secret_path(Path::new("key"), Path::new("feeds.toml"), None),
            Path::new("key")
        );
    }

    #[test]
    fn secrets_are_read_from_files_and_missing_ones_are_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password"), "hunter22\n").unwrap();
        std::fs::write(dir.path().join("token"), "Bearer abc\r\n").unwrap();
        let config = dir.path().join("feeds.toml");
        let text = "[[source]]\nurl = \"https://a.example/rss\"\nusername = \"me\"\npassword_file = \"password\"\nheaders = { Authorization = { file = \"token\" }, X-Plain = \"p\" }\n";
        let parsed = parse(&config, text, None).unwrap();
        let request = &parsed.sources[0].request;
        assert_eq!(
            request.basic_auth,
            Some(("me".into(), Some("hunter22".into())))
        );
        assert_eq!(request.headers["Authorization"], "Bearer abc");
        assert_eq!(request.headers["X-Plain"], "p");

        let text = "[[source]]\nurl = \"https://a.example/rss\"\nusername = \"me\"\npassword_file = \"nothing\"\nheaders = { Authorization = { file = \"/nonexistent/token\" } }\n[[source]]\nurl = \"https://b.example/rss\"\npassword = \"x\"\npassword_file = \"password\"\n";
        let Err(ConfigError::Invalid { problems }) = parse(&config, text, None) else {
            panic!("a missing secret file is an error");
        };
        let messages: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            messages[0].contains(
                ":4:17: source https://a.example/rss: cannot read the secret of `password_file`"
            ),
            "{messages:#?}"
        );
        assert!(
            messages[0].contains("nothing: No such file"),
            "{messages:#?}"
        );
        assert!(messages[1].contains(":5:29: source https://a.example/rss: cannot read the secret of `Authorization` from /nonexistent/token"), "{messages:#?}");
        assert!(
            messages[2].contains(":9:17: give `password` or `password_file`, not both"),
            "{messages:#?}"
        );
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert!(messages.iter().all(|m| !m.contains("hunter22")));
        // Any other shape is refused with the two it may take.
        let text = "[[source]]\nurl = \"https://c.example/rss\"\nheaders = { X-Key = { path = \"token\" } }\n";
        let err = parse(&config, text, None).unwrap_err().to_string();
        assert!(
            err.contains(":3:21: a string, or { file = \"path\" }"),
            "{err}"
        );
    }

    #[test]
    fn a_secret_of_several_lines_is_not_a_header_value_and_is_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "line one\nline two\n").unwrap();
        let config = dir.path().join("feeds.toml");
        let text = "[[source]]\nurl = \"https://a.example/rss\"\nheaders = { Authorization = { file = \"token\" } }\n";
        let Err(ConfigError::Invalid { problems }) = parse(&config, text, None) else {
            panic!("control characters are refused");
        };
        assert!(
            problems[0].message.contains("control characters"),
            "{problems:?}"
        );
        assert!(!problems[0].message.contains("line one"), "{problems:?}");
    }
}
