//! [`ContainerRegistryClient`]: the registry's repositories and the token-exchange API.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::pager::PagerOptions;
use azure_core::http::{ClientMethodOptions, NoFormat, Pager, Response};
use url::Url;

use crate::auth::Login;
use crate::models::RepositoryNamesPage;
use crate::operation::traced;
use crate::paging::{link_listing, listing_page_size};
use crate::pipeline::Pipeline;
use crate::token_api::{AcrAccessToken, AcrRefreshToken};
use crate::{ContainerRegistryClientOptions, ContainerRepository, RegistryArtifact};

/// Options for [`ContainerRegistryClient::list_repository_names`].
#[derive(Clone, Debug, Default)]
pub struct ListRepositoryNamesOptions<'a> {
    /// Names per page (`n`); overrides [`ContainerRegistryClientOptions::page_size`].
    pub page_size: Option<u32>,
    /// The context of the requests, and the continuation to resume a listing from.
    pub method_options: PagerOptions<'a>,
}

crate::operation::context_options! {
    /// Options for [`ContainerRegistryClient::delete_repository`] and
    /// [`ContainerRepository::delete`].
    DeleteRepositoryOptions;
    /// Options for [`ContainerRegistryClient::get_acr_refresh_token`].
    GetAcrRefreshTokenOptions;
    /// Options for [`ContainerRegistryClient::get_acr_access_token`].
    GetAcrAccessTokenOptions;
    /// Options for [`ContainerRegistryClient::exchange_acr_refresh_token_for_acr_access_token`].
    ExchangeAcrRefreshTokenForAcrAccessTokenOptions;
}

/// Options for [`ContainerRegistryClient::exchange_aad_access_token_for_acr_refresh_token`].
#[derive(Clone, Debug, Default)]
pub struct ExchangeAadAccessTokenForAcrRefreshTokenOptions<'a> {
    /// The Microsoft Entra tenant of the access token (`tenant`), for registries that need it.
    pub tenant: Option<String>,
    /// The context of the requests.
    pub method_options: ClientMethodOptions<'a>,
}

crate::operation::call_options!(ExchangeAadAccessTokenForAcrRefreshTokenOptions);

/// A client for an Azure Container Registry's metadata: repositories, and through
/// [`ContainerRepository`] and [`RegistryArtifact`], manifests and tags.
///
/// Cheap to clone; clones share the connection pool and the token cache.
///
/// ```no_run
/// # async fn demo() -> azure_core::Result<()> {
/// use azure_containerregistry::ContainerRegistryClient;
/// use futures::TryStreamExt;
/// let client = ContainerRegistryClient::new("https://myregistry.azurecr.io", None, None)?;
/// let mut names = client.list_repository_names(None)?;
/// while let Some(name) = names.try_next().await? {
///     println!("{name}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ContainerRegistryClient {
    pipeline: Arc<Pipeline>,
}

impl ContainerRegistryClient {
    /// A client for the registry at `endpoint` (`https://myregistry.azurecr.io`; a bare host
    /// means https). With `credential` `None` the client is anonymous (pull and catalog on
    /// registries that allow anonymous pull).
    ///
    /// Fails with [`InvalidArgument`](crate::InvalidArgument) for an endpoint that is not an
    /// http(s) URL without path, query or user info, or a credential with a non-loopback
    /// `http://` endpoint. No request is sent.
    pub fn new(
        endpoint: &str,
        credential: Option<Arc<dyn TokenCredential>>,
        options: Option<ContainerRegistryClientOptions>,
    ) -> azure_core::Result<Self> {
        let login = credential.map_or(Login::Anonymous, Login::Entra);
        Ok(Self {
            pipeline: Pipeline::new(endpoint, login, options)?,
        })
    }

    /// A client that signs in with a username and password: an ACR admin user or
    /// repository-scoped token, or another registry's login. The password goes only to the
    /// registry's own host (see [`UsernamePasswordCredential`](crate::UsernamePasswordCredential)).
    /// Fails as [`new`](Self::new) does, and for an empty username or password.
    ///
    /// ```no_run
    /// # fn demo() -> azure_core::Result<()> {
    /// use azure_containerregistry::{ContainerRegistryClient, UsernamePasswordCredential};
    /// let login = UsernamePasswordCredential::new("myregistry", std::env::var("ACR_PASSWORD").unwrap_or_default());
    /// let client = ContainerRegistryClient::with_username_password("https://myregistry.azurecr.io", login, None)?;
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn with_username_password(
        endpoint: &str,
        credential: crate::UsernamePasswordCredential,
        options: Option<ContainerRegistryClientOptions>,
    ) -> azure_core::Result<Self> {
        Ok(Self {
            pipeline: Pipeline::new(endpoint, Login::UsernamePassword(credential), options)?,
        })
    }

    /// The registry endpoint.
    pub fn endpoint(&self) -> &Url {
        self.pipeline.endpoint()
    }

    /// The registry's login server (host and port), as used in image references.
    pub fn login_server(&self) -> String {
        self.pipeline.login_server()
    }

    /// A client for one repository. No request is sent and the name is not checked here: an
    /// invalid name fails each operation of the returned client with
    /// [`InvalidArgument`](crate::InvalidArgument) before any request.
    pub fn repository(&self, name: &str) -> ContainerRepository {
        ContainerRepository::new(self.pipeline.clone(), name)
    }

    /// A content client (blobs and manifests) for one repository of this registry. It shares
    /// this client's connections and token cache: the registry's refresh token serves every
    /// repository. Fails with [`InvalidArgument`](crate::InvalidArgument) for an invalid
    /// repository name; no request is sent.
    pub fn content_client(
        &self,
        repository_name: &str,
    ) -> azure_core::Result<crate::ContainerRegistryContentClient> {
        crate::ContainerRegistryContentClient::from_pipeline(self.pipeline.clone(), repository_name)
    }

    /// A client for one artifact, named by repository and tag or digest (`sha256:…`). As with
    /// [`repository`](Self::repository), the name and reference are checked by each operation.
    pub fn artifact(&self, repository_name: &str, tag_or_digest: &str) -> RegistryArtifact {
        RegistryArtifact::new(self.pipeline.clone(), repository_name, tag_or_digest)
    }

    /// The names of the registry's repositories, in lexical order, page by page
    /// (`GET /acr/v1/_catalog`, then each `Link` as given). A listing resumes where another
    /// stopped from that pager's continuation, in
    /// [`method_options`](ListRepositoryNamesOptions::method_options).
    pub fn list_repository_names(
        &self,
        options: Option<ListRepositoryNamesOptions<'_>>,
    ) -> azure_core::Result<Pager<RepositoryNamesPage>> {
        let options = options.unwrap_or_default();
        let n = listing_page_size(&self.pipeline, options.page_size)?;
        Ok(link_listing!(
            "ContainerRegistryClient.list_repository_names",
            self.pipeline,
            "get_repositories",
            "",
            options.method_options,
            |rest, name| rest.get_repositories(None, n)
        ))
    }

    /// Deletes a repository with all its manifests and tags. A repository that does not exist
    /// is not an error (as in the other Azure SDKs).
    pub async fn delete_repository(
        &self,
        name: &str,
        options: Option<DeleteRepositoryOptions<'_>>,
    ) -> azure_core::Result<Response<(), NoFormat>> {
        self.repository(name).delete(options).await
    }

    /// The client's ACR refresh token: its credential's Microsoft Entra token exchanged at
    /// `POST /oauth2/exchange`, as `docker login`, helm or oras can use (user name
    /// `00000000-0000-0000-0000-000000000000`). The token is cached and reused by the client
    /// until shortly before it expires. Fails for an anonymous client.
    pub async fn get_acr_refresh_token(
        &self,
        options: Option<GetAcrRefreshTokenOptions<'_>>,
    ) -> azure_core::Result<AcrRefreshToken> {
        let pipeline = self.pipeline.clone();
        traced!(
            "ContainerRegistryClient.get_acr_refresh_token",
            "",
            &options,
            async move { crate::token_api::refresh_token(&pipeline).await }
        )
        .await
    }

    /// An ACR access token for `scope` (for example `repository:library/hello-world:pull` or
    /// `registry:catalog:*`; several scopes separated by spaces): the client's own refresh
    /// token exchanged at `POST /oauth2/token`, or an anonymous token for an anonymous client.
    /// Tokens are cached per scope and shared with the client's own requests, so asking twice
    /// for the same scope sends no second request.
    pub async fn get_acr_access_token(
        &self,
        scope: &str,
        options: Option<GetAcrAccessTokenOptions<'_>>,
    ) -> azure_core::Result<AcrAccessToken> {
        let pipeline = self.pipeline.clone();
        let scope = scope.to_string();
        traced!(
            "ContainerRegistryClient.get_acr_access_token",
            "",
            &options,
            async move { crate::token_api::access_token(&pipeline, &scope).await }
        )
        .await
    }

    /// Exchanges a Microsoft Entra access token that the caller got itself (for the audience's
    /// `.default` scope) for an ACR refresh token (`POST /oauth2/exchange`,
    /// `grant_type=access_token`, with [`tenant`](ExchangeAadAccessTokenForAcrRefreshTokenOptions::tenant)
    /// when given), as Go's `AuthenticationClient` does. Works on any client, anonymous too;
    /// the token is not cached.
    ///
    /// ```no_run
    /// # async fn demo(entra_token: &str) -> azure_core::Result<()> {
    /// use azure_containerregistry::ContainerRegistryClient;
    /// let client = ContainerRegistryClient::new("https://myregistry.azurecr.io", None, None)?;
    /// let refresh = client
    ///     .exchange_aad_access_token_for_acr_refresh_token(entra_token, None)
    ///     .await?;
    /// let access = client
    ///     .exchange_acr_refresh_token_for_acr_access_token(
    ///         refresh.refresh_token.secret(),
    ///         "repository:library/hello-world:pull",
    ///         None,
    ///     )
    ///     .await?;
    /// // `Authorization: Bearer <access.access_token>` on the registry's /v2 requests.
    /// # let _ = access; Ok(()) }
    /// ```
    pub async fn exchange_aad_access_token_for_acr_refresh_token(
        &self,
        aad_access_token: &str,
        options: Option<ExchangeAadAccessTokenForAcrRefreshTokenOptions<'_>>,
    ) -> azure_core::Result<AcrRefreshToken> {
        let pipeline = self.pipeline.clone();
        let tenant = options.as_ref().and_then(|o| o.tenant.clone());
        traced!(
            "ContainerRegistryClient.exchange_aad_access_token_for_acr_refresh_token",
            "",
            &options,
            async move {
                crate::token_api::exchange_aad_access_token(
                    &pipeline,
                    aad_access_token,
                    tenant.as_deref(),
                )
                .await
            }
        )
        .await
    }

    /// Exchanges an ACR refresh token that the caller holds (from `docker login`, another
    /// client, or [`exchange_aad_access_token_for_acr_refresh_token`](Self::exchange_aad_access_token_for_acr_refresh_token))
    /// for an access token for `scope` (`POST /oauth2/token`, `grant_type=refresh_token`).
    /// Works on any client, anonymous too; the token is not cached.
    pub async fn exchange_acr_refresh_token_for_acr_access_token(
        &self,
        refresh_token: &str,
        scope: &str,
        options: Option<ExchangeAcrRefreshTokenForAcrAccessTokenOptions<'_>>,
    ) -> azure_core::Result<AcrAccessToken> {
        let pipeline = self.pipeline.clone();
        traced!(
            "ContainerRegistryClient.exchange_acr_refresh_token_for_acr_access_token",
            "",
            &options,
            async move {
                crate::token_api::exchange_refresh_token(&pipeline, refresh_token, scope).await
            }
        )
        .await
    }
}
