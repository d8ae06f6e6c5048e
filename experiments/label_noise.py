"""Study 2 (docs/studies.md §2): label noise in the instrument tagger.

    python experiments/label_noise.py --preset demo --out runs/noise [--data FSD_ROOT]
        [--seed 0] [--seeds N] [--robust gce bootstrap smoothing] [--epochs N]
        [--train-mode vmap|shared|sequential]   (default: shared on CPU, vmap on GPU/TPU)

A thin wrapper around :mod:`jaxaudio.studies.label_noise` (also ``jaxaudio noise``).
"""

import argparse
import sys

from jaxaudio.studies import label_noise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    label_noise.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return label_noise.run_from_args(args)
    except ValueError as err:
        print(f"label_noise: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
