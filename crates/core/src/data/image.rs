//! One image as scripts hold it: decoded 8-bit RGB and where it came from (for messages).

use super::decode::{self, Rgb};
use crate::error::{Error, Result};
use crate::slide::Pixels;
use std::path::Path;
use std::sync::Arc;

/// A decoded 8-bit RGB image and where it came from.
#[derive(Clone, Debug)]
pub struct Image {
    pub name: String,
    pub rgb: Arc<Rgb>,
}

impl Image {
    /// Reads and decodes the image file at `path`.
    pub fn open(path: &str) -> Result<Image> {
        let rgb = decode::decode(path.as_ref()).map_err(|e| Error::file(path, e))?;
        Ok(Image {
            name: path.into(),
            rgb: Arc::new(rgb),
        })
    }

    /// Slide pixels as an image (RGB; transparent areas over white).
    pub fn from_pixels(px: &Pixels, name: String) -> Image {
        let px = px.to_rgb();
        Image {
            name,
            rgb: Arc::new(Rgb {
                width: px.width,
                height: px.height,
                pixels: px.data,
            }),
        }
    }

    /// Writes the image to `path` (the format from its extension), creating its folder.
    pub fn save(&self, path: &str) -> Result<()> {
        let Rgb {
            width,
            height,
            pixels,
        } = self.rgb.as_ref().clone();
        let buf = image::RgbImage::from_raw(width, height, pixels)
            .ok_or_else(|| Error::Invalid(format!("{}: image buffer size", self.name)))?;
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
        }
        buf.save(path)
            .map_err(|e| Error::file(path, format!("cannot write image: {e}")))
    }

    /// One line, as the prompt shows it.
    pub fn describe(&self) -> String {
        format!(
            "Image {}×{} ({})",
            self.rgb.width, self.rgb.height, self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_image_reads_back_the_same_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let rgb = Rgb {
            width: 3,
            height: 2,
            pixels: (0..18).map(|i| i * 13).collect(),
        };
        let img = Image {
            name: "made".into(),
            rgb: Arc::new(rgb.clone()),
        };
        let path = dir.path().join("sub/img.png");
        img.save(path.to_str().unwrap()).unwrap();
        let back = Image::open(path.to_str().unwrap()).unwrap();
        assert_eq!(back.rgb.pixels, rgb.pixels);
        assert_eq!(back.describe(), format!("Image 3×2 ({})", path.display()));
    }
}
