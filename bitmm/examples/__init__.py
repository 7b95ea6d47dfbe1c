"""Runnable examples of training and fine-tuning with bitmm's low-bit layers.

Each is ``python -m bitmm.examples.NAME [--quick] [--device cpu|cuda] [--out DIR]``;
it prints a table and writes a PNG of its loss curves to ``--out`` (when
matplotlib is installed).  ``main(argv)`` returns the result (rows of the table)
so that tests can call it.

* :mod:`bitmm.examples.polyfit` -- 1.58-bit fine-tuning of a float MLP (regression:
  7 points -> their least-squares cubic) vs 1.58-bit training from random init.
* :mod:`bitmm.examples.digits` -- BitLinear QAT at 1, 1.58 and 2 bits vs float on
  scikit-learn's handwritten digits.
* :mod:`bitmm.examples.hqq_lora` -- HQQ+ style recovery: packed 1/2-bit weights +
  trainable LoRA adapters; quantize-then-LoRA vs fine-tune-then-quantize on a
  shifted task.
"""

EXAMPLES = ("polyfit", "digits", "hqq_lora")
