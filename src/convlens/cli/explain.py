"""``convlens explain``: step through a convolution or pooling, compare paddings, animate the window."""

from __future__ import annotations

import argparse
from typing import Any

from convlens.cli._common import positive_int


def _padding(text: str) -> Any:
    """'valid', 'same', 'N', 'PH,PW' or 'T,B,L,R'."""
    if text.lower() in ("valid", "same"):
        return text.lower()
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected valid, same, N, PH,PW or T,B,L,R; got {text!r}") from None
    if any(v < 0 for v in values) or len(values) not in (1, 2, 4):
        raise argparse.ArgumentTypeError(f"expected valid, same, N, PH,PW or T,B,L,R; got {text!r}")
    if len(values) == 4:
        return ((values[0], values[1]), (values[2], values[3]))
    return values[0] if len(values) == 1 else tuple(values)


def _size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    try:
        size = (int(h), int(w or h))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 12x12, got {text!r}") from None
    if min(size) < 1 or size[0] * size[1] > 256 * 256:
        raise argparse.ArgumentTypeError(f"expected HxW such as 12x12 (at most 256x256 cells), got {text!r}")
    return size


def add_parser(sub: Any) -> None:
    """Register ``explain``."""
    p = sub.add_parser(
        "explain",
        help="step through a convolution or pooling; compare paddings; animate the sliding window",
        description="For every output position: the window, the element-wise products and their sum, "
        "building up the feature map; then the output-size formula. Plain text when piped, rich in a terminal.",
    )
    p.add_argument(
        "--input",
        default="5x5",
        help="numbers '1,2;3,4', HxW (random 0..9), random:HxW, ramp:HxW, checker:HxW, digit:N "
        "(MNIST test image) or an image file (default 5x5)",
    )
    p.add_argument("--image-size", type=_size, default=(12, 12), help="resize image files to HxW (default 12x12)")
    p.add_argument("--seed", type=int, default=0, help="seed of a random input (default 0)")
    p.add_argument("--kernel", default="sobel_x", help="a name (sobel_x, sobel_y, laplacian, blur, gaussian, "
                   "sharpen, identity, edge, ...) or numbers '1,0,-1;2,0,-2;1,0,-1' (default sobel_x)")  # fmt: skip
    p.add_argument("--bias", type=float, default=0.0, help="bias added to every sum (default 0)")
    p.add_argument("--stride", type=positive_int, default=None, help="stride (default 1; pooling: pool size)")
    p.add_argument("--padding", type=_padding, default="valid", help="valid, same, N, PH,PW or T,B,L,R (default valid)")
    p.add_argument("--dilation", type=positive_int, default=1, help="dilation rate (default 1)")
    p.add_argument("--pool", choices=["max", "avg"], default=None, help="explain a pooling instead of a convolution")
    p.add_argument("--pool-size", type=positive_int, default=2, help="pooling window (default 2)")
    p.add_argument("--step", type=positive_int, default=None, help="show only step N (1-based)")
    p.add_argument("--max-steps", type=positive_int, default=None,
                   help="show (and animate) at most the first N steps")  # fmt: skip
    p.add_argument("--backward", action="store_true", help="explain/animate the backward pass (input gradient)")
    p.add_argument("--animate", metavar="OUT.gif", default=None, help="write a GIF of the sliding window")
    p.add_argument("--fps", type=float, default=2.0, help="animation frames per second (default 2)")
    p.add_argument("--compare-padding", action="store_true",
                   help="compare TensorFlow 'same', PyTorch padding=k//2 and --pads on the input")  # fmt: skip
    p.add_argument("--pads", type=_padding, default=None, help="explicit pads T,B,L,R for --compare-padding")
    p.add_argument("--json", action="store_true", help="print the trace as JSON")


def _backward(args: argparse.Namespace, x: Any) -> tuple[Any, str]:
    import numpy as np

    from convlens.lab.explain_backward import convolution_backward, pooling_backward
    from convlens.lab.render_explain import format_grid, render_text

    if args.pool:
        pb = pooling_backward(x, pool_size=args.pool_size, strides=args.stride, padding=args.padding, kind=args.pool)
        lines = [render_text(pb.trace, args.step, max_steps=args.max_steps), "", "grad_out (1, 2, 3, ...):"]
        lines += ["  " + line for line in format_grid(pb.grad_out)]
        lines += [f"grad_x ({'each window to its arg-max' if args.pool == 'max' else 'shared by real cells'}):"]
        lines += ["  " + line for line in format_grid(pb.grad_x)]
        return pb, "\n".join(lines)
    cb = convolution_backward(np.shape(x), args.kernel, strides=args.stride or 1, padding=args.padding,
                              dilation_rate=args.dilation)  # fmt: skip
    lines = ["input gradient = full convolution of grad_out (zero-inserted for stride > 1, padded by extent - 1)",
             "with the flipped kernel; '_' = inserted zero, '.' = padding", "",
             render_text(cb.trace, args.step, max_steps=args.max_steps), "",
             f"grad_x = grad of the padded input without the forward pads {cb.forward.pads}:"]  # fmt: skip
    lines += ["  " + line for line in format_grid(cb.grad_x)]
    return cb, "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Explain, compare or animate, as the flags say."""
    import json

    from convlens.lab.explain import convolution, pooling
    from convlens.lab.kernels import describe_input
    from convlens.lab.render_explain import print_text, render_comparison, render_text

    x, source = describe_input(args.input, seed=args.seed, image_size=args.image_size)
    if args.compare_padding:
        from convlens.lab.kernels import get_kernel
        from convlens.lab.padding_compare import compare

        k = get_kernel(args.kernel)
        comp = compare(x.shape, k.shape, args.stride or 1, args.dilation, explicit=args.pads, input=x, kernel=k)
        if args.json:
            print(json.dumps(comp.to_dict()))
        else:
            print_text(f"input: {source}\n" + render_comparison(comp))
        return 0
    if args.backward:
        trace, text = _backward(args, x)
    elif args.pool:
        trace = pooling(x, pool_size=args.pool_size, strides=args.stride, padding=args.padding, kind=args.pool)
        text = ""
    else:
        trace = convolution(x, args.kernel, strides=args.stride or 1, padding=args.padding,
                            dilation_rate=args.dilation, bias=args.bias)  # fmt: skip
        text = ""
    if not args.backward:
        object.__setattr__(trace, "source", source)
        text = render_text(trace, args.step, max_steps=args.max_steps)
    if args.json:
        print(json.dumps(trace.to_dict()))
    else:
        print_text(text)
    if args.animate:
        from convlens.cli._common import PROGRESS
        from convlens.lab.animate import save_animation

        PROGRESS.will_write(args.animate)
        path = save_animation(trace, args.animate, fps=args.fps, max_steps=args.max_steps)
        PROGRESS.wrote(args.animate)
        print(f"wrote {path}")
    return 0
