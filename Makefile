# The two commands of the README. Each installs what it needs first (tools/setup.sh).
.PHONY: setup demo crosscheck test bench doc notebook-kernel notebooks

setup:
	./tools/setup.sh

demo: setup
	cargo run --release -- run scripts/demo.rhai

crosscheck: setup
	cargo run --release -- run scripts/crosscheck.rhai

test: setup notebook-kernel
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
