"""The benchmarks' shared parts: ``harness`` (paths, log lines, the machine, phases, work dir,
results files), ``programs`` (a recorder under test as a process, motiond's and Motion's
configs), ``procstat`` (/proc sampling), ``stream`` (the MJPEG stream process), ``clips``
(probing what a recorder wrote), and each benchmark's own media, probes and report."""
