//! The data dir, which holds password hashes, session ids and keys, kept readable by the
//! server's user only; and secrets that must survive restarts but that nobody configured,
//! generated once into `<data>/secrets/` with owner-only permissions.

use anyhow::Context;
use std::{fs, io::Write, path::Path};

/// From now on this process creates files and directories for its own user only
/// (0600/0700); the sandbox gives IDEs the usual 022 back. For `serve` and `migrate`, not
/// for `editors install`: workspace uids must be able to read the editors.
#[cfg(unix)]
pub fn private_umask() {
    unsafe {
        libc::umask(0o077);
    }
}

/// What the server keeps directly in the data dir: the SQLite database and its journals.
const DATA_FILES: [&str; 4] = [
    "qingting.db",
    "qingting.db-wal",
    "qingting.db-shm",
    "qingting.db-journal",
];
/// Subtrees of the data dir that only the server reads. Not `workspaces` or `editors`:
/// the IDEs need those.
const DATA_TREES: [&str; 3] = ["secrets", "logs", "objects"];

/// Creates the data dir 0700, or makes an existing one so (saying so in the log), and takes
/// group and other permissions off the server's own files in it, left by an older version.
#[cfg(unix)]
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make data dir {} private (0700)", dir.display()))?;
        tracing::warn!(
            dir = %dir.display(),
            "data dir was {mode:03o}, readable by other users; it is 0700 now"
        );
    }
    let mut tightened = 0;
    for name in DATA_FILES {
        tightened += tighten(&dir.join(name));
    }
    for name in DATA_TREES {
        tightened += tighten_tree(&dir.join(name));
    }
    if tightened > 0 {
        tracing::warn!(
            dir = %dir.display(),
            "took group and other permissions off {tightened} files and dirs in the data dir"
        );
    }
    Ok(())
}

/// Clears the group and other bits of `path` (never through a symlink); 1 if it changed.
#[cfg(unix)]
fn tighten(path: &Path) -> usize {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    let mode = meta.permissions().mode() & 0o7777;
    if meta.file_type().is_symlink() || mode & 0o077 == 0 {
        return 0;
    }
    match fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700)) {
        Ok(()) => 1,
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot make it private: {e}");
            0
        }
    }
}

#[cfg(unix)]
fn tighten_tree(path: &Path) -> usize {
    let mut n = tighten(path);
    let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    if let Some(entries) = is_dir.then(|| fs::read_dir(path).ok()).flatten() {
        for e in entries.flatten() {
            n += tighten_tree(&e.path());
        }
    }
    n
}

/// The configured hex secret, or the one stored under `name`, or a new random one of `len`
/// bytes written there first.
pub fn load_or_generate(
    data_dir: &Path,
    name: &str,
    configured: Option<&str>,
    len: usize,
) -> anyhow::Result<Vec<u8>> {
    if let Some(configured) = configured {
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
        let a = load_or_generate(dir.path(), "k", None, 64).unwrap();
        let b = load_or_generate(dir.path(), "k", None, 64).unwrap();
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
    fn data_dir_and_server_files_are_made_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        let set = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();

        prepare_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700, "created private");

        // Left by an older version: everything world-readable.
        set(&dir, 0o755);
        fs::write(dir.join("qingting.db"), "").unwrap();
        set(&dir.join("qingting.db"), 0o644);
        fs::create_dir_all(dir.join("objects/avatars")).unwrap();
        fs::write(dir.join("objects/avatars/a.png"), "").unwrap();
        set(&dir.join("objects/avatars/a.png"), 0o644);
        set(&dir.join("objects/avatars"), 0o755);
        fs::create_dir_all(dir.join("workspaces/1/files")).unwrap();
        fs::write(dir.join("workspaces/1/files/x.py"), "").unwrap();
        set(&dir.join("workspaces/1/files/x.py"), 0o644);
        let outside = root.path().join("outside.txt");
        fs::write(&outside, "").unwrap();
        set(&outside, 0o644);
        std::os::unix::fs::symlink(&outside, dir.join("logs")).unwrap();

        prepare_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("qingting.db")), 0o600);
        assert_eq!(mode(&dir.join("objects/avatars")), 0o700);
        assert_eq!(mode(&dir.join("objects/avatars/a.png")), 0o600);
        assert_eq!(
            mode(&dir.join("workspaces/1/files/x.py")),
            0o644,
            "workspace files keep theirs"
        );
        assert_eq!(mode(&outside), 0o644, "a symlink is never followed");
    }

    #[test]
    fn configured_secret_wins_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let hexed = "ab".repeat(64);
        assert_eq!(
            load_or_generate(dir.path(), "k", Some(&hexed), 64).unwrap(),
            vec![0xab; 64]
        );
        assert!(load_or_generate(dir.path(), "k", Some("zz"), 64).is_err());
        assert!(load_or_generate(dir.path(), "k", Some("abab"), 64).is_err());
    }
}
