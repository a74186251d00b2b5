//! Images per second: decode + transform (the loader, all cores) against the
//! backbone forward pass, for EfficientNet-Lite0 and ResNet-18 at 224×224.
//!
//! The loader must not starve the network: decode+transform throughput should be
//! at least the backbone's on the same cores. Run with `cargo bench --bench throughput`.
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

criterion_group!(benches, throughput);
criterion_main!(benches);
