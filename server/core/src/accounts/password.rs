//! Password hashing with Argon2id at OWASP's recommended cost (19 MiB, t=2, p=1).
//! Hashing runs on the blocking pool so it never stalls other requests.

use super::AccountError;
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use std::sync::OnceLock;

pub const MIN_PASSWORD_LEN: usize = 8;
/// Long enough for any passphrase, short enough that hashing it is not a denial of service.
const MAX_PASSWORD_LEN: usize = 1024;

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub(super) fn check_strength(password: &str, username: &str) -> Result<(), AccountError> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(AccountError::WeakPassword(format!(
            "Passwords need at least {MIN_PASSWORD_LEN} characters."
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AccountError::WeakPassword(format!(
            "Passwords can be at most {MAX_PASSWORD_LEN} bytes."
        )));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(AccountError::WeakPassword(
            "The password must not be your user name.".into(),
        ));
    }
    Ok(())
}

pub async fn hash_password(password: &str) -> Result<String, AccountError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AccountError::Internal(format!("hashing failed: {e}")))
    })
    .await
    .map_err(|e| AccountError::Internal(e.to_string()))?
}

/// Verifies against `hash`; with no hash, burns the same work against a dummy so a missing
/// user is not distinguishable by timing, then answers false.
pub async fn verify_password(password: &str, hash: Option<&str>) -> Result<bool, AccountError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let real = hash.is_some();
    let hash = match hash {
        Some(h) => h.to_owned(),
        None => DUMMY
            .get_or_init(|| {
                let salt = SaltString::generate(&mut OsRng);
                argon2()
                    .hash_password(b"not a real password", &salt)
                    .expect("hashing a constant succeeds")
                    .to_string()
            })
            .clone(),
    };
    let password = password.to_owned();
    let matched = tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| AccountError::Internal(format!("stored hash unreadable: {e}")))?;
        Ok::<_, AccountError>(
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
        )
    })
    .await
    .map_err(|e| AccountError::Internal(e.to_string()))??;
    Ok(real && matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_roundtrip_and_phc_format() {
        let h = hash_password("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", Some(&h)).await.unwrap());
        assert!(!verify_password("wrong horse", Some(&h)).await.unwrap());
        assert!(!verify_password("correct horse", None).await.unwrap());
    }

    #[test]
    fn strength_rules() {
        assert!(check_strength("short", "alice").is_err());
        assert!(check_strength("alicealice", "alicealice").is_err());
        assert!(check_strength(&"x".repeat(1025), "alice").is_err());
        assert!(check_strength("long enough", "alice").is_ok());
    }
}
