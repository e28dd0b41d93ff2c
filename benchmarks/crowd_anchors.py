"""The anchors of benchmarks/crowd_real.py, run inside their own virtual environment (never a
dependency of labelaudit): crowd-kit's Dawid-Skene, One-coin Dawid-Skene, GLAD and MACE, and
cleanlab's CROWDLAB (with a model's probabilities). It reads one crowd from an .npz file and
writes each method's consensus labels and annotator skills to another .npz file.

    /tmp/crowdkit-venv/bin/python benchmarks/crowd_anchors.py IN.npz OUT.npz METHOD...

IN.npz holds `item`, `annotator`, `label` (aligned integer arrays), `n_items`, `n_annotators`,
`n_classes`, and, for CROWDLAB, `pred_probs` (items x classes). OUT.npz holds, per method,
`{method}_labels` (items; -1 where the method gave none) and `{method}_skill` (annotators; NaN
where none), and `{method}_seconds`. CROWDLAB also writes `crowdlab_quality` (its consensus
quality score per item).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pandas as pd


def crowdkit(method: str, frame: pd.DataFrame, n_items: int, n_annotators: int, k: int) -> dict:
    from crowdkit import aggregation

    model = {
        "ds": lambda: aggregation.DawidSkene(n_iter=100, tol=1e-5),
        "onecoin": lambda: aggregation.OneCoinDawidSkene(n_iter=100, tol=1e-5),
        "glad": lambda: aggregation.GLAD(n_iter=100, tol=1e-5),
        "mace": lambda: aggregation.MACE(n_restarts=3, n_iter=50, random_state=0),
    }[method]()
    model.fit(frame)
    labels = np.full(n_items, -1)
    found = model.labels_
    labels[found.index.to_numpy().astype(int)] = found.to_numpy().astype(int)
    skill = np.full(n_annotators, np.nan)
    if method == "glad":
        skill[model.alphas_.index.to_numpy().astype(int)] = model.alphas_.to_numpy()
    elif method == "mace":
        workers = pd.factorize(frame["worker"])[1].to_numpy().astype(int)
        skill[workers] = model.spamming_[:, 1]  # P(the worker knows: copies the true label)
    else:
        errors = model.errors_  # index (worker, label given), columns the true label
        priors = model.priors_
        for c in errors.columns:
            block = errors[c].xs(c, level="label") if c in errors.index.levels[1] else None
            if block is not None:
                where = block.index.to_numpy().astype(int)
                skill[where] = np.nan_to_num(skill[where]) + priors[c] * block.to_numpy()
    return {"labels": labels, "skill": skill}


def crowdlab(frame: pd.DataFrame, probs: np.ndarray, n_annotators: int) -> dict:
    from cleanlab.multiannotator import get_label_quality_multiannotator

    wide = frame.pivot(index="task", columns="worker", values="label")
    wide = wide.reindex(index=np.arange(probs.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = get_label_quality_multiannotator(wide, probs, verbose=False)
    quality = result["label_quality"]
    skill = np.full(n_annotators, np.nan)
    stats = result["annotator_stats"]
    skill[stats.index.to_numpy().astype(int)] = stats["annotator_quality"].to_numpy()
    return {
        "labels": quality["consensus_label"].to_numpy().astype(int),
        "skill": skill,
        "quality": quality["consensus_quality_score"].to_numpy(),
    }


def main() -> None:
    source, target, *methods = sys.argv[1:]
    data = np.load(source)
    frame = pd.DataFrame(
        {"task": data["item"], "worker": data["annotator"], "label": data["label"]}
    )
    n_items, n_annotators, k = (int(data[x]) for x in ("n_items", "n_annotators", "n_classes"))
    out: dict[str, np.ndarray] = {}
    for method in methods:
        started = time.perf_counter()
        if method == "crowdlab":
            found = crowdlab(frame, data["pred_probs"], n_annotators)
        else:
            found = crowdkit(method, frame, n_items, n_annotators, k)
        out[f"{method}_seconds"] = np.array(time.perf_counter() - started)
        for key, value in found.items():
            out[f"{method}_{key}"] = value
    np.savez(target, **out)


if __name__ == "__main__":
    main()
