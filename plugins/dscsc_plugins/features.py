"""Fixed features computed from the images before training.

``scattering``: Mallat's wavelet scattering transform (Bruna & Mallat, 2013) of second order, the features
behind the large-scale subspace clustering results on MNIST (EnSC, SSC-OMP and SENet all cluster the
scattering coefficients, not the pixels). Morlet wavelets at J scales and L orientations, as kymatio builds
them (sigma 0.8 * 2^j, centre frequency 3/4 pi / 2^j, slant 4 / L), applied in the Fourier domain; each
modulus is averaged by a Gaussian of width 0.8 * 2^J and sampled every 2^J pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dscsc_core import DataError, FeatureExtractor, Param


def _grid(size: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates centred on 0, laid out so that index 0 is the origin (as the FFT expects)."""
    axis = torch.fft.ifftshift(torch.arange(size, dtype=dtype) - size // 2)
    return torch.meshgrid(axis, axis, indexing="ij")


def morlet_spectrum(size: int, sigma: float, theta: float, xi: float, slant: float) -> torch.Tensor:
    """Fourier transform of a zero-mean Morlet wavelet on a periodic size x size grid (real, as the
    wavelet is Hermitian)."""
    ys, xs = _grid(size)
    along, across = xs * math.cos(theta) + ys * math.sin(theta), -xs * math.sin(theta) + ys * math.cos(theta)
    envelope = torch.exp(-(along ** 2 + (slant * across) ** 2) / (2 * sigma ** 2))
    wave = torch.exp(1j * xi * along)
    wavelet = envelope * (wave - (envelope * wave).sum() / envelope.sum())  # minus its mean: zero DC
    return torch.fft.fft2(wavelet / (2 * math.pi * sigma ** 2 / slant)).real


def gaussian_spectrum(size: int, sigma: float) -> torch.Tensor:
    ys, xs = _grid(size)
    gaussian = torch.exp(-(xs ** 2 + ys ** 2) / (2 * sigma ** 2))
    return torch.fft.fft2(gaussian / gaussian.sum()).real


class ScatteringFeatures(FeatureExtractor):
    name = "scattering"
    summary = ("second-order wavelet scattering transform (Morlet wavelets, J scales, L orientations), "
               "log-compressed: the features of EnSC/SSC-OMP/SENet on MNIST")
    params = (
        Param("scales", int, 3, "J: wavelet scales; maps are averaged and sampled every 2^J pixels", min=1, max=6),
        Param("orientations", int, 8, "L: wavelet orientations", min=1, max=16),
        Param("log_scale", float, 10.0, "maps become log(1 + log_scale * S); 0 keeps S as it is", min=0),
        Param("batch", int, 64, "images transformed at once (memory: about batch * 8 * L^2 * H * W bytes)",
              min=1),
    )

    def channels_per_input(self) -> int:
        scales, orientations = self.scales, self.orientations
        return 1 + scales * orientations + orientations ** 2 * scales * (scales - 1) // 2

    def features(self, images: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = images.shape
        step = 2 ** self.scales
        if min(height, width) < step:
            raise DataError(f"features '{self.name}': images of {height}x{width} are smaller than 2^J = {step} "
                            f"pixels; lower --features.scales (J)")
        size = step * math.ceil(max(height, width) / step)  # a square grid, a multiple of 2^J
        wavelets, lowpass = self._filters(size, images.device)
        # Zero padding to the square grid (the transform is periodic); each channel is transformed alone.
        top, left = (size - height) // 2, (size - width) // 2
        planes = F.pad(images.float(), (left, size - width - left, top, size - height - top)).reshape(-1, size, size)
        maps = torch.cat([self._transform(part, wavelets, lowpass) for part in planes.split(self.batch)])
        maps = maps.reshape(n, channels * maps.shape[1], size // step, size // step)
        return torch.log1p(self.log_scale * maps.clamp_min(0)) if self.log_scale > 0 else maps

    def _filters(self, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """J*L wavelet spectra (scale-major) and the low-pass spectrum, complex64 on ``device``."""
        scales, orientations = self.scales, self.orientations
        first_angle = int(orientations - orientations / 2 - 1)  # kymatio's orientation order
        wavelets = torch.stack([
            morlet_spectrum(size, 0.8 * 2 ** j, (first_angle - angle) * math.pi / orientations,
                            0.75 * math.pi / 2 ** j, 4 / orientations)
            for j in range(scales) for angle in range(orientations)
        ])
        lowpass = gaussian_spectrum(size, 0.8 * 2 ** scales)
        return wavelets.to(device, torch.complex64), lowpass.to(device, torch.complex64)

    def _transform(self, planes: torch.Tensor, wavelets: torch.Tensor, lowpass: torch.Tensor) -> torch.Tensor:
        """B x size x size planes -> B x channels x (size / 2^J)^2 scattering coefficients: order 0, order 1
        (J*L, scale-major), then order 2 (|x * psi_j1| * psi_j2 for j2 > j1, ordered j1, j2, l1, l2).

        As kymatio does, each modulus is kept only every 2^j pixels, j the scale of its last wavelet (its
        band is narrower than that sampling allows): the work of a second-order map shrinks 4-fold a scale."""
        scales, orientations, last = self.scales, self.orientations, 2 ** self.scales
        spectrum = torch.fft.fft2(planes.to(torch.complex64)).unsqueeze(1)
        zeroth = _averaged(spectrum, lowpass, 1, last)
        first, second = [], []
        for j1 in range(scales):
            step1 = 2 ** j1
            modulus = torch.fft.ifft2(_aliased(spectrum * wavelets[j1 * orientations:(j1 + 1) * orientations],
                                               step1)).abs()
            modulus_spectrum = torch.fft.fft2(modulus.to(torch.complex64))  # B x L at size / 2^j1
            first.append(_averaged(modulus_spectrum, lowpass, step1, last))
            for j2 in range(j1 + 1, scales):
                step2 = 2 ** j2
                coarser = _filter_at(wavelets[j2 * orientations:(j2 + 1) * orientations], step1)
                product = modulus_spectrum.unsqueeze(2) * coarser  # B x L x L
                inner = torch.fft.ifft2(_aliased(product, step2 // step1)).abs().flatten(1, 2)
                second.append(_averaged(torch.fft.fft2(inner.to(torch.complex64)), lowpass, step2, last))
        return torch.cat([zeroth, *first, *second], 1)


def _aliased(spectrum: torch.Tensor, factor: int) -> torch.Tensor:
    """The spectrum of a signal kept every ``factor`` pixels (its aliases summed)."""
    if factor == 1:
        return spectrum
    *lead, height, width = spectrum.shape
    folded = spectrum.reshape(*lead, factor, height // factor, factor, width // factor)
    return folded.sum((-4, -2)) / factor ** 2


def _filter_at(spectrum: torch.Tensor, step: int) -> torch.Tensor:
    """A filter's spectrum for signals kept every ``step`` pixels."""
    return _aliased(spectrum, step) * step ** 2


def _averaged(spectrum: torch.Tensor, lowpass: torch.Tensor, step: int, last: int) -> torch.Tensor:
    """Maps sampled every ``step`` pixels, averaged by the low-pass filter and kept every ``last`` pixels."""
    return torch.fft.ifft2(_aliased(spectrum * _filter_at(lowpass, step), last // step)).real
