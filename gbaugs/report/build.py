"""Assemble the report of a run folder (``report/index.html``, self-contained).

Every section reads the files its stage wrote (see ``docs/architecture.md``); a section
whose files are missing says which stage has not run instead of failing, so the report
of a partial run still opens. Figures are drawn into a temporary folder and embedded.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

import gbaugs.report.figures as figures
import gbaugs.report.quicklooks as quicklooks
from gbaugs.config import slugify
from gbaugs.io.atomic import write_text
from gbaugs.osm.labels import describe_origins, run_origins
from gbaugs.records import (
    BaselinesRecord,
    EvaluationRecord,
    ModelCard,
    Record,
    SamplesSummary,
    StackRecord,
    ValidationRecord,
)
from gbaugs.report.html import Section, page
from gbaugs.rundir import RunDir, read_record_if_present
from gbaugs.train.honesty import beaten_by, describe_rule, floor_warning


def _or_nan(value: float | None) -> float:
    """A metric for a table cell: undefined (None) shows as an empty cell."""
    return float("nan") if value is None else float(value)


def _json(path: Path) -> Any:
    """A record no typed owner here has (the manifest), or ``None``."""
    return read_record_if_present(path)


def _data(record: Record | None) -> Mapping[str, Any] | None:
    """What an owned record holds (read-only), or ``None`` where the run has none."""
    return None if record is None else record.data


def _csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


def sensitivity_table(run: RunDir) -> pd.DataFrame | None:
    """The run's weight-sensitivity table: ``model/sensitivity.csv`` (``gbaugs
    sensitivity``) when present, else the report stage's ``report/sensitivity.csv``."""
    for candidate in (run.sensitivity, run.report_sensitivity):
        if candidate.exists():
            return pd.read_csv(candidate)
    return None


def build_report(run_dir: str | Path, out: str | Path | None = None,
                 sensitivity: pd.DataFrame | None = None) -> Path:
    """Write the HTML report of ``run_dir`` (default ``run_dir/report/index.html``).

    ``sensitivity``: the weight-sensitivity table to show; by default the run's own
    (:func:`sensitivity_table`)."""
    from gbaugs.errors import RunDirError

    run = RunDir(Path(run_dir))
    if sensitivity is None:
        sensitivity = sensitivity_table(run)
    config = read_record_if_present(run.config, keys=("name", "year", "cities"),
                                    what="run configuration")
    manifest = _json(run.manifest_path)
    if config is None or manifest is None:
        raise RunDirError("not a gbaugs run folder (no config.json / manifest.json)",
                          where=run, hint="run 'gbaugs run' or 'gbaugs demo' into it first")
    out = Path(out) if out is not None else run.report_html
    cities = [(c["name"], slugify(c["name"]), c.get("size_class", "")) for c in config["cities"]]
    with tempfile.TemporaryDirectory(prefix="gbaugs-report-") as tmp:
        fig = Path(tmp)
        sections = [
            _accuracy(run, cities, fig),
            _maps(run, cities, fig),
            _imagery(run, cities),
            _statistics(run),
            _model(run, fig, config.get("train", {})),
            _samples(run, fig, sensitivity),
            _coverage(run, cities, fig),
            _landscape(run),
            _mspa(run, cities, fig),
            _access(run, cities, fig),
            _reference(run),
            _run_record(config, manifest),
        ]
        stamp = manifest.get("updated", "")
        html = page(f"{config['name']} — urban green space {config['year']}",
                    f"gbaugs run report · {len(cities)} cities · run folder {run.root.name} · "
                    f"last updated {stamp}", sections)
    return write_text(out, html)


def _label_agreement(run: RunDir, cities) -> dict[str, list[dict[str, Any]]]:
    """Per city name, the postprocess stage's ``label_agreement`` rows
    (:mod:`gbaugs.mapping.agreement`), computed here for a run folder that lacks them."""
    from gbaugs.mapping.agreement import label_agreement
    from gbaugs.records import MapRecord

    out = {}
    for name, slug, _ in cities:
        samples, map_path, record = run.samples(slug), run.map(slug), run.map_report(slug)
        found = (MapRecord.load(record).data.get("label_agreement")
                 if record.exists() else None)
        if found is None and samples.exists() and map_path.exists():
            found = label_agreement(samples, map_path)
        if found is not None:
            out[name] = found
    return out


def _confidence(s: Section, cities: Mapping[str, Any], fig: Path) -> None:
    """Does the map's stated confidence hold? The raw labels' confidence against their
    accuracy on the truth, per city: the reliability diagram and the expected calibration
    error (``maps/evaluation.json``, ``calibration``)."""
    curves = {city: r["calibration"] for city, r in cities.items() if r.get("calibration")}
    if not curves:
        return
    s.text("How sure is the map? Every classified pixel has a confidence "
           "(maps/<city>_raw_confidence.tif, percent: one SVM's probability from Platt's sigmoid "
           "fitted on out-of-fold decision values; a vote's share of members agreeing). "
           "Against the truth, pixels binned by confidence: a calibrated map lies on the "
           "diagonal, and the expected calibration error (ECE: the bins' mean gap between "
           "confidence and accuracy, weighted by their pixels) is near 0.")
    s.table(pd.DataFrame([{"city": city, "ECE": c["ece"],
                           "mean confidence": c["mean_confidence"],
                           "accuracy of the raw labels": c["accuracy"], "pixels": c["n"]}
                          for city, c in curves.items()]), digits=3)
    s.image(figures.reliability_figure({city: c["bins"] for city, c in curves.items()},
                                       fig / "reliability.png"), "reliability diagram")


def _accuracy(run: RunDir, cities, fig: Path) -> Section:
    """How right the maps are: against the truth when there is one, else spatial hold-outs
    (the random split comes last, in the model section: it overstates accuracy)."""
    s = Section("accuracy", "How right are the maps?")
    evaluation = _data(EvaluationRecord.load_if_present(run.evaluation))
    if evaluation:
        s.text("Against the synthetic truth, on every valid pixel of each city (UGS = trees "
               "and grass). Baselines on the same pixels: an NDVI threshold chosen without "
               "the truth (Otsu on the city's NDVI) — the floor any map must beat — and the "
               "raw map before post-processing.")
        rows = []
        for city, r in evaluation["cities"].items():
            m, b = r["map"], r["baselines"]
            otsu = b.get("ndvi_otsu", {}).get("f1")
            shares = m["share_mapped_ugs"]
            ugs_first = [*r.get("ugs_classes", []), *sorted(set(shares) - set(
                r.get("ugs_classes", [])))]
            rows.append({"city": city, "F1": m["f1"], "precision": m["precision"],
                         "recall": m["recall"], "kappa": m["kappa"],
                         "F1 NDVI-Otsu": otsu,
                         "beats the NDVI floor": "" if otsu is None else
                         ("yes" if m["f1"] > otsu else "no"),
                         "F1 raw map": b.get("raw_map", {}).get("f1"),
                         **{f"{k} mapped UGS": shares[k] for k in ugs_first if k in shares}})
        s.table(pd.DataFrame(rows), digits=3)
        s.text("Reference classes mapped UGS: the UGS classes (first) should be near 1, the "
               "others near 0.")
        _confidence(s, evaluation["cities"], fig)
    validation = _data(ValidationRecord.load_if_present(run.validation))
    if validation is None:
        return s if evaluation else s.note("No model yet: run the train stage.")
    search = validation.get("search", {})
    labels = describe_origins(run_origins(run, [slug for _, slug, _ in cities]))
    card = _data(ModelCard.load_if_present(run.model_card)) or {}
    rule = card.get("effective_rule")
    if rule and rule.get("is_threshold"):
        s.warning(f"The model is in effect {describe_rule(rule)}: its other features "
                  "change almost no label, so the map is that threshold.")
    baselines = _data(BaselinesRecord.load_if_present(run.baselines)) or {}
    svm_f1 = baselines.get("w_svm", {}).get("polygons", {}).get("f1")
    beaten = beaten_by(baselines, svm_f1) if svm_f1 is not None else []
    if beaten:
        s.warning("On the polygon hold-out, " + ", ".join(
            f"{name} (F1 {f1:.3f})" for name, f1 in beaten)
            + f" beat{'s' if len(beaten) == 1 else ''} the W-SVM (F1 {svm_f1:.3f}): a "
            "simpler model fits these labels better (model/baselines.json).")
    s.heading(f"Spatially separated validation (labels from {labels})")
    s.pairs({"tuning": _tuning_line(search, validation.get("replicates")),
             **({"closest one-feature rule": describe_rule(rule)} if rule and
                rule.get("feature") else {})})
    rows = []
    polygons = validation.get("polygons", {})
    for label, found in (("whole polygons held out", polygons.get("weighted", {})),
                         ("the same, each city's Otsu NDVI threshold alone",
                          polygons.get("ndvi_otsu", {})),
                         ("whole blocks held out",
                          validation.get("blocks", {}).get("weighted", {}))):
        for city, m in found.items():
            rows.append({"validation": label, "city": city,
                         **{k: m[k] for k in ("n", "oa", "precision", "recall", "f1",
                                              "kappa")}})
    if polygons.get("ndvi_otsu") and (said := floor_warning(polygons["weighted"],
                                                            polygons["ndvi_otsu"])):
        s.warning(said)  # the train stage's own WARNING
    if rows:
        s.table(pd.DataFrame(rows))
    agreement = _label_agreement(run, cities)
    if agreement:
        s.heading("Share of each label category mapped UGS (every labelled pixel)")
        s.text("UGS categories should be near 1, hard negatives (farmland, orchards…) and "
               "buildings near 0; background land use holds lawns and gardens. These "
               "pixels are the training labels' polygons, so this is agreement with the "
               f"labels ({labels}).")
        from gbaugs.mapping.agreement import contradiction_warning

        for city, found in agreement.items():
            if (said := contradiction_warning(city, found)) is not None:
                s.warning(said)  # the run's own WARNING, as its log says it
        s.table(pd.DataFrame([
            {"city": city, "label": r["label"], "category": r["category"],
             "pixels": r["pixels"], "mapped UGS": r["mapped_ugs"],
             "contradicts its label": r["contradicts"]}
            for city, found in agreement.items() for r in found]), digits=3)
    return s


def _maps(run: RunDir, cities, fig: Path) -> Section:
    s = Section("maps", "Maps")
    maps = {name: run.map(slug) for name, slug, _ in cities if run.map(slug).exists()}
    if not maps:
        return s.note("No maps yet: run the map and postprocess stages.")
    s.text("Post-processed UGS maps at 10 m: green = UGS, beige = non-UGS, white = no data "
           "(outside the city, water, no valid observation). Beside each city's map, how "
           "sure the classifier is of each label before post-processing (percent; dark = "
           "near 50 %, a coin toss).")
    s.image(quicklooks.region_figure(maps, fig / "region.png"), "all city maps")
    for name, slug, _ in cities:
        if name not in maps:
            continue
        # the stack, or where it stayed in Earth Engine the imagery stage's preview
        picture = next((p for p in (run.stack(slug), run.preview(slug)) if p.exists()), None)
        s.image(quicklooks.city_figure(name, maps[name], picture,
                                       fig / f"city_{slug}.png",
                                       confidence_path=run.confidence_map(slug)),
                f"{name} map")
    return s


def _imagery(run: RunDir, cities) -> Section:
    """What each city's imagery was, as the imagery stage found it (``stack.json``)."""
    from gbaugs.imagery.inspect import MIN_CLEAR_OBS

    s = Section("imagery", "What the imagery was")
    rows, warnings, thin_below = [], [], set()
    for name, slug, _ in cities:
        rec = _data(StackRecord.load_if_present(run.stack_report(slug)))
        if rec is None:
            continue
        acq = rec.get("acquisition") or {}
        dates = (f"{acq['start']} .. {acq['end']}" if acq and acq["start"] != acq["end"]
                 else acq.get("start", "not recorded"))
        clouds = sorted(set((rec.get("cloud_mask") or {}).values())) or ["—"]
        scale = "; ".join(map(_scale_text, rec.get("radiometry", []))) or "as stored"
        res = rec.get("source_resolution_m") or {}
        obs = rec.get("clear_observations") or {}
        if "thin_below" in obs:
            thin_below.add(obs["thin_below"])
        rows.append({
            "city": name, "source": rec.get("composite", rec.get("source")),
            "product level": rec.get("product_level", "—"), "dates": dates,
            "dates left out": len(rec.get("dates_skipped", [])),
            "cloud mask": ", ".join(clouds),
            "cloud-masked obs.": rec.get("cloud_masked_observations", "—"),
            "water rule": rec.get("water_mask", "—"),
            "water px": rec.get("water_pixels", "—"),
            "coverage": rec.get("coverage", "—"),
            "clear obs. (median)": obs.get("median", "—"),
            "thinly observed": obs.get("thin_share", "—"),
            "coarsest source (m)": max(res.values()) if res else "—",
            "scale": scale})
        warnings += [f"{name}: {w}" for w in rec.get("warnings", [])]
    if not rows:
        return s.note("No feature stacks yet: run the imagery stage.")
    s.text("As the imagery stage found it (each city's stack.json): product level (Level-1C "
           "is top-of-atmosphere), the acquisition dates used, the cloud and water masks "
           "and what they removed, the share of the city the imagery covers, how many clear "
           "observations its valid pixels rest on (median, and the thinly observed share: "
           f"fewer than {' or '.join(map(str, sorted(thin_below or {MIN_CLEAR_OBS})))}, "
           "where seasonal "
           "statistics are unreliable), the coarsest "
           "source resolution, and where the reflectance scale came from.")
    s.table(pd.DataFrame(rows))
    if warnings:
        s.heading("Warnings")
        for w in warnings:
            s.warning(w)
    return s


def _scale_text(group: dict[str, Any]) -> str:
    offset = f" {group['offset']:+g}" if group["offset"] else ""
    return f"×{group['scale']:g}{offset} ({group['source']})"


def _table_section(anchor: str, title: str, csv: Path, missing: str, text: str,
                   image: Path | None = None, drop: tuple[str, ...] = ()) -> Section:
    """A section made of one CSV table (and its chart), or a note when it is missing."""
    s = Section(anchor, title)
    table = _csv(csv)
    if table is None:
        return s.note(missing)
    s.text(text)
    s.table(table.drop(columns=[c for c in drop if c in table.columns]))
    return s.image(image, title) if image is not None else s


def _statistics(run: RunDir) -> Section:
    return _table_section(
        "statistics", "City statistics", run.city_statistics,
        "No statistics yet: run the products stage.",
        "Valid area, UGS area and UGS density (UGS pixels / valid pixels) per city and for "
        "the region.", run.city_statistics_chart)


def _tuning_line(search: dict[str, Any], reps: dict[str, Any] | None) -> str:
    """The tuning's folds, spatial-CV score and chosen cell (every replicate's, for a
    vote), and whether it lies on the grid's edge."""
    folds = search.get("cv", "stratified folds")
    if not reps:
        return (f"{folds}; best weighted F1 "
                f"{search.get('best_cv_weighted_f1', float('nan')):.4f} at "
                f"C = {search.get('best', {}).get('C')}, "
                f"γ = {search.get('best', {}).get('gamma')}"
                + (f" — on the grid's edge ({', '.join(search['on_grid_edge'])})"
                   if search.get("on_grid_edge") else " (inside the grid)"))
    scores = [c["cv_weighted_f1"] for c in reps["cells"]]
    edges = sum(1 for c in reps["cells"] if c["on_grid_edge"])
    return (f"a majority vote of {reps['members']} replicates, each tuned by {folds}; "
            f"best weighted F1 {min(scores):.4f}–{max(scores):.4f}; "
            + (f"{edges} replicate(s) on the grid's edge" if edges
               else "every replicate's cell inside the grid"))


def _model_pairs(card: Mapping[str, Any], train: dict[str, Any]) -> dict[str, str]:
    """The model card's summary lines: one SVM, or a vote of replicates."""
    p = card["parameters"]
    tuning = f"{train.get('search', '')} search, {train.get('cv_folds', '')}-fold CV"
    samples = (f"{card['n_train']:,} (sample weights: "
               f"{'yes' if card['sample_weights'] else 'no'})")
    reps = card.get("replicates")
    if not reps:
        return {"classifier": f"RBF-SVM, C = {p['C']}, γ = {p['gamma']}",
                "selected features (k)": f"{p['k']}: {', '.join(card['selected_features'])}",
                "training samples": samples,
                "support vectors": f"{card['n_support_vectors']:,}",
                "tuning": f"{tuning}, best weighted F1 "
                          f"{card['search'].get('best_cv_weighted_f1', float('nan')):.4f}"}
    cells = pd.Series([f"C = {c['C']:g}, γ = {c['gamma']:g}, k = {c['k']}"
                       for c in reps["cells"]]).value_counts()
    scores = [c["cv_weighted_f1"] for c in reps["cells"]]
    n_sv = [m["n_support_vectors"] for m in card["members"]]
    edges = sum(1 for c in reps["cells"] if c["on_grid_edge"])
    out = {"classifier": f"majority vote of {reps['members']} RBF-SVMs (replicates)",
           "cells chosen": "; ".join(f"{cell} ×{n}" for cell, n in cells.items()),
           "training samples": f"{samples} per replicate",
           "support vectors": f"{min(n_sv):,}–{max(n_sv):,} per replicate",
           "tuning": f"{train.get('search', '')} search per replicate, {card['cv']}; best "
                     f"weighted F1 {min(scores):.4f}–{max(scores):.4f}; "
                     f"{edges} replicate(s) on the grid's edge"}
    cost = reps.get("cost")
    if cost:
        first = cost["search_s"][0]
        out["what the vote cost"] = (
            f"{cost['searches_s'] + cost['fits_s']:.1f} s: {reps['members']} searches side by "
            f"side {cost['searches_s']:.1f} s (replicate 0's, {train.get('cv_folds')}-fold, "
            f"{first:.1f} s), {cost['fits']} fits with the chosen cells {cost['fits_s']:.1f} s")
    return out


def _model(run: RunDir, fig: Path, train: dict[str, Any]) -> Section:
    s = Section("model", "Model and validation")
    card = _data(ModelCard.load_if_present(run.model_card))
    validation = _data(ValidationRecord.load_if_present(run.validation))
    if card is None or validation is None:
        return s.note("No model yet: run the train stage.")
    s.pairs(_model_pairs(card, train))
    if card.get("replicates"):
        s.text(f"The map is the majority vote of {card['replicates']['members']} "
               "replicates, each trained on its own draw of the capped pool with its own "
               f"tuning folds and cell ({card['replicates']['reason']}). The validations "
               "below score the vote; none of its members saw the held-out samples.")
    rows = []
    matrices = {}
    for split, label in (("random", "random hold-out"), ("polygons", "polygon hold-out"),
                         ("blocks", "spatial blocks")):
        entry = validation.get(split, {})
        for model in ("weighted", "unweighted"):
            overall = entry.get(model, {}).get("overall")
            if overall:
                rows.append({"validation": label, "model": model,
                             **{k: overall[k] for k in ("n", "oa", "precision", "recall",
                                                        "f1", "iou", "kappa")}})
        weighted = entry.get("weighted", {}).get("overall")
        if weighted:
            matrices[f"{label} (weighted)"] = weighted["confusion"]
    s.heading("Accuracy against the training labels' classes on held-out samples")
    s.table(pd.DataFrame(rows))
    if matrices:
        s.image(figures.confusion_figure(matrices, fig / "confusion.png"),
                "confusion matrices")
    truth = validation.get("synthetic_truth")
    if truth:
        s.heading("Accuracy against the synthetic truth (every valid pixel, raw map)")
        s.table(pd.DataFrame([{"city": city, "model": m, **{k: v[m][k] for k in
                                                            ("oa", "f1", "kappa")}}
                              for city, v in truth.items() for m in ("weighted",
                                                                     "unweighted")]))
    baselines = _data(BaselinesRecord.load_if_present(run.baselines))
    random = validation.get("random", {}).get("weighted", {}).get("overall")
    if baselines and random:
        svm_polygons = baselines.get("w_svm", {}).get("polygons", {}).get("f1")
        rows = [{"model": "W-SVM (weighted)", "cv_f1": card["search"].get(
            "best_cv_weighted_f1"), **{k: random[k] for k in ("oa", "precision", "recall",
                                                              "f1", "kappa")},
                 "f1 polygon hold-out": _or_nan(svm_polygons)}]
        for name, b in baselines.items():
            if name == "w_svm":  # the same model as the first row
                continue
            if isinstance(b, dict) and "holdout" in b:
                rows.append({"model": name, "cv_f1": b.get("cv_f1"),
                             **{k: b["holdout"][k] for k in ("oa", "precision", "recall",
                                                             "f1", "kappa")},
                             "f1 polygon hold-out": _or_nan(b.get("polygons", {}).get("f1"))})
        s.heading("Baseline classifiers (same samples, weights and hold-out)")
        s.table(pd.DataFrame(rows))
        s.image(figures.models_figure(rows, fig / "models.png"), "model comparison")
    return s


def _coverage(run: RunDir, cities, fig: Path) -> Section:
    """Do the labels cover the city's vegetation? (``samples/summary.json`` and the layers
    of :mod:`gbaugs.samples.coverage`), and the vegetation candidates drawn to cover it."""
    s = Section("coverage", "Do the labels cover the city?")
    summary = _data(SamplesSummary.load_if_present(run.samples_summary))
    if summary is None:
        return s.note("No samples yet: run the samples stage.")
    s.text("Every valid pixel outside the label polygons, in the model's features: vegetated "
           "(NDVI above the city's vegetation threshold) or not; like a UGS label or not; "
           "nearer a vegetated non-UGS label or a UGS one. Vegetation like no UGS label and "
           "nearer the non-UGS labels is mapped non-UGS by extrapolation: right where it is "
           "more of the same (unmapped farmland), wrong where it is green space of a kind "
           "the labels lack (woodland). Vegetation candidates are drawn from dense "
           "vegetation far from the hard negatives and taught as weak UGS samples where the "
           "features can tell them apart ([samples] vegetation_candidates).")
    rows, warnings = [], []
    for name, slug, _ in cities:
        c = summary.get("cities", {}).get(slug, {})
        rec, veg = c.get("label_coverage", {}), c.get("vegetation_candidates", {})
        if not rec.get("checked"):
            continue
        rows.append({"city": name, "vegetated, unlabelled (share of valid)":
                     rec["vegetated_pixels"] / max(1, rec["valid_pixels"]),
                     "like a UGS label": rec["like_ugs_share"],
                     "toward non-UGS": rec["toward_negative_share"],
                     "toward UGS": rec["toward_ugs_share"],
                     "vegetated non-UGS samples": rec["vegetated_negative_samples"],
                     "candidates drawn": veg.get("drawn", 0),
                     "candidates screened in": veg.get("screened_in", 0),
                     "candidates in the pool": c.get("vegetation_candidates_pooled", 0)})
        warnings += [f"{name}: {w}" for w in c.get("warnings", [])
                     if "label" in w and ("resembles no UGS" in w or "no vegetated" in w
                                          or "vegetation no label" in w)]
    if not rows:
        return s.note("The check did not run (no UGS sample).")
    s.table(pd.DataFrame(rows), digits=3)
    for w in warnings:
        s.warning(w)
    layers = {name: run.label_coverage(slug) for name, slug, _ in cities
              if run.label_coverage(slug).exists()}
    if layers:
        s.image(quicklooks.coverage_figure(layers, fig / "coverage.png"),
                "label coverage layers")
    return s


def _samples(run: RunDir, fig: Path, sensitivity: pd.DataFrame | None) -> Section:
    s = Section("samples", "Samples and reliability weights")
    pool_path = run.pool
    if not pool_path.exists():
        return s.note("No training pool yet: run the samples stage.")
    pool = pd.read_parquet(pool_path, columns=["city", "label", "level", "weight"])
    counts = pool.groupby(["city", "level"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[c for c in ("high", "medium", "low")
                                     if c in counts.columns])
    counts.columns.name = None
    counts = counts.reset_index()
    s.text(f"{len(pool):,} weighted samples in the balanced multi-city pool "
           f"({int((pool['label'] == 1).sum()):,} UGS). Samples per reliability level:")
    s.table(counts)
    summary = _data(SamplesSummary.load_if_present(run.samples_summary)) or {}
    rows, rule = [], ""
    for city, c in summary.get("cities", {}).items():
        screening = c.get("screening", {})
        th = screening.get("thresholds", {})
        rule = th.get("rule", rule)
        for source, verdicts in screening.get("by_source", {}).items():
            rows.append({"city": city, "source": source, **verdicts,
                         "vegetation threshold": th.get("vegetation"),
                         "bare threshold": th.get("bare"),
                         "half-green threshold": th.get("green_background")})
    if rows:
        s.heading(f"Spectral screening ('{rule}' rule): candidates per label source and "
                  "verdict")
        s.table(pd.DataFrame(rows).fillna(0), digits=3)
        s.note("ok: kept; low_ndvi: UGS below the bare threshold (paths, plazas); "
               "high_ndvi: non-UGS above the vegetation threshold; green_background: "
               "background above the half-green threshold, taught as UGS (lawns, "
               "gardens); mixed_ndvi: background between the two thresholds (mixed "
               "pixels), dropped; like_hard_negative: "
               "green background inside the city's farmland and orchards, dropped.")
    s.image(figures.weights_figure(pool, fig / "weights.png"), "weight distribution")
    if sensitivity is None:
        sensitivity = _csv(run.sensitivity)
    s.heading("Sensitivity of the accuracy to the reliability weights (paper Table 2)")
    if sensitivity is None or sensitivity.empty:
        s.note("Not computed for this run: gbaugs sensitivity RUN_DIR writes the table.")
    else:
        s.table(sensitivity)
    return s


def _landscape(run: RunDir) -> Section:
    return _table_section(
        "landscape", "Landscape metrics", run.landscape_metrics,
        "No landscape metrics yet: run the analysis stage.",
        "Metrics of the UGS class (FRAGSTATS definitions; patches 8-connected; LSI = "
        "e / min e) for the region, its subsystems and each city.",
        run.landscape_chart, drop=("scope",))


def _mspa(run: RunDir, cities, fig: Path) -> Section:
    s = Section("mspa", "Morphological spatial pattern analysis")
    table = _csv(run.mspa_summary)
    if table is None:
        return s.note("No MSPA yet: run the analysis stage.")
    pct = table[["name", "foreground_ha", *[c for c in table.columns if c.endswith("_pct")]]]
    s.text("Share of the UGS pixels in each MSPA class (GuidosToolbox conventions, "
           "EdgeWidth from [analysis]).")
    s.table(pct.rename(columns=lambda c: c.replace("_pct", " %")))
    s.image(run.mspa_chart, "MSPA class shares")
    best, score = None, -1.0
    for name, slug, _ in cities:
        path = run.mspa_map(slug)
        row = table[table["name"] == name]
        if path.exists() and len(row):
            rare = float(row[[f"{c}_pct" for c in ("bridge", "loop", "branch")]].sum(axis=1)
                         .iloc[0])
            if rare > score:
                best, score = (name, path), rare
    if best is not None:
        s.heading(f"Zoom: {best[0]}")
        s.image(quicklooks.mspa_zoom(best[1], fig / "mspa_zoom.png"), "MSPA zoom")
    return s


def _access(run: RunDir, cities, fig: Path) -> Section:
    """Green space within walking distance of the residents (``analysis/access.csv``)."""
    s = Section("access", "Green space within walking distance")
    table = _csv(run.access_table)
    if table is None:
        return s.note("No access table: run the analysis stage with [analysis] access = "
                      "true.")
    record = (_json(run.analysis_record) or {}).get("access", {})
    params = record.get("parameters", {})
    sources = sorted({c.get("residents_from", "") for c in record.get("cities", {}).values()})
    s.text(f"WHO Europe's indicator: the share of residents living within "
           f"{params.get('distance_m', 300):g} m of a green space of at least "
           f"{params.get('min_area_ha', 1):g} ha (the map's UGS patches), straight and — "
           "where the city's OSM file holds streets — along the walking network; UGS m² "
           f"per resident. Residents from: {', '.join(sources) or 'not recorded'}. "
           "docs/access.md says how each number is made.")
    table = table.copy()
    table["zone"] = table["zone"].fillna("")
    table["residents"] = table["residents"].round().astype("int64")
    shown = table.rename(columns={"share_euclidean": "share within (straight)",
                                  "share_network": "share within (walking)",
                                  "ugs_m2_per_resident": "UGS m² / resident"})
    keep = [c for c in ("city", "zone", "residents", "share within (straight)",
                        "share within (walking)", "UGS m² / resident") if c in shown]
    s.table(shown[keep], digits=3)
    layers = {name: run.access_map(slug) for name, slug, _ in cities
              if run.access_map(slug).exists()}
    if layers:
        s.image(quicklooks.access_figure(layers, params.get("distance_m", 300.0),
                                         fig / "access.png"),
                "distance to the nearest large green space")
    return s


def _reference(run: RunDir) -> Section:
    return _table_section(
        "reference", "Reference products", run.reference_comparison_csv,
        "No reference products were configured for this region.",
        "Agreement of each city's map with reference land-cover products crosswalked to "
        "UGS, on the map's grid.")


def _run_record(config: dict[str, Any], manifest: dict[str, Any]) -> Section:
    s = Section("run", "Run record")
    rows = []
    versions: dict[str, str] = {}
    from gbaugs.stage import STAGE_ORDER

    stages = manifest.get("stages", {})
    for name in sorted(stages, key=lambda n: STAGE_ORDER.index(n) if n in STAGE_ORDER
                       else len(STAGE_ORDER)):
        rec = stages[name]
        status = rec.get("status", "")
        if name == "report" and status == "running":
            status = "done: this report"  # the record is written when the page is
        rows.append({"stage": name, "status": status,
                     "seconds": rec.get("seconds"), "finished": rec.get("finished", ""),
                     "gbaugs": rec.get("gbaugs_version", ""),
                     "fingerprint": rec.get("fingerprint", "")[:12]})
        versions.update(rec.get("versions") or {})
    s.heading("Stages")
    s.table(pd.DataFrame(rows))
    s.heading("Package versions")
    s.pairs(dict(sorted(versions.items())))
    s.heading("Parameters (config.json)")
    return s.code(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False))
