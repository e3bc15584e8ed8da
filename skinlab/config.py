"""The options of a training run, each declared once: :class:`TrainConfig`.

Every field of ``TrainConfig`` that is an option carries its whole ``skinlab train`` declaration
in its metadata (:func:`option`: flag, help, type, choices, metavar, and whether the printed
command shows it). Everything else is derived from that one declaration, like the one
``get_args_parser`` of torchvision's references:

* :func:`add_train_arguments`: the ``skinlab train`` argparse arguments, their defaults (the
  dataclass defaults) and help texts, which show the default;
* :func:`config_from_args`: the parsed arguments back to a ``TrainConfig``;
* :func:`train_command`: the ``skinlab train ...`` command line of a configuration, as the book
  prints it. It holds the *run options* (what decides the result); where and how the run
  executes (``--data``, ``--device``, ``--workers``, ``--resume``, ...) are the reader's choice and
  not printed, and the run folder is always ``--out runs/MODEL``.

Two fields are not options: ``figures`` (the book skips the run's figures; the command always
draws them) and ``extra`` (free-form notes). This module imports no torch, so the book's helpers
(``skinlab.course.configs``, ``skinlab.course.runcache``) can import it cheaply.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from skinlab.data.layout import CLASSES, ENV_VAR
from skinlab.data.source import SYNTHETIC_SAMPLE_SIZE
from skinlab.split import DEFAULT_FRACTIONS

__all__ = [
    "COLOR_CONSTANCY",
    "NOT_OPTIONS",
    "Option",
    "ROTATION_DEGREES",
    "SAMPLINGS",
    "SCHEDULERS",
    "TrainConfig",
    "WEIGHTINGS",
    "add_train_arguments",
    "check_class_weights",
    "config_from_args",
    "data_options",
    "option",
    "option_fields",
    "run_options",
    "train_command",
]

# The choices of the options below; the code that implements each one validates against these.
WEIGHTINGS = ("median", "sqrt", "none")
COLOR_CONSTANCY = ("none", "shades_of_gray")
SAMPLINGS = ("shuffle", "balanced")
SCHEDULERS = ("cosine", "none")
# The guide's training augmentation: random rotation within ±60° (also presets' default).
ROTATION_DEGREES = 60.0

# Fields of TrainConfig that are not options (see the module's docstring).
NOT_OPTIONS = ("figures", "extra")

_OPTION = "skinlab.option"  # the key of the declaration in a field's metadata
_SHOWN = ("always", "changed", "never")


@dataclass(frozen=True)
class Option:
    """The ``skinlab train`` side of one ``TrainConfig`` field.

    ``flag``: default ``--field-name``, or ``--no-field-name`` for a boolean that defaults to true.
    ``type``: argparse's converter (default: the type of the field's default). ``choices``: a
    tuple, or a function returning one (called when the parser is built: the model registry
    imports torch). ``default_text``: the default as the help shows it, where the value alone
    would not say it (``None`` = "the model's", ...). ``shown``: in :func:`train_command`,
    ``"always"``, ``"changed"`` (when it differs from the default) or ``"never"`` (where and how
    the run executes, not what it computes). ``data``: the option decides the prepared data
    (:func:`skinlab.pipeline.prepare_data`: split, image cache, normalisation statistics), so a
    cache of prepared data is keyed by it (:func:`data_options`).
    """

    help: str
    flag: str | None = None
    type: Callable | None = None
    choices: tuple | Callable[[], tuple] | None = None
    metavar: str | None = None
    default_text: str | None = None
    shown: str = "changed"
    data: bool = False


def option(default, help: str, **declaration) -> dataclasses.Field:
    """A ``TrainConfig`` field with its ``skinlab train`` declaration (:class:`Option`)."""
    spec = Option(help=help, **declaration)
    if spec.shown not in _SHOWN:
        raise ValueError(f"option shown={spec.shown!r}: expected one of {_SHOWN}")
    if default is None and spec.type is None:
        raise TypeError(f"an option that defaults to None needs type= ({help!r})")
    if default is None and spec.default_text is None:
        raise TypeError(f"an option that defaults to None needs default_text= ({help!r})")
    return field(default=default, metadata={_OPTION: spec})


# --------------------------------------------------------------------------- option types


def check_class_weights(values) -> tuple[float, ...]:
    """``values`` as a tuple of one positive, finite weight per class (label order), or a
    ``ValueError`` that says what is wrong and what was expected."""
    expected = f"{len(CLASSES)} positive numbers, one per class in label order ({','.join(CLASSES)})"
    weights = []
    for v in values:
        try:
            weights.append(float(v))
        except (TypeError, ValueError):
            raise ValueError(f"--class-weights: {v!r} is not a number; expected {expected}") from None
    weights = tuple(weights)
    if len(weights) != len(CLASSES):
        raise ValueError(f"--class-weights: got {len(weights)} numbers, expected {expected}")
    bad = [f"{c}={w:g}" for c, w in zip(CLASSES, weights) if not (np.isfinite(w) and w > 0)]
    if bad:
        raise ValueError(f"--class-weights: {', '.join(bad)} is not a positive number; expected {expected}")
    return weights


def _class_weights_arg(text: str) -> tuple[float, ...]:
    try:
        return check_class_weights(text.split(","))
    except ValueError as err:  # argparse names the flag itself
        raise argparse.ArgumentTypeError(str(err).removeprefix("--class-weights: ")) from None


def _fractions_arg(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        example = ",".join(_text(v) for v in DEFAULT_FRACTIONS)
        raise argparse.ArgumentTypeError(f"expected three numbers like {example}, got {text!r}")
    return parts


def _model_names() -> tuple:
    from skinlab.models import MODEL_NAMES  # imports torch: only when a parser is built

    return tuple(MODEL_NAMES)


# --------------------------------------------------------------------------- the configuration


@dataclass
class TrainConfig:
    """Every hyper-parameter of a run; each field but :data:`NOT_OPTIONS` is a ``skinlab train``
    option, declared here once (:func:`option`)."""

    data: str | None = option(None, "dataset folder", type=str, metavar="DIR",
                              default_text=f"${ENV_VAR}, else the synthetic sample", shown="never", data=True)
    model: str = option("lenet", "architecture (the model registry's)", choices=_model_names, shown="always",
                         data=True)  # the model's input size and normalisation
    # None: runs/MODEL (resolved when the configuration is made).
    out: str | None = option(None, "run folder", type=str, metavar="DIR", default_text="runs/MODEL", shown="never")
    image_size: int | None = option(None, "side in pixels of the cached images", type=int,
                                    default_text="the model's, LeNet 32", data=True)
    # LeNet defaults chosen on the validation split of HAM10000 (docs/PERFORMANCE.md): lr 1e-3 for
    # 30 epochs plateaued at validation balanced accuracy ~0.48; 3e-3 for 60 epochs reached 0.535.
    epochs: int = option(60, "training epochs", shown="always")
    batch_size: int = option(64, "batch size (the global one under torchrun)")
    lr: float = option(3e-3, "learning rate (of the new head when --backbone-lr is given)", shown="always")
    weight_decay: float = option(1e-4, "AdamW weight decay")
    scheduler: str = option("cosine", "learning-rate schedule over the epochs", choices=SCHEDULERS)
    weighting: str = option("median", "class weights in the loss: median frequency, its square root, or none",
                            choices=WEIGHTINGS)
    # An explicit loss weight per label, in label order (``CLASSES``): overrides ``weighting``.
    # Chapter 4 trains with a list written in another class order to show what that mistake does.
    class_weights: tuple | None = option(
        None, f"explicit loss weights, one per class in label order ({','.join(CLASSES)}); overrides --weighting",
        type=_class_weights_arg, metavar="W,W,...", default_text="those of --weighting")
    sampling: str = option("shuffle", "balanced: every class equally often in each epoch (drawn with replacement)",
                           choices=SAMPLINGS)
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy")
    rotation: float = option(ROTATION_DEGREES, "training augmentation: random rotation within ±DEGREES",
                             metavar="DEGREES")
    flip: bool = option(True, "no random horizontal flip (with --rotation 0: no augmentation at all)")
    seed: int = option(0, "the split; also the initialisation and batch order unless --init-seed", data=True)
    init_seed: int | None = option(None, "another initialisation and batch order on the same split (ensembles)",
                                   type=int, default_text="--seed")
    split_file: str | None = option(
        None, "CSV with image_id and split columns (e.g. RUN/split.csv) instead of the lesion-level split",
        type=str, metavar="CSV", default_text="the lesion-level split of --seed and --fractions", data=True)
    train_images: int | None = option(None, "train on a class-stratified subset of this many training images",
                                      type=int, metavar="N", default_text="all of them", data=True)
    device: str = option("auto", "auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps", shown="never")
    fractions: tuple = option(DEFAULT_FRACTIONS, "train,val,test shares of the lesion-level split",
                              type=_fractions_arg, metavar="TRAIN,VAL,TEST", data=True)
    pretrained: bool = option(True, "random initialisation instead of the pretrained weights")
    allow_random_init: bool = option(
        False, "fall back to random weights (with a warning) when pretrained weights are missing")
    freeze_backbone: bool = option(False, "train only the new head")
    # Fine-tuning a pretrained model: the backbone (every parameter outside the new head) learns
    # at this rate while the head learns at ``lr``; and, for EfficientNet-Lite, only the last
    # ``train_last_blocks`` blocks (plus the head convolution and the head) train, the rest is
    # frozen with its BatchNorm statistics.
    backbone_lr: float | None = option(None, "learning rate of every parameter outside the new head",
                                       type=float, default_text="--lr for all")
    train_last_blocks: int | None = option(
        None, "EfficientNet-Lite: train only its last N blocks, head convolution and head",
        type=int, metavar="N", default_text="every block")
    # Inputs: "shades_of_gray" applies Shades of Gray colour constancy to every cached image
    # (presets.shades_of_gray); ``crop``: the cache holds ``image_size`` pixels, training takes a
    # random ``crop`` x ``crop`` window of each (after flip and rotation), evaluation the centre.
    color_constancy: str = option("none", "shades_of_gray: Shades of Gray colour constancy (p=6) on every image",
                                  choices=COLOR_CONSTANCY, data=True)
    crop: int | None = option(
        None, "train on random CROPxCROP windows of the --image-size images, evaluate on the centre one",
        type=int, metavar="CROP", default_text="no crop", data=True)
    tta: bool = option(False, "test-time augmentation: average with horizontally flipped images")
    resume: bool = option(False, "continue from OUT/last.pt", shown="never")
    workers: int | None = option(None, "image decoding threads", type=int, metavar="N",
                                 default_text="every core, up to 8", shown="never")
    n_synthetic: int = option(SYNTHETIC_SAMPLE_SIZE, "size of the synthetic sample (when there is no dataset)",
                              metavar="N", shown="never", data=True)
    progress: bool = option(True, "no progress bars", shown="never")
    figures: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.out is None:
            self.out = f"runs/{self.model}"
        # JSON (a run's config.json) and callers give lists: one form, so configurations compare equal.
        if isinstance(self.class_weights, list):
            self.class_weights = tuple(self.class_weights)
        if isinstance(self.fractions, list):
            self.fractions = tuple(self.fractions)

    def resolved_image_size(self) -> int:
        from skinlab import models  # torch: only when a size is needed

        return int(self.image_size or models.default_input_size(self.model))


# --------------------------------------------------------------------------- derived


def option_fields() -> list[dataclasses.Field]:
    """The fields of ``TrainConfig`` that are options, in declaration order."""
    return [f for f in dataclasses.fields(TrainConfig) if _OPTION in f.metadata]


def _spec(f: dataclasses.Field) -> Option:
    return f.metadata[_OPTION]


def _flag(f: dataclasses.Field) -> str:
    spec = _spec(f)
    if spec.flag:
        return spec.flag
    return ("--no-" if f.default is True else "--") + f.name.replace("_", "-")


def _text(value) -> str:
    """A value as the command line writes it: the shortest form that reads back equal."""
    if isinstance(value, (tuple, list)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, float):
        short = f"{value:g}"  # 0.001, not 0.001000; 1e-05
        return short if float(short) == value else repr(value)
    return str(value)


def _help(f: dataclasses.Field) -> str:
    spec = _spec(f)
    text = spec.help
    if not isinstance(f.default, bool):  # a switch's help says what it does; its default is "off"
        text += f" (default: {spec.default_text or _text(f.default)})"
    return text.replace("%", "%%")  # argparse formats help strings


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one argument per option of ``TrainConfig`` to ``parser`` (``skinlab train``'s)."""
    for f in option_fields():
        spec = _spec(f)
        kwargs = {"dest": f.name, "default": f.default, "help": _help(f)}
        if isinstance(f.default, bool):
            kwargs["action"] = "store_false" if f.default else "store_true"
        else:
            kwargs["type"] = spec.type or type(f.default)
            if spec.choices is not None:
                kwargs["choices"] = tuple(spec.choices() if callable(spec.choices) else spec.choices)
            if spec.metavar:
                kwargs["metavar"] = spec.metavar
        parser.add_argument(_flag(f), **kwargs)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` of parsed ``skinlab train`` arguments."""
    return TrainConfig(**{f.name: getattr(args, f.name) for f in option_fields()})


def data_options(cfg: TrainConfig) -> dict:
    """The options of ``cfg`` that decide its prepared data (declared with ``data=True``): equal
    ``data_options`` give the same split, image cache and statistics."""
    return {f.name: getattr(cfg, f.name) for f in option_fields() if _spec(f).data}


def run_options(cfg: TrainConfig) -> dict:
    """The options of ``cfg`` that :func:`train_command` writes (what decides the result)."""
    return {f.name: getattr(cfg, f.name) for f in option_fields() if _spec(f).shown != "never"}


def train_command(cfg: TrainConfig) -> str:
    """The ``skinlab train`` command line of ``cfg``: the model, epochs and learning rate, then
    every other run option that differs from its default, in declaration order, then
    ``--out runs/MODEL``. Parsed back (:func:`config_from_args`), it gives ``cfg``'s run options
    (:func:`run_options`); the others (data folder, device, ...) take their defaults."""
    fields = option_fields()
    parts = ["skinlab", "train"]
    for shown in ("always", "changed"):
        for f in fields:
            if _spec(f).shown != shown:
                continue
            value = getattr(cfg, f.name)
            if shown == "changed" and value == f.default:
                continue
            if isinstance(f.default, bool):
                parts.append(_flag(f))  # a switch differs from its default: it is given
            elif value is None:
                raise ValueError(f"train_command: {f.name}=None, which no {_flag(f)} value says")
            else:
                parts += [_flag(f), shlex.quote(_text(value))]
    parts += ["--out", f"runs/{cfg.model}"]
    return " ".join(parts)
