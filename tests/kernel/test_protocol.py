"""The patholab kernel over the Jupyter protocol, driven by jupyter_client as a notebook would.

Run by tests/processes/kernel.rs with the kernel installed into a temporary prefix (JUPYTER_PATH points at
it; PATHOLAB_KERNEL_NAME names it). PATHOLAB_KERNEL_WORK is a scratch folder.
"""
import csv
import os
import time
import unittest
import uuid
from pathlib import Path
from queue import Empty

import jupyter_kernel_test as jkt
import zmq
from jupyter_client.manager import start_new_kernel
from jupyter_client.session import Session

KERNEL = os.environ.get("PATHOLAB_KERNEL_NAME", "patholab")
WORK = Path(os.environ.get("PATHOLAB_KERNEL_WORK", "."))
ROOT = Path(__file__).resolve().parents[2]


class PatholabKernelTests(jkt.KernelTests):
    kernel_name = KERNEL
    language_name = "rhai"
    file_extension = ".rhai"

    code_hello_world = 'print("hello, world")'
    code_stderr = 'debug("to stderr")'
    completion_samples = [
        {"text": "let d = datas", "matches": {"dataset("}},
        {"text": 'network("efficientnet_lite', "matches": {f"efficientnet_lite{i}" for i in range(5)}},
    ]
    complete_code_samples = ["1 + 1", "let x = 1;", "fn f(x) { x + 1 }"]
    incomplete_code_samples = ["fn f(x) {", "let a = [1, 2,", 'let s = "abc']
    invalid_code_samples = ["let a = ;;; )"]
    code_inspect_sample = "dataset"
    code_generate_error = 'throw "boom"'
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": 'let t = 40; t + 2', "result": "42"},
        {"code": 'dataset("demo:kather")', "mime": "text/html"},
    ]
    code_display_data = [
        {"code": 'display(dataset("demo:kather").show(4))', "mime": "image/png"},
        {"code": 'display(dataset("demo:kather"))', "mime": "text/html"},
    ]

    def test_variables_and_functions_survive_between_cells(self):
        self.flush_channels()
        self.execute_helper("let kept = 20; fn twice(x) { 2 * x }")
        reply, out = self.execute_helper("twice(kept) + 2")
        self.assertEqual(reply["content"]["status"], "ok")
        results = [m for m in out if m["msg_type"] == "execute_result"]
        self.assertEqual(results[0]["content"]["data"]["text/plain"], "42")

    def test_error_shows_line_position_and_caret(self):
        self.flush_channels()
        reply, out = self.execute_helper('let a = 1;\nlet b = a +* 2;')
        c = reply["content"]
        self.assertEqual(c["status"], "error")
        self.assertEqual(c["ename"], "ParseError")
        tb = "\n".join(c["traceback"])
        self.assertIn("line 2, position", tb)
        self.assertIn("let b = a +* 2;", tb)
        self.assertIn("^", tb)
        reply, out = self.execute_helper('let x = 1;\nx.no_such_method()')
        self.assertEqual(reply["content"]["ename"], "RuntimeError")
        self.assertIn("line 2", "\n".join(reply["content"]["traceback"]))

    def test_svg_figure_carries_both_pictures(self):
        self.flush_channels()
        path = WORK / "confusion.svg"
        code = (
            'let d = dataset("demo:kather");\n'
            'let f = network("efficientnet_lite0").features(d, #{ taps: ["last"] });\n'
            f'plot_confusion(evaluate(fit(extra_trees(#{{ n_trees: 5 }}), f), f), "{path}")'
        )
        reply, out = self.execute_helper(code, timeout=120)
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        data = [m for m in out if m["msg_type"] == "execute_result"][0]["content"]["data"]
        self.assertIn("image/png", data)
        self.assertIn("image/svg+xml", data)
        self.assertEqual(data["text/plain"], str(path))
        self.assertTrue(path.exists())

    def test_inspect_a_variable(self):
        self.flush_channels()
        self.execute_helper('let kather = dataset("demo:kather");')
        self.kc.inspect("kather.len()", 3)
        reply = self.get_non_kernel_info_reply(timeout=10)
        self.assertTrue(reply["content"]["found"])
        self.assertIn("Dataset", reply["content"]["data"]["text/plain"])

    def test_method_completion_by_type(self):
        self.flush_channels()
        self.execute_helper('let kather = dataset("demo:kather");')
        self.kc.complete("kather.spl")
        reply = self.get_non_kernel_info_reply(timeout=10)
        self.assertIn("split(", reply["content"]["matches"])
        self.assertEqual(reply["content"]["cursor_start"], len("kather."))


class Robustness(unittest.TestCase):
    """Interrupt, and messages that must be refused."""

    @classmethod
    def setUpClass(cls):
        cls.log = open(WORK / "kernel-stderr.log", "w+")
        cls.km, cls.kc = start_new_kernel(kernel_name=KERNEL, stderr=cls.log)

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        cls.km.shutdown_kernel()
        cls.log.close()

    def execute(self, code, timeout=60):
        msg_id = self.kc.execute(code)
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def test_interrupt_stops_a_long_extraction_and_keeps_variables(self):
        # 5,000 images: the demo images over and over, through a ResNet-50 (random weights, so
        # nothing to download) with a cache of its own; the work is real extraction.
        demo = sorted((ROOT / "data/demo/bccd-wbc").rglob("*.jp*g")) + sorted(
            (ROOT / "data/demo/bccd-wbc").rglob("*.png"))
        self.assertGreater(len(demo), 100)
        manifest = WORK / "five_thousand.csv"
        with open(manifest, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label", "slide"])
            for i in range(5000):
                p = demo[i % len(demo)]
                w.writerow([p, p.parent.name, f"s{i % 50}"])
        self.assertEqual(self.execute("let before = 41;")["content"]["status"], "ok")
        msg_id = self.kc.execute(
            f'let big = dataset("{manifest}");\n'
            'let net = network("resnet50", #{ weights: "random", seed: 1 });\n'
            'let f = net.features(big, #{ taps: ["last"] });'
        )
        time.sleep(6)
        # Still running: no reply yet.
        with self.assertRaises(Empty):
            self.kc.get_shell_msg(timeout=0.1)
        t0 = time.monotonic()
        self.km.interrupt_kernel()
        reply = self.kc.get_shell_msg(timeout=10)
        waited = time.monotonic() - t0
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"]["status"], "error")
        self.assertLess(waited, 2.0, f"interrupt took {waited:.2f} s")
        print(f"\ninterrupt: error reply {waited * 1000:.0f} ms after the request")
        after = self.execute("before + 1")
        self.assertEqual(after["content"]["status"], "ok")
        self.assertEqual(self.execute("big.len()")["content"]["status"], "ok")

    def test_unsigned_and_mis_signed_messages_are_dropped(self):
        conn = self.km.get_connection_info()
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.connect(f"{conn['transport']}://{conn['ip']}:{conn['shell_port']}")
        try:
            for key in (b"", b"not-the-key"):
                s = Session(key=key, username="intruder", session=str(uuid.uuid4()))
                if not key:
                    s.auth = None
                s.send(sock, "execute_request", content={
                    "code": 'write_text("pwned.txt", "x")', "silent": False,
                    "store_history": True, "user_expressions": {}, "allow_stdin": False,
                    "stop_on_error": True})
            self.assertEqual(sock.poll(1500), 0, "the kernel answered a badly signed message")
        finally:
            sock.close(0)
        # The kernel is still fine, nothing ran, and the drops are in its log.
        self.assertEqual(self.execute("1 + 1")["content"]["status"], "ok")
        self.assertFalse(Path("pwned.txt").exists())
        self.log.flush()
        text = Path(self.log.name).read_text()
        self.assertGreaterEqual(text.count("shell: message dropped"), 2, text)


def tearDownModule():
    # The kernels' own CPU time (they are this process's children), a measure that does not
    # depend on how loaded the machine is.
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"\nkernel processes: {ru.ru_utime + ru.ru_stime:.1f} s of CPU", flush=True)


if __name__ == "__main__":
    unittest.main()
