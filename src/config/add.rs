//! `tributary add`: appends a `[[source]]` table to the text of `feeds.toml`, keeping
//! every comment, blank line and key order of the file as it was (toml_edit).
//!
//! Pure text in, text out: the command (`cli::edit`) fetches and checks the feed
//! first, checks the new text with `config::parse` before writing it, and tells no
//! daemon (a reload does).

pub use super::edit::EditError as AddError;
use super::edit::{append_tables, source_table};
use url::Url;

/// What the new `[[source]]` holds.
#[derive(Clone, Debug, Default)]
pub struct NewSource {
    pub url: Option<Url>,
    pub name: Option<String>,
    pub tags: Vec<String>,
}

/// `text` with `source` appended as its last source.
pub fn append_source(text: &str, source: &NewSource) -> Result<String, AddError> {
    let url = source.url.as_ref().ok_or(AddError::NoUrl)?;
    let table = source_table(url.as_str(), source.name.as_deref(), &source.tags);
    append_tables(text, vec![table])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_layout_are_kept() {
        let text = "# My feeds\n\n[server]\nlisten = \"127.0.0.1:8080\" # local only\n\n# World news\n[[source]]\nurl = \"https://a.example/rss\"\ntags = [ \"world\" ]\n";
        let added = append_source(
            text,
            &NewSource {
                url: Some(Url::parse("https://b.example/feed.xml").unwrap()),
                name: Some("B \"quoted\"".into()),
                tags: vec!["tech".into(), "en".into()],
            },
        )
        .unwrap();
        assert_eq!(
            added,
            format!(
                "{text}\n[[source]]\nurl = \"https://b.example/feed.xml\"\nname = 'B \"quoted\"'\ntags = [\"tech\", \"en\"]\n"
            )
        );
    }

    #[test]
    fn a_file_without_sources_gets_its_first() {
        let added = append_source(
            "[poll]\ninterval = \"15m\"",
            &NewSource {
                url: Some(Url::parse("https://b.example/").unwrap()),
                ..NewSource::default()
            },
        )
        .unwrap();
        assert_eq!(
            added,
            "[poll]\ninterval = \"15m\"\n\n[[source]]\nurl = \"https://b.example/\"\n"
        );
    }
}
