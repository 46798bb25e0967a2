"""Pretraining methods and the training loop the core owns.

Today this room holds the loop's building blocks (:mod:`benchmark.runtime.training`), which fine-tuning already
uses; the pretraining Trainer and the built-in methods (SimCLR, BYOL, VICReg, ...) are issue #8.
"""
