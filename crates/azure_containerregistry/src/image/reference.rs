//! [`ImageReference`]: `[registry/]repository[:tag][@digest]`, as `docker pull` takes it.

use std::fmt;
use std::str::FromStr;

use crate::error::invalid_argument;
use crate::reference::{is_loopback, validate_digest, validate_repository_name, validate_tag};

/// A reference to an image: `[registry/]repository[:tag][@digest]`, with the OCI distribution
/// grammar.
///
/// The first `/`-separated component is the registry when it contains a `.` or a `:` or is
/// `localhost` (`myregistry.azurecr.io/hello-world`, `127.0.0.1:5000/app`); otherwise the whole
/// name is the repository (`library/ubuntu`). Parsing and printing round-trip.
///
/// ```
/// use azure_containerregistry::ImageReference;
/// let r: ImageReference = "myregistry.azurecr.io/samples/hello:v1".parse()?;
/// assert_eq!(r.registry(), Some("myregistry.azurecr.io"));
/// assert_eq!(r.repository(), "samples/hello");
/// assert_eq!(r.tag(), Some("v1"));
/// assert_eq!(r.endpoint().as_deref(), Some("https://myregistry.azurecr.io"));
/// assert_eq!(r.to_string(), "myregistry.azurecr.io/samples/hello:v1");
/// # Ok::<(), azure_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageReference {
    /// A reference from its parts, each checked (`registry` as `host[:port]`).
    pub fn new(
        registry: Option<&str>,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> azure_core::Result<Self> {
        if let Some(registry) = registry {
            validate_registry(registry)?;
        }
        validate_repository_name(repository)?;
        if let Some(tag) = tag {
            validate_tag(tag)?;
        }
        if let Some(digest) = digest {
            validate_digest(digest)?;
        }
        Ok(Self {
            registry: registry.map(str::to_string),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// The registry (`host[:port]`), when the reference names one.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// The repository (`samples/hello`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, when the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, when the reference has one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What a manifest is fetched by: the digest when there is one (it names the content
    /// exactly), else the tag, else `latest`.
    pub fn tag_or_digest(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same reference with `tag` (and without a digest).
    pub fn with_tag(&self, tag: &str) -> azure_core::Result<Self> {
        validate_tag(tag)?;
        Ok(Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The registry's endpoint: `https://<registry>`, or `http://<registry>` for loopback
    /// hosts (`localhost`, `127.0.0.0/8`, `[::1]`). `None` when the reference names no
    /// registry.
    pub fn endpoint(&self) -> Option<String> {
        let registry = self.registry.as_deref()?;
        let loopback = url::Url::parse(&format!("http://{registry}/"))
            .map(|u| is_loopback(&u))
            .unwrap_or(false);
        Some(format!(
            "{}://{registry}",
            if loopback { "http" } else { "https" }
        ))
    }
}

/// Checks a registry: `host[:port]`, the host a DNS name, an IPv4 address or a bracketed IPv6
/// address.
fn validate_registry(registry: &str) -> azure_core::Result<()> {
    let fail = |m: &str| Err(invalid_argument("registry", format!("{registry:?}: {m}")));
    if registry.is_empty() {
        return fail("must not be empty");
    }
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return fail("an IPv6 address needs its closing ']'");
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return fail("is not an IPv6 address");
        }
        match after {
            "" => (ip, None),
            p => match p.strip_prefix(':') {
                Some(p) => (ip, Some(p)),
                None => return fail("only a ':port' may follow the address"),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err()
        {
            return fail("the port must be a number up to 65535");
        }
    }
    if !registry.starts_with('[') {
        let labels_ok = !host.is_empty()
            && host.split('.').all(|label| {
                let b = label.as_bytes();
                !b.is_empty()
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            });
        if !labels_ok {
            return fail("the host must be a DNS name or an IP address");
        }
    }
    Ok(())
}

impl FromStr for ImageReference {
    type Err = azure_core::Error;

    fn from_str(text: &str) -> azure_core::Result<Self> {
        if text.is_empty() {
            return Err(invalid_argument(
                "reference",
                "an image reference must not be empty",
            ));
        }
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (text, None),
        };
        let (registry, rest) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first), rest)
            }
            _ => (None, name),
        };
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (rest, None),
        };
        Self::new(registry, repository, tag, digest)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InvalidArgument;

    fn argument(text: &str) -> &'static str {
        text.parse::<ImageReference>()
            .expect_err(text)
            .downcast_ref::<InvalidArgument>()
            .map(|a| a.argument)
            .expect("an InvalidArgument")
    }

    #[test]
    fn good_references_round_trip() {
        let digest = format!("sha256:{}", "a".repeat(64));
        /// Text, registry, repository, tag, digest.
        type Case<'a> = (
            String,
            Option<&'a str>,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            ("ubuntu".into(), None, "ubuntu", None, None),
            (
                "library/ubuntu:22.04".into(),
                None,
                "library/ubuntu",
                Some("22.04"),
                None,
            ),
            (
                "myregistry.azurecr.io/samples/hello:v1".into(),
                Some("myregistry.azurecr.io"),
                "samples/hello",
                Some("v1"),
                None,
            ),
            ("localhost/app".into(), Some("localhost"), "app", None, None),
            (
                "127.0.0.1:5000/a/b:latest".into(),
                Some("127.0.0.1:5000"),
                "a/b",
                Some("latest"),
                None,
            ),
            (
                format!("[::1]:5000/app@{digest}"),
                Some("[::1]:5000"),
                "app",
                None,
                Some(&digest),
            ),
            (
                format!("host:443/app:t@{digest}"),
                Some("host:443"),
                "app",
                Some("t"),
                Some(&digest),
            ),
        ];
        for (text, registry, repository, tag, d) in cases {
            let r: ImageReference = text.parse().expect(&text);
            assert_eq!(r.registry(), registry, "{text}");
            assert_eq!(r.repository(), repository, "{text}");
            assert_eq!(r.tag(), tag, "{text}");
            assert_eq!(r.digest(), d, "{text}");
            assert_eq!(r.to_string(), text);
        }
    }

    #[test]
    fn bad_references_name_the_bad_part() {
        let short = "sha256:abc";
        assert_eq!(argument(""), "reference");
        assert_eq!(argument("Upper/case"), "repository_name");
        assert_eq!(argument("a.io/Upper"), "repository_name");
        assert_eq!(argument("app:-bad"), "tag");
        assert_eq!(argument(&format!("app:{}", "t".repeat(129))), "tag");
        assert_eq!(argument(&format!("app@{short}")), "digest");
        assert_eq!(argument("a..b.io:99999/app"), "registry");
        assert_eq!(argument("host:port/app"), "registry");
        assert_eq!(argument("[::1/app"), "registry");
        assert_eq!(argument("a.io/"), "repository_name");
    }

    #[test]
    fn endpoints() {
        let endpoint = |t: &str| t.parse::<ImageReference>().unwrap().endpoint();
        assert_eq!(
            endpoint("a.azurecr.io/x").as_deref(),
            Some("https://a.azurecr.io")
        );
        assert_eq!(
            endpoint("localhost:5000/x").as_deref(),
            Some("http://localhost:5000")
        );
        assert_eq!(
            endpoint("127.0.0.2:1/x").as_deref(),
            Some("http://127.0.0.2:1")
        );
        assert_eq!(endpoint("[::1]:8/x").as_deref(), Some("http://[::1]:8"));
        assert_eq!(
            endpoint("10.0.0.1:80/x").as_deref(),
            Some("https://10.0.0.1:80")
        );
        assert_eq!(endpoint("x"), None);
        let r: ImageReference = "x".parse().unwrap();
        assert_eq!(r.tag_or_digest(), "latest");
        assert_eq!(r.with_tag("v2").unwrap().to_string(), "x:v2");
    }
}
