//! The compiled site (WASM, JS, CSS, public assets): where it comes from, and serving it the
//! way a production site does.
//!
//! - A release binary built with `cargo leptos build --release --precompress` carries the site
//!   inside itself (see `build.rs`); otherwise it is read from a directory at start-up. Either
//!   way the files are held in memory: a few megabytes.
//! - The bundle is served under content-hashed names (`/pkg/qingting.<hash>.js`, `.wasm`,
//!   `.css`) with `Cache-Control: public, max-age=31536000, immutable`, so a browser fetches
//!   it once per release. Other files are served by their own names and revalidated (ETag).
//! - Brotli and gzip forms made at build time are served by `Accept-Encoding`.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_site.rs"));
}

/// The name cargo-leptos gives the bundle's files (`pkg/qingting.js`, …).
const BUNDLE: &str = "qingting";
/// The directory of the bundle under the site root.
pub const PKG_DIR: &str = "pkg";
/// Leptos' `HydrationScripts` names the WASM `<name>_bg.wasm` when the build did not come
/// from cargo-leptos (which renames it to `<name>.wasm`); its decision, repeated here.
const WASM_SUFFIX: &str = match option_env!("LEPTOS_OUTPUT_NAME") {
    Some(_) => "",
    None => "_bg",
};
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// Where the site's files came from (shown in the start-up log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Embedded,
    Dir(PathBuf),
    /// No site anywhere: pages render, but never hydrate.
    Missing,
}

impl Source {
    /// What `/healthz` reports: where the site comes from, without the path.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Embedded => "embedded",
            Source::Dir(_) => "directory",
            Source::Missing => "missing",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Embedded => f.write_str("embedded in the binary"),
            Source::Dir(dir) => write!(f, "{}", dir.display()),
            Source::Missing => f.write_str("missing"),
        }
    }
}

/// One file as served: its bytes, their compressed forms, and its headers.
struct Asset {
    identity: Bytes,
    brotli: Option<Bytes>,
    gzip: Option<Bytes>,
    content_type: &'static str,
    cache_control: &'static str,
    /// A digest of the plain bytes; each encoding's ETag is made from it.
    etag: String,
}

/// The whole site, ready to serve.
pub struct Site {
    assets: HashMap<String, Asset>,
    output_name: String,
    source: Source,
}

impl Site {
    /// The configured directory, else the embedded files, else a directory found near the
    /// binary or in the build tree (development).
    pub fn load(configured: Option<&Path>) -> std::io::Result<Site> {
        if let Some(dir) = configured {
            return Site::from_dir(dir);
        }
        if !embedded::FILES.is_empty() {
            let files = embedded::FILES
                .iter()
                .map(|(path, bytes)| (path.to_string(), Bytes::from_static(bytes)));
            return Ok(Site::from_files(files, Source::Embedded));
        }
        match locate_dir() {
            Some(dir) => Site::from_dir(&dir),
            None => Ok(Site::from_files(std::iter::empty(), Source::Missing)),
        }
    }

    /// Reads every file under `dir`.
    pub fn from_dir(dir: &Path) -> std::io::Result<Site> {
        let mut files = Vec::new();
        read_tree(dir, dir, &mut files)?;
        Ok(Site::from_files(files, Source::Dir(dir.to_path_buf())))
    }

    /// Builds the table from (path relative to the site root, contents) pairs; `x.br` and
    /// `x.gz` are the compressed forms of `x`.
    fn from_files(files: impl IntoIterator<Item = (String, Bytes)>, source: Source) -> Site {
        let mut plain = HashMap::new();
        let mut brotli = HashMap::new();
        let mut gzip = HashMap::new();
        for (path, bytes) in files {
            match path.rsplit_once('.') {
                Some((base, "br")) => brotli.insert(base.to_string(), bytes),
                Some((base, "gz")) => gzip.insert(base.to_string(), bytes),
                _ => plain.insert(path, bytes),
            };
        }
        let bundle: Vec<String> = ["js", "wasm", "css"]
            .iter()
            .map(|ext| format!("{PKG_DIR}/{BUNDLE}.{ext}"))
            .collect();
        // One hash over the bundle: its JS and WASM only work together, and a release changes
        // them together anyway.
        let mut hasher = Sha256::new();
        for path in &bundle {
            if let Some(bytes) = plain.get(path) {
                hasher.update(bytes);
            }
        }
        let hash = hex::encode(&hasher.finalize()[..8]);
        let output_name = format!("{BUNDLE}.{hash}");

        let mut assets = HashMap::new();
        for (path, identity) in plain {
            let hashed_name = match path.strip_prefix(&format!("{PKG_DIR}/{BUNDLE}.")) {
                Some("js") => Some(format!("{output_name}.js")),
                Some("wasm") => Some(format!("{output_name}{WASM_SUFFIX}.wasm")),
                Some("css") => Some(format!("{output_name}.css")),
                _ => None,
            };
            let digest = etag(&identity);
            let asset = |cache_control| Asset {
                brotli: brotli.get(&path).cloned(),
                gzip: gzip.get(&path).cloned(),
                content_type: content_type(&path),
                cache_control,
                etag: digest.clone(),
                identity: identity.clone(),
            };
            if let Some(name) = hashed_name {
                assets.insert(format!("/{PKG_DIR}/{name}"), asset(IMMUTABLE));
            }
            // The plain name too, for tools and old pages; revalidated, as it can change.
            assets.insert(format!("/{path}"), asset(REVALIDATE));
        }
        Site {
            assets,
            output_name,
            source,
        }
    }

    /// The bundle's name as pages must reference it (`qingting.<hash>`): Leptos'
    /// `output_name`, from which it builds the script and WASM URLs.
    pub fn output_name(&self) -> &str {
        &self.output_name
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Whether the browser bundle is there (pages hydrate).
    pub fn has_bundle(&self) -> bool {
        self.assets.contains_key(&format!("/{PKG_DIR}/{BUNDLE}.js"))
    }

    /// The answer for `path`, or `None` when the site has no such file.
    fn respond(&self, path: &str, headers: &HeaderMap) -> Option<Response> {
        let asset = self.assets.get(path)?;
        let (encoding, body) = match preferred_encoding(headers, asset) {
            Encoding::Brotli => (Some("br"), asset.brotli.clone()),
            Encoding::Gzip => (Some("gzip"), asset.gzip.clone()),
            Encoding::Identity => (None, None),
        };
        // Each encoding is its own representation, with its own validator.
        let etag = match encoding {
            Some(e) => format!("\"{}-{e}\"", asset.etag),
            None => format!("\"{}\"", asset.etag),
        };
        let mut response = if none_match(headers, &etag) {
            let mut response =
                Response::new(Body::from(body.unwrap_or_else(|| asset.identity.clone())));
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            );
            if let Some(encoding) = encoding {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            }
            response
        } else {
            StatusCode::NOT_MODIFIED.into_response()
        };
        let h = response.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(asset.cache_control),
        );
        h.insert(
            header::ETAG,
            HeaderValue::from_str(&etag).expect("hex is ASCII"),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if asset.brotli.is_some() || asset.gzip.is_some() {
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        Some(response)
    }
}

/// Whether the client's `If-None-Match` (a list; weak comparison; `*`) misses `etag`.
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let Some(list) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    !list
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Middleware: answers GET and HEAD for the site's files; everything else goes on to the
/// pages and the API.
pub async fn serve(State(site): State<Arc<Site>>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        if let Some(response) = site.respond(request.uri().path(), request.headers()) {
            return response;
        }
    }
    next.run(request).await
}

#[derive(Debug, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

/// Brotli when the client takes it (smallest), else gzip, else the plain bytes.
fn preferred_encoding(headers: &HeaderMap, asset: &Asset) -> Encoding {
    let accepted = |name: &str| {
        headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|item| {
                let mut parts = item.split(';');
                let coding = parts.next().unwrap_or("").trim();
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                coding.eq_ignore_ascii_case(name) && q > 0.0
            })
    };
    if asset.brotli.is_some() && accepted("br") {
        Encoding::Brotli
    } else if asset.gzip.is_some() && accepted("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn etag(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..12])
}

/// cargo-leptos' `LEPTOS_SITE_ROOT`, `site/` beside the binary, or the build tree's
/// `target/site`, whichever holds the bundle.
fn locate_dir() -> Option<PathBuf> {
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
    }
    candidates.push(PathBuf::from("target/site"));
    let marker = format!("{PKG_DIR}/{BUNDLE}.js");
    candidates.into_iter().find(|c| c.join(&marker).is_file())
}

/// Every regular file under `dir`. Links are not followed: nothing outside the site is served.
fn read_tree(root: &Path, dir: &Path, files: &mut Vec<(String, Bytes)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let (path, kind) = (entry.path(), entry.file_type()?);
        if kind.is_dir() {
            read_tree(root, &path, files)?;
        } else if kind.is_file() {
            let Some(rel) = path.strip_prefix(root).ok().and_then(Path::to_str) else {
                continue;
            };
            files.push((rel.replace('\\', "/"), Bytes::from(std::fs::read(&path)?)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        let files = [
            ("pkg/qingting.js", "js"),
            ("pkg/qingting.js.br", "js-br"),
            ("pkg/qingting.js.gz", "js-gz"),
            ("pkg/qingting.wasm", "wasm"),
            ("pkg/qingting.wasm.br", "wasm-br"),
            ("pkg/qingting.css", "css"),
            ("favicon.svg", "<svg/>"),
        ];
        Site::from_files(
            files.map(|(p, b)| (p.to_string(), Bytes::from_static(b.as_bytes()))),
            Source::Missing,
        )
    }

    fn get(site: &Site, path: &str, accept: Option<&str>) -> Option<Response> {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(a).unwrap());
        }
        site.respond(path, &headers)
    }

    fn header(r: &Response, name: header::HeaderName) -> &str {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    #[test]
    fn the_bundle_is_served_under_hashed_names_immutable() {
        let site = site();
        let name = site.output_name().to_string();
        assert!(name.starts_with("qingting.") && name.len() == "qingting.".len() + 16);
        for file in [
            format!("/pkg/{name}.js"),
            format!("/pkg/{name}{WASM_SUFFIX}.wasm"),
            format!("/pkg/{name}.css"),
        ] {
            let r = get(&site, &file, None).unwrap_or_else(|| panic!("{file} not served"));
            assert_eq!(header(&r, header::CACHE_CONTROL), IMMUTABLE, "{file}");
        }
        let plain = get(&site, "/pkg/qingting.js", None).unwrap();
        assert_eq!(header(&plain, header::CACHE_CONTROL), REVALIDATE);
        assert_eq!(
            header(&plain, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        assert!(get(&site, "/pkg/qingting.0000000000000000.js", None).is_none());
        assert!(get(&site, "/qingting.db", None).is_none());
    }

    #[test]
    fn the_hash_follows_the_contents() {
        let other = Site::from_files(
            [("pkg/qingting.wasm".to_string(), Bytes::from_static(b"new"))],
            Source::Missing,
        );
        assert_ne!(site().output_name(), other.output_name());
    }

    #[test]
    fn compressed_forms_are_chosen_by_accept_encoding() {
        let site = site();
        let wasm = format!("/pkg/{}{WASM_SUFFIX}.wasm", site.output_name());
        let cases = [
            (Some("gzip, deflate, br, zstd"), "br"),
            (Some("br;q=0, gzip"), ""), // no gzip form of the WASM: identity
            (Some("identity"), ""),
            (None, ""),
        ];
        for (accept, want) in cases {
            let r = get(&site, &wasm, accept).unwrap();
            assert_eq!(header(&r, header::CONTENT_ENCODING), want, "{accept:?}");
            assert_eq!(header(&r, header::VARY), "accept-encoding");
            assert_eq!(header(&r, header::CONTENT_TYPE), "application/wasm");
        }
        let js = get(&site, "/pkg/qingting.js", Some("gzip;q=0.5, br;q=0")).unwrap();
        assert_eq!(header(&js, header::CONTENT_ENCODING), "gzip");
        let svg = get(&site, "/favicon.svg", Some("br")).unwrap();
        assert_eq!(header(&svg, header::CONTENT_ENCODING), "");
        assert_eq!(header(&svg, header::VARY), "");
    }

    #[test]
    fn a_matching_etag_is_not_modified() {
        let site = site();
        for accept in [None, Some("br")] {
            let first = get(&site, "/pkg/qingting.js", accept).unwrap();
            let etag = header(&first, header::ETAG).to_string();
            for presented in [etag.clone(), format!("\"x\", W/{etag}"), "*".to_string()] {
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::IF_NONE_MATCH,
                    HeaderValue::from_str(&presented).unwrap(),
                );
                if let Some(a) = accept {
                    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(a));
                }
                let again = site.respond("/pkg/qingting.js", &headers).unwrap();
                assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{presented}");
            }
        }
        // The brotli and plain forms are different representations.
        let plain = get(&site, "/pkg/qingting.js", None).unwrap();
        let br = get(&site, "/pkg/qingting.js", Some("br")).unwrap();
        assert_ne!(header(&plain, header::ETAG), header(&br, header::ETAG));
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, plain.headers()[header::ETAG].clone());
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br"));
        let other = site.respond("/pkg/qingting.js", &headers).unwrap();
        assert_eq!(other.status(), StatusCode::OK);
    }
}
