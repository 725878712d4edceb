//! `acr-emulator`: runs the ACR emulator as a standalone server.

use azure_containerregistry_emulator::{
    AuthMode, Emulator, EmulatorOptions, Limits, StorageMode, TlsConfig,
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
    let options = EmulatorOptions {
        auth,
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
