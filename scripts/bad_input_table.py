"""Run the `jaxaudio` command on mistakes a user can make and print what it answers.

    python scripts/bad_input_table.py [--out docs/bad_inputs.md]

Each case runs in this process (``jaxaudio.cli.main``) in a scratch folder holding a smoke
instrument classifier, a smoke voice detector and a few audio files (44.1 kHz stereo WAV,
8 kHz mono FLAC, a 10-minute 8 kHz WAV, a 5 ms WAV, an empty and a corrupt .wav, a text file).
The table lists the exit code, the first line of the error and whether a traceback was
printed. Expected: exit 2 and one line naming the flag for every mistake; exit 0 for the cases
marked "(works)".
"""

from __future__ import annotations

import argparse
import contextlib
import io
import pathlib
import tempfile
import traceback

import numpy as np
import soundfile as sf


HEADER = """# What the command answers to mistakes

Produced by `python scripts/bad_input_table.py --out docs/bad_inputs.md` (scratch folder, smoke
models, paths shortened to …). Every mistake exits 2 with one line naming the flag or the
file; the cases marked (works) exit 0.

"""


def _files(root: pathlib.Path) -> None:
    (root / "clips" / "sub").mkdir(parents=True)
    t = np.arange(int(2.5 * 44100)) / 44100
    sf.write(root / "clips" / "stereo_44k.wav",
             np.stack([0.3 * np.sin(2 * np.pi * 440 * t)] * 2, 1), 44100, subtype="PCM_16")
    t = np.arange(3 * 8000) / 8000
    sf.write(root / "clips" / "sub" / "mono_8k.flac", 0.2 * np.sin(2 * np.pi * 220 * t), 8000,
             subtype="PCM_16")
    (root / "clips" / "notes.txt").write_text("not audio")
    rng = np.random.default_rng(0)
    sf.write(root / "ten_minutes.wav", 0.1 * rng.standard_normal(600 * 8000), 8000,
             subtype="PCM_16")
    sf.write(root / "tiny.wav", np.zeros(80), 16000, subtype="PCM_16")
    (root / "empty.wav").write_bytes(b"")
    (root / "corrupt.wav").write_bytes(rng.bytes(4000))
    (root / "empty_folder").mkdir()
    (root / "a_file").write_text("x")
    (root / "labels_bad.csv").write_text("name,class\nstereo_44k.wav,Gong\n")
    (root / "labels_short.csv").write_text("fname,label\nstereo_44k.wav,Gong\n")
    (root / "broken_results").mkdir()
    (root / "broken_results" / "results.json").write_text("{not json")


def _cases(r: pathlib.Path, inst: str, voice: str) -> list:
    clips, wav = str(r / "clips"), str(r / "clips" / "stereo_44k.wav")
    att = ["attack", "--model", inst, "--out", str(r / "o_att"), "--preset", "smoke"]
    ex = ["explain", "--model", inst, "--out", str(r / "o_ex"), "--audio", wav]
    pr = ["predict", "--model", inst, "--out", str(r / "o_pr"), "--no-progress"]
    return [
        ("predict: a folder with audio in two formats and a text file (works)", pr + ["--audio", clips]),
        ("predict: a 10-minute 8 kHz file (works)", pr + ["--audio", str(r / "ten_minutes.wav")]),
        ("predict: the voice detector on a file (works)",
         ["predict", "--model", voice, "--out", str(r / "o_pv"), "--audio", wav, "--no-progress"]),
        ("predict: --audio missing", pr + ["--audio", str(r / "missing.wav")]),
        ("predict: --audio an empty folder", pr + ["--audio", str(r / "empty_folder")]),
        ("predict: --audio a text file", pr + ["--audio", str(r / "clips" / "notes.txt")]),
        ("predict: --audio an empty .wav", pr + ["--audio", str(r / "empty.wav")]),
        ("predict: --audio a corrupt .wav", pr + ["--audio", str(r / "corrupt.wav")]),
        ("predict: --model missing", ["predict", "--model", str(r / "nope"), "--out",
                                      str(r / "o"), "--audio", wav]),
        ("predict: --model an audio folder", ["predict", "--model", clips, "--out", str(r / "o"),
                                              "--audio", wav]),
        ("predict: --top 0", pr + ["--audio", wav, "--top", "0"]),
        ("predict: --out is a file", ["predict", "--model", inst, "--out", str(r / "a_file"),
                                      "--audio", wav]),
        ("explain: LIME on a file (works)", ex + ["--num-samples", "64", "--no-progress"]),
        ("explain: --start negative", ex + ["--start", "-1"]),
        ("explain: --start past the end", ex + ["--start", "9"]),
        ("explain: --label not a class", ex + ["--label", "Tuba"]),
        ("explain: --method unknown", ex + ["--method", "shap"]),
        ("explain: --num-samples 0", ex + ["--num-samples", "0"]),
        ("explain: --audio a folder", ["explain", "--model", inst, "--out", str(r / "o"),
                                       "--audio", clips]),
        ("explain: --model missing", ["explain", "--model", str(r / "nope"), "--out",
                                      str(r / "o"), "--audio", wav]),
        ("attack --audio: PGD on a folder (works)", att + ["--audio", clips]),
        ("attack --audio: C&W towards a class (works)",
         att + ["--audio", wav, "--attack", "cw", "--target", "Accordion"]),
        ("attack --audio: the psychoacoustic attack (works)",
         att + ["--audio", wav, "--attack", "psy"]),
        ("attack --audio: without --model", ["attack", "--out", str(r / "o"), "--audio", wav]),
        ("attack --audio: --label not a class", att + ["--audio", wav, "--label", "Tuba"]),
        ("attack --audio: --target not a class", att + ["--audio", wav, "--target", "Tuba"]),
        ("attack --audio: --target equal to the true label",
         att + ["--audio", wav, "--label", "Gong", "--target", "Gong"]),
        ("attack --audio: --labels missing", att + ["--audio", wav, "--labels", str(r / "x.csv")]),
        ("attack --audio: --labels without fname,label columns",
         att + ["--audio", wav, "--labels", str(r / "labels_bad.csv")]),
        ("attack --audio: --labels lacks a row for a file",
         att + ["--audio", clips, "--labels", str(r / "labels_short.csv")]),
        ("attack --audio: --label and --labels",
         att + ["--audio", wav, "--label", "Gong", "--labels", str(r / "labels_short.csv")]),
        ("attack --audio: --attack unknown", att + ["--audio", wav, "--attack", "deepfool"]),
        ("attack --audio: a 10-minute file", att + ["--audio", str(r / "ten_minutes.wav")]),
        ("attack --audio: a 5 ms file", att + ["--audio", str(r / "tiny.wav")]),
        ("attack --audio: the voice detector", ["attack", "--model", voice, "--out", str(r / "o"),
                                                "--audio", wav]),
        ("attack --audio: --set unknown key", att + ["--audio", wav, "--set", "pgd.nope=1"]),
        ("attack --audio: --set not a number",
         att + ["--audio", wav, "--set", "pgd.learning_rate=fast"]),
        ("attack: --label without --audio", ["attack", "--out", str(r / "o"), "--label", "Gong"]),
        ("attack: --seed -1", ["attack", "--out", str(r / "o"), "--seed", "-1"]),
        ("attack: --num-clips 0", ["attack", "--out", str(r / "o"), "--num-clips", "0"]),
        ("attack: --attacks unknown", ["attack", "--out", str(r / "o"), "--attacks", "deepfool"]),
        ("attack: --model of the voice detector", ["attack", "--out", str(r / "o"), "--model",
                                                   voice, "--preset", "smoke"]),
        ("attack: --multilabel with --data", ["attack", "--out", str(r / "o"), "--multilabel",
                                              "--data", clips]),
        ("attack: --set psy.alpha not a number", ["attack", "--out", str(r / "o"), "--set",
                                                  "psy.alpha=high"]),
        ("robustness: --model of the voice detector",
         ["robustness", "--out", str(r / "o"), "--model", voice, "--preset", "smoke"]),
        ("robustness: --model missing",
         ["robustness", "--out", str(r / "o"), "--model", str(r / "nope")]),
        ("robustness: --seed -1", ["robustness", "--out", str(r / "o"), "--seed", "-1"]),
        ("recommend: --audio a missing folder",
         ["recommend", "--out", str(r / "o"), "--audio", str(r / "nope")]),
        ("recommend: --audio an empty folder",
         ["recommend", "--out", str(r / "o"), "--audio", str(r / "empty_folder")]),
        ("recommend: --audio a folder of two songs",
         ["recommend", "--out", str(r / "o"), "--audio", clips, "--preset", "smoke"]),
        ("recommend: --attacks unknown", ["recommend", "--out", str(r / "o"), "--attacks",
                                          "kl_nearest"]),
        ("recommend: --num-songs 1", ["recommend", "--out", str(r / "o"), "--num-songs", "1"]),
        ("recommend: --song-seconds 0", ["recommend", "--out", str(r / "o"), "--song-seconds",
                                         "0"]),
        ("train: --tagger multi on the voice data",
         ["train", "--dataset", "synth-voice", "--tagger", "multi", "--out", str(r / "o")]),
        ("train: --tagger unknown", ["train", "--dataset", "synth-instruments", "--tagger",
                                     "many", "--out", str(r / "o")]),
        ("train: --epochs 0", ["train", "--dataset", "synth-instruments", "--out", str(r / "o"),
                               "--epochs", "0"]),
        ("train: --epochs -3", ["train", "--dataset", "synth-instruments", "--out", str(r / "o"),
                                "--epochs", "-3"]),
        ("train: --out is a file", ["train", "--dataset", "synth-instruments", "--out",
                                    str(r / "a_file")]),
        ("train: --dataset fsdkaggle2019 without --data",
         ["train", "--dataset", "fsdkaggle2019", "--out", str(r / "o")]),
        ("train: --data a missing folder",
         ["train", "--dataset", "fsdkaggle2019", "--data", str(r / "nope"), "--out", str(r / "o")]),
        ("train: --data an empty folder (jamendo)",
         ["train", "--dataset", "jamendo", "--data", str(r / "empty_folder"), "--out",
          str(r / "o")]),
        ("train: --resume with another --seed (other data)",
         ["train", "--dataset", "synth-instruments", "--preset", "smoke", "--seed", "1",
          "--out", str(r / "inst"), "--resume"]),
        ("evaluate: of the trained model, defaults from training (works)",
         ["evaluate", "--model", inst]),
        ("evaluate: --data without --dataset", ["evaluate", "--model", inst, "--data", clips]),
        ("evaluate: --model missing", ["evaluate", "--model", str(r / "nope")]),
        ("evaluate: instrument model on voice data",
         ["evaluate", "--model", inst, "--dataset", "synth-voice"]),
        ("evaluate: a truncated checkpoint", ["evaluate", "--model", str(r / "truncated")]),
        ("evaluate: weight bytes zeroed in place after saving",
         ["evaluate", "--model", str(r / "zeroed")]),
        ("noise: --seeds 0", ["noise", "--out", str(r / "o"), "--seeds", "0"]),
        ("noise: --out is a file", ["noise", "--out", str(r / "a_file")]),
        ("audit: --num-samples 0", ["audit", "--out", str(r / "o"), "--num-samples", "0"]),
        ("audit: --per-direction 0", ["audit", "--out", str(r / "o"), "--per-direction", "0"]),
        ("audit: --model of the instrument classifier",
         ["audit", "--out", str(r / "o"), "--model", inst, "--preset", "smoke"]),
        ("demo: --only with a typo", ["demo", "--only", "atack"]),
        ("report: a missing folder", ["report", str(r / "nope")]),
        ("report: a corrupt results.json", ["report", str(r / "broken_results")]),
        ("--version (works)", ["--version"]),
    ]


def _run(argv) -> tuple[int, str, bool]:
    from jaxaudio import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # argparse
            code = int(exit_.code or 0)
        except Exception:  # noqa: BLE001  (a traceback is what the table must show)
            traceback.print_exc(file=err)
            code = -1
    text = err.getvalue().strip()
    lines = [ln for ln in text.splitlines() if ln.strip() and "%|" not in ln]
    first = lines[-1] if lines else out.getvalue().strip().splitlines()[-1:][0:1]
    first = first if isinstance(first, str) else (first[0] if first else "")
    return code, first, "Traceback" in text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="also write the table (Markdown) here")
    args = ap.parse_args()
    import sys

    from jaxaudio import cli

    # Many commands in one process: Orbax's event loops of an earlier case may be collected
    # during a later one and report "Event loop is closed" through this hook; that is an
    # artefact of running the cases in one process (a real `jaxaudio` process prints nothing).
    sys.unraisablehook = lambda unraisable: None

    with tempfile.TemporaryDirectory() as tmp:
        r = pathlib.Path(tmp)
        _files(r)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for dataset, name in (("synth-instruments", "inst"), ("synth-voice", "voice")):
                assert cli.main(["train", "--dataset", dataset, "--preset", "smoke", "--out",
                                 str(r / name)]) == 0
        import shutil

        shutil.copytree(r / "inst" / "model", r / "truncated")
        for f in sorted((r / "truncated").rglob("*")):
            if f.is_file() and f.stat().st_size > 1000:
                f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
        shutil.copytree(r / "inst" / "model", r / "zeroed")
        big = max((f for f in (r / "zeroed" / "variables").rglob("*") if f.is_file()),
                  key=lambda f: f.stat().st_size)
        data = bytearray(big.read_bytes())
        data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
        big.write_bytes(bytes(data))
        rows = ["| # | case | exit | message (last line of stderr) | traceback |",
                "|---|---|---|---|---|"]
        for i, (what, argv) in enumerate(_cases(r, str(r / "inst" / "model"),
                                                str(r / "voice" / "model")), 1):
            code, msg, tb = _run(argv)
            msg = msg.replace(tmp, "…").replace("|", "\\|")
            rows.append(f"| {i} | {what} | {code} | {msg[:160]} | {'YES' if tb else 'no'} |")
            print(rows[-1], flush=True)
    if args.out:
        pathlib.Path(args.out).write_text(HEADER + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
