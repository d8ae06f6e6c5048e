"""Study 1 (docs/studies.md §1): end-to-end waveform attacks on the instrument classifier.

    python experiments/instrument_attacks.py --preset demo --out runs/attacks [--model DIR]
        [--data FSD_ROOT] [--seed 0] [--seeds N] [--num-clips N] [--attacks pgd cw ...]
        [--set pgd.learning_rate=2e-5 ...]

Stages land under OUT/stages; a rerun recomputes only the stages whose settings changed
(``--set`` one attack's setting: only that attack's runs and its checks).

A thin wrapper around :mod:`jaxaudio.studies.instrument_attacks` (also ``jaxaudio attack``).
"""

import argparse
import sys

from jaxaudio.studies import instrument_attacks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    instrument_attacks.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return instrument_attacks.run_from_args(args)
    except ValueError as err:
        print(f"instrument_attacks: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
