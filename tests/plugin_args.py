"""The pytest options that load codecbench's plugin with its short option names in a pytester subprocess."""
PLUGIN_ARGS = ("-p", "codecbench", "-p", "codecbench.aliases")
