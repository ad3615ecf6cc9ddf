"""One error family: every exception codecbench raises on purpose derives from CodecbenchError (the command
line catches that base class alone, so anything else is a bug that shows its traceback)."""
import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import codecbench
from codecbench.errors import CodecbenchError, UsageError

PACKAGE = Path(codecbench.__file__).parent
BUILTIN = {"Exception", "ValueError", "RuntimeError", "TypeError", "KeyError", "OSError", "IndexError",
           "AttributeError", "LookupError", "IOError", "NotImplementedError", "AssertionError"}


def test_no_builtin_exception_is_raised_on_purpose():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        # a module's __getattr__ must raise AttributeError: that is Python's protocol, not an error of ours
        protocol = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
                    for n in ast.walk(f)}
        for node in ast.walk(tree):
            if id(node) not in protocol and isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                    and isinstance(node.exc.func, ast.Name) and node.exc.func.id in BUILTIN:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} raise {node.exc.func.id}")
    assert not found, "raise a CodecbenchError subclass instead:\n" + "\n".join(found)


def test_every_exception_class_of_the_package_is_a_codecbench_error():
    stray = []
    for info in pkgutil.walk_packages([str(PACKAGE)], "codecbench."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == module.__name__ and issubclass(obj, Exception) \
                    and not issubclass(obj, Warning) and not issubclass(obj, CodecbenchError):
                stray.append(f"{info.name}.{name}")
    assert not stray, stray


def _error_classes():
    for info in pkgutil.walk_packages([str(PACKAGE)], "codecbench."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == module.__name__ and issubclass(obj, CodecbenchError):
                yield obj


def test_every_error_belongs_to_exactly_one_family():
    """Usage, data, model, codec, cache, environment: what the user does about it (codecbench/errors.py)."""
    from codecbench.errors import FAMILIES

    classes = set(_error_classes())
    assert set(FAMILIES) <= classes
    wrong = {f"{c.__module__}.{c.__name__}": [f.__name__ for f in FAMILIES if issubclass(c, f)]
             for c in classes - {CodecbenchError} if sum(issubclass(c, f) for f in FAMILIES) != 1}
    assert not wrong, wrong


def _message_only(call: ast.Call, name: str | None) -> bool:
    """Whether ``call`` passes on the caught error's message alone: ``X(str(exc))``, ``X(exc)``, ``X(f"{exc}")``."""
    if len(call.args) != 1 or name is None:
        return False
    arg = call.args[0]
    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "str" and arg.args:
        arg = arg.args[0]
    if isinstance(arg, ast.JoinedStr) and len(arg.values) == 1 and isinstance(arg.values[0], ast.FormattedValue):
        arg = arg.values[0].value
    return isinstance(arg, ast.Name) and arg.id == name


def test_no_error_is_re_raised_as_a_family_it_already_belongs_to():
    """``except ThresholdError as exc: raise UsageError(str(exc))`` changes nothing but loses the class; such
    re-wraps are refused (a re-raise whose message adds context, the option at fault, is fine)."""
    by_name = {c.__name__: c for c in _error_classes()}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for handler in ast.walk(ast.parse(path.read_text())):
            if not isinstance(handler, ast.ExceptHandler) or handler.type is None:
                continue
            caught = [by_name.get(n.id) for n in ast.walk(handler.type) if isinstance(n, ast.Name)]
            raised = [by_name.get(n.exc.func.id) for node in handler.body for n in ast.walk(node)
                      if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call) and isinstance(n.exc.func, ast.Name)
                      and _message_only(n.exc, handler.name)]
            for c in caught:
                for r in raised:
                    if c is not None and r is not None and issubclass(c, r):
                        found.append(f"{path.relative_to(PACKAGE)}:{handler.lineno}: {c.__name__} -> {r.__name__}")
    assert not found, found


def _family(cls):
    from codecbench.errors import FAMILIES

    return next((f for f in FAMILIES if issubclass(cls, f)), None)


def test_no_error_becomes_a_usage_error():
    """An error met while using an option's value keeps its family (a results file that cannot be read stays a
    DataError under --baseline, a scheduler that does not answer an EnvironmentProblem): the option is noted on it
    (errors.noted), never a usage error built from its message. (A value read from a file may become the file's
    DataError: the file is what to fix.)"""
    by_name = {c.__name__: c for c in _error_classes()}
    moved = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for handler in ast.walk(ast.parse(path.read_text())):
            if not isinstance(handler, ast.ExceptHandler) or handler.type is None or handler.name is None:
                continue
            caught = [by_name[n.id] for n in ast.walk(handler.type) if isinstance(n, ast.Name) and n.id in by_name]
            for node in handler.body:
                for n in ast.walk(node):
                    if not (isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call)
                            and isinstance(n.exc.func, ast.Name) and n.exc.func.id in by_name):
                        continue
                    uses_caught = any(isinstance(a, ast.Name) and a.id == handler.name
                                      for arg in n.exc.args for a in ast.walk(arg))
                    raised = _family(by_name[n.exc.func.id])
                    for c in caught:
                        if uses_caught and raised is UsageError and _family(c) not in (None, UsageError):
                            moved.append(f"{path.relative_to(PACKAGE)}:{n.lineno}: {c.__name__} -> "
                                         f"{n.exc.func.id}")
    assert not moved, moved


def test_the_edges_print_the_option_noted_on_an_error_of_its_own_family(tiny, tmp_path, capsys):
    import pytest

    from codecbench.cli import main
    from codecbench.errors import message
    from codecbench.run.resolve import Run
    from codecbench.run.spec import RunSpec
    from codecbench.zoo import ZooError

    options = {"model": ["nosuch"], "model_dir": str(tiny["zoo"].root), "dataset": tiny["spec"],
               "cache_dir": str(tiny["cache"].root), "results": str(tmp_path / "out")}
    with pytest.raises(ZooError) as raised:  # a model's problem, not turned into a usage error
        Run.resolve(RunSpec.build(options, use_pyproject=False))
    assert message(raised.value).startswith("--model: unknown model 'nosuch'")
    assert "codecbench option: --model" in raised.value.__notes__  # shown under a Python caller's traceback
    assert main(["diagnose", "--model", "nosuch", "--condition", "mp3@32", "--model-dir", options["model_dir"],
                 "--dataset", tiny["spec"], "--cache-dir", options["cache_dir"]]) == 2
    assert "codecbench diagnose: error: --model: unknown model 'nosuch'" in capsys.readouterr().err
