//! TLS: a self-signed CA + leaf (rcgen), or certificate/key files; rustls server configuration.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use std::io;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{crypto::ring, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// File names written by [`self_signed`].
pub(crate) const CA_FILE: &str = "ca.pem";
const CERT_FILE: &str = "tls-cert.pem";
const KEY_FILE: &str = "tls-key.pem";

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Ensures `dir` holds a CA (`ca.pem`) and a leaf for `localhost`/`127.0.0.1` signed by it;
/// returns the acceptor and the CA PEM.
pub(crate) fn self_signed(dir: &Path) -> io::Result<(TlsAcceptor, String)> {
    std::fs::create_dir_all(dir)?;
    let (ca_path, cert_path, key_path) =
        (dir.join(CA_FILE), dir.join(CERT_FILE), dir.join(KEY_FILE));
    if !(ca_path.exists() && cert_path.exists() && key_path.exists()) {
        let ca_key = KeyPair::generate().map_err(io_err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(io_err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        // A unique subject per CA: a client trusting two emulators picks the right issuer.
        dn.push(
            DnType::CommonName,
            format!("ACR emulator CA {}", uuid::Uuid::new_v4()),
        );
        ca_params.distinguished_name = dn;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(io_err)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().map_err(io_err)?;
        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(io_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "localhost");
        leaf_params.distinguished_name = dn;
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(io_err)?;
        std::fs::write(&ca_path, ca_cert.pem())?;
        std::fs::write(&cert_path, format!("{}{}", leaf.pem(), ca_cert.pem()))?;
        crate::private_file::write(&key_path, leaf_key.serialize_pem().as_bytes())?;
    }
    crate::private_file::restrict(&key_path)?;
    let acceptor = from_files(&cert_path, &key_path)?;
    Ok((acceptor, std::fs::read_to_string(ca_path)?))
}

/// An acceptor for a PEM certificate chain and PEM private key.
pub(crate) fn from_files(cert: &Path, key: &Path) -> io::Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(io_err)?
        .collect::<Result<_, _>>()
        .map_err(io_err)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(io_err)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(io_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(io_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
