"""Writes fuzz/seeds/ with the venv's PyTorch and Pillow (from the repository root:
.venv/bin/python fuzz/make_seeds.py). The .pth fixtures of tests/bad_input.rs are
copied in as well."""
import collections, os, shutil, zipfile
import numpy as np
import torch
from PIL import Image

d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
for t in ["pth", "config_override", "image_decode", "tensors", "checkpoint", "args"]:
    os.makedirs(f"{d}/{t}", exist_ok=True)

fixtures = os.path.join(os.path.dirname(d), "..", "tests", "fixtures", "bad_input")
for n in ["small_legacy.pth", "evil_zip.pth", "evil_legacy.pth"]:
    shutil.copy(f"{fixtures}/{n}", f"{d}/pth/{n}")
shutil.copy(f"{fixtures}/cmyk.jpg", f"{d}/image_decode/cmyk.jpg")
sd = collections.OrderedDict(w=torch.arange(6.).reshape(2, 3), b=torch.tensor([1., 2.]).half(),
                             t=torch.arange(6.).reshape(2, 3).t(), n=torch.tensor(5))
torch.save(sd, f"{d}/pth/small_zip.pth")
torch.save({"model": sd, "epoch": 1}, f"{d}/pth/checkpoint.pth")
z = zipfile.ZipFile(f"{d}/pth/small_zip.pth")
open(f"{d}/pth/data.pkl", "wb").write(z.read([n for n in z.namelist() if n.endswith("data.pkl")][0]))

rgb = np.random.default_rng(1).integers(0, 256, (6, 8, 3), dtype=np.uint8)
im = Image.fromarray(rgb)
for fmt, ext, mode in [("PNG", "png", "RGB"), ("PNG", "gray.png", "L"), ("PNG", "rgba.png", "RGBA"),
                       ("PNG", "p.png", "P"), ("JPEG", "jpg", "RGB"), ("JPEG", "gray.jpg", "L"),
                       ("BMP", "bmp", "RGB"), ("TIFF", "tif", "RGB"), ("WEBP", "webp", "RGB"), ("PPM", "ppm", "RGB")]:
    im.convert(mode).save(f"{d}/image_decode/seed.{ext}", fmt)
Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(f"{d}/image_decode/seed16.png")
im.save(f"{d}/image_decode/progressive.jpg", "JPEG", progressive=True)

seeds = {
    "plain": "model.name=resnet50\ntraining.lr=1e-3\n+training.weight_decay=0\nseed=7\n",
    "bad": "seed=abc\nmodel.nmae=x\nmodel=3\nlist=[1]\n=\n..=1\n+a.b.c=null\n",
    "interp": "output_path=${seed}/x\nhydra.run.dir=${output_path}\n",
    "yaml": "defaults: [base]\na: {b: 1, c: '${a.b}'}\nl: [1, 2]\n===\na.b=2\na.c=x\n+d=${a.c}\n",
}
for k, v in seeds.items():
    open(f"{d}/config_override/{k}", "w").write(v)
demo = os.path.join(os.path.dirname(d), "..", "configs", "demo_fashion_lite0.yaml")
open(f"{d}/config_override/demo", "w").write(open(demo).read() + "\n===\nseed=3\ntraining.lr=0.1\n")


# Safetensors as epic writes them: the CRC-32 (zlib's, IEEE) of the tensor bytes in
# the metadata. A bank chunk, a U file, a checkpoint of C = 4, one without checksum.
import json, struct, zlib

def safetensors(tensors, checksum=True):
    names = {np.float32: "F32", np.int64: "I64", np.bool_: "BOOL", np.uint8: "U8", np.float64: "F64"}
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        b = v.tobytes()
        header[k] = {"dtype": names[v.dtype.type], "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    data = b"".join(blobs)
    if checksum:
        header = {"__metadata__": {"epic.crc32": f"{zlib.crc32(data):08x}"}, **header}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

rng = np.random.default_rng(2)
chunk = {"sums": rng.standard_normal((5, 8)).astype(np.float32), "labels": np.arange(5, dtype=np.int64),
         "predicted": np.arange(5, dtype=np.int64)[::-1].copy(), "valid": np.array([1, 1, 0, 1, 1], dtype=np.bool_),
         "map_hw": np.array([2, 2], dtype=np.int64)}
open(f"{d}/tensors/chunk.safetensors", "wb").write(safetensors(chunk))
open(f"{d}/tensors/chunk_no_checksum.safetensors", "wb").write(safetensors(chunk, checksum=False))
open(f"{d}/tensors/u.safetensors", "wb").write(safetensors({"A_raw": rng.standard_normal((4, 4)).astype(np.float32)}))
ck = {"fingerprint": np.frombuffer(b"0123456789abcdef", dtype=np.uint8).copy(), "state": np.array([2, 7, 99], dtype=np.int64),
      "A_raw": rng.standard_normal((4, 4)).astype(np.float32), "exp_avg": np.zeros((4, 4), np.float32),
      "exp_avg_sq": np.ones((4, 4), np.float32), "history_steps": np.array([[3, 0.5], [2, 0.6]]),
      "history_epochs": np.array([[3, 0.4], [3, 0.45], [2, 0.55]])}
open(f"{d}/checkpoint/checkpoint.safetensors", "wb").write(safetensors(ck))
open(f"{d}/checkpoint/old_checkpoint.safetensors", "wb").write(safetensors(ck, checksum=False))
for k in ["plain", "bad", "interp"]:
    open(f"{d}/args/{k}", "w").write(seeds[k])
open(f"{d}/args/nested", "w").write("a.b.c=1\na.b=2\nx=[1, 2]\ny={z: 1}\nkey with space=1\n=v\nk=\n")
