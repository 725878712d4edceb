//! The Microsoft Entra audience that registry tokens are requested for.

use std::fmt;

/// The audience of the Microsoft Entra token exchanged for registry tokens.
///
/// The credential is asked for a token for `<audience>/.default`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum ContainerRegistryAudience {
    /// Azure public cloud: `https://containerregistry.azure.net`.
    #[default]
    AzurePublicCloud,
    /// Azure operated by 21Vianet: `https://containerregistry.azure.cn`.
    AzureChina,
    /// Azure US Government: `https://containerregistry.azure.us`.
    AzureGovernment,
    /// Any other audience, such as a sovereign cloud's.
    Custom(String),
}

impl ContainerRegistryAudience {
    /// The audience URI.
    pub fn as_str(&self) -> &str {
        match self {
            Self::AzurePublicCloud => "https://containerregistry.azure.net",
            Self::AzureChina => "https://containerregistry.azure.cn",
            Self::AzureGovernment => "https://containerregistry.azure.us",
            Self::Custom(s) => s.as_str(),
        }
    }

    /// The scope to request from the credential: `<audience>/.default`.
    pub fn default_scope(&self) -> String {
        format!("{}/.default", self.as_str().trim_end_matches('/'))
    }
}

impl fmt::Display for ContainerRegistryAudience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scopes() {
        assert_eq!(
            ContainerRegistryAudience::default().default_scope(),
            "https://containerregistry.azure.net/.default"
        );
        assert_eq!(
            ContainerRegistryAudience::Custom("https://x.example/".into()).default_scope(),
            "https://x.example/.default"
        );
        assert_eq!(
            ContainerRegistryAudience::AzureChina.to_string(),
            "https://containerregistry.azure.cn"
        );
    }
}
