"""Plugin parameters given as free flags (``--k 15``, ``--miner.k=15``, ``--hflip``)."""

from __future__ import annotations

from dscsc_core.errors import ConfigError


def parse_extra_args(tokens: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"unexpected argument '{token}'; plugin parameters look like --name value")
        name, has_value, value = token[2:].partition("=")
        if not has_value:
            following = tokens[position + 1] if position + 1 < len(tokens) else None
            if following is None or following.startswith("--"):
                value = "true"  # a bare flag switches a boolean parameter on
            else:
                value = following
                position += 1
        if not name:
            raise ConfigError(f"malformed option '{token}'")
        params[name.replace("-", "_")] = value
        position += 1
    return params
