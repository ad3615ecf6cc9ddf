"""What a model sees of a clip: audio levels and loudness (:mod:`.audio`), the log-mel recipe (:mod:`.features`) and
the front-ends that turn a waveform into a model's input (:mod:`.frontends`)."""
