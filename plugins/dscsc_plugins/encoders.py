"""Convolutional encoders of DSC-Net/DSCSC (Table 1) with TF-'SAME' stride-2 layers and mirrored decoders."""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dscsc_core import AutoEncoderParts, DataError, Encoder, Param, ParameterError

# Table 1 of the paper: encoder channels and kernel sizes per dataset (the decoder mirrors them).
TABLE1_ARCHITECTURES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "orl": ((3, 3, 5), (3, 3, 3)),
    "umist": ((15, 10, 5), (3, 3, 3)),
    "yaleb": ((10, 20, 30), (5, 3, 3)),
    "mnist": ((20, 10, 5), (5, 3, 3)),
    "coil20": ((15,), (3,)),
}


def same_padding(size: int, kernel: int, stride: int = 2) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) so that the output is ceil(size / stride)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


# How a layer's weights start: "xavier" (Xavier weights, zero biases: DSC-Net's TensorFlow original)
# or "pytorch" (PyTorch's own default, which the PyTorch port of DSC-Net keeps).
INITS = ("xavier", "pytorch")


def _initialised(layer: nn.Module, init: str) -> nn.Module:
    if init == "xavier":
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
    return layer


class SameConv(nn.Module):
    """Stride-2 convolution + ReLU with TF-'SAME' padding for one known input size."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, in_hw: tuple[int, int], init: str = "xavier"):
        super().__init__()
        (top, bottom), (left, right) = (same_padding(s, kernel) for s in in_hw)
        self.pad = (left, right, top, bottom)
        self.conv = _initialised(nn.Conv2d(in_ch, out_ch, kernel, stride=2), init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(F.pad(x, self.pad)), inplace=True)  # in place: the output is fresh


class CroppedDeconv(nn.Module):
    """The adjoint of SameConv: stride-2 transposed convolution, cropped to the encoder stage's shape."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, out_hw: tuple[int, int], init: str = "xavier"):
        super().__init__()
        self.deconv = _initialised(nn.ConvTranspose2d(in_ch, out_ch, kernel, stride=2), init)
        self.top, self.left = same_padding(out_hw[0], kernel)[0], same_padding(out_hw[1], kernel)[0]
        self.out_hw = out_hw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.deconv(x)
        # One (negative where it crops) padding: unlike a slice, whose gradient is scattered into a
        # fresh NCHW tensor, a padding keeps the channels-last layout in both directions (Yale B's
        # DSCSC step on 2 CPU cores: 1.09-1.10 s with the slice, 1.06-1.075 s with this, the same
        # numbers). Kernels smaller than the stride leave the border uncovered: there it pads zeros.
        height, width = self.out_hw
        y = F.pad(y, (-self.left, self.left + width - y.shape[3], -self.top, self.top + height - y.shape[2]))
        return F.relu(y, inplace=True)  # DSC-Net keeps ReLU on the last decoder layer too


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class Unflatten(nn.Module):
    def __init__(self, shape: tuple[int, int, int]):
        super().__init__()
        self.shape = shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.view(z.shape[0], *self.shape)


def conv_autoencoder(input_shape: tuple[int, int, int], channels, kernels, init: str = "xavier") -> AutoEncoderParts:
    in_ch, height, width = input_shape
    sizes = [(height, width)]
    for _ in channels:
        sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
    widths = [in_ch, *channels]
    encoder_layers = [SameConv(widths[i], widths[i + 1], kernels[i], sizes[i], init) for i in range(len(channels))]
    decoder_layers = [
        CroppedDeconv(widths[i + 1], widths[i], kernels[i], sizes[i], init) for i in reversed(range(len(channels)))
    ]
    latent_shape = (channels[-1], *sizes[-1])
    return AutoEncoderParts(
        encoder=nn.Sequential(*encoder_layers, Flatten()),
        decoder=nn.Sequential(Unflatten(latent_shape), *decoder_layers),
        latent_dim=math.prod(latent_shape),
        homogeneous=True,  # stride-2 convolutions, zero padding, ReLU: positively homogeneous
    )


class ConvStackEncoder(Encoder):
    """Stacked stride-2 convolutions; ``arch`` picks a Table 1 architecture, or set channels/kernels."""

    layers: int = 3
    default_arch: str = "orl"

    def layout(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        arch_channels, arch_kernels = TABLE1_ARCHITECTURES[self.arch]
        channels = self.channels or arch_channels
        kernels = self.kernels or arch_kernels
        if len(kernels) == 1 and len(channels) > 1:
            kernels = kernels * len(channels)
        if len(channels) != self.layers or len(kernels) != self.layers:
            raise ParameterError(
                f"encoder '{self.name}' needs {self.layers} channel and kernel values; "
                f"got channels={','.join(map(str, channels))} kernels={','.join(map(str, kernels))}"
            )
        return channels, kernels

    def check_context(self, context):
        self.layout()
        if self.weights and context.data_root is not None:
            # Like a dataset file: absolute, relative to the working folder, or to the data root.
            self._weights_path = context.data_root.user_file(self.weights, f"encoder '{self.name}' weights")

    def make(self, input_shape):
        channels, kernels = self.layout()
        parts = conv_autoencoder(input_shape, channels, kernels, self.init)
        if self.weights:
            path = getattr(self, "_weights_path", None) or Path(self.weights).expanduser()
            load_weights(parts, path, self.name)
        return parts


# DSC-Net's PyTorch port names layers encoder.conv1.., decoder.deconv1..; ours are numbered
# Sequential entries (the decoder's first entry is the Unflatten).
_DSCNET_KEY = re.compile(r"^(encoder)\.conv(\d+)\.(weight|bias)$|^(decoder)\.deconv(\d+)\.(weight|bias)$")


def _our_key(key: str) -> str:
    match = _DSCNET_KEY.match(key)
    if match is None:
        return key
    if match.group(1):
        return f"encoder.{int(match.group(2)) - 1}.conv.{match.group(3)}"
    return f"decoder.{int(match.group(5))}.deconv.{match.group(6)}"


def load_weights(parts: AutoEncoderParts, path: Path, encoder: str) -> None:
    """Start the autoencoder from a state dict: DSC-Net's layout (its authors' pretrained .pkl files)
    or dscsc's own (``encoder.*`` and ``decoder.*`` keys, as a network's state dict holds them)."""
    if not path.is_file():
        raise DataError(f"encoder '{encoder}' weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a state dict
        raise DataError(f"encoder '{encoder}' weights file {path} is not a PyTorch state dict "
                        f"({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise DataError(f"encoder '{encoder}' weights file {path} holds a {type(state).__name__}, not a state dict")
    renamed = {_our_key(key): value for key, value in state.items()}
    for module_name in ("encoder", "decoder"):
        module = getattr(parts, module_name)
        prefix = f"{module_name}."
        own = {key[len(prefix):]: value for key, value in renamed.items() if key.startswith(prefix)}
        expected = module.state_dict()
        shapes_differ = [k for k in expected if k in own and tuple(own[k].shape) != tuple(expected[k].shape)]
        if set(own) != set(expected) or shapes_differ:
            raise DataError(
                f"encoder '{encoder}' weights file {path} does not fit this {module_name} "
                f"(its layers: {sorted(expected)}; the file's: {sorted(own)}"
                + (f"; shapes differ at {shapes_differ}" if shapes_differ else "") + "); check --arch/--channels"
            )
        module.load_state_dict(own)


def _arch_params(default: str, layers: int) -> tuple[Param, ...]:
    names = tuple(name for name, (ch, _) in TABLE1_ARCHITECTURES.items() if len(ch) == layers)
    return (
        Param("arch", str, default, "Table 1 architecture to start from", choices=names),
        Param("channels", "ints", None, f"{layers} channel counts, e.g. overrides the arch's", min=1,
              max=1024),
        Param("kernels", "ints", None, f"{layers} kernel sizes (or one for all)", min=1, max=31),
        Param("weights", str, None, "start from this state dict (DSC-Net's pretrained layout or dscsc's own)"),
        Param("init", str, "xavier", "starting weights: xavier (zero biases, DSC-Net's TensorFlow code) or pytorch "
              "(PyTorch's default, DSC-Net's PyTorch port)", choices=INITS),
    )


class Conv3Encoder(ConvStackEncoder):
    name = "conv3"
    summary = "three stride-2 conv layers (Table 1: orl, umist, yaleb, mnist) with a mirrored decoder"
    params = _arch_params("orl", 3)
    layers = 3


class Conv1Encoder(ConvStackEncoder):
    name = "conv1"
    summary = "one stride-2 conv layer (Table 1: coil20) with a mirrored decoder"
    params = _arch_params("coil20", 1)
    layers = 1
