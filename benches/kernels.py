"""Kernel start to first result: `epic kernel` ("Rhai (epic)") against evcxr
("Rust (epic)"), both from `make notebook-kernel`, driven by jupyter_client.

    .venv/bin/python benches/kernels.py [--runs 3]

For each kernel: spawn → kernel_info_reply, spawn → the result of a trivial
cell, and spawn → the result of a first cell that uses epic (the Rhai kernel:
`disentangler("orthogonal", 16)`; evcxr: `:dep epic_nb` and a Session). Prints a
Markdown table; benches/RESULTS.md keeps the figures.
"""
import argparse
import statistics
import time

from jupyter_client import KernelManager

CELLS = {
    "epic-rhai": ["1 + 1", 'disentangler("orthogonal", 16)'],
    "epic-rust": ["1 + 1", ':dep epic_nb = { path = "../../epic-nb" }\n'
                           'let mut s = epic_nb::Session::new();\n'
                           's.run(r#"disentangler(\"orthogonal\", 16)"#)?'],
}


def until_reply(kc, msg_id, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = kc.get_shell_msg(timeout=max(0.05, deadline - time.time()))
        if m["parent_header"].get("msg_id") == msg_id:
            return m["content"]
    raise TimeoutError(msg_id)


def once(name):
    t0 = time.perf_counter()
    km = KernelManager(kernel_name=name)
    km.start_kernel(cwd="examples/notebooks")
    kc = km.client()
    kc.start_channels()
    until_reply(kc, kc.kernel_info(), 120)
    times = [time.perf_counter() - t0]
    for code in CELLS[name]:
        r = until_reply(kc, kc.execute(code), 1800)
        assert r["status"] == "ok", r
        times.append(time.perf_counter() - t0)
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kernels", default="epic-rhai,epic-rust")
    args = ap.parse_args()
    print("| kernel | kernel_info_reply | trivial cell | first epic cell |")
    print("|---|---|---|---|")
    for name in args.kernels.split(","):
        runs = [once(name) for _ in range(args.runs)]
        med = [statistics.median(r[i] for r in runs) for i in range(3)]
        print(f"| {name} (median of {args.runs}) | {med[0]:.2f} s | {med[1]:.2f} s | {med[2]:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
