"""Each training option declared once (``skinlab.config``): the ``skinlab train`` arguments, their
defaults and help, the conversion back to a ``TrainConfig`` and the printed command all come
from the ``TrainConfig`` declarations, and the command parses back to the configuration."""

from __future__ import annotations

import dataclasses
import shlex

import pytest

from skinlab import config
from skinlab.cli import build_parser
from skinlab.config import TrainConfig, config_from_args, option_fields, run_options, train_command
from skinlab.split import DEFAULT_FRACTIONS

# A value other than the default for every run option (the options train_command writes). The
# floats need more than 6 digits or are 0; the split file needs quoting; init_seed 0 is falsy.
NON_DEFAULT = {
    "model": "efficientnet_lite0",
    "image_size": 64,
    "epochs": 3,
    "batch_size": 32,
    "lr": 1.2345678e-3,
    "weight_decay": 0.0,
    "scheduler": "none",
    "weighting": "sqrt",
    "class_weights": (0.5, 1.0, 1.25, 4.0, 1.0, 0.125, 8.123456789),
    "sampling": "balanced",
    "label_smoothing": 0.1,
    "rotation": 0.0,
    "flip": False,
    "seed": 3,
    "init_seed": 0,
    "split_file": "/tmp/a run's folder/split.csv",
    "train_images": 500,
    "fractions": (0.7, 0.1, 0.2),
    "pretrained": False,
    "allow_random_init": True,
    "freeze_backbone": True,
    "backbone_lr": 1e-4,
    "train_last_blocks": 16,
    "color_constancy": "shades_of_gray",
    "crop": 56,
    "tta": True,
}
# Where and how a run executes: options of `skinlab train`, not written in the printed command.
NOT_IN_COMMAND = {"data": "/data/ham", "out": "elsewhere/run", "device": "cpu", "resume": True, "workers": 2,
                  "n_synthetic": 300, "progress": False}


def _train_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["train"]


def _parse(command: str) -> TrainConfig:
    words = shlex.split(command)
    assert words[:2] == ["skinlab", "train"]
    return config_from_args(build_parser().parse_args(words[1:]))


def test_every_field_is_an_option_with_exactly_one_flag():
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    options = [f.name for f in option_fields()]
    # none forgotten: a new field is declared an option, or listed (and explained) as not one
    assert set(names) - set(options) == set(config.NOT_OPTIONS) == {"figures", "extra"}
    actions = [a for a in _train_parser()._actions if a.dest != "help"]
    assert sorted(a.dest for a in actions) == sorted(options)  # one argument per option, no other
    flags = [flag for a in actions for flag in a.option_strings]
    assert len(flags) == len(set(flags)) == len(options)  # one flag each
    assert set(run_options(TrainConfig())) == set(NON_DEFAULT)  # the table above covers every run option
    assert set(options) - set(NON_DEFAULT) == set(NOT_IN_COMMAND)


def test_the_parser_defaults_and_help_come_from_the_declarations():
    fields = {f.name: f for f in option_fields()}
    for action in _train_parser()._actions:
        if action.dest == "help":
            continue
        f = fields[action.dest]
        assert action.default is f.default or action.default == f.default, action.dest
        if not isinstance(f.default, bool):  # a switch's help says what it does instead
            assert "(default: " in action.help, action.dest
    assert config_from_args(build_parser().parse_args(["train"])) == TrainConfig()
    # the default fractions, in the help too, are skinlab.split's (not a copy of its numbers)
    assert TrainConfig().fractions is DEFAULT_FRACTIONS
    fractions = next(a for a in _train_parser()._actions if a.dest == "fractions")
    assert fractions.default is DEFAULT_FRACTIONS
    assert f"(default: {','.join(f'{v:g}' for v in DEFAULT_FRACTIONS)})" in fractions.help
    models = next(a for a in _train_parser()._actions if a.dest == "model")
    from skinlab.models import MODEL_NAMES

    assert tuple(models.choices) == tuple(MODEL_NAMES)


def test_the_default_run_folder_follows_the_model():
    assert TrainConfig().out == "runs/lenet"
    assert TrainConfig(model="resnet18").out == "runs/resnet18"
    assert config_from_args(build_parser().parse_args(["train", "--model", "resnet18"])).out == "runs/resnet18"
    assert TrainConfig(out="x").out == "x"


@pytest.mark.parametrize("changes", [
    {},
    NON_DEFAULT,
    *({name: value} for name, value in NON_DEFAULT.items()),
    {"image_size": 32, "model": "lenet"},  # explicitly the model's default size: still written
    {"class_weights": [1, 2, 3, 4, 5, 6, 7]},  # a list (as chapter 4 and config.json give) is the tuple
], ids=lambda c: ",".join(c) or "defaults")
def test_the_printed_command_parses_back_to_the_configuration(changes):
    cfg = TrainConfig(**changes)
    command = train_command(cfg)
    back = _parse(command)
    assert run_options(back) == run_options(cfg)
    assert back.out == f"runs/{cfg.model}"  # the command chooses the run folder
    words = shlex.split(command)
    for f in option_fields():
        flags = [w for w in words if w == f"--{f.name.replace('_', '-')}" or w == f"--no-{f.name.replace('_', '-')}"]
        # model, epochs and lr always; any other run option exactly when it is not its default
        expected = f.name in ("model", "epochs", "lr", "out") or (
            f.name in NON_DEFAULT and getattr(cfg, f.name) != f.default)
        assert len(flags) == int(expected), (f.name, command)


def test_where_a_run_executes_is_not_in_the_command():
    assert train_command(TrainConfig(**NOT_IN_COMMAND)) == train_command(TrainConfig(model=TrainConfig().model))
    back = _parse(train_command(TrainConfig(**NOT_IN_COMMAND)))
    assert {name: getattr(back, name) for name in NOT_IN_COMMAND} == {
        f.name: getattr(TrainConfig(), f.name) for f in option_fields() if f.name in NOT_IN_COMMAND}


def test_the_command_reads_like_the_book_shows_it():
    assert train_command(TrainConfig(epochs=12, lr=1e-3, rotation=0, flip=False, init_seed=2)) == (
        "skinlab train --model lenet --epochs 12 --lr 0.001 --rotation 0 --no-flip --init-seed 2 --out runs/lenet")
    assert "--fractions 0.7,0.1,0.2 " in train_command(TrainConfig(fractions=(0.7, 0.1, 0.2)))
    with pytest.raises(ValueError, match="weighting=None"):
        train_command(TrainConfig(weighting=None))


def test_a_declaration_that_cannot_be_derived_fails_at_once():
    with pytest.raises(TypeError, match="type="):
        config.option(None, "a number", default_text="none")
    with pytest.raises(TypeError, match="default_text="):
        config.option(None, "a number", type=int)
    with pytest.raises(ValueError, match="shown="):
        config.option(1, "a number", shown="sometimes")
