"""The training configurations of the book's models, and the command line that trains each.

Every model of the book is trained by ``skinlab.pipeline.train``, the path ``skinlab train``
takes, from a ``TrainConfig``: :func:`lenet_config` and :func:`transfer_config` give the
profile's settings, with the options of each experiment as overrides. The ``skinlab train``
command of the same run (what a reader runs for full results) is
:func:`skinlab.config.train_command`.
"""

from __future__ import annotations

import dataclasses

from skinlab.course.profile import Profile, current_profile, progress_enabled


def lenet_config(profile: Profile | None = None, **overrides):
    """``TrainConfig`` of the book's LeNet (the same as ``skinlab train --model lenet``)."""
    from skinlab.pipeline import TrainConfig

    profile = profile or current_profile()
    cfg = TrainConfig(model="lenet", epochs=profile.lenet_epochs, lr=profile.lenet_lr,
                      batch_size=profile.batch_size, n_synthetic=profile.n_synthetic,
                      progress=progress_enabled(), figures=False)
    return dataclasses.replace(cfg, **overrides)


def transfer_config(profile: Profile | None = None, **overrides):
    """``TrainConfig`` of the book's transfer model (EfficientNet-Lite0, ImageNet weights), on
    the profile's subset of the training images: the new head at ``transfer_lr``, the pretrained
    part at the smaller ``transfer_backbone_lr``, only its last ``transfer_last_blocks`` blocks
    trained (every BatchNorm on its ImageNet statistics); square-root class weights and label smoothing 0.1 (the recipe of the hour-long run
    in ``docs/PERFORMANCE.md``)."""
    from skinlab.pipeline import TrainConfig

    profile = profile or current_profile()
    cfg = TrainConfig(model=profile.transfer_model, image_size=profile.transfer_size,
                      epochs=profile.transfer_epochs, lr=profile.transfer_lr,
                      backbone_lr=profile.transfer_backbone_lr, train_last_blocks=profile.transfer_last_blocks,
                      weighting="sqrt", label_smoothing=0.1,
                      train_images=profile.transfer_train_images,
                      batch_size=profile.transfer_batch_size, n_synthetic=profile.n_synthetic,
                      progress=progress_enabled(), figures=False)
    return dataclasses.replace(cfg, **overrides)
