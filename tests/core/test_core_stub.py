"""python/htsr/_core.pyi against the compiled module: the same public names, and every function's parameters
(names and order) as the module's own signatures state them, so the stub cannot fall behind the bindings."""
import ast
import re
from pathlib import Path

import pytest
from htsr import _core as core

STUB = Path(core.__file__).with_name("_core.pyi")


def stub_definitions():
    """{name: [parameter names]} of the stub's functions and of its classes' methods (as 'Class.method')."""
    tree = ast.parse(STUB.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = [a.arg for a in node.args.args + node.args.kwonlyargs]
        elif isinstance(node, ast.ClassDef):
            out[node.name] = None
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    out[f"{node.name}.{item.name}"] = [a.arg for a in item.args.args + item.args.kwonlyargs]
    return out


def module_parameters(function):
    """Parameter names from the signature line pybind11 writes at the top of a docstring."""
    head = function.__doc__.splitlines()[0]
    inside = head[head.index("(") + 1:head.rindex(")")]
    names, depth, current = [], 0, ""
    for char in inside + ",":
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            if current.strip():
                names.append(re.match(r"\s*(\w+)", current).group(1))
            current = ""
        else:
            current += char
    return names


def public_names(namespace):
    return {name for name in dir(namespace) if not name.startswith("_")}


def test_stub_names_equal_the_module_names():
    stub_names = {name for name in stub_definitions() if "." not in name}
    assert stub_names == public_names(core)


@pytest.mark.parametrize("name", sorted(n for n, params in stub_definitions().items() if params is not None))
def test_stub_parameters_equal_the_module_signature(name):
    owner, _, attr = name.rpartition(".")
    function = getattr(getattr(core, owner), attr) if owner else getattr(core, name)
    assert stub_definitions()[name] == module_parameters(function)


def test_stub_classes_declare_every_public_method():
    for name, params in stub_definitions().items():
        if params is None:
            cls = getattr(core, name)
            declared = {key.split(".", 1)[1] for key in stub_definitions() if key.startswith(name + ".")}
            assert public_names(cls) | {"__init__"} == declared
