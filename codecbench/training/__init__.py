"""Training concerns in one place: the schedule (:mod:`.schedule`), numeric precision (:mod:`.precision`),
the training loop with its data-parallel twin (:mod:`.loop`; devices: :mod:`codecbench.store.devices`).

Nothing is imported here, so reading a schedule's defaults (the command line does) does not import Keras.
"""
