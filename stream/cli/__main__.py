"""``python -m stream.cli``: the same as the ``moodstream`` command."""

from stream.cli import main

main()
