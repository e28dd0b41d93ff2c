"""The scan report: frozen dataclasses whose `to_dict()` is the JSON contract (versioned)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from labelaudit._text import agree, count, human_line

SCHEMA_VERSION = "1.0"
# K x K matrices are written in the JSON up to this many classes (1,000: 1M cells); beyond,
# they are null and the report names the largest cells (a 5,000-class matrix is 700 MB of JSON).
MAX_JSON_MATRIX_CLASSES = 1_000
TOP_CONFUSED_PAIRS = 100
# Python names that differ from the JSON keys (`class` and `or` are reserved words).
_JSON_KEYS = {"class_name": "class", "or_": "or", "from_class": "from", "to_class": "to"}


def to_jsonable(value: Any) -> Any:
    """Dataclasses, lists and dicts to plain JSON values; NaN and inf become null."""
    if isinstance(value, JsonReport):
        return value.to_dict()  # a report inside a report keeps its own key order
    if is_dataclass(value):
        return _fields(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(type(v) is int for v in value):
            return list(value)  # fast path: rows of a count matrix
        if value and all(type(v) is float and math.isfinite(v) for v in value):
            return list(value)  # fast path: rows of a rate matrix
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return to_jsonable(value.item())
    return value


def _fields(value: Any) -> dict[str, Any]:
    """A dataclass's JSON fields: internal ones left out, `omit_if_none` ones when None."""
    return {
        _JSON_KEYS.get(f.name, f.name): to_jsonable(getattr(value, f.name))
        for f in fields(value)
        if not f.metadata.get("internal")
        and not (f.metadata.get("omit_if_none") and getattr(value, f.name) is None)
    }


class JsonReport:
    """A command's report: `to_dict()` is its JSON, schema_version and command first."""

    warnings: list[str]  # a field of every report dataclass

    def __post_init__(self) -> None:
        # Warnings are printed to stderr as they are: one line each, whatever names they quote.
        object.__setattr__(self, "warnings", [human_line(w) for w in self.warnings])

    def to_dict(self) -> dict[str, Any]:
        data = _fields(self)
        ordered = {"schema_version": data.pop("schema_version"), "command": data.pop("command")}
        ordered.update(data)
        return ordered

    def page_data(self) -> dict[str, Any]:
        """What the HTML page draws: the JSON, plus figure inputs kept out of it."""
        return self.to_dict()

    def summary_line(self) -> str:
        """The report in one line (its repr)."""
        return f"{len(self.warnings)} warnings"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.summary_line()}>"

    def _repr_html_(self) -> str:
        """The report in a notebook: the HTML page's summary cards, findings, main figures and
        top rows, with the page's number formatting, its styles scoped to the cell."""
        from labelaudit.report.html import render_fragment

        return render_fragment(self.page_data())


@dataclass(frozen=True)
class DatasetInfo:
    source: str
    predictions: str | None
    task: str
    n_samples: int
    n_classes: int
    classes: list[str]
    rows_read: int
    null_labels: int


@dataclass(frozen=True)
class ClassSupport:
    class_name: str
    count: int
    share: float


@dataclass(frozen=True)
class SupportSection:
    per_class: list[ClassSupport]


@dataclass(frozen=True)
class ImbalanceSection:
    ratio: float | None
    normalized_entropy: float | None
    effective_classes: float
    min_support: int
    rare_classes: list[str]
    zero_support_classes: list[str]


@dataclass(frozen=True)
class DuplicatesSection:
    duplicate_ids: int
    duplicate_rows: int
    conflicting_ids: int
    example_duplicate_ids: list[Any]
    example_conflicting_ids: list[Any]


@dataclass(frozen=True)
class DuplicateSet:
    """One set of near-duplicate rows (a connected component of close pairs)."""

    set: int  # the issues file's near_duplicate_set
    size: int
    ids: list[Any]  # the first few
    labels: list[str]  # theirs, in the same order
    distinct_labels: list[str]
    conflicting: bool  # more than one distinct label: a label error by construction
    leaks: list[str]  # the group columns whose values it spans
    groups: dict[str, list[str]]  # per group column, the values it holds


@dataclass(frozen=True)
class SetLeakage:
    """Near-duplicate sets that span several values of a group column (e.g. train and test)."""

    column: str
    sets: int
    rows: int


@dataclass(frozen=True)
class NearDuplicatesSection:
    """Pairs of embedded rows closer than `radius` (= threshold x the median distance to the
    k-th neighbour), grouped into sets."""

    distance: str
    threshold: float
    radius: float
    pairs: int
    sets: int
    rows_in_sets: int
    largest_set: int
    conflicting_sets: int
    rows_in_conflicting_sets: int
    leakage: list[SetLeakage]
    leaking_sets: int
    examples: list[DuplicateSet]


@dataclass(frozen=True)
class OutlierRow:
    id: Any
    label: str
    score: float
    is_outlier: bool


@dataclass(frozen=True)
class OutliersSection:
    """Outlier scores (a row's mean distance to its k neighbours over the median row's) and
    the rows above Tukey's far-out fence."""

    fence: float
    flagged: int
    share: float
    median_score: float
    worst: list[OutlierRow]


@dataclass(frozen=True)
class NeighboursSection:
    """The embeddings and the neighbour search: what was compared, how, and how well."""

    source: str
    rows: int
    dimensions: int
    k: int
    distance: str
    search: str  # exact or ivf
    measured_recall: float | None  # ivf: share of the exact k nearest found, on a sample
    mean_agreement: float  # the mean share of a row's neighbours that share its label
    rows_agreeing_below_half: int
    seconds: float


@dataclass(frozen=True)
class LabelPair:
    classes: list[str]
    count: int


@dataclass(frozen=True)
class MultilabelSection:
    cardinality: float
    density: float
    samples_without_label: int
    max_labels_per_sample: int
    top_pairs: list[LabelPair]


@dataclass(frozen=True)
class ClassMetrics:
    class_name: str
    precision: float
    recall: float
    f1: float
    support: int
    average_precision: float | None = None


@dataclass(frozen=True)
class AverageMetrics:
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class ConfusedPair:
    """One cell off the diagonal: rows given `from_class`, predicted (or estimated) `to_class`."""

    from_class: str
    to_class: str
    count: int
    share: float  # of the rows given from_class


@dataclass(frozen=True)
class ConfusionSection:
    """The K x K confusion matrix; above MAX_JSON_MATRIX_CLASSES classes the matrices are null
    and `top_pairs` lists the largest off-diagonal cells instead (a bounded report)."""

    classes: list[str]
    counts: list[list[int]] | None
    normalized: list[list[float]] | None
    top_pairs: list[ConfusedPair] | None = field(default=None, metadata={"omit_if_none": True})


@dataclass(frozen=True)
class CalibrationBin:
    """One bin of the reliability diagram: rows whose top score is in (lower, upper]."""

    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


@dataclass(frozen=True)
class ModelMember:
    """One model of several: its file, weight in the combination, how its scores read, and its
    own figures on the given labels."""

    source: str
    weight: float
    score_mode: str
    accuracy: float | None
    log_loss: float | None
    macro_f1: float | None
    consensus_error_rate: float | None


@dataclass(frozen=True)
class ModelsSection:
    """How several models' scores were combined into the one estimate the report analyzes."""

    method: str
    weighting: str
    members: list[ModelMember]


@dataclass(frozen=True)
class MulticlassMetricsSection:
    score_mode: str
    decision: str
    fallback_rows: int
    n_scored: int
    accuracy: float
    balanced_accuracy: float
    top_5_accuracy: float | None
    log_loss: float
    expected_calibration_error: float
    per_class: list[ClassMetrics]
    micro: AverageMetrics
    macro: AverageMetrics
    weighted: AverageMetrics
    confusion_matrix: ConfusionSection
    calibration: list[CalibrationBin] = field(default_factory=list)


@dataclass(frozen=True)
class MultilabelMetricsSection:
    score_mode: str
    decision: str
    n_scored: int
    threshold: float | None
    subset_accuracy: float
    hamming_loss: float
    cp: float
    cr: float
    cf1: float
    op: float
    or_: float
    of1: float
    mean_average_precision: float | None
    per_class: list[ClassMetrics]
    micro: AverageMetrics
    macro: AverageMetrics
    weighted: AverageMetrics


@dataclass(frozen=True)
class Suspect:
    """One suspected label error, with its evidence."""

    rank: int
    id: Any
    given_label: str
    suggested_label: str
    label_quality: float
    given_probability: float
    suggested_probability: float
    margin: float
    n_models_disagree: int | None = None


@dataclass(frozen=True)
class ClassHealth:
    """One class's label health: estimated noise rate and share of its samples suspected."""

    class_name: str
    support: int
    estimated_noise_rate: float
    suspects: int
    suspect_share: float
    threshold: float | None


@dataclass(frozen=True)
class PairAnomalySection:
    """A class pair confused far more than the typical pair."""

    from_class: str
    to_class: str
    kind: str
    count: int
    share: float
    reverse_count: int
    ratio_to_median: float
    example_ids: list[Any]


@dataclass(frozen=True)
class NoiseMatrixSection:
    """Estimated P(given label = row | true label = column); null above
    MAX_JSON_MATRIX_CLASSES classes (the confused pairs name the largest cells)."""

    classes: list[str]
    given_given_true: list[list[float]] | None


@dataclass(frozen=True)
class QualityHistogram:
    """Label quality of every scored row (counts) and of the flagged ones, on shared edges; cut:
    the highest quality of a flagged row."""

    edges: list[float]
    counts: list[int]
    flagged_counts: list[int]
    cut: float | None


@dataclass(frozen=True)
class LabelIssuesSection:
    """Suspected label errors. `n_suspects` is the one count the issues file and gate share."""

    quality_score: str
    rule: str
    n_scored: int
    n_suspects: int
    suspect_rate: float
    estimated_errors: int
    estimated_noise_rate: float
    health_score: float
    per_class: list[ClassHealth]
    pairs: list[PairAnomalySection]
    noise_matrix: NoiseMatrixSection | None
    top_suspects: list[Suspect]
    quality_histogram: QualityHistogram | None = None
    # The interval around `estimated_errors` (core/error_count.py); null for multi-label.
    estimated_errors_low: int | None = None
    estimated_errors_high: int | None = None
    # The calibrated confident joint's own count, shown beside the estimate; null for multi-label.
    confident_joint_errors: int | None = None
    # The model disagrees with most labels: counts and suspects may be its own mistakes.
    weak_evidence: bool = False


@dataclass(frozen=True)
class ClassWeightsSection:
    """One weighting; a class without samples has weight null."""

    method: str
    params: dict[str, float]
    weights: dict[str, float | None]


@dataclass(frozen=True)
class LossSection:
    name: str
    params: dict[str, Any]
    reasons: list[str]
    runner_up: dict[str, Any]
    risks: list[str]


@dataclass(frozen=True)
class SamplingSection:
    """The per-sample weights `--weights-out` writes (for a WeightedRandomSampler)."""

    method: str
    params: dict[str, float]
    recommended: bool
    min_weight: float
    max_weight: float
    notes: list[str]


@dataclass(frozen=True)
class RecommendationsSection:
    class_weights: list[ClassWeightsSection]
    pos_weight: dict[str, float | None] | None
    loss: LossSection
    sampling: SamplingSection


@dataclass(frozen=True)
class Finding:
    """Something in the data worth a look; `severity` is info or warning."""

    code: str
    severity: str
    message: str
    count: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", human_line(self.message))


@dataclass(frozen=True, repr=False)
class ScanReport(JsonReport):
    """Everything `labelaudit scan` found. `to_dict()` is the JSON contract."""

    dataset: DatasetInfo
    support: SupportSection
    imbalance: ImbalanceSection
    duplicates: DuplicatesSection
    multilabel: MultilabelSection | None
    metrics: MulticlassMetricsSection | MultilabelMetricsSection | None
    models: ModelsSection | None
    label_issues: LabelIssuesSection | None
    recommendations: RecommendationsSection | None
    findings: list[Finding]
    config: dict[str, Any]
    warnings: list[str]
    neighbours: NeighboursSection | None = None
    near_duplicates: NearDuplicatesSection | None = None
    outliers: OutliersSection | None = None
    groups: dict[str, list[GroupStats]] | None = None
    schema_version: str = SCHEMA_VERSION
    command: str = field(default="scan")
    # A 2-D projection of a sample of the embedded rows: drawn on the HTML page only.
    projection: dict[str, Any] | None = field(default=None, repr=False, metadata={"internal": True})
    # One row per scored sample (id, given_label, suggested_label, label_quality, is_suspect,
    # rank, ...): the issues file. Not part of the JSON; read it as `report.issues`.
    issues_table: Any = field(default=None, repr=False, metadata={"internal": True})
    weights_table: Any = field(default=None, repr=False, metadata={"internal": True})

    def page_data(self) -> dict[str, Any]:
        return {**self.to_dict(), "projection": to_jsonable(self.projection)}

    def summary_line(self) -> str:
        ds, parts = self.dataset, []
        parts.append(f"{ds.source}: {ds.n_samples:,} samples, {ds.n_classes:,} classes")
        metrics = self.metrics
        if metrics is not None:
            accuracy = getattr(metrics, "accuracy", getattr(metrics, "subset_accuracy", None))
            parts.append(f"accuracy {accuracy:.4f}, macro F1 {metrics.macro.f1:.4f}")
        if self.label_issues is not None:
            issues = self.label_issues
            parts.append(f"{issues.n_suspects:,} suspects ({100 * issues.suspect_rate:.2f}%)")
        parts.append(f"{len(self.findings)} findings")
        return "; ".join(parts)

    @property
    def weights(self) -> Any:
        """One row per analyzed sample (id, weight): the `--weights-out` table."""
        return None if self.weights_table is None else self.weights_table.get()

    @property
    def issues(self) -> Any:
        """The issues table: every scored sample with its label quality, suggestion, rank and
        evidence (a polars DataFrame; `--issues-out` writes it), or None when no predictions
        were given or detection was off. Built on first access."""
        return None if self.issues_table is None else self.issues_table.get()

    @property
    def suspects(self) -> Any:
        """Deprecated alias of `issues` (it holds every scored row, not only the suspects);
        kept for one release."""
        import warnings

        warnings.warn(
            "ScanReport.suspects is deprecated; use ScanReport.issues (the same table).",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.issues


@dataclass(frozen=True)
class DiffSummary:
    n_old: int
    n_new: int
    unchanged: int
    relabeled: int
    added: int
    removed: int
    relabel_rate: float
    removed_rate: float
    added_rate: float


@dataclass(frozen=True)
class TransitionCount:
    """Labels moving between versions; from_class None = added, to_class None = removed."""

    from_class: str | None
    to_class: str | None
    count: int


@dataclass(frozen=True)
class RelabelPair:
    from_class: str
    to_class: str
    count: int
    example_ids: list[Any]


@dataclass(frozen=True)
class SupportChange:
    class_name: str
    old: int
    new: int
    delta: int
    old_share: float
    new_share: float


@dataclass(frozen=True)
class ShareChange:
    class_name: str
    old_share: float
    new_share: float
    ratio: float | None


@dataclass(frozen=True)
class ShiftSection:
    tvd: float
    js: float
    psi: float
    chi2_p: float | None
    min_count: int
    share_changes: list[ShareChange]
    max_share_change: float


@dataclass(frozen=True)
class RelabelVerdict:
    id: Any
    old_label: str
    new_label: str
    old_label_probability: float
    new_label_probability: float


@dataclass(frozen=True)
class RelabelsVsModel:
    """Relabels judged by the model's scores of the new version."""

    score_mode: str
    checked: int
    agree: int
    disagree: int
    agree_rate: float
    worst_regressions: list[RelabelVerdict]
    best_fixes: list[RelabelVerdict]
    tied: int = 0  # the model gives both labels one probability (e.g. neither in a top-k list)


@dataclass(frozen=True)
class TagChange:
    class_name: str
    added: int
    removed: int


@dataclass(frozen=True)
class DiffDatasets:
    old: str
    new: str
    predictions: str | None
    task: str
    classes: list[str]


@dataclass(frozen=True, repr=False)
class DiffReport(JsonReport):
    """Everything `labelaudit diff` found. `to_dict()` is the JSON contract."""

    dataset: DiffDatasets
    summary: DiffSummary
    transitions: list[TransitionCount]
    top_relabels: list[RelabelPair]
    support: list[SupportChange]
    new_classes: list[str]
    vanished_classes: list[str]
    shift: ShiftSection
    relabels_vs_model: RelabelsVsModel | None
    tag_changes: list[TagChange] | None
    config: dict[str, Any]
    warnings: list[str]
    schema_version: str = SCHEMA_VERSION
    command: str = field(default="diff")

    def summary_line(self) -> str:
        d, s = self.dataset, self.summary
        return (
            f"{d.old} -> {d.new}: {s.relabeled:,} relabeled ({100 * s.relabel_rate:.2f}%), "
            f"{s.added:,} added, {s.removed:,} removed"
        )


@dataclass(frozen=True)
class GateRuleSetting:
    name: str
    value: Any
    severity: str
    optional: bool


@dataclass(frozen=True)
class GateFinding:
    rule: str
    status: str
    severity: str
    value: Any
    limit: Any
    message: str

    def __post_init__(self) -> None:
        # The gate prints each failing message on its own stderr line (read by CI runners).
        object.__setattr__(self, "message", human_line(self.message))


@dataclass(frozen=True)
class AcceptedSuspects:
    """Known suspects from --accept: only new ones count against max_suspect_rate."""

    file: str
    accepted: int
    still_suspected: int
    new_suspects: int
    no_longer_apply: int
    no_longer_apply_examples: list[Any]


@dataclass(frozen=True)
class GateSummary:
    verdict: str
    fail_on: str
    passed: int
    failed: int
    errors: int
    skipped: int
    failing_rules: list[str]


@dataclass(frozen=True, repr=False)
class GateReport(JsonReport):
    """The gate's verdict, each rule's finding, and the reports it was computed from."""

    summary: GateSummary
    rules: list[GateRuleSetting]
    findings: list[GateFinding]
    accepted: AcceptedSuspects | None
    scan: ScanReport
    diff: DiffReport | None
    config: dict[str, Any]
    warnings: list[str]
    schema_version: str = SCHEMA_VERSION
    command: str = field(default="gate")

    def summary_line(self) -> str:
        s = self.summary
        return (
            f"{s.verdict.upper()}: {s.passed} passed, {s.failed} failed, {s.errors} "
            f"uncomputable, {s.skipped} skipped"
        )


@dataclass(frozen=True)
class ThresholdsEvaluation:
    """How the thresholds were judged: on rows that did not choose them."""

    method: str
    holdout_fraction: float | None = field(default=None, metadata={"omit_if_none": True})
    folds: int | None = field(default=None, metadata={"omit_if_none": True})
    seed: int = 0
    n_tuning: int = 0
    n_evaluation: int = 0
    measure: str = "macro_f1"
    before: float = 0.0
    after: float = 0.0
    micro_f1_before: float = 0.0
    micro_f1_after: float = 0.0
    note: str = (
        "Before: the default decision (argmax, or p >= 0.5 for multi-label). After: the tuned "
        "thresholds. Both are measured on rows that did not choose the thresholds."
    )


@dataclass(frozen=True)
class ClassThreshold:
    class_name: str
    threshold: float
    precision_before: float
    recall_before: float
    precision_after: float
    recall_after: float


@dataclass(frozen=True)
class GroupPair:
    """A suspect pair (given -> suggested) within a group, and how concentrated it is there."""

    given: str
    suggested: str
    count: int
    lift: float  # its share of the group's suspects over its share of all suspects


@dataclass(frozen=True)
class GroupStats:
    """One value of a --group-col column: its rows, metrics and suspects."""

    group: str
    n: int
    n_scored: int
    # the scan's metrics section on the group's rows (multi-class or multi-label)
    metrics: MulticlassMetricsSection | MultilabelMetricsSection | None
    n_suspects: int | None  # None without scores (no detection)
    suspect_rate: float | None
    suspect_rate_interval: list[float | None] | None  # 95% Wilson interval
    noise_rate: float | None  # its share of the estimated label errors, per scored row
    top_pairs: list[GroupPair]
    p_value: float | None  # one-sided, Holm-adjusted: suspect rate above the rest's
    flagged: bool  # Holm-corrected p below 0.05
    pooled: bool  # the groups under 30 rows, pooled into one


@dataclass(frozen=True)
class AnnotationsInfo:
    source: str
    predictions: str | None
    n_annotations: int
    n_items: int
    n_annotators: int
    n_classes: int
    classes: list[str]
    annotations_per_item: dict[str, float]  # min, mean, max
    items_with_one_annotation: int


@dataclass(frozen=True)
class AgreementSection:
    """How much the annotators agree, before any model of their errors."""

    krippendorff_alpha: float | None  # nominal; None with no item annotated twice
    fleiss_kappa: float | None  # None unless every item has the same number (>= 2)
    pairwise_agreement: float | None  # agreeing pairs / pairs of annotations of one item
    majority_agreement: float  # annotations equal to their item's majority label


@dataclass(frozen=True)
class ConsensusSection:
    method: str  # pooled_dawid_skene, or pooled_dawid_skene_with_model
    rounds: int
    converged: bool
    mean_quality: float
    low_quality_items: int  # consensus quality below LOW_QUALITY
    low_quality_threshold: float
    changed_from_majority: int  # items whose consensus differs from the majority vote
    per_class: dict[str, int]  # items per consensus class
    # Each model's learned weight (its probabilities' exponent in each item's prior) for items
    # with 1, 2 and 3+ annotations; None without models.
    model_weights: dict[str, list[float]] | None = None


@dataclass(frozen=True)
class Confusion:
    true_class: str
    given: str
    rate: float  # of the annotator's labels on items of that class


@dataclass(frozen=True)
class AnnotatorQuality:
    annotator: str
    n_labels: int
    quality: float | None  # estimated accuracy (prior-weighted); None when not estimable
    agreement_with_consensus: float
    agreement_with_majority: float
    flagged: bool  # quality far below the others' (docs/annotators.md)
    top_confusions: list[Confusion]
    quality_interval: list[float] | None = None  # 95% Wilson interval; None when n/a
    n_checked: int = 0  # labels on items with other evidence: what the quality rests on


@dataclass(frozen=True, repr=False)
class AnnotatorsReport(JsonReport):
    """`labelaudit annotators`: consensus labels, annotator quality and agreement."""

    dataset: AnnotationsInfo
    agreement: AgreementSection
    consensus: ConsensusSection
    annotators: list[AnnotatorQuality]  # worst first
    findings: list[Finding]
    warnings: list[str]
    schema_version: str = SCHEMA_VERSION
    command: str = field(default="annotators")
    # id, consensus_label, consensus_quality, n_annotations, agreement, majority_label per item:
    # the --consensus-out table (not in the JSON).
    consensus_table: Any = field(default=None, repr=False, metadata={"internal": True})
    # Each annotator's full confusion matrix: the HTML page only.
    confusions: dict[str, Any] | None = field(default=None, repr=False, metadata={"internal": True})

    def page_data(self) -> dict[str, Any]:
        return {**self.to_dict(), "confusions": to_jsonable(self.confusions)}

    def summary_line(self) -> str:
        d, alpha = self.dataset, self.agreement.krippendorff_alpha
        shown = "n/a" if alpha is None else f"{alpha:.3f}"
        changed = self.consensus.changed_from_majority
        return (
            f"{d.source}: {d.n_annotations:,} annotations of {d.n_items:,} items by "
            f"{d.n_annotators:,} annotators; Krippendorff's alpha {shown}; "
            f"{count(changed, 'item')} {agree(changed, 'differs', 'differ')} from the majority "
            "vote"
        )


@dataclass(frozen=True, repr=False)
class ThresholdsReport(JsonReport):
    """`labelaudit thresholds`: per-class thresholds and their honest evaluation. Its JSON is
    the thresholds.json that `scan --thresholds` reads (io/thresholds_file.py)."""

    metric: str
    task: str
    rule: str
    thresholds: dict[str, float]
    switched_off: list[str]
    evaluation: ThresholdsEvaluation
    per_class: list[ClassThreshold]
    warnings: list[str]
    schema_version: str = SCHEMA_VERSION
    command: str = field(default="thresholds")
    # Each class's F1 against threshold on the tuning rows: drawn on the HTML page only.
    curves: dict[str, Any] | None = field(default=None, repr=False, metadata={"internal": True})

    def page_data(self) -> dict[str, Any]:
        return {**self.to_dict(), "curves": to_jsonable(self.curves)}

    def summary_line(self) -> str:
        e = self.evaluation
        return (
            f"{len(self.thresholds):,} thresholds ({self.metric}); macro F1 {e.before:.4f} -> "
            f"{e.after:.4f} on {e.n_evaluation:,} rows that did not choose them"
        )
