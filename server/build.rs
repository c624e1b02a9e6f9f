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
    if let Some(root) = site_to_embed() {
        // Any change under the site (a new build of it) embeds it again.
        println!("cargo:rerun-if-changed={}", root.display());
        collect(&root, &root, &mut files);
        files.sort();
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

fn site_to_embed() -> Option<PathBuf> {
    if env::var("PROFILE").ok()? != "release" {
        return None;
    }
    let root = PathBuf::from(env::var_os("LEPTOS_SITE_ROOT")?);
    // cargo-leptos gives the site root relative to the workspace root (this crate's parent).
    let root = if root.is_absolute() {
        root
    } else {
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR")?)
            .parent()?
            .join(root)
    };
    let name = env::var("LEPTOS_OUTPUT_NAME").ok()?;
    let pkg = env::var("LEPTOS_SITE_PKG_DIR").unwrap_or_else(|_| "pkg".into());
    root.join(pkg)
        .join(format!("{name}.wasm.br"))
        .is_file()
        .then_some(root)
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.is_file() {
            let rel = path.strip_prefix(root).unwrap();
            let rel = rel
                .to_str()
                .expect("site file names are UTF-8")
                .replace('\\', "/");
            files.push((rel, path.to_str().unwrap().to_string()));
        }
    }
}
