//! Embeds the compiled site (WASM, JS, CSS, public assets, with their brotli and gzip forms)
//! into a release binary, so that copying `qingting` alone deploys it.
//!
//! Only `cargo leptos build --release --precompress` embeds: that build finishes the site
//! before it compiles the server (other builds compile both at once, and the site would be
//! half written), and it is the one that leaves `<site>/pkg/<name>.wasm.br` behind. Any other
//! build embeds nothing and the binary reads its site from a directory at start-up.

use std::{
    env,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LEPTOS_SITE_ROOT");
    println!("cargo:rerun-if-env-changed=LEPTOS_OUTPUT_NAME");
    let mut files = Vec::new();
    if let Some(root) = release_site_root() {
        // Any change under the site (a new build of it, precompressed or not) decides again.
        println!("cargo:rerun-if-changed={}", root.display());
        if precompressed(&root) {
            collect(&root, &root, &mut files);
            files.sort();
        }
    }
    let mut code = String::from(
        "/// The embedded site: (path relative to the site root, contents).\n\
         pub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (rel, abs) in &files {
        writeln!(code, "    ({rel:?}, include_bytes!({abs:?})),").unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap()).join("embedded_site.rs");
    fs::write(out, code).unwrap();
}

/// cargo-leptos' site root, for a release build it drives.
fn release_site_root() -> Option<PathBuf> {
    if env::var("PROFILE").ok()? != "release" {
        return None;
    }
    let root = PathBuf::from(env::var_os("LEPTOS_SITE_ROOT")?);
    // cargo-leptos gives the site root relative to the workspace root (this crate's parent).
    Some(if root.is_absolute() {
        root
    } else {
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR")?)
            .parent()?
            .join(root)
    })
}

/// Whether the site was finished and precompressed before this build: cargo-leptos empties
/// the site at the start of every build and writes `.br` files only with `--precompress`,
/// after the front end is complete and before the server is compiled.
fn precompressed(root: &Path) -> bool {
    let name = env::var("LEPTOS_OUTPUT_NAME").unwrap_or_else(|_| "qingting".into());
    let pkg = env::var("LEPTOS_SITE_PKG_DIR").unwrap_or_else(|_| "pkg".into());
    root.join(pkg).join(format!("{name}.wasm.br")).is_file()
}

/// Every regular file under `dir` (links are not followed), as `site::read_tree` reads a site
/// directory at run time.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let (path, kind) = (entry.path(), entry.file_type().unwrap());
        if kind.is_dir() {
            collect(root, &path, files);
        } else if kind.is_file() {
            let rel = path.strip_prefix(root).unwrap();
            let rel = rel
                .to_str()
                .expect("site file names are UTF-8")
                .replace('\\', "/");
            files.push((rel, path.to_str().unwrap().to_string()));
        }
    }
}
