//! `X-Hub-Signature` (WebSub §7.1): `METHOD=HEX`, the HMAC of the pushed body under
//! the subscription's secret. sha1, sha256, sha384 and sha512 are the methods the
//! Recommendation names; ring's `hmac::verify` compares in constant time.

use ring::hmac;

/// Why a pushed body is not taken as the hub's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Hub-Signature")]
    Missing,
    #[error("X-Hub-Signature is not METHOD=HEX with sha1, sha256, sha384 or sha512")]
    Malformed,
    #[error("X-Hub-Signature does not match the body")]
    Mismatch,
}

/// Checks `header` (the `X-Hub-Signature` value, if any) against `body` and `secret`.
pub fn verify(header: Option<&[u8]>, secret: &[u8], body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let text = std::str::from_utf8(header).map_err(|_| SignatureError::Malformed)?;
    let (method, hex) = text
        .trim()
        .split_once('=')
        .ok_or(SignatureError::Malformed)?;
    let algorithm = match method.trim().to_ascii_lowercase().as_str() {
        "sha1" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        "sha256" => hmac::HMAC_SHA256,
        "sha384" => hmac::HMAC_SHA384,
        "sha512" => hmac::HMAC_SHA512,
        _ => return Err(SignatureError::Malformed),
    };
    let tag = decode_hex(hex.trim()).ok_or(SignatureError::Malformed)?;
    let key = hmac::Key::new(algorithm, secret);
    hmac::verify(&key, body, &tag).map_err(|_| SignatureError::Mismatch)
}

/// The `X-Hub-Signature` value a hub sends for `body` (sha256); for the tests and the
/// benchmark's own pushes.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body);
    format!("sha256={}", encode_hex(tag.as_ref()))
}

/// Lowercase hex of `bytes`.
pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"sekrit";
    const BODY: &[u8] = b"<feed/>";

    fn hex_hmac(algorithm: hmac::Algorithm) -> String {
        encode_hex(hmac::sign(&hmac::Key::new(algorithm, SECRET), BODY).as_ref())
    }

    #[test]
    fn every_method_of_the_recommendation_verifies() {
        for (name, algorithm) in [
            ("sha1", hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            ("sha256", hmac::HMAC_SHA256),
            ("sha384", hmac::HMAC_SHA384),
            ("SHA512", hmac::HMAC_SHA512),
        ] {
            let header = format!("{name}={}", hex_hmac(algorithm));
            assert_eq!(
                verify(Some(header.as_bytes()), SECRET, BODY),
                Ok(()),
                "{name}"
            );
        }
        assert_eq!(
            verify(Some(sign(SECRET, BODY).as_bytes()), SECRET, BODY),
            Ok(())
        );
    }

    #[test]
    fn a_known_vector_verifies() {
        // HMAC-SHA256 of "The quick brown fox jumps over the lazy dog" under "key".
        let header = b"sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";
        let body = b"The quick brown fox jumps over the lazy dog";
        assert_eq!(verify(Some(header), b"key", body), Ok(()));
    }

    #[test]
    fn forged_missing_and_malformed_signatures_are_refused() {
        let good = sign(SECRET, BODY);
        assert_eq!(
            verify(Some(good.as_bytes()), b"other", BODY),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(good.as_bytes()), SECRET, b"<feed>x</feed>"),
            Err(SignatureError::Mismatch)
        );
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            verify(Some(&flipped), SECRET, BODY),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(None, SECRET, BODY), Err(SignatureError::Missing));
        for bad in ["sha256", "md5=00", "sha256=zz", "sha256=abc", "=00"] {
            assert_eq!(
                verify(Some(bad.as_bytes()), SECRET, BODY),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        // A signature of another method's length does not pass either.
        let short = format!("sha256={}", &hex_hmac(hmac::HMAC_SHA256)[..40]);
        assert_eq!(
            verify(Some(short.as_bytes()), SECRET, BODY),
            Err(SignatureError::Mismatch)
        );
    }
}
