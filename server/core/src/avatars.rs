//! Avatar images: the type decided from the bytes, decoded (with limits against decompression
//! bombs), cropped and re-encoded to one fixed size, stored under a server-chosen key.

use crate::{accounts, config::Limit, rate_limit::Refused, AppState};
use bytes::Bytes;
use image::{imageops::FilterType, ImageFormat, ImageReader, Limits};
use std::io::Cursor;
use tokio::sync::Semaphore;

/// Stored avatars are PNGs of this many pixels square.
pub const AVATAR_SIZE: u32 = 256;
/// Larger source images are refused from their header, before any pixel is decoded. The
/// avatar is 256 px, so this only has to admit what people pick straight off a phone or a
/// screen: a 12-megapixel photo (4032×3024) or a 4K screenshot. A few hundred bytes of PNG
/// can claim 8192² pixels (a decompression bomb); this keeps them out.
const MAX_SOURCE_PIXELS_PER_SIDE: u32 = 4096;
/// The decoder's allocation cap, checked against the decoded size before decoding: a
/// 12-megapixel photo as RGB is 35 MiB. It also refuses 16-bit and float images at sizes
/// the side limit alone would let through (4096² × 8 bytes is 128 MiB).
const MAX_DECODE_BYTES: u64 = 40 * 1024 * 1024;
/// Decodes running at once, across all users: each may hold tens of MB and a core for a
/// while, and the blocking pool would otherwise run as many as requests arrive.
const CONCURRENT_DECODES: usize = 2;
static DECODES: Semaphore = Semaphore::const_new(CONCURRENT_DECODES);
/// Uploads per user: enough to try a few pictures, too few to keep the decoders busy.
pub const UPLOADS_PER_USER: Limit = Limit {
    max: 10,
    per_seconds: 600,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AvatarError {
    #[error("The image is larger than {max_kib} KiB.")]
    TooLarge { max_kib: u64 },
    #[error("Choose a PNG, JPEG, WebP or GIF image.")]
    NotAnImage,
    #[error("The image could not be read: it is damaged or not really a {0}.")]
    Corrupt(&'static str),
    #[error("The image has too many pixels for an avatar (at most {MAX_SOURCE_PIXELS_PER_SIDE} on a side and about 10 megapixels). Make it smaller and try again.")]
    TooManyPixels,
    #[error("Too many avatar uploads. Try again in {retry_after_secs} seconds.")]
    TooManyUploads { retry_after_secs: u64 },
    #[error("The avatar could not be saved. Please try again.")]
    Storage(String),
}

/// The format, from magic bytes only (the file name and declared type are ignored).
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else {
        None
    }
}

fn format_name(f: ImageFormat) -> &'static str {
    match f {
        ImageFormat::Png => "PNG",
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Gif => "GIF",
        _ => "WebP",
    }
}

/// Decodes and re-encodes to a `AVATAR_SIZE`² PNG (centre crop). CPU-bound: call from the
/// blocking pool.
pub fn normalize(bytes: &[u8]) -> Result<Vec<u8>, AvatarError> {
    let format = sniff(bytes).ok_or(AvatarError::NotAnImage)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_PIXELS_PER_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_PIXELS_PER_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => AvatarError::TooManyPixels,
        _ => AvatarError::Corrupt(format_name(format)),
    })?;
    let out = img.resize_to_fill(AVATAR_SIZE, AVATAR_SIZE, FilterType::Lanczos3);
    let mut png = Vec::new();
    out.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|e| AvatarError::Storage(e.to_string()))?;
    Ok(png)
}

/// [`normalize`] on the blocking pool, at most [`CONCURRENT_DECODES`] at a time.
async fn normalize_in_turn(upload: Bytes) -> Result<Vec<u8>, AvatarError> {
    let permit = DECODES
        .acquire()
        .await
        .map_err(|e| AvatarError::Storage(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        // Held until the decode ends, even when the request that started it is gone.
        let _permit = permit;
        normalize(&upload)
    })
    .await
    .map_err(|e| AvatarError::Storage(e.to_string()))?
}

/// A fresh key; a new key per upload lets the URL be cached forever.
pub fn new_key() -> String {
    format!("avatars/{}.png", hex::encode(rand::random::<[u8; 16]>()))
}

/// Validates, stores and records a new avatar; deletes the previous one. On any failure the
/// previous avatar stays in place.
pub async fn set_avatar(
    state: &AppState,
    user_id: i64,
    upload: Bytes,
) -> Result<String, AvatarError> {
    state
        .limits
        .check("avatar-upload", &user_id.to_string(), UPLOADS_PER_USER)
        .await
        .map_err(|r| match r {
            Refused::Limited { retry_after_secs } => {
                AvatarError::TooManyUploads { retry_after_secs }
            }
            Refused::Unavailable(e) => AvatarError::Storage(e),
        })?;
    let png = normalize_in_turn(upload).await?;
    let key = new_key();
    state
        .objects
        .put(&key, png.into(), "image/png")
        .await
        .map_err(|e| AvatarError::Storage(e.to_string()))?;
    let old = match accounts::replace_avatar_key(&state.db, user_id, Some(key.clone())).await {
        Ok(old) => old,
        Err(e) => {
            let _ = state.objects.delete(&key).await;
            return Err(AvatarError::Storage(e.to_string()));
        }
    };
    if let Some(old) = old {
        if let Err(e) = state.objects.delete(&old).await {
            tracing::warn!(key = %old, "could not delete replaced avatar: {e}");
        }
    }
    Ok(key)
}

/// Removes the avatar (back to the initial-letter placeholder).
pub async fn remove_avatar(state: &AppState, user_id: i64) -> Result<(), AvatarError> {
    let old = accounts::replace_avatar_key(&state.db, user_id, None)
        .await
        .map_err(|e| AvatarError::Storage(e.to_string()))?;
    if let Some(old) = old {
        let _ = state.objects.delete(&old).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::png_chunk;

    fn encode(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    #[test]
    fn every_accepted_format_becomes_a_square_png() {
        for f in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Gif,
            ImageFormat::WebP,
        ] {
            let src = encode(f, 300, 200);
            assert_eq!(sniff(&src), Some(f));
            let png = normalize(&src).unwrap();
            let back = image::load_from_memory_with_format(&png, ImageFormat::Png).unwrap();
            assert_eq!(
                (back.width(), back.height()),
                (AVATAR_SIZE, AVATAR_SIZE),
                "{f:?}"
            );
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(
            normalize(b"hello world, not an image"),
            Err(AvatarError::NotAnImage)
        );
        // A PNG signature followed by garbage: lying about its type.
        let mut liar = b"\x89PNG\r\n\x1a\n".to_vec();
        liar.extend_from_slice(&[7u8; 500]);
        assert_eq!(normalize(&liar), Err(AvatarError::Corrupt("PNG")));
        // A real PNG cut in half.
        let full = encode(ImageFormat::Png, 64, 64);
        assert_eq!(
            normalize(&full[..full.len() / 2]),
            Err(AvatarError::Corrupt("PNG"))
        );
        // SVG is not accepted even though browsers show it (it can carry script).
        assert_eq!(
            normalize(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            Err(AvatarError::NotAnImage)
        );
    }

    /// A PNG that states a size but carries (almost) no pixel data: enough for a decoder to
    /// learn the size and start decoding.
    fn png_header(w: u32, h: u32, bit_depth: u8, color_type: u8) -> Vec<u8> {
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[bit_depth, color_type, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        png_chunk(&mut out, b"IHDR", &ihdr);
        png_chunk(&mut out, b"IDAT", &[0x78, 0x9c]);
        png_chunk(&mut out, b"IEND", &[]);
        out
    }

    #[test]
    fn oversized_images_are_refused_from_their_header() {
        // Grey, 1 bit per pixel: 8 MB of pixels in a file of a few KB.
        assert_eq!(
            normalize(&png_header(8192, 8192, 1, 0)),
            Err(AvatarError::TooManyPixels)
        );
        assert_eq!(
            normalize(&png_header(4097, 16, 8, 2)),
            Err(AvatarError::TooManyPixels)
        );
        // Within the sides, but too many bytes once decoded (RGBA, 16 bits a channel).
        assert_eq!(
            normalize(&png_header(4096, 4096, 16, 6)),
            Err(AvatarError::TooManyPixels)
        );
        // A 12-megapixel photo passes the limits (and then fails here only for lack of data).
        assert_eq!(
            normalize(&png_header(4032, 3024, 8, 2)),
            Err(AvatarError::Corrupt("PNG"))
        );
    }
}
