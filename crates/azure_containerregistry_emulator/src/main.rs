//! `acr-emulator`: runs the ACR emulator as a standalone server.

use azure_containerregistry_emulator::{
    AuthMode, Emulator, EmulatorOptions, EmulatorUser, Limits, RepositoryGrant, StorageMode,
    TlsConfig,
};
use clap::Parser;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A local Azure Container Registry emulator (OCI /v2, /acr/v1, /oauth2).
#[derive(Debug, Parser)]
#[command(name = "acr-emulator", version)]
struct Args {
    /// Address to listen on; anything but loopback without --auth is open to the network.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Registry port (0 = any free port).
    #[arg(long, default_value_t = 5000)]
    port: u16,
    /// Keep blobs and metadata in this directory (default: in memory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Require ACR-style bearer tokens (default: open access like a fresh docker-registry).
    #[arg(long)]
    auth: bool,
    /// With --auth: issue anonymous pull tokens.
    #[arg(long)]
    anonymous_pull: bool,
    /// With --auth: an AAD access token accepted by /oauth2/exchange (repeatable).
    #[arg(long = "aad-token", value_name = "TOKEN")]
    aad_tokens: Vec<String>,
    /// With --auth: an admin user logging in with HTTP Basic at GET /oauth2/token (repeatable).
    /// The password may contain ':'.
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = parse_user)]
    users: Vec<EmulatorUser>,
    /// With --auth: a repository-scoped token (repeatable), e.g.
    /// `ci:secret:app=pull,push;team/*=pull`. Grants are `;`-separated; a repository is an exact
    /// name or a prefix ending in `/*`; actions are pull, push, delete, metadata_read,
    /// metadata_write (or content/read, content/write, content/delete, metadata/read,
    /// metadata/write). The catalog is for admin users only.
    #[arg(
        long = "token",
        value_name = "NAME:PASSWORD:REPOSITORY=ACTION[,ACTION]...[;REPOSITORY=...]",
        value_parser = parse_token
    )]
    tokens: Vec<EmulatorUser>,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key", conflicts_with = "tls_self_signed")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Generate a CA and a localhost certificate (in the data dir, or ./acr-emulator-tls) and serve https.
    #[arg(long)]
    tls_self_signed: bool,
    /// Serve blob GETs directly instead of redirecting (307) to the storage listener.
    #[arg(long)]
    no_redirect_blobs: bool,
    /// Largest blob in bytes (default: ACR's 200 GiB layer limit).
    #[arg(long, default_value_t = Limits::default().max_blob_size)]
    max_blob_size: u64,
    /// Memory mode: bytes of blobs, manifests and open uploads held in memory.
    #[arg(long, default_value_t = Limits::default().memory_budget)]
    memory_budget: u64,
    /// Upload sessions open at once.
    #[arg(long, default_value_t = Limits::default().max_upload_sessions)]
    max_upload_sessions: usize,
    /// Seconds after which an unused upload session is discarded.
    #[arg(long, default_value_t = Limits::default().upload_idle_timeout.as_secs())]
    upload_idle_timeout: u64,
    /// Seconds a connection has to send a request's headers (and finish a TLS handshake).
    #[arg(long, default_value_t = Limits::default().header_read_timeout.as_secs())]
    header_read_timeout: u64,
    /// Connections served at once per listener.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Bytes of an unneeded request body read after an early answer (401, 416) to keep the connection.
    #[arg(long, default_value_t = Limits::default().drain_limit)]
    drain_limit: u64,
}

/// `name:password` (the password is everything after the first `:`).
fn parse_user(s: &str) -> Result<EmulatorUser, String> {
    let (name, password) = s
        .split_once(':')
        .ok_or_else(|| "expected NAME:PASSWORD".to_owned())?;
    if name.is_empty() {
        return Err("the name is empty".to_owned());
    }
    Ok(EmulatorUser::admin(name, password))
}

/// `name:password:repo=a,b;repo2=c` (repository names hold no `:`, so the grants follow the last one).
fn parse_token(s: &str) -> Result<EmulatorUser, String> {
    let (login, grants) = s
        .rsplit_once(':')
        .ok_or_else(|| "expected NAME:PASSWORD:REPOSITORY=ACTION[,ACTION]...".to_owned())?;
    let user = parse_user(login)?;
    let grants = grants
        .split(';')
        .filter(|g| !g.is_empty())
        .map(|g| {
            let (repository, actions) = g
                .split_once('=')
                .ok_or_else(|| format!("grant {g:?}: expected REPOSITORY=ACTION[,ACTION]..."))?;
            let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
            if repository.is_empty() || actions.is_empty() {
                return Err(format!("grant {g:?}: needs a repository and an action"));
            }
            Ok(RepositoryGrant::new(repository, actions))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if grants.is_empty() {
        return Err("a token needs at least one REPOSITORY=ACTION grant".to_owned());
    }
    Ok(EmulatorUser::scoped(user.username, user.password, grants))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let auth = if args.auth {
        AuthMode::Token {
            anonymous_pull: args.anonymous_pull,
            accepted_aad_tokens: args.aad_tokens.clone(),
        }
    } else {
        AuthMode::Open
    };
    let tls = match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
        (Some(cert), Some(key), _) => Some(TlsConfig::Files {
            cert: cert.clone(),
            key: key.clone(),
        }),
        (_, _, true) => Some(TlsConfig::SelfSigned {
            dir: args
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("acr-emulator-tls")),
        }),
        _ => None,
    };
    let limits = Limits {
        max_blob_size: args.max_blob_size,
        memory_budget: args.memory_budget,
        max_upload_sessions: args.max_upload_sessions,
        upload_idle_timeout: Duration::from_secs(args.upload_idle_timeout),
        header_read_timeout: Duration::from_secs(args.header_read_timeout),
        max_connections: args.max_connections,
        // The binary keeps no request log: nothing reads it.
        request_log_capacity: 0,
        drain_limit: args.drain_limit,
        ..Limits::default()
    };
    if !args.bind.is_loopback() && !args.auth {
        eprintln!(
            "warning: listening on {} without --auth: anyone who can reach it can push, change and delete",
            args.bind
        );
    }
    let has_logins = !args.users.is_empty() || !args.tokens.is_empty();
    if !args.auth && has_logins {
        eprintln!("warning: --user and --token need --auth; without it access is open anyway");
    }
    let users = args.users.iter().chain(&args.tokens).cloned().collect();
    let options = EmulatorOptions {
        auth,
        users,
        bind: args.bind,
        limits,
        storage: args
            .data_dir
            .clone()
            .map(StorageMode::Directory)
            .unwrap_or_default(),
        port: args.port,
        redirect_blobs: !args.no_redirect_blobs,
        tls,
        ..EmulatorOptions::default()
    };
    let emu = Emulator::start(options).await?;
    println!("{}", emu.endpoint());
    eprintln!("storage endpoint: {}", emu.storage_endpoint());
    if args.auth {
        eprintln!("token service: {}  issuer: {}", emu.service(), emu.issuer());
    }
    tokio::signal::ctrl_c().await?;
    emu.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_containerregistry_emulator::UserAccess;

    #[test]
    fn user_flag() {
        let user = parse_user("admin:pa:ss").unwrap();
        assert_eq!((&*user.username, &*user.password), ("admin", "pa:ss"));
        assert_eq!(user.access, UserAccess::Admin);
        assert!(parse_user("admin").is_err());
        assert!(parse_user(":pw").is_err());
    }

    #[test]
    fn token_flag() {
        let token = parse_token("ci:p:w:app=pull,push;team/*=content/read").unwrap();
        assert_eq!((&*token.username, &*token.password), ("ci", "p:w"));
        assert_eq!(
            token.access,
            UserAccess::Scoped(vec![
                RepositoryGrant::new("app", ["pull", "push"]),
                RepositoryGrant::new("team/*", ["content/read"]),
            ])
        );
        assert!(parse_token("ci:pw").is_err(), "no grant");
        assert!(parse_token("ci:pw:app").is_err(), "no actions");
        assert!(parse_token("ci:pw:=pull").is_err(), "no repository");
        assert!(parse_token("ci:pw:app=").is_err(), "empty actions");
    }

    #[test]
    fn help_parses() {
        let args = Args::try_parse_from([
            "acr-emulator",
            "--auth",
            "--user",
            "admin:pw",
            "--token",
            "ci:pw:app=pull",
        ])
        .unwrap();
        assert_eq!(args.users.len(), 1);
        assert_eq!(args.tokens.len(), 1);
        assert!(!format!("{args:?}").contains("pw\""));
    }
}
