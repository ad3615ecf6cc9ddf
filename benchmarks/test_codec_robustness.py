"""The model x condition matrix as tests: `pytest benchmarks/ [--model NAME] [-m cat3] [-k mp3]`."""


def test_codec_robustness(codecbench_case, codecbench_check):
    codecbench_check(codecbench_case)
