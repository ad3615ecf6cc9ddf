"""The package's shape, checked from its source: layers only import downwards, no import cycles, condition names
parsed only at the edges, no module too long to read, codec behaviour in the table rather than in branches."""
import ast
from pathlib import Path

import pytest

import codecbench

PACKAGE = Path(codecbench.__file__).parent

ROOT = PACKAGE.parent


def _layers() -> list[list[str]]:
    """The layers as docs/architecture.md lists them (the folder listing is the layer diagram), lowest first: the
    entries of ``codecbench/`` that each line of the fenced block under ``<!-- layers`` names before its
    description."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("<!-- layers", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    layers = []
    for line in block.splitlines()[2:]:  # after the blank line and `codecbench/`
        names = []
        for word in line.split():
            if not (word.endswith("/") or word.endswith(".py")):
                break
            names.append(word.removesuffix("/").removesuffix(".py"))
        if names:
            layers.append(names)
    return layers


LAYERS = _layers()
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}

#: Where text becomes a Condition: the command line, pytest options, TOML/JSON files read back, and the public
#: functions of the codecs package (the Python API takes names too).
EDGES = {"cli", "plugin", "api", "aliases", "run/spec.py", "core/config.py", "codecs/matrix.py",
         "results/thresholds.py", "results/rows.py", "codecs/__init__.py", "codecs/table.py", "codecs/bitstream.py",
         "report/table.py", "augment/draw.py", "augment/transform.py"}

#: A hard ceiling well past the 400-line guide (docs/architecture.md): a module this long holds several ideas.
MAX_LINES = 600


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(["codecbench", *parts]), path, rel


MODULES = {name: (path, rel) for name, path, rel in _modules()}
#: each module's syntax tree, parsed once for every check here (each xdist worker collects this file)
TREES = {name: ast.parse(path.read_text()) for name, (path, _) in MODULES.items()}


def _top(rel: Path) -> str:
    return rel.parts[0].removesuffix(".py")


def _imports(name: str, path: Path) -> set[str]:
    """Every codecbench module ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(TREES[name]):
        targets = []
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
            targets = [f"{module}.{alias.name}" for alias in node.names] + [module]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            if target in MODULES and target != name:
                found.add(target)
                break
    return found


GRAPH = {name: _imports(name, path) for name, (path, _) in MODULES.items()}


def test_every_module_has_a_layer_and_every_layer_exists():
    """The listing in docs/architecture.md names every package and top-level module, and nothing else."""
    tops = {_top(rel) for _, rel in MODULES.values()}
    assert tops <= set(LAYER_OF), f"not in docs/architecture.md's listing: {sorted(tops - set(LAYER_OF))}"
    assert set(LAYER_OF) <= tops, f"listed but not in codecbench/: {sorted(set(LAYER_OF) - tops)}"
    assert len(LAYERS) >= 10, LAYERS  # the block was read, not an empty match


def test_the_top_level_stays_small():
    """Packages by stage, not a flat list: at most 30 entries (modules, packages and data folders) in codecbench/."""
    entries = [p.name for p in PACKAGE.iterdir() if p.name != "__pycache__" and not p.name.endswith(".pyc")]
    assert len(entries) <= 30, sorted(entries)


def test_no_import_runs_back_up_a_layer():
    upward = []
    for name, targets in GRAPH.items():
        here = LAYER_OF[_top(MODULES[name][1])]
        upward += [f"{name} -> {t}" for t in targets if LAYER_OF[_top(MODULES[t][1])] > here]
    assert not upward, "imports from a lower layer to a higher one: " + ", ".join(upward)


def test_no_import_cycles():
    seen, stack, cycles = {}, [], []

    def visit(node):
        seen[node] = "open"
        stack.append(node)
        for target in sorted(GRAPH[node]):
            if seen.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in seen:
                visit(target)
        stack.pop()
        seen[node] = "done"

    for node in sorted(GRAPH):
        if node not in seen:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _calls(path: Path, function: str) -> list[int]:
    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == function]


def test_condition_names_are_parsed_only_at_the_edges():
    below = [f"{rel}:{line}" for _, (path, rel) in MODULES.items()
             if _top(rel) not in EDGES and rel.as_posix() not in EDGES for line in _calls(path, "parse_condition")]
    assert not below, "parse_condition below the edge (pass Condition objects instead): " + ", ".join(below)


#: The benchmark path below the run that resolves availability: the session, the evaluator, the store, the results,
#: the report and the plugin's hooks take what the run found.
BELOW_THE_RUN = ("plugin", "report", "results", "store", "run/session.py", "run/evaluation.py")
#: Entry points of the store a caller may reach without a run (codecbench.store.fill.fill,
#: SplitInputs.available): each asks only for a condition it was given no answer for, once.
ASKS_FOR_DIRECT_CALLERS = {"store/fill.py": "(availability or {}).get(cond) or codecs.availability(cond)",
                           "store/split_inputs.py": "self.availability[cond] = codecs.availability(cond)"}


def test_availability_is_not_asked_again_below_the_run():
    """The run (codecbench/run/resolve.py) asks once per condition; every module below it on the benchmark path
    takes what it found (tests/test_run.py counts the asks of a whole session). The scan covers every module of
    those packages, and a fallback for direct callers is allowed only in the form it is written here."""
    scanned, again = 0, []
    for _, (path, rel) in MODULES.items():
        if not (_top(rel) in BELOW_THE_RUN or rel.as_posix() in BELOW_THE_RUN):
            continue
        scanned += 1
        lines = path.read_text().splitlines()
        for line in _calls(path, "availability"):
            allowed = ASKS_FOR_DIRECT_CALLERS.get(rel.as_posix())
            if allowed is None or allowed not in lines[line - 1]:
                again.append(f"{rel}:{line}")
    assert scanned >= 30, scanned  # the packages, not a handful of files
    assert not again, again


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_too_long_to_read(name):
    path, rel = MODULES[name]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{rel} has {lines} lines; split it by idea (at most {MAX_LINES})"


def test_the_codec_dispatcher_has_no_per_codec_branches():
    """Per-codec behaviour lives in the codec table or a backend file, never in `if cond.codec == ...`."""
    branches = []
    for name in ("__init__.py", "pyav.py", "backend.py", "bitstream.py"):
        for node in ast.walk(ast.parse((PACKAGE / "codecs" / name).read_text())):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "codec":
                branches.append(f"codecs/{name}:{node.lineno}")
    assert not branches, branches


def _resolves(target: str) -> bool:
    import importlib

    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def test_every_cross_reference_in_a_docstring_or_the_docs_names_something_that_exists():
    """A docstring pointing to ``codecbench.evaluate.Evaluator`` (which never existed) sent readers nowhere."""
    import re

    role = re.compile(r":(?:class|func|mod|meth|attr|data|exc):`~?(codecbench(?:\.\w+)+)`")
    dotted = re.compile(r"`(codecbench(?:\.\w+)+)")
    broken = [f"{rel}: {m.group(1)}" for _, (path, rel) in MODULES.items() for m in role.finditer(path.read_text())
              if not _resolves(m.group(1))]
    root = PACKAGE.parent
    # (the changelog names old paths on purpose)
    for doc in [root / "README.md", *sorted(d for d in (root / "docs").glob("*.md") if d.name != "changelog.md")]:
        text = doc.read_text()
        broken += [f"{doc.name}: {m.group(1)}" for m in dotted.finditer(text) if not _resolves(m.group(1))]
        broken += [f"{doc.name}: {m.group(0)}" for m in re.finditer(r"codecbench/[\w/]+\.py", text)
                   if not (root / m.group(0)).exists()]
    assert not broken


def test_a_test_skips_only_through_the_optional_module():
    """Every skip names its component (tests/optional.py), so ``CODECBENCH_REQUIRE`` can turn it into a failure;
    a bare ``pytest.skip``, ``importorskip`` or ``skipif`` could skip forever where CI believes it tests."""
    import re

    tests = PACKAGE.parent / "tests"
    bare = re.compile(r"pytest\.skip\(|importorskip\(|mark\.skipif\(|pytest\.mark\.skip\b")
    found = [f"{path.name}:{n}: {line.strip()}" for path in sorted(tests.glob("*.py")) if path.name != "optional.py"
             for n, line in enumerate(path.read_text().splitlines(), 1) if bare.search(line)]
    assert not found


def test_the_public_api_is_declared_importable_and_documented():
    """``codecbench.__all__`` is the public surface: each name resolves, and docs/api.md describes each one."""
    api = (PACKAGE.parent / "docs" / "api.md").read_text()
    undocumented = [name for name in codecbench.__all__ if f"codecbench.{name}" not in api and f"`{name}`" not in api]
    assert not undocumented
    assert all(getattr(codecbench, name) is not None for name in codecbench.__all__)


def test_the_lazy_package_face_is_typed_and_listed_once_for_each_reader():
    """``codecbench/__init__.py`` imports its public names on first use (_LAZY). Type checkers and editors read the
    ``if TYPE_CHECKING`` imports instead, and ``__all__`` names them: the three say the same, name for name and
    module for module."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    typed = {}
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom), ast.unparse(imp)
                typed.update({alias.name: imp.module for alias in imp.names})
    lazy = {name: f"codecbench.{module}" for name, (module, attribute) in codecbench._LAZY.items()
            if attribute == name}
    assert typed == lazy and len(lazy) == len(codecbench._LAZY)
    assert set(lazy) <= set(codecbench.__all__)


def test_command_options_are_checked_by_the_run_specifications_validators():
    """One family of validators (``codecbench/run/spec.py``'s ``to_*``): a bare ``type=float`` accepts -1 or nan."""
    import re

    bare = [f"{rel}:{n}" for _, (path, rel) in MODULES.items() if _top(rel) == "cli"
            for n, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"type=(int|float)\b", line)]
    assert not bare


#: Libraries whose import is slow (about 0.05 s or more: Keras 4 s, JAX 1 s, SciPy's signal and stats 0.6 s, pandas,
#: matplotlib, dask, PyAV, ...) or optional: a function may import them (or a module that imports them) when it
#: needs them, so `codecbench --help`, the pytest plugin in unrelated runs and reading a zoo stay fast.
SLOW_OR_OPTIONAL = {"keras", "tensorflow", "jax", "jaxlib", "torch", "matplotlib", "pandas", "dask", "distributed",
                    "scipy", "joblib", "onnxruntime", "onnx", "numba", "sklearn", "librosa", "audiomentations", "lc3",
                    "av", "h5py", "pytest", "_pytest", "xdist", "selenium", "psutil", "pytest_benchmark",
                    "transformers", "huggingface_hub",
                    # imports Keras when it is imported (quietly, with the chosen backend)
                    "codecbench.core.backend"}


def _lazy_exports() -> dict[str, dict[str, str]]:
    """Packages that import their attributes on first use (``_EXPORTS``): attribute -> the module it comes from."""
    lazy = {}
    for name, (path, _) in MODULES.items():
        for node in TREES[name].body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_EXPORTS" for t in node.targets):
                lazy[name] = {k: f"{name}.{v}" for k, v in ast.literal_eval(node.value).items()}
    return lazy


LAZY = _lazy_exports()


def _targets(name: str, path: Path, node) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    module = node.module or ""
    if node.level:
        module = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([module] if module else []))
    found = []
    for alias in node.names:
        full = LAZY.get(module, {}).get(alias.name, f"{module}.{alias.name}")
        found.append(full if full in MODULES else module)
    return found


def _module_level_imports(tree) -> list:
    """The imports that run when a module is imported (not those of functions, nor of ``if TYPE_CHECKING``)."""
    found = []

    def walk(statements):
        for node in statements:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                walk(node.body + node.orelse)
            elif isinstance(node, ast.Try):
                walk(node.body + [s for h in node.handlers for s in h.body] + node.orelse + node.finalbody)
    walk(tree.body)
    return found


LOADS = {name: {t for node in _module_level_imports(TREES[name]) for t in _targets(name, MODULES[name][0], node)}
         for name in MODULES}


def _slow(module: str, seen: frozenset = frozenset()) -> bool:
    """Whether importing ``module`` imports a slow or optional library (through the modules it imports)."""
    if module in SLOW_OR_OPTIONAL or module.split(".")[0] in SLOW_OR_OPTIONAL:
        return True
    if module not in MODULES or module in seen:
        return False
    parents = [".".join(module.split(".")[:i]) for i in range(2, len(module.split(".")))]
    return any(_slow(t, seen | {module}) for t in list(LOADS[module]) + parents)


def test_a_function_imports_only_what_is_slow_or_optional_to_import():
    """Everything else is imported at the top of the module, where a reader looks for a module's dependencies
    (``codecbench/__init__.py`` is lazy by design; an import inside ``try`` is an optional one)."""
    light = []
    for name, (path, rel) in MODULES.items():
        if name == "codecbench":
            continue
        tree = TREES[name]
        inside_try = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try) for n in ast.walk(t)}
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in inside_try \
                        and not any(_slow(t) for t in _targets(name, path, node)):
                    light.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
    assert not light, "imports inside functions of modules quick to import (move them to the top): " + \
        "; ".join(sorted(set(light)))


def test_importing_codecbench_changes_no_environment_variable():
    """`import codecbench` is light and leaves the process as it was: no environment variable set (TensorFlow's log
    level is set where Keras is imported, codecbench.core.backend, and a user's own setting wins there)."""
    import subprocess
    import sys

    code = ("import os; before = dict(os.environ); import codecbench, codecbench.plugin; "
            "changed = sorted(set(os.environ.items()) ^ set(before.items())); print(changed); "
            "assert not changed, changed")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def _imports_of(module: str, seen: set | None = None) -> set[str]:
    """Every module (and library) that importing ``module`` imports, through codecbench's own modules."""
    seen = set() if seen is None else seen
    for target in LOADS.get(module, ()):
        if target not in seen:
            seen.add(target)
            _imports_of(target, seen)
    for i in range(2, len(module.split("."))):  # importing a.b.c imports a.b first
        parent = ".".join(module.split(".")[:i])
        if parent not in seen:
            seen.add(parent)
            _imports_of(parent, seen)
    return seen


FRAMEWORKS = {"keras", "tensorflow", "jax", "torch", "transformers", "codecbench.core.backend"}


def _frameworks_of(module: str) -> set[str]:
    """The machine-learning frameworks that importing ``module`` imports."""
    return {m for m in _imports_of(module) if m in FRAMEWORKS or m.split(".")[0] in FRAMEWORKS}


def test_the_process_that_codes_beside_the_trainings_loads_no_framework():
    """reproduce's fill beside its trainings runs in a spawned process that imports codecbench.store.beside: were a
    framework imported there, it would cost seconds of the cores the fill is for (and, with a GPU build, claim the
    device)."""
    assert not _frameworks_of("codecbench.store.beside")
    assert "codecbench.store.fill" in _imports_of("codecbench.store.beside")  # the walk follows the imports


#: Modules whose functions are sent to worker processes (clip writers, fills, synthetic generation) and the
#: benchmarks that time coding alone.
WORKER_MODULES = ("codecbench.bench.scratch", "codecbench.store.fill", "codecbench.datasets.synthetic",
                  "codecbench.bench.codec_speed", "codecbench.bench.feed", "codecbench.bench.fill",
                  "codecbench.bench.plan_check")


@pytest.mark.parametrize("module", WORKER_MODULES)
def test_work_sent_to_worker_processes_loads_no_framework(module):
    """A worker process imports the module its task's function comes from, with that module's packages: when
    ``codecbench.bench`` imported every benchmark, each clip writer of ``bench feed`` imported TensorFlow (seconds of
    a core, hundreds of MB) to write WAV files."""
    assert not _frameworks_of(module), (module, _frameworks_of(module))
