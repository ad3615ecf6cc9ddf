"""The store's split inputs (codecbench/store/split_inputs.py): a reader of what is cached needs no lock, and a fill
that must wait for another process's says whom it waits for."""
import subprocess
import sys
import threading
import time

from codecbench.codecs import parse_condition as C
from codecbench.core.cache import Cache
from codecbench.store.split_inputs import SplitInputs

HOLD = """
import sys, time
from codecbench.core.fsutil import waiting_lock
with waiting_lock(sys.argv[1], "filling the cache"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_reader_of_cached_entries_needs_no_lock_and_a_waiting_fill_names_the_holder(tiny, tmp_path, capsys):
    cache = Cache(tmp_path / "cache")
    quiet = {"jobs": 1, "log": lambda message: None, "progress": False}
    SplitInputs(tiny["dataset"], "evaluate", cache, **quiet).prepare([C("wav"), C("mp3@64")])
    cache.mark()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(cache.root / ".fill.lock")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        # everything this run needs is cached: it reads it while another process holds the fill's lock
        start = time.monotonic()
        reader = SplitInputs(tiny["dataset"], "evaluate", cache, **quiet)
        reader.prepare([C("wav"), C("mp3@64")])
        assert time.monotonic() - start < 30 and reader.achieved_kbps(C("mp3@64")) > 0
        assert "waiting" not in capsys.readouterr().err
        # a condition is missing: the fill waits for the holder, and says so, naming it
        writer = SplitInputs(tiny["dataset"], "evaluate", cache, **quiet)
        thread = threading.Thread(target=writer.prepare, args=([C("mp3@32")],))
        thread.start()
        said = ""
        for _ in range(100):
            said += capsys.readouterr().err
            if "waiting for" in said:
                break
            time.sleep(0.2)
        assert f"codecbench: waiting for process {holder.pid} (" in said and "to finish filling the cache" in said
        assert thread.is_alive()  # still waiting
    finally:
        holder.kill()
        holder.wait()
    thread.join(timeout=120)
    assert not thread.is_alive() and writer.achieved_kbps(C("mp3@32")) > 0
