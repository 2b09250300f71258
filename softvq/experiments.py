"""One name for the experiment API, for users, benchmarks and tests: `experiments.X` and `from softvq.experiments
import X`, while each idea lives in its own module. Nothing in the package or the notebooks imports it (a test
checks): they import from the modules themselves:

    softvq.config      Config, its field checks, run ids and stacks
    softvq.presets     the paper's presets, the sweeps, choosing Table 2's, the estimators' and the quantizers' rows
    softvq.evaluation  splits, the downstream scores, the raw-pixel row
    softvq.runner      run / run_stack: stacks of configs -> trained, scored, written
    softvq.store       where results, checkpoints and latents live; atomic writes; reads that name a damaged file
"""
from . import data, launch                                      # noqa: F401  (tests patch their functions here)
from .config import EVALUATION, FIELD_CHECKS, HASHED_WHEN_SET, QUANTIZERS, STACKABLE, Config  # noqa: F401
from .evaluation import VALIDATION_SIZE, downstream, evaluate_raw, splits  # noqa: F401
from .presets import (  # noqa: F401
    CHOICE_METRIC, ESTIMATOR_CANDIDATES, ESTIMATOR_CHOICES, ESTIMATOR_FAMILIES, NOISE_LEVELS, OFFICIAL_CODE,
    PAPER_BASELINES, PAPER_BASELINES_CNN, PAPER_CHOICES, PAPER_SOFT_VQVAE, QUANTIZER_CANDIDATES,
    QUANTIZER_CHOICE_METRIC, QUANTIZER_CHOICES, SCALING_D, SCALING_ROWS, SCALINGS,
    SQVAE_CHOICES, SQVAE_SCALINGS, SQVAE_SWEEP_SEEDS, SVHN_CODE, TABLE1, TABLE2, TABLE2_D, TABLE2_SOFT_CANDIDATES,
    TABLE2_SWEEP_NOISE, ablation,
    best_row, choose_estimators, choose_quantizers, choose_table2, estimators, estimators_sweep, figure4, flatten,
    noise_sweep, quantizer_row, quantizers, quantizers_sweep,
    official_code, scaling_rows, scaling_sweep, table1, table1_rows, table2, table2_for, table2_rows, table2_sweep,
)
from .runner import MAX_STACK, build_stack, group_stacks, latents, run, run_stack, stack_limit  # noqa: F401
from .store import CHECKPOINT_DIR, RESULTS_DIR, latents_path, result_path, write_json  # noqa: F401
