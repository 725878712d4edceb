//! JWT signing keys (ES256, with `kid` in libtrust format and an `x5c` chain) and token claims.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::io;
use std::path::Path;

/// One entry of the `access` claim (lower-case keys, as docker distribution reads them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccessEntry {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub typ: String,
    /// Repository name or `catalog`.
    pub name: String,
    /// Granted actions.
    pub actions: Vec<String>,
}

/// Claims of refresh and access tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// Token id.
    pub jti: String,
    /// Subject.
    pub sub: String,
    /// Not before (seconds).
    pub nbf: i64,
    /// Expiry (seconds).
    pub exp: i64,
    /// Issued at (seconds).
    pub iat: i64,
    /// Issuer.
    pub iss: String,
    /// Audience: the service.
    pub aud: String,
    /// `1.0` for refresh tokens, `2.0` for access tokens (as ACR).
    pub version: String,
    /// `refresh_token` or `access_token`.
    pub grant_type: String,
    /// Granted scopes (access tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<AccessEntry>,
}

/// Why a token was rejected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// Bad signature, issuer, audience or shape.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// The token signing key and its certificate.
pub(crate) struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    cert_pem: String,
    cert_b64: String,
    kid: String,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// libtrust key id: base32 of the first 240 bits of sha256(SPKI DER), in 12 groups of 4 joined by `:`.
pub(crate) fn libtrust_key_id(spki_der: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hash = sha2::Sha256::digest(spki_der);
    let mut out = String::with_capacity(59);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in &hash[..30] {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    let chars: Vec<char> = out.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(":")
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl TokenKeys {
    /// A fresh P-256 key (PKCS#8 PEM) and its self-signed certificate (PEM).
    fn generate_pems() -> io::Result<(String, String)> {
        let key = KeyPair::generate().map_err(io_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(io_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "ACR emulator token signing");
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).map_err(io_err)?;
        Ok((key.serialize_pem(), cert.pem()))
    }

    /// Generates a fresh P-256 key and self-signed certificate.
    pub(crate) fn generate() -> io::Result<Self> {
        let (key, cert) = Self::generate_pems()?;
        Self::from_parts(&key, &cert)
    }

    /// Loads `token-signing-key.pem` + `token-signing-cert.pem` from `dir`, creating them if absent.
    pub(crate) fn load_or_generate(dir: &Path) -> io::Result<Self> {
        let key_path = dir.join("token-signing-key.pem");
        let cert_path = dir.join("token-signing-cert.pem");
        if let (Ok(key), Ok(cert)) = (
            std::fs::read_to_string(&key_path),
            std::fs::read_to_string(&cert_path),
        ) {
            crate::private_file::restrict(&key_path)?;
            return Self::from_parts(&key, &cert);
        }
        let (key, cert) = Self::generate_pems()?;
        crate::private_file::write(&key_path, key.as_bytes())?;
        std::fs::write(&cert_path, &cert)?;
        Self::from_parts(&key, &cert)
    }

    /// Builds the keys from a PKCS#8 key PEM and a certificate PEM.
    pub(crate) fn from_parts(key_pem: &str, cert_pem: &str) -> io::Result<Self> {
        let key = KeyPair::from_pem(key_pem).map_err(io_err)?;
        let encoding = EncodingKey::from_ec_der(key.serialized_der());
        let decoding = DecodingKey::from_ec_der(key.public_key_raw());
        let kid = libtrust_key_id(&key.subject_public_key_info());
        let der =
            pem_body(cert_pem).ok_or_else(|| io_err("token signing certificate is not PEM"))?;
        Ok(TokenKeys {
            encoding,
            decoding,
            cert_pem: cert_pem.to_owned(),
            cert_b64: base64::engine::general_purpose::STANDARD.encode(der),
            kid,
        })
    }

    /// PEM of the signing certificate.
    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Signs claims.
    pub(crate) fn sign(&self, claims: &Claims) -> io::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.x5c = Some(vec![self.cert_b64.clone()]);
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(io_err)
    }

    /// Verifies signature, issuer, audience and expiry.
    pub(crate) fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = 0;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(e.to_string()),
            },
        )?;
        if data.claims.exp <= chrono::Utc::now().timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }
}

/// Decodes the base64 body of the first PEM block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_in: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            jti: "j".into(),
            sub: "s".into(),
            nbf: now,
            exp: now + exp_in,
            iat: now,
            iss: "iss".into(),
            aud: "svc".into(),
            version: "2.0".into(),
            grant_type: "access_token".into(),
            access: vec![AccessEntry {
                typ: "repository".into(),
                name: "a".into(),
                actions: vec!["pull".into()],
            }],
        }
    }

    #[test]
    fn sign_and_verify() {
        let keys = TokenKeys::generate().unwrap();
        let token = keys.sign(&claims(60)).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref().map(str::len), Some(59));
        assert_eq!(header.x5c.map(|v| v.len()), Some(1));
        let c = keys.verify(&token, "iss", "svc").unwrap();
        assert_eq!(c.access[0].actions, ["pull"]);
        assert!(matches!(
            keys.verify(&token, "iss", "other"),
            Err(TokenError::Invalid(_))
        ));
        let other = TokenKeys::generate().unwrap();
        assert!(matches!(
            other.verify(&token, "iss", "svc"),
            Err(TokenError::Invalid(_))
        ));
        let expired = keys.sign(&claims(0)).unwrap();
        assert!(matches!(
            keys.verify(&expired, "iss", "svc"),
            Err(TokenError::Expired)
        ));
    }

    #[test]
    fn kid_format() {
        let kid = libtrust_key_id(b"abc");
        assert_eq!(kid.split(':').count(), 12);
        assert!(kid.split(':').all(|g| g.len() == 4));
    }

    #[test]
    fn persisted_keys_reload() {
        let dir = tempfile::tempdir().unwrap();
        let a = TokenKeys::load_or_generate(dir.path()).unwrap();
        let b = TokenKeys::load_or_generate(dir.path()).unwrap();
        let token = a.sign(&claims(60)).unwrap();
        assert!(b.verify(&token, "iss", "svc").is_ok());
        assert_eq!(a.cert_pem(), b.cert_pem());
    }
}
