"""One error family: every exception codecbench raises on purpose derives from CodecbenchError (the command
line catches that base class alone, so anything else is a bug that shows its traceback)."""
import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import codecbench
from codecbench.errors import CodecbenchError

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
