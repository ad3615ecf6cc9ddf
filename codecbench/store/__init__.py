"""Coded clips and features in the cache, read back as model inputs and fed to the devices: the cache fill
(:mod:`.fill`), model inputs read from the cache (:mod:`.inputs`), a split's inputs filled once per condition with
its codec facts (:mod:`.split_inputs`), inputs read by worker processes (:mod:`.feed`), the backend's devices
(:mod:`.devices`) and coded sets written out as files (:mod:`.export`)."""
