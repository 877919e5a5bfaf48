"""Command line of wdcore.

``python -m wdcore zoo train DIRECTORY ...`` trains (or finishes) a model zoo and
``python -m wdcore describe CHECKPOINT --size 32x32 --out FILE`` writes the MI-WD
descriptor of a checkpoint. ``python -m wdcore COMMAND --help`` lists the options.
"""

from __future__ import annotations

import sys

USAGE = """usage: python -m wdcore {zoo train,describe} ...

commands:
  zoo train DIRECTORY ...   train the models of a zoo that are not trained yet
  describe CHECKPOINT ...   write the MI-WD descriptor of a checkpoint
"""


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand and return its exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["zoo", "train"]:
        from wdcore.zoo import main_train

        return main_train(argv[2:])
    if argv[:1] == ["describe"]:
        from wdcore.descriptors import main_describe

        return main_describe(argv[1:])
    stream = sys.stdout if argv[:1] in (["-h"], ["--help"]) else sys.stderr
    stream.write(USAGE)
    return 0 if stream is sys.stdout else 2


if __name__ == "__main__":
    sys.exit(main())
