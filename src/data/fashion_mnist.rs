//! Fashion-MNIST (Xiao et al. 2017) from its IDX files, as Debian's package
//! `dataset-fashion-mnist` installs them (`/usr/share/datasets/fashion-mnist`,
//! gzipped). 28×28 grayscale articles in 10 classes; images become RGB and go
//! through the model's transform like any photo.
use super::{Dataset, Error, Result};
use image::RgbImage;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where Debian's package puts the files.
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The ten class names, by label.
pub const CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

const SIDE: usize = 28;

/// A Fashion-MNIST split, optionally reduced to the first `per_class` images of each class.
#[derive(Debug, Clone)]
pub struct FashionMnist {
    dir: PathBuf,
    per_class: Option<usize>,
    split: String,
    pixels: Vec<u8>,
    labels: Vec<u8>,
    /// Indices into the split's files, in file order.
    chosen: Vec<usize>,
    classes: Vec<String>,
}

fn read_idx(path: &Path, magic: u32) -> Result<(Vec<usize>, Vec<u8>)> {
    let bad = |why: String| Error::Layout { path: path.into(), why };
    crate::io::access::check_read(path)?;
    let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.into(), source })?;
    let mut bytes = Vec::new();
    let read = if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file).read_to_end(&mut bytes)
    } else {
        std::io::BufReader::new(file).read_to_end(&mut bytes)
    };
    read.map_err(|e| bad(format!("cannot decompress ({e}); the file may be truncated")))?;
    let word = |i: usize| bytes.get(4 * i..4 * i + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let found = word(0).ok_or_else(|| bad("shorter than an IDX header".into()))?;
    if found != magic as usize {
        return Err(bad(format!("IDX magic 0x{found:08x}, expected 0x{magic:08x}")));
    }
    let ndim = magic as usize & 0xff;
    let dims: Vec<usize> =
        (1..=ndim).map(word).collect::<Option<_>>().ok_or_else(|| bad("truncated IDX header".into()))?;
    let body = bytes.split_off(4 * (ndim + 1));
    if body.len() != dims.iter().product::<usize>() {
        return Err(bad(format!("{} data bytes for dimensions {dims:?}; the file is truncated", body.len())));
    }
    Ok((dims, body))
}

impl FashionMnist {
    /// Opens split `"train"` (60 000 images) or `"test"` (10 000) from `dir`
    /// (default: `$EPIC_FASHION_MNIST` where set, else Debian's location), keeping the first `per_class` images of each
    /// class in file order when given.
    pub fn open(dir: Option<&Path>, split: &str, per_class: Option<usize>) -> Result<Self> {
        let dir = dir
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("EPIC_FASHION_MNIST").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEBIAN_DIR));
        let prefix = match split {
            "train" => "train",
            "test" | "val" => "t10k",
            other => {
                return Err(Error::Layout {
                    path: dir,
                    why: format!("unknown split {other:?}; use \"train\" or \"test\""),
                })
            }
        };
        let find = |stem: &str| -> Result<PathBuf> {
            [format!("{prefix}-{stem}.gz"), format!("{prefix}-{stem}")]
                .iter()
                .map(|n| dir.join(n))
                .find(|p| p.is_file())
                .ok_or_else(|| Error::Layout {
                    path: dir.join(format!("{prefix}-{stem}.gz")),
                    why: "missing; install Debian's dataset-fashion-mnist (tools/setup.sh does) or pass the folder"
                        .into(),
                })
        };
        let (idims, pixels) = read_idx(&find("images-idx3-ubyte")?, 0x0803)?;
        let (ldims, labels) = read_idx(&find("labels-idx1-ubyte")?, 0x0801)?;
        if idims[1..] != [SIDE, SIDE] || idims[0] != ldims[0] {
            return Err(Error::Layout {
                path: dir,
                why: format!("images {idims:?} and labels {ldims:?} do not match"),
            });
        }
        let mut taken = [0usize; 10];
        let chosen = (0..labels.len())
            .filter(|&i| {
                let c = labels[i] as usize;
                let keep = c < 10 && per_class.is_none_or(|n| taken[c] < n);
                if keep {
                    taken[c] += 1;
                }
                keep
            })
            .collect();
        Ok(FashionMnist {
            dir: dir.clone(),
            per_class,
            split: split.into(),
            pixels,
            labels,
            chosen,
            classes: CLASSES.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Position of image `i` in the split's files.
    pub fn file_index(&self, i: usize) -> Option<usize> {
        self.chosen.get(i).copied()
    }
}

impl Dataset for FashionMnist {
    fn len(&self) -> usize {
        self.chosen.len()
    }

    fn label(&self, i: usize) -> i64 {
        self.chosen.get(i).map_or(-1, |&j| self.labels[j] as i64)
    }

    fn class_names(&self) -> &[String] {
        &self.classes
    }

    fn image(&self, i: usize) -> Result<RgbImage> {
        let j = *self.chosen.get(i).ok_or(Error::OutOfRange { index: i, len: self.chosen.len() })?;
        let gray = &self.pixels[j * SIDE * SIDE..(j + 1) * SIDE * SIDE];
        let rgb: Vec<u8> = gray.iter().flat_map(|&g| [g, g, g]).collect();
        RgbImage::from_raw(SIDE as u32, SIDE as u32, rgb).ok_or(Error::OutOfRange { index: i, len: self.chosen.len() })
    }

    fn describe(&self, i: usize) -> String {
        format!("fashion-mnist {} #{}", self.split, self.file_index(i).map_or(-1, |j| j as i64))
    }

    fn source(&self) -> Option<super::DataSource> {
        Some(super::DataSource::FashionMnist {
            dir: self.dir.clone(),
            split: self.split.clone(),
            per_class: self.per_class,
        })
    }

    fn fingerprint(&self) -> String {
        let mut h = crate::io::Fingerprint::new();
        h.add_str("fashion-mnist");
        h.add_str(&self.split);
        for &j in &self.chosen {
            h.add_u64(j as u64);
            h.add_u64(self.labels[j] as u64);
            h.add_bytes(&self.pixels[j * SIDE * SIDE..(j + 1) * SIDE * SIDE]);
        }
        h.hex()
    }
}
