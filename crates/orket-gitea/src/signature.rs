//! Webhook signatures. Gitea signs the exact bytes of a delivery's body with the hook's secret
//! (HMAC-SHA256) and sends the lower-case hex digest twice: as `X-Gitea-Signature: <hex>` and
//! as `X-Hub-Signature-256: sha256=<hex>` (`services/webhook/deliver.go`, `addDefaultHeaders`).
//! When the hook has no secret it still sends both headers, empty (`sha256=` for the second):
//! an empty signature is therefore refused with its own error, which tells the operator to set
//! a secret, never taken as "nothing to check".
//!
//! The Python predecessor checked a signature only when the header was present, so an unsigned
//! request went through: here a delivery without a valid signature is always an error, and
//! Orket without a secret refuses every delivery ([`SignatureError::NoSecret`]).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the bare hex digest.
pub const GITEA_SIGNATURE_HEADER: &str = "X-Gitea-Signature";
/// The GitHub-compatible header carrying `sha256=<hex digest>`.
pub const HUB_SIGNATURE_256_HEADER: &str = "X-Hub-Signature-256";

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Orket has no webhook secret, so nothing it receives can be trusted.
    #[error(
        "no webhook secret is configured in Orket: every delivery is refused until the same \
         secret is set on the Gitea hook and in Orket"
    )]
    NoSecret,
    /// Neither signature header came with the request.
    #[error(
        "the delivery is not signed: neither {GITEA_SIGNATURE_HEADER} nor \
         {HUB_SIGNATURE_256_HEADER} was sent (is this a Gitea webhook?)"
    )]
    Missing,
    /// The headers came but carry no digest: what Gitea sends for a hook without a secret.
    #[error(
        "the delivery's {header} header is empty: Gitea sends it empty when the webhook has no \
         secret; set the hook's secret in Gitea to the one Orket has"
    )]
    Empty {
        /// The header that came empty (the first one looked at).
        header: &'static str,
    },
    /// A header that is not a hex SHA-256 digest (in its expected form).
    #[error("the delivery's {header} header is malformed: {reason}")]
    Malformed {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A well-formed digest that is not the body's: a wrong secret, or a body changed on the way.
    #[error(
        "the delivery's {header} does not match its body: the hook's secret differs from \
         Orket's, or the body was changed on the way"
    )]
    Mismatch {
        /// The header whose digest did not match.
        header: &'static str,
    },
}

/// The lower-case hex HMAC-SHA256 of `body` under `secret`: the value Gitea puts in
/// `X-Gitea-Signature` (and, after `sha256=`, in `X-Hub-Signature-256`).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    hex::encode(mac(secret, body).finalize().into_bytes())
}

/// Checks a delivery's signature headers against its exact raw `body`. Every header that came
/// with a digest must match it (Gitea sends the same digest in both); at least one must.
/// `None` is a header that was not sent. The comparison is constant-time (`hmac`'s
/// `verify_slice`).
pub fn verify(
    secret: &[u8],
    body: &[u8],
    gitea_signature: Option<&str>,
    hub_signature_256: Option<&str>,
) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    if gitea_signature.is_none() && hub_signature_256.is_none() {
        return Err(SignatureError::Missing);
    }
    let mut digests: Vec<(&'static str, &str)> = Vec::with_capacity(2);
    let mut first_empty: Option<&'static str> = None;
    if let Some(value) = gitea_signature {
        let value = value.trim();
        if value.is_empty() {
            first_empty.get_or_insert(GITEA_SIGNATURE_HEADER);
        } else {
            digests.push((GITEA_SIGNATURE_HEADER, value));
        }
    }
    if let Some(value) = hub_signature_256 {
        let value = value.trim();
        let Some(digest) = strip_prefix_ignore_case(value, "sha256=") else {
            return Err(SignatureError::Malformed {
                header: HUB_SIGNATURE_256_HEADER,
                reason: format!("expected `sha256=<hex digest>`, got {}", quote(value)),
            });
        };
        if digest.is_empty() {
            first_empty.get_or_insert(HUB_SIGNATURE_256_HEADER);
        } else {
            digests.push((HUB_SIGNATURE_256_HEADER, digest));
        }
    }
    if digests.is_empty() {
        return Err(SignatureError::Empty {
            header: first_empty.unwrap_or(GITEA_SIGNATURE_HEADER),
        });
    }
    for (header, digest) in digests {
        let bytes = decode_digest(header, digest)?;
        mac(secret, body)
            .verify_slice(&bytes)
            .map_err(|_| SignatureError::Mismatch { header })?;
    }
    Ok(())
}

fn mac(secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac
}

/// The 32 bytes of a hex SHA-256 digest (either case, as GitHub-style tools may upper-case it).
fn decode_digest(header: &'static str, digest: &str) -> Result<Vec<u8>, SignatureError> {
    if digest.len() != 64 {
        return Err(SignatureError::Malformed {
            header,
            reason: format!(
                "a SHA-256 digest is 64 hex digits, this one has {} characters",
                digest.chars().count()
            ),
        });
    }
    hex::decode(digest).map_err(|e| SignatureError::Malformed {
        header,
        reason: format!("not hex: {e}"),
    })
}

fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

/// A header value for an error message: quoted, and cut short (it came from outside).
fn quote(value: &str) -> String {
    const MAX: usize = 80;
    let mut shown: String = value.chars().take(MAX).collect();
    if value.chars().count() > MAX {
        shown.push('…');
    }
    format!("{shown:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"s3cret";
    const BODY: &[u8] = b"{\n  \"action\": \"opened\"\n}";

    #[test]
    fn a_valid_gitea_signature_passes() {
        let sig = sign(SECRET, BODY);
        assert_eq!(sig.len(), 64);
        assert!(sig
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert_eq!(verify(SECRET, BODY, Some(&sig), None), Ok(()));
    }

    #[test]
    fn a_valid_hub_signature_passes() {
        let hub = format!("sha256={}", sign(SECRET, BODY));
        assert_eq!(verify(SECRET, BODY, None, Some(&hub)), Ok(()));
        // Both, as Gitea sends them.
        let sig = sign(SECRET, BODY);
        assert_eq!(verify(SECRET, BODY, Some(&sig), Some(&hub)), Ok(()));
        // Upper-case hex is the same digest.
        let upper = format!("sha256={}", sig.to_ascii_uppercase());
        assert_eq!(verify(SECRET, BODY, None, Some(&upper)), Ok(()));
    }

    #[test]
    fn a_wrong_secret_is_a_mismatch() {
        let sig = sign(b"another secret", BODY);
        let err = verify(SECRET, BODY, Some(&sig), None).unwrap_err();
        assert_eq!(
            err,
            SignatureError::Mismatch {
                header: GITEA_SIGNATURE_HEADER
            }
        );
        assert!(err.to_string().contains("secret differs"), "{err}");
    }

    #[test]
    fn one_wrong_header_fails_even_when_the_other_is_right() {
        let good = sign(SECRET, BODY);
        let bad = format!("sha256={}", sign(b"other", BODY));
        assert!(matches!(
            verify(SECRET, BODY, Some(&good), Some(&bad)),
            Err(SignatureError::Mismatch {
                header: HUB_SIGNATURE_256_HEADER
            })
        ));
    }

    #[test]
    fn missing_headers_are_refused() {
        let err = verify(SECRET, BODY, None, None).unwrap_err();
        assert_eq!(err, SignatureError::Missing);
        assert!(err.to_string().contains("not signed"), "{err}");
    }

    #[test]
    fn empty_headers_say_the_hook_has_no_secret() {
        // Exactly what deliver.go sends for a hook without a secret.
        let err = verify(SECRET, BODY, Some(""), Some("sha256=")).unwrap_err();
        assert_eq!(
            err,
            SignatureError::Empty {
                header: GITEA_SIGNATURE_HEADER
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("empty") && text.contains("no secret"),
            "{text}"
        );
        let err = verify(SECRET, BODY, None, Some("sha256=")).unwrap_err();
        assert_eq!(
            err,
            SignatureError::Empty {
                header: HUB_SIGNATURE_256_HEADER
            }
        );
    }

    #[test]
    fn malformed_digests_are_refused() {
        let not_hex = "z".repeat(64);
        assert!(matches!(
            verify(SECRET, BODY, Some(&not_hex), None),
            Err(SignatureError::Malformed {
                header: GITEA_SIGNATURE_HEADER,
                ..
            })
        ));
        let short = "abcd";
        let err = verify(SECRET, BODY, Some(short), None).unwrap_err();
        assert!(err.to_string().contains("64 hex digits"), "{err}");
        let no_prefix = sign(SECRET, BODY);
        let err = verify(SECRET, BODY, None, Some(&no_prefix)).unwrap_err();
        assert!(matches!(
            err,
            SignatureError::Malformed {
                header: HUB_SIGNATURE_256_HEADER,
                ..
            }
        ));
        assert!(err.to_string().contains("sha256=<hex digest>"), "{err}");
        // Multi-byte text of the right byte length is not hex, and does not panic.
        let odd = "é".repeat(32);
        assert!(matches!(
            verify(SECRET, BODY, Some(&odd), Some(&format!("sha256={odd}"))),
            Err(SignatureError::Malformed { .. })
        ));
        assert!(matches!(
            verify(SECRET, BODY, None, Some("ш")),
            Err(SignatureError::Malformed { .. })
        ));
    }

    #[test]
    fn a_body_changed_by_one_byte_fails() {
        let sig = sign(SECRET, BODY);
        let mut changed = BODY.to_vec();
        let last = changed.len() - 2;
        changed[last] ^= 1;
        assert!(matches!(
            verify(SECRET, &changed, Some(&sig), None),
            Err(SignatureError::Mismatch { .. })
        ));
        // Re-serialized JSON (the same value, other bytes) is a different body too.
        let compact = br#"{"action":"opened"}"#;
        assert!(verify(SECRET, compact, Some(&sig), None).is_err());
    }

    #[test]
    fn orket_without_a_secret_refuses_everything() {
        let sig = sign(b"", BODY);
        assert_eq!(
            verify(b"", BODY, Some(&sig), None),
            Err(SignatureError::NoSecret)
        );
    }
}
