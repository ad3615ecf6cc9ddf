"""codecbench: a pytest-style robustness benchmark of acoustic scene classification under audio coding."""
__version__ = "0.1.0"
