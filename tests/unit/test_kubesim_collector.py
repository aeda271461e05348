"""kubesim's collector setting: survivors of a young pass leave the collector's sight, garbage cycles are still freed.

Run in a child interpreter: the setting is process-wide and would change this test process's collector.
"""
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""
    import gc
    from kubesim.cli import quiet_collector
    quiet_collector()
    frozen_before = gc.get_freeze_count()
    kept = [{"metadata": {"labels": [i]}} for i in range(5000)]  # live pod-like objects
    gc.collect(1)
    frozen_after = gc.get_freeze_count()
    young_after = sum(len(gc.get_objects(generation)) for generation in range(3))

    class Node:
        pass
    for _ in range(100):
        a, b = Node(), Node()
        a.other, b.other = b, a  # a reference cycle, garbage once the loop moves on
    del a, b
    collected = gc.collect(0)
    print(frozen_after - frozen_before, young_after, collected, len(kept))
""")


def test_survivors_of_a_young_pass_are_frozen_and_young_cycles_are_still_collected():
    answer = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    newly_frozen, young_after, collected, kept = (int(value) for value in answer.stdout.split())
    assert kept == 5000
    assert newly_frozen >= 2 * 5000  # each dict, its inner dict and list survived and were frozen
    assert young_after < 100  # nothing is left for the next pass to walk
    assert collected >= 200  # 100 cycles of two objects and their __dict__s
