"""The ``convlens`` command line: ``convlens train``, ``convlens summary``.

Kept thin and fast to start: heavy modules are imported inside the commands.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (the course's CNN)")
    group.add_argument("--filters", type=_positive_int, default=32, help="Conv2D filters (default 32)")
    group.add_argument("--kernel-size", type=_positive_int, default=3, help="square kernel size (default 3)")
    group.add_argument("--strides", type=_positive_int, default=1, help="conv strides (default 1)")
    group.add_argument("--padding", choices=["same", "valid"], default="same", help="conv padding (default same)")
    group.add_argument(
        "--pooling",
        choices=["max", "avg", "none"],
        default="max",
        help="pooling after the conv (default max)",
    )
    group.add_argument("--pool-size", type=_positive_int, default=2, help="pooling window (default 2)")
    group.add_argument("--activation", default="relu", help="conv activation (default relu)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="convlens",
        description="convlens: build, run, measure and see convolutional neural networks "
        "(NumPy, from first principles).",
    )
    from convlens import __version__

    parser.add_argument("--version", action="version", version=f"convlens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train the course's CNN on MNIST and print the test accuracy",
        description="Train Conv2D -> MaxPooling2D -> Flatten -> Dense(10, softmax) on the packaged MNIST "
        "(pixels / 255, Adam, sparse categorical cross-entropy), then evaluate on the 10,000 test images.",
    )
    _add_model_flags(train)
    group = train.add_argument_group("training")
    group.add_argument("--epochs", type=_positive_int, default=1, help="epochs (default 1)")
    group.add_argument("--batch-size", type=_positive_int, default=32, help="batch size (default 32, as Keras)")
    group.add_argument(
        "--optimizer", choices=["adam", "sgd", "rmsprop"], default="adam", help="optimizer (default adam)"
    )
    group.add_argument("--learning-rate", type=float, default=None, help="learning rate (default: the optimizer's)")
    group.add_argument("--validation-split", type=float, default=0.1, help="held-out fraction (default 0.1)")
    group.add_argument("--seed", type=int, default=0, help="random seed for a repeatable run (default 0)")
    group.add_argument("--limit", type=_positive_int, default=None, help="train on the first N images only")
    group.add_argument("--save", metavar="PATH", default=None, help="save the trained model (.npz) to PATH")
    group.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1, help="progress output (default 1)")

    summary = sub.add_parser("summary", help="print the course model's summary table")
    _add_model_flags(summary)
    return parser


def _train(args: argparse.Namespace) -> int:
    from convlens.course import TrainConfig, train_course_model

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
    )
    print(f"convlens train: {config.describe()}", flush=True)
    start = time.perf_counter()
    _model, _, result = train_course_model(config)
    elapsed = time.perf_counter() - start
    loss, accuracy = result
    print(f"Test accuracy: {accuracy * 100:.2f}%  (test loss {loss:.4f}; {elapsed:.1f} s in all)")
    if args.save:
        print(f"Saved the model to {args.save}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from convlens.course import build_course_model

    model = build_course_model(
        args.filters,
        args.kernel_size,
        args.strides,
        args.padding,
        args.pooling,
        args.pool_size,
        args.activation,
    )
    model.summary()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``convlens`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from convlens.errors import ConvlensError

    try:
        if args.command == "train":
            return _train(args)
        return _summary(args)
    except ConvlensError as exc:
        print(f"convlens {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
