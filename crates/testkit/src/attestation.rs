//! A test attestation CA (rcgen): it issues attestation certificates a software passkey signs
//! `packed` attestation statements with ([`crate::authenticator::Passkey::attestation`]), as a
//! security key's vendor does; its root (PEM) is what `--attestation-roots` trusts.

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

/// id-fido-gen-ce-aaguid: the AAGUID an attestation certificate vouches for.
const FIDO_GEN_CE_AAGUID: &[u64] = &[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4];

/// A root CA of a (test) authenticator vendor.
pub struct AttestationCa {
    issuer: Issuer<'static, KeyPair>,
    /// The root certificate (PEM).
    pub pem: String,
}

/// What a passkey signs its attestation with: the attestation key and `x5c` (the attestation
/// certificate first, DER).
pub struct PackedAttestation {
    pub(crate) key: EcdsaKeyPair,
    pub(crate) rng: SystemRandom,
    pub x5c: Vec<Vec<u8>>,
}

impl AttestationCa {
    pub fn new(name: &str) -> AttestationCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.distinguished_name.push(DnType::OrganizationName, "passlink tests");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("CA certificate");
        AttestationCa { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// An attestation certificate for authenticators of `aaguid` (WebAuthn §8.2.1: subject C, O,
    /// OU "Authenticator Attestation", CN; not a CA; the AAGUID extension, not critical), and
    /// its key.
    pub fn attestation(&self, aaguid: [u8; 16]) -> PackedAttestation {
        let key = KeyPair::generate().expect("attestation key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CountryName, "DE");
        params.distinguished_name.push(DnType::OrganizationName, "passlink tests");
        params.distinguished_name.push(DnType::OrganizationalUnitName, "Authenticator Attestation");
        params.distinguished_name.push(DnType::CommonName, "passlink test authenticator");
        params.is_ca = IsCa::ExplicitNoCa;
        let mut octets = vec![0x04, 0x10];
        octets.extend_from_slice(&aaguid);
        params.custom_extensions = vec![CustomExtension::from_oid_content(FIDO_GEN_CE_AAGUID, octets)];
        let cert = params.signed_by(&key, &self.issuer).expect("attestation certificate");
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &key.serialize_der(), &rng)
            .expect("attestation key for ring");
        PackedAttestation { key, rng, x5c: vec![cert.der().to_vec()] }
    }
}

/// CBOR: a head of `major` type with argument `n`.
pub(crate) fn cbor_head(out: &mut Vec<u8>, major: u8, n: usize) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

pub(crate) fn cbor_text(out: &mut Vec<u8>, s: &str) {
    cbor_head(out, 3, s.len());
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn cbor_bytes(out: &mut Vec<u8>, b: &[u8]) {
    cbor_head(out, 2, b.len());
    out.extend_from_slice(b);
}

impl PackedAttestation {
    /// The `packed` attStmt `{"alg": -7, "sig": …, "x5c": […]}` over authData and the client
    /// data hash (CBOR).
    pub(crate) fn statement(&self, auth_data: &[u8], client_data_hash: &[u8]) -> Vec<u8> {
        let mut signed = auth_data.to_vec();
        signed.extend_from_slice(client_data_hash);
        let sig = self.key.sign(&self.rng, &signed).expect("attestation signature");
        let mut out = Vec::new();
        cbor_head(&mut out, 5, 3);
        cbor_text(&mut out, "alg");
        out.push(0x26); // -7: ES256
        cbor_text(&mut out, "sig");
        cbor_bytes(&mut out, sig.as_ref());
        cbor_text(&mut out, "x5c");
        cbor_head(&mut out, 4, self.x5c.len());
        for c in &self.x5c {
            cbor_bytes(&mut out, c);
        }
        out
    }
}
