//! Certificates made at run time with rcgen for the TLS tests (no key files): a CA that issues
//! server and client certificates.

use netref::tls::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, TlsClientConfig, TlsServerConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// A certificate authority made at run time.
pub struct Ca {
    /// The CA's own (self-signed) certificate: the root clients and servers trust.
    pub cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A new CA named `name`, with a fresh key.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert: cert.der().clone(), issuer: Issuer::new(params, key) }
    }

    /// A leaf certificate for `names` (DNS names or IP addresses) signed by this CA, with its key.
    pub fn issue(
        &self,
        names: &[&str],
        purpose: ExtendedKeyUsagePurpose,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (vec![cert.der().clone()], PrivatePkcs8KeyDer::from(key.serialize_der()).into())
    }

    /// A server presenting a certificate for `localhost` and `127.0.0.1`.
    pub fn server_config(&self) -> TlsServerConfig {
        let (chain, key) = self.issue(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
        TlsServerConfig::new(chain, key).unwrap()
    }

    /// A client trusting this CA.
    pub fn client_config(&self) -> TlsClientConfig {
        TlsClientConfig::new(vec![self.cert.clone()]).unwrap()
    }
}
