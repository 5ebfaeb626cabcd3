//! Password hashing: Argon2id for new hashes, Django's PBKDF2 format accepted for imported users.

use std::cell::RefCell;

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
        Ok(parsed) if verify_argon2(password.as_bytes(), &parsed) => Verdict::Match,
        _ => Verdict::Mismatch,
    }
}

/// Largest Argon2 memory cost (KiB) a stored hash may ask for; ours use 19,456.
const MAX_MEMORY_KIB: u32 = 64 * 1024;

thread_local! {
    /// Argon2's work area (19 MiB at our parameters), kept for the life of the thread and
    /// reused by every check on it. Allocating it per login fragmented the heap until the token
    /// function held two of them: 47 MB of RSS under `make bench`'s load, against 29 MB with
    /// this. A Lambda process checks on its one runtime thread, so it has one; per thread rather
    /// than behind a process-wide lock, because a lock made checks on other threads (tests, a
    /// multi-threaded host) wait on each other with their DynamoDB requests in flight, until the
    /// SDK's timeouts turned that wait into 503s.
    static WORK_AREA: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// What the crate's `verify_password` does, but in [`WORK_AREA`] instead of fresh memory.
fn verify_argon2(password: &[u8], hash: &PasswordHash) -> bool {
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        hash.version.map(Version::try_from).transpose(),
        Params::try_from(hash),
    ) else {
        return false;
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let mut computed = vec![0u8; expected.as_ref().len()];
    let hashed = WORK_AREA.with_borrow_mut(|area| {
        area.resize(blocks, Block::new());
        argon2.hash_password_into_with_memory(password, salt, &mut computed, &mut area[..]).is_ok()
    });
    hashed && bool::from(computed.ct_eq(expected.as_ref()))
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
    fn hashes_with_other_argon2_parameters_verify_in_the_shared_work_area() {
        let argon2 = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(8192, 3, 1, None).unwrap());
        let h = argon2.hash_password(b"super_pass").unwrap().to_string();
        assert!(h.starts_with("$argon2i$v=19$m=8192,t=3,p=1$"), "{h}");
        assert_eq!(verify("super_pass", &h), Verdict::Match);
        // The area is now smaller than the default hash needs; it grows back.
        assert_eq!(verify("super_pass", &hash("super_pass")), Verdict::Match);
        assert_eq!(verify("wrong", &h), Verdict::Mismatch);
    }

    #[test]
    fn hashes_asking_for_too_much_memory_are_refused_unread() {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8192, 1, 1, None).unwrap());
        let h = argon2.hash_password(b"super_pass").unwrap().to_string();
        let greedy = h.replace("m=8192", "m=4194304");
        assert_eq!(verify("super_pass", &greedy), Verdict::Mismatch);
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
