# The two commands of the README. Each installs what it needs first (tools/setup.sh).
.PHONY: setup demo crosscheck test bench doc

setup:
	./tools/setup.sh

demo: setup
	cargo run --release -- run scripts/demo.rhai

crosscheck: setup
	cargo run --release -- run scripts/crosscheck.rhai

test: setup
	cargo test --all-targets

bench: setup
	cargo bench --bench throughput

doc: setup
	cargo run --release -- doc > docs/reference.md
