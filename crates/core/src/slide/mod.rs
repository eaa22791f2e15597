//! Whole-slide images through OpenSlide: levels, properties, associated images, region reads,
//! thumbnails, tissue masks, tile grids and GeoJSON annotations. A bad slide is an error naming
//! the file (and the level or tile), never a panic. The `data` room serves tiles as images.

pub mod annotations;
pub mod grid;
pub mod openslide;
pub mod tissue;

use crate::error::{Error, Result};
use fast_image_resize::{images::Image, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// File extensions OpenSlide reads, for folders of slides.
pub const SLIDE_EXTENSIONS: &[&str] = &[
    "svs", "tif", "tiff", "ndpi", "vms", "vmu", "scn", "mrxs", "svslide", "bif", "dcm", "czi",
];

/// One pyramid level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Level {
    pub width: u64,
    pub height: u64,
    pub downsample: f64,
}

/// An 8-bit image, row-major, `channels` bytes per pixel (3: RGB, 4: straight RGBA).
#[derive(Clone, Debug)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub data: Vec<u8>,
}

impl Pixels {
    /// RGB over a white background (how OpenSlide's viewers and openslide-python's thumbnails
    /// show transparent areas outside the scanned region). RGB stays as it is.
    pub fn to_rgb(&self) -> Pixels {
        if self.channels == 3 {
            return self.clone();
        }
        let mut data = vec![0u8; self.data.len() / 4 * 3];
        for (p, o) in self.data.chunks_exact(4).zip(data.chunks_exact_mut(3)) {
            o.copy_from_slice(&over_white([p[0], p[1], p[2], p[3]]));
        }
        Pixels {
            width: self.width,
            height: self.height,
            channels: 3,
            data,
        }
    }

    /// Resized to `w` × `h` with a convolution filter (Pillow's filters: bilinear, Lanczos3).
    pub fn resized(&self, w: u32, h: u32, filter: FilterType) -> Pixels {
        self.to_rgb().into_resized(w, h, filter)
    }

    /// RGB pixels resized to `w` × `h` (no copy when they already have that size).
    pub fn into_resized(self, w: u32, h: u32, filter: FilterType) -> Pixels {
        let rgb = if self.channels == 3 {
            self
        } else {
            self.to_rgb()
        };
        if rgb.width == w && rgb.height == h {
            return rgb;
        }
        let src = Image::from_vec_u8(rgb.width, rgb.height, rgb.data, PixelType::U8x3)
            .expect("buffer size matches");
        let mut dst = Image::new(w.max(1), h.max(1), PixelType::U8x3);
        Resizer::new()
            .resize(
                &src,
                &mut dst,
                &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter)),
            )
            .expect("same pixel types");
        Pixels {
            width: w.max(1),
            height: h.max(1),
            channels: 3,
            data: dst.into_vec(),
        }
    }

    /// Writes a PNG (or any format `image` infers from the extension).
    pub fn save(&self, path: &Path) -> Result<()> {
        let color = if self.channels == 4 {
            image::ExtendedColorType::Rgba8
        } else {
            image::ExtendedColorType::Rgb8
        };
        image::save_buffer(path, &self.data, self.width, self.height, color)
            .map_err(|e| Error::file(path, e))
    }
}

/// A straight RGBA pixel composited over white (rounded as Pillow does).
fn over_white(p: [u8; 4]) -> [u8; 3] {
    let a = p[3] as u32;
    if a == 255 {
        return [p[0], p[1], p[2]];
    }
    let c = |v: u8| ((v as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
    [c(p[0]), c(p[1]), c(p[2])]
}

struct Handle(*mut c_void);
// SAFETY: OpenSlide handles are thread-safe for every read function (documented in openslide.h).
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

/// An open whole-slide image.
pub struct Slide {
    pub path: PathBuf,
    /// Content id: a hash of the first MiB, the last 64 KiB and the size (cheap for big files).
    pub id: String,
    pub levels: Vec<Level>,
    pub properties: BTreeMap<String, String>,
    /// Associated images (label, macro, thumbnail …) with their sizes.
    pub associated: Vec<(String, u32, u32)>,
    handle: Handle,
    lib: &'static openslide::Library,
}

impl Drop for Slide {
    fn drop(&mut self) {
        // SAFETY: the handle came from openslide_open and is closed once.
        unsafe { (self.lib.close)(self.handle.0) }
    }
}

impl std::fmt::Debug for Slide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The content id of a slide file: its size, first MiB and last 64 KiB, hashed.
pub fn content_id(path: &Path) -> Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| Error::file(path, e))?;
    let size = f.metadata().map_err(|e| Error::file(path, e))?.len();
    let mut h = Sha256::new();
    h.update(size.to_le_bytes());
    let mut head = Vec::new();
    (&mut f)
        .take(1 << 20)
        .read_to_end(&mut head)
        .map_err(|e| Error::file(path, e))?;
    h.update(&head);
    if size > (1 << 20) {
        let mut tail = Vec::new();
        f.seek(SeekFrom::Start(size.saturating_sub(1 << 16)))
            .and_then(|_| f.read_to_end(&mut tail))
            .map_err(|e| Error::file(path, e))?;
        h.update(&tail);
    }
    Ok(h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Why OpenSlide cannot open a file, said in the user's terms.
fn unsupported_reason(path: &Path) -> String {
    let head = std::fs::read(path)
        .map(|b| b[..b.len().min(16)].to_vec())
        .unwrap_or_default();
    let tiff = head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
        || head.starts_with(b"II+\0")
        || head.starts_with(b"MM\0+");
    if head.starts_with(&[0xff, 0xd8, 0xff]) {
        "a plain JPEG image, not a whole-slide image (open it with dataset() instead)".into()
    } else if head.starts_with(b"\x89PNG") {
        "a plain PNG image, not a whole-slide image (open it with dataset() instead)".into()
    } else if tiff && tiff_is_striped(path) == Some(true) {
        "a TIFF that is not tiled (its image is stored in strips): OpenSlide reads tiled TIFFs only; \
         re-save it tiled (e.g. vips tiffsave --tile --pyramid) or open it with dataset()"
            .into()
    } else if tiff {
        "a TIFF that OpenSlide cannot read as a slide (unknown layout or damaged directories)"
            .into()
    } else {
        "not a whole-slide image format OpenSlide reads".into()
    }
}

/// Whether the first image of a classic TIFF lacks the TileWidth tag (None: cannot tell).
fn tiff_is_striped(path: &Path) -> Option<bool> {
    let b = std::fs::read(path).ok()?;
    let le = b.starts_with(b"II");
    let u16_at = |i: usize| -> Option<u16> {
        let x: [u8; 2] = b.get(i..i + 2)?.try_into().ok()?;
        Some(if le {
            u16::from_le_bytes(x)
        } else {
            u16::from_be_bytes(x)
        })
    };
    let u32_at = |i: usize| -> Option<u32> {
        let x: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        })
    };
    if u16_at(2)? != 42 {
        return None; // BigTIFF: not examined
    }
    let ifd = u32_at(4)? as usize;
    let n = u16_at(ifd)? as usize;
    let tiled = (0..n).any(|k| u16_at(ifd + 2 + 12 * k) == Some(322));
    Some(!tiled)
}

impl Slide {
    /// Opens a slide; a missing file, an unknown format or a damaged header is an error naming it.
    pub fn open(path: &Path) -> Result<Slide> {
        let meta = std::fs::metadata(path).map_err(|e| Error::file(path, e))?;
        if meta.is_dir() {
            return Err(Error::file(path, "is a directory, not a slide"));
        }
        if meta.len() == 0 {
            return Err(Error::file(path, "empty file (0 bytes)"));
        }
        let lib = openslide::library().map_err(|e| Error::file(path, e))?;
        let c = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| Error::file(path, "path contains a NUL byte"))?;
        // SAFETY: valid C string; a null result means "not a format OpenSlide knows".
        let h = unsafe { (lib.open)(c.as_ptr()) };
        if h.is_null() {
            return Err(Error::file(path, unsupported_reason(path)));
        }
        let handle = Handle(h);
        // SAFETY: h is a live handle (closed by Drop of the Slide below or here on error).
        let err = openslide::text(unsafe { (lib.get_error)(h) });
        if let Some(e) = err {
            unsafe { (lib.close)(h) };
            return Err(Error::file(path, format!("OpenSlide cannot read it: {e}")));
        }
        let mut s = Slide {
            path: path.to_path_buf(),
            id: String::new(),
            levels: Vec::new(),
            properties: BTreeMap::new(),
            associated: Vec::new(),
            handle,
            lib,
        };
        // SAFETY: the handle is live for the whole block; out-pointers are valid locals.
        unsafe {
            let n = (lib.level_count)(h);
            for l in 0..n.max(0) {
                let (mut w, mut hh) = (0i64, 0i64);
                (lib.level_dimensions)(h, l, &mut w, &mut hh);
                let d = (lib.level_downsample)(h, l);
                s.levels.push(Level {
                    width: w.max(0) as u64,
                    height: hh.max(0) as u64,
                    downsample: d,
                });
            }
            for name in openslide::text_list((lib.property_names)(h)) {
                let c = CString::new(name.clone()).unwrap_or_default();
                if let Some(v) = openslide::text((lib.property_value)(h, c.as_ptr())) {
                    s.properties.insert(name, v);
                }
            }
            for name in openslide::text_list((lib.associated_names)(h)) {
                let c = CString::new(name.clone()).unwrap_or_default();
                let (mut w, mut hh) = (-1i64, -1i64);
                (lib.associated_dimensions)(h, c.as_ptr(), &mut w, &mut hh);
                if w > 0 && hh > 0 {
                    s.associated.push((name, w as u32, hh as u32));
                }
            }
        }
        s.check()?;
        if s.levels.is_empty() || s.levels[0].width == 0 || s.levels[0].height == 0 {
            return Err(Error::file(path, "the slide has no readable level"));
        }
        s.id = content_id(path)?;
        Ok(s)
    }

    /// OpenSlide's sticky error state, as an error naming the file.
    fn check(&self) -> Result<()> {
        // SAFETY: live handle.
        match openslide::text(unsafe { (self.lib.get_error)(self.handle.0) }) {
            Some(e) => Err(Error::file(&self.path, format!("OpenSlide: {e}"))),
            None => Ok(()),
        }
    }

    /// The slide's name: its file name without extension.
    pub fn name(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `openslide.vendor`, when OpenSlide names one.
    pub fn vendor(&self) -> Option<&str> {
        self.properties.get("openslide.vendor").map(|s| s.as_str())
    }

    /// µm per level-0 pixel (x, then y), when the slide records it.
    pub fn mpp(&self) -> Option<(f64, f64)> {
        let get = |k: &str| {
            self.properties
                .get(k)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v > 0.0)
        };
        let x = get("openslide.mpp-x")?;
        Some((x, get("openslide.mpp-y").unwrap_or(x)))
    }

    /// The scanner's objective power, when recorded.
    pub fn objective_power(&self) -> Option<f64> {
        self.properties
            .get("openslide.objective-power")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
    }

    /// Level-0 size.
    pub fn dimensions(&self) -> (u64, u64) {
        (self.levels[0].width, self.levels[0].height)
    }

    /// The coarsest level whose downsample is at most `downsample` (level 0 when none is).
    pub fn level_for(&self, downsample: f64) -> usize {
        let mut best = 0;
        for (i, l) in self.levels.iter().enumerate() {
            if l.downsample <= downsample * (1.0 + 1e-6)
                && l.downsample >= self.levels[best].downsample
            {
                best = i;
            }
        }
        best
    }

    /// The region at level-0 position (`x`, `y`), `w` × `h` pixels of `level`, as straight RGBA
    /// bytes identical to openslide-python's `read_region`.
    pub fn read(&self, x: i64, y: i64, level: usize, w: u32, h: u32) -> Result<Pixels> {
        let buf = self.read_argb(x, y, level, w, h)?;
        let mut data = Vec::new();
        openslide::argb_to_rgba(&buf, &mut data);
        Ok(Pixels {
            width: w,
            height: h,
            channels: 4,
            data,
        })
    }

    /// The region as OpenSlide gives it: premultiplied ARGB, one u32 per pixel.
    fn read_argb(&self, x: i64, y: i64, level: usize, w: u32, h: u32) -> Result<Vec<u32>> {
        let mut buf = Vec::new();
        self.read_argb_into(&mut buf, x, y, level, w, h)?;
        Ok(buf)
    }

    /// [`Slide::read_argb`] into `buf` (its old contents replaced; its memory reused, not cleared
    /// first: OpenSlide writes every pixel).
    fn read_argb_into(
        &self,
        buf: &mut Vec<u32>,
        x: i64,
        y: i64,
        level: usize,
        w: u32,
        h: u32,
    ) -> Result<()> {
        if level >= self.levels.len() {
            return Err(Error::file(
                &self.path,
                format!(
                    "level {level} does not exist (the slide has {} level(s))",
                    self.levels.len()
                ),
            ));
        }
        let n = w as u64 * h as u64;
        if n > 1 << 28 {
            return Err(Error::file(
                &self.path,
                format!("region {w}×{h} at level {level} is too large to read at once"),
            ));
        }
        let n = n as usize;
        buf.clear();
        buf.reserve(n);
        if n > 0 {
            // SAFETY: buf has room for w*h u32s as openslide_read_region requires; OpenSlide writes
            // all of them (it clears the destination first, also when the read fails), so the
            // length may then cover them.
            unsafe {
                (self.lib.read_region)(
                    self.handle.0,
                    buf.as_mut_ptr(),
                    x,
                    y,
                    level as i32,
                    w as i64,
                    h as i64,
                );
                buf.set_len(n);
            }
            self.check().map_err(|e| {
                Error::file(
                    &self.path,
                    format!("level {level}, region ({x}, {y}) {w}×{h}: {e}"),
                )
            })?;
        }
        Ok(())
    }

    /// The same region as [`Slide::read`], composited over white as RGB in one pass (what tiles
    /// need): the same bytes as `read(...).to_rgb()`. The ARGB buffer is the thread's own, reused
    /// from one tile to the next.
    pub fn read_rgb(&self, x: i64, y: i64, level: usize, w: u32, h: u32) -> Result<Pixels> {
        thread_local! {
            static ARGB: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        ARGB.with_borrow_mut(|buf| {
            let read = self.read_argb_into(buf, x, y, level, w, h).map(|()| {
                let mut data = Vec::with_capacity(buf.len() * 3);
                for v in buf.iter() {
                    data.extend_from_slice(&over_white(openslide::straight(*v)));
                }
                Pixels {
                    width: w,
                    height: h,
                    channels: 3,
                    data,
                }
            });
            // A tile-sized buffer is kept; one of a large region is not (also after a failed read).
            if buf.capacity() > 1 << 22 {
                *buf = Vec::new();
            }
            read
        })
    }

    /// An associated image (label, macro, thumbnail …) as straight RGBA.
    pub fn associated_image(&self, name: &str) -> Result<Pixels> {
        let Some((_, w, h)) = self.associated.iter().find(|a| a.0 == name) else {
            let names: Vec<&str> = self.associated.iter().map(|a| a.0.as_str()).collect();
            return Err(Error::file(
                &self.path,
                format!("no associated image {name:?} (it has: {names:?})"),
            ));
        };
        let mut buf = vec![0u32; *w as usize * *h as usize];
        let c = CString::new(name).unwrap_or_default();
        // SAFETY: buf holds w*h pixels, the size OpenSlide reported for this name.
        unsafe { (self.lib.read_associated)(self.handle.0, c.as_ptr(), buf.as_mut_ptr()) };
        self.check()
            .map_err(|e| Error::file(&self.path, format!("associated image {name}: {e}")))?;
        let mut data = Vec::new();
        openslide::argb_to_rgba(&buf, &mut data);
        Ok(Pixels {
            width: *w,
            height: *h,
            channels: 4,
            data,
        })
    }

    /// The whole slide at `downsample` × level 0 (RGB over white): read from the coarsest level
    /// at or below that downsample, then Lanczos-resampled.
    pub fn downsampled(&self, downsample: f64) -> Result<Pixels> {
        let (w0, h0) = self.dimensions();
        let w = ((w0 as f64 / downsample).round() as u32).max(1);
        let h = ((h0 as f64 / downsample).round() as u32).max(1);
        let l = self.level_for(downsample);
        let lv = self.levels[l];
        let region = self.read(0, 0, l, lv.width as u32, lv.height as u32)?;
        Ok(region.resized(w, h, FilterType::Lanczos3))
    }

    /// A thumbnail whose longer side is `max_side` pixels.
    pub fn thumbnail(&self, max_side: u32) -> Result<Pixels> {
        let (w0, h0) = self.dimensions();
        let ds = (w0.max(h0) as f64 / max_side.max(1) as f64).max(1.0);
        self.downsampled(ds)
    }

    /// One line, as the prompt shows it.
    pub fn describe(&self) -> String {
        let (w, h) = self.dimensions();
        let mpp = self
            .mpp()
            .map(|m| format!("{:.3} µm/px", m.0))
            .unwrap_or_else(|| "µm/px unknown".into());
        format!(
            "Slide {}: {w} × {h}, {} level(s), {mpp}, vendor {}",
            self.name(),
            self.levels.len(),
            self.vendor().unwrap_or("unknown")
        )
    }
}

/// Open slides shared by every tile reader of the process (a few at a time: each OpenSlide handle
/// keeps its own tile cache).
pub fn shared(path: &Path) -> Result<Arc<Slide>> {
    static OPEN: Mutex<Vec<Arc<Slide>>> = Mutex::new(Vec::new());
    const KEEP: usize = 8;
    {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = open.iter().position(|s| s.path == path) {
            let s = open.remove(i);
            open.push(s.clone());
            return Ok(s);
        }
    }
    let s = Arc::new(Slide::open(path)?);
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    open.push(s.clone());
    if open.len() > KEEP {
        open.remove(0);
    }
    Ok(s)
}
