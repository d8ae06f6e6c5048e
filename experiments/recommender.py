"""Study 4 (docs/studies.md §4): adversarial hubs in a music recommender, and Mutual Proximity.

    python experiments/recommender.py --preset demo --out runs/rec [--audio DIR] [--seed 0]
        [--num-songs N] [--song-seconds S] [--attacks kl_closest mp_aware_closest ...]

A thin wrapper around :mod:`jaxaudio.studies.recommender` (also ``jaxaudio recommend``).
"""

import argparse
import sys

from jaxaudio.studies import recommender


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    recommender.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return recommender.run_from_args(args)
    except ValueError as err:
        print(f"recommender: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
