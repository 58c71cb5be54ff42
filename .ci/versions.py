"""Print the installed version of every direct dependency of dscsc (extras included), one line each."""

from __future__ import annotations

import platform
import re
from importlib.metadata import PackageNotFoundError, requires, version


def direct_dependencies() -> list[str]:
    names = []
    for requirement in requires("dscsc") or []:
        name = re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0)
        if name not in names:
            names.append(name)
    return names


def main() -> None:
    print(f"resolved versions (Python {platform.python_version()}):")
    for name in direct_dependencies():
        try:
            print(f"  {name} {version(name)}")
        except PackageNotFoundError:
            print(f"  {name} (not installed)")


if __name__ == "__main__":
    main()
