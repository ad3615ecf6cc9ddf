"""Training concerns in one place: the schedule (:mod:`.schedule`), numeric precision (:mod:`.precision`),
distribution over devices (:mod:`.distribute`) and the training loop (:mod:`.loop`).

Nothing is imported here, so reading a schedule's defaults (the command line does) does not import Keras.
"""
