//! `[publish] hubs`, `hub`, `hub_max_subscriptions`, `hub_allow_private`: the WebSub
//! settings of the feeds tributary publishes (W3C WebSub, "Publishing to readers" in
//! the README). Checked here; the `hub` room acts on them.

use toml::Spanned;
use url::Url;

use super::check::Checker;

/// 10 000 subscriptions to the built-in hub: a few MB of store, and each change of
/// the river costs at most one delivery per subscription.
pub const DEFAULT_HUB_MAX_SUBSCRIPTIONS: usize = 10_000;

/// What the published feeds say about WebSub, and what the built-in hub may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushConfig {
    /// `hubs`: external hubs, advertised in every feed and told (`hub.mode=publish`)
    /// after each change of the river.
    pub hubs: Vec<Url>,
    /// `hub = "builtin"`: tributary is a hub for its own feeds, at `/hub`.
    pub builtin: bool,
    /// `hub_max_subscriptions`: most subscriptions the built-in hub holds.
    pub max_subscriptions: usize,
    /// `hub_allow_private`: the built-in hub may call back subscribers on loopback,
    /// private and link-local addresses. Off by default: anyone can subscribe, and a
    /// callback is a request tributary makes wherever the subscriber says.
    pub allow_private: bool,
}

impl Checker<'_> {
    /// The WebSub settings of `[publish]`.
    pub(super) fn push(
        &mut self,
        hubs: Vec<Spanned<String>>,
        hub: Option<Spanned<String>>,
        max_subscriptions: Option<Spanned<usize>>,
        allow_private: Option<bool>,
    ) -> PushConfig {
        let hubs = hubs
            .iter()
            .filter_map(|raw| self.http_url(raw, "[publish] hubs entry"))
            .collect();
        let builtin = match hub {
            None => false,
            Some(raw) if raw.as_ref().trim() == "builtin" => true,
            Some(raw) => {
                self.report(
                    Some(raw.span()),
                    format!(
                        "[publish] hub `{}` is not known; the one hub tributary runs is \"builtin\" (external hubs go in `hubs`)",
                        raw.as_ref()
                    ),
                );
                false
            }
        };
        PushConfig {
            hubs,
            builtin,
            max_subscriptions: self.at_least_one(
                max_subscriptions,
                "hub_max_subscriptions",
                DEFAULT_HUB_MAX_SUBSCRIPTIONS,
            ),
            allow_private: allow_private.unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn check(text: &str) -> Result<super::PushConfig, Vec<String>> {
        crate::config::parse(Path::new("feeds.toml"), text, None)
            .map(|config| config.publish.push)
            .map_err(|err| match err {
                crate::config::ConfigError::Invalid { problems } => {
                    problems.into_iter().map(|p| p.message).collect()
                }
                other => vec![other.to_string()],
            })
    }

    #[test]
    fn hubs_and_the_builtin_hub() {
        let push = check("[publish]\nhubs = [\"https://hub.example/\"]\nhub = \"builtin\"\nhub_max_subscriptions = 5\nhub_allow_private = true\n").unwrap();
        assert_eq!(push.hubs[0].as_str(), "https://hub.example/");
        assert!(push.builtin && push.allow_private);
        assert_eq!(push.max_subscriptions, 5);
        let default = check("").unwrap();
        assert!(default.hubs.is_empty() && !default.builtin && !default.allow_private);
        assert_eq!(
            default.max_subscriptions,
            super::DEFAULT_HUB_MAX_SUBSCRIPTIONS
        );
    }

    #[test]
    fn bad_hubs_are_errors() {
        let problems =
            check("[publish]\nhubs = [\"ftp://hub.example/\"]\nhub = \"superfeedr\"\nhub_max_subscriptions = 0\n")
                .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[1].contains("builtin"));
    }
}
