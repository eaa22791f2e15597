"""Every teaching notebook runs headlessly under nbclient on the patholab kernel and shows at least
one picture and one HTML table; an error in one cell is reported with its caret and the next cell
still runs. Run by tests/processes/kernel.rs (see test_protocol.py for the environment)."""
import os
import time
import unittest
from pathlib import Path

import nbformat
from nbclient import NotebookClient

KERNEL = os.environ.get("PATHOLAB_KERNEL_NAME", "patholab")
WORK = Path(os.environ.get("PATHOLAB_KERNEL_WORK", "."))
ROOT = Path(__file__).resolve().parents[2]


def run(nb, allow_errors=False):
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=600, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(WORK)}})
    client.execute()
    return nb


def mimes(nb):
    out = set()
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.update(o.get("data", {}).keys())
    return out


class TeachingNotebooks(unittest.TestCase):
    def test_every_teaching_notebook_runs_and_shows_a_picture_and_a_table(self):
        paths = sorted((ROOT / "examples/teaching").glob("*.ipynb"))
        self.assertGreaterEqual(len(paths), 5)
        for p in paths:
            with self.subTest(notebook=p.name):
                t0 = time.monotonic()
                nb = run(nbformat.read(p, as_version=4))
                print(f"\n{p.name}: {time.monotonic() - t0:.1f} s", flush=True)
                nbformat.write(nb, WORK / p.name)
                seen = mimes(nb)
                self.assertIn("image/png", seen, p.name)
                self.assertIn("text/html", seen, p.name)
                errors = [o for c in nb.cells for o in c.get("outputs", [])
                          if o["output_type"] == "error"]
                self.assertEqual(errors, [], p.name)

    def test_a_failing_cell_shows_its_caret_and_the_next_cell_runs(self):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "patholab", "language": "rhai"}
        nb.cells = [
            nbformat.v4.new_code_cell("let a = 1;"),
            nbformat.v4.new_code_cell("let b = a +\n    no_such_function(2);"),
            nbformat.v4.new_code_cell("a + 1"),
        ]
        run(nb, allow_errors=True)
        err = nb.cells[1].outputs[-1]
        self.assertEqual(err["output_type"], "error")
        tb = "\n".join(err["traceback"])
        self.assertIn("line 2, position 5", tb)
        self.assertIn("no_such_function(2);", tb)
        self.assertIn("    ^", tb)
        result = [o for o in nb.cells[2].outputs if o["output_type"] == "execute_result"]
        self.assertEqual(result[0]["data"]["text/plain"], "2")


def tearDownModule():
    # The kernels' own CPU time (they are this process's children), a measure that does not
    # depend on how loaded the machine is.
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"\nkernel processes: {ru.ru_utime + ru.ru_stime:.1f} s of CPU", flush=True)


if __name__ == "__main__":
    unittest.main()
