//! A TLS terminator in front of the Garage test server, as a company puts one in front of its
//! MinIO or Ceph: HTTPS on loopback with a certificate signed by a CA made for this run alone,
//! bytes passed through to Garage's plain HTTP port.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use super::Garage;

/// A running terminator and the CA files a test can hand the binary.
pub struct TlsTerminator {
    /// `https://localhost:<port>`: the name the certificate was issued for.
    pub endpoint: String,
    /// The CA that signed the terminator's certificate, as PEM.
    pub ca_pem: PathBuf,
    /// A CA that signed nothing here: trusting it must not be enough.
    pub wrong_ca_pem: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
}

/// A self-signed CA certificate and its issuer.
fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA cert")
}

impl TlsTerminator {
    /// Starts the terminator in front of Garage, writing the CA files into `dir`.
    pub fn start(dir: &Path) -> TlsTerminator {
        let upstream = Garage::get()
            .endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let ca = make_ca("hf-cache-sync test company CA");
        let wrong = make_ca("some other CA");
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
        let cert = params.signed_by(&key, &ca).expect("server cert");

        let ca_pem = dir.join("company-ca.pem");
        let wrong_ca_pem = dir.join("other-ca.pem");
        std::fs::write(&ca_pem, ca.pem()).expect("write CA");
        std::fs::write(&wrong_ca_pem, wrong.pem()).expect("write other CA");

        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server TLS config");
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("terminator runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the terminator");
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                tokio::spawn(async move {
                    // A client that refuses our certificate ends its handshake here.
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        });
        TlsTerminator {
            endpoint: format!("https://localhost:{port}"),
            ca_pem,
            wrong_ca_pem,
            runtime: Some(runtime),
        }
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
