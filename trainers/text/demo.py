"""Demo part: a short character-LSTM training on the built-in corpus, samples and an export.

Trains ``seqgraph text train``'s model (2 × 256 LSTM, sequence 30, batch 64) for a few hundred
steps on Python's language reference, exports it to ``saved_models/char_lstm/<version>/`` and
completes a prompt from the reloaded export, as TensorFlow Serving would.
"""

TITLE = "Text generation: a character-level LSTM"
DEMO_STEPS = 400
PROMPT = "The import statement"


def run(run_dir, saved_models):
    from keras_models.backend import tf

    from trainers.text.config import TextConfig
    from trainers.text.train import train_text

    config = TextConfig(steps=DEMO_STEPS, log_every=100, sample_length=120)
    result = train_text(config, runs_dir=run_dir, saved_models=saved_models, verbose=2)
    serve = tf.saved_model.load(result["export"]).signatures["serving_default"]
    completions = {
        temperature: serve(prompt=tf.constant([PROMPT]), length=tf.constant(120),
                           temperature=tf.constant(temperature))["generated"][0].numpy()
        for temperature in (0.0, 0.5)
    }
    lines = [
        f"{config.steps} steps of batch {config.batch_size} × {config.seq_length} characters on "
        f"the built-in corpus (`pydoc_data.topics`), {config.layers} × {config.units} "
        f"`{config.cell}` cells: held-out accuracy **{result['val_accuracy']:.3f}**, "
        f"**{result['val_bits_per_character']:.2f}** bits per character "
        f"(training accuracy {result['accuracy']:.3f}), "
        f"{result['train_seconds']:.0f} s of training.",
        "",
        f"Run folder `{result['run_dir']}`: `samples.md` (greedy, T = 0.5, 1, 2 and top-p 0.9 "
        "samples after 1/3, 2/3 and 3/3 of training), `loss.png`, `accuracy.png`, TensorBoard "
        "logs.",
        "",
        f"Export `{result['export']}`; its `serving_default` completes `{PROMPT}`:",
        "",
    ]
    for temperature, text in completions.items():
        kind = "greedy" if temperature == 0 else f"T = {temperature}"
        lines += [f"- {kind}:", "", "  ```", f"  {PROMPT}{text.decode('utf-8')}".replace(
            "\n", "\n  "), "  ```", ""]
    lines.append(f"Try: `seqgraph text sample --model {result['export']} --prompt \"def \" "
                 "--temperature 0.5`")
    return "\n".join(lines)
