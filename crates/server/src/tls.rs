//! Native TLS (`--tls-cert-file` / `--tls-key-file`): rustls with the aws-lc-rs provider named
//! explicitly, ALPN `h2` then `http/1.1` (gRPC and HTTP/1 clients on the one port), and a
//! certificate that can be replaced while the server runs ([`Tls::reload`], SIGHUP in the
//! binary): the resolver hands every new handshake the key it holds now, so connections that are
//! already open keep the certificate they started with and are never dropped.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// `Strict-Transport-Security` on a hosted page served over TLS (the router adds it to the
/// pages' routes when TLS is on): browsers use HTTPS for the host for a year.
pub async fn hsts(mut r: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    r.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    r
}

/// The PEM files of the server's certificate chain and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert_file: PathBuf,
    /// The private key of the leaf (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key_file: PathBuf,
}

impl TlsFiles {
    /// Both flags or neither: one without the other is a configuration error.
    pub fn from_flags(cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<TlsFiles>, String> {
        match (cert, key) {
            (Some(cert_file), Some(key_file)) => Ok(Some(TlsFiles { cert_file, key_file })),
            (None, None) => Ok(None),
            (Some(_), None) => {
                Err("--tls-cert-file needs --tls-key-file (give both, or neither for plain HTTP)".into())
            }
            (None, Some(_)) => {
                Err("--tls-key-file needs --tls-cert-file (give both, or neither for plain HTTP)".into())
            }
        }
    }
}

/// The one crypto provider of the TLS listener (never the process-wide default: the workspace
/// links both ring and aws-lc-rs).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Read and check the chain and key: the files parse, the chain is not empty and the key is the
/// leaf's.
fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, String> {
    let cert_path = files.cert_file.display();
    let key_path = files.key_file.display();
    let chain = CertificateDer::pem_file_iter(&files.cert_file)
        .map_err(|e| format!("--tls-cert-file {cert_path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--tls-cert-file {cert_path}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("--tls-cert-file {cert_path}: no CERTIFICATE in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(|e| format!("--tls-key-file {key_path}: {e} (a PEM private key is expected)"))?;
    let certified = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| format!("--tls-cert-file {cert_path} with --tls-key-file {key_path}: {e}"))?;
    Ok(Arc::new(certified))
}

/// Hands each handshake the certified key held now; [`Tls::reload`] swaps it.
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

/// The listener's TLS: its rustls configuration and the reloadable certificate.
#[derive(Debug)]
pub struct Tls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    resolver: Arc<Resolver>,
    config: Arc<ServerConfig>,
}

impl Tls {
    /// Load the files (a bad file fails the start with a message naming it) and build the
    /// server configuration: safe default protocol versions, no client certificates, ALPN
    /// `h2` and `http/1.1`.
    pub fn new(files: &TlsFiles) -> Result<Tls, String> {
        let provider = provider();
        let resolver = Arc::new(Resolver(RwLock::new(load(files, &provider)?)));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls { files: files.clone(), provider, resolver, config: Arc::new(config) })
    }

    /// The rustls configuration of the listener.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// The files the certificate is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Read the files again and use them for the next handshakes. On an error the certificate
    /// in use stays (and the error says why the new one was refused).
    pub fn reload(&self) -> Result<(), String> {
        let key = load(&self.files, &self.provider)?;
        *self.resolver.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = key;
        Ok(())
    }
}
