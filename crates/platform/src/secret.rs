//! Passwords (Argon2id, slow on purpose) and random bearer secrets (256-bit, stored as SHA-256
//! digests so checking one per request is cheap).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const MIN_PASSWORD_LEN: usize = 10;

/// Hashes on a blocking thread: Argon2 takes tens of milliseconds of CPU.
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(anyhow::anyhow!("argon2: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?
}

/// Verifies on a blocking thread. A missing hash (invited user, no password yet) never matches,
/// but still costs one hash so timing does not reveal which accounts exist.
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let stored = match &hash {
            Some(h) => h.as_str(),
            None => dummy_hash()?,
        };
        let parsed = PasswordHash::new(stored)
            .map_err(|e| Error::Internal(anyhow::anyhow!("argon2: {e}")))?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && hash.is_some())
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?
}

/// The Argon2id hash of a random string nobody knows; verified against when there is no user.
fn dummy_hash() -> Result<&'static str> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let salt = SaltString::generate(&mut OsRng);
    let h = Argon2::default()
        .hash_password(random_secret().as_bytes(), &salt)
        .map_err(|e| Error::Internal(anyhow::anyhow!("argon2: {e}")))?
        .to_string();
    Ok(DUMMY.get_or_init(|| h))
}

/// A fresh 256-bit secret, URL-safe base64.
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Checks a new password; the error names the field.
pub fn check_password(field: &str, password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::field(field, "password_too_short"));
    }
    if password.len() > 1024 {
        return Err(Error::field(field, "too_long"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_round_trip_and_dummy_never_matches() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!verify_password("wrong horse".into(), Some(h))
            .await
            .unwrap());
        assert!(!verify_password("anything".into(), None).await.unwrap());
    }

    #[test]
    fn secrets_are_random_and_digests_stable() {
        assert_ne!(random_secret(), random_secret());
        assert_eq!(random_secret().len(), 43);
        assert_eq!(digest("a"), digest("a"));
        assert_eq!(digest("a").len(), 64);
    }
}
