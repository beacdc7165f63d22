"""Request bodies (pydantic): every field bounded, so a bad request is a 422 naming the field.

Limits keep one request small: a playground input of at most 64x64, kernels up to 15x15, strides and
dilations up to 8; an inspector image at most 64x64x3 (it must match the model's input anyway).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AttributionRequest",
    "ExplicitPads",
    "ForwardRequest",
    "ImageInput",
    "PlaygroundInput",
    "PlaygroundRequest",
    "SaveRequest",
    "TrainRequest",
    "UnitRequest",
]

MAX_GRID = 64
MAX_KERNEL = 15

Small = Annotated[int, Field(ge=1, le=8)]
Pair = tuple[Small, Small]
Row = Annotated[list[float], Field(min_length=1, max_length=MAX_GRID)]
Grid = Annotated[list[Row], Field(min_length=1, max_length=MAX_GRID)]
KernelRow = Annotated[list[float], Field(min_length=1, max_length=MAX_KERNEL)]
KernelGrid = Annotated[list[KernelRow], Field(min_length=1, max_length=MAX_KERNEL)]
ModelRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^([A-Za-z0-9_][A-Za-z0-9_.-]{0,79}\.npz|trial:[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}\.db:\d{1,9})$",
        description="a model file in --models ('course.npz'), or 'trial:DB:ID' for a sweep trial's configuration",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaygroundInput(_Strict):
    """Where the playground's input grid comes from."""

    kind: Literal["numbers", "ramp", "checker", "random", "dataset"] = "numbers"
    numbers: Grid | None = Field(default=None, description="the grid itself (kind 'numbers'), rows of equal length")
    height: int = Field(default=5, ge=1, le=MAX_GRID)
    width: int = Field(default=5, ge=1, le=MAX_GRID)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    dataset: str = Field(default="mnist", pattern=r"^[a-z0-9_]{1,40}$")
    index: int = Field(default=0, ge=0, le=10**6)

    @model_validator(mode="after")
    def _numbers_given(self) -> PlaygroundInput:
        if self.kind == "numbers":
            if not self.numbers:
                raise ValueError("input kind 'numbers' needs `numbers`: rows of equal length such as [[1, 2], [3, 4]]")
            if len({len(r) for r in self.numbers}) != 1:
                raise ValueError("`numbers` rows must all have the same length")
        return self


class ExplicitPads(_Strict):
    """Padding per side."""

    top: int = Field(default=0, ge=0, le=16)
    bottom: int = Field(default=0, ge=0, le=16)
    left: int = Field(default=0, ge=0, le=16)
    right: int = Field(default=0, ge=0, le=16)


class PlaygroundRequest(_Strict):
    """One convolution or pooling to trace."""

    input: PlaygroundInput = PlaygroundInput(kind="ramp")
    op: Literal["conv", "max", "avg"] = "conv"
    kernel: str | KernelGrid = Field(default="sobel_x", description="a kernel name (sobel_x, ...) or rows of numbers")
    strides: Pair = (1, 1)
    padding: Literal["valid", "same"] | ExplicitPads = "valid"
    dilation_rate: Pair = (1, 1)
    pool_size: Pair = (2, 2)
    bias: float = Field(default=0.0, ge=-1e6, le=1e6)
    backward: bool = Field(default=False, description="also trace the input gradient")
    compare: bool = Field(default=True, description="also compare TensorFlow 'same' with PyTorch k//2 padding")


Pixels2 = Annotated[list[Annotated[list[float], Field(max_length=MAX_GRID)]], Field(min_length=1, max_length=MAX_GRID)]
Pixel3 = Annotated[list[float], Field(min_length=1, max_length=3)]
Pixels3 = Annotated[list[Annotated[list[Pixel3], Field(max_length=MAX_GRID)]], Field(min_length=1, max_length=MAX_GRID)]


class ImageInput(_Strict):
    """The inspector's input: a dataset test image or pixels (already scaled as the model expects)."""

    kind: Literal["dataset", "pixels"] = "dataset"
    dataset: str = Field(default="mnist", pattern=r"^[a-z0-9_]{1,40}$")
    index: int = Field(default=0, ge=0, le=10**6)
    pixels: Pixels2 | Pixels3 | None = None

    @model_validator(mode="after")
    def _pixels_given(self) -> ImageInput:
        if self.kind == "pixels" and not self.pixels:
            raise ValueError("input kind 'pixels' needs `pixels`: (H, W) or (H, W, C) nested lists")
        return self


class ForwardRequest(_Strict):
    """Run a model on one input."""

    model: ModelRef = "course.npz"
    input: ImageInput = ImageInput()


class UnitRequest(ForwardRequest):
    """One unit of one layer."""

    layer: str = Field(..., min_length=1, max_length=100)
    index: Annotated[list[Annotated[int, Field(ge=0, le=10**6)]], Field(min_length=1, max_length=3)]


class AttributionRequest(ForwardRequest):
    """Saliency and Grad-CAM for one class (None: the predicted one)."""

    class_index: int | None = Field(default=None, ge=0, le=10**4)


class TrainRequest(_Strict):
    """A live training run: the sweep grid's settings (one value each), the dataset and the data limits."""

    dataset: str = Field(default="mnist", pattern=r"^[a-z0-9_]{1,40}$")
    spec: str | None = Field(
        default=None,
        max_length=500,
        description="a layer string (convlens summary grammar) instead of the settings below",
    )
    filters: int = Field(default=32, ge=1, le=256)
    kernel_size: int = Field(default=3, ge=1, le=15)
    strides: int = Field(default=1, ge=1, le=8)
    padding: Literal["same", "valid"] = "same"
    conv_blocks: int = Field(default=1, ge=1, le=4)
    pooling: Literal["max", "avg", "none"] = "max"
    pool_size: int = Field(default=2, ge=1, le=8)
    activation: str = Field(default="relu", pattern=r"^[a-z0-9_]{1,20}$")
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    learning_rate: float | None = Field(default=None, gt=0, le=10)
    batch_size: int = Field(default=32, ge=1, le=4096)
    epochs: int = Field(default=1, ge=1, le=100)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    train_limit: int | None = Field(default=None, ge=1)
    test_limit: int | None = Field(default=None, ge=1)
    validation_split: float = Field(default=0.1, ge=0.0, lt=0.9)

    def trial_config(self) -> dict[str, object]:
        """The :class:`~convlens.lab.sweep.grid.TrialConfig` fields of this request."""
        return self.model_dump(exclude={"spec", "validation_split"})


class SaveRequest(_Strict):
    """Save the finished (or stopped) job's model into the models folder."""

    name: str = Field(..., min_length=5, max_length=84, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.npz$")
    overwrite: bool = False
