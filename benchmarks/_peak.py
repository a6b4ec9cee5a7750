"""Peak resident memory of the current process.

``getrusage().ru_maxrss`` is no good in a child process: Linux carries the parent's peak across
``exec``, so a child started by a large benchmark process reports the parent's memory. The
kernel's high-water mark of this process's own address space (VmHWM) is what we want.
"""


def peak_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource  # not Linux: the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
