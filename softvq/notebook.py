"""What a notebook does around its story, so that each section reads as the claim, one call, the table or the
plot, and the verdict:

    setup(budget, overrides, ...)   the parameters cell -> a `Setup`: the budget's settings, the folders, how
                                    runs train; one `overrides` dict holds every setting not in view
    Setup.run(configs)              train the runs whose results are missing (when the notebook may train)
    Setup.raw_row(dataset)          the raw-pixel row of a table
    Setup.tabulate(configs, stem)   a section's table: train what is missing, write the table and its seed
                                    statistics beside the figures, show them, name the runs still missing
    Setup.quantizers(rows, stem)    the same for the quantizers study's wider table (`softvq.quantizer_table`)
    verdict(title, text)            a section's verdict, shown as Markdown
    show(table, caption)            a table under its caption (the machines and commits it was trained on)
    reconstructions(setup, config)  notebook 02's run: its record and a few test images with their reconstructions
    tsne_maps(setup, configs, ...)  Figure 4's t-SNE maps of the runs' test codes

The reconstructions and the t-SNE maps are kept beside the figures (figures/data/), keyed by the run ids they
come from, so that a notebook redraws its figure from them without the models, and never from another run's.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from . import budgets, data, plots, quantizer_table, runner, store, tables, verdicts
from .config import Config
from .evaluation import evaluate_raw
from .presets import flatten
from .train import flush_to_zero, free_cores

# Options of a notebook run: folders, data, device and numerics, training jobs, progress bars. A notebook's
# `overrides` may set any of them or any setting of its budget (budgets.BUDGETS).
OPTIONS = {"figures_dir": None, "results_dir": None, "checkpoint_dir": None,   # None: the budget's folders
           "data_root": None,       # None: $SOFTVQ_DATA or ./data
           "download": None,        # fetch a missing data set before training (None: on Colab only)
           "device": None,          # None: CUDA when present
           "precision": "fp32",     # fp32, tf32, bf16 or fp16 (for a GPU)
           "compile": False,        # torch.compile the training step (for a GPU)
           "launcher": {},          # {}: train in the kernel; {"kind": "local" or "slurm", ...}: as jobs
           "threads": None,         # torch's CPU threads in the kernel (None: the cores no other process keeps busy)
           "progress": True}        # training progress bars


@dataclasses.dataclass
class Setup:
    """One notebook run: the budget, its settings (`budgets.budget`), the options (OPTIONS), the figures, results
    and checkpoints folders, and whether runs whose results are missing are trained."""
    budget: str
    settings: dict
    options: dict
    figures: Path
    results: Path
    checkpoints: Path
    train_missing: bool = True

    @property
    def evaluation(self) -> dict:
        """How the budget scores codes (`budgets.evaluation`): for every run and the raw-pixel rows."""
        return budgets.evaluation(self.settings)

    @property
    def presets(self) -> dict:
        """The Config fields every preset of this run takes: the budget's evaluation and the numerics."""
        return {**self.evaluation, "precision": self.options["precision"], "compile": self.options["compile"]}

    @property
    def table2_datasets(self) -> tuple[str, ...]:
        return tuple(self.settings["table2_datasets"])

    def fetch(self, names: Iterable[str]) -> None:
        """Download the data sets `names` where the `download` option asks for it (on Colab by default)."""
        if data.wants_download(self.options["download"]):
            data.download(names, self.options["data_root"])

    def run(self, configs: Iterable[Config] | Mapping[str, Sequence[Config]], results_dir=None) -> None:
        """Train the runs of `configs` whose results JSON is missing (in `results_dir`, default the results
        folder), as the launcher option says; nothing unless the notebook may train."""
        if not self.train_missing:
            return
        configs = flatten(configs)
        self.fetch(list(dict.fromkeys(c.dataset for c in configs)))
        runner.run(configs, root=self.options["data_root"], device=self.options["device"],
                   results_dir=results_dir or self.results, checkpoint_dir=self.checkpoints,
                   progress=self.options["progress"], launcher=self.options["launcher"])

    def raw_row(self, dataset: str = "mnist") -> dict[str, list[dict]] | None:
        """{"raw": [record]}: the scores of `dataset`'s raw pixels (`evaluation.evaluate_raw`) as a row for
        `tabulate`'s records, read from its JSON, or computed and written when the notebook may train; None
        without it."""
        if self.train_missing:
            self.fetch([dataset])
        record = evaluate_raw(dataset, root=self.options["data_root"], results_dir=self.results,
                              compute=self.train_missing, device=self.options["device"], **self.evaluation)
        return {"raw": [record]} if record else None

    def stem(self, stem: str, dataset: str | None) -> str:
        """A table's file name: `stem`, or for one of several Table 2 data sets `tables.per_dataset_stem`."""
        return stem if dataset is None else tables.per_dataset_stem(stem, dataset, self.table2_datasets)

    def tabulate(self, configs: Mapping[str, Sequence[Config]] | Sequence[Config], stem: str, *,
                 dataset: str | None = None, reference: str | Callable | None = None, statistics: bool = False,
                 paper_table: str | None = None, records: Mapping[str, Sequence[dict]] | None = None,
                 metrics: Sequence[str] | None = None, note: str = "", results_dir=None
                 ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """A section's table: train the runs of `configs` whose results are missing (`run`), write
        figures/<stem>.csv and .md (`tables.make_table`; for one of several Table 2 data sets the stem names
        it), show the table and name the runs still missing.

        With `reference` (a row, or a function (configs, results folder) -> row such as `presets.best_row`,
        called once every run has its results; the first row until then) also the seed statistics against
        that row, written as <stem>_stats and shown with `statistics`. Returns the table and the statistics
        (None without a reference)."""
        results = Path(results_dir) if results_dir is not None else self.results
        self.run(configs, results)
        df = tables.make_table(configs, self.stem(stem, dataset), self.figures, results, paper_table, records, note,
                               metrics, self.budget)
        if df.attrs["missing"]:
            print(f"missing runs ({len(df.attrs['missing'])}):", *df.attrs["missing"], sep="\n  ")
        show(tables.format_table(df, metrics), tables.budget_note(df))
        if reference is None:
            return df, None
        if callable(reference):
            rows = tables.group_configs(configs)
            reference = reference(rows, results) if not df.attrs["missing"] else next(iter(rows))
        stats = tables.seed_statistics(configs, reference, results, records)
        tables.write_statistics(stats, self.stem(f"{stem}_stats", dataset), self.figures, budget=self.budget)
        if statistics:
            _display(tables.format_statistics(stats))
        return df, stats

    def quantizers(self, rows: Mapping[str, Sequence[Config]], stem: str, results_dirs: Sequence, note: str = ""
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list[dict]]]:
        """The quantizers study's section: train the runs of `rows` missing from every folder of `results_dirs`
        (into the results folder), write figures/<stem>.csv and .md (`quantizer_table`) and <stem>_stats (seed
        statistics against the soft VQ-VAE), show both and name the runs still missing. Returns the table, the
        statistics and the records by row."""
        self.run([c for c in flatten(rows) if tables.read_result(c, results_dirs) is None])
        df, records = quantizer_table.quantizer_table(rows, results_dirs)
        quantizer_table.write_quantizer_table(df, stem, self.figures, note, self.budget)
        if df.attrs.get("missing"):
            print(f"missing runs ({len(df.attrs['missing'])}):", *df.attrs["missing"], sep="\n  ")
        stats = tables.seed_statistics(rows, "soft_vqvae", results_dirs)
        tables.write_statistics(stats, f"{stem}_stats", self.figures, budget=self.budget)
        show(quantizer_table.format_quantizer_table(df), tables.budget_note(df))
        _display(tables.format_statistics(stats))
        return df, stats, records

    def codebook(self, configs: Mapping[str, Sequence[Config]] | Sequence[Config], stem: str, note: str,
                 title: str = "Verdict.") -> tuple[pd.DataFrame, dict[str, list[dict]]]:
        """A codebook section: train the quantizer runs of `configs` whose results are missing (`run`), write
        figures/<stem>.csv and .md of `tables.codebook_table` over their stored statistics, show it and its
        verdict (`verdicts.codebook_verdict`). Returns the table and the records by row (for
        `plots.plot_codebook`)."""
        self.run(configs)
        records = tables.records_by_row(configs, self.results)
        df = tables.codebook_table(records)
        tables.write_codebook_table(df, stem, self.figures, note=note, budget=self.budget)
        show(df, tables.trained_on_line(records))
        verdict(title, verdicts.codebook_verdict(df))
        return df, records


def setup(budget: str = "quick", overrides: Mapping | None = None, train_missing: bool = True,
          **settings) -> Setup:
    """The `Setup` of a notebook from its parameters cell: the budget, the `overrides` dict (any OPTIONS key or
    setting of the budget), whether it may train, and the budget settings the notebook keeps in view (e.g.
    `iterations=iterations`; None keeps the budget's, and one that is not None wins over the same key in
    `overrides`). The figures folder is created.

    Raises:
        ValueError: an unknown budget, or a key of `overrides` that is neither an option nor a budget setting.
    """
    flush_to_zero()             # the kernel trains: before torch's first operation (softvq.train.flush_to_zero)
    overrides = dict(overrides or {})
    known = set(budgets.budget(budget))
    unknown = sorted(set(overrides) - known - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown overrides {unknown}: expected options {sorted(OPTIONS)} or budget settings "
                         f"{sorted(known)}")
    options = {k: overrides.get(k, v) for k, v in OPTIONS.items()}
    torch.set_num_threads(options["threads"] or free_cores())
    chosen = budgets.budget(budget, **{**{k: v for k, v in overrides.items() if k in known},
                                       **{k: v for k, v in settings.items() if v is not None}})
    folders = budgets.output_dirs(budget, options["figures_dir"], options["results_dir"], options["checkpoint_dir"])
    return Setup(budget, chosen, options, *folders, train_missing=train_missing)


def verdict(title: str, text: str) -> None:
    """Show a section's verdict: a bold title, then the sentences of `softvq.verdicts`."""
    from IPython.display import Markdown
    _display(Markdown(f"**{title}**\n\n{text}"))


def show(table, caption: str) -> None:
    """Show a table under its caption (what it was trained on and from which commit, as its figures/*.md says), so
    that a table mixing machines or commits says so where it is read."""
    from IPython.display import Markdown
    if caption:
        _display(Markdown(f"*{caption}*"))
    _display(table)


def _display(obj) -> None:
    from IPython.display import display
    display(obj)


def reconstructions(s: Setup, config: Config, n_images: int = 10) -> tuple[dict | None, dict | None]:
    """(results record, {"x", "x_hat"}) of the run `config`: its record, and `n_images` test images with their
    reconstructions kept in figures/data/train_<run id>_reconstructions.npz. A run without results is trained
    (and both written) when the notebook may train. A finished run is never trained again: its missing
    reconstructions are decoded from its stack's final checkpoint (`runner.finished_model`), or a line says
    why they cannot be. A part still missing is None."""
    record = store.read_result(config, s.results)
    path = s.figures / "data" / f"train_{config.run_id}_reconstructions.npz"
    saved = store.read_arrays(path)
    model = None
    if record is None and s.train_missing:
        s.fetch([config.dataset])
        trained = runner.train_missing([config], root=s.options["data_root"], device=s.options["device"],
                                       results_dir=s.results, checkpoint_dir=s.checkpoints,
                                       progress=s.options["progress"], keep_model=True)
        if trained is not None:
            (record,), model, _ = trained
            index = 0
        else:                           # another process finished it while this one waited for its lock
            record = store.read_result(config, s.results)
    if record is not None and saved is None and model is None:
        try:
            model, index = runner.finished_model(config, s.options["data_root"], s.checkpoints)
        except runner.LatentsMissing as e:
            print(f"missing: {e}")
    if model is not None:
        x = data.load_dataset(config.dataset, "test", s.options["data_root"])[0][:n_images]
        saved = {"x": x.numpy(), "x_hat": model.reconstruct(x)[index].cpu().numpy()}
        store.write_arrays(path, **saved)
    if record is None:
        print(f"missing: {store.result_path(config, s.results)}; run with train_missing = True")
    return record, saved


def tsne_maps(s: Setup, configs: Sequence[Config], points: int, seed: int = 0,
              perplexity: float = 30.0, name: str = "figure4") -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """{bottleneck: (t-SNE points (N, 2), digit labels (N,))} of the test codes z_e of the runs `configs`: the
    same `points` random test images for every run (all of them when there are fewer), embedded by `plots.tsne`.

    The maps are kept in figures/data/<name>_tsne.npz with the run ids and the number of points they were made
    from, and reused while both match. Otherwise they are made from the runs' saved codes (`runner.latents`),
    after training the runs without results when the notebook may train; None, with a line saying what is
    missing, when a run is unfinished or its codes cannot be had."""
    path = s.figures / "data" / f"{name}_tsne.npz"
    run_ids = [c.run_id for c in configs]
    saved = store.read_arrays(path)
    fresh = saved is not None and list(saved["run_ids"]) == run_ids and saved["tsne_points"] == points
    if not fresh:
        saved = _make_tsne_maps(s, configs, points, seed, perplexity)
        if saved is None:
            return None
        store.write_arrays(path, **saved)
    return {c.bottleneck: (saved[c.bottleneck], saved["labels"]) for c in configs}


def _make_tsne_maps(s: Setup, configs: Sequence[Config], points: int, seed: int,
                    perplexity: float) -> dict | None:
    """The arrays `tsne_maps` keeps, from the runs' codes; None (and one line) when some cannot be had."""
    s.run(configs)
    unfinished = [c.run_id for c in configs if store.read_result(c, s.results) is None]
    if unfinished:
        print(f"missing: the runs {unfinished} (results in {s.results}); run with train_missing = True")
        return None
    try:
        codes = {c.bottleneck: runner.latents(c, s.options["data_root"], s.options["device"], s.results,
                                              s.checkpoints, s.options["progress"]) for c in configs}
    except FileNotFoundError as missing:
        print(f"missing: {missing}")
        return None
    labels = next(iter(codes.values()))[1]
    index = plots.subsample(len(labels), points, seed)
    return {"run_ids": [c.run_id for c in configs], "tsne_points": points, "labels": labels[index].numpy(),
            **{name: plots.tsne(z[index], seed=seed, perplexity=perplexity) for name, (z, _) in codes.items()}}
