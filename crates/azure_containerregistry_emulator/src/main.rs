//! `acr-emulator`: runs the ACR emulator as a standalone server.

use azure_containerregistry_emulator::{
    AuthMode, Emulator, EmulatorOptions, StorageMode, TlsConfig,
};
use clap::Parser;
use std::path::PathBuf;

/// A local Azure Container Registry emulator (OCI /v2, /acr/v1, /oauth2) on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "acr-emulator", version)]
struct Args {
    /// Registry port on 127.0.0.1 (0 = any free port).
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
    let options = EmulatorOptions {
        auth,
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
