//! Images per second: decode + transform (the loader, all cores) against the
//! backbone forward pass, for EfficientNet-Lite0 and ResNet-18 at 224×224.
//!
//! The loader must not starve the network: decode+transform throughput should be
//! at least the backbone's on the same cores. Run with `cargo bench --bench throughput`.
//!
//! `chunk_checksum`: the integrity check's cost, per bank chunk of 4096 Lite0
//! images (sums `[4096,1280]` f32, 21 MB): the CRC-32 alone, a chunk written to
//! bytes with it, and read back and verified. Compare with the backbone's time
//! for the same 4096 images.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use epic::data::{Dataset, ImageFolder, Loader};
use epic::model::{default_weights, Network};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

const BATCH: usize = 16;

/// An image folder of the three fixture photos, copied to fill one batch.
fn photo_folder() -> (tempfile::TempDir, Arc<dyn Dataset>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/efficientnet_lite0/photos");
    let dir = tmp.path().join("photos");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let names = ["chelsea.png", "coffee.png", "rocket.jpg"];
    for i in 0..BATCH {
        let name = names[i % 3];
        std::fs::copy(src.join(name), dir.join(format!("{i:03}_{name}"))).expect("copy photo");
    }
    let ds: Arc<dyn Dataset> = Arc::new(ImageFolder::open(tmp.path()).expect("folder"));
    (tmp, ds)
}

fn throughput(c: &mut Criterion) {
    let (_tmp, ds) = photo_folder();
    let mut lite = Network::new("efficientnet_lite0", 1000, Device::Cpu).expect("lite0");
    if let Some(w) = default_weights("efficientnet_lite0") {
        lite.load_weights(&w).expect("weights");
    }
    let resnet = Network::new("resnet18", 1000, Device::Cpu).ok();
    let indices: Vec<usize> = (0..BATCH).collect();

    let mut g = c.benchmark_group("images_per_second");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    let loader = Loader::new(ds.clone(), lite.preprocess(), BATCH);
    g.bench_function("decode_transform_224", |b| b.iter(|| loader.images(&indices).expect("decode")));
    let x = Tensor::randn([BATCH as i64, 3, 224, 224], (Kind::Float, Device::Cpu));
    g.bench_function("lite0_forward_224", |b| b.iter(|| lite.features(&x).expect("forward")));
    if let Some(resnet) = &resnet {
        g.bench_function("resnet18_forward_224", |b| b.iter(|| resnet.features(&x).expect("forward")));
    }
    g.finish();
}

fn chunk_checksum(c: &mut Criterion) {
    let rows = 4096;
    let sums = Tensor::randn([rows, 1280], (Kind::Float, Device::Cpu));
    let labels = Tensor::zeros([rows], (Kind::Int64, Device::Cpu));
    let valid = Tensor::ones([rows], (Kind::Bool, Device::Cpu));
    let hw = Tensor::from_slice(&[7i64, 7]);
    let tensors = [("sums", &sums), ("labels", &labels), ("predicted", &labels), ("valid", &valid), ("map_hw", &hw)];
    let path = std::path::Path::new("chunk.safetensors");
    let bytes = epic::io::tensors::encode_tensors(&tensors, path).expect("encode");
    let mut g = c.benchmark_group("chunk_checksum");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.sample_size(20);
    g.bench_function("crc32_4096_images", |b| b.iter(|| crc32fast::hash(&bytes)));
    g.bench_function("encode_with_checksum_4096_images", |b| {
        b.iter(|| epic::io::tensors::encode_tensors(&tensors, path).expect("encode"))
    });
    g.bench_function("parse_and_verify_4096_images", |b| {
        b.iter(|| epic::io::tensors::parse_tensors(&bytes, path).expect("parse"))
    });
    g.finish();
}

criterion_group!(benches, throughput, chunk_checksum);
criterion_main!(benches);
