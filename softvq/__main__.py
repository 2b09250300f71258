"""Command line: train and evaluate runs, one results JSON each.

    python -m softvq run --bottleneck soft_vqvae --iterations 2000 --seeds 0 1 2
    python -m softvq preset table1 --iterations 40000 --seeds 0 1 2
    python -m softvq preset ablation --iterations 5000 --seeds 0 1
    python -m softvq preset noise --iterations 5000 --seeds 0
    python -m softvq preset scaling --iterations 5000 --seeds 0
"""
from __future__ import annotations

import argparse
import dataclasses
import json

from . import experiments
from .experiments import Config

PRESETS = {
    "table1": lambda a: experiments.table1(a.seeds, a.iterations, validation=a.validation),
    "figure4": lambda a: experiments.figure4(a.seeds, a.iterations),
    "table2": lambda a: experiments.table2(a.dataset, a.seeds, a.iterations),
    "ablation": lambda a: experiments.flatten(experiments.ablation(a.seeds, a.iterations)),
    "noise": lambda a: experiments.flatten(experiments.noise_sweep(a.seeds, a.iterations)),
    "scaling": lambda a: experiments.flatten(experiments.scaling_sweep(a.seeds, a.iterations)),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m softvq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="one configuration (any Config field as --field value)")
    for f in dataclasses.fields(Config):
        if f.name != "seed":
            kind = (lambda s: s.lower() in ("1", "true", "yes")) if f.type in ("bool", bool) else type(f.default)
            one.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=f.default)
    preset = sub.add_parser("preset", help="a named set of runs: " + ", ".join(PRESETS))
    preset.add_argument("name", choices=sorted(PRESETS))
    preset.add_argument("--iterations", type=int, default=None)
    preset.add_argument("--dataset", default="cifar10", help="for table2")
    preset.add_argument("--validation", action="store_true", help="evaluate on the held-out validation split")
    preset.add_argument("--only", nargs="+", default=None, metavar="BOTTLENECK", help="run only these bottlenecks")
    for p in (one, preset):
        p.add_argument("--seeds", type=int, nargs="+", default=[0])
        p.add_argument("--data-root", default=None, help="data folder (default: $SOFTVQ_DATA or ./data)")
        p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
        p.add_argument("--results", default=str(experiments.RESULTS_DIR), help="results folder")
    args = parser.parse_args(argv)

    if args.command == "run":
        fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if f.name != "seed"}
        configs = [Config(**fields, seed=s) for s in args.seeds]
    else:
        if args.iterations is None and args.name != "table2":
            args.iterations = 40_000
        configs = PRESETS[args.name](args)
        if args.only:
            configs = [c for c in configs if c.bottleneck in args.only]
    for record in experiments.run(configs, root=args.data_root, device=args.device, results_dir=args.results):
        print(json.dumps({"run_id": record["run_id"], **record["metrics"],
                          "train_time_s": round(record["train_time_s"], 1)}))


if __name__ == "__main__":
    main()
