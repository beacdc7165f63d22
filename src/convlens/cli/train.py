"""``convlens train``: the course's CNN on MNIST (or Fashion-MNIST, CIFAR-10, your images), test accuracy."""

from __future__ import annotations

import argparse
import time
from typing import Any

from convlens.cli._common import add_model_flags, positive_int


def add_parser(sub: Any) -> None:
    """Register ``train``."""
    train = sub.add_parser(
        "train",
        help="train the course's CNN on MNIST and print the test accuracy",
        description="Train Conv2D -> MaxPooling2D -> Flatten -> Dense(classes, softmax) on the packaged MNIST "
        "(pixels / 255, sparse categorical cross-entropy), then evaluate on the test images. --dataset picks "
        "Fashion-MNIST or CIFAR-10 instead (found locally or downloaded), --data-dir a folder of your own images.",
    )
    add_model_flags(train)
    data = train.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=["mnist", "fashion_mnist", "cifar10"],
        default=None,
        help="data set (default mnist, packaged); the input shape follows it",
    )
    data.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="your own images, one sub-folder per class; 20%% is held out as the test set",
    )
    data.add_argument(
        "--image-size", type=positive_int, default=64, help="with --data-dir: resize to N x N (default 64)"
    )
    data.add_argument(
        "--color-mode", choices=["grayscale", "rgb"], default="rgb", help="with --data-dir: channels (default rgb)"
    )
    group = train.add_argument_group("training")
    group.add_argument("--epochs", type=positive_int, default=1, help="epochs (default 1)")
    group.add_argument("--batch-size", type=positive_int, default=32, help="batch size (default 32, as Keras)")
    group.add_argument(
        "--optimizer", choices=["adam", "sgd", "rmsprop"], default="adam", help="optimizer (default adam)"
    )
    group.add_argument("--learning-rate", type=float, default=None, help="learning rate (default: the optimizer's)")
    group.add_argument("--validation-split", type=float, default=0.1, help="held-out fraction (default 0.1)")
    group.add_argument("--seed", type=int, default=0, help="random seed for a repeatable run (default 0)")
    group.add_argument("--limit", type=positive_int, default=None, help="train on the first N images only")
    group.add_argument("--save", metavar="PATH", default=None, help="save the trained model (.npz) to PATH")
    group.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1, help="progress output (default 1)")


def _tracker() -> tuple[Any, Any]:
    """A callback that follows epochs and batches, and the sentence Ctrl-C prints from it."""
    from convlens.callbacks import Callback

    class Tracker(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.started = False
            self.epoch = self.batch = self.done = 0

        def on_train_begin(self, logs: Any = None) -> None:
            self.started = True

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch, self.batch = epoch, 0

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.batch = batch + 1

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.done, self.batch = epoch + 1, 0

    tracker = Tracker()

    def describe() -> str:
        if not tracker.started:
            return "stopped before training started"
        epochs, steps = tracker.params.get("epochs", "?"), tracker.params.get("steps", "?")
        text = f"{tracker.done} of {epochs} epoch(s) finished"
        if tracker.batch:
            text += f" (epoch {tracker.epoch + 1} stopped at batch {tracker.batch} of {steps})"
        return text

    return tracker, describe


def run(args: argparse.Namespace) -> int:
    """Train, evaluate, print the accuracy (and save when asked)."""
    from convlens.cli._common import PROGRESS
    from convlens.course import TrainConfig, train_course_model
    from convlens.errors import ConfigError

    if args.data_dir is not None and args.dataset is not None:
        raise ConfigError("--dataset and --data-dir: give one of them, got both.")
    from_dir = args.data_dir is not None
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        filters=args.filters,
        kernel_size=args.kernel_size,
        strides=args.strides,
        padding=args.padding,
        pooling=args.pooling,
        pool_size=args.pool_size,
        activation=args.activation,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        validation_split=args.validation_split,
        seed=args.seed,
        limit=args.limit,
        save=args.save,
        verbose=args.verbose,
        dataset=None if from_dir else args.dataset or "mnist",
        data_dir=args.data_dir,
        image_size=args.image_size if from_dir else None,
        color_mode=args.color_mode if from_dir else None,
    )
    print(f"convlens train: {config.describe()}", flush=True)
    tracker, PROGRESS.finished = _tracker()
    if args.save:
        PROGRESS.will_write(args.save)
    start = time.perf_counter()
    _, _, result = train_course_model(config, callbacks=[tracker])
    elapsed = time.perf_counter() - start
    loss, accuracy = result
    what = "Held-out accuracy (20% of the images)" if from_dir else "Test accuracy"
    print(f"{what}: {accuracy * 100:.2f}%  (test loss {loss:.4f}; {elapsed:.1f} s in all)")
    if args.save:
        PROGRESS.wrote(args.save)
        print(f"Saved the model to {args.save}")
    return 0
