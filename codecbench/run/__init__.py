"""A benchmark run from options to recorded results: the run specification, a plain value (:mod:`.spec`), the
workspace it names and the run resolved once (:mod:`.resolve`), the session that evaluates, judges and records its
cases (:mod:`.session`), the evaluator (:mod:`.evaluation`), plans and measured rates (:mod:`.plan`,
:mod:`.rates`) and the per-band diagnosis of a model under a codec (:mod:`.diagnose`)."""
