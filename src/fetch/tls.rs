//! The crypto provider of every TLS connection: rustls with *ring*.
//!
//! reqwest's default provider is aws-lc, whose build needs cmake and a C toolchain;
//! ring needs neither cmake nor anything beyond the C compiler jemalloc already
//! needs. reqwest is built without a provider (`rustls-no-provider`) and takes the
//! process default, which is installed here before any client is built.

/// Installs ring as the process's rustls provider, unless one is installed already.
/// Idempotent and cheap: called before every client is built.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install it between the check and here: either way,
        // ring is the provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clients_build_with_ring() {
        super::install_crypto_provider();
        super::install_crypto_provider();
        let provider = rustls::crypto::CryptoProvider::get_default().unwrap();
        assert!(!provider.cipher_suites.is_empty());
        reqwest::Client::builder().build().unwrap();
    }
}
