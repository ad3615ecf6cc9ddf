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
