"""Shared fixtures. Real-data tests run when HAM10000_DIR points at the real HAM10000."""

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# Never write caches into the user's home from tests.
os.environ.setdefault("SKINLAB_CACHE", tempfile.mkdtemp(prefix="skinlab-test-cache-"))


def pytest_configure(config):
    import torch

    # Two cores: keep intra-op threads bounded so parallel helpers don't oversubscribe.
    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def ham_dir() -> Path:
    """The real HAM10000 folder, or skip (set HAM10000_DIR to run these tests)."""
    from skinlab.data import ENV_VAR

    d = os.environ.get(ENV_VAR)
    if not d or not (Path(d) / "HAM10000_metadata.csv").is_file():
        pytest.skip(f"{ENV_VAR} is not set to the real dataset")
    return Path(d)


@pytest.fixture(scope="session")
def real_metadata(ham_dir):
    from skinlab.data import load_metadata

    return load_metadata(ham_dir)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A small synthetic HAM10000-format sample, made once per session (read-only use)."""
    from skinlab.data import make_synthetic_ham10000

    root = tmp_path_factory.mktemp("synth") / "ham"
    return make_synthetic_ham10000(root, n_images=300, seed=0, image_size=(64, 48), progress=False)


@pytest.fixture(scope="session")
def book_extension():
    """``load(name)``: import one of the book's Sphinx extensions, ``book/_ext/<name>.py``."""
    import importlib
    import sys

    folder = str(Path(__file__).resolve().parents[1] / "book" / "_ext")

    def load(name: str):
        sys.path.insert(0, folder)
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(folder)

    return load


@pytest.fixture
def one_torch_thread():
    """Tiny models: one thread is fastest, and on a busy 2-core machine much faster than two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """Caches in the test's own folder, and the synthetic sample unless a test says otherwise."""
    monkeypatch.setenv("SKINLAB_CACHE", str(tmp_path / "cache"))
    from skinlab.data import ENV_VAR

    monkeypatch.delenv(ENV_VAR, raising=False)
