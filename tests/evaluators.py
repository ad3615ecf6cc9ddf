"""An evaluator on a store built in one call, as the tests build many: the evaluator itself receives its store
(:class:`codecbench.store.split_inputs.SplitInputs`); only its scoring options are its own."""
from codecbench.run.evaluation import Evaluator
from codecbench.store.split_inputs import SplitInputs

SCORING = ("share_prefix", "precision", "frontend_on_device")


def split_evaluator(dataset, split, matrix, zoo, cache, **options) -> Evaluator:
    """An :class:`Evaluator` of ``zoo``'s models on ``split``; ``options`` go to the store, except the scoring ones."""
    scoring = {k: options.pop(k) for k in SCORING if k in options}
    return Evaluator(SplitInputs(dataset, split, cache, **options), matrix, zoo, **scoring)
