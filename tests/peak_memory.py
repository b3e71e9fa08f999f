"""Peak memory of a measured subprocess, as code to paste into its ``python -c`` script.

``resource.getrusage(...).ru_maxrss`` is no use here: Linux carries the high-water mark of the
process image it replaced across ``exec``, so a child forked from a large pytest worker reports
the worker's size. ``VmHWM`` belongs to the new image alone.
"""

PEAK_MIB = '''
def peak_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
'''
