"""The model, training and evaluation tests that must hold on every Keras backend, gathered for CI's backend matrix
(`KERAS_BACKEND=jax|torch pytest tests/test_backends.py`, see .ci/run): legacy .hdf5 loading, safe_mode and the
Lambda refusal, full and segment fine-tuning, precision policies, the post-filter, prefix-shared and streamed
evaluation, the augmentation adaptors, and the device front-end.

Each test is the one in its own module, collected here a second time; under TensorFlow they already run there, so
here they skip.
"""
from __future__ import annotations

import os

from tests import optional
from tests.test_augment import small_set, test_pool_serves_a_front_ends_features_and_a_keras_sequence  # noqa: F401
from tests.test_distribute import (  # noqa: F401
    test_precision_is_recorded_in_sidecars_and_mixed_finetuning_saves_a_float32_model,
)
from tests.test_evaluation import test_streamed_evaluation_equals_the_in_memory_one_and_keeps_one_condition  # noqa: F401
from tests.test_feed import (  # noqa: F401
    test_models_with_the_front_end_on_the_device_predict_as_with_cached_features,
    test_the_device_front_end_matches_the_librosa_features,
    test_the_layer_computes_in_float32_under_a_bfloat16_model_and_round_trips_its_config,
    test_training_read_by_worker_processes_gives_the_same_weights,
)
from tests.test_finetune import (  # noqa: F401
    test_frozen_segments_stay_bit_identical_batchnorm_statistics_included,
    test_full_finetuning_changes_every_segment,
    test_same_seed_same_weights,
)
from tests.test_models import (  # noqa: F401
    test_keras_format_round_trip_with_metadata,
    test_lambda_layers_are_refused_without_trust,
    test_paper_preset_has_the_baselines_parameter_count,
    test_real_legacy_checkpoint_loads_by_weights_and_matches_keras,
)
from tests.test_postfilter import pf_zoo, test_saved_in_front_of_the_unchanged_parent_with_its_cost  # noqa: F401
from tests.test_prefix import (  # noqa: F401
    test_evaluate_many_matches_evaluate_on_a_zoo,
    test_mixed_precision_evaluation_runs_and_is_recorded_as_such,
    test_predictions_are_identical_to_each_model_alone,
    zoo_like,
)

pytestmark = optional.applies(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
                              "under TensorFlow these tests run in their own modules; this file is CI's backend "
                              "matrix (KERAS_BACKEND=jax or torch)")
