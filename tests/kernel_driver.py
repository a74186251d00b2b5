"""Drives `epic kernel` with a real jupyter_client, as JupyterLab would.

Run by tests/kernel.rs with the venv's Python: JUPYTER_PATH points at a folder
holding the kernelspec `epic-rhai` (written by `epic kernel install --prefix`),
and EPIC_EXPECTED_EXPLAIN_DOC at a file with the text `epic doc` gives for
`explain`. Prints one line per check (`PASS name` / `FAIL name: detail`), the
timings as `TIMING {json}`, and exits 0 only when every check passed.
"""
import json
import os
import sys
import time

from jupyter_client import KernelManager

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)


def collect(kc, msg_id, timeout):
    """The iopub messages of request `msg_id`, up to its idle status."""
    out, deadline = [], time.time() + timeout
    while time.time() < deadline:
        try:
            m = kc.get_iopub_msg(timeout=max(0.05, deadline - time.time()))
        except Exception:
            break
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        out.append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
    return out


def reply_to(kc, msg_id, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = kc.get_shell_msg(timeout=max(0.05, deadline - time.time()))
        if m["parent_header"].get("msg_id") == msg_id:
            return m
    raise TimeoutError(f"no reply to {msg_id}")


def run(kc, code, timeout=60):
    msg_id = kc.execute(code)
    reply = reply_to(kc, msg_id, timeout)
    return reply["content"], collect(kc, msg_id, timeout)


def of(msgs, kind):
    return [m["content"] for m in msgs if m["msg_type"] == kind]


def result_text(msgs):
    r = of(msgs, "execute_result")
    return r[0]["data"].get("text/plain") if r else None


def stream(msgs, name):
    return "".join(c["text"] for c in of(msgs, "stream") if c["name"] == name)


def main():
    timing = {}
    t0 = time.perf_counter()
    km = KernelManager(kernel_name="epic-rhai")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    msg_id = kc.kernel_info()
    info = reply_to(kc, msg_id, 60)["content"]
    timing["kernel_info_reply_s"] = round(time.perf_counter() - t0, 3)
    collect(kc, msg_id, 5)
    check("kernel_info: Rhai, protocol 5.3",
          info["language_info"]["name"] == "rhai" and info["protocol_version"] == "5.3", info)
    c, msgs = run(kc, "let answer = 40 + 2; answer")
    timing["first_result_s"] = round(time.perf_counter() - t0, 3)
    check("a first cell's value", c["status"] == "ok" and result_text(msgs) == "42", msgs)

    c, msgs = run(kc, "device()")
    check("the kernel's device (cpu here, cuda where there is one)", result_text(msgs) == "cpu", msgs)

    c, msgs = run(kc, 'print(`the answer is ${answer}`);')
    check("print goes to the cell's stdout",
          stream(msgs, "stdout") == "the answer is 42\n" and not of(msgs, "execute_result"), msgs)

    c, msgs = run(kc, "let y = answer;\nrotate(y, 2)")
    err = of(msgs, "error")
    check("a wrong call: cell N:line:col, the message and the signatures that exist",
          c["status"] == "error" and c["evalue"].startswith(f"cell {c['execution_count']}:2:1: rotate cannot take arguments")
          and "rotate(" in c["evalue"] and err and err[0]["evalue"] == c["evalue"], c)
    c, msgs = run(kc, "y + 1")
    check("the cell after an error runs, with what the failed cell assigned",
          c["status"] == "ok" and result_text(msgs) == "43", (c, msgs))

    msg_id = kc.complete("let p = purity_", 15)
    comp = reply_to(kc, msg_id, 10)["content"]
    collect(kc, msg_id, 5)
    check("completion of purity_ lists purity_argmax",
          "purity_argmax" in comp["matches"] and comp["cursor_start"] == 8 and comp["cursor_end"] == 15, comp)
    msg_id = kc.complete("ans", 3)
    comp = reply_to(kc, msg_id, 10)["content"]
    collect(kc, msg_id, 5)
    check("completion of a variable", comp["matches"] == ["answer"], comp)

    expected = open(os.environ["EPIC_EXPECTED_EXPLAIN_DOC"]).read()
    msg_id = kc.inspect("explain(d, bank, image, opts)", 4)
    insp = reply_to(kc, msg_id, 10)["content"]
    collect(kc, msg_id, 5)
    doc = insp["data"].get("text/plain", "")
    check("inspection of explain returns its doc, as epic doc prints it",
          insp["found"] and expected.strip() and expected.strip() in doc, doc[:300])

    # A picture: a Fashion-MNIST image through Lite0's transform.
    c, msgs = run(kc, 'let base = load_model(#{ name: "efficientnet_lite0", resize: 64, crop: 64 });\n'
                      'let val = fashion_mnist("test", 1, base);\npicture(val, 2)', timeout=120)
    data = of(msgs, "execute_result")[0]["data"] if of(msgs, "execute_result") else {}
    check("a picture is image/png with text/plain",
          data.get("image/png", "").startswith("iVBOR") and "text/plain" in data, (c, str(msgs)[:400]))

    # An interrupt during extraction: epic stops at its next safe point.
    msg_id = kc.execute('let before = 7;\n'
                        'let train = fashion_mnist("train", 100, base);\n'
                        'let bank = extract(base, train, #{ batch_size: 4 });')
    seen, deadline = [], time.time() + 120
    while time.time() < deadline:  # wait until extraction reports progress
        m = kc.get_iopub_msg(timeout=60)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        seen.append(m)
        if m["msg_type"] == "stream" and m["content"]["name"] == "stderr" and "extract" in m["content"]["text"]:
            break
    t_int = time.perf_counter()
    km.interrupt_kernel()
    c = reply_to(kc, msg_id, 120)["content"]
    timing["interrupt_to_reply_s"] = round(time.perf_counter() - t_int, 3)
    seen += collect(kc, msg_id, 10)
    check("extraction's progress reaches the cell's stderr",
          any(m["msg_type"] == "stream" and "extract" in m["content"]["text"] for m in seen), str(seen)[:400])
    check("an interrupt stops extraction with epic's Ctrl-C message",
          c["status"] == "error" and c["ename"] == "Interrupted" and "interrupted during extraction" in c["evalue"], c)
    c, msgs = run(kc, "before * 6")
    check("the kernel answers after the interrupt, keeping what the cell had assigned",
          km.is_alive() and result_text(msgs) == "42", (c, msgs))

    msg_id = kc.execute("let i = 0;\nloop { i += 1; }")
    time.sleep(1.0)
    alive = kc.is_alive()
    km.interrupt_kernel()
    c = reply_to(kc, msg_id, 30)["content"]
    collect(kc, msg_id, 10)
    check("a script loop is interrupted too (heartbeat alive while busy)",
          alive and c["status"] == "error" and c["ename"] == "Interrupted", c)

    proc = km.provisioner.process
    kc.stop_channels()
    t_sd = time.perf_counter()
    km.shutdown_kernel(now=False)
    timing["shutdown_s"] = round(time.perf_counter() - t_sd, 3)
    check("a clean shutdown (exit status 0)", proc.poll() == 0 and not km.is_alive(), proc.poll())

    print("TIMING " + json.dumps(timing), flush=True)
    failed = [n for n, ok in results if not ok]
    print(f"{len(results) - len(failed)} checks passed, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
