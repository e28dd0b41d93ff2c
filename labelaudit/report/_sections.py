"""A report's sections as lines, shared by the text and markdown renderers (formatting only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labelaudit._text import count, pair_arrow, seen_once
from labelaudit.report._format import MAX_TABLE_CLASSES, names_list, num, pct, rate, times

MAX_PAIRS = 20  # anomalous class pairs every human format lists; the rest are counted, in the JSON
MAX_CONFUSED = 20  # confused (given, predicted) pairs a text or markdown list shows


def headline(data: dict[str, Any]) -> list[str]:
    ds = data["dataset"]
    lines = [
        f"labelaudit scan: {ds['source']}",
        f"  {count(ds['n_samples'], 'sample')}, {count(ds['n_classes'], 'class')}, {ds['task']}"
        + (
            f" ({count(ds['null_labels'], 'row')} with no label left out)"
            if ds["null_labels"]
            else ""
        ),
    ]
    if ds["predictions"]:
        mode = data["metrics"]["score_mode"] if data["metrics"] else ""
        lines.append(f"  predictions: {ds['predictions']} (read as {mode})")
    return lines


def imbalance_ratio(data: dict[str, Any]) -> tuple[str, str]:
    """The imbalance ratio and what it is of, for every format: the ratio is of the classes
    with samples, and when some classes have none, that says how many it is of
    ("1.00", "largest / smallest of the 50 classes with samples; 4,950 have none")."""
    imb = data["imbalance"]
    empty = len(imb["zero_support_classes"])
    ratio = "n/a" if imb["ratio"] is None else num(imb["ratio"], 2)
    if not empty:
        return ratio, "largest / smallest non-empty class"
    present = len(data["support"]["per_class"]) - empty
    return ratio, (
        f"largest / smallest of the {count(present, 'class')} with samples; {empty:,} "
        f"{'has' if empty == 1 else 'have'} none"
    )


def support_summary(data: dict[str, Any]) -> list[str]:
    imb, dup = data["imbalance"], data["duplicates"]
    ratio, of = imbalance_ratio(data)
    lines = [
        f"imbalance ratio {ratio} ({of})",
        f"normalized entropy {num(imb['normalized_entropy'], 3)}, "
        f"effective classes {num(imb['effective_classes'], 2)}",
        f"rare classes (< {imb['min_support']}): {names_list(imb['rare_classes'])}; "
        f"zero-support classes: {names_list(imb['zero_support_classes'])}",
        f"duplicate ids: {dup['duplicate_ids']:,} ({dup['duplicate_rows']:,} rows); "
        f"conflicting: {dup['conflicting_ids']:,}",
    ]
    ml = data["multilabel"]
    if ml:
        pairs = ", ".join(
            f"{p['classes'][0]}+{p['classes'][1]} ({p['count']})" for p in ml["top_pairs"][:5]
        )
        lines += [
            f"label cardinality {ml['cardinality']:.3f}, density {ml['density']:.4f}, "
            f"max labels per sample {ml['max_labels_per_sample']}, "
            f"samples without label {ml['samples_without_label']:,}",
            f"most frequent label pairs: {pairs or 'none'}",
        ]
    return lines


def shown_support(data: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The support rows a human table lists: every class, or with many classes the
    MAX_TABLE_CLASSES smallest (the rare ones matter), and a note saying so."""
    return _first_classes(data["support"]["per_class"], "count", "smallest")


def shown_metric_classes(metrics: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The per-class metric rows a human table lists: every class, or with many classes the
    MAX_TABLE_CLASSES lowest F1, and a note saying so."""
    return _first_classes(metrics["per_class"], "f1", "lowest F1")


def shown_diff_support(data: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The support rows of a diff a human table lists: every class, or with many classes the
    MAX_TABLE_CLASSES that changed most, and a note saying so."""
    return _first_classes(data["support"], lambda c: -abs(c["delta"]), "most changed", name="class")


def shown_thresholds(data: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The per-class thresholds a human table lists: every class, or with many classes the
    MAX_TABLE_CLASSES whose precision and recall move most, and a note saying so."""

    def moved(c: dict[str, Any]) -> float:
        change = abs((c["precision_after"] or 0) - (c["precision_before"] or 0))
        return -(change + abs((c["recall_after"] or 0) - (c["recall_before"] or 0)))

    return _first_classes(data["per_class"], moved, "most moved (precision and recall)")


def _first_classes(
    rows: list[dict[str, Any]], key: str | Any, which: str, name: str = "class"
) -> tuple[list[dict[str, Any]], str | None]:
    if len(rows) <= MAX_TABLE_CLASSES:
        return rows, None
    value = key if callable(key) else (lambda c: c[key])
    first = sorted(rows, key=lambda c: (value(c), c[name]))[:MAX_TABLE_CLASSES]
    note = (
        f"the {MAX_TABLE_CLASSES} {which} of {len(rows):,} classes; --format json lists every class"
    )
    return first, note


def metric_rows(metrics: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    shown, _ = shown_metric_classes(metrics)
    rows = [
        (c["class"], num(c["precision"]), num(c["recall"]), num(c["f1"]), f"{c['support']:,}")
        for c in shown
    ]
    total = sum(c["support"] for c in metrics["per_class"])
    for name in ("micro", "macro", "weighted"):
        avg = metrics[name]
        rows.append(
            (
                f"{name} avg",
                num(avg["precision"]),
                num(avg["recall"]),
                num(avg["f1"]),
                f"{total:,}",
            )
        )
    return rows


def scalar_metrics(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    if "cp" in metrics:
        return [
            ("threshold (predicted when p >= t)", num(metrics["threshold"], 2)),
            ("subset accuracy", num(metrics["subset_accuracy"])),
            ("hamming loss", num(metrics["hamming_loss"])),
            ("CP / CR / CF1", " / ".join(num(metrics[k]) for k in ("cp", "cr", "cf1"))),
            ("OP / OR / OF1", " / ".join(num(metrics[k]) for k in ("op", "or", "of1"))),
            ("mAP", num(metrics["mean_average_precision"])),
        ]
    return [
        ("accuracy", num(metrics["accuracy"])),
        ("balanced accuracy", num(metrics["balanced_accuracy"])),
        ("top-5 accuracy", num(metrics["top_5_accuracy"])),
        ("log loss", num(metrics["log_loss"])),
        ("expected calibration error (15 bins)", num(metrics["expected_calibration_error"])),
    ]


def models_lines(models: dict[str, Any]) -> list[str]:
    """One line per model: its weight in the combination and its own figures."""
    out = []
    for m in models["members"]:
        figures = [f"weight {m['weight']:.3f}", f"scores read as {m['score_mode']}"]
        if m["accuracy"] is not None:
            figures += [
                f"accuracy {num(m['accuracy'])}",
                f"macro F1 {num(m['macro_f1'])}",
                f"log loss {num(m['log_loss'])}",
            ]
        out.append(f"{m['source']}: " + ", ".join(figures))
    out.append(f"weights: {models['weighting'].replace('_', ' ')}")
    return out


def suspect_rows(issues: dict[str, Any]) -> list[list[str]]:
    ensemble = from_models(issues)
    return [
        [
            str(s["rank"]),
            str(s["id"]),
            f"{s['given_label']} -> {s['suggested_label']}",
            num(s["label_quality"], 3),
            num(s["given_probability"], 3),
            num(s["suggested_probability"], 3),
        ]
        + ([str(s["n_models_disagree"])] if ensemble else [])
        for s in issues["top_suspects"]
    ]


def from_models(issues: dict[str, Any]) -> bool:
    """Whether the suspects come from several models (they then say how many disagree)."""
    return any(s.get("n_models_disagree") is not None for s in issues["top_suspects"])


def suspect_header(issues: dict[str, Any]) -> list[str]:
    """The suspects table's columns; with several models, how many disagree with the label."""
    return SUSPECT_HEADER + (["models against"] if from_models(issues) else [])


SUSPECT_HEADER = ["rank", "id", "given -> suggested", "quality", "p(given)", "p(suggested)"]


def issues_summary(issues: dict[str, Any]) -> list[str]:
    return [
        f"{count(issues['n_suspects'], 'suspected label error')} "
        f"({rate(issues['suspect_rate'])} of "
        f"{issues['n_scored']:,} scored; rule {issues['rule']}, "
        f"ranked by {issues['quality_score']})",
        f"estimated label errors {issues['estimated_errors']:,} "
        f"({error_interval(issues)}noise rate {rate(issues['estimated_noise_rate'])}); "
        f"label health {issues['health_score']:.3f}",
    ]


def error_interval(issues: dict[str, Any]) -> str:
    """`likely 1,920 to 4,660; ` inside the parentheses after the estimate, when the report
    has an interval (every human format says it the same way)."""
    low, high = issues.get("estimated_errors_low"), issues.get("estimated_errors_high")
    if low is None or high is None:
        return ""
    weak = ", weak evidence" if issues.get("weak_evidence") else ""
    return f"likely {low:,} to {high:,}{weak}; "


def shown_pairs(issues: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The anomalous class pairs every human format lists (text, markdown, HTML: one rule): the
    first MAX_PAIRS, largest first, and a note counting the others when there are more."""
    pairs = issues["pairs"]
    more = len(pairs) - MAX_PAIRS
    note = f"+{count(more, 'more pair')}; --format json lists every pair" if more > 0 else None
    return pairs[:MAX_PAIRS], note


def pair_lines(issues: dict[str, Any]) -> list[str]:
    shown, note = shown_pairs(issues)
    lines = []
    for p in shown:
        arrow = pair_arrow(p["kind"])
        examples = ", ".join(str(i) for i in p["example_ids"][:3])
        lines.append(
            f"{p['from']} {arrow} {p['to']}: {p['count']:,} ({100 * p['share']:.1f}% of "
            f"{p['from']}; reverse {p['reverse_count']:,}; {times(p['ratio_to_median'])} "
            f"typical) e.g. ids {examples}"
        )
    return lines + ([f"({note})"] if note else [])


@dataclass(frozen=True)
class ConfusedCells:
    """The confused (given, predicted) pairs worth showing, one rule for the chart and the
    lists: pairs counted at least twice, largest first (a pair counted once is one sample, not
    evidence of a confusion); `more`: such pairs beyond the shown ones; `once`: the pairs counted
    once, left out (None when the report cannot tell: its list of cells is cut)."""

    cells: list[tuple[str, str, int, float]]  # given, predicted, count, share of given
    more: int
    once: int | None

    def notes(self) -> list[str]:
        """What a list of the cells leaves out, in words."""
        notes = [f"+{count(self.more, 'more pair')} counted twice or more"] if self.more else []
        if self.once:
            notes.append(f"and {seen_once(self.once)}" if self.cells else seen_once(self.once))
        return notes


def confused_cells(metrics: dict[str, Any], limit: int = MAX_CONFUSED) -> ConfusedCells | None:
    """The metrics' confused pairs by the one rule (`ConfusedCells`), at most `limit` of them;
    None without a confusion matrix."""
    section = metrics.get("confusion_matrix")
    if not section:
        return None
    if section.get("counts") is None:  # many classes: the report lists the largest cells
        top = section.get("top_pairs") or []
        cells = [(p["from"], p["to"], int(p["count"]), p["share"]) for p in top]
        kept = [c for c in cells if c[2] >= 2]
        if len(kept) == len(cells) and cells:
            once = None  # every listed cell counts twice: the cells counted once are not listed
        elif "per_class" in metrics:  # every pair counted twice is listed: the rest are errors
            errors = sum(
                c["support"] - round(c["recall"] * c["support"])
                for c in metrics["per_class"]
                if c["support"] and c["recall"] is not None
            )
            once = max(errors - sum(c[2] for c in kept), 0)
        else:
            once = sum(1 for c in cells if c[2] == 1)
    else:
        counts = np.array(section["counts"], dtype=np.int64)
        off = counts.copy()
        np.fill_diagonal(off, 0)
        rows, columns = np.nonzero(off >= 2)
        values = off[rows, columns]
        order = np.lexsort((columns, rows, -values))
        totals = counts.sum(axis=1)
        names = section["classes"]
        kept = [
            (names[i], names[j], int(off[i, j]), float(off[i, j] / totals[i]))
            for i, j in zip(rows[order].tolist(), columns[order].tolist(), strict=True)
        ]
        once = int((off == 1).sum())
    return ConfusedCells(kept[:limit], max(len(kept) - limit, 0), once)


def confused_lines(cells: ConfusedCells) -> list[str]:
    """The confused pairs as lines (text and markdown), then what the list leaves out."""
    lines = [f"{a} -> {b}: {n:,} ({share:.1%} of {a})" for a, b, n, share in cells.cells]
    return lines + [f"({note})" for note in cells.notes()]


def unhealthy_classes(issues: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """The least healthy classes worth a line (every format shows these): classes with samples
    and some estimated noise or suspects, least healthy first."""
    shown = [
        h
        for h in issues["per_class"]
        if h["support"] and (h["estimated_noise_rate"] > 0 or h["suspects"])
    ]
    return shown[:limit]


def health_lines(issues: dict[str, Any], limit: int = 5) -> list[str]:
    return [
        f"{h['class']}: estimated noise {100 * h['estimated_noise_rate']:.1f}%, "
        f"{count(h['suspects'], 'suspect')} ({100 * h['suspect_share']:.1f}%)"
        for h in unhealthy_classes(issues, limit)
    ]


def advice_lines(data: dict[str, Any]) -> list[str]:
    advice = data.get("recommendations")
    if not advice:
        return []
    loss = advice["loss"]
    params = ", ".join(f"{k}={v}" for k, v in loss["params"].items())
    runner = loss["runner_up"]
    runner_params = ", ".join(f"{k}={v}" for k, v in runner.get("params", {}).items())
    lines = [f"loss: {loss['name']}" + (f" ({params})" if params else "")]
    lines += [f"  why: {r}" for r in loss["reasons"]]
    lines.append(
        f"  runner-up: {runner['name']}" + (f" ({runner_params})" if runner_params else "")
    )
    lines += [f"  risk: {r}" for r in loss["risks"]]
    sampling = advice["sampling"]
    chosen = next(w for w in advice["class_weights"] if w["method"] == sampling["method"])
    defined = {c: w for c, w in chosen["weights"].items() if w is not None}
    counts = {c["class"]: c["count"] for c in data["support"]["per_class"]}
    if defined:
        rarest = min(defined, key=lambda c: (counts[c], c))
        largest = max(defined, key=lambda c: (counts[c], c))
        spread = (
            f"every class {defined[rarest]:.3g} (equal counts)"
            if counts[rarest] == counts[largest]
            else f"rarest class {rarest} {defined[rarest]:.3g}, largest {largest} "
            f"{defined[largest]:.3g}"
        )
        lines.append(
            f"sampling weights ({sampling['method']}"
            + (", recommended" if sampling["recommended"] else "")
            + f"): {spread}; per sample {sampling['min_weight']:.3g} to "
            f"{sampling['max_weight']:.3g} (--weights-out)"
        )
    lines += [f"  note: {n}" for n in sampling["notes"]]
    return lines


def diff_summary(data: dict[str, Any]) -> list[str]:
    sm, sh = data["summary"], data["shift"]
    lines = [
        f"{count(sm['n_old'], 'row')} before, {sm['n_new']:,} after: "
        f"{sm['unchanged']:,} unchanged, "
        f"{sm['relabeled']:,} relabeled ({100 * sm['relabel_rate']:.2f}% of matched), "
        f"{sm['added']:,} added, {sm['removed']:,} removed",
        f"class distribution shift: TVD {sh['tvd']:.4f}, Jensen-Shannon {sh['js']:.4f}, "
        f"PSI {sh['psi']:.4f}, chi-square p {num(sh['chi2_p'], 4)} (information only)",
        f"new classes: {names_list(data['new_classes'])}; "
        f"vanished: {names_list(data['vanished_classes'])}",
    ]
    verdict = data.get("relabels_vs_model")
    if verdict:
        lines.append(
            f"relabels judged by the model: {verdict['agree']:,} agree (likely fixes), "
            f"{verdict['disagree']:,} disagree (likely regressions)"
            + (f", {verdict['tied']:,} tied (no evidence)" if verdict.get("tied") else "")
            + f" of {verdict['checked']:,}"
        )
    return lines


def diff_support_rows(data: dict[str, Any]) -> list[list[str]]:
    shown, _ = shown_diff_support(data)
    return [
        [s["class"], f"{s['old']:,}", f"{s['new']:,}", f"{s['delta']:+,}",
         pct(s["old_share"]), pct(s["new_share"])]
        for s in shown
    ]  # fmt: skip


def relabel_lines(data: dict[str, Any]) -> list[str]:
    return [
        f"{p['from']} -> {p['to']}: {p['count']:,} (e.g. "
        f"{', '.join(str(i) for i in p['example_ids'][:3])})"
        for p in data["top_relabels"]
    ]


def regression_lines(data: dict[str, Any]) -> list[str]:
    verdict = data.get("relabels_vs_model") or {}
    return [
        f"{v['id']}: {v['old_label']} -> {v['new_label']} "
        f"(p old {v['old_label_probability']:.3f}, p new {v['new_label_probability']:.3f})"
        for v in verdict.get("worst_regressions", [])
    ]


def tag_lines(data: dict[str, Any]) -> list[str]:
    return [
        f"{t['class']}: +{t['added']:,} / -{t['removed']:,}"
        for t in data.get("tag_changes") or []
        if t["added"] or t["removed"]
    ]


DIFF_SUPPORT_HEADER = ["class", "before", "after", "delta", "share before", "share after"]


def neighbour_summary(data: dict[str, Any]) -> list[str]:
    """The embeddings section's lines: the search, near-duplicates, outliers, neighbours."""
    info, dup, out = data["neighbours"], data["near_duplicates"], data["outliers"]
    search = info["search"] + (
        f", measured recall {info['measured_recall']:.3f}"
        if info["measured_recall"] is not None
        else ""
    )
    multi = data["dataset"]["task"] == "multilabel"
    agreeing = (
        "the mean Jaccard similarity of a row's tags with its neighbours' is "
        f"{info['mean_agreement']:.3f}"
        if multi
        else f"on average {100 * info['mean_agreement']:.1f}% of a row's neighbours share its label"
    )
    lines = [
        f"{count(info['rows'], 'row')} x {count(info['dimensions'], 'dimension')} from "
        f"{info['source']}; {count(info['k'], 'nearest neighbour')} by {info['distance']} "
        f"distance ({search}; {info['seconds']:.1f} s)",
        f"near-duplicates: {count(dup['sets'], 'set')} of {count(dup['rows_in_sets'], 'row')} "
        f"(distance <= {dup['radius']:.4g}, {dup['threshold']:g} x the median nearest-neighbour "
        f"distance); {dup['conflicting_sets']:,} with conflicting labels"
        + "".join(
            f"; {count(leak['sets'], 'set')} across {leak['column']} values"
            for leak in dup["leakage"]
        ),
        f"outliers: {count(out['flagged'], 'row')} ({100 * out['share']:.2f}%) score above "
        f"{out['fence']:.3g} (Tukey's far-out fence; 1 is a typical row)",
        f"neighbour agreement: {agreeing}; {count(info['rows_agreeing_below_half'], 'row')} "
        "below half",
    ]
    return lines


def duplicate_set_lines(data: dict[str, Any]) -> list[str]:
    """The near-duplicate sets shown, conflicting and leaking ones first."""
    lines = []
    for s in data["near_duplicates"]["examples"]:
        ids = ", ".join(str(i) for i in s["ids"][:5]) + (", ..." if s["size"] > 5 else "")
        flags = (["conflicting labels"] if s["conflicting"] else []) + [
            f"crosses {c} ({', '.join(s['groups'][c])})" for c in s["leaks"]
        ]
        lines.append(
            f"set {s['set']}: {count(s['size'], 'row')} (ids {ids}); labels "
            f"{', '.join(s['distinct_labels'])}" + (f"; {'; '.join(flags)}" if flags else "")
        )
    return lines


def outlier_lines(data: dict[str, Any], limit: int = 5) -> list[str]:
    return [
        f"id {o['id']} ({o['label']}): score {o['score']:.2f}"
        + (" (outlier)" if o["is_outlier"] else "")
        for o in data["outliers"]["worst"][:limit]
    ]


def annotators_summary(data: dict[str, Any]) -> list[str]:
    """The annotators report's headline facts: the annotations, agreement and consensus."""
    ds, ag, co = data["dataset"], data["agreement"], data["consensus"]
    per = ds["annotations_per_item"]

    def shown(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    return [
        f"{count(ds['n_annotations'], 'annotation')} of {count(ds['n_items'], 'item')} by "
        f"{count(ds['n_annotators'], 'annotator')}, {count(ds['n_classes'], 'class')}; "
        + (
            f"{count(int(per['min']), 'annotation')} an item"
            if per["min"] == per["max"]
            else f"{per['min']:g} to {per['max']:g} annotations an item (mean {per['mean']:.2f})"
        )
        + f"; {ds['items_with_one_annotation']:,} with one",
        f"agreement: Krippendorff's alpha {shown(ag['krippendorff_alpha'])}, Fleiss' kappa "
        f"{shown(ag['fleiss_kappa'])}, pairwise {shown(ag['pairwise_agreement'])}; "
        f"{100 * ag['majority_agreement']:.1f}% of annotations equal their item's majority",
        f"consensus ({co['method']}, {co['rounds']} rounds"
        + ("" if co["converged"] else ", not settled")
        + f"): mean quality {co['mean_quality']:.3f}; {co['changed_from_majority']:,} items "
        f"differ from the majority vote; {co['low_quality_items']:,} below "
        f"{co['low_quality_threshold']:g}",
    ]


def annotator_rows(data: dict[str, Any], limit: int = 20) -> list[list[str]]:
    """The annotators, worst first: name, labels, quality, agreements, confusions."""
    rows = []
    for q in data["annotators"][:limit]:
        confusions = "; ".join(
            f"{c['true_class']} as {c['given']} {100 * c['rate']:.0f}%" for c in q["top_confusions"]
        )
        rows.append(
            [
                q["annotator"] + (" (flagged)" if q["flagged"] else ""),
                f"{q['n_labels']:,}",
                _quality(q),
                f"{q['agreement_with_consensus']:.3f}",
                f"{q['agreement_with_majority']:.3f}",
                confusions or "-",
            ]
        )
    return rows


def _quality(q: dict[str, Any]) -> str:
    """An annotator's quality and its 95% interval, or n/a."""
    if q["quality"] is None:
        return "n/a"
    interval = q.get("quality_interval")
    if not interval:
        return f"{q['quality']:.3f}"
    return f"{q['quality']:.3f} ({interval[0]:.2f}-{interval[1]:.2f})"


ANNOTATOR_HEADER = ["annotator", "labels", "quality (95%)", "vs consensus", "vs majority",
                    "mixes up"]  # fmt: skip


def group_rows(groups: list[dict[str, Any]], limit: int = 15) -> list[list[str]]:
    """One row per group (standing-out ones first): size, accuracy, macro F1, suspects."""
    rows = []
    for g in groups[:limit]:
        metrics = g["metrics"] or {}
        accuracy = metrics.get("accuracy", metrics.get("subset_accuracy"))  # multi-label: subset
        rate = g["suspect_rate"]
        interval = g["suspect_rate_interval"]
        pairs = ", ".join(
            f"{p['given']} -> {p['suggested']} {p['count']} ({p['lift']:.1f}x)"
            for p in g["top_pairs"][:2]
        )
        rows.append(
            [
                g["group"] + (" (stands out)" if g["flagged"] else ""),
                f"{g['n']:,}",
                "-" if accuracy is None else f"{accuracy:.3f}",
                f"{metrics['macro']['f1']:.3f}" if metrics else "-",
                f"{g['n_suspects']:,}",
                "-"
                if rate is None
                else f"{100 * rate:.1f}% ({100 * interval[0]:.1f}-{100 * interval[1]:.1f})",
                pairs or "-",
            ]
        )
    return rows


GROUP_HEADER = ["group", "rows", "accuracy", "macro F1", "suspects", "suspect rate (95%)",
                "concentrated pairs"]  # fmt: skip
