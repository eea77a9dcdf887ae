"""Integrations of goreweight with training frameworks.

Each integration lives in its own submodule and imports its framework lazily, so
``import goreweight`` and ``import goreweight.integrations`` never require it:

- :mod:`goreweight.integrations.hf`: ``ReweightingTrainer`` (and ``ReweightingMixin``) for the
  Hugging Face ``transformers.Trainer``; needs ``pip install "goreweight[hf]"``.
- :mod:`goreweight.integrations.lightning`: ``ReweightingMixin`` / ``ReweightingModule`` for
  PyTorch Lightning; needs ``pip install "goreweight[lightning]"``.

A plain PyTorch loop needs no integration: call :class:`goreweight.Reweighter` on the output of
:func:`goreweight.per_sample_loss` (see ``examples/pytorch_loop.py`` and ``docs/integrations.md``).
"""

__all__ = ["hf"]
