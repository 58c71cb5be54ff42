"""Typed exceptions raised by the library; only the CLI turns them into messages."""

from __future__ import annotations


class DscscError(Exception):
    """Base of every error dscsc raises on purpose (bad input, bad plugin, bad data)."""


class UnknownComponentError(DscscError):
    """A plugin name that no registered plugin provides."""

    def __init__(self, kind: str, name: str, choices: list[str], suggestion: str | None):
        self.kind, self.name, self.choices, self.suggestion = kind, name, choices, suggestion
        hint = f" Did you mean '{suggestion}'?" if suggestion else ""
        super().__init__(
            f"unknown {kind} '{name}'; choose one of: {', '.join(choices) or '(none registered)'}.{hint}"
        )


class ParameterError(DscscError):
    """A parameter value that is of the wrong type or out of range."""


class ConfigError(DscscError):
    """A configuration file or option combination that cannot be used."""


class DataError(DscscError):
    """Data that cannot be clustered as given (NaN, too few samples, wrong shapes)."""


class DeviceError(DscscError):
    """A requested device that does not exist on this machine."""


class PluginError(DscscError):
    """A plugin that breaks the contract of its kind."""


class FolderInUseError(DscscError):
    """A run folder that another run (or report) is writing right now."""

    def __init__(self, folder, holder: str | None):
        self.folder, self.holder = folder, holder
        who = f"another dscsc process ({holder})" if holder else "another dscsc process that is starting"
        super().__init__(f"run folder {folder} is in use by {who}; wait for it to end or choose another folder")
