"""The command line's parser: every subcommand and option, values checked by :class:`~codecbench.run.spec.RunSpec`."""
from __future__ import annotations

import argparse

from codecbench.bench import BENCHMARKS
from codecbench.codecs import ConditionError, parse_condition
from codecbench.core.cache import NAMESPACES
from codecbench.errors import UsageError
from codecbench.run.spec import (
    OPTIONS,
    RunSpec,
    to_fraction,
    to_non_negative_float,
    to_non_negative_int,
    to_positive_float,
    to_positive_int,
    to_tolerance,
)
from codecbench.training.schedule import FINETUNE_DEFAULTS, SEGMENT_LEARNING_RATES, TrainConfig

DESCRIPTION = """\
How scene classifiers hold up under audio coding (AAC, HE-AAC, MP3, Opus, SBC and more): code a dataset,
fine-tune models against the artifacts, compare runs and render the report. The benchmark itself is a pytest
run (pytest benchmarks/); these commands prepare its data and models and read its results.
"""

#: The examples under ``codecbench --help`` and each subcommand's ``--help``.
EXAMPLES = {
    None: """\
examples:
  codecbench conditions                          what this machine can code, and with which library
  pytest benchmarks/ --model finetuned_seg7      the benchmark: models x codec conditions as tests
  codecbench report                              reports/: Markdown, CSV, figures and html/index.html
  codecbench dataset download tau2020-mobile --to ~/data
  codecbench reproduce peters --data ~/data/TAU-urban-acoustic-scenes-2020-mobile-development \\
      --checkpoint 10class-fcnn-model-0.7694.hdf5

'codecbench COMMAND --help' shows each command's options; docs/ has the guides.""",
    "conditions": "examples:\n  codecbench conditions\n  codecbench conditions --matrix sweeps --rate 22050",
    "encode": "examples:\n  codecbench encode --dataset synthetic --split evaluate --features\n"
              "  codecbench encode --dataset ~/data/TAU --condition mp3@32,aac@64 --jobs 8 --dry-run",
    "export": "example:\n  codecbench export --dataset synthetic --split evaluate --condition wav,mp3@32 --to coded/",
    "cache": "examples:\n  codecbench cache info\n  codecbench cache gc --older-than 30",
    "segments": "example:\n  codecbench segments base",
    "import-model": "examples:\n  codecbench import-model 10class-fcnn-model-0.7694.hdf5 --name base\n"
                    "  codecbench import-model model.onnx --name mine --frontend waveform:16000 --classes classes.txt\n"
                    "  codecbench import-model mypkg.models:build --name torchnet --trust-code\n"
                    "  codecbench import-model hf:MIT/ast-finetuned-audioset-10-10-0.4593 --name ast "
                    "--label-map audioset-to-scenes.json\n"
                    "  codecbench import-model clap:laion/clap-htsat-unfused --name clap --classes airport,bus,...",
    "train": "examples:\n  codecbench train --dataset synthetic --name base --epochs 3 --dry-run\n"
             "  codecbench train --dataset ~/data/TAU --preset paper --name base",
    "finetune": "examples:\n  codecbench finetune --full --save-epochs 1,10,20,40\n"
                "  codecbench finetune --segment 7 --epochs 10",
    "postfilter": "example:\n  codecbench postfilter train --from base --epochs 5",
    "consistency": "examples:\n  codecbench consistency --from base --epochs 10\n"
                   "  codecbench consistency --from base --weight 2 --temperature 4 --name finetuned_consistency_w2",
    "zoo": "examples:\n  codecbench zoo list\n  codecbench zoo build --dry-run\n"
           "  codecbench zoo compare --other rebuilt-zoo/",
    "report": "examples:\n  codecbench report\n  codecbench report --html\n"
              "  codecbench report --models base,finetuned_seg7 --baseline old/results.json --paper peters",
    "reproduce": "examples:\n  codecbench reproduce peters --data synthetic --preset small\n"
                 "  codecbench reproduce peters --data ~/data/TAU --checkpoint 10class-fcnn-model-0.7694.hdf5 "
                 "--dry-run",
    "dataset": "examples:\n  codecbench dataset list\n  codecbench dataset download urbansound8k --to ~/data\n"
               "  codecbench dataset verify urbansound8k ~/data --deep",
    "submit": "examples:\n  codecbench submit --results reports/ --model finetuned_seg7 --licence MIT "
              "--training-data 'TAU 2020 Mobile development, fold 1 train'",
    "leaderboard": "examples:\n  codecbench leaderboard\n  codecbench leaderboard --add a.submission.json "
                   "b.submission.json --board board/\n  codecbench leaderboard teamA/reports teamB/results.json "
                   "--out site/",
    "history": "example:\n  codecbench history check",
    "compare": "examples:\n  codecbench compare reports/example/results.json reports/results.json\n"
               "  codecbench compare old/ new/ --min-agreement 0.995",
    "thresholds": "example:\n  codecbench thresholds --margin 0.05 --out benchmarks/thresholds.toml",
    "devices": "example:\n  codecbench devices --json",
    "diagnose": "examples:\n  codecbench diagnose --model base --condition sbc@64\n"
                "  codecbench diagnose --model finetuned_seg7 --condition opus@24+loss10 --clips 100 --bands 16",
    "bench": "examples:\n  codecbench bench codecs\n  codecbench bench fill\n  codecbench bench feed --clips 64",
}


def _common(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add options of the run specification; their values are validated by :meth:`RunSpec.build`. A command with a
    cache codes audio, so it also takes the neural codecs' weights."""
    for name in (*names, "codec_weights") if "cache_dir" in names else names:
        option = OPTIONS[name]
        flags = [option.flag] + (["-j"] if name == "jobs" else [])
        parser.add_argument(*flags, dest=name, default=None, help=option.help, **option.argparse_extra)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codecbench", description=DESCRIPTION, epilog=EXAMPLES[None],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="say more: debug messages of every stage")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    _coding_commands(sub)
    _model_commands(sub)
    _study_commands(sub)
    _machine_commands(sub)
    _describe(sub)
    return parser


def _coding_commands(sub) -> None:
    """``conditions``, ``encode``, ``export``, ``cache``: the codecs, coded audio and the cache."""
    p = sub.add_parser("conditions", help="print the condition matrix and what is available here")
    _common(p, "matrix", "codec_weights")
    p.add_argument("--rate", type=_positive_int, default=None, metavar="HZ",
                   help="also show the rate each codec codes audio recorded at HZ at (e.g. 22050)")

    p = sub.add_parser("encode", help="fill the cache with coded audio (and features) for a dataset split")
    _common(p, "cache_dir", "matrix", "dataset", "split", "folds", "jobs", "backend", "scheduler")
    p.add_argument("--allow-partial", action="store_true", help="use the clips present if some are missing")
    p.add_argument("--condition", "--conditions", dest="condition",
                   help="comma-separated conditions (default: every condition of the matrix)")
    p.add_argument("--features", action="store_true", help="also extract and cache the log-mel features")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    _plan_options(p, "run even if the plan says the cache would outgrow the free disk")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("export", help="write a split's coded versions as audio files in the TAU layout (resumable)")
    _common(p, "cache_dir", "dataset", "split", "folds", "jobs", "backend", "scheduler")
    p.add_argument("--condition", "--conditions", dest="condition", required=True,
                   help="comma-separated conditions, e.g. wav,mp3@32,he-aac@16")
    p.add_argument("--to", required=True, help="the folder to write (audio/<condition>/..., evaluation_setup/)")
    p.add_argument("--format", dest="file_format", choices=["wav", "flac"], default="wav",
                   help="24-bit WAV (default) or FLAC")

    p = sub.add_parser("cache", help="inspect, garbage-collect or clear the cache")
    p.add_argument("action", choices=["info", "gc", "clear"])
    p.add_argument("--namespace", choices=NAMESPACES, help="only this part of the cache (info, clear)")
    p.add_argument("--older-than", type=_positive_float, default=None, metavar="DAYS",
                   help="gc: also remove entries not read for this many days (fractions allowed; reads are noted "
                        "to ten minutes)")
    _common(p, "cache_dir")


def _model_commands(sub) -> None:
    """``segments``, ``import-model``, ``train``, ``finetune``, ``postfilter``, ``consistency``, ``zoo``."""
    p = sub.add_parser("segments", help="print a model's segments with their parameter counts")
    p.add_argument("model_name", metavar="model", help="a model name in the zoo, or a .keras/.hdf5 file")
    _common(p, "model_dir")
    p.add_argument("--trust-code", action="store_true", default=None,
                   help="allow executable code: Lambda layers in the file, a Python entry point")

    p = sub.add_parser("import-model", help="put a model (.keras, legacy .hdf5, .onnx, a Python factory, a Hugging "
                                            "Face checkpoint) into the model directory")
    p.add_argument("path", help="a .keras/.hdf5/.h5 or .onnx file, a Python entry point package.module:factory, "
                                "hf:<folder or hub id> (an audio classifier) or clap:<folder or hub id> (zero-shot)")
    p.add_argument("--name", required=True)
    _common(p, "model_dir")
    p.add_argument("--kind", choices=["keras", "onnx", "python", "hf", "clap"],
                   help="default: from the file suffix, the 'hf:'/'clap:' prefix, or the ':'")
    p.add_argument("--frontend", help="hu2020 (default for Keras), waveform:RATE, or logmel:key=value,... "
                                      "(sample_rate, n_fft, hop_length, n_mels, fmin, fmax, log_offset, normalise, "
                                      "deltas)")
    p.add_argument("--classes", help="the model's class names in output order: comma-separated, or a file with "
                                     "one per line")
    p.add_argument("--class-map", "--label-map", dest="class_map",
                   help="TOML or JSON file mapping the model's class names to the dataset's (hf: many labels to one "
                        "class, their probabilities summed)")
    p.add_argument("--prompts", help="clap: TOML or JSON file of one text prompt per class (default: 'the sound of "
                                     "a busy airport', ...)")
    p.add_argument("--outputs", choices=["probabilities", "logits"], help="what the model returns (ONNX, Python)")
    p.add_argument("--kwargs", help="Python: JSON object of keyword arguments for the factory")
    p.add_argument("--trust-code", action="store_true", default=None,
                   help="allow executable code: Lambda layers in the file, a Python entry point")
    p.add_argument("--force", action="store_true", help="replace a model of that name")

    p = sub.add_parser("train", help="train the FCNN from scratch (base training)")
    _common(p, "cache_dir", "dataset", "folds", "jobs", "backend", "scheduler", "model_dir", "precision", "devices")
    p.add_argument("--name", default="base")
    p.add_argument("--preset", default="small", choices=["small", "paper"])
    p.add_argument("--conditions", dest="condition", default="wav",
                   help="training conditions (coded ones: the paper's retraining)")
    p.add_argument("--resume", action="store_true", help="continue from the last epoch's checkpoint")
    p.add_argument("--allow-schedule-change", action="store_true",
                   help="with --resume: continue a checkpoint under other schedule options (both are recorded)")
    p.add_argument("--validate", default="wav,mp3@32",
                   help="conditions of the evaluation split scored after every epoch (default: wav,mp3@32; empty: "
                        "none)")
    _plan_options(p, "replace a model of that name; run even if the cache would outgrow the free disk")
    _train_options(p, TrainConfig())

    p = sub.add_parser("finetune", help="fine-tune a zoo model on original + coded audio (Experiments A and B)")
    _common(p, "cache_dir", "dataset", "folds", "matrix", "jobs", "backend", "scheduler", "model_dir", "precision",
            "devices")
    p.add_argument("--from", dest="parent", default="base", help="parent model name (default: base)")
    _plan_options(p, "replace existing models of the same names; run even if the cache would outgrow the free disk")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--full", action="store_true", help="Experiment A: every parameter")
    mode.add_argument("--segment", help="Experiment B: segment(s) to fine-tune alone, e.g. 7 or 1-10")
    p.add_argument("--save-epochs", help="with --full: epochs to save, e.g. 1,10,20,40 (default: the last)")
    p.add_argument("--validate", default="wav,mp3@32",
                   help="conditions of the evaluation split scored after every epoch (default: wav,mp3@32; empty: "
                        "none)")
    _train_options(p, TrainConfig(**FINETUNE_DEFAULTS), segment_lr=True)

    p = sub.add_parser("postfilter", help="train a post-filter that enhances coded features for an unchanged "
                                          "classifier (saved as <parent>+postfilter)")
    p.add_argument("action", choices=["train"])
    _common(p, "cache_dir", "dataset", "folds", "matrix", "jobs", "backend", "scheduler", "model_dir")
    p.add_argument("--from", dest="parent", default="base", help="the classifier to put it in front of (default: base)")
    p.add_argument("--name", default=None, help="zoo name (default: <parent>+postfilter)")
    p.add_argument("--epochs", type=_positive_int, default=5)
    p.add_argument("--filters", type=_positive_int, default=32, help="channels of its hidden convolutions")
    p.add_argument("--layers", type=_positive_int, default=4, help="convolutions (the last one is the correction)")
    p.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate")
    p.add_argument("--crop", type=_non_negative_int, default=64, help="random crop in frames (0: off)")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--force", action="store_true", help="replace a model of that name")

    p = sub.add_parser("consistency", help="fine-tune a zoo model to predict the same on a clip's uncoded and coded "
                                           "versions (codec-invariant training; saved as finetuned_consistency)")
    _common(p, "cache_dir", "dataset", "folds", "matrix", "jobs", "backend", "scheduler", "model_dir")
    p.add_argument("--from", dest="parent", default="base", help="the model to fine-tune (default: base)")
    p.add_argument("--name", default="finetuned_consistency", help="zoo name (default: finetuned_consistency)")
    p.add_argument("--epochs", type=_positive_int, default=10)
    p.add_argument("--weight", type=_argument(to_non_negative_float), default=1.0,
                   help="weight of the consistency term against the cross-entropies (default: 1)")
    p.add_argument("--temperature", type=_positive_float, default=2.0,
                   help="temperature that softens both predictions in the consistency term (default: 2)")
    p.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default: fine-tuning's)")
    p.add_argument("--force", action="store_true", help="replace a model of that name")

    p = sub.add_parser("zoo", help="list the model zoo, build what is missing, or compare it with another")
    p.add_argument("action", choices=["list", "build", "compare"])
    p.add_argument("--other", help="with compare: the other model directory (e.g. a rebuild)")
    p.add_argument("--preset", default="demo", choices=["demo", "paper"],
                   help="zoo build preset: demo (synthetic, small FCNN) or paper")
    _common(p, "model_dir", "cache_dir", "dataset", "folds", "matrix", "jobs", "backend", "scheduler", "precision",
            "devices")
    p.add_argument("--dry-run", action="store_true", help="build: print the plan (pairs, bytes, free disk, hours) "
                                                          "and stop; a TAU folder without its audio is planned too")
    p.add_argument("--force", action="store_true", help="build: run even if the cache would outgrow the free disk")


def _study_commands(sub) -> None:
    """``report``, ``reproduce``, ``dataset``, ``leaderboard``, ``submit``, ``history``, ``compare``,
    ``thresholds``, ``diagnose``: results, studies and data."""
    p = sub.add_parser("report", help="render the paper's tables and Figure 2 from a results folder")
    _common(p, "results", "baseline", "baseline_max_changed", "alpha")
    p.add_argument("--out", default=None, help="output folder (default: the results folder)")
    p.add_argument("--format", default="md,csv,png,svg,html",
                   help="comma-separated: md, csv, png, svg, html (the interactive page, html/index.html)")
    p.add_argument("--html", action="store_true", help="write only the HTML report (html/index.html) and say where")
    p.add_argument("--markdown", action="store_true",
                   help="print the whole Markdown report (default: the files written and where)")
    p.add_argument("--models", dest="model", default=None,
                   help="comma-separated model names (default: all in the results)")
    p.add_argument("--run", dest="run_id", default=None,
                   help="render exactly this run (default: the latest result of every model and condition)")
    p.add_argument("--paper", default=None, choices=["peters"],
                   help="add the paper's published numbers beside this run's (default: for `reproduce` runs)")
    p.add_argument("--comment", default=None, metavar="FILE",
                   help="also write the report's short summary (title, regression gate, ranking) as Markdown for a "
                        "pull-request comment")
    p.add_argument("--reference", default="base",
                   help="the model the relative coding error is measured against (default: base; 100 = as robust)")

    p = sub.add_parser("reproduce", help="a study end to end, resumable: data, checkpoint, fine-tuning, benchmark, "
                                         "report with the paper's numbers beside this run's")
    p.add_argument("paper", choices=["peters"], help="the study (peters: Table 2 and Experiment B)")
    p.add_argument("--data", required=True, help="the dataset: a TAU 2020 Mobile root (with evaluation_setup/), an "
                   "UrbanSound8K or ESC-50 folder (with its metadata; choose folds with --folds), a folder per class, "
                   "or synthetic (the embedded default); see `codecbench dataset download`")
    p.add_argument("--checkpoint", default=None, help="the base model file (.hdf5/.keras): the study's "
                                                      "10class-fcnn-model-0.7694.hdf5 (optional only for synthetic "
                                                      "data with --preset small: the packaged demo base)")
    p.add_argument("--preset", choices=["paper", "small"], default="paper",
                   help="paper: the study's schedule for the paper FCNN; small: the demo's, for CPUs")
    p.add_argument("--out", default=None, help="work folder: zoo, results, report (default: ./reproduce-PAPER); "
                                               "the same command resumes it")
    p.add_argument("--full-epochs", default=None, help="Experiment A's saved epochs (default: 1,10,20,40)")
    p.add_argument("--segments", default=None, help="Experiment B's segments (default: 1-10)")
    p.add_argument("--segment-epochs", default=None, help="epochs per segment (default: 10)")
    p.add_argument("--validate", default="wav,mp3@32",
                   help="conditions of the evaluation split scored after every fine-tuning epoch (default: "
                        "wav,mp3@32; empty: none)")
    p.add_argument("--code-ahead", choices=["auto", "on", "off"], default="auto",
                   help="code the evaluation set while the fine-tunings train, at a lower priority (auto: where an "
                        "accelerator trains them, so the host's cores are free but for the feed; default: auto)")
    _common(p, "folds", "cache_dir", "jobs", "backend", "scheduler", "precision", "devices", "rates")
    p.add_argument("--dry-run", action="store_true", help="check the data, print the plan and stop")
    p.add_argument("--force", action="store_true", help="run even if the plan says the disk cannot hold it")

    p = sub.add_parser("dataset", help="public datasets: list them, download (resumable, checked) and verify")
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="known datasets: size, licence, where from")
    d = actions.add_parser("download", help="fetch, check and unpack a dataset (resumes where it stopped)")
    d.add_argument("name", help="a dataset of `codecbench dataset list`: tau2020-mobile, urbansound8k, esc50")
    d.add_argument("--to", required=True, help="folder for the archives and the unpacked dataset")
    d.add_argument("--mirror", default=None, help="another http(s) host with the same file names (or "
                   "$CODECBENCH_MIRROR); archives already on disk are copied into <to>/archives/ instead")
    d.add_argument("--no-unpack", dest="unpack", action="store_false", help="fetch and check only")
    d.add_argument("--timeout", type=_positive_float, default=60.0, help="seconds to wait for the server (default: 60)")
    v = actions.add_parser("verify", help="what is missing or wrong in a download folder: archives, unpacking, and "
                           "every listed clip's size")
    v.add_argument("name", help="the dataset the folder holds")
    v.add_argument("folder", help="the folder given to download --to")
    v.add_argument("--deep", action="store_true", help="also open every clip: readable header, the published "
                   "rate and length")

    p = sub.add_parser("leaderboard", help="one HTML page of every model ever benchmarked: a ranking per dataset "
                       "and matrix, from the results history or several results folders")
    p.add_argument("sources", nargs="*", help="results folders or results.json files (default: --results)")
    _common(p, "results")
    p.add_argument("--out", default=None, help="output folder (default: <results>/leaderboard; with --add: "
                                                "<board>/site)")
    p.add_argument("--add", nargs="+", default=None, metavar="FILE",
                   help="add submission files (codecbench submit) to the board --board, each checked against the "
                        "board's dataset and conditions by content, and render the board's site")
    p.add_argument("--board", default="board", help="the board folder of --add (default: ./board)")
    p.add_argument("--replace", action="store_true", help="--add: replace a model of the same name whose file "
                                                          "differs")

    p = sub.add_parser("submit", help="one model's results as one file another lab can add to a shared board "
                                      "(codecbench leaderboard --add)")
    _common(p, "results")
    p.add_argument("--model", required=True, help="the model to submit (a model of the results)")
    p.add_argument("--out", default=None, help="the submission file (default: <model>.submission.json)")
    p.add_argument("--training-data", default=None, help="the model's training data, as you declare it")
    p.add_argument("--licence", "--license", dest="licence", default=None, help="the model's licence, as you "
                                                                                "declare it")

    p = sub.add_parser("history", help="check the results history, or rebuild it from the run folders")
    p.add_argument("action", choices=["check", "rebuild"])
    _common(p, "results")

    p = sub.add_parser("compare", help="compare two runs clip by clip: accuracies, identical predictions, McNemar p")
    p.add_argument("reference", help="results.json (or results folder) of the reference run")
    p.add_argument("candidate", help="results.json (or results folder) of the run to compare")
    p.add_argument("--match-by", choices=["key", "name"], default="key",
                   help="pair clips by their path relative to the dataset root (default), or by file name (for "
                        "runs recorded before clips were keyed by path)")
    p.add_argument("--json", action="store_true", help="print one JSON object (cells and totals)")
    p.add_argument("--min-agreement", type=_argument(to_fraction), default=None, metavar="SHARE",
                   help="exit 1 when a cell's share of identical predictions is below SHARE (e.g. 0.995) or its "
                        "accuracy lies outside the reference's Wilson interval")

    p = sub.add_parser("thresholds", help="write a thresholds TOML from a results run (accuracy - margin)")
    _common(p, "results")
    p.add_argument("--margin", type=_argument(to_tolerance), default=0.05,
                   help="accuracy below each recorded one that still passes, in [0, 1) (default: 0.05)")
    p.add_argument("--out", default=None, help="file to write (default: print)")

    p = sub.add_parser("diagnose", help="why a model fails under a codec: the change per mel band, what the "
                                        "front-end's normalisation makes of it, and which bands cost accuracy")
    _common(p, "model", "condition", "dataset", "split", "folds", "model_dir", "cache_dir", "results", "trust_code")
    p.add_argument("--bands", type=_argument(to_positive_int), default=8,
                   help="groups of neighbouring mel bins (default: 8)")
    p.add_argument("--clips", type=_argument(to_positive_int), default=None,
                   help="at most this many clips, spread over the split (default: all)")


def _machine_commands(sub) -> None:
    """``devices``, ``bench``: this machine."""
    p = sub.add_parser("devices", help="the Keras backend, its devices, the precision 'auto' picks, the feed workers, "
                                       "and a warning when a GPU is present that the backend cannot use")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("bench", help="performance figures of this machine")
    p.add_argument("what", choices=list(BENCHMARKS), help="which figures (see the README, 'Other commands')")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--clips", type=_positive_int, default=None,
                   help="clips measured: codecs (fill, default 24), memory (default 40; 3x that for the growth), "
                        "feed (default 32), augment (default 12), fill (default 8), plan (default 100; the check: "
                        "1000)")
    p.add_argument("--condition", "--conditions", dest="condition", default=None,
                   help="feed: the condition read (default mp3@64); fill: the conditions (default: the coded ones of "
                        "the paper's matrix); plan: the conditions filled (default mp3@64)")
    p.add_argument("--segments", action="store_true",
                   help="model: also time each segment fine-tuned alone (Experiment B's steps; a plan prices its "
                        "segments with them)")


def _describe(sub) -> None:
    """Each command's --help opens with its one-line summary (argparse shows it only in the list) and ends with
    examples."""
    summaries = {action.dest: action.help for action in sub._choices_actions}
    for name, command in sub.choices.items():
        command.description = command.description or _sentence(summaries.get(name))
        command.epilog = EXAMPLES.get(name)
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _describe(action)


def _sentence(text: str | None) -> str | None:
    return f"{text[0].upper()}{text[1:]}." if text else None


def _plan_options(parser: argparse.ArgumentParser, force_help: str) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (pairs cached/missing, bytes, free disk, time on this machine) and stop")
    parser.add_argument("--force", action="store_true", help=force_help)


def _argument(convert):
    """An argparse type from a validator of the run specification's family (one family of validators): its
    message, without the option name argparse adds itself."""
    def parse(text: str):
        try:
            return convert(text, "")
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(": ")) from None
    return parse


_positive_int = _argument(to_positive_int)
_non_negative_int = _argument(to_non_negative_int)
_positive_float = _argument(to_positive_float)
_non_negative_float = _argument(to_non_negative_float)


def _train_options(parser: argparse.ArgumentParser, defaults: TrainConfig, segment_lr: bool = False) -> None:
    group = parser.add_argument_group("training schedule")
    group.add_argument("--epochs", type=_positive_int, default=defaults.epochs)
    group.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size)
    group.add_argument("--lr", type=_positive_float, default=None if segment_lr else defaults.learning_rate,
                       help="initial learning rate" + (
                           f" (default: {defaults.learning_rate} for --full; for --segment by segment kind: "
                           + ", ".join(f"{k} {v}" for k, v in SEGMENT_LEARNING_RATES.items()) + ")"
                           if segment_lr else ""))
    group.add_argument("--first-restart", type=_positive_float, default=defaults.first_restart_epochs,
                       help="epochs until the first warm restart")
    group.add_argument("--period-mult", type=_positive_float, default=defaults.period_multiplier)
    group.add_argument("--rate-mult", type=_positive_float, default=defaults.rate_multiplier)
    group.add_argument("--mixup", type=_non_negative_float, default=defaults.mixup_alpha, help="mixup alpha (0: off)")
    group.add_argument("--crop", type=_non_negative_int, default=defaults.crop_frames,
                       help="random crop in frames (0: off)")
    group.add_argument("--time-mask", type=_non_negative_int, default=defaults.time_mask_frames)
    group.add_argument("--freq-mask", type=_non_negative_int, default=defaults.freq_mask_bins)
    group.add_argument("--seed", type=_non_negative_int, default=defaults.seed)


def validation_conditions(text: str | None, option: str = "--validate") -> tuple:
    """``"wav,mp3@32"`` -> conditions (empty: none), the option named on a bad one."""

    try:
        return tuple(parse_condition(c.strip()) for c in (text or "").split(",") if c.strip())
    except ConditionError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _train_config(args, spec: RunSpec) -> TrainConfig:
    return TrainConfig(precision=spec.precision, devices=spec.devices, epochs=args.epochs, batch_size=args.batch_size,
                       learning_rate=args.lr if args.lr is not None else FINETUNE_DEFAULTS["learning_rate"],
                       first_restart_epochs=args.first_restart, period_multiplier=args.period_mult,
                       rate_multiplier=args.rate_mult, mixup_alpha=args.mixup, crop_frames=args.crop or None,
                       time_mask_frames=args.time_mask, freq_mask_bins=args.freq_mask, seed=args.seed)
