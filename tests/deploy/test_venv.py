"""The virtual environment `make venv` builds holds the bytecode of the libraries a
worker imports. Where PYTHONDONTWRITEBYTECODE is set (CI, this project's image),
Python never writes it, so without it every worker start compiled faust, fastapi,
pydantic and the rest from source: 2.1 s of CPU per start instead of 0.9 s, which
on 2 busy cores pushed SIGKILLed workers past the 10 s restart target."""

import importlib
import importlib.util
from pathlib import Path

import pytest

LIBRARIES = ["faust", "mode", "fastapi", "pydantic", "aiokafka", "kafka", "aiohttp", "rocksdict", "starlette"]


@pytest.mark.parametrize("name", LIBRARIES)
def test_a_worker_s_libraries_are_installed_with_their_bytecode(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    if not module.__file__.endswith(".py"):
        pytest.skip(f"{name} is an extension module")
    cached = Path(importlib.util.cache_from_source(module.__file__))
    assert cached.exists(), f"{name} has no bytecode at {cached}: install with UV_COMPILE_BYTECODE=1"
