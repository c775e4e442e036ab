//! Trusting a company CA and recognising an untrusted certificate, for every HTTPS client of a
//! run: the bucket's and the Hub's both read the same bundle and give up at once on a
//! certificate the server's chain does not meet.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The bundle's certificates that the TLS library accepts, as PEM. The HTTPS client panics on a
/// certificate it cannot parse, so each one is checked here; a bundle without a single usable
/// certificate is an error (a wrong path or a DER file would otherwise trust nothing new).
pub(crate) fn read_bundle(path: &Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read the CA bundle: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    const END: &str = "-----END CERTIFICATE-----";
    let mut kept = String::new();
    for block in text.split_inclusive(END) {
        let Some(start) = block.find("-----BEGIN CERTIFICATE-----") else {
            continue;
        };
        if !block.ends_with(END) {
            continue;
        }
        let pem = &block[start..];
        let usable = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .is_ok_and(|ders| {
                let mut roots = rustls::RootCertStore::empty();
                !ders.is_empty() && ders.into_iter().all(|d| roots.add(d).is_ok())
            });
        if usable {
            kept.push_str(pem);
            kept.push('\n');
        }
    }
    if kept.is_empty() {
        return Err("no PEM certificate in the CA bundle".into());
    }
    Ok(kept.into_bytes())
}

/// True when a connection failed because the server's certificate was not trusted (or did not
/// match its name): a setup problem, never worth a retry.
pub fn is_certificate_error(chain: &str) -> bool {
    let lower = chain.to_lowercase();
    [
        "invalid peer certificate",
        "certificate verify failed",
        "unknownissuer",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUGYMHu4E0Ye6gYj5x6YFfIcELyTkwCgYIKoZIzj0EAwIw
ETEPMA0GA1UEAwwGdGVzdGNhMB4XDTI0MDEwMTAwMDAwMFoXDTM0MDEwMTAwMDAw
MFowETEPMA0GA1UEAwwGdGVzdGNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
-----END CERTIFICATE-----
";

    #[test]
    fn a_bundle_without_a_usable_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        assert!(read_bundle(&path)
            .unwrap_err()
            .contains("no PEM certificate"));
        // A truncated certificate is skipped rather than handed to the TLS client.
        std::fs::write(&path, CA).unwrap();
        assert!(read_bundle(&path).is_err());
        let err = read_bundle(&dir.path().join("missing.pem")).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
    }

    #[test]
    fn usable_certificates_are_kept_and_the_rest_dropped() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let good = params.self_signed(&key).unwrap().pem();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.pem");
        // A system-style bundle: comments, a broken entry, then a real CA.
        std::fs::write(&path, format!("# company roots\n{CA}\n{good}")).unwrap();
        let kept = String::from_utf8(read_bundle(&path).unwrap()).unwrap();
        assert_eq!(kept.trim(), good.trim());
    }

    #[test]
    fn certificate_failures_are_recognised() {
        assert!(is_certificate_error(
            "io error: invalid peer certificate: UnknownIssuer"
        ));
        assert!(!is_certificate_error("Connection refused"));
    }
}
