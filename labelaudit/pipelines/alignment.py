"""Scores joined to the labels by row position (no id column) are checked for a fit: when they
agree with the labels no better than the same scores in a random row order would, the rows look
misaligned, and the report says so (a warning and a finding) instead of passing it silently."""

from __future__ import annotations

from labelaudit._text import count
from labelaudit.core.alignment import MISALIGNED_BELOW_Z, ChanceAgreement, chance_agreement
from labelaudit.core.metrics import PerClassScores
from labelaudit.core.pair_table import PairTable
from labelaudit.io.dataset import Dataset
from labelaudit.report.schema import Finding

# Findings that say the scores (the only model's, or the combination's) fit the labels no
# better than chance: every figure drawn from them is no evidence (the gate does not read them).
AT_CHANCE_FINDINGS = ("misaligned_rows", "model_at_chance")


def from_confusion(confusion: PairTable) -> ChanceAgreement:
    """A multi-class model's agreement (rows given, columns decided) against a shuffle's."""
    table = PairTable.of(confusion)
    return chance_agreement(
        table.diagonal(), table.row_sums(), table.column_sums(), int(table.total())
    )


def from_indicators(per_class: PerClassScores, n_rows: int) -> ChanceAgreement:
    """A multi-label model's agreeing tags against a shuffle's."""
    return chance_agreement(
        per_class.true_positives, per_class.support, per_class.predicted, n_rows
    )


def misalignment_findings(
    dataset: Dataset,
    agreements: dict[str, ChanceAgreement],
    combination: ChanceAgreement | None = None,
) -> tuple[list[str], list[Finding]]:
    """A warning and a finding for each score file whose model fits the labels no better than
    a random row order (`agreements`: per score source, what its model's decisions matched):
    joined by position, the rows look misaligned (`misaligned_rows`); joined by id, the model
    is at chance (`model_at_chance`), so its suspects are no evidence. With several models
    judged one by one, `combination` is what their weighted mean matched: when it fits, a
    member at chance is `member_at_chance` (it gets little weight; the report's figures, which
    are the combination's, still stand, and the gate still reads them)."""
    warnings: list[str] = []
    findings: list[Finding] = []
    unit = "tag" if dataset.multi_label else "label"
    combination_fits = combination is not None and not combination.at_chance
    for source, agreement in agreements.items():
        if not agreement.at_chance:
            continue
        digits = 1 if agreement.chance_sd < 10 else 0
        fit = (
            f"its predictions match {agreement.agreeing:,} of {count(agreement.n_labels, unit)}, "
            "where the same scores in a random row order match "
            f"{agreement.chance_mean:,.{digits}f} ± {agreement.chance_sd:,.{digits}f} (not "
            f"{MISALIGNED_BELOW_Z:g} standard deviations better)"
        )
        if combination_fits:
            code = "member_at_chance"
            head = (
                f"The rows of '{source}' look misaligned with '{dataset.source}' (joined by row "
                "position)"
                if source in dataset.positional_sources
                else f"The model of '{source}' is no better than chance on '{dataset.source}'"
            )
            message = (
                f"{head}: {fit}. It is one of several models and gets little weight, and their "
                "combination fits the labels, so the report's figures (the combination's) "
                "stand; leave it out, or check that its scores are of these rows and classes."
            )
        elif source in dataset.positional_sources:
            code = "misaligned_rows"
            message = (
                f"The rows of '{source}' look misaligned with '{dataset.source}': joined by row "
                f"position (no id column), {fit}. Unless the model is at chance, the rows are in "
                "another order: give both files an id column. Until then every figure from the "
                "scores is suspect."
            )
        else:
            code = "model_at_chance"
            message = (
                f"The model of '{source}' is no better than chance on '{dataset.source}': {fit}. "
                "Its scores carry no evidence about these labels, so the suspects and the "
                "estimated errors are not findings. Check that the scores are of these rows and "
                "classes, from a trained model."
            )
        warnings.append(message)
        findings.append(Finding(code, "warning", message, agreement.n_labels))
    return warnings, findings
