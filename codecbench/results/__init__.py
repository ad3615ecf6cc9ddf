"""The record of a run and what is read from it: results files and the history (:mod:`.files`), a results row
(:mod:`.rows`), the statistics on paired predictions (:mod:`.stats`), thresholds and the pass/fail rule
(:mod:`.thresholds`, :mod:`.judge`), two runs compared clip by clip (:mod:`.compare`) and the diagnoses a run wrote
(:mod:`.diagnoses`)."""
