"""examples/first_steps.ipynb executes in a Jupyter kernel, and every step shows what docs/notebooks.md says.

The notebook runs once per session (about 35 s on two cores: kernel start, TensorFlow import, two
demo models trained, optimizations capped by ``VISOPT_MAX_ITER``) in a temporary folder, as a user
would run it from a copy; the tests read its outputs.
"""

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "first_steps.ipynb"
DOCS = ROOT / "docs" / "notebooks.md"
OUT = "first_steps_out"
#: The cells (by id) whose last expression is a picture: a PNG, or HTML holding an <img>.
PICTURE_CELLS = ("data", "filters", "classes", "optimizer", "objects", "maps", "snapshots", "history")
# TensorFlow's C++ logging writes these before its log level applies: not visopt's output
TF_LOG = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} |To enable the following instructions)")
SUMMARY = re.compile(r"^visopt: \d+ steps of 1 images in [\d.]+ s .*; mean loss -?[\d.]+")


def step_lines(notebook) -> dict[str, int]:
    """``{step name: lines of code}`` of the cells marked as steps (metadata ``visopt.step``); blank lines not counted."""
    return {cell.metadata["visopt"]["step"]: sum(1 for line in cell.source.splitlines() if line.strip())
            for cell in notebook.cells if cell.cell_type == "code" and "visopt" in cell.metadata}


def screen(text: str) -> list[str]:
    """The lines a terminal (or Jupyter's stream renderer) shows for ``text``: each line after its last ``\\r``."""
    return [line.rsplit("\r", 1)[-1] for line in text.rstrip("\n").split("\n")]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook, executed in a folder of its own with ``VISOPT_MAX_ITER=10``; and that folder."""
    folder = tmp_path_factory.mktemp("notebook")
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    notebook = nbformat.read(folder / NOTEBOOK.name, as_version=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VISOPT_MAX_ITER", "10")  # the kernel inherits the environment
        patch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path_factory.mktemp("jupyter-runtime")))
        patch.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        # allow_errors: a failing cell is reported by the tests below, with its traceback
        NotebookClient(notebook, timeout=240, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(folder)}}).execute()
    return notebook, folder


def cell(notebook, cell_id: str):
    return next(c for c in notebook.cells if c.get("id") == cell_id)


def test_the_committed_notebook_is_clean_and_valid():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4 and notebook.metadata.kernelspec.name == "python3"
    for c in notebook.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, f"cell {c.id} has outputs: clear them"
    ids = {c.id for c in notebook.cells}
    assert set(PICTURE_CELLS) <= ids and "import" in ids and "optimizer" in ids
    assert cell(notebook, "import").source == "import visopt"
    # every path it writes is under OUT
    for path in re.findall(r'"([^"]*/[^"]*)"', "\n".join(c.source for c in notebook.cells if c.cell_type == "code")):
        assert path.startswith(OUT + "/"), path


def test_the_docs_count_the_lines_of_each_step():
    """docs/notebooks.md's table ``| step | lines | ...`` holds the counts measured here, for every step."""
    measured = step_lines(nbformat.read(NOTEBOOK, as_version=4))
    section = DOCS.read_text(encoding="utf-8").split("\n## The steps", 1)[1].split("\n## ", 1)[0]
    table = dict(re.findall(r"^\| ([^|]+?) \| (\d+) \|", section, re.M))
    assert {step: int(count) for step, count in table.items()} == measured
    assert max(measured.values()) <= 4 and sum(measured.values()) <= 2 * len(measured)


def test_the_notebook_runs_without_errors(executed):
    notebook, _ = executed
    errors = [(c.id, out.ename, out.evalue, "\n".join(out.traceback)[-2000:])
              for c in notebook.cells if c.cell_type == "code" for out in c.outputs if out.output_type == "error"]
    assert not errors


def test_import_visopt_prints_nothing(executed):
    notebook, _ = executed
    printed = [line for out in cell(notebook, "import").outputs
               for line in (out.get("text") or str(out.get("data", ""))).splitlines()
               if line.strip() and not TF_LOG.match(line)]
    assert printed == []


@pytest.mark.parametrize("cell_id", PICTURE_CELLS)
def test_each_display_step_shows_a_picture(executed, cell_id):
    notebook, _ = executed
    results = [out for out in cell(notebook, cell_id).outputs if out.output_type == "execute_result"]
    assert len(results) == 1, f"{cell_id}: {cell(notebook, cell_id).outputs}"
    data = results[0].data
    assert "image/png" in data or "<img" in data.get("text/html", ""), f"{cell_id} shows {data}"


def test_the_progress_bar_leaves_its_summary_line(executed):
    notebook, _ = executed
    outputs = cell(notebook, "optimizer").outputs
    assert [out for out in outputs if out.output_type == "stream" and out.name == "stdout"] == []
    stderr = "".join(out.text for out in outputs if out.output_type == "stream" and out.name == "stderr")
    shown = [line for line in screen(stderr) if line.strip()]
    assert 1 <= len(shown) <= 3 and SUMMARY.match(shown[-1]), stderr
    assert "10 steps" in shown[-1]  # VISOPT_MAX_ITER reached the kernel
    assert stderr.count("\r") <= 6  # a handful of updates, not one per step
    html = next(out for out in outputs if out.output_type == "execute_result").data["text/html"]
    assert "10 steps" in html and "data:image/gif;base64," in html  # the result shows its (small) animation


def test_the_metric_scores_both_methods(executed):
    notebook, _ = executed
    result = next(out for out in cell(notebook, "metric").outputs if out.output_type == "execute_result")
    scores = [float(v) for v in re.findall(r"[\d.]+", result.data["text/plain"])]
    assert len(scores) == 2 and all(0 <= s <= 1 for s in scores)


def test_everything_it_writes_is_in_its_output_folder(executed):
    _, folder = executed
    assert sorted(p.name for p in folder.iterdir()) == sorted([OUT, NOTEBOOK.name])
    out = folder / OUT
    assert (out / "rings.gif").stat().st_size > 0
    assert len(list((out / "weights").glob("layer_*-weights_*.gif"))) == 8, sorted(out.rglob("*"))
