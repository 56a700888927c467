"""Demo part: our LSTM and peephole LSTM learn short binary palindromes to 100% held-out accuracy.

Both cells train with the ``tuned`` preset on L = 10 (input 41 tokens), one seed each, stopping
once the 10 000 held-out sequences are all classified right; then the figures are drawn.
"""

TITLE = "Sequence memory: LSTM and peephole LSTM on binary palindromes"
CELLS = ("lstm", "peephole")
LENGTH = 10
SEED = 42
MAX_STEPS = 1000


def run(run_dir, saved_models):
    """Train both cells in ``run_dir``, draw the figures; return the report's markdown section."""
    from trainers.memory.config import PRESETS, MemoryConfig
    from trainers.memory.grid import run_grid
    from trainers.memory.report import summary_markdown, write_report

    settings = {**PRESETS["tuned"], "steps": MAX_STEPS}
    configs = [
        MemoryConfig(task="palindrome", cell=cell, length=LENGTH, seed=SEED, early_stop=1.0,
                     eval_every=50, **settings)
        for cell in CELLS
    ]
    results = run_grid(configs, run_dir, saved_models)
    written = write_report(results, run_dir)
    images = "\n".join(
        f"![{p.stem}]({run_dir.name}/{p.name})" for p in written if p.suffix == ".png"
    )
    return (
        f"Binary palindromes with L = {LENGTH}: the model must recall the first bit after "
        f"{4 * LENGTH} more tokens. Each run stops once all held-out sequences are right "
        f"(at most {MAX_STEPS} steps).\n\n{summary_markdown(results)}\n{images}\n\n"
        f"Full grid: `seqgraph memory --cells lstm peephole --lengths 10 20`."
    )
