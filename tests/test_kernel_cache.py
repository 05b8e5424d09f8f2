"""A run says "compiling" only when numba's cache lacks ibtui's kernels."""

from __future__ import annotations

from ibtui.engine import kernel_cache


def test_the_cache_check_reads_the_package_caches(tmp_path, monkeypatch):
    for folder in ("engine", "estimators"):
        (tmp_path / folder / "__pycache__").mkdir(parents=True)
    monkeypatch.setattr(kernel_cache, "_PACKAGE", tmp_path)
    assert not kernel_cache.kernels_cached()
    assert kernel_cache.waiting_message().startswith("compiling kernels on a first run")
    (tmp_path / "engine" / "__pycache__" / "step_cpu.train_steps-469.py311.nbi").write_bytes(b"")
    assert not kernel_cache.kernels_cached()  # the KDE's kernel is still missing
    (tmp_path / "estimators" / "__pycache__" / "_kde_cpu.triangle_sums-77.py311.nbi").write_bytes(b"")
    assert kernel_cache.kernels_cached()
    assert kernel_cache.waiting_message(short=True) == "loading the compiled kernels"


def test_the_kernels_named_exist():
    # The names the check looks for must be real kernels of this package.
    from ibtui.engine import step_cpu
    from ibtui.estimators import _kde_cpu

    assert callable(step_cpu.train_steps) and callable(_kde_cpu.triangle_sums)
    assert [stem.split(".")[0] for _, stem in kernel_cache._KERNELS] == ["step_cpu", "_kde_cpu"]
