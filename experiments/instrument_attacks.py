"""Study 1 (docs/studies.md §1): end-to-end waveform attacks on the instrument classifier.

    python experiments/instrument_attacks.py --preset demo --out runs/attacks [--model DIR]
        [--data FSD_ROOT] [--seed 0] [--seeds N] [--num-clips N] [--attacks pgd cw ...]
        [--set pgd.learning_rate=2e-5 ...]

Stages land under OUT/stages; a rerun recomputes only the stages whose settings changed
(``--set`` one attack's setting: only that attack's runs and its checks).

A thin wrapper around :mod:`jaxaudio.studies.instrument_attacks` (also ``jaxaudio attack``);
``--audio FILES --model DIR`` attacks your own files instead (:mod:`jaxaudio.cli.attack_command`).
"""

import argparse
import sys

from jaxaudio.cli import attack_command


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    attack_command.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return attack_command.run_from_args(args)
    except ValueError as err:
        print(f"instrument_attacks: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
