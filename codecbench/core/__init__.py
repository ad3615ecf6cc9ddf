"""Foundations every stage shares: files written atomically (:mod:`.fsutil`), worker pools (:mod:`.parallel`),
progress lines and counted wording, TOML settings (:mod:`.config`), the Keras backend (:mod:`.backend`), run
provenance, the bit-exact numerics of the scene generator (:mod:`.bitexact`) and the resampling and filters the
codecs use (:mod:`.dsp`), the content-addressed array cache (:mod:`.cache`) and the colours of every figure
(:mod:`.palette`).

Nothing here imports another codecbench package except :mod:`codecbench.errors`.
"""
