//! Finding the compiled site (WASM, JS, CSS, public assets) without extra environment.

use std::path::{Path, PathBuf};

/// The file whose presence marks a usable site root.
const MARKER: &str = "pkg/qingting.js";

/// The configured root, else cargo-leptos' `LEPTOS_SITE_ROOT`, else `site/` beside the binary
/// (release archives) or the cargo target dir's `site/`, else `./target/site`.
pub fn locate(configured: &str) -> Option<PathBuf> {
    if !configured.is_empty() {
        return Some(PathBuf::from(configured));
    }
    let mut candidates = Vec::new();
    if let Ok(v) = std::env::var("LEPTOS_SITE_ROOT") {
        candidates.push(PathBuf::from(v));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(Path::parent)
    {
        candidates.push(dir.join("site"));
        candidates.push(dir.join("../site"));
    }
    candidates.push(PathBuf::from("target/site"));
    candidates.into_iter().find(|c| c.join(MARKER).is_file())
}
