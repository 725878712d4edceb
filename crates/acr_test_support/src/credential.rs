//! A `TokenCredential` for tests: the same Microsoft Entra token every time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};

/// The Microsoft Entra token of the tests: emulators started for a test accept it, hostile
/// servers must never see it.
pub const AAD_TOKEN: &str = "test-aad-token-5ecr3t";

/// A credential that always returns its token (valid for an hour), counts its calls and keeps
/// the scopes it was asked for.
#[derive(Debug)]
pub struct TestCredential {
    token: String,
    calls: AtomicU64,
    scopes: Mutex<Vec<String>>,
}

impl TestCredential {
    /// A credential returning `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            calls: AtomicU64::new(0),
            scopes: Mutex::new(Vec::new()),
        }
    }

    /// A credential returning `token`, as the clients take it.
    pub fn shared(token: impl Into<String>) -> Arc<dyn TokenCredential> {
        Arc::new(Self::new(token))
    }

    /// How many tokens it has handed out.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The scopes of every call, in order.
    pub fn scopes(&self) -> Vec<String> {
        self.scopes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Default for TestCredential {
    /// A credential returning [`AAD_TOKEN`].
    fn default() -> Self {
        Self::new(AAD_TOKEN)
    }
}

#[async_trait::async_trait]
impl TokenCredential for TestCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.scopes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(scopes.iter().map(|s| s.to_string()));
        Ok(AccessToken::new(
            self.token.clone(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_its_token_and_counts() {
        let c = TestCredential::new("t");
        let token = c.get_token(&["s"], None).await.unwrap();
        assert_eq!(token.token.secret(), "t");
        assert!(token.expires_on > time::OffsetDateTime::now_utc());
        assert_eq!(c.calls(), 1);
        assert_eq!(c.scopes(), ["s"]);
        let d = TestCredential::default()
            .get_token(&[], None)
            .await
            .unwrap();
        assert_eq!(d.token.secret(), AAD_TOKEN);
    }
}
