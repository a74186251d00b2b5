# The two commands of the README. Each installs what it needs first (tools/setup.sh).
.PHONY: setup demo test bench doc

setup:
	./tools/setup.sh

demo: setup
	cargo run --release -- run scripts/crosscheck.rhai

test: setup
	cargo test --all-targets

doc: setup
	cargo run --release -- doc > docs/reference.md
