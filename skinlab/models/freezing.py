"""Training only the head: freezing a backbone (BatchNorm included) and undoing it."""

from __future__ import annotations

from torch import nn


def _keep_eval(module: nn.Module, args) -> None:
    # Forward pre-hook on frozen BatchNorm: model.train() flips .training back on, so reset
    # it at every call. Frozen BN then normalises with its ImageNet running statistics and
    # never updates them.
    module.training = False


def freeze_all_but(model: nn.Module, head: nn.Module) -> nn.Module:
    """Make only ``head`` trainable, in place; BatchNorm outside it stays in eval mode even under
    ``model.train()``. ``skinlab.models.freeze_backbone(model)`` finds the head itself."""
    head_ids = {id(p) for p in head.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in head_ids)
    head_modules = set(head.modules())
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m not in head_modules:
            if getattr(m, "_skinlab_eval_hook", None) is None:
                m._skinlab_eval_hook = m.register_forward_pre_hook(_keep_eval)
            m.eval()
    return model


def unfreeze_all(model: nn.Module) -> nn.Module:
    """Make every parameter trainable again and let BatchNorm follow ``train()``/``eval()``."""
    for p in model.parameters():
        p.requires_grad_(True)
    for m in model.modules():
        hook = getattr(m, "_skinlab_eval_hook", None)
        if hook is not None:
            hook.remove()
            m._skinlab_eval_hook = None
            m.train(model.training)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def train_last_blocks(model: nn.Module, n: int) -> nn.Module:
    """Freeze an EfficientNet-Lite but for its last ``n`` blocks, its head convolution and its
    head (in place). Every BatchNorm, in the trained blocks too, keeps its ImageNet running
    statistics (its scale and shift still train in the trained blocks).

    The early blocks (edges, colours, textures) are the most generic and the most expensive to
    train at full resolution; the late ones are the most specific to ImageNet's classes.
    """
    blocks = getattr(model, "_blocks", None)
    if blocks is None or not hasattr(model, "_conv_head"):
        raise ValueError(f"train_last_blocks: {type(model).__name__} is not an EfficientNet-Lite "
                         "(only those have its _blocks / _conv_head layout)")
    if not 0 <= n <= len(blocks):
        raise ValueError(f"train_last_blocks: n={n}, expected 0..{len(blocks)} (the model has {len(blocks)} blocks)")
    kept = nn.ModuleList([*list(blocks)[len(blocks) - n:], model._conv_head, model._bn1, model._fc])
    freeze_all_but(model, kept)
    # Every BatchNorm keeps its ImageNet statistics, in the trained blocks too (their scale and
    # shift still learn). EfficientNet-Lite's BatchNorm updates its running statistics with
    # momentum 0.01 (TF's 0.99): after the few hundred steps of a short fine-tuning they are still
    # mostly ImageNet's while training normalised with the batch's, and the network evaluated
    # much worse than it trained (measured on HAM10000: validation balanced accuracy 0.15 after
    # one epoch of 3,200 images, at the majority class's accuracy).
    for m in kept.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and getattr(m, "_skinlab_eval_hook", None) is None:
            m._skinlab_eval_hook = m.register_forward_pre_hook(_keep_eval)
            m.eval()
    return model
