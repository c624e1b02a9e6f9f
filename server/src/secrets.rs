//! Secrets that must survive restarts but that nobody configured: generated once into
//! `<data>/secrets/` with owner-only permissions.

use anyhow::Context;
use std::{fs, io::Write, path::Path};

/// The configured hex secret, or the one stored under `name`, or a new random one of `len`
/// bytes written there first.
pub fn load_or_generate(
    data_dir: &Path,
    name: &str,
    configured: &str,
    len: usize,
) -> anyhow::Result<Vec<u8>> {
    if !configured.is_empty() {
        let bytes = hex::decode(configured.trim()).context("configured secret is not hex")?;
        anyhow::ensure!(
            bytes.len() >= len,
            "configured secret must be at least {len} bytes"
        );
        return Ok(bytes);
    }
    let dir = data_dir.join("secrets");
    let path = dir.join(name);
    if let Ok(text) = fs::read_to_string(&path) {
        let bytes = hex::decode(text.trim())
            .with_context(|| format!("{} is corrupt (not hex)", path.display()))?;
        anyhow::ensure!(bytes.len() >= len, "{} is too short", path.display());
        return Ok(bytes);
    }
    create_private_dir(&dir)?;
    let mut bytes = vec![0u8; len];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    // Write to a temporary file then rename, so a crash never leaves a half-written key.
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = private_file(&tmp)?;
        f.write_all(hex::encode(&bytes).as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    tracing::info!(path = %path.display(), "generated a new secret");
    Ok(bytes)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    Ok(())
}

#[cfg(unix)]
fn private_file(path: &Path) -> anyhow::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    Ok(fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_once_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_generate(dir.path(), "k", "", 64).unwrap();
        let b = load_or_generate(dir.path(), "k", "", 64).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(a, b, "the stored secret is reused");
        let mode = fs::metadata(dir.path().join("secrets/k"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = fs::metadata(dir.path().join("secrets"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn configured_secret_wins_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let hexed = "ab".repeat(64);
        assert_eq!(
            load_or_generate(dir.path(), "k", &hexed, 64).unwrap(),
            vec![0xab; 64]
        );
        assert!(load_or_generate(dir.path(), "k", "zz", 64).is_err());
        assert!(load_or_generate(dir.path(), "k", "abab", 64).is_err());
    }
}
