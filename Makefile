# The two commands of the README. Each installs what it needs first (tools/setup.sh).
.PHONY: setup demo crosscheck test bench doc notebook-kernel notebooks build flavour-check device-bundle gpu-check

setup:
	./tools/setup.sh

demo: setup
	cargo run --release -- run scripts/demo.rhai

crosscheck: setup
	cargo run --release -- run scripts/crosscheck.rhai

test: setup notebook-kernel flavour-check
	cargo test --all-targets --features notebook
	./tools/run-notebooks.sh
	cargo test --features notebook --test notebooks -- --ignored

# The "Rust (epic)" Jupyter kernel: evcxr_jupyter, Jupyter in .venv, the kernelspec.
notebook-kernel: setup
	./tools/notebook-kernel.sh

# Executes examples/notebooks/ headlessly into .notebook/executed/.
notebooks: notebook-kernel
	./tools/run-notebooks.sh

# Criterion benchmarks (loader vs backbone, EPIC's own costs at ImageNet shapes),
# then the macro benchmark: floor, full EPIC run, explain; ratios printed.
bench: setup
	cargo bench --bench throughput --bench epic
	cargo run --release -- run scripts/bench.rhai

doc: setup
	cargo run --release -- doc > docs/reference.md

# The release binary. With TORCH_PYTHON, against the PyTorch that Python has
# (2.11, 2.12 or 2.13): make build TORCH_PYTHON=/opt/conda/bin/python
build: $(if $(TORCH_PYTHON),,setup)
ifdef TORCH_PYTHON
	./tools/flavour.sh --python $(TORCH_PYTHON) build --release --bin epic
else
	cargo build --release --bin epic
endif

# The PyTorch 2.11 flavour compiles (the registry's wheel, kept in target/torch-flavours/).
flavour-check: setup
	./tools/flavour.sh --wheel 2.11 check --lib --bins --features notebook

# Everything the GPU check needs, built here for a GPU machine with PyTorch 2.11:
# target/device-bundle/ (under 60 MiB); there, run target/device-bundle/gpu-check.sh OUT.
device-bundle: setup
	./tools/device-bundle.sh

# The GPU check on this machine (CUDA when it has a GPU), into target/gpu-check/.
gpu-check: setup
	cargo build --release --bin epic
	EPIC=target/release/epic ./tools/gpu-check.sh target/gpu-check --device auto
