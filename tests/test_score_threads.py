"""Probes train with torch's threads set by one rule (scoring/threads.py), the caller's restored."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from labelaudit.scoring import probes, threads  # noqa: E402  (after the torch check)


@pytest.fixture
def caller_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A caller who set torch to 3 threads, no thread variables in the environment."""
    for name in threads.USER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    original = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(original)


def test_small_probes_train_on_one_thread_and_the_caller_gets_its_count_back(
    caller_threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real_fit = probes.fit_probe

    def spy_fit(*args):
        seen.append(torch.get_num_threads())
        return real_fit(*args)

    monkeypatch.setattr(probes, "fit_probe", spy_fit)
    monkeypatch.setattr(threads, "available_cpus", lambda: 8)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(120, 8)).astype(np.float32)
    labels = rng.integers(0, 3, size=120)
    settings = probes.ProbeSettings(max_epochs=2)
    probes.cross_val_predict(features, labels, 3, 3, settings, torch.device("cpu"))
    assert seen == [1, 1, 1]  # 32 rows x 8 x 3 multiply-adds a step: one thread
    assert torch.get_num_threads() == caller_threads


def test_the_rule(caller_threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    per = threads.WORK_PER_THREAD
    monkeypatch.setattr(threads, "available_cpus", lambda: 8)
    assert threads.threads_for(per - 1, caller_threads) == 1
    assert threads.threads_for(2 * per, caller_threads) == 2
    assert threads.threads_for(50 * per, caller_threads) == 3  # never more than the caller's
    assert threads.threads_for(50 * per, 16) == 8  # nor than the CPUs
    with threads.torch_threads(2 * per) as inside:
        assert inside == torch.get_num_threads() == 2
    assert torch.get_num_threads() == caller_threads
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice is obeyed as torch read it
    with threads.torch_threads(1) as inside:
        assert inside == torch.get_num_threads() == caller_threads


def test_the_threads_are_restored_when_training_fails(caller_threads: int) -> None:
    with pytest.raises(RuntimeError), threads.torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("a probe failed")
    assert torch.get_num_threads() == caller_threads


def test_numpy_blas_is_left_alone(caller_threads: int) -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas() -> list[int]:
        pools = threadpoolctl.threadpool_info()
        return [pool["num_threads"] for pool in pools if pool["user_api"] == "blas"]

    outside = blas()
    with threads.torch_threads(1):
        assert blas() == outside


def test_step_work_counts_a_mini_batch() -> None:
    linear, mlp = probes.ProbeSettings(), probes.ProbeSettings(kind="mlp", hidden=256)
    assert probes.step_work(1293, 64, 10, linear) == 64 * 64 * 10  # digits: a twentieth a step
    assert probes.step_work(72_000, 512, 100, linear) == 1024 * 512 * 100
    assert probes.step_work(1293, 64, 10, mlp) == 64 * (64 * 256 + 256 * 10)
