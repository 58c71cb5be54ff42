"""``python -m dscsc_cli``: the ``dscsc`` command (what torchrun starts: ``torchrun ... -m dscsc_cli run ...``)."""

from dscsc_cli.main import main

main()
