"""The tree is the architecture: imports point down the layers, siblings of one layer never import each other.

Layers, bottom first (docs/architecture.md):
    0  private helpers at the top (``visopt/_*.py``): no visopt imports at all
    1  model, render
    2  frames
    3  optvis, attribution, inspect
    4  training, replay
    5  cli, demo
A module imports only from lower layers and from its own sub-package; only the public face
(``visopt/__init__.py``, ``visopt/__main__.py``), the CLI and the demo import ``visopt`` itself.
Imports are read with ``ast`` (a lazy import inside a function counts too).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "visopt"

LAYERS = {
    "model": 1, "render": 1,
    "frames": 2, "store": 2,
    "optvis": 3, "attribution": 3, "inspect": 3,
    "training": 4, "replay": 4,
    "cli": 5, "demo": 5,
}
PUBLIC_FACE = {"__init__", "__main__"}
MAX_TOP_MODULES = 8


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, source: str | None = None):
    """(line, imported module) for every import in the file (or in ``source`` read as that file),
    relative imports resolved."""
    source = path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(source, filename=str(path))
    package = _dotted(path) if path.name == "__init__.py" else _dotted(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "visopt" or (node.level and not node.module):
                # ``from visopt import x`` may name a sub-package or module: judge each name
                for alias in node.names:
                    yield node.lineno, f"{module}.{alias.name}"
            else:
                yield node.lineno, module


def _place(dotted: str):
    """(layer, unit) of a visopt module: unit is the sub-package, or the module itself at the top."""
    parts = dotted.split(".")
    if len(parts) == 1:
        return None, "visopt"
    head = parts[1]
    if head in LAYERS:
        return LAYERS[head], head
    if head.startswith("_") and head not in PUBLIC_FACE:
        return 0, head
    if head in PUBLIC_FACE:
        return None, head
    return None, head  # a public name of the face (``from visopt import Optimizer``)


def _violation(importer: str, imported: str):
    """Why ``importer`` may not import ``imported``, or None when it may."""
    layer, unit = _place(importer)
    if unit in PUBLIC_FACE:
        return None
    target_layer, target_unit = _place(imported)
    if target_layer is None:
        if unit in ("cli", "demo"):
            return None
        return "only the public face, the CLI and the demo import visopt itself"
    if layer == 0:
        return "the private helpers at the top import no visopt module"
    if target_unit == unit:
        return None
    if target_layer < layer:
        return None
    if target_layer == layer:
        return f"{unit} and {target_unit} are siblings of layer {layer}: what they share moves down"
    return f"{unit} (layer {layer}) may not import {target_unit} (layer {target_layer}), a higher layer"


def test_imports_point_down_the_layers():
    problems = []
    for path in _modules():
        importer = _dotted(path) if path.name != "__init__.py" or path.parent != PACKAGE else "visopt.__init__"
        if path.parent == PACKAGE and path.name == "__main__.py":
            importer = "visopt.__main__"
        for line, imported in _imports(path):
            if imported != "visopt" and not imported.startswith("visopt."):
                continue
            why = _violation(importer, imported)
            if why:
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported}: {why}")
    assert not problems, "imports against the layer rule:\n" + "\n".join(problems)


def test_every_sub_package_has_a_layer_and_says_what_belongs_there():
    for folder in sorted(p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"):
        assert folder.name in LAYERS, f"visopt/{folder.name}/ has no layer in the architecture (tests and docs)"
        init = folder / "__init__.py"
        assert init.is_file(), f"visopt/{folder.name}/ is not a package"
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring and "belongs here" in docstring, \
            f"visopt/{folder.name}/__init__.py needs a docstring saying what belongs there"


def test_the_top_holds_the_public_face_and_a_few_private_helpers():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, f"{len(top)} modules at the top of visopt/: {top}"
    public = [name for name in top if not name.startswith("_")]
    assert public == [], f"only __init__, __main__ and private helpers live at the top; found {public}"


@pytest.mark.parametrize("importer, imported, allowed", [
    ("visopt.optvis.optimizer", "visopt.model.surgery", True),
    ("visopt.optvis.optimizer", "visopt.optvis.energy", True),
    ("visopt.optvis.optimizer", "visopt.attribution.engine", False),   # siblings
    ("visopt.model.layers", "visopt.render.images", False),            # siblings at the bottom
    ("visopt.frames.writer", "visopt.training.videos", False),         # upwards
    ("visopt.training.videos", "visopt.frames.writer", True),
    ("visopt._worker", "visopt._checks", False),                       # helpers import nothing of ours
    ("visopt.optvis.visualization", "visopt.Optimizer", False),        # the face is for users
    ("visopt.cli.render", "visopt.WeightSnapshot", True),
    ("visopt.__init__", "visopt.training", True),
])
def test_the_rule_itself(importer, imported, allowed):
    assert (_violation(importer, imported) is None) == allowed


def test_relative_imports_are_resolved():
    source = "from . import energy\nfrom ..attribution import engine\nfrom .energy import Term\n"
    found = [name for _, name in _imports(PACKAGE / "optvis" / "optimizer.py", source)]
    assert found == ["visopt.optvis.energy", "visopt.attribution", "visopt.optvis.energy"]
    assert _violation("visopt.optvis.optimizer", found[1]) is not None


#: The public names before the package move (issue 8): each must still import from ``visopt``.
NAMES_BEFORE_THE_MOVE = [
    "ActivationMaximization", "DeepDream", "Deconvnet", "Energy", "FrameWriter", "FrameWriterError", "GradCAM",
    "GradCAMPlusPlus", "Gradient", "GradientXInput", "GuidedBackprop", "ImageSpec", "IntegratedGradients", "Jitter",
    "LPNorm", "LayerCAM", "OptimizationResult", "Optimizer", "OptimizerCallback", "Pad", "ProgressBar",
    "ProgressRecorder", "RandomRotate", "RandomScale", "ScoreCAM", "SmoothGrad", "Term", "TermInputs",
    "TotalVariation", "Transform", "WeightHistory", "WeightSnapshot", "deprocess_image", "normalize_maps", "overlay",
    "stitch_images", "visualize_activation", "visualize_cam", "visualize_saliency",
]


def test_the_public_face_keeps_every_name():
    import visopt

    missing = [name for name in NAMES_BEFORE_THE_MOVE if name not in visopt.__all__ or not hasattr(visopt, name)]
    assert not missing, f"public names lost: {missing}"
    assert all(hasattr(visopt, name) for name in visopt.__all__)
    from visopt.metrics import pointing_game  # the metrics' old import path still works

    assert pointing_game is visopt.attribution.metrics.pointing_game
