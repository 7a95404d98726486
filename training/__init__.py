"""NoGAN training for streamcolor (stage 1: generator pretraining with a feature loss).

The stages share one data pipeline (:mod:`training.data`), one checkpoint format and one run
directory layout (:mod:`training.run`), so the critic and GAN stages plug in beside
:mod:`training.pretrain_generator`.
"""
