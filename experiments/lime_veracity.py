"""Study 3 (docs/studies.md §3): auditing LIME explanations of the singing voice detector.

    python experiments/lime_veracity.py --preset smoke|demo|paper --out DIR
        [--data JAMENDO_ROOT] [--model DIR] [--seed 0] [--num-samples 8192]
        [--per-direction 10] [--no-progress]

A thin wrapper around :mod:`jaxaudio.studies.lime_veracity` (also ``jaxaudio audit ...``).
"""

import argparse
import sys

from jaxaudio.studies import lime_veracity


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    lime_veracity.add_arguments(parser)
    return lime_veracity.run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
