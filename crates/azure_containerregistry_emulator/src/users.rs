//! Username/password logins: ACR admin users and repository-scoped tokens (tokens with a scope
//! map), and what an access token issued to them may hold.

use crate::auth::tokens::AccessEntry;
use crate::auth::Scope;

/// The registry actions a scope map may grant, with the scope map spelling of each.
const SCOPE_MAP_ACTIONS: [(&str, &str); 5] = [
    ("content/read", "pull"),
    ("content/write", "push"),
    ("content/delete", "delete"),
    ("metadata/read", "metadata_read"),
    ("metadata/write", "metadata_write"),
];

/// The registry action of a scope-map action (`content/read` → `pull`); registry actions
/// (`pull`, `push`, `delete`, `metadata_read`, `metadata_write`) are returned as they are.
pub(crate) fn registry_action(action: &str) -> &str {
    SCOPE_MAP_ACTIONS
        .iter()
        .find(|(map, _)| *map == action)
        .map_or(action, |(_, registry)| registry)
}

/// Whether `action` is a registry action or a scope-map action that a grant may hold.
pub(crate) fn is_known_action(action: &str) -> bool {
    SCOPE_MAP_ACTIONS
        .iter()
        .any(|(map, registry)| *map == action || *registry == action)
}

/// A login with a username and password, as ACR's admin user or a repository-scoped token.
///
/// `Debug` does not show the password.
///
/// ```
/// use azure_containerregistry_emulator::{EmulatorUser, RepositoryGrant};
/// let admin = EmulatorUser::admin("registry-admin", "s3cret");
/// let ci = EmulatorUser::scoped(
///     "ci-token",
///     "p4ss",
///     vec![RepositoryGrant::new("app", ["pull", "push"]), RepositoryGrant::new("team/*", ["pull"])],
/// );
/// assert!(!format!("{ci:?}").contains("p4ss"));
/// # let _ = admin;
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EmulatorUser {
    /// The username of HTTP Basic.
    pub username: String,
    /// The password of HTTP Basic.
    pub password: String,
    /// A disabled login is refused (401), as ACR refuses a disabled token.
    pub enabled: bool,
    /// What the login may do.
    pub access: UserAccess,
}

/// What an [`EmulatorUser`] may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAccess {
    /// An admin user: every scope it asks for, the catalog included.
    Admin,
    /// A repository-scoped token: the actions of its scope map's grants on the repositories they
    /// name, and never the catalog.
    Scoped(Vec<RepositoryGrant>),
}

/// One entry of a scope map: actions on a repository, or on every repository under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryGrant {
    /// An exact repository name (`app`), or a prefix ending in `/*` (`team/*` covers `team/a`
    /// and `team/a/b`, not `team`).
    pub repository: String,
    /// Registry actions: `pull`, `push`, `delete`, `metadata_read`, `metadata_write` (the scope-map
    /// spellings `content/read`, `content/write`, `content/delete`, `metadata/read` and
    /// `metadata/write` are accepted too).
    pub actions: Vec<String>,
}

impl RepositoryGrant {
    /// A grant of `actions` on `repository` (an exact name or a `prefix/*`).
    pub fn new<I, S>(repository: impl Into<String>, actions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RepositoryGrant {
            repository: repository.into(),
            actions: actions.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether the grant covers the repository `name`.
    fn covers(&self, name: &str) -> bool {
        match self.repository.strip_suffix("/*") {
            Some(prefix) => name
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1),
            None => self.repository == name,
        }
    }

    /// Whether the grant allows the registry action `action` (given in either spelling).
    fn allows(&self, action: &str) -> bool {
        self.actions.iter().any(|a| registry_action(a) == action)
    }
}

impl EmulatorUser {
    /// An enabled admin user.
    pub fn admin(username: impl Into<String>, password: impl Into<String>) -> Self {
        EmulatorUser {
            username: username.into(),
            password: password.into(),
            enabled: true,
            access: UserAccess::Admin,
        }
    }

    /// An enabled repository-scoped token with these scope-map grants.
    pub fn scoped(
        username: impl Into<String>,
        password: impl Into<String>,
        grants: Vec<RepositoryGrant>,
    ) -> Self {
        EmulatorUser {
            username: username.into(),
            password: password.into(),
            enabled: true,
            access: UserAccess::Scoped(grants),
        }
    }

    /// The same login, enabled or disabled.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Whether `password` is this user's password (compared in time independent of where they differ).
    pub(crate) fn password_matches(&self, password: &str) -> bool {
        constant_time_eq(self.password.as_bytes(), password.as_bytes())
    }

    /// The `access` claim for these requested scopes: what was asked for, cut down to what the
    /// login may do. Scopes left with no action are dropped.
    pub(crate) fn access_for(&self, scopes: &[Scope]) -> Vec<AccessEntry> {
        scopes
            .iter()
            .filter_map(|s| {
                let mut actions: Vec<String> = Vec::new();
                for action in &s.actions {
                    if actions.contains(action) {
                        continue;
                    }
                    let allowed = match &self.access {
                        UserAccess::Admin => true,
                        UserAccess::Scoped(grants) => {
                            s.typ == "repository"
                                && grants.iter().any(|g| g.covers(&s.name) && g.allows(action))
                        }
                    };
                    if allowed {
                        actions.push(action.clone());
                    }
                }
                (!actions.is_empty()).then(|| AccessEntry {
                    typ: s.typ.clone(),
                    name: s.name.clone(),
                    actions,
                })
            })
            .collect()
    }
}

impl std::fmt::Debug for EmulatorUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorUser")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("enabled", &self.enabled)
            .field("access", &self.access)
            .finish()
    }
}

/// Refuses empty or repeated usernames, grants with an empty repository and unknown actions.
pub(crate) fn validate(users: &[EmulatorUser]) -> std::io::Result<()> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    for (i, user) in users.iter().enumerate() {
        if user.username.is_empty() || user.username.contains(':') {
            return Err(invalid(format!(
                "user {i}: a username must be non-empty and without ':'"
            )));
        }
        if users[..i].iter().any(|u| u.username == user.username) {
            return Err(invalid(format!("user {:?} is given twice", user.username)));
        }
        if let UserAccess::Scoped(grants) = &user.access {
            for grant in grants {
                let bare = grant
                    .repository
                    .strip_suffix("/*")
                    .unwrap_or(&grant.repository);
                if bare.is_empty() || bare.contains('*') {
                    return Err(invalid(format!(
                        "user {:?}: repository {:?} is neither a name nor a prefix ending in /*",
                        user.username, grant.repository
                    )));
                }
                if let Some(a) = grant.actions.iter().find(|a| !is_known_action(a)) {
                    return Err(invalid(format!(
                        "user {:?}: unknown action {a:?} (pull, push, delete, metadata_read, metadata_write)",
                        user.username
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Equality of two byte strings whose time depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::parse_scopes;

    fn actions(user: &EmulatorUser, scope: &str) -> Vec<(String, Vec<String>)> {
        user.access_for(&parse_scopes(scope))
            .into_iter()
            .map(|e| (e.name, e.actions))
            .collect()
    }

    #[test]
    fn admin_gets_what_it_asks_for() {
        let admin = EmulatorUser::admin("a", "p");
        assert_eq!(
            actions(&admin, "repository:x:pull,push,pull registry:catalog:*"),
            [
                ("x".to_owned(), vec!["pull".to_owned(), "push".to_owned()]),
                ("catalog".to_owned(), vec!["*".to_owned()]),
            ]
        );
    }

    #[test]
    fn scoped_gets_the_intersection() {
        let user = EmulatorUser::scoped(
            "t",
            "p",
            vec![
                RepositoryGrant::new("app", ["pull"]),
                RepositoryGrant::new("team/*", ["content/read", "content/write"]),
            ],
        );
        assert_eq!(
            actions(&user, "repository:app:pull,push"),
            [("app".to_owned(), vec!["pull".to_owned()])]
        );
        assert!(actions(&user, "repository:other:pull").is_empty());
        assert!(actions(&user, "registry:catalog:*").is_empty());
        assert!(actions(&user, "repository:team:pull").is_empty());
        assert!(actions(&user, "repository:teamx/a:pull").is_empty());
        assert_eq!(
            actions(&user, "repository:team/a/b:push,delete"),
            [("team/a/b".to_owned(), vec!["push".to_owned()])]
        );
    }

    #[test]
    fn passwords_and_debug() {
        let user = EmulatorUser::admin("a", "secret").with_enabled(false);
        assert!(user.password_matches("secret"));
        assert!(!user.password_matches("secreT"));
        assert!(!user.password_matches("secret1"));
        assert!(!user.password_matches(""));
        let shown = format!("{user:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("enabled: false"), "{shown}");
    }

    #[test]
    fn validation() {
        let ok = [
            EmulatorUser::admin("a", "p"),
            EmulatorUser::scoped(
                "b",
                "",
                vec![RepositoryGrant::new("x/*", ["metadata/read"])],
            ),
        ];
        assert!(validate(&ok).is_ok());
        let twice = [EmulatorUser::admin("a", "p"), EmulatorUser::admin("a", "q")];
        assert!(validate(&twice).is_err());
        assert!(validate(&[EmulatorUser::admin("", "p")]).is_err());
        let bad_action = EmulatorUser::scoped("c", "p", vec![RepositoryGrant::new("x", ["read"])]);
        assert!(validate(&[bad_action]).is_err());
        let bad_repo = EmulatorUser::scoped("c", "p", vec![RepositoryGrant::new("*", ["pull"])]);
        assert!(validate(&[bad_repo]).is_err());
    }

    #[test]
    fn action_spellings() {
        assert_eq!(registry_action("content/write"), "push");
        assert_eq!(registry_action("pull"), "pull");
        assert!(is_known_action("metadata/write"));
        assert!(is_known_action("metadata_read"));
        assert!(!is_known_action("write"));
    }
}
