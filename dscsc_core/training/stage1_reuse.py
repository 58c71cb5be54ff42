"""Starting Stage II from a finished Stage I that another run stored (``stage1_cache``), so that the run ends
exactly as one that trained Stage I itself; and the random stream that lets runs with different heads share
one DSC-Net Stage I."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from dscsc_core.errors import ConfigError
from dscsc_core.settings import TrainingConfig
from dscsc_core.training.checkpoint import StageOne
from dscsc_core.training.lifecycle import cuda_rng, set_rng
from dscsc_core.training.model import DSCSCNetwork, head_fits, projection_head
from dscsc_core.training.result import STAGE1_STORED_S, EpochReport, TrainingResult

# The head a "drh" Stage I is trained beside, whatever the run's own (see StageOneReuse.default_head_stream).
DEFAULT_HEAD = (TrainingConfig().head_hidden, TrainingConfig().head_dim)


class StageOneReuse:
    """A run's Stage I as a stored, shareable thing: snapshot it, decide whether a stored one is this run's,
    restore it, and draw a "drh" Stage I's random numbers as a default-head run would."""

    def __init__(self, config: TrainingConfig):
        self.config = config
        # Where a default-sized head's draw leaves the generator, for a "drh" Stage I beside another head.
        self._default_head_state: torch.Tensor | None = None

    @property
    def borrows_default_head_stream(self) -> bool:
        """A "drh" Stage I of a run whose head is not the default one (see ``default_head_stream``)."""
        cfg = self.config
        return cfg.pretrain_objective == "drh" and (cfg.head_hidden, cfg.head_dim) != DEFAULT_HEAD

    def note_network_drawn(self, latent_dim: int) -> None:
        """Called once the autoencoder is drawn and before the head is: remember where a default-sized head's
        draw would leave the generator (the generator itself stays where it is)."""
        if self.borrows_default_head_stream:
            with torch.random.fork_rng(devices=[]):
                projection_head(latent_dim, *DEFAULT_HEAD)
                self._default_head_state = torch.get_rng_state()

    @contextmanager
    def default_head_stream(self) -> Iterator[None]:
        """Train a "drh" Stage I on the random numbers a network with the default head would train it on.

        Such a Stage I never touches the head, yet its mini-batch shuffles come from the generator the head's
        initial draw advanced; so a run with another head (DSCSC's on COIL20 and Yale B) trains the Stage I its
        recipe (default head) trains, and then takes back the random state it drew with its network: exactly
        what reusing that stored Stage I gives (``restore``). A resumed Stage I gets its stream's state back
        from the checkpoint, and its own state by drawing the network again.
        """
        if not self.borrows_default_head_stream:
            yield
            return
        own = torch.get_rng_state(), cuda_rng()
        torch.set_rng_state(self._default_head_state)
        yield
        set_rng(*own)

    def can_start_from(self, stage1: StageOne) -> bool:
        """Whether a stored Stage I is this run's own. One with another head (a "drh" Stage I, shared across
        head sizes) is, unless its weights were redrawn: a redraw follows the first draw's head, of its own size."""
        cfg = self.config
        if head_fits(stage1.network, cfg.head_hidden, cfg.head_dim):
            return True
        if cfg.pretrain_objective != "drh":
            raise ConfigError("the stored Stage I was trained with another head; a Stage I that trains the head "
                              "is stored by its sizes")
        return stage1.dead_starts == 0

    def snapshot(self, network: DSCSCNetwork, result: TrainingResult) -> StageOne:
        """This run's finished Stage I, to store: weights, the random state it ended with, history and cost."""
        return StageOne(
            fingerprint="", network={k: v.detach().cpu().clone() for k, v in network.state_dict().items()},
            rng=torch.get_rng_state(), cuda_rng=cuda_rng(), history=[report.__dict__ for report in result.history],
            pretrain_epochs_run=result.pretrain_epochs_run, seconds=result.timings["pretrain_s"],
            dead_starts=result.dead_starts,
        )

    def restore(self, network: DSCSCNetwork, stage1: StageOne, result: TrainingResult) -> None:
        """Put a stored Stage I in place of training one: weights, random state, history and what it cost."""
        cfg = self.config
        if head_fits(stage1.network, cfg.head_hidden, cfg.head_dim):
            network.load_state_dict(stage1.network)
        else:  # a "drh" Stage I stored by a run with another head: the autoencoder is the shared part
            autoencoder = {key: value for key, value in stage1.network.items() if not key.startswith("head.")}
            network.load_state_dict({**network.state_dict(), **autoencoder})
        if not self.borrows_default_head_stream:
            set_rng(stage1.rng, stage1.cuda_rng)
        # else: this run keeps the random state it drew with its network, as its own Stage I hands it back.
        result.history = [EpochReport(**report) for report in stage1.history]
        result.pretrain_epochs_run = stage1.pretrain_epochs_run
        result.dead_starts = stage1.dead_starts
        result.timings["pretrain_s"] = 0.0
        # Kept in the timings so that a checkpoint carries it: a run resumed in Stage II still counts the
        # reused Stage I at what it cost.
        result.timings[STAGE1_STORED_S] = stage1.seconds
