"""Typed exceptions raised by the library; only the CLI turns them into messages.

Errors about what a user gave (a parameter, a setting, data) are also ``ValueError``s, as
scikit-learn and most Python callers expect of bad input.
"""

from __future__ import annotations

from collections.abc import Callable


class DscscError(Exception):
    """Base of every error dscsc raises on purpose (bad input, bad plugin, bad data).

    A message that names a setting or plugin parameter the user can change writes it as a field,
    ``DataError("set {setting} to the number of clusters", setting="n_clusters")``: the library
    quotes it (``'n_clusters'``), and a front end may ``render`` it as its own word for that
    setting (the command line's ``--n-clusters``). A list of names renders as a comma list.
    """

    def __init__(self, message: str = "", **names: str | list[str] | tuple[str, ...]):
        self.template, self.names = message, names
        super().__init__(self.render())

    def render(self, name: Callable[[str], str] = "'{}'".format) -> str:
        """The message with every named setting written by ``name``."""
        text = self.template
        for field, value in self.names.items():  # replace, not str.format: the rest may hold braces (paths)
            word = ", ".join(map(name, value)) if isinstance(value, (list, tuple)) else name(value)
            text = text.replace(f"{{{field}}}", word)
        return text


class UnknownComponentError(DscscError, ValueError):
    """A plugin name that no registered plugin provides."""

    def __init__(self, kind: str, name: str, choices: list[str], suggestion: str | None):
        self.kind, self.name, self.choices, self.suggestion = kind, name, choices, suggestion
        hint = f" Did you mean '{suggestion}'?" if suggestion else ""
        super().__init__(
            f"unknown {kind} '{name}'; choose one of: {', '.join(choices) or '(none registered)'}.{hint}"
        )


class ParameterError(DscscError, ValueError):
    """A parameter value that is of the wrong type or out of range."""


class ConfigError(DscscError, ValueError):
    """A configuration file or option combination that cannot be used."""


class DataError(DscscError, ValueError):
    """Data that cannot be clustered as given (NaN, too few samples, wrong shapes)."""


class UnknownParameterError(ConfigError):
    """A plugin parameter that no selected plugin declares, or that several declare."""


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


class FileWriteError(DscscError):
    """A file or folder dscsc had to write that the operating system refused (permission, full disk, file-size
    limit, a name too long, a folder that is gone). ``path`` is what could not be written, ``cause`` the
    system's own words."""

    def __init__(self, path, cause: str):
        self.path, self.cause = path, cause
        super().__init__(f"cannot write {path}: {cause}")


class DamagedFileError(DscscError):
    """A file dscsc wrote earlier (a checkpoint, a Stage I cache entry) whose content no longer matches its
    checksum, or that is not such a file at all."""


class DscscWarning(UserWarning):
    """Something a run works around and goes on (a cache it cannot write, a damaged cache entry it trains
    again): the library warns, a front end shows it as one line."""
