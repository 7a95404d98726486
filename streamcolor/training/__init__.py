"""NoGAN training for streamcolor (stage 1: generator pretraining with a feature loss).

The stages share one data pipeline (:mod:`.data`), one checkpoint format and one run directory
layout (:mod:`.run`), so the critic and GAN stages plug in beside :mod:`.pretrain_generator`.
The library never imports this package; ``streamcolor train`` does.
"""
