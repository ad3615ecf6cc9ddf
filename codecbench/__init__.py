"""codecbench: a pytest-style robustness benchmark of acoustic scene classification under audio coding."""
import os

# TensorFlow's C++ start-up chatter drowns the tool's own output; a user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
