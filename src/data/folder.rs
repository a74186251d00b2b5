//! Image folders laid out as torchvision's `ImageFolder` expects:
//! `root/<class>/**/<image>`, one sub-folder per class.
//!
//! The order is torchvision's, so image indices agree with the reference code:
//! classes are the sorted sub-folder names (class index = position), and within a
//! class, folders are walked in sorted order and files sorted by name. Files are
//! kept by extension (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp, any case);
//! others are skipped and counted, as ImageFolder does, and [`ImageFolder::skipped`]
//! lists them so that callers can warn.
use super::{Dataset, Error, Result};
use image::RgbImage;
use std::path::{Path, PathBuf};

/// torchvision's `IMG_EXTENSIONS`.
pub const EXTENSIONS: [&str; 9] = ["jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp"];

/// A labelled image folder in torchvision's order.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    samples: Vec<(PathBuf, i64)>,
    skipped: Vec<PathBuf>,
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    crate::io::access::check_read(dir)?;
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.into(), source })?;
    let mut out = Vec::new();
    for e in entries {
        out.push(e.map_err(|source| Error::Io { path: dir.into(), source })?.path());
    }
    out.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    Ok(out)
}

fn has_image_extension(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

impl ImageFolder {
    /// Scans `root`. Errors when `root` is missing, has no class folders, or a
    /// class folder holds no image; each error names the folder and the layout.
    pub fn open(root: &Path) -> Result<Self> {
        let layout = |why: String| Error::Layout { path: root.into(), why };
        if !root.is_dir() {
            return Err(layout(
                "no such folder; expected one sub-folder per class, e.g. train/n01440764/*.JPEG".into(),
            ));
        }
        let class_dirs: Vec<PathBuf> = read_dir_sorted(root)?.into_iter().filter(|p| p.is_dir()).collect();
        if class_dirs.is_empty() {
            return Err(layout(
                "no class folders; expected one sub-folder per class, e.g. train/n01440764/*.JPEG".into(),
            ));
        }
        let mut classes = Vec::new();
        let mut samples = Vec::new();
        let mut skipped = Vec::new();
        let mut empty = Vec::new();
        for (label, dir) in class_dirs.iter().enumerate() {
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            // os.walk order: folders sorted by path, files sorted within each.
            let mut folders = vec![dir.clone()];
            let mut i = 0;
            while i < folders.len() {
                let subs: Vec<PathBuf> = read_dir_sorted(&folders[i])?.into_iter().filter(|p| p.is_dir()).collect();
                folders.extend(subs);
                i += 1;
            }
            folders.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
            let before = samples.len();
            for folder in &folders {
                for f in read_dir_sorted(folder)?.into_iter().filter(|p| !p.is_dir()) {
                    if has_image_extension(&f) {
                        samples.push((f, label as i64));
                    } else {
                        skipped.push(f);
                    }
                }
            }
            if samples.len() == before {
                empty.push(name.clone());
            }
            classes.push(name);
        }
        if !empty.is_empty() {
            return Err(layout(format!(
                "no image files in the class folder(s) {}; supported extensions: {}; remove empty class folders",
                empty.join(", "),
                EXTENSIONS.join(" ")
            )));
        }
        Ok(ImageFolder { root: root.into(), classes, samples, skipped })
    }

    /// The folder scanned.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path and label of image `i`.
    pub fn sample(&self, i: usize) -> Option<&(PathBuf, i64)> {
        self.samples.get(i)
    }

    /// Files skipped for their extension (not images by torchvision's rule).
    pub fn skipped(&self) -> &[PathBuf] {
        &self.skipped
    }
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn label(&self, i: usize) -> i64 {
        self.samples.get(i).map_or(-1, |s| s.1)
    }

    fn class_names(&self) -> &[String] {
        &self.classes
    }

    fn image(&self, i: usize) -> Result<RgbImage> {
        let (path, _) = self.samples.get(i).ok_or(Error::OutOfRange { index: i, len: self.samples.len() })?;
        super::image::load_rgb(path)
    }

    fn describe(&self, i: usize) -> String {
        self.samples.get(i).map_or_else(|| format!("#{i}"), |s| s.0.display().to_string())
    }

    /// Relative paths, sizes and modification times of every image, hashed.
    fn source(&self) -> Option<super::DataSource> {
        Some(super::DataSource::ImageFolder { root: self.root.clone() })
    }

    fn fingerprint(&self) -> String {
        let mut h = crate::io::Fingerprint::new();
        h.add_str("image-folder");
        for (path, label) in &self.samples {
            h.add_str(&path.strip_prefix(&self.root).unwrap_or(path).to_string_lossy());
            h.add_u64(*label as u64);
            if let Ok(meta) = std::fs::metadata(path) {
                h.add_u64(meta.len());
                let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                h.add_u64(mtime.map_or(0, |d| d.as_nanos() as u64));
            }
        }
        h.hex()
    }
}
