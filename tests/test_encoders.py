"""Table 1 encoders: TF-'SAME' stride-2 stages and mirrored decoders that return the input shape."""

from __future__ import annotations

import math

import pytest
import torch

from dscsc_core import ParameterError
from dscsc_core.training.losses import drh_loss
from dscsc_plugins.encoders import (
    TABLE1_ARCHITECTURES,
    Conv1Encoder,
    Conv3Encoder,
    SameConv,
    same_padding,
)

SHAPES = [(1, 32, 32), (1, 28, 28), (1, 48, 42), (1, 8, 8), (3, 17, 23)]
ARCHS = sorted(TABLE1_ARCHITECTURES)


def make_encoder(arch: str, **params):
    if arch == "coil20":
        return Conv1Encoder(**params)
    return Conv3Encoder(arch=arch, **params)


def expected_stages(height: int, width: int, layers: int) -> list[tuple[int, int]]:
    sizes = [(height, width)]
    for _ in range(layers):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))  # ceil(size / 2) without math.ceil
    return sizes


def test_table1_architectures_match_the_paper():
    assert TABLE1_ARCHITECTURES == {
        "orl": ((3, 3, 5), (3, 3, 3)),
        "umist": ((15, 10, 5), (3, 3, 3)),
        "yaleb": ((10, 20, 30), (5, 3, 3)),
        "mnist": ((20, 10, 5), (5, 3, 3)),
        "coil20": ((15,), (3,)),
    }


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("arch", ARCHS)
def test_round_trip_shapes_and_latent_size(arch, shape):
    torch.manual_seed(0)
    parts = make_encoder(arch).build(shape)
    channels, _ = TABLE1_ARCHITECTURES[arch]
    stages = expected_stages(shape[1], shape[2], len(channels))
    assert parts.latent_dim == channels[-1] * stages[-1][0] * stages[-1][1]

    x = torch.rand(2, *shape)
    z = parts.encoder(x)
    assert z.shape == (2, parts.latent_dim)
    y = parts.decoder(z)
    assert y.shape == x.shape
    assert (y >= 0).all()  # ReLU on the last decoder layer, as in DSC-Net

    # Every encoder stage halves each side, rounding up (TF 'SAME', stride 2).
    h = x
    seen = [tuple(h.shape[2:])]
    for layer in parts.encoder:
        h = layer(h)
        if isinstance(layer, SameConv):
            seen.append(tuple(h.shape[2:]))
    assert seen == stages
    assert [layer.conv.out_channels for layer in parts.encoder if isinstance(layer, SameConv)] == list(channels)


def test_yaleb_stage_sizes_48x42():
    parts = Conv3Encoder(arch="yaleb").build((1, 48, 42))
    h = torch.rand(1, 1, 48, 42)
    sizes = []
    for layer in list(parts.encoder)[:-1]:
        h = layer(h)
        sizes.append(tuple(h.shape[1:]))
    assert sizes == [(10, 24, 21), (20, 12, 11), (30, 6, 6)]
    assert parts.latent_dim == 30 * 6 * 6
    # And the decoder climbs back through the same stages.
    d = parts.decoder[0](torch.rand(1, parts.latent_dim))
    back = [tuple(d.shape[1:])]
    for layer in list(parts.decoder)[1:]:
        d = layer(d)
        back.append(tuple(d.shape[1:]))
    assert back == [(30, 6, 6), (20, 12, 11), (10, 24, 21), (1, 48, 42)]


@pytest.mark.parametrize("shape", [(1, 32, 32), (1, 48, 42), (3, 17, 23)])
@pytest.mark.parametrize("params", [
    {"channels": "4,8,16", "kernels": "3"},
    {"channels": "4,8,16", "kernels": "5,3,1"},
    {"channels": (2, 2, 2), "kernels": (2, 4, 2)},
    {"kernels": "1"},
])
def test_custom_channels_and_kernels(params, shape):
    encoder = Conv3Encoder(**params)
    parts = encoder.build(shape)
    x = torch.rand(3, *shape)
    assert parts.decoder(parts.encoder(x)).shape == x.shape
    convs = [layer.conv for layer in parts.encoder if isinstance(layer, SameConv)]
    channels = encoder.channels or TABLE1_ARCHITECTURES["orl"][0]
    kernels = encoder.kernels * 3 if len(encoder.kernels) == 1 else encoder.kernels
    assert [c.out_channels for c in convs] == list(channels)
    assert [c.kernel_size for c in convs] == [(k, k) for k in kernels]


def test_conv1_custom_params():
    parts = Conv1Encoder(channels="7", kernels="5").build((1, 28, 28))
    assert parts.latent_dim == 7 * 14 * 14
    x = torch.rand(2, 1, 28, 28)
    assert parts.decoder(parts.encoder(x)).shape == x.shape


@pytest.mark.parametrize("make", [
    lambda: Conv3Encoder(channels="4,8"),
    lambda: Conv3Encoder(channels="4,8,16,32"),
    lambda: Conv3Encoder(kernels="3,3"),
    lambda: Conv3Encoder(channels="4,8,16", kernels="3,3"),
    lambda: Conv1Encoder(channels="4,8"),
    lambda: Conv1Encoder(kernels="3,3"),
])
def test_wrong_layer_counts_raise_parameter_error_at_build(make):
    encoder = make()  # accepted at construction...
    with pytest.raises(ParameterError):
        encoder.build((1, 32, 32))  # ...rejected when the layout is built


@pytest.mark.parametrize("make", [
    lambda: Conv3Encoder(arch="coil20"),
    lambda: Conv1Encoder(arch="orl"),
    lambda: Conv3Encoder(channels="0,4,4"),
    lambda: Conv3Encoder(kernels="3,x,3"),
    lambda: Conv3Encoder(depth=3),
])
def test_invalid_params_raise_parameter_error(make):
    with pytest.raises(ParameterError):
        make()


@pytest.mark.parametrize("shape", [(32, 32), (0, 32, 32), (1, 0, 8), (1, 2, 3, 4)])
def test_build_rejects_bad_input_shapes(shape):
    with pytest.raises(ParameterError):
        Conv3Encoder().build(shape)


@pytest.mark.parametrize("size,kernel,expected", [
    (32, 3, (0, 1)),   # out 16: (16-1)*2 + 3 - 32 = 1
    (28, 5, (1, 2)),   # out 14: 26 + 5 - 28 = 3
    (48, 5, (1, 2)),   # out 24: 46 + 5 - 48 = 3
    (42, 3, (0, 1)),   # out 21: 40 + 3 - 42 = 1
    (21, 3, (1, 1)),   # out 11: 20 + 3 - 21 = 2
    (11, 3, (1, 1)),   # out 6: 10 + 3 - 11 = 2
    (17, 5, (2, 2)),   # out 9: 16 + 5 - 17 = 4
    (1, 3, (1, 1)),    # out 1: 0 + 3 - 1 = 2
    (8, 1, (0, 0)),    # out 4: 6 + 1 - 8 = -1 -> 0
    (8, 2, (0, 0)),    # out 4: 6 + 2 - 8 = 0
    (7, 2, (0, 1)),    # out 4: 6 + 2 - 7 = 1
])
def test_same_padding_matches_tensorflow_same(size, kernel, expected):
    assert same_padding(size, kernel) == expected


@pytest.mark.parametrize("size,kernel", [(s, k) for s in (1, 2, 5, 8, 17, 28, 42) for k in (1, 2, 3, 5)])
def test_same_padding_gives_ceil_output(size, kernel):
    before, after = same_padding(size, kernel)
    assert before <= after <= before + 1
    out = (size + before + after - kernel) // 2 + 1
    assert out == math.ceil(size / 2)


def _reconstruct_with_grad(arch: str, seed: int):
    torch.manual_seed(seed)
    parts = make_encoder(arch).build((1, 16, 16))
    x = torch.rand(4, 1, 16, 16)
    x_aug = torch.rand(4, 1, 16, 16)
    y = parts.decoder(parts.encoder(torch.cat([x, x_aug])))
    drh_loss([(x, y[:4]), (x_aug, y[4:])]).backward()
    params = list(parts.encoder.named_parameters()) + list(parts.decoder.named_parameters())
    return y, params


@pytest.mark.parametrize("arch", ARCHS)
def test_every_encoder_and_decoder_parameter_is_in_the_graph(arch):
    _, params = _reconstruct_with_grad(arch, seed=0)
    channels, _ = TABLE1_ARCHITECTURES[arch]
    assert len(params) == 2 * 2 * len(channels)  # weight + bias per conv and per deconv
    for name, p in params:
        assert p.grad is not None, name
        assert p.grad.shape == p.shape, name
        assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_are_nonzero_for_every_parameter_of_a_live_autoencoder(arch):
    # Wiring check: every weight and bias of encoder and decoder gets a non-zero gradient.
    for seed in range(10):
        y, params = _reconstruct_with_grad(arch, seed)
        if (y > 0).any():
            break
    else:
        pytest.fail(f"{arch}: decoder output identically zero for seeds 0..9")
    for name, p in params:
        assert p.grad.abs().sum() > 0, f"{arch} seed {seed}: {name}"


def test_decoder_output_is_not_identically_zero_at_init():
    dead = []
    for arch in ("orl", "umist", "yaleb", "mnist"):
        for seed in range(20):
            torch.manual_seed(seed)
            parts = Conv3Encoder(arch=arch).build((1, 32, 32))
            with torch.no_grad():
                y = parts.decoder(parts.encoder(torch.rand(8, 1, 32, 32)))
            if not (y > 0).any():
                dead.append((arch, seed))
    assert not dead, f"decoder output identically zero (no DRH gradient) for {len(dead)}/80 inits: {dead}"


# ----------------------------------------------------------------------------- starting weights
def _dscnet_layout(parts) -> dict[str, torch.Tensor]:
    """A state dict named as DSC-Net's PyTorch port names its layers (conv1.., deconv1..)."""
    state = {}
    for index, layer in enumerate(parts.encoder[:-1], start=1):
        state[f"encoder.conv{index}.weight"], state[f"encoder.conv{index}.bias"] = layer.conv.weight, layer.conv.bias
    for index, layer in enumerate(parts.decoder[1:], start=1):
        state[f"decoder.deconv{index}.weight"] = layer.deconv.weight
        state[f"decoder.deconv{index}.bias"] = layer.deconv.bias
    return {key: value.detach().clone() for key, value in state.items()}


@pytest.mark.parametrize("layout", ["dscnet", "dscsc"])
def test_weights_file_sets_the_starting_autoencoder(tmp_path, layout):
    torch.manual_seed(0)
    source = make_encoder("orl").build((1, 32, 32))
    state = _dscnet_layout(source) if layout == "dscnet" else {
        **{f"encoder.{k}": v for k, v in source.encoder.state_dict().items()},
        **{f"decoder.{k}": v for k, v in source.decoder.state_dict().items()},
        "head.0.weight": torch.zeros(1)}  # a whole network's state dict: other modules are ignored
    torch.save(state, tmp_path / "ae.pt")
    torch.manual_seed(1)
    loaded = make_encoder("orl", weights=str(tmp_path / "ae.pt")).build((1, 32, 32))
    x = torch.rand(3, 1, 32, 32)
    assert torch.equal(loaded.decoder(loaded.encoder(x)), source.decoder(source.encoder(x)))


def test_weights_that_do_not_fit_the_architecture_are_one_clear_error(tmp_path):
    from dscsc_core import DataError

    torch.save(_dscnet_layout(make_encoder("yaleb").build((1, 32, 32))), tmp_path / "yaleb.pt")
    with pytest.raises(DataError, match="does not fit this encoder.*check --arch"):
        make_encoder("orl", weights=str(tmp_path / "yaleb.pt")).build((1, 32, 32))
    with pytest.raises(DataError, match="weights file not found"):
        make_encoder("orl", weights=str(tmp_path / "missing.pt")).build((1, 32, 32))
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(DataError, match="not a PyTorch state dict"):
        make_encoder("orl", weights=str(tmp_path / "junk.pt")).build((1, 32, 32))


# ----------------------------------------------------------------------------- starting weights by rule
def test_pytorch_init_draws_the_layers_as_pytorch_does():
    """``init = pytorch`` is PyTorch's default draw (DSC-Net's PyTorch port), layer by layer in
    build order; ``xavier`` starts every bias at zero."""
    torch.manual_seed(3)
    parts = Conv1Encoder(init="pytorch").build((1, 32, 32))
    torch.manual_seed(3)
    conv, deconv = torch.nn.Conv2d(1, 15, 3, stride=2), torch.nn.ConvTranspose2d(15, 1, 3, stride=2)
    assert torch.equal(parts.encoder[0].conv.weight, conv.weight)
    assert torch.equal(parts.encoder[0].conv.bias, conv.bias)
    assert torch.equal(parts.decoder[1].deconv.weight, deconv.weight)
    xavier = Conv1Encoder().build((1, 32, 32))
    assert not xavier.encoder[0].conv.bias.any() and not xavier.decoder[1].deconv.bias.any()
    with pytest.raises(ParameterError, match="init"):
        Conv1Encoder(init="he")
