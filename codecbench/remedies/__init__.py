"""What wins back the accuracy coding costs: base training and fine-tuning, full or one segment (Experiments A and
B, :mod:`.finetune`), a learned post-filter in front of a frozen model (:mod:`.postfilter`) and codec-invariant
fine-tuning on paired clips (:mod:`.consistency`). Each reads its parent from a zoo and saves what it trains into
one."""
