//! [`UsernamePasswordCredential`]: a registry login by username and password.

use std::fmt;

use azure_core::credentials::Secret;
use base64::Engine as _;
use reqwest::header::HeaderValue;

/// A username and password for a registry: an ACR admin user, an ACR repository-scoped token
/// (the token's name and one of its passwords), or the login of another registry.
///
/// The password is sent only to the registry's own host, with HTTP Basic: to the token
/// endpoint its challenge names (`GET <realm>?service=…&scope=…`, as `docker login` does), or
/// on the request itself when the registry asks for Basic (a `docker-registry` with htpasswd).
/// `Debug` and logs never show it.
#[derive(Clone)]
pub struct UsernamePasswordCredential {
    username: String,
    password: Secret,
}

impl UsernamePasswordCredential {
    /// A credential for `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Checks what HTTP Basic can carry: a username without `:` or control characters, a
    /// password without control characters, neither empty.
    pub(crate) fn validate(&self) -> azure_core::Result<()> {
        let bad = |s: &str| s.is_empty() || s.chars().any(char::is_control);
        if bad(&self.username) || self.username.contains(':') {
            return Err(crate::error::invalid_argument(
                "username",
                "must be non-empty, without ':' or control characters",
            ));
        }
        if bad(self.password.secret()) {
            return Err(crate::error::invalid_argument(
                "password",
                "must be non-empty, without control characters",
            ));
        }
        Ok(())
    }

    /// `Authorization: Basic <base64(username:password)>`, marked sensitive.
    pub(crate) fn basic_header(&self) -> Option<HeaderValue> {
        let pair = format!("{}:{}", self.username, self.password.secret());
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl fmt::Debug for UsernamePasswordCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsernamePasswordCredential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password_and_the_header_is_basic() {
        let c = UsernamePasswordCredential::new("admin", "hunter2-secret");
        assert!(!format!("{c:?}").contains("hunter2"));
        let header = c.basic_header().unwrap();
        assert!(header.is_sensitive());
        assert_eq!(
            header.to_str().unwrap(),
            "Basic YWRtaW46aHVudGVyMi1zZWNyZXQ="
        );
        assert!(c.validate().is_ok());
        assert!(UsernamePasswordCredential::new("a:b", "p")
            .validate()
            .is_err());
        assert!(UsernamePasswordCredential::new("a", "").validate().is_err());
        assert!(UsernamePasswordCredential::new("", "p").validate().is_err());
    }
}
