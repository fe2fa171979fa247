"""The training side's training: settings, the loop, evaluation, figures (torch, matplotlib).

- :mod:`~lettercnn.training.config`: :class:`TrainConfig` (standard library only: the
  command line imports it for its defaults);
- :mod:`~lettercnn.training.loop`: :func:`fit`, the trainer, resume and Ctrl-C;
- :mod:`~lettercnn.training.evaluate`: scores, the held-out images, the device;
- :mod:`~lettercnn.training.plots`: the run's figures and the PNG writer.

Importing the package loads none of them.
"""
