//! TLS for the broker connection (rustls, ring): the CA to trust, and for mutual TLS a client
//! certificate and its key — PEM files, the key in PKCS#8, SEC1 or PKCS#1. Everything is read and
//! checked once at start, so a missing file, a file without a certificate, or a key that does not
//! belong to the certificate is one clear message naming the file, before anything connects. Key
//! material is never logged: messages name paths and error kinds only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// The ALPN protocol AWS IoT Core needs for MQTT with a client certificate on port 443.
pub const AWS_IOT_ALPN_443: &[u8] = b"x-amzn-mqtt-ca";

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("mqtt TLS: cannot read {what} {path}: {message}")]
    Read {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("mqtt TLS: {path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("mqtt TLS: CA {path}: {message}")]
    BadCa { path: PathBuf, message: String },
    #[error(
        "mqtt TLS: client certificate {cert} and key {key} cannot be used together: {message}"
    )]
    ClientAuth {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("mqtt TLS: {0}")]
    Config(String),
}

/// Paths from the configuration.
#[derive(Debug, Clone)]
pub struct TlsFiles<'a> {
    pub ca: &'a Path,
    /// Certificate and key (mutual TLS).
    pub client: Option<(&'a Path, &'a Path)>,
    /// Add the AWS IoT ALPN protocol (port 443).
    pub alpn_443: bool,
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |message: String| TlsError::Read {
        what,
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Builds the client configuration (SNI is on: rustls sends the broker's host name).
pub fn client_config(files: &TlsFiles<'_>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates("CA", files.ca)? {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: files.ca.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match files.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates("client certificate", cert)?;
            let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Read {
                what: "client key",
                path: key.to_path_buf(),
                // Design: the PEM error names the section kind at most, never key bytes.
                message: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| TlsError::ClientAuth {
                    cert: cert.to_path_buf(),
                    key: key.to_path_buf(),
                    message: e.to_string(),
                })?
        }
    };
    if files.alpn_443 {
        config.alpn_protocols = vec![AWS_IOT_ALPN_443.to_vec()];
    }
    Ok(Arc::new(config))
}
