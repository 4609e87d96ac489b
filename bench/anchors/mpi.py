"""Runs the MPI selection benchmark under mpiexec with 4 ranks and forwards its JSON rows."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
exe = os.path.join(HERE, "..", "..", "build", "release", "bench", "mpi_selection")
if not os.path.exists(exe):
    sys.exit("mpi_selection is not built (configure with REGULA_WITH_MPI=ON)")
out = subprocess.run(["mpiexec", "-n", "4", "--oversubscribe", "--allow-run-as-root",
                      "--mca", "btl", "self,vader", exe],
                     check=True, capture_output=True, text=True,
                     env=dict(os.environ, OMP_NUM_THREADS="1")).stdout
for line in out.splitlines():
    if line.startswith("{"):
        print(line, flush=True)
