//! Image decoding: JPEG, PNG, TIFF (PackBits, LZW, Deflate; 8/16-bit; gray, RGB, RGBA), BMP and
//! WebP, always to 8-bit RGB. A bad file is an error naming why, never a panic.

use image::{ImageReader, Limits};
use std::io::Cursor;
use std::path::Path;

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, Debug)]
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Largest side accepted; anything above is treated as a corrupt or hostile header.
pub const MAX_SIDE: u32 = 30_000;

/// Decodes the image at `path`; the error is a short reason (the caller adds the path).
pub fn decode(path: &Path) -> Result<Rgb, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        return Err("is a directory".into());
    }
    if meta.len() == 0 {
        return Err("empty file (0 bytes)".into());
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    decode_bytes(&bytes)
}

/// Decodes image bytes of any supported format (decided by content, not by file name).
pub fn decode_bytes(bytes: &[u8]) -> Result<Rgb, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format().is_none() {
        return Err("not an image (unknown format)".into());
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    let img = std::panic::catch_unwind(move || reader.decode())
        .map_err(|_| "decoder failed on malformed data".to_string())?
        .map_err(|e| e.to_string())?;
    if img.width() == 0 || img.height() == 0 {
        return Err("image has zero width or height".into());
    }
    let rgb = img.to_rgb8();
    Ok(Rgb {
        width: rgb.width(),
        height: rgb.height(),
        pixels: rgb.into_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_and_truncation_are_errors() {
        assert!(decode_bytes(b"").is_err());
        assert!(decode_bytes(&[7u8; 100]).is_err());
        let mut png = Vec::new();
        image::RgbImage::new(8, 8)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert!(decode_bytes(&png).is_ok());
        assert!(decode_bytes(&png[..png.len() / 2]).is_err());
    }
}
