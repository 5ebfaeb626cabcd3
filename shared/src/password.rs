//! Password hashing: Argon2id for new hashes, Django's PBKDF2 format accepted for imported users.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

/// Longest password we hash; longer input is refused before any work is done.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// An Argon2id hash of a random password, verified when the username is unknown so that
/// unknown and known usernames cost the same work.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$H5f2Ar1hzqTUoCEvqyDhAEYxrGH+xK1ZVHVMdQA2Q3M";

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password, unusable or unknown hash.
    Mismatch,
    /// Right password, hash is current.
    Match,
    /// Right password, but the hash is in an old format and should be replaced.
    MatchNeedsRehash,
}

/// Hashes a password with Argon2id (the crate's defaults: 19 MiB, t=2, p=1).
pub fn hash(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 with default params cannot fail")
        .to_string()
}

/// Checks a password against a stored hash (Argon2 PHC or Django `pbkdf2_sha256$...`).
pub fn verify(password: &str, stored: &str) -> Verdict {
    if stored.starts_with("pbkdf2_sha256$") {
        return if verify_django_pbkdf2(password, stored) {
            Verdict::MatchNeedsRehash
        } else {
            Verdict::Mismatch
        };
    }
    let stored = stored.strip_prefix("argon2").filter(|s| s.starts_with("$argon2")).unwrap_or(stored);
    match PasswordHash::new(stored) {
        Ok(parsed) if Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() => {
            Verdict::Match
        }
        _ => Verdict::Mismatch,
    }
}

/// Spends the same work as a real check, for usernames that do not exist.
pub fn verify_dummy(password: &str) {
    let _ = verify(password, DUMMY_HASH);
}

fn verify_django_pbkdf2(password: &str, stored: &str) -> bool {
    let mut parts = stored.splitn(4, '$');
    let (Some(_), Some(iterations), Some(salt), Some(expected)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(iterations) = iterations.parse::<u32>() else {
        return false;
    };
    let Ok(expected) = STANDARD.decode(expected) else {
        return false;
    };
    if iterations == 0 || iterations > 10_000_000 || expected.len() != 32 {
        return false;
    }
    let mut derived = [0u8; 32];
    // Django hashes the salt text as it is, without decoding it.
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), iterations, &mut derived);
    derived.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_round_trip() {
        let h = hash("super_pass");
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(verify("super_pass", &h), Verdict::Match);
        assert_eq!(verify("wrong", &h), Verdict::Mismatch);
    }

    #[test]
    fn django_pbkdf2_hashes_verify_and_ask_for_rehash() {
        // alice's hash from the Django export; the password is super_pass.
        let django =
            "pbkdf2_sha256$260000$3ocjA2hwENR0fh76ul2eUb$Fc1WRpjujuYMGHj/2flc6WuwsHQx4r0Cj1e30+BnL50=";
        assert_eq!(verify("super_pass", django), Verdict::MatchNeedsRehash);
        assert_eq!(verify("super_pas", django), Verdict::Mismatch);
    }

    #[test]
    fn unusable_and_garbage_hashes_never_match() {
        for stored in ["!unusable", "", "pbkdf2_sha256$x$y$z", "md5$a$b", "$argon2id$broken"] {
            assert_eq!(verify("super_pass", stored), Verdict::Mismatch, "{stored}");
        }
    }

    #[test]
    fn dummy_hash_is_a_real_argon2_hash() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
