from __future__ import annotations

import driftloop
from driftloop import errors


def test_public_api_is_complete_and_sorted() -> None:
    # isort-style, as ruff keeps it: constants, then classes, then functions, each sorted.
    kinds = sorted(driftloop.__all__, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n))
    assert driftloop.__all__ == kinds
    assert all(hasattr(driftloop, name) for name in driftloop.__all__)


def test_every_error_is_a_driftloop_error_and_in_the_tree_docstring() -> None:
    for name in errors.__all__:
        error = getattr(errors, name)
        if isinstance(error, type) and issubclass(error, Exception):
            assert issubclass(error, errors.DriftloopError)
            assert name in (errors.__doc__ or "")


def test_every_public_error_is_exported_from_the_package() -> None:
    raised = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.DriftloopError) and not name.startswith("_")
    }
    assert raised <= set(errors.__all__), sorted(raised - set(errors.__all__))
    assert raised <= set(driftloop.__all__), sorted(raised - set(driftloop.__all__))
    assert errors.__all__ == sorted(errors.__all__)


def test_importing_driftloop_loads_neither_torch_nor_mlflow() -> None:
    import subprocess
    import sys

    code = "import sys, driftloop; print(sorted(m for m in ('torch', 'mlflow', 'fastapi') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
