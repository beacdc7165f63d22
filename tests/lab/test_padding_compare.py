"""Padding conventions compared: the 28/3/2 trap, torch as oracle, explicit pads, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from convlens.cli import main
from convlens.errors import ConfigError
from convlens.lab.padding_compare import compare
from tests.conftest import require


def test_28_3_2_tensorflow_vs_pytorch() -> None:
    c = compare(28, 3, 2)
    tf, pt = c.get("tensorflow_same"), c.get("pytorch_k//2")
    assert tf.geometry.pads == ((0, 1), (0, 1))
    assert tf.geometry.output_size == (14, 14)
    # PyTorch: floor((28 + 2 - 3) / 2) + 1 = 14
    assert pt.geometry.pads == ((1, 1), (1, 1))
    assert pt.geometry.output_size == (14, 14)
    # output row o reads input rows 2o..2o+2 (TF) and 2o-1..2o+1 (PyTorch): shifted by one pixel
    assert tf.first_window[0] == (0, 2)
    assert tf.last_window[0] == (26, 28)
    assert pt.first_window[0] == (-1, 1)
    assert pt.last_window[0] == (25, 27)
    assert c.shifts[("tensorflow_same", "pytorch_k//2")] == (1, 1)
    # TF reads its one bottom pad row; PyTorch reads its top pad row but never its bottom one
    assert tf.pad_read[0] == (0, 1)
    assert pt.pad_read[0] == (1, 0)
    rows, cols = c.differing[("tensorflow_same", "pytorch_k//2")]
    assert rows == list(range(14))
    assert cols == list(range(14))


def test_outputs_match_torch() -> None:
    torch = require("torch")
    c = compare(28, 3, 2, explicit=((1, 0), (1, 0)))
    x = torch.from_numpy(c.input)[None, None]
    w = torch.from_numpy(c.kernel)[None, None]
    ours_pt = torch.nn.functional.conv2d(x, w, stride=2, padding=1)[0, 0].numpy()
    np.testing.assert_allclose(c.get("pytorch_k//2").output, ours_pt, rtol=1e-10, atol=1e-12)
    tf_like = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), w, stride=2)[0, 0].numpy()
    np.testing.assert_allclose(c.get("tensorflow_same").output, tf_like, rtol=1e-10, atol=1e-12)
    # explicit (1, 0) pads read exactly the same windows as PyTorch's (1, 1): its bottom pad is never read
    assert c.shifts[("pytorch_k//2", "explicit")] == (0, 0)
    assert c.differing[("pytorch_k//2", "explicit")] == ([], [])


def test_stride_one_odd_kernel_agree_and_valid_like_drop() -> None:
    c = compare(7, 3, 1)
    assert c.differing[("tensorflow_same", "pytorch_k//2")] == ([], [])
    e = compare(6, 3, 2, explicit=0)
    assert e.get("explicit").geometry.output_size == (2, 2)
    assert e.get("explicit").unread[0] == (5,)  # (6 - 3) // 2 + 1 = 2 windows read rows 0..4 only
    assert e.shifts[("tensorflow_same", "explicit")] is None  # 3 vs 2 outputs


def test_dilation_and_bad_input() -> None:
    c = compare(9, 3, 1, dilation=2)
    assert c.get("pytorch_k//2").geometry.pads == ((2, 2), (2, 2))
    assert c.get("tensorflow_same").geometry.pads == ((2, 2), (2, 2))
    with pytest.raises(ConfigError, match="`explicit` must be per-side pads"):
        compare(9, 3, explicit="same")
    with pytest.raises(ConfigError, match=r"`input` must have shape \(9, 9\)"):
        compare(9, 3, input=np.zeros((3, 3)))


def test_cli_compare(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--input", "random:28x28", "--kernel", "sobel_x", "--stride", "2",
                 "--compare-padding", "--pads", "1,0,1,0"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "pads (before 0, after 1) -> 14 outputs" in out
    assert "pads (before 1, after 1) -> 14 outputs" in out
    assert "1 padded rows never read" in out
    assert "tensorflow_same vs pytorch_k//2: windows shifted by 1 row(s), 1 col(s)" in out
