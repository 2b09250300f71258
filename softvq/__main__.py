"""Command line: train and evaluate runs, one results JSON each.

    python -m softvq run --bottleneck soft_vqvae --iterations 2000 --seeds 0 1 2
    python -m softvq preset table1 --iterations 40000 --seeds 0 1 2
    python -m softvq preset ablation --iterations 5000 --seeds 0 1
    python -m softvq preset noise --iterations 5000 --seeds 0
    python -m softvq preset scaling --iterations 5000 --seeds 0
    python -m softvq preset table2-sweep --dataset cifar10-jpeg --iterations 2000 --seeds 0 1
    python -m softvq preset estimators-sweep --seeds 0        # choosing the estimators study's settings
    python -m softvq preset estimators --seeds 0 1 2 3 4 --results results/estimators
    python -m softvq preset quantizers-sweep --dataset mnist --seeds 0 1   # today's quantizers' settings
    python -m softvq preset quantizers --dataset mnist --seeds 0 1 2 3 4 --only vq_ema simvq fsq diveq
    python -m softvq preset table1 --precision bf16 --compile --device cuda    # GPU numerics
    python -m softvq preset table1 --seeds 0 1 2 3 4 --launcher slurm --partition gpu --gpus-per-job 1
    python -m softvq gpu-check                        # on a CUDA machine: every GPU path once -> JSON
    python -m softvq gpu-run table2                   # a GPU slot: Table 2 at the paper's budget, K / sigma_k sweep
    python -m softvq download mnist cifar10           # fetch data sets with torchvision (internet)

run and preset first check that the data sets their configs need are in the data folder, and stop with one
`error:` line naming what is missing, where it was looked for and how to get it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os

import torch

from . import data, gpu_check, gpu_run, launch, presets, runner
from .config import ALL_BOTTLENECKS, Config, field_type
from .store import RESULTS_DIR
from .train import PRECISIONS, flush_to_zero, free_cores

PRESETS = {
    "table1": lambda a: presets.table1(a.seeds, a.iterations, a.dataset or "mnist",
                                           presets.table1_rows(a.pick) if a.pick else None,
                                           validation=a.validation, **numerics(a)),
    "figure4": lambda a: presets.figure4(a.seeds, a.iterations, **numerics(a)),
    "table2": lambda a: presets.table2(a.dataset or "cifar10", a.seeds, a.iterations, **numerics(a)),
    "ablation": lambda a: presets.flatten(presets.ablation(a.seeds, a.iterations, **numerics(a))),
    "noise": lambda a: presets.flatten(presets.noise_sweep(a.seeds, a.iterations, dataset=a.dataset or "mnist",
                                                                   **numerics(a))),
    "scaling": lambda a: presets.flatten(presets.scaling_sweep(a.seeds, a.iterations,
                                                                       dataset=a.dataset or "mnist", **numerics(a))),
    "table2-scaling": lambda a: presets.flatten(presets.scaling_sweep(a.seeds, a.iterations,
                                                                              dataset=a.dataset or "cifar10",
                                                                              **numerics(a))),
    "table2-sweep": lambda a: presets.flatten(presets.table2_sweep(a.dataset or "cifar10", a.seeds, a.iterations,
                                                                           **numerics(a))),
    "estimators-sweep": lambda a: presets.flatten(presets.estimators_sweep(a.seeds, a.iterations,
                                                                                   dataset=a.dataset or "mnist",
                                                                                   **numerics(a))),
    "quantizers-sweep": lambda a: presets.flatten(presets.quantizers_sweep(a.seeds, a.iterations,
                                                                                   dataset=a.dataset or "mnist",
                                                                                   **numerics(a))),
    "quantizers": lambda a: presets.flatten(presets.quantizers(
        a.dataset or "mnist", a.seeds, a.iterations,
        {presets.quantizer_row(p): p for p in a.pick} if a.pick else None, **numerics(a))),
    "estimators": lambda a: presets.flatten(presets.estimators(a.seeds, a.iterations, **numerics(a))),
}
# --iterations when not given: the paper's 40,000, except Table 2 (None: each row's own budget) and the sweeps
DEFAULT_ITERATIONS = {"table2": None, "table2-sweep": 2_000, "table2-scaling": 2_000, "estimators-sweep": 5_000,
                      "quantizers-sweep": 5_000}


def numerics(args: argparse.Namespace) -> dict:
    """The Config fields a preset takes from the command line besides seeds and iterations."""
    return dict(precision=args.precision, compile=args.compile)


BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def boolean(text: str) -> bool:
    """argparse type: true/false, 1/0 or yes/no, any case."""
    if text.lower() not in BOOLEANS:
        raise argparse.ArgumentTypeError(f"expected one of {'/'.join(BOOLEANS)}, got {text!r}")
    return BOOLEANS[text.lower()]


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m softvq` (subcommands run, preset, gpu-check, download)."""
    parser = argparse.ArgumentParser(prog="python -m softvq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="one configuration (any Config field as --field value)")
    for f in dataclasses.fields(Config):
        if f.name != "seed":
            kind = boolean if f.type in ("bool", bool) else type(f.default)
            one.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=f.default)
    preset = sub.add_parser("preset", help="a named set of runs: " + ", ".join(PRESETS))
    preset.add_argument("name", choices=sorted(PRESETS))
    preset.add_argument("--iterations", type=field_type("iterations"), default=None)
    preset.add_argument("--dataset", default=None, help="table1, noise, scaling, estimators-sweep, quantizers-sweep, "
                        "quantizers: mnist (default) or fashion-mnist; table2, table2-sweep and table2-scaling: "
                        "cifar10 (default), svhn, cifar10-jpeg")
    preset.add_argument("--validation", action="store_true", help="evaluate on the held-out validation split")
    preset.add_argument("--only", nargs="+", default=None, choices=sorted(ALL_BOTTLENECKS), metavar="BOTTLENECK",
                        help="run only these bottlenecks")
    preset.add_argument("--pick", nargs="+", default=None, metavar="ROW",
                        help="table1: settings picked on a validation sweep instead of Table 1's, as the sweep's "
                             "rows name them, e.g. 'noise_std 0.03' 'vae KL/d'; quantizers: the quantizers-sweep "
                             "rows to train instead of the committed choices, e.g. 'fsq levels 8-4-4 scale 1'")
    preset.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp32, tf32, bf16 or fp16 (GPU)")
    preset.add_argument("--compile", action="store_true", help="torch.compile the training step")
    gpu = sub.add_parser("gpu-check", help="on a CUDA machine: every GPU path once, at most 4 minutes (one JSON)")
    gpu_check.add_arguments(gpu)
    gpu_run.add_arguments(sub.add_parser("gpu-run", help="a GPU slot: Table 2 at the paper's budget"))
    fetch = sub.add_parser("download", help="fetch data sets into the data folder with torchvision (internet)")
    fetch.add_argument("names", nargs="+", choices=data.DOWNLOADABLE, metavar="NAME",
                       help=", ".join(data.DOWNLOADABLE))
    fetch.add_argument("--data-root", default=None, help="data folder (default: $SOFTVQ_DATA or ./data)")
    for p in (one, preset, gpu):
        p.set_defaults(command_parser=p)            # so that an error is reported by its subcommand's parser
    for p in (one, preset):
        p.add_argument("--seeds", type=field_type("seed"), nargs="+", default=[0])
        p.add_argument("--data-root", default=None, help="data folder (default: $SOFTVQ_DATA or ./data)")
        p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
        p.add_argument("--results", default=str(RESULTS_DIR), help="results folder")
        launch.add_arguments(p)
    return parser


def main(argv=None) -> None:
    flush_to_zero()                     # before torch starts its thread pool (see softvq.train.flush_to_zero)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "gpu-check":
        raise SystemExit(gpu_check.run(args))
    if args.command == "gpu-run":
        raise SystemExit(gpu_run.run(args))
    if args.command == "download":
        print("downloaded into", data.download(args.names, args.data_root))
        return
    if "OMP_NUM_THREADS" not in os.environ:             # training commands: about 50 ms to measure the load
        torch.set_num_threads(free_cores())     # beside busy processes, fewer threads train faster
    try:
        configs, launcher = build_configs(args), launch.from_arguments(args)
    except ValueError as e:             # a bad Config field or launcher option: one `error:` line, exit status 2
        args.command_parser.error(str(e))
    absent = data.missing([c.dataset for c in configs], args.data_root)
    if absent:                          # before any training: one `error:` line (no usage: the arguments are fine)
        stop(args, data.missing_message(absent))
    try:
        read_image_folders(configs, args.data_root)
    except (OSError, ValueError) as e:  # no class folders, no images, images of different sizes, a broken image
        stop(args, f"unusable image folder: {e}")
    try:
        records = runner.run(configs, root=args.data_root, device=args.device, results_dir=args.results,
                                  launcher=launcher)
    except launch.JobsFailed as e:
        raise SystemExit(f"error: {e}")
    for record in records:
        print(json.dumps({"run_id": record["run_id"], **record["metrics"],
                          "train_time_s": round(record["train_time_s"], 1)}))


def stop(args: argparse.Namespace, message: str) -> None:
    """Exit with status 2 and `message` as one `error:` line of the subcommand (no usage: the arguments parse)."""
    line = " ".join(part.strip() for part in message.splitlines())
    args.command_parser.exit(2, f"{args.command_parser.prog}: error: {line}\n")


def read_image_folders(configs: list[Config], root=None) -> None:
    """Read the image folders (`folder:` data sets) of `configs` once before training (memoised, so training
    reads them again for free), so that an unusable one stops the command before anything starts."""
    for name in dict.fromkeys(c.dataset for c in configs if c.dataset.startswith(data.FOLDER_PREFIX)):
        for split in data.SPLITS:
            data.load_dataset(name, split, root)


def build_configs(args: argparse.Namespace) -> list[Config]:
    """The configs the parsed command line asks for."""
    if args.command == "run":
        fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if f.name != "seed"}
        return [Config(**fields, seed=s) for s in args.seeds]
    if args.iterations is None:
        args.iterations = DEFAULT_ITERATIONS.get(args.name, 40_000)
    configs = PRESETS[args.name](args)
    return [c for c in configs if c.bottleneck in args.only] if args.only else configs


if __name__ == "__main__":
    main()
