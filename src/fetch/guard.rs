//! Which addresses a source may make tributary connect to: the guard against a feed
//! pulling internal content (a metadata service, an admin page on the LAN, another
//! daemon on this machine) into the public river through a redirect or its DNS.
//!
//! [`classify`] sorts an address into an [`AddressClass`]; an [`AddressPolicy`], made
//! once per source from its configured URL and its `allow_private` option, says which
//! classes its requests may reach. `fetch` asks it on every redirect hop whose host is
//! an IP literal, and [`GuardedResolver`] asks it for every address DNS returns, so a
//! name that resolves (or re-resolves) to an internal address is refused too.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::{Host, Url};

/// What kind of network an address belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Reachable on the internet: always allowed.
    Public,
    /// This machine: 127.0.0.0/8, ::1.
    Loopback,
    /// A private network: 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT),
    /// fc00::/7 (unique local), fec0::/10 (the former site-local).
    Private,
    /// The local link: 169.254/16 (including the cloud metadata service at
    /// 169.254.169.254), fe80::/10. Reached only with `allow_private`.
    LinkLocal,
    /// Not a host on any network a feed lives on: 0/8 and the unspecified addresses
    /// (which Linux connects to this machine), multicast, broadcast, 240/4, the
    /// documentation, benchmarking and IETF protocol ranges.
    Reserved,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Reserved => "a reserved address",
        })
    }
}

/// The class of `ip`. IPv4 addresses embedded in IPv6 (`::ffff:10.0.0.1`,
/// `::10.0.0.1`, NAT64 `64:ff9b::10.0.0.1`) are classed as the IPv4 address they carry.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        AddressClass::Private
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if a == 0
        || a >= 224 // multicast 224/4, reserved 240/4, broadcast
        || ip.is_documentation()
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19))
    // benchmarking
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    if ip.is_unspecified() {
        return AddressClass::Reserved;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // ::a.b.c.d (IPv4-compatible) and 64:ff9b::a.b.c.d (NAT64) reach an IPv4 host.
    if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded);
    }
    match s[0] {
        x if x & 0xfe00 == 0xfc00 => AddressClass::Private,
        x if x & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        x if x & 0xffc0 == 0xfec0 => AddressClass::Private,
        x if x & 0xff00 == 0xff00 => AddressClass::Reserved,
        0x2001 if s[1] == 0x0db8 => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

/// Which address classes one source's requests may reach.
///
/// Public addresses always; every class with `allow_private = true`; otherwise only
/// the class of the configured URL itself when its host is an IP literal (or
/// `localhost`): a source configured on 127.0.0.1 may follow a redirect to another
/// loopback port, but not to 10.0.0.1 or 169.254.169.254. Link-local addresses are
/// reached only with `allow_private`. A configured host *name* grants nothing, since
/// whoever runs its DNS could make it resolve anywhere: an intranet feed reached by
/// name needs `allow_private = true`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddressPolicy {
    allow_private: bool,
    /// The non-public class of the configured URL's host, if it names one.
    configured: Option<AddressClass>,
}

impl AddressPolicy {
    /// The policy of a source configured at `url`.
    pub fn for_source(url: &Url, allow_private: bool) -> AddressPolicy {
        let configured = match url.host() {
            Some(Host::Ipv4(ip)) => Some(classify_v4(ip)),
            Some(Host::Ipv6(ip)) => Some(classify_v6(ip)),
            Some(Host::Domain(name)) if is_localhost(name) => Some(AddressClass::Loopback),
            _ => None,
        }
        .filter(|class| !matches!(class, AddressClass::Public | AddressClass::LinkLocal));
        AddressPolicy {
            allow_private,
            configured,
        }
    }

    /// Whether every class may be reached (`allow_private = true`).
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Whether requests may reach an address of `class`.
    pub fn allows(&self, class: AddressClass) -> bool {
        class == AddressClass::Public || self.allow_private || self.configured == Some(class)
    }

    /// Refuses a URL whose host is an IP literal of a class this policy does not
    /// allow; host names are left to [`GuardedResolver`].
    pub fn check_url(&self, url: &Url, redirect: bool) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        let class = classify(ip);
        if self.allows(class) {
            return Ok(());
        }
        Err(Refused {
            what: if redirect {
                format!("redirect to {ip}")
            } else {
                ip.to_string()
            },
            class,
        })
    }
}

/// `localhost` and its subdomains, which resolvers answer with loopback addresses
/// (RFC 6761).
fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// A request refused because it would reach an address its source may not reach.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("refused: {what} is {class}; set allow_private = true to allow")]
pub struct Refused {
    /// What was refused: "redirect to 169.254.169.254", "10.0.0.1", or
    /// "intranet.example (10.0.0.1)".
    pub what: String,
    pub class: AddressClass,
}

/// A DNS resolver for reqwest that drops the addresses an [`AddressPolicy`] does not
/// allow, and fails when none is left. Checking what the connection will really use,
/// rather than resolving the name beforehand, leaves no window for DNS rebinding.
///
/// It is not consulted when a proxy is configured (`HTTP_PROXY`, `HTTPS_PROXY`,
/// `ALL_PROXY`): the proxy resolves the feed's host name, so then only IP-literal hosts
/// are checked, and the proxy itself must keep requests away from internal addresses.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    pub policy: AddressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = found
                .into_iter()
                .partition(|addr| policy.allows(classify(addr.ip())));
            match refused.first() {
                Some(first) if allowed.is_empty() => Err(Box::new(Refused {
                    what: format!("{host} ({})", first.ip()),
                    class: classify(first.ip()),
                })
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;

    fn class(text: &str) -> AddressClass {
        classify(text.parse().unwrap())
    }

    #[test]
    fn addresses_are_classified() {
        for (ip, expected) in [
            ("93.184.216.34", AddressClass::Public),
            ("8.8.8.8", AddressClass::Public),
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.0.9", AddressClass::Loopback),
            ("10.0.0.1", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("172.32.0.1", AddressClass::Public),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::Private),
            ("100.127.255.255", AddressClass::Private),
            ("100.128.0.1", AddressClass::Public),
            ("169.254.169.254", AddressClass::LinkLocal),
            ("169.254.0.1", AddressClass::LinkLocal),
            ("0.0.0.0", AddressClass::Reserved),
            ("0.1.2.3", AddressClass::Reserved),
            ("255.255.255.255", AddressClass::Reserved),
            ("224.0.0.1", AddressClass::Reserved),
            ("240.0.0.1", AddressClass::Reserved),
            ("192.0.2.1", AddressClass::Reserved),
            ("198.51.100.1", AddressClass::Reserved),
            ("203.0.113.1", AddressClass::Reserved),
            ("198.18.0.1", AddressClass::Reserved),
            ("192.0.0.8", AddressClass::Reserved),
            ("2606:4700::1111", AddressClass::Public),
            ("::1", AddressClass::Loopback),
            ("::", AddressClass::Reserved),
            ("fc00::1", AddressClass::Private),
            ("fd12:3456::1", AddressClass::Private),
            ("fec0::1", AddressClass::Private),
            ("fe80::1", AddressClass::LinkLocal),
            ("ff02::1", AddressClass::Reserved),
            ("2001:db8::1", AddressClass::Reserved),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::LinkLocal),
            ("::ffff:10.0.0.1", AddressClass::Private),
            ("::10.0.0.1", AddressClass::Private),
            ("64:ff9b::a9fe:a9fe", AddressClass::LinkLocal),
            ("::ffff:8.8.8.8", AddressClass::Public),
        ] {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    fn policy(url: &str, allow_private: bool) -> AddressPolicy {
        AddressPolicy::for_source(&Url::parse(url).unwrap(), allow_private)
    }

    #[test]
    fn a_source_reaches_public_addresses_and_its_own_class() {
        use AddressClass::*;
        let public = policy("https://example.org/feed", false);
        assert!(public.allows(Public));
        for class in [Loopback, Private, LinkLocal, Reserved] {
            assert!(!public.allows(class), "{class:?}");
        }
        let loopback = policy("http://127.0.0.1:8080/feed", false);
        assert!(loopback.allows(Public) && loopback.allows(Loopback));
        assert!(!loopback.allows(Private) && !loopback.allows(LinkLocal));
        assert_eq!(policy("http://localhost:8080/", false), loopback);
        assert_eq!(policy("http://[::1]:8080/", false), loopback);
        let lan = policy("http://192.168.1.10/feed", false);
        assert!(lan.allows(Private) && !lan.allows(Loopback) && !lan.allows(LinkLocal));
        // Link-local only ever with allow_private, even when configured there.
        let metadata = policy("http://169.254.169.254/latest/", false);
        assert!(!metadata.allows(LinkLocal));
        let open = policy("https://example.org/feed", true);
        for class in [Public, Loopback, Private, LinkLocal, Reserved] {
            assert!(open.allows(class), "{class:?}");
        }
    }

    #[test]
    fn ip_literal_urls_are_checked_with_a_clear_reason() {
        let loopback = policy("http://127.0.0.1:8080/feed", false);
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(
            loopback
                .check_url(&url("http://127.0.0.1:9/x"), true)
                .is_ok()
        );
        assert!(
            loopback
                .check_url(&url("https://example.org/"), true)
                .is_ok()
        );
        let refused = loopback
            .check_url(&url("http://169.254.169.254/latest/meta-data/"), true)
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "refused: redirect to 169.254.169.254 is a link-local address; set allow_private = true to allow"
        );
        let refused = loopback
            .check_url(&url("http://10.0.0.1/"), true)
            .unwrap_err();
        assert_eq!(refused.class, AddressClass::Private);
        // Other spellings of an address are parsed into the address itself.
        let public = policy("https://example.org/", false);
        for spelled in [
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://[::ffff:7f00:1]/",
            "http://0.0.0.0:8080/",
        ] {
            assert!(public.check_url(&url(spelled), true).is_err(), "{spelled}");
        }
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        let name = |n: &str| n.parse::<reqwest::dns::Name>().unwrap();
        let public = GuardedResolver {
            policy: policy("https://example.org/", false),
        };
        let err = match public.resolve(name("localhost")).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(err) => err,
        };
        let refused = err.downcast_ref::<Refused>().expect("a Refused error");
        assert_eq!(refused.class, AddressClass::Loopback);
        assert!(refused.what.starts_with("localhost ("), "{refused}");
        let loopback = GuardedResolver {
            policy: policy("http://127.0.0.1:8080/", false),
        };
        let addrs: Vec<_> = loopback.resolve(name("localhost")).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
