//! Avatar images: the type decided from the bytes, decoded (with limits against decompression
//! bombs), cropped and re-encoded to one fixed size, stored under a server-chosen key.

use crate::{accounts, AppState};
use bytes::Bytes;
use image::{imageops::FilterType, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Stored avatars are PNGs of this many pixels square.
pub const AVATAR_SIZE: u32 = 256;
/// Larger source images are refused before decoding.
const MAX_SOURCE_PIXELS_PER_SIDE: u32 = 8192;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AvatarError {
    #[error("The image is larger than {max_kib} KiB.")]
    TooLarge { max_kib: u64 },
    #[error("Choose a PNG, JPEG, WebP or GIF image.")]
    NotAnImage,
    #[error("The image could not be read: it is damaged or not really a {0}.")]
    Corrupt(&'static str),
    #[error("The image is too large (at most {MAX_SOURCE_PIXELS_PER_SIDE}×{MAX_SOURCE_PIXELS_PER_SIDE} pixels).")]
    TooManyPixels,
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
    limits.max_alloc = Some(512 * 1024 * 1024);
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
    let png = tokio::task::spawn_blocking(move || normalize(&upload))
        .await
        .map_err(|e| AvatarError::Storage(e.to_string()))??;
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
}
