"""Writes fuzz/seeds/ with the venv's PyTorch and Pillow (from the repository root:
.venv/bin/python fuzz/make_seeds.py). The .pth fixtures of tests/bad_input.rs are
copied in as well."""
import collections, os, shutil, zipfile
import numpy as np
import torch
from PIL import Image

d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
for t in ["pth", "config_override", "image_decode"]:
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
